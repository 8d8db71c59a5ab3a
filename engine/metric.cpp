#include "engine/metric.hpp"

#include <cmath>
#include <cstdio>
#include <string>

namespace alert {
namespace {

using k = metric_kind;

// Ranges are what a sensor can report, not what is normal: they catch unit mistakes and
// garbage, never a sick patient. Clinical limits belong to rules.
constexpr std::array<metric_info, metric_count> vocabulary{{
    {metric::heart_rate, "heart_rate", "/min", "8867-4", "heart rate", 0, 350, k::physiological, false},
    {metric::resp_rate, "resp_rate", "/min", "9279-1", "respiratory rate", 0, 120, k::physiological, false},
    {metric::spo2, "spo2", "%", "59408-5", "oxygen saturation by pulse oximetry", 0, 100, k::physiological, false},
    {metric::systolic_bp, "systolic_bp", "mm[Hg]", "8480-6", "systolic blood pressure", 0, 350, k::physiological, false},
    {metric::diastolic_bp, "diastolic_bp", "mm[Hg]", "8462-4", "diastolic blood pressure", 0, 300, k::physiological, false},
    {metric::temperature, "temperature", "Cel", "8310-5", "body temperature", 10, 47, k::physiological, false},
    {metric::consciousness, "consciousness", "{ACVPU}", "", "level of consciousness: 0 alert, 1 new confusion, 2 voice, 3 pain, 4 unresponsive", 0, 4, k::physiological, true},
    {metric::o2_supplement, "o2_supplement", "{bool}", "", "supplemental oxygen: 0 air, 1 oxygen", 0, 1, k::therapy, true},
    {metric::o2_flow, "o2_flow", "L/min", "3151-8", "inhaled oxygen flow rate", 0, 80, k::therapy, false},
    {metric::glucose, "glucose", "mmol/L", "15074-8", "blood glucose", 0, 60, k::physiological, false},
    {metric::battery, "battery", "%", "", "device battery charge", 0, 100, k::technical, false},
    {metric::signal_quality, "signal_quality", "%", "", "sensor signal quality index", 0, 100, k::technical, false},
    {metric::lead_impedance, "lead_impedance", "kOhm", "", "electrode lead impedance", 0, 10000, k::technical, false},
    {metric::o2_cylinder, "o2_cylinder", "%", "", "oxygen cylinder fill level", 0, 100, k::technical, false},
}};

struct conversion {
  metric m;
  std::string_view unit;
  double scale;   // canonical = value * scale + offset
  double offset;
};

constexpr double mmhg_per_kpa = 7.500615758;  // 1 kPa = 7.500615758 mm[Hg]
constexpr double glucose_mg_dl_per_mmol_l = 18.0156;  // molar mass of glucose 180.156 g/mol

constexpr std::array<conversion, 9> conversions{{
    {metric::temperature, "[degF]", 5.0 / 9.0, -32.0 * 5.0 / 9.0},
    {metric::systolic_bp, "kPa", mmhg_per_kpa, 0},
    {metric::diastolic_bp, "kPa", mmhg_per_kpa, 0},
    {metric::glucose, "mg/dL", 1.0 / glucose_mg_dl_per_mmol_l, 0},
    {metric::o2_flow, "mL/min", 1.0 / 1000.0, 0},
    {metric::lead_impedance, "Ohm", 1.0 / 1000.0, 0},
    {metric::heart_rate, "{beats}/min", 1, 0},
    {metric::resp_rate, "{breaths}/min", 1, 0},
    {metric::spo2, "%{O2}", 1, 0},
}};

}  // namespace

const std::array<metric_info, metric_count>& metrics() noexcept { return vocabulary; }

const metric_info& info(metric m) noexcept { return vocabulary[static_cast<std::size_t>(m)]; }

std::optional<metric> metric_from_name(std::string_view name) noexcept {
  for (const auto& mi : vocabulary)
    if (mi.name == name) return mi.id;
  return std::nullopt;
}

result<double> to_canonical(metric m, double value, std::string_view unit) {
  const auto& mi = info(m);
  if (unit.empty() || unit == mi.unit) return value;
  for (const auto& c : conversions)
    if (c.m == m && c.unit == unit) return value * c.scale + c.offset;
  std::string msg = "unit '";
  msg += unit;
  msg += "' does not fit ";
  msg += mi.name;
  msg += " (expected '";
  msg += mi.unit;
  msg += "'";
  for (const auto& c : conversions)
    if (c.m == m) {
      msg += " or '";
      msg += c.unit;
      msg += "'";
    }
  msg += ")";
  return status{errc::unit_mismatch, std::move(msg)};
}

status check_value(metric m, double value) {
  const auto& mi = info(m);
  if (!std::isfinite(value))
    return {errc::not_finite, std::string{mi.name} + " value is not a finite number"};
  if (value < mi.min || value > mi.max) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "%s value %g %.*s is outside the measurable range %g..%g",
                  std::string{mi.name}.c_str(), value, static_cast<int>(mi.unit.size()),
                  mi.unit.data(), mi.min, mi.max);
    return {errc::value_out_of_range, buf};
  }
  if (mi.whole && std::floor(value) != value)
    return {errc::value_out_of_range, std::string{mi.name} + " must be a whole number"};
  return {};
}

}  // namespace alert
