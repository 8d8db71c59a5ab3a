#pragma once
// The access file: every key a node admits, with its name, role and allowances
// (docs/security.md, "The access file"). YAML, read at start and on SIGHUP.

#include <memory>
#include <string>
#include <string_view>

#include "engine/access.hpp"
#include "engine/status.hpp"

namespace alert::config {

/// Parses an access file's text. config_error naming the entry and the field at fault:
/// unknown fields, a missing or unknown role, a key that is not 40 characters of Z85, a
/// name or key given twice, devices on a non-integrator or targets on a non-gateway, an
/// integrator without devices or a gateway without targets.
result<access_list> parse_access(std::string_view yaml, const std::string& source = "access file");

/// Reads and parses the access file at `path`.
result<std::shared_ptr<const access_list>> load_access_file(const std::string& path);

}  // namespace alert::config
