#pragma once
// Who may do what: the parties that hold keys (integrators, gateways, operators, clinicians,
// auditors, other nodes), their roles and allowances, and the checks made against them.
// Pure: the access file is read by config/, the keys are checked by the endpoints (cluster/).

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/status.hpp"

namespace alert {

/// What a key is for. Each endpoint admits some roles; control commands are checked per role.
enum class role : std::uint8_t { integrator, gateway, operator_, clinician, auditor, node };

/// "integrator", "gateway", "operator", "clinician", "auditor", "node".
std::string_view to_string(role r) noexcept;
std::optional<role> role_from_string(std::string_view s) noexcept;

/// The endpoints a key can connect to (the ZAP domain each one sets).
enum class endpoint_kind : std::uint8_t { ingest, pager, control, peer };
std::string_view to_string(endpoint_kind e) noexcept;
std::optional<endpoint_kind> endpoint_from_string(std::string_view s) noexcept;

/// One party with a key.
struct principal {
  std::string name;        ///< who, as written in logs and the audit log
  role what = role::operator_;
  std::string public_key;  ///< CURVE public key, Z85 (40 characters)
  /// Integrators: the devices it may send for. Each entry is an exact device id, a prefix
  /// ending in '*' ("ward3-*"), or "*" for every device.
  std::vector<std::string> devices;
  /// Gateways: the targets it may serve, same patterns.
  std::vector<std::string> targets;
};

/// Whether `id` matches one of `patterns` (exact, "prefix*" or "*").
bool matches_any(const std::vector<std::string>& patterns, std::string_view id) noexcept;

/// Whether a key of role `r` may connect to endpoint `e`: ingest takes integrators and nodes,
/// pager takes gateways, control takes operators, clinicians, auditors and nodes, the peer
/// endpoint takes nodes.
bool may_connect(role r, endpoint_kind e) noexcept;

/// Whether role `r` may run the control command `cmd`. Operators run everything; clinicians
/// read and act on alerts (ack, resolve, silence) but do not change the node (rules check
/// and reload, release) or read the audit log; auditors read everything, the audit log
/// included, and act on nothing; nodes read status and health. `rules-check` reads a file
/// the caller names, so it is for operators only. Unknown commands: false.
bool may_run(role r, std::string_view cmd) noexcept;

/// The parties a node knows, by public key and by name.
class access_list {
public:
  /// Adds `p`; invalid_argument when its name or key is already taken, or the name is empty.
  status add(principal p);
  const principal* by_key(std::string_view public_key_z85) const noexcept;
  const principal* by_name(std::string_view name) const noexcept;
  std::size_t size() const noexcept { return by_key_.size(); }
  const std::map<std::string, principal, std::less<>>& all() const noexcept { return by_key_; }

private:
  std::map<std::string, principal, std::less<>> by_key_;          // Z85 key -> party
  std::map<std::string, std::string, std::less<>> key_of_name_;   // name -> Z85 key
};

}  // namespace alert
