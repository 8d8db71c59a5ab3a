#include "config/access_file.hpp"

#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace alert::config {
namespace {

constexpr std::size_t max_file_bytes = 4 << 20;
constexpr std::size_t max_name_length = 128;

bool is_z85_key(std::string_view s) {
  static constexpr std::string_view alphabet =
      "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
  if (s.size() != 40) return false;
  for (char c : s)
    if (alphabet.find(c) == std::string_view::npos) return false;
  return true;
}

status fail(const std::string& source, const YAML::Node& at, const std::string& what) {
  auto m = at.Mark();
  std::string where = source;
  if (m.line >= 0) where += ":" + std::to_string(m.line + 1);
  return {errc::config_error, where + ": " + what};
}

result<std::vector<std::string>> patterns(const std::string& source, const YAML::Node& n, const std::string& ctx) {
  if (!n.IsSequence() || n.size() == 0)
    return fail(source, n, ctx + " must be a non-empty list of ids, prefixes ending in '*', or \"*\"");
  std::vector<std::string> out;
  for (const auto& item : n) {
    if (!item.IsScalar() || item.Scalar().empty() || item.Scalar().size() > max_name_length)
      return fail(source, item, ctx + " entries must be non-empty strings of at most 128 characters");
    out.push_back(item.Scalar());
  }
  return out;
}

}  // namespace

result<access_list> parse_access(std::string_view yaml, const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string{yaml});
  } catch (const YAML::Exception& e) {
    return status{errc::config_error, source + ": not valid YAML: " + e.what()};
  }
  if (!root.IsMap()) return status{errc::config_error, source + ": expected a map with 'version: 1' and 'keys'"};
  for (const auto& kv : root) {
    auto k = kv.first.as<std::string>("");
    if (k != "version" && k != "keys") return fail(source, kv.first, "unknown field '" + k + "' (known: version, keys)");
  }
  if (!root["version"] || root["version"].as<std::string>("") != "1")
    return status{errc::config_error, source + ": 'version: 1' is required"};
  const auto keys = root["keys"];
  if (!keys || !keys.IsSequence()) return status{errc::config_error, source + ": 'keys' must be a list"};
  access_list out;
  std::size_t index = 0;
  for (const auto& k : keys) {
    const std::string ctx = "keys[" + std::to_string(index++) + "]";
    if (!k.IsMap()) return fail(source, k, ctx + " must be a map");
    principal p;
    bool has_devices = false, has_targets = false;
    for (const auto& kv : k) {
      const auto field = kv.first.as<std::string>("");
      const auto& v = kv.second;
      if (field == "name" || field == "role" || field == "public-key") {
        if (!v.IsScalar()) return fail(source, v, ctx + "." + field + " must be a string");
      }
      if (field == "name") {
        p.name = v.Scalar();
        if (p.name.empty() || p.name.size() > max_name_length)
          return fail(source, v, ctx + ".name must be 1 to 128 characters");
      } else if (field == "role") {
        auto r = role_from_string(v.Scalar());
        if (!r)
          return fail(source, v, ctx + ".role '" + v.Scalar() +
                                     "' is not one of integrator, gateway, operator, clinician, auditor, node");
        p.what = *r;
      } else if (field == "public-key") {
        if (!is_z85_key(v.Scalar()))
          return fail(source, v, ctx + ".public-key must be a Z85 CURVE key of 40 characters (alertctl keygen)");
        p.public_key = v.Scalar();
      } else if (field == "devices") {
        auto d = patterns(source, v, ctx + ".devices");
        if (!d) return d.error();
        p.devices = std::move(*d);
        has_devices = true;
      } else if (field == "targets") {
        auto t = patterns(source, v, ctx + ".targets");
        if (!t) return t.error();
        p.targets = std::move(*t);
        has_targets = true;
      } else {
        return fail(source, kv.first,
                    ctx + ": unknown field '" + field + "' (known: name, role, public-key, devices, targets)");
      }
    }
    if (p.name.empty()) return fail(source, k, ctx + ": 'name' is required");
    if (!k["role"]) return fail(source, k, ctx + " (" + p.name + "): 'role' is required");
    if (p.public_key.empty()) return fail(source, k, ctx + " (" + p.name + "): 'public-key' is required");
    if (p.what == role::integrator && !has_devices)
      return fail(source, k, ctx + " (" + p.name + "): an integrator needs 'devices' (use [\"*\"] for all)");
    if (p.what != role::integrator && has_devices)
      return fail(source, k, ctx + " (" + p.name + "): only integrators have 'devices'");
    if (p.what == role::gateway && !has_targets)
      return fail(source, k, ctx + " (" + p.name + "): a gateway needs 'targets'");
    if (p.what != role::gateway && has_targets)
      return fail(source, k, ctx + " (" + p.name + "): only gateways have 'targets'");
    if (auto s = out.add(std::move(p)); !s) return fail(source, k, ctx + ": " + s.message());
  }
  return out;
}

result<std::shared_ptr<const access_list>> load_access_file(const std::string& path) {
  std::ifstream in{path, std::ios::binary};
  if (!in) return status{errc::config_error, "cannot read access file " + path + ": " + std::strerror(errno)};
  std::ostringstream s;
  s << in.rdbuf();
  if (s.str().size() > max_file_bytes) return status{errc::config_error, path + " is larger than 4 MiB"};
  auto list = parse_access(s.str(), path);
  if (!list) return list.error();
  return std::make_shared<const access_list>(std::move(*list));
}

}  // namespace alert::config
