#pragma once
// Early-warning scores: NEWS2 (Royal College of Physicians, 2017) and qSOFA (Sepsis-3, 2016).
// Pure functions: the caller passes the latest value of each parameter and the time `now`;
// nothing here reads a clock or does I/O. docs/rules.md ("Scores") is the clinical contract.
//
// Rounding, before banding (the chart has gaps, e.g. 35.05 C between 35.0 and 35.1):
// temperature is rounded to one decimal, every other parameter to the nearest integer, both
// half away from zero. So 35.05 C -> 35.1 C, 36.04 C -> 36.0 C, RR 20.5 -> 21, SpO2 91.4 -> 91.
// A value within 1e-9 (of a degree tenth, or of a unit) of a half counts as the half, so
// that floating-point error (35.05 is stored as 35.04999..., unit conversions and arithmetic
// add their own) never moves a value across a band boundary.
//
// Missing parameters: a parameter that is absent, not finite, or older than its staleness
// limit does not count. The score is then incomplete; its total is the sum of what is known,
// a floor (a missing parameter can only add points), and a band that the known parameters
// already prove (low_medium, medium or high) is reported: a missing value never hides a
// high score.

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "engine/metric.hpp"
#include "engine/time.hpp"

namespace alert {

/// The latest value of one parameter, in the metric's canonical unit, and when it was measured.
struct vital {
  double value;
  epoch_ms ts;  ///< device time of the measurement
};

/// The latest value of each NEWS2 parameter, each optional. Units and codes are those of the
/// metric vocabulary (metric.hpp): resp_rate /min, spo2 %, o2_supplement 0 air / 1 oxygen,
/// systolic_bp mm[Hg], heart_rate /min, consciousness ACVPU 0..4, temperature Cel.
struct news2_inputs {
  std::optional<vital> resp_rate;
  std::optional<vital> spo2;
  std::optional<vital> o2_supplement;
  std::optional<vital> systolic_bp;
  std::optional<vital> heart_rate;
  std::optional<vital> consciousness;
  std::optional<vital> temperature;
  /// Use SpO2 scale 2: a per-patient setting, prescribed for hypercapnic respiratory failure.
  bool spo2_scale2 = false;
};

/// How long a value stays valid, per parameter: it counts while `now - ts <= limit`; a value
/// with `ts > now` (device clock ahead) counts as measured now; a negative limit makes the
/// parameter always stale. The defaults suit a monitored ward; a ward overrides them.
struct news2_policy {
  /// Continuously monitored (monitor, oximeter): 15 min of silence means no current value.
  epoch_ms resp_rate_ms = 15 * 60 * 1000;
  epoch_ms spo2_ms = 15 * 60 * 1000;
  epoch_ms heart_rate_ms = 15 * 60 * 1000;
  /// Non-invasive cuffs cycle every 15 to 60 min: 1 h covers the slowest usual cycle.
  epoch_ms systolic_bp_ms = 60 * 60 * 1000;
  /// Oxygen scores 2 points (and moves SpO2 scale 2): a stale "air" must not linger.
  epoch_ms o2_supplement_ms = 60 * 60 * 1000;
  /// Assessed by a nurse at each observation round (RCP: every 4-6 h at a total of 1-4).
  epoch_ms consciousness_ms = 4 * 60 * 60 * 1000;
  /// Measured intermittently, changes slowly: one 4-hourly round.
  epoch_ms temperature_ms = 4 * 60 * 60 * 1000;
};

/// NEWS2 clinical response bands (RCP Chart 4), from least to most urgent after `incomplete`.
enum class news2_band : std::uint8_t {
  incomplete,  ///< parameters missing and the known ones prove no band below
  none,        ///< total 0: routine monitoring
  low,         ///< total 1-4: ward-based response
  low_medium,  ///< a 3 in any single parameter, total below 5: urgent ward-based review
  medium,      ///< total 5-6: urgent response
  high,        ///< total 7 or more: emergency response
};

/// "incomplete", "none", "low", "low_medium", "medium" or "high".
[[nodiscard]] std::string_view to_string(news2_band band) noexcept;

/// The NEWS2 sub-score of each parameter; empty when the parameter is missing or stale (and
/// SpO2 on scale 2 at 93% or more, which depends on a missing air/oxygen value).
struct news2_subscores {
  std::optional<int> resp_rate;
  std::optional<int> spo2;
  std::optional<int> o2_supplement;
  std::optional<int> systolic_bp;
  std::optional<int> heart_rate;
  std::optional<int> consciousness;
  std::optional<int> temperature;
};

/// A NEWS2 score.
struct news2_result {
  /// All seven parameters present, finite and fresh.
  bool complete = false;
  /// 0-20 when complete; otherwise the sum of the known sub-scores, a floor of the true total.
  int total = 0;
  /// The response band; see compute_news2 for an incomplete score.
  news2_band band = news2_band::incomplete;
  /// A known parameter scores 3.
  bool any_single_3 = false;
  news2_subscores sub;
  /// The parameters that are absent, not finite or stale, in chart order.
  std::vector<metric> missing;
};

/// Respiration rate /min, rounded to an integer: <=8 -> 3, 9-11 -> 1, 12-20 -> 0, 21-24 -> 2,
/// >=25 -> 3. `per_min` must be finite.
[[nodiscard]] int news2_resp_rate_score(double per_min) noexcept;

/// SpO2 % on scale 1, rounded to an integer: <=91 -> 3, 92-93 -> 2, 94-95 -> 1, >=96 -> 0.
/// `percent` must be finite.
[[nodiscard]] int news2_spo2_scale1_score(double percent) noexcept;

/// SpO2 % on scale 2, rounded to an integer: <=83 -> 3, 84-85 -> 2, 86-87 -> 1, 88-92 -> 0,
/// >=93 on air -> 0; on oxygen 93-94 -> 1, 95-96 -> 2, >=97 -> 3. `percent` must be finite.
[[nodiscard]] int news2_spo2_scale2_score(double percent, bool on_oxygen) noexcept;

/// Air or oxygen: oxygen -> 2, air -> 0.
[[nodiscard]] int news2_o2_supplement_score(bool on_oxygen) noexcept;

/// Systolic BP mm[Hg], rounded to an integer: <=90 -> 3, 91-100 -> 2, 101-110 -> 1,
/// 111-219 -> 0, >=220 -> 3. `mm_hg` must be finite.
[[nodiscard]] int news2_systolic_bp_score(double mm_hg) noexcept;

/// Pulse /min, rounded to an integer: <=40 -> 3, 41-50 -> 1, 51-90 -> 0, 91-110 -> 1,
/// 111-130 -> 2, >=131 -> 3. `per_min` must be finite.
[[nodiscard]] int news2_heart_rate_score(double per_min) noexcept;

/// Consciousness, an ACVPU code rounded to an integer: 0 alert -> 0; 1 new confusion,
/// 2 voice, 3 pain or 4 unresponsive -> 3. `code` must be finite.
[[nodiscard]] int news2_consciousness_score(double code) noexcept;

/// Temperature Cel, rounded to one decimal: <=35.0 -> 3, 35.1-36.0 -> 1, 36.1-38.0 -> 0,
/// 38.1-39.0 -> 1, >=39.1 -> 2. So 35.05 -> 35.1 -> 1 and 36.04 -> 36.0 -> 1.
/// `celsius` must be finite.
[[nodiscard]] int news2_temperature_score(double celsius) noexcept;

/// NEWS2 at time `now`. A parameter counts when present, finite and fresh under `policy`;
/// o2_supplement means oxygen when it rounds to 1 or more. When every parameter counts, the
/// band follows Chart 4. When one is missing, `complete` is false, `missing` names it, `total`
/// is the sum of the known sub-scores (SpO2 scale 2 at 93% or more with air/oxygen unknown
/// adds nothing: its sub-score is unknown), and since a missing parameter can only add
/// points, the band is what the known ones already prove: high when that total is 7 or more,
/// medium at 5-6, low_medium when a known parameter scores 3, otherwise `incomplete` (none or
/// low cannot be proven: the missing observation is the action).
[[nodiscard]] news2_result compute_news2(const news2_inputs& in, epoch_ms now,
                                         const news2_policy& policy = {});

/// The latest value of each qSOFA parameter, each optional (units as in news2_inputs).
struct qsofa_inputs {
  std::optional<vital> resp_rate;
  std::optional<vital> systolic_bp;
  std::optional<vital> consciousness;
};

/// How long a qSOFA value stays valid; same meaning and defaults as news2_policy.
struct qsofa_policy {
  epoch_ms resp_rate_ms = news2_policy{}.resp_rate_ms;
  epoch_ms systolic_bp_ms = news2_policy{}.systolic_bp_ms;
  epoch_ms consciousness_ms = news2_policy{}.consciousness_ms;
};

/// A qSOFA score.
struct qsofa_result {
  /// All three parameters present, finite and fresh.
  bool complete = false;
  /// 0-3 when complete; otherwise the points of the known criteria, a floor.
  int score = 0;
  /// Two points or more, complete or not (a missing criterion can only add a point).
  bool high_risk = false;
  /// Each criterion: met, not met, or unknown when its parameter is missing.
  std::optional<bool> resp_rate_met;
  std::optional<bool> systolic_bp_met;
  std::optional<bool> altered_mentation_met;
  /// The parameters that are absent, not finite or stale: resp_rate, systolic_bp, consciousness.
  std::vector<metric> missing;
};

/// qSOFA at time `now`, with the NEWS2 rounding (integers, half away from zero) and staleness
/// rules. One point each: respiratory rate >= 22/min; altered mentation, GCS < 15,
/// approximated by an ACVPU level other than alert (code >= 1: new confusion, voice, pain,
/// unresponsive); systolic BP <= 100 mm[Hg].
[[nodiscard]] qsofa_result compute_qsofa(const qsofa_inputs& in, epoch_ms now,
                                         const qsofa_policy& policy = {});

}  // namespace alert
