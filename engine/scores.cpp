#include "engine/scores.hpp"

#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <utility>

namespace alert {
namespace {

// Devices send decimals, which binary doubles hold only approximately (35.05 is
// 35.04999999999999716), and unit conversions add their own error: a value a hair below a
// half must round as the half it stands for. The nudge is far below any device's resolution.
constexpr double half_nudge = 1e-9;

/// `v` rounded to the nearest integer, half away from zero.
double round_whole(double v) noexcept { return std::round(v + std::copysign(half_nudge, v)); }

/// `v` in tenths, rounded to the nearest tenth, half away from zero: 35.05 -> 351.
double round_tenths(double v) noexcept { return round_whole(v * 10.0); }

/// Whether a value measured at `ts` is still valid at `now` under `limit`.
bool fresh(epoch_ms ts, epoch_ms now, epoch_ms limit) noexcept {
  if (limit < 0) return false;
  if (ts >= now) return true;  // a device clock ahead of ours: measured now, not in the future
  // Unsigned, so that no pair of timestamps can overflow: now > ts, so the difference fits.
  const auto age = static_cast<std::uint64_t>(now) - static_cast<std::uint64_t>(ts);
  return age <= static_cast<std::uint64_t>(limit);
}

/// The value of `v` if it counts at `now`, or nothing.
std::optional<double> usable(const std::optional<vital>& v, epoch_ms now, epoch_ms limit) noexcept {
  if (!v || !std::isfinite(v->value) || !fresh(v->ts, now, limit)) return std::nullopt;
  return v->value;
}

bool is_oxygen(double code) noexcept { return round_whole(code) >= 1; }

/// The band of a total and its single-parameter flag, as if complete.
news2_band band_of(int total, bool any_single_3) noexcept {
  if (total >= 7) return news2_band::high;
  if (total >= 5) return news2_band::medium;
  if (any_single_3) return news2_band::low_medium;
  if (total >= 1) return news2_band::low;
  return news2_band::none;
}

}  // namespace

std::string_view to_string(news2_band band) noexcept {
  switch (band) {
    case news2_band::incomplete: return "incomplete";
    case news2_band::none: return "none";
    case news2_band::low: return "low";
    case news2_band::low_medium: return "low_medium";
    case news2_band::medium: return "medium";
    case news2_band::high: return "high";
  }
  return "unknown";
}

int news2_resp_rate_score(double per_min) noexcept {
  const double r = round_whole(per_min);
  if (r <= 8) return 3;
  if (r <= 11) return 1;
  if (r <= 20) return 0;
  if (r <= 24) return 2;
  return 3;
}

int news2_spo2_scale1_score(double percent) noexcept {
  const double s = round_whole(percent);
  if (s <= 91) return 3;
  if (s <= 93) return 2;
  if (s <= 95) return 1;
  return 0;
}

int news2_spo2_scale2_score(double percent, bool on_oxygen) noexcept {
  const double s = round_whole(percent);
  if (s <= 83) return 3;
  if (s <= 85) return 2;
  if (s <= 87) return 1;
  if (s <= 92 || !on_oxygen) return 0;
  if (s <= 94) return 1;
  if (s <= 96) return 2;
  return 3;
}

int news2_o2_supplement_score(bool on_oxygen) noexcept { return on_oxygen ? 2 : 0; }

int news2_systolic_bp_score(double mm_hg) noexcept {
  const double p = round_whole(mm_hg);
  if (p <= 90) return 3;
  if (p <= 100) return 2;
  if (p <= 110) return 1;
  if (p <= 219) return 0;
  return 3;
}

int news2_heart_rate_score(double per_min) noexcept {
  const double r = round_whole(per_min);
  if (r <= 40) return 3;
  if (r <= 50) return 1;
  if (r <= 90) return 0;
  if (r <= 110) return 1;
  if (r <= 130) return 2;
  return 3;
}

int news2_consciousness_score(double code) noexcept { return round_whole(code) >= 1 ? 3 : 0; }

int news2_temperature_score(double celsius) noexcept {
  const double t = round_tenths(celsius);
  if (t <= 350) return 3;
  if (t <= 360) return 1;
  if (t <= 380) return 0;
  if (t <= 390) return 1;
  return 2;
}

news2_result compute_news2(const news2_inputs& in, epoch_ms now, const news2_policy& policy) {
  news2_result r;
  const auto rr = usable(in.resp_rate, now, policy.resp_rate_ms);
  const auto spo2 = usable(in.spo2, now, policy.spo2_ms);
  const auto o2 = usable(in.o2_supplement, now, policy.o2_supplement_ms);
  const auto sbp = usable(in.systolic_bp, now, policy.systolic_bp_ms);
  const auto hr = usable(in.heart_rate, now, policy.heart_rate_ms);
  const auto acvpu_code = usable(in.consciousness, now, policy.consciousness_ms);
  const auto temp = usable(in.temperature, now, policy.temperature_ms);

  if (rr) r.sub.resp_rate = news2_resp_rate_score(*rr);
  if (spo2) {
    if (!in.spo2_scale2)
      r.sub.spo2 = news2_spo2_scale1_score(*spo2);
    else if (o2)
      r.sub.spo2 = news2_spo2_scale2_score(*spo2, is_oxygen(*o2));
    else if (round_whole(*spo2) <= 92)  // below 93 the scale does not ask about oxygen
      r.sub.spo2 = news2_spo2_scale2_score(*spo2, false);
  }
  if (o2) r.sub.o2_supplement = news2_o2_supplement_score(is_oxygen(*o2));
  if (sbp) r.sub.systolic_bp = news2_systolic_bp_score(*sbp);
  if (hr) r.sub.heart_rate = news2_heart_rate_score(*hr);
  if (acvpu_code) r.sub.consciousness = news2_consciousness_score(*acvpu_code);
  if (temp) r.sub.temperature = news2_temperature_score(*temp);

  const std::pair<metric, bool> present[] = {
      {metric::resp_rate, rr.has_value()},        {metric::spo2, spo2.has_value()},
      {metric::o2_supplement, o2.has_value()},    {metric::systolic_bp, sbp.has_value()},
      {metric::heart_rate, hr.has_value()},       {metric::consciousness, acvpu_code.has_value()},
      {metric::temperature, temp.has_value()},
  };
  for (const auto& [m, ok] : present)
    if (!ok) r.missing.push_back(m);

  for (const auto* s : {&r.sub.resp_rate, &r.sub.spo2, &r.sub.o2_supplement, &r.sub.systolic_bp,
                        &r.sub.heart_rate, &r.sub.consciousness, &r.sub.temperature}) {
    if (!*s) continue;
    r.total += **s;
    if (**s == 3) r.any_single_3 = true;
  }

  r.complete = r.missing.empty();
  const news2_band proven = band_of(r.total, r.any_single_3);
  if (r.complete)
    r.band = proven;
  else if (proven == news2_band::high || proven == news2_band::medium ||
           proven == news2_band::low_medium)
    r.band = proven;  // missing parameters can only add points: never hide what is proven
  else
    r.band = news2_band::incomplete;
  return r;
}

qsofa_result compute_qsofa(const qsofa_inputs& in, epoch_ms now, const qsofa_policy& policy) {
  qsofa_result r;
  const auto rr = usable(in.resp_rate, now, policy.resp_rate_ms);
  const auto sbp = usable(in.systolic_bp, now, policy.systolic_bp_ms);
  const auto acvpu_code = usable(in.consciousness, now, policy.consciousness_ms);

  if (rr) r.resp_rate_met = round_whole(*rr) >= 22;
  else r.missing.push_back(metric::resp_rate);
  if (sbp) r.systolic_bp_met = round_whole(*sbp) <= 100;
  else r.missing.push_back(metric::systolic_bp);
  // GCS is not in the vocabulary; any ACVPU level below alert implies GCS < 15.
  if (acvpu_code) r.altered_mentation_met = round_whole(*acvpu_code) >= 1;
  else r.missing.push_back(metric::consciousness);

  for (const auto& met : {r.resp_rate_met, r.systolic_bp_met, r.altered_mentation_met})
    if (met.value_or(false)) ++r.score;
  r.complete = r.missing.empty();
  r.high_risk = r.score >= 2;  // a missing criterion can only add a point
  return r;
}

}  // namespace alert
