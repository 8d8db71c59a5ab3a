#include "engine/status.hpp"

#include <array>

namespace alert {
namespace {

struct code_name {
  errc code;
  std::string_view name;
};

constexpr std::array<code_name, 21> names{{
    {errc::ok, "ok"},
    {errc::malformed, "malformed"},
    {errc::unsupported_version, "unsupported_version"},
    {errc::too_large, "too_large"},
    {errc::overloaded, "overloaded"},
    {errc::unavailable, "unavailable"},
    {errc::unauthorized, "unauthorized"},
    {errc::missing_field, "missing_field"},
    {errc::wrong_type, "wrong_type"},
    {errc::unknown_metric, "unknown_metric"},
    {errc::unit_mismatch, "unit_mismatch"},
    {errc::not_finite, "not_finite"},
    {errc::value_out_of_range, "value_out_of_range"},
    {errc::timestamp_in_future, "timestamp_in_future"},
    {errc::invalid_id, "invalid_id"},
    {errc::invalid_argument, "invalid_argument"},
    {errc::not_found, "not_found"},
    {errc::io_error, "io_error"},
    {errc::corruption, "corruption"},
    {errc::config_error, "config_error"},
    {errc::internal, "internal"},
}};

}  // namespace

std::string_view to_string(errc code) noexcept {
  for (const auto& n : names)
    if (n.code == code) return n.name;
  return "internal";
}

std::optional<errc> errc_from_string(std::string_view name) noexcept {
  for (const auto& n : names)
    if (n.name == name) return n.code;
  return std::nullopt;
}

std::string status::to_string() const {
  if (is_ok()) return "ok";
  std::string out{alert::to_string(code_)};
  out += ": ";
  out += message_;
  return out;
}

}  // namespace alert
