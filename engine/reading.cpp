#include "engine/reading.hpp"

#include <cmath>

namespace alert {

result<reading> make_reading(const reading_input& in, epoch_ms now, epoch_ms max_future_ms) {
  auto dev = device_id::make(in.device);
  if (!dev) return dev.error();
  std::optional<patient_id> pat;
  if (in.patient) {
    auto p = patient_id::make(*in.patient);
    if (!p) return p.error();
    pat = std::move(*p);
  }
  auto m = metric_from_name(in.metric);
  if (!m) {
    std::string name = in.metric.substr(0, 64);
    return status{errc::unknown_metric, "metric '" + name + "' is not in the vocabulary"};
  }
  // Finiteness first: a NaN in a foreign unit is still a NaN, not a unit problem.
  if (auto st = check_value(*m, in.value); st.code() == errc::not_finite) return st;
  auto value = to_canonical(*m, in.value, in.unit ? *in.unit : std::string_view{});
  if (!value) return value.error();
  // A finite value that overflows in conversion is out of range, not "not finite".
  if (!std::isfinite(*value))
    return status{errc::value_out_of_range, std::string{info(*m).name} + " value overflows in unit conversion"};
  if (auto st = check_value(*m, *value); !st) return st;
  if (in.ts < 0) return status{errc::value_out_of_range, "ts is before the Unix epoch"};
  // Written as a difference: now + max_future_ms could overflow for a huge allowance.
  if (in.ts - now > max_future_ms)
    return status{errc::timestamp_in_future,
                  "ts is " + std::to_string(in.ts - now) + " ms ahead of the node clock (allowed " +
                      std::to_string(max_future_ms) + " ms)"};
  return reading{std::move(*dev), std::move(pat), *m, *value, in.ts, in.seq};
}

}  // namespace alert
