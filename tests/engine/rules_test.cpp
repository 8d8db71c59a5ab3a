#include "engine/rules.hpp"

#include <catch2/catch.hpp>

using namespace alert;

namespace {

constexpr epoch_ms t0 = 1'700'000'000'000;

rule spo2_low(epoch_ms for_ms = 0) {
  rule r;
  r.id = "spo2_low";
  r.kind = rule_kind::threshold;
  r.what = metric::spo2;
  r.dir = direction::below;
  r.threshold = 88;
  r.clear = 90;
  r.for_ms = for_ms;
  r.priority = alert_priority::high;
  return r;
}

reading spo2(double v, epoch_ms ts, std::uint64_t seq) {
  return reading{*device_id::make("oxi-1"), std::nullopt, metric::spo2, v, ts, seq};
}

const std::string ent = "d/oxi-1";
const std::optional<patient_id> p1 = *patient_id::make("P-1");

std::vector<alert_event_type> types(const std::vector<alert_event>& evs) {
  std::vector<alert_event_type> out;
  for (const auto& e : evs) out.push_back(e.type);
  return out;
}

}  // namespace

TEST_CASE("a threshold without delay fires on the first reading past the limit") {
  auto rl = spo2_low();
  rule_state st;
  CHECK(evaluate_reading(rl, st, ent, spo2(88, t0, 1), p1).empty());  // 88 is not below 88
  auto ev = evaluate_reading(rl, st, ent, spo2(84, t0 + 1000, 2), p1);
  REQUIRE(types(ev) == std::vector{alert_event_type::fired});
  const auto& a = ev[0].after;
  CHECK(a.id == "d/oxi-1/spo2_low/1");
  CHECK(a.state == alert_state::firing);
  CHECK(a.priority == alert_priority::high);
  CHECK(a.kind == alert_kind::physiological);
  CHECK(a.patient == "P-1");
  CHECK(a.device == "oxi-1");
  CHECK(a.summary == "spo2 84 % below 88 %");
  CHECK(a.fired_at == t0 + 1000);
  CHECK(ev[0].cause == std::vector{reading_ref{"oxi-1", 2}});
}

TEST_CASE("an alert clears only past the clear threshold (hysteresis)") {
  auto rl = spo2_low();
  rule_state st;
  evaluate_reading(rl, st, ent, spo2(87, t0, 1), p1);
  CHECK(evaluate_reading(rl, st, ent, spo2(89, t0 + 1000, 2), p1).empty());  // above 88, below clear 90
  REQUIRE(st.open.has_value());
  CHECK(st.open->condition);
  auto ev = evaluate_reading(rl, st, ent, spo2(90, t0 + 2000, 3), p1);
  REQUIRE(types(ev) == std::vector{alert_event_type::resolved});
  CHECK(ev[0].after.resolved_at == t0 + 2000);
  CHECK_FALSE(st.open.has_value());
}

TEST_CASE("a delayed condition is pending until it has held for the delay in event time") {
  auto rl = spo2_low(20'000);
  rule_state st;
  auto ev = evaluate_reading(rl, st, ent, spo2(86, t0, 1), p1);
  REQUIRE(types(ev) == std::vector{alert_event_type::pending});
  CHECK(st.open->state == alert_state::pending);
  CHECK(evaluate_reading(rl, st, ent, spo2(86, t0 + 19'999, 2), p1).empty());
  ev = evaluate_reading(rl, st, ent, spo2(87, t0 + 20'000, 3), p1);
  REQUIRE(types(ev) == std::vector{alert_event_type::fired});
  CHECK(ev[0].after.summary == "spo2 87 % below 88 % for 20 s");
  CHECK(ev[0].after.count == 3);
  CHECK(ev[0].after.worst_value == 86);
}

TEST_CASE("a pending condition that ends before the delay is cancelled and never fires") {
  auto rl = spo2_low(20'000);
  rule_state st;
  evaluate_reading(rl, st, ent, spo2(86, t0, 1), p1);
  auto ev = evaluate_reading(rl, st, ent, spo2(95, t0 + 5000, 2), p1);
  REQUIRE(types(ev) == std::vector{alert_event_type::cancelled});
  CHECK_FALSE(st.open.has_value());
  // The next episode is a new alert with the next id.
  ev = evaluate_reading(rl, st, ent, spo2(86, t0 + 60'000, 3), p1);
  REQUIRE(types(ev) == std::vector{alert_event_type::pending});
  CHECK(ev[0].after.id == "d/oxi-1/spo2_low/2");
}

TEST_CASE("the tighter second tier fires at once even while the delay runs") {
  auto rl = spo2_low(20'000);
  rl.immediate = 85;
  rule_state st;
  CHECK(types(evaluate_reading(rl, st, ent, spo2(87, t0, 1), p1)) == std::vector{alert_event_type::pending});
  auto ev = evaluate_reading(rl, st, ent, spo2(84, t0 + 2000, 2), p1);
  REQUIRE(types(ev) == std::vector{alert_event_type::fired});
  CHECK(ev[0].after.summary == "spo2 84 % below 85 % (no delay)");
  rule_state fresh;
  CHECK(types(evaluate_reading(rl, fresh, ent, spo2(80, t0, 1), p1)) == std::vector{alert_event_type::fired});
}

TEST_CASE("repeats update the one open alert and only a worse value is an event") {
  auto rl = spo2_low();
  rule_state st;
  evaluate_reading(rl, st, ent, spo2(86, t0, 1), p1);
  CHECK(evaluate_reading(rl, st, ent, spo2(87, t0 + 1000, 2), p1).empty());
  auto ev = evaluate_reading(rl, st, ent, spo2(82, t0 + 2000, 3), p1);
  REQUIRE(types(ev) == std::vector{alert_event_type::updated});
  CHECK(ev[0].after.id == "d/oxi-1/spo2_low/1");
  CHECK(ev[0].after.count == 3);
  CHECK(ev[0].after.worst_value == 82);
  CHECK(ev[0].after.first_value == 86);
  CHECK(ev[0].after.version == 2);  // fired, then this update: each event has its own version
  evaluate_reading(rl, st, ent, spo2(85, t0 + 3000, 4), p1);
  CHECK(st.open->last_value == 85);
  CHECK(st.open->worst_value == 82);
  CHECK(st.open->count == 4);
}

TEST_CASE("a latching alert stays open after its condition clears until it is acknowledged") {
  auto rl = spo2_low();
  rl.latching = true;
  rule_state st;
  evaluate_reading(rl, st, ent, spo2(84, t0, 1), p1);
  auto ev = evaluate_reading(rl, st, ent, spo2(97, t0 + 1000, 2), p1);
  REQUIRE(types(ev) == std::vector{alert_event_type::cleared});
  REQUIRE(st.open.has_value());
  CHECK(st.open->state == alert_state::firing);
  CHECK_FALSE(st.open->condition);
  CHECK(evaluate_reading(rl, st, ent, spo2(97, t0 + 2000, 3), p1).empty());
  ev = acknowledge(st, "nurse.kim", t0 + 5000);
  REQUIRE(types(ev) == std::vector{alert_event_type::acknowledged, alert_event_type::resolved});
  CHECK(ev[0].after.acked_by == "nurse.kim");
  CHECK_FALSE(st.open.has_value());
}

TEST_CASE("a latched alert whose condition returns is updated, not duplicated") {
  auto rl = spo2_low();
  rl.latching = true;
  rule_state st;
  evaluate_reading(rl, st, ent, spo2(84, t0, 1), p1);
  evaluate_reading(rl, st, ent, spo2(97, t0 + 1000, 2), p1);
  auto ev = evaluate_reading(rl, st, ent, spo2(86, t0 + 2000, 3), p1);
  REQUIRE(types(ev) == std::vector{alert_event_type::updated});
  CHECK(st.open->condition);
  CHECK(st.open->id == "d/oxi-1/spo2_low/1");
}

TEST_CASE("an acknowledged non-latching alert resolves when its condition clears") {
  auto rl = spo2_low();
  rule_state st;
  evaluate_reading(rl, st, ent, spo2(84, t0, 1), p1);
  REQUIRE(types(acknowledge(st, "dr.lee", t0 + 100)) == std::vector{alert_event_type::acknowledged});
  CHECK(st.open->state == alert_state::acknowledged);
  CHECK(acknowledge(st, "dr.lee", t0 + 200).empty());  // already acknowledged
  auto ev = evaluate_reading(rl, st, ent, spo2(95, t0 + 1000, 2), p1);
  REQUIRE(types(ev) == std::vector{alert_event_type::resolved});
  CHECK(ev[0].after.acked_by == "dr.lee");
}

TEST_CASE("a pending alert cannot be acknowledged and any open alert can be resolved by hand") {
  auto rl = spo2_low(20'000);
  rule_state st;
  evaluate_reading(rl, st, ent, spo2(86, t0, 1), p1);
  CHECK(acknowledge(st, "x", t0 + 1).empty());
  auto ev = resolve(st, "operator", t0 + 2);
  REQUIRE(types(ev) == std::vector{alert_event_type::resolved});
  CHECK_FALSE(st.open.has_value());
  CHECK(resolve(st, "operator", t0 + 3).empty());
}

TEST_CASE("a reading older than one already evaluated does not change the alert") {
  auto rl = spo2_low();
  rule_state st;
  evaluate_reading(rl, st, ent, spo2(95, t0 + 10'000, 5), p1);
  CHECK(evaluate_reading(rl, st, ent, spo2(80, t0, 4), p1).empty());
  CHECK_FALSE(st.open.has_value());
}

TEST_CASE("a rule only looks at its own metric") {
  auto rl = spo2_low();
  rule_state st;
  reading hr{*device_id::make("oxi-1"), std::nullopt, metric::heart_rate, 10, t0, 1};
  CHECK(evaluate_reading(rl, st, ent, hr, p1).empty());
}

TEST_CASE("an above rule fires above its limit and clears at or below its clear value") {
  rule rl;
  rl.id = "hr_high";
  rl.what = metric::heart_rate;
  rl.dir = direction::above;
  rl.threshold = 130;
  rl.clear = 120;
  rule_state st;
  auto hr = [](double v, epoch_ms ts, std::uint64_t seq) {
    return reading{*device_id::make("oxi-1"), std::nullopt, metric::heart_rate, v, ts, seq};
  };
  CHECK(evaluate_reading(rl, st, ent, hr(130, t0, 1), p1).empty());
  CHECK(types(evaluate_reading(rl, st, ent, hr(131, t0 + 1, 2), p1)) == std::vector{alert_event_type::fired});
  CHECK(evaluate_reading(rl, st, ent, hr(121, t0 + 2, 3), p1).empty());
  CHECK(types(evaluate_reading(rl, st, ent, hr(120, t0 + 3, 4), p1)) == std::vector{alert_event_type::resolved});
}

TEST_CASE("a rate rule fires on a fall larger than its change within the window") {
  rule rl;
  rl.id = "sbp_falling";
  rl.kind = rule_kind::rate;
  rl.what = metric::systolic_bp;
  rl.dir = direction::below;
  rl.change = 30;
  rl.window_ms = 10 * 60'000;
  rule_state st;
  auto sbp = [](double v, epoch_ms ts, std::uint64_t seq) {
    return reading{*device_id::make("bp-1"), std::nullopt, metric::systolic_bp, v, ts, seq};
  };
  CHECK(evaluate_reading(rl, st, "d/bp-1", sbp(150, t0, 1), p1).empty());
  CHECK(evaluate_reading(rl, st, "d/bp-1", sbp(125, t0 + 5 * 60'000, 2), p1).empty());  // fell 25
  auto ev = evaluate_reading(rl, st, "d/bp-1", sbp(118, t0 + 9 * 60'000, 3), p1);        // fell 32
  REQUIRE(types(ev) == std::vector{alert_event_type::fired});
  CHECK(ev[0].after.summary == "systolic_bp fell 32 mm[Hg] within 10 min (150 -> 118)");
  CHECK(ev[0].after.details.at("change") == 32);
  // Ten minutes later the 150 has left the window: the fall is no longer there.
  ev = evaluate_reading(rl, st, "d/bp-1", sbp(118, t0 + 20 * 60'000, 4), p1);
  REQUIRE(types(ev) == std::vector{alert_event_type::resolved});
}

TEST_CASE("a slow fall spread beyond the window does not fire a rate rule") {
  rule rl;
  rl.id = "sbp_falling";
  rl.kind = rule_kind::rate;
  rl.what = metric::systolic_bp;
  rl.change = 30;
  rl.window_ms = 10 * 60'000;
  rule_state st;
  for (int i = 0; i <= 12; ++i) {
    reading r{*device_id::make("bp-1"), std::nullopt, metric::systolic_bp, 150.0 - 5 * i, t0 + i * 5 * 60'000,
              static_cast<std::uint64_t>(i + 1)};
    CHECK(evaluate_reading(rl, st, "d/bp-1", r, p1).empty());  // 10 per 10 min
  }
}

TEST_CASE("a silent device raises a technical no-data alert that resolves when it speaks") {
  rule rl;
  rl.id = "device_silent";
  rl.kind = rule_kind::no_data;
  rl.ttl_ms = 120'000;
  rl.kind_of_alert = alert_kind::technical;
  rule_state st;
  CHECK(evaluate_silence(rl, st, ent, "oxi-1", p1, t0, t0 + 120'000).empty());
  auto ev = evaluate_silence(rl, st, ent, "oxi-1", p1, t0, t0 + 121'000);
  REQUIRE(types(ev) == std::vector{alert_event_type::fired});
  CHECK(ev[0].after.kind == alert_kind::technical);
  CHECK(ev[0].after.summary == "oxi-1 silent for 121 s (limit 2 min)");
  CHECK(evaluate_silence(rl, st, ent, "oxi-1", p1, t0, t0 + 200'000).empty());
  ev = evaluate_silence(rl, st, ent, "oxi-1", p1, t0 + 210'000, t0 + 211'000);
  REQUIRE(types(ev) == std::vector{alert_event_type::resolved});
}

TEST_CASE("only physiological alerts are inhibited while their device is silent") {
  auto rl = spo2_low();
  rule_state st;
  evaluate_reading(rl, st, ent, spo2(84, t0, 1), p1);
  auto ev = set_inhibited(st, true, t0 + 1);
  REQUIRE(types(ev) == std::vector{alert_event_type::inhibited});
  CHECK(st.open->inhibited);
  CHECK(set_inhibited(st, true, t0 + 2).empty());
  CHECK(types(set_inhibited(st, false, t0 + 3)) == std::vector{alert_event_type::uninhibited});
  rule tech = spo2_low();
  tech.kind_of_alert = alert_kind::technical;
  rule_state tst;
  evaluate_reading(tech, tst, ent, spo2(84, t0, 1), p1);
  CHECK(set_inhibited(tst, true, t0 + 1).empty());
}

namespace {
void put(patient_state& ps, metric m, double v, epoch_ms ts) {
  ps.vitals[static_cast<std::size_t>(m)] = patient_vital{v, ts, 1, "mon-1"};
}
}  // namespace

TEST_CASE("a NEWS2 rule fires at its band with the score and subscores in the details") {
  rule rl;
  rl.id = "news2_high";
  rl.kind = rule_kind::news2;
  rl.min_band = news2_band::high;
  rl.priority = alert_priority::high;
  patient_state ps;
  // RR 25 (3), SpO2 93 scale 1 (2), air (0), SBP 105 (1), HR 115 (2), alert (0), 38.5 (1) = 9
  put(ps, metric::resp_rate, 25, t0);
  put(ps, metric::spo2, 93, t0);
  put(ps, metric::o2_supplement, 0, t0);
  put(ps, metric::systolic_bp, 105, t0);
  put(ps, metric::heart_rate, 115, t0);
  put(ps, metric::consciousness, 0, t0);
  put(ps, metric::temperature, 38.5, t0);
  rule_state st;
  auto ev = evaluate_patient(rl, st, *p1, ps, false, news2_policy{}, t0 + 1000, reading_ref{"mon-1", 9});
  REQUIRE(types(ev) == std::vector{alert_event_type::fired});
  const auto& a = ev[0].after;
  CHECK(a.entity == "p/P-1");
  CHECK(a.id == "p/P-1/news2_high/1");
  CHECK(a.summary == "NEWS2 9 (high)");
  CHECK(a.details.at("score") == 9);
  CHECK(a.details.at("sub_resp_rate") == 3);
  CHECK(a.details.at("sub_spo2") == 2);
  CHECK(a.details.at("sub_heart_rate") == 2);
  CHECK(ev[0].cause == std::vector{reading_ref{"mon-1", 9}});
}

TEST_CASE("a NEWS2 rule does not fire below its band nor on an incomplete score that proves nothing") {
  rule rl;
  rl.id = "news2_medium";
  rl.kind = rule_kind::news2;
  rl.min_band = news2_band::medium;
  patient_state ps;
  put(ps, metric::resp_rate, 22, t0);  // 2
  put(ps, metric::heart_rate, 95, t0);  // 1
  rule_state st;
  CHECK(evaluate_patient(rl, st, *p1, ps, false, news2_policy{}, t0, reading_ref{"mon-1", 1}).empty());
  // Stale values make it incomplete too: an hour later with the 15 min default.
  put(ps, metric::spo2, 80, t0);         // 3
  put(ps, metric::systolic_bp, 85, t0);  // 3
  CHECK(types(evaluate_patient(rl, st, *p1, ps, false, news2_policy{}, t0 + 1, reading_ref{"mon-1", 2})) ==
        std::vector{alert_event_type::fired});  // partial 9 already proves medium or worse
}

TEST_CASE("a score counts a reading from a device whose clock runs behind another's") {
  rule rl;
  rl.id = "news2_high";
  rl.kind = rule_kind::news2;
  rl.min_band = news2_band::high;
  patient_state ps;
  // The oximeter's clock is ahead: its reading is evaluated first, at t0 + 5 s.
  put(ps, metric::spo2, 93, t0 + 5000);          // 2
  put(ps, metric::resp_rate, 26, t0);            // 3
  put(ps, metric::temperature, 39.5, t0);        // 2
  put(ps, metric::consciousness, 0, t0);         // 0
  put(ps, metric::o2_supplement, 0, t0);         // 0
  put(ps, metric::heart_rate, 90, t0);           // 0
  put(ps, metric::systolic_bp, 115, t0);         // 0: 7, high
  rule_state st;
  auto ev = evaluate_patient(rl, st, *p1, ps, false, news2_policy{}, t0 + 5000, reading_ref{"oxi-1", 1});
  REQUIRE(types(ev) == std::vector{alert_event_type::fired});
  // The monitor, 3 s behind, reports a pulse of 131 (3): 10 now, though its ts is older.
  put(ps, metric::heart_rate, 131, t0 + 2000);
  ev = evaluate_patient(rl, st, *p1, ps, false, news2_policy{}, t0 + 2000, reading_ref{"mon-1", 2});
  REQUIRE(types(ev) == std::vector{alert_event_type::updated});
  CHECK(ev[0].after.details.at("score") == 10);
  CHECK(ev[0].at == t0 + 5000);  // evaluated at the newest event time: time never runs back
}

TEST_CASE("a qSOFA rule fires at two criteria") {
  rule rl;
  rl.id = "sepsis_risk";
  rl.kind = rule_kind::qsofa;
  patient_state ps;
  put(ps, metric::resp_rate, 22, t0);
  put(ps, metric::systolic_bp, 101, t0);
  put(ps, metric::consciousness, 0, t0);
  rule_state st;
  CHECK(evaluate_patient(rl, st, *p1, ps, false, news2_policy{}, t0, reading_ref{"m", 1}).empty());
  put(ps, metric::systolic_bp, 100, t0 + 1);
  auto ev = evaluate_patient(rl, st, *p1, ps, false, news2_policy{}, t0 + 1, reading_ref{"m", 2});
  REQUIRE(types(ev) == std::vector{alert_event_type::fired});
  CHECK(ev[0].after.summary == "qSOFA 2: sepsis risk");
}

TEST_CASE("a silence covers only alerts matching every field it sets, until it expires") {
  alert_record a;
  a.patient = "P-1";
  a.device = "oxi-1";
  a.rule = "spo2_low";
  a.priority = alert_priority::high;
  silence s;
  s.patient = "P-1";
  s.rule = "spo2_low";
  s.until = t0 + 1000;
  CHECK(silences(s, a, t0));
  CHECK_FALSE(silences(s, a, t0 + 1000));  // expired: the alert resurfaces
  alert_record other = a;
  other.rule = "hr_high";
  CHECK_FALSE(silences(s, other, t0));     // never hides a different alert
  alert_record other_patient = a;
  other_patient.patient = "P-2";
  CHECK_FALSE(silences(s, other_patient, t0));
  silence by_priority;
  by_priority.priority = alert_priority::low;
  by_priority.until = t0 + 1000;
  CHECK_FALSE(silences(by_priority, a, t0));
  silence empty;
  empty.until = t0 + 1000;
  CHECK_FALSE(silences(empty, a, t0));     // no scope is not "everything"
  CHECK(is_silenced({empty, by_priority, s}, a, t0));
  CHECK_FALSE(is_silenced({empty, by_priority}, a, t0));
}

TEST_CASE("per-patient overrides change thresholds and settings for that patient only") {
  rule_set rs;
  rs.rules.push_back(spo2_low());
  patient_override o;
  o.patient = "P-7";
  o.spo2_scale2 = true;
  o.thresholds["spo2_low"] = 85;
  o.clears["spo2_low"] = 87;
  rs.overrides.push_back(o);
  const rule* base = rs.find("spo2_low");
  REQUIRE(base != nullptr);
  CHECK(rs.find("nope") == nullptr);
  auto p7 = rs.effective(*base, *patient_id::make("P-7"));
  CHECK(p7.threshold == 85);
  CHECK(p7.clear == 87.0);
  auto other = rs.effective(*base, *patient_id::make("P-8"));
  CHECK(other.threshold == 88);
  CHECK(rs.effective(*base, std::nullopt).threshold == 88);
  CHECK(rs.spo2_scale2(*patient_id::make("P-7"), false));
  CHECK_FALSE(rs.spo2_scale2(*patient_id::make("P-8"), false));
}

TEST_CASE("rule and alert enums have stable names that parse back") {
  for (auto p : {alert_priority::low, alert_priority::medium, alert_priority::high})
    CHECK(priority_from_string(to_string(p)) == p);
  for (auto k : {alert_kind::physiological, alert_kind::technical, alert_kind::advisory})
    CHECK(alert_kind_from_string(to_string(k)) == k);
  for (auto k : {rule_kind::threshold, rule_kind::rate, rule_kind::no_data, rule_kind::news2, rule_kind::qsofa})
    CHECK(rule_kind_from_string(to_string(k)) == k);
  CHECK(direction_from_string("below") == direction::below);
  CHECK(news2_band_from_string("low_medium") == news2_band::low_medium);
  CHECK_FALSE(priority_from_string("urgent").has_value());
  CHECK(to_string(alert_state::acknowledged) == "acknowledged");
  CHECK(to_string(alert_event_type::cleared) == "cleared");
}

TEST_CASE("with a clear delay an alert resolves only after its condition stayed absent that long") {
  auto rl = spo2_low();
  rl.clear_for_ms = 60'000;
  rule_state st;
  evaluate_reading(rl, st, ent, spo2(84, t0, 1), p1);
  CHECK(evaluate_reading(rl, st, ent, spo2(95, t0 + 10'000, 2), p1).empty());  // clear, timer starts
  CHECK(evaluate_reading(rl, st, ent, spo2(86, t0 + 20'000, 3), p1).empty());  // back: timer reset
  CHECK(evaluate_reading(rl, st, ent, spo2(95, t0 + 30'000, 4), p1).empty());
  CHECK(evaluate_reading(rl, st, ent, spo2(95, t0 + 89'999, 5), p1).empty());
  auto ev = evaluate_reading(rl, st, ent, spo2(95, t0 + 90'000, 6), p1);
  REQUIRE(types(ev) == std::vector{alert_event_type::resolved});
  CHECK(ev[0].after.id == "d/oxi-1/spo2_low/1");  // one alert for the whole episode
}

TEST_CASE("a NEWS2 alert takes its band's priority and only ever raises it") {
  rule rl;
  rl.id = "news2";
  rl.kind = rule_kind::news2;
  rl.min_band = news2_band::medium;
  rl.clear_for_ms = 60'000;
  patient_state ps;
  put(ps, metric::resp_rate, 22, t0);      // 2
  put(ps, metric::spo2, 94, t0);           // 1
  put(ps, metric::o2_supplement, 0, t0);   // 0
  put(ps, metric::systolic_bp, 120, t0);   // 0
  put(ps, metric::heart_rate, 95, t0);     // 1
  put(ps, metric::consciousness, 0, t0);   // 0
  put(ps, metric::temperature, 38.5, t0);  // 1 -> 5: medium
  rule_state st;
  auto ev = evaluate_patient(rl, st, *p1, ps, false, news2_policy{}, t0, reading_ref{"m", 1});
  REQUIRE(types(ev) == std::vector{alert_event_type::fired});
  CHECK(ev[0].after.priority == alert_priority::medium);
  put(ps, metric::resp_rate, 25, t0 + 1000);  // 3 -> 6, still medium, but a 3... total 6
  put(ps, metric::heart_rate, 115, t0 + 1000);  // 2 -> 7: high
  ev = evaluate_patient(rl, st, *p1, ps, false, news2_policy{}, t0 + 1000, reading_ref{"m", 2});
  REQUIRE(types(ev) == std::vector{alert_event_type::updated});
  CHECK(ev[0].after.priority == alert_priority::high);
  put(ps, metric::heart_rate, 95, t0 + 2000);  // back to 6: medium; priority stays high
  evaluate_patient(rl, st, *p1, ps, false, news2_policy{}, t0 + 2000, reading_ref{"m", 3});
  CHECK(st.open->priority == alert_priority::high);
}

TEST_CASE("a new alert under a silence is born silenced and resurfaces when the silence expires") {
  auto rl = spo2_low();
  rule_states states;
  silence s;
  s.id = "s-1";
  s.patient = "P-1";
  s.until = t0 + 60'000;
  std::vector<silence> all{s};
  auto ev = evaluate_reading(rl, states["spo2_low"], ent, spo2(84, t0, 1), p1);
  apply_silences(states, all, t0, ev);
  REQUIRE(types(ev) == std::vector{alert_event_type::fired});  // no extra event
  CHECK(ev[0].after.silenced);
  CHECK(states["spo2_low"].open->silenced);
  std::vector<alert_event> later;
  apply_silences(states, all, t0 + 30'000, later);
  CHECK(later.empty());
  apply_silences(states, all, t0 + 60'000, later);
  REQUIRE(types(later) == std::vector{alert_event_type::unsilenced});
  CHECK_FALSE(later[0].after.silenced);
  CHECK(later[0].after.version == 2);
}

TEST_CASE("a silence added later silences an open alert with an event and never another alert") {
  auto rl = spo2_low();
  rule hr;
  hr.id = "hr_high";
  hr.what = metric::heart_rate;
  hr.dir = direction::above;
  hr.threshold = 130;
  rule_states states;
  evaluate_reading(rl, states["spo2_low"], ent, spo2(84, t0, 1), p1);
  evaluate_reading(hr, states["hr_high"], ent,
                   reading{*device_id::make("oxi-1"), std::nullopt, metric::heart_rate, 150, t0, 2}, p1);
  silence s;
  s.rule = "spo2_low";
  s.until = t0 + 60'000;
  std::vector<alert_event> ev;
  apply_silences(states, {s}, t0 + 1, ev);
  REQUIRE(types(ev) == std::vector{alert_event_type::silenced});
  CHECK(ev[0].after.rule == "spo2_low");
  CHECK_FALSE(states["hr_high"].open->silenced);
}

TEST_CASE("a NEWS2 alert that rises while its delay runs fires with the band it has reached") {
  // Regression: seen in the demo as "NEWS2 15 (high)" fired with medium priority.
  rule rl;
  rl.id = "news2";
  rl.kind = rule_kind::news2;
  rl.min_band = news2_band::medium;
  rl.for_ms = 60'000;
  patient_state ps;
  put(ps, metric::resp_rate, 22, t0);      // 2
  put(ps, metric::spo2, 94, t0);           // 1
  put(ps, metric::o2_supplement, 0, t0);   // 0
  put(ps, metric::systolic_bp, 120, t0);   // 0
  put(ps, metric::heart_rate, 95, t0);     // 1
  put(ps, metric::consciousness, 0, t0);   // 0
  put(ps, metric::temperature, 38.5, t0);  // 1 -> 5: medium
  rule_state st;
  auto ev = evaluate_patient(rl, st, *p1, ps, false, news2_policy{}, t0, reading_ref{"m", 1});
  REQUIRE(types(ev) == std::vector{alert_event_type::pending});
  CHECK(ev[0].after.priority == alert_priority::medium);
  put(ps, metric::systolic_bp, 85, t0 + 60'000);  // 3 -> 8: high
  ev = evaluate_patient(rl, st, *p1, ps, false, news2_policy{}, t0 + 60'000, reading_ref{"m", 2});
  REQUIRE(types(ev) == std::vector{alert_event_type::fired});
  CHECK(ev[0].after.priority == alert_priority::high);
  CHECK(ev[0].after.summary == "NEWS2 8 (high)");
}

TEST_CASE("during the delay the limit applies, not the clear value") {
  // Regression: hysteresis held a pending condition, so 89 (above the 88 limit, below the
  // 90 clear value) fired "spo2 89 % below 88 %".
  auto rl = spo2_low(15'000);
  rule_state st;
  evaluate_reading(rl, st, ent, spo2(87, t0, 1), p1);
  auto ev = evaluate_reading(rl, st, ent, spo2(89, t0 + 20'000, 2), p1);
  REQUIRE(types(ev) == std::vector{alert_event_type::cancelled});
}
