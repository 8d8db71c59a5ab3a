#pragma once
// Error codes and the status / result<T> types used at every boundary of the engine.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace alert {

/// Stable error codes. Their string forms (to_string) go on the wire and into logs and are
/// documented in docs/protocol.md: never rename one, only add.
enum class errc : std::uint8_t {
  ok = 0,
  // Whole-request errors (ingest, control).
  malformed,
  unsupported_version,
  too_large,
  overloaded,
  unavailable,
  unauthorized,
  // Per-reading errors.
  missing_field,
  wrong_type,
  unknown_metric,
  unit_mismatch,
  not_finite,
  value_out_of_range,
  timestamp_in_future,
  invalid_id,
  // Node-internal errors.
  invalid_argument,
  not_found,
  io_error,
  corruption,
  config_error,
  internal,
};

/// The stable wire name of a code, e.g. "value_out_of_range".
[[nodiscard]] std::string_view to_string(errc code) noexcept;

/// The code whose wire name is `name`, or nothing for an unknown name.
[[nodiscard]] std::optional<errc> errc_from_string(std::string_view name) noexcept;

/// The outcome of an operation: ok, or an error code with a message for a person.
class [[nodiscard]] status {
public:
  /// An ok status.
  status() = default;
  /// An error; `code` must not be errc::ok.
  status(errc code, std::string message) : code_(code), message_(std::move(message)) {}

  static status ok() { return {}; }

  bool is_ok() const noexcept { return code_ == errc::ok; }
  explicit operator bool() const noexcept { return is_ok(); }
  errc code() const noexcept { return code_; }
  const std::string& message() const noexcept { return message_; }
  /// "code: message", or "ok".
  std::string to_string() const;

  friend bool operator==(const status& a, const status& b) {
    return a.code_ == b.code_ && a.message_ == b.message_;
  }
  friend bool operator!=(const status& a, const status& b) { return !(a == b); }

private:
  errc code_ = errc::ok;
  std::string message_;
};

/// A value of type T, or the error status that prevented it.
template <class T>
class [[nodiscard]] result {
public:
  result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  result(status error) : v_(std::move(error)) {  // NOLINT: implicit by design
    if (std::get<status>(v_).is_ok())
      v_ = status{errc::internal, "result built from an ok status without a value"};
  }
  result(errc code, std::string message) : result(status{code, std::move(message)}) {}

  bool has_value() const noexcept { return std::holds_alternative<T>(v_); }
  explicit operator bool() const noexcept { return has_value(); }

  /// The value; only valid when has_value().
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  /// The error; an ok status when there is a value.
  status error() const { return has_value() ? status{} : std::get<status>(v_); }
  errc code() const noexcept { return has_value() ? errc::ok : std::get<status>(v_).code(); }

private:
  std::variant<T, status> v_;
};

}  // namespace alert
