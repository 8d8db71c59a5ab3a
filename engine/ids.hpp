#pragma once
// Entity identifiers (devices, patients) and their validation.

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include "engine/status.hpp"

namespace alert {

/// Longest id accepted, in bytes.
inline constexpr std::size_t max_id_length = 64;

/// Checks an entity id: 1 to max_id_length bytes of ASCII letters, digits and `- _ . : @`,
/// starting with a letter or digit. Control characters, spaces, non-ASCII bytes and
/// separators such as `/` are refused so ids are safe in keys, logs and file names.
/// Returns errc::invalid_id with a message naming the problem.
status validate_id(std::string_view id, std::string_view what = "id");

namespace detail {
/// A validated id; Tag keeps device and patient ids from mixing.
template <class Tag>
class basic_id {
public:
  /// An id after validation, or errc::invalid_id.
  static result<basic_id> make(std::string_view text) {
    if (auto st = validate_id(text, Tag::name); !st) return st;
    return basic_id{std::string{text}};
  }
  const std::string& str() const noexcept { return value_; }
  friend bool operator==(const basic_id& a, const basic_id& b) { return a.value_ == b.value_; }
  friend bool operator!=(const basic_id& a, const basic_id& b) { return a.value_ != b.value_; }
  friend bool operator<(const basic_id& a, const basic_id& b) { return a.value_ < b.value_; }

private:
  explicit basic_id(std::string v) : value_(std::move(v)) {}
  std::string value_;
};
struct device_tag {
  static constexpr const char* name = "device id";
};
struct patient_tag {
  static constexpr const char* name = "patient id";
};
}  // namespace detail

/// A device's id, as the integrator names it (e.g. "oxi-0042").
using device_id = detail::basic_id<detail::device_tag>;
/// A patient's id, as the integrator names it (e.g. an MRN "P-100234").
using patient_id = detail::basic_id<detail::patient_tag>;

}  // namespace alert

template <class Tag>
struct std::hash<alert::detail::basic_id<Tag>> {
  std::size_t operator()(const alert::detail::basic_id<Tag>& id) const noexcept {
    return std::hash<std::string>{}(id.str());
  }
};
