#include "engine/ids.hpp"

#include <cstdio>

namespace alert {
namespace {

bool is_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool is_id_char(char c) {
  return is_alnum(c) || c == '-' || c == '_' || c == '.' || c == ':' || c == '@';
}

}  // namespace

status validate_id(std::string_view id, std::string_view what) {
  std::string w{what};
  if (id.empty()) return {errc::invalid_id, w + " is empty"};
  if (id.size() > max_id_length)
    return {errc::invalid_id, w + " is " + std::to_string(id.size()) + " bytes, longer than " +
                                  std::to_string(max_id_length)};
  if (!is_alnum(id.front()))
    return {errc::invalid_id, w + " must start with a letter or digit"};
  for (std::size_t i = 0; i < id.size(); ++i) {
    char c = id[i];
    if (!is_id_char(c)) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02x", static_cast<unsigned>(static_cast<unsigned char>(c)));
      return {errc::invalid_id, w + " has a forbidden byte " + hex + " at offset " +
                                    std::to_string(i) + " (allowed: letters, digits, - _ . : @)"};
    }
  }
  return {};
}

}  // namespace alert
