#pragma once
// Pager protocol v1 (docs/protocol.md): MessagePack codec for the messages between a node
// and its pager gateways. The node decodes hello / status and encodes page / cancel /
// welcome / error; a gateway does the reverse. No sockets here.

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "engine/escalation.hpp"
#include "engine/rules.hpp"
#include "engine/status.hpp"
#include "engine/time.hpp"

namespace alert::wire {

/// Pager protocol version spoken by this build.
inline constexpr std::int64_t pager_version = 1;

/// The target a gateway names in its hello to take every target.
inline constexpr std::string_view any_target = "*";
/// Longest target or gateway name, in bytes.
inline constexpr std::size_t max_pager_name_bytes = 64;

/// Bounds applied while decoding any pager message, both directions. Hitting one is
/// errc::too_large.
inline constexpr std::size_t pager_max_string_bytes = 4096;  ///< any string
inline constexpr std::size_t pager_max_array = 64;           ///< any array (a hello's targets)
inline constexpr std::size_t pager_max_map_entries = 64;     ///< keys in any map (a page's details)
inline constexpr std::size_t pager_max_depth = 4;            ///< nesting of maps and arrays

/// Gateway -> node, first message on a connection: the gateway's name and the targets it
/// serves ("*": every target).
struct pager_hello {
  std::string gateway;
  std::vector<std::string> targets;
  friend bool operator==(const pager_hello& a, const pager_hello& b) {
    return a.gateway == b.gateway && a.targets == b.targets;
  }
};

/// Node -> gateway: page a target about an alert. The same step is always sent under the
/// same page_id (alert::page_id), redeliveries included.
struct pager_page {
  std::string page_id;
  std::string alert_id;
  std::string target;
  unsigned level = 0;
  unsigned repeat = 0;
  alert_priority priority = alert_priority::medium;
  alert_kind kind = alert_kind::physiological;
  std::string patient;  ///< empty for an unbound device
  std::string device;   ///< empty for patient-level rules
  std::string rule;
  std::string summary;  ///< one line a person can act on
  std::map<std::string, double> details;
  epoch_ms ts = 0;        ///< node time the page was issued
  epoch_ms event_ts = 0;  ///< event time of the reading that caused the alert
  friend bool operator==(const pager_page& a, const pager_page& b) {
    return a.page_id == b.page_id && a.alert_id == b.alert_id && a.target == b.target && a.level == b.level &&
           a.repeat == b.repeat && a.priority == b.priority && a.kind == b.kind && a.patient == b.patient &&
           a.device == b.device && a.rule == b.rule && a.summary == b.summary && a.details == b.details &&
           a.ts == b.ts && a.event_ts == b.event_ts;
  }
};

/// Node -> gateway: a page is void. `reason` is "acknowledged", "resolved" or "silenced".
struct pager_cancel {
  std::string page_id;
  std::string alert_id;
  std::string reason;
  friend bool operator==(const pager_cancel& a, const pager_cancel& b) {
    return a.page_id == b.page_id && a.alert_id == b.alert_id && a.reason == b.reason;
  }
};

/// Gateway -> node: what became of a page. A gateway sends only received, delivered, read,
/// accepted and rejected (sent and cancelled are the node's own states).
struct pager_status {
  std::string page_id;
  page_status status = page_status::received;
  std::string by;  ///< the responder; empty when absent
  epoch_ms ts = 0;
  friend bool operator==(const pager_status& a, const pager_status& b) {
    return a.page_id == b.page_id && a.status == b.status && a.by == b.by && a.ts == b.ts;
  }
};

/// Node -> gateway: the answer to a hello, echoing the gateway and its targets.
struct pager_welcome {
  std::string gateway;
  std::vector<std::string> targets;
  friend bool operator==(const pager_welcome& a, const pager_welcome& b) {
    return a.gateway == b.gateway && a.targets == b.targets;
  }
};

/// Node -> gateway: a message the node could not use.
struct pager_error {
  errc code = errc::malformed;
  std::string message;
  friend bool operator==(const pager_error& a, const pager_error& b) {
    return a.code == b.code && a.message == b.message;
  }
};

/// The valid cancel reasons.
inline constexpr std::string_view cancel_reasons[] = {"acknowledged", "resolved", "silenced"};

/// Checks a target or gateway name: 1 to 64 bytes of ASCII letters, digits and `- _ . : @`
/// (no rule on the first byte). "*" is not a name: decoders allow it only where a list of
/// targets is expected. errc::invalid_id with a message naming the problem.
status validate_pager_name(std::string_view name, std::string_view what = "target");

// ---- gateway -> node ---------------------------------------------------------------------

using gateway_message = std::variant<pager_hello, pager_status>;

/// `{v, type: "hello", gateway, targets: [...]}`.
std::string encode_hello(const pager_hello& hello);
/// `{v, type: "status", page_id, status, by (when not empty), ts}`.
std::string encode_status(const pager_status& st);

/// Decodes a hello or a status (node side). Never throws. Errors: malformed (bad
/// MessagePack, trailing bytes, not a map, a missing or mistyped field, an unknown type or
/// status, a status of sent or cancelled, an empty targets list), unsupported_version
/// (v != 1), too_large (a decode limit), invalid_id (a gateway or target name breaking
/// validate_pager_name; "*" is allowed as a target). Unknown keys are ignored; when a key
/// repeats, its first occurrence counts. The message names the field.
result<gateway_message> decode_from_gateway(const char* data, std::size_t size);

// ---- node -> gateway ---------------------------------------------------------------------

using node_message = std::variant<pager_page, pager_cancel, pager_welcome, pager_error>;

/// `{v, type: "page", page_id, alert_id, target, level, repeat, priority, kind, patient,
/// device, rule, summary, details, ts, event_ts}`; details values always as float64.
std::string encode_page(const pager_page& page);
/// `{v, type: "cancel", page_id, alert_id, reason}`.
std::string encode_cancel(const pager_cancel& cancel);
/// `{v, type: "welcome", gateway, targets}`.
std::string encode_welcome(const pager_welcome& welcome);
/// `{v, type: "error", code, message}`.
std::string encode_error(const pager_error& err);

/// Decodes a page, cancel, welcome or error (gateway side). Never throws; errors as for
/// decode_from_gateway. A page's target must be a name (not "*"); a cancel's reason one of
/// cancel_reasons; an error code this build does not know (or "ok") becomes internal.
result<node_message> decode_from_node(const char* data, std::size_t size);

}  // namespace alert::wire
