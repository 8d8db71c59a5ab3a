#pragma once
// Control protocol v1: MessagePack codec for the requests an operator's tool (alertctl)
// sends a node over ZeroMQ (DEALER -> ROUTER, one map per frame) and the node's replies,
// plus the dynamic `value` that carries a command's arguments and result, and a JSON
// printer for scripts. No sockets here.

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "engine/status.hpp"

namespace alert::wire {

// ---- value ------------------------------------------------------------------------------

struct value;
using value_array = std::vector<value>;
/// Members in insertion order, which is also the order on the wire and in JSON. A decoded
/// object has unique keys (the first occurrence of a repeated key is kept).
using value_object = std::vector<std::pair<std::string, value>>;

/// A dynamic value: null, bool, 64-bit signed integer, double, string, array or object.
/// Integers and doubles are distinct (1 != 1.0).
struct value {
  std::variant<std::monostate, bool, std::int64_t, double, std::string, value_array, value_object> v;

  // Implicit by design, so that value_object{{"minutes", 30}, {"patient", "P-1"}} reads well.
  value() = default;
  value(std::nullptr_t) {}                          // NOLINT
  value(std::monostate) {}                          // NOLINT
  value(bool b) : v(b) {}                           // NOLINT
  value(double d) : v(d) {}                         // NOLINT
  value(const char* s) : v(std::string{s}) {}       // NOLINT
  value(std::string_view s) : v(std::string{s}) {}  // NOLINT
  value(std::string s) : v(std::move(s)) {}         // NOLINT
  value(value_array a) : v(std::move(a)) {}         // NOLINT
  value(value_object o) : v(std::move(o)) {}        // NOLINT
  /// Any integral type but bool becomes an int64; an unsigned value above INT64_MAX throws
  /// std::out_of_range.
  template <class T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>, int> = 0>
  value(T i) : v(to_int64(i)) {}  // NOLINT

  bool is_null() const noexcept { return std::holds_alternative<std::monostate>(v); }
  bool is_bool() const noexcept { return std::holds_alternative<bool>(v); }
  bool is_int() const noexcept { return std::holds_alternative<std::int64_t>(v); }
  bool is_double() const noexcept { return std::holds_alternative<double>(v); }
  bool is_string() const noexcept { return std::holds_alternative<std::string>(v); }
  bool is_array() const noexcept { return std::holds_alternative<value_array>(v); }
  bool is_object() const noexcept { return std::holds_alternative<value_object>(v); }

  /// The member `key` of an object (its first occurrence), or null when this is not an
  /// object or has no such member.
  const value* get(std::string_view key) const noexcept;
  /// The member `key` when it is a string.
  std::optional<std::string> str(std::string_view key) const;
  /// The member `key` when it is an integer (a double, even an integral one, is not).
  std::optional<std::int64_t> integer(std::string_view key) const noexcept;
  /// The member `key` when it is a bool.
  std::optional<bool> boolean(std::string_view key) const noexcept;

  /// Sets the member `key` of an object: replaces its first occurrence, else appends it.
  /// A null value becomes an empty object first; any other non-object throws
  /// std::logic_error. Returns the member as stored (valid until the object next changes).
  value& set(std::string key, value member);
  /// Appends to an array. A null value becomes an empty array first; any other non-array
  /// throws std::logic_error.
  void push(value item);

  friend bool operator==(const value& a, const value& b) { return a.v == b.v; }
  friend bool operator!=(const value& a, const value& b) { return !(a == b); }

private:
  template <class T>
  static std::int64_t to_int64(T i) {
    if constexpr (std::is_unsigned_v<T> && sizeof(T) >= sizeof(std::int64_t)) {
      if (i > static_cast<T>(std::numeric_limits<std::int64_t>::max()))
        throw std::out_of_range("integer above INT64_MAX cannot be a wire::value");
    }
    return static_cast<std::int64_t>(i);
  }
};

// ---- messages ---------------------------------------------------------------------------

/// Control protocol version spoken by this build.
inline constexpr std::int64_t control_version = 1;

/// Longest command name, in bytes.
inline constexpr std::size_t max_control_command_bytes = 64;

/// Bounds applied while decoding any control message, both directions. Hitting one is
/// errc::too_large.
inline constexpr std::size_t control_max_string_bytes = std::size_t{1} << 20;  ///< any string (1 MiB)
inline constexpr std::size_t control_max_array = 1'000'000;                   ///< entries of any array
inline constexpr std::size_t control_max_map_entries = 100'000;               ///< keys in any map
/// Nesting of maps and arrays; the message's own map is the first level.
inline constexpr std::size_t control_max_depth = 16;

/// Client -> node: `{v: 1, type: "request", id, cmd, args}`.
struct control_request {
  std::uint64_t id = 0;  ///< chosen by the client, echoed in the reply
  std::string cmd;       ///< 1 to 64 bytes of a-z, 0-9, _ and -
  value args;            ///< an object; null is sent as an empty map
  friend bool operator==(const control_request& a, const control_request& b) {
    return a.id == b.id && a.cmd == b.cmd && a.args == b.args;
  }
  friend bool operator!=(const control_request& a, const control_request& b) { return !(a == b); }
};

/// Node -> client. Success: `{v: 1, type: "reply", id, ok: true, result}`. Failure:
/// `{v: 1, type: "reply", id, ok: false, code, message}` with code the errc's wire name.
struct control_reply {
  std::uint64_t id = 0;
  bool ok = true;
  value result;          ///< when ok
  errc code = errc::ok;  ///< when not ok
  std::string message;   ///< when not ok: for a person
  friend bool operator==(const control_reply& a, const control_reply& b) {
    return a.id == b.id && a.ok == b.ok && a.result == b.result && a.code == b.code && a.message == b.message;
  }
  friend bool operator!=(const control_reply& a, const control_reply& b) { return !(a == b); }
};

// The functions carry "control" in their names: ingest_wire.hpp, in the same namespace, has
// its own encode_request / decode_request / decode_reply.

/// Whether `cmd` is a valid command name: 1 to 64 bytes of a-z, 0-9, '_' and '-'.
bool is_control_command(std::string_view cmd) noexcept;

/// `{v, type: "request", id, cmd, args}`. Integers are written as MessagePack integers,
/// doubles as float64, objects as maps in insertion order. Nothing is validated: a peer
/// refuses a bad command name or non-map args.
std::string encode_control_request(const control_request& request);

/// Decodes a request (node side). Never throws. Errors: malformed (bad MessagePack,
/// trailing bytes, not a map, a missing or mistyped field, type not "request", a bad
/// command name, args that are neither a map nor nil, a map key that is not a string or an
/// integer above INT64_MAX anywhere in args, binary or extension data), unsupported_version
/// (v != 1), too_large (a decode limit). Absent or nil args is an empty object. Unknown
/// keys are ignored; when a key repeats, its first occurrence counts (in args too). The
/// message names the field, e.g. "field 'args.ids[2]' ...". To answer a refused request
/// under its id, see peek_control_request_id.
result<control_request> decode_control_request(const char* data, std::size_t size);

/// The id of the request in [data, data + size) when its top-level value is a map whose
/// first `id` key holds a non-negative integer; read even when the request is otherwise
/// refused (trailing bytes, a limit, a bad field), provided the id comes before any
/// invalid MessagePack. Builds no objects, so a frame's claimed sizes cost nothing.
std::optional<std::uint64_t> peek_control_request_id(const char* data, std::size_t size) noexcept;

/// Success: `{v, type: "reply", id, ok: true, result}`; failure: `{v, type: "reply", id,
/// ok: false, code, message}`, with code as to_string(errc) gives.
std::string encode_control_reply(const control_reply& reply);

/// Decodes a reply (client side). Never throws; errors as for decode_request. A success
/// without result has a null result. A failure's error code this build does not know (or
/// "ok") becomes internal; its message is kept.
result<control_reply> decode_control_reply(const char* data, std::size_t size);

// ---- JSON -------------------------------------------------------------------------------

/// `v` as JSON text (RFC 8259), always valid: strings escaped (", \ and control characters
/// as \u00XX; valid UTF-8 passes through, each byte of an invalid sequence becomes
/// \ufffd), integers exactly, doubles in the shortest form that round-trips with ".0"
/// added when that form looks like an integer (so 5.0 stays a double), NaN and infinities
/// as null. Compact by default; `pretty`: one member or element per line, indented by 2
/// spaces, "[]" and "{}" when empty, ": " after keys. No trailing newline.
std::string to_json(const value& v, bool pretty = false);

}  // namespace alert::wire
