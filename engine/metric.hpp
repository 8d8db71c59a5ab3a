#pragma once
// The metric vocabulary: every quantity a reading may carry, with its UCUM unit, LOINC code
// and the range of values that can physically be measured.

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

#include "engine/status.hpp"

namespace alert {

/// A metric a device can report. The order is part of the journal format: append only.
enum class metric : std::uint8_t {
  heart_rate,
  resp_rate,
  spo2,
  systolic_bp,
  diastolic_bp,
  temperature,
  consciousness,
  o2_supplement,
  o2_flow,
  glucose,
  battery,
  signal_quality,
  lead_impedance,
  o2_cylinder,
};

/// What a metric tells about: the patient, the equipment, or the therapy in place.
enum class metric_kind : std::uint8_t { physiological, technical, therapy };

/// Static facts about one metric.
struct metric_info {
  metric id;
  std::string_view name;         ///< wire name, e.g. "spo2"
  std::string_view unit;         ///< canonical UCUM unit, e.g. "%", "mm[Hg]", "Cel"
  std::string_view loinc;        ///< LOINC code, empty where none exists
  std::string_view description;  ///< for people
  double min;                    ///< lowest value that can be measured, inclusive
  double max;                    ///< highest value that can be measured, inclusive
  metric_kind kind;
  bool whole;                    ///< only whole numbers are meaningful (codes, flags)
};

/// Number of metrics in the vocabulary.
inline constexpr std::size_t metric_count = 14;

/// The whole vocabulary, in enum order.
const std::array<metric_info, metric_count>& metrics() noexcept;

/// Facts about `m`.
const metric_info& info(metric m) noexcept;

/// The metric named `name` on the wire, or nothing.
std::optional<metric> metric_from_name(std::string_view name) noexcept;

/// ACVPU levels carried by the `consciousness` metric.
enum class acvpu : std::uint8_t { alert = 0, confusion = 1, voice = 2, pain = 3, unresponsive = 4 };

/// Converts `value`, expressed in UCUM `unit`, to the metric's canonical unit. An empty unit
/// means the canonical one. Accepted alternatives: [degF] for temperature, kPa for blood
/// pressure, mg/dL for glucose, mL/min for oxygen flow, Ohm for lead impedance, and
/// {beats}/min, {breaths}/min as spellings of /min. Anything else is errc::unit_mismatch.
result<double> to_canonical(metric m, double value, std::string_view unit);

/// Checks a canonical value: finite (errc::not_finite), inside [min, max] and whole where
/// the metric needs it (errc::value_out_of_range).
status check_value(metric m, double value);

}  // namespace alert
