#include "engine/access.hpp"

#include <algorithm>
#include <array>

namespace alert {
namespace {

constexpr std::array<std::string_view, 6> role_names{"integrator", "gateway", "operator", "clinician", "auditor", "node"};
constexpr std::array<std::string_view, 4> endpoint_names{"ingest", "pager", "control", "peer"};

// Commands that only read. Clinicians and auditors may run them; the audit log itself is for
// auditors and operators. `rules-check` is not among them: it reads a file named by the
// caller, which only an operator may do.
constexpr std::array<std::string_view, 9> read_commands{"status", "health", "alerts", "alert", "silences", "device",
                                                        "patient", "events", "readings"};
constexpr std::array<std::string_view, 4> clinical_actions{"ack", "resolve", "silence", "unsilence"};
constexpr std::array<std::string_view, 2> audit_commands{"audit", "audit-verify"};

template <std::size_t N>
bool in(const std::array<std::string_view, N>& list, std::string_view s) {
  return std::find(list.begin(), list.end(), s) != list.end();
}

}  // namespace

std::string_view to_string(role r) noexcept {
  auto i = static_cast<std::size_t>(r);
  return i < role_names.size() ? role_names[i] : "unknown";
}

std::optional<role> role_from_string(std::string_view s) noexcept {
  for (std::size_t i = 0; i < role_names.size(); ++i)
    if (role_names[i] == s) return static_cast<role>(i);
  return std::nullopt;
}

std::string_view to_string(endpoint_kind e) noexcept {
  auto i = static_cast<std::size_t>(e);
  return i < endpoint_names.size() ? endpoint_names[i] : "unknown";
}

std::optional<endpoint_kind> endpoint_from_string(std::string_view s) noexcept {
  for (std::size_t i = 0; i < endpoint_names.size(); ++i)
    if (endpoint_names[i] == s) return static_cast<endpoint_kind>(i);
  return std::nullopt;
}

bool matches_any(const std::vector<std::string>& patterns, std::string_view id) noexcept {
  for (const auto& p : patterns) {
    if (p == "*") return true;
    if (!p.empty() && p.back() == '*') {
      std::string_view prefix{p.data(), p.size() - 1};
      if (id.substr(0, prefix.size()) == prefix) return true;
    } else if (p == id) {
      return true;
    }
  }
  return false;
}

bool may_connect(role r, endpoint_kind e) noexcept {
  switch (e) {
    case endpoint_kind::ingest: return r == role::integrator || r == role::node;
    case endpoint_kind::pager: return r == role::gateway;
    case endpoint_kind::control:
      return r == role::operator_ || r == role::clinician || r == role::auditor || r == role::node;
    case endpoint_kind::peer: return r == role::node;
  }
  return false;
}

bool may_run(role r, std::string_view cmd) noexcept {
  const bool known = in(read_commands, cmd) || in(clinical_actions, cmd) || in(audit_commands, cmd) ||
                     cmd == "rules-check" || cmd == "rules-reload" || cmd == "release";
  if (!known) return false;
  switch (r) {
    case role::operator_: return true;
    case role::clinician: return in(read_commands, cmd) || in(clinical_actions, cmd);
    case role::auditor: return in(read_commands, cmd) || in(audit_commands, cmd);
    case role::node: return cmd == "status" || cmd == "health";
    case role::integrator:
    case role::gateway: return false;
  }
  return false;
}

status access_list::add(principal p) {
  if (p.name.empty()) return {errc::invalid_argument, "a key needs a name"};
  if (key_of_name_.count(p.name)) return {errc::invalid_argument, "the name '" + p.name + "' is given twice"};
  if (by_key_.count(p.public_key))
    return {errc::invalid_argument, "the public key of '" + p.name + "' is already the key of '" +
                                        by_key_.find(p.public_key)->second.name + "'"};
  key_of_name_.emplace(p.name, p.public_key);
  auto key = p.public_key;
  by_key_.emplace(std::move(key), std::move(p));
  return {};
}

const principal* access_list::by_key(std::string_view public_key_z85) const noexcept {
  auto it = by_key_.find(public_key_z85);
  return it == by_key_.end() ? nullptr : &it->second;
}

const principal* access_list::by_name(std::string_view name) const noexcept {
  auto it = key_of_name_.find(name);
  if (it == key_of_name_.end()) return nullptr;
  return by_key(it->second);
}

}  // namespace alert
