#pragma once
// A reading: one value of one metric from one device at one time.

#include <cstdint>
#include <optional>
#include <string>

#include "engine/ids.hpp"
#include "engine/metric.hpp"
#include "engine/time.hpp"

namespace alert {

/// A validated reading, its value in the metric's canonical unit.
struct reading {
  device_id device;
  std::optional<patient_id> patient;  ///< binds the device to this patient from now on
  metric what;
  double value;
  epoch_ms ts;        ///< device time of the measurement
  std::uint64_t seq;  ///< strictly increasing per device; (device, seq) is the reading's identity
};

/// A reading as it arrives, after its fields were type-checked by a decoder but before any
/// semantic check.
struct reading_input {
  std::string device;
  std::optional<std::string> patient;
  std::string metric;
  double value = 0;
  std::optional<std::string> unit;
  epoch_ms ts = 0;
  std::uint64_t seq = 0;
};

/// How far ahead of the node's clock a device timestamp may be (clock skew allowance).
inline constexpr epoch_ms default_max_future_ms = 5 * 60 * 1000;

/// Validates `in` against the vocabulary at node time `now`: ids (invalid_id), metric name
/// (unknown_metric), unit (unit_mismatch), value (not_finite, value_out_of_range) and
/// timestamp (timestamp_in_future when more than `max_future_ms` ahead of `now`,
/// value_out_of_range when negative). Pure: the caller supplies the time.
result<reading> make_reading(const reading_input& in, epoch_ms now,
                             epoch_ms max_future_ms = default_max_future_ms);

}  // namespace alert
