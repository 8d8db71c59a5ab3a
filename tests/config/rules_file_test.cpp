#include "config/rules_file.hpp"

#include <catch2/catch.hpp>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "engine/entity.hpp"
#include "engine/simulation.hpp"
#include "tests/support/temp_dir.hpp"

using namespace alert;
using namespace alert::config;

namespace {

std::string listing(const rules_load& load) { return format_problems("rules.yaml", load.problems); }

// Whether a problem on `line` says `text`.
bool has_problem(const rules_load& load, int line, const std::string& text) {
  for (const auto& p : load.problems)
    if (p.line == line && p.message.find(text) != std::string::npos) return true;
  return false;
}

// A file holding only `rules_yaml` under "rules:", which starts on line 3.
rules_load parse_with_rules(const std::string& rules_yaml) { return parse_rules("version: 1\nrules:\n" + rules_yaml); }

// The one rule of a valid file.
rule only_rule(const std::string& rules_yaml) {
  auto load = parse_with_rules(rules_yaml);
  INFO(listing(load));
  REQUIRE(load.rules);
  REQUIRE(load.rules->rules.size() == 1);
  return load.rules->rules[0];
}

const rule_set& defaults() {
  static const rule_set rs = [] {
    auto load = parse_rules(default_rules_yaml());
    if (!load.rules) FAIL(listing(load));
    return *load.rules;
  }();
  return rs;
}

struct ward_outcome {
  std::map<std::string, std::set<std::string>> fired;  ///< rule id -> patients it fired for
  std::map<std::string, alert_priority> top;            ///< rule id -> highest priority reached
};

// Runs a simulated ward through the rules the way a node does: threshold and rate rules per
// device reading, scores per patient.
ward_outcome run_ward(const rule_set& rs, const sim::ward_options& wo, epoch_ms duration_ms) {
  constexpr epoch_ms t0 = 1'700'000'000'000;
  sim::ward ward{wo, t0};
  std::map<std::string, std::vector<rule_state>> devices;
  std::map<std::string, std::pair<patient_state, std::vector<rule_state>>> patients;
  ward_outcome out;
  auto note = [&](const alert_event& ev, const std::string& patient) {
    if (ev.type == alert_event_type::fired) out.fired[ev.after.rule].insert(patient);
    auto [it, fresh] = out.top.try_emplace(ev.after.rule, ev.after.priority);
    if (!fresh && ev.after.priority > it->second) it->second = ev.after.priority;
  };
  for (epoch_ms t = t0 + 1000; t <= t0 + duration_ms; t += 1000)
    for (const auto& in : ward.advance(t)) {
      const auto m = metric_from_name(in.metric);
      const auto dev = device_id::make(in.device);
      const auto pat = patient_id::make(in.patient.value_or(""));
      if (!m || !dev || !pat) FAIL("the simulator sent an unusable reading from " << in.device);
      const reading r{*dev, *pat, *m, in.value, in.ts, in.seq};
      auto& dstates = devices[in.device];
      dstates.resize(rs.rules.size());
      for (std::size_t i = 0; i < rs.rules.size(); ++i)
        for (const auto& ev : evaluate_reading(rs.effective(rs.rules[i], *pat), dstates[i], "d/" + in.device, r, *pat))
          note(ev, *in.patient);
      auto& [ps, pstates] = patients[*in.patient];
      pstates.resize(rs.rules.size());
      apply(ps, r);
      for (std::size_t i = 0; i < rs.rules.size(); ++i)
        for (const auto& ev : evaluate_patient(rs.rules[i], pstates[i], *pat, ps, rs.spo2_scale2(*pat, false),
                                               rs.staleness, in.ts, reading_ref{in.device, in.seq}))
          note(ev, *in.patient);
    }
  return out;
}

}  // namespace

// --- The default rules ---------------------------------------------------------------------

TEST_CASE("the default rules file parses with no problems") {
  auto load = parse_rules(default_rules_yaml());
  INFO(listing(load));
  CHECK(load.problems.empty());
  REQUIRE(load.rules);
}

TEST_CASE("the default rules are the ones docs/rules.md lists, with their kinds and priorities") {
  const std::vector<std::tuple<std::string, rule_kind, alert_priority, alert_kind>> expected{
      {"spo2_low", rule_kind::threshold, alert_priority::high, alert_kind::physiological},
      {"hr_high", rule_kind::threshold, alert_priority::medium, alert_kind::physiological},
      {"hr_low", rule_kind::threshold, alert_priority::high, alert_kind::physiological},
      {"rr_high", rule_kind::threshold, alert_priority::medium, alert_kind::physiological},
      {"rr_low", rule_kind::threshold, alert_priority::high, alert_kind::physiological},
      {"sbp_low", rule_kind::threshold, alert_priority::high, alert_kind::physiological},
      {"sbp_falling", rule_kind::rate, alert_priority::medium, alert_kind::physiological},
      {"temp_high", rule_kind::threshold, alert_priority::low, alert_kind::physiological},
      {"battery_low", rule_kind::threshold, alert_priority::low, alert_kind::technical},
      {"signal_quality_low", rule_kind::threshold, alert_priority::low, alert_kind::technical},
      {"o2_cylinder_low", rule_kind::threshold, alert_priority::medium, alert_kind::technical},
      {"device_silent", rule_kind::no_data, alert_priority::medium, alert_kind::technical},
      {"cuff_silent", rule_kind::no_data, alert_priority::low, alert_kind::technical},
      {"news2", rule_kind::news2, alert_priority::low, alert_kind::physiological},
      {"qsofa_high_risk", rule_kind::qsofa, alert_priority::medium, alert_kind::physiological},
  };
  const auto& rs = defaults();
  REQUIRE(rs.rules.size() == expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const auto& [id, kind, priority, kind_of_alert] = expected[i];
    INFO(id);
    CHECK(rs.rules[i].id == id);
    CHECK(rs.rules[i].kind == kind);
    CHECK(rs.rules[i].priority == priority);
    CHECK(rs.rules[i].kind_of_alert == kind_of_alert);
  }
  CHECK(rs.overrides.empty());
}

TEST_CASE("the default SpO2 rule fires below 88 percent after 15 s, at once below 85, and clears at 90") {
  // DOMAIN.md: lowering the limit 90 -> 88 cut SpO2 alarms by 63%; a 15 s delay cut 60%.
  const rule* r = defaults().find("spo2_low");
  REQUIRE(r);
  CHECK(r->what == metric::spo2);
  CHECK(r->dir == direction::below);
  CHECK(r->threshold == 88);
  CHECK(r->clear == 90.0);
  CHECK(r->for_ms == 15'000);
  CHECK(r->immediate == 85.0);
}

TEST_CASE("the default limits follow the NEWS2 chart's 3-point boundaries") {
  const auto& rs = defaults();
  auto limit = [&](const char* id) {
    const rule* r = rs.find(id);
    REQUIRE(r);
    return std::pair{r->dir, r->threshold};
  };
  CHECK(limit("hr_high") == std::pair{direction::above, 130.0});  // >= 131 scores 3
  CHECK(limit("hr_low") == std::pair{direction::below, 40.0});    // <= 40 scores 3
  CHECK(limit("rr_high") == std::pair{direction::above, 24.0});   // >= 25 scores 3
  CHECK(limit("rr_low") == std::pair{direction::below, 8.0});     // <= 8 scores 3
  CHECK(limit("sbp_low") == std::pair{direction::below, 90.0});   // <= 90 scores 3
  // Cuff pressure and temperature are intermittent: no delay, each value is a measurement.
  CHECK(rs.find("sbp_low")->for_ms == 0);
  CHECK(rs.find("temp_high")->for_ms == 0);
  const rule* falling = rs.find("sbp_falling");
  REQUIRE(falling);
  CHECK(falling->dir == direction::below);
  CHECK(falling->change == 30);
  CHECK(falling->window_ms == 10 * 60'000);
  CHECK(rs.find("device_silent")->ttl_ms == 2 * 60'000);
  CHECK(rs.find("device_silent")->device_kinds ==
        std::vector<device_kind>{device_kind::oximeter, device_kind::monitor, device_kind::oxygen});
  CHECK(rs.find("cuff_silent")->ttl_ms == 2 * 3'600'000);
  CHECK(rs.find("cuff_silent")->device_kinds == std::vector<device_kind>{device_kind::bp_cuff});
  // One NEWS2 alert from the low-medium band up, its priority following the band; a minute
  // of persistence against noise on chart boundaries, five minutes clear against flapping.
  const rule* news2 = rs.find("news2");
  REQUIRE(news2);
  CHECK(news2->min_band == news2_band::low_medium);
  CHECK(news2->for_ms == 60'000);
  CHECK(news2->clear_for_ms == 5 * 60'000);
  CHECK(news2->latching);
  CHECK(rs.find("qsofa_high_risk")->for_ms == 60'000);
}

TEST_CASE("the default staleness limits are the engine's NEWS2 defaults, written out") {
  const auto& s = defaults().staleness;
  const news2_policy d;
  CHECK(s.resp_rate_ms == d.resp_rate_ms);
  CHECK(s.spo2_ms == d.spo2_ms);
  CHECK(s.heart_rate_ms == d.heart_rate_ms);
  CHECK(s.systolic_bp_ms == d.systolic_bp_ms);
  CHECK(s.o2_supplement_ms == d.o2_supplement_ms);
  CHECK(s.consciousness_ms == d.consciousness_ms);
  CHECK(s.temperature_ms == d.temperature_ms);
}

TEST_CASE("a healthy simulated ward raises no physiological alert in an hour with the default rules") {
  sim::ward_options wo;
  wo.patients = 20;
  wo.seed = 7;
  wo.deteriorating_at_start = 0;
  wo.deteriorations_per_hour = 0;
  wo.silences_per_hour = 0;
  wo.low_battery_fraction = 0;
  const auto outcome = run_ward(defaults(), wo, 60 * 60'000);
  for (const auto& [id, who] : outcome.fired) {
    const rule* r = defaults().find(id);
    REQUIRE(r);
    INFO(id << " fired for " << who.size() << " patients");
    // Oxygen cylinders run down in the simulator by design: a technical alert is right.
    CHECK(r->kind_of_alert == alert_kind::technical);
  }
}

TEST_CASE("deteriorating simulated patients trip SpO2, respiratory rate, BP and NEWS2 rules within ten minutes") {
  sim::ward_options wo;
  wo.patients = 12;
  wo.seed = 7;
  wo.deteriorating_at_start = 12;  // every one, from the start; worst at 10 min
  wo.silences_per_hour = 0;
  wo.low_battery_fraction = 0;
  auto outcome = run_ward(defaults(), wo, 10 * 60'000);
  // SpO2 -14, RR +12, SBP -45 over ten minutes: every patient ends below 88% and falls by
  // 45 mm[Hg]; the NEWS2 alert reaches the high band.
  for (const char* id : {"spo2_low", "sbp_falling", "news2"}) {
    INFO(id);
    CHECK(outcome.fired[id].size() >= 10);
  }
  // RR ends at 24-30 (from 12-18) with noise; rr_high needs a full minute above 24 with no
  // dip (the limit, not the clear value, applies during the delay), so patients who end
  // near 24 rightly stay quiet.
  CHECK(outcome.fired["rr_high"].size() >= 5);
  CHECK(outcome.top["news2"] == alert_priority::high);
}

// --- Field mapping -------------------------------------------------------------------------

TEST_CASE("a threshold rule carries every field into the engine rule") {
  const auto r = only_rule(R"(  - id: spo2_low
    kind: threshold
    metric: spo2
    below: 88
    clear: 90.5
    for: 15s
    clear_for: 1m
    immediate: 85
    priority: high
    alert: advisory
    latching: true
    description: "SpO2 low"
)");
  CHECK(r.id == "spo2_low");
  CHECK(r.kind == rule_kind::threshold);
  CHECK(r.what == metric::spo2);
  CHECK(r.dir == direction::below);
  CHECK(r.threshold == 88);
  CHECK(r.clear == 90.5);
  CHECK(r.for_ms == 15'000);
  CHECK(r.clear_for_ms == 60'000);
  CHECK(r.immediate == 85.0);
  CHECK(r.priority == alert_priority::high);
  CHECK(r.kind_of_alert == alert_kind::advisory);
  CHECK(r.latching);
  CHECK(r.description == "SpO2 low");
}

TEST_CASE("a threshold rule's optional fields default to no hysteresis, no delay and no second tier") {
  const auto r = only_rule("  - {id: hr_high, kind: threshold, metric: heart_rate, above: 130}\n");
  CHECK(r.dir == direction::above);
  CHECK(r.threshold == 130);
  CHECK_FALSE(r.clear.has_value());
  CHECK(r.for_ms == 0);
  CHECK(r.clear_for_ms == 0);
  CHECK_FALSE(r.immediate.has_value());
  CHECK(r.priority == alert_priority::medium);
  CHECK(r.kind_of_alert == alert_kind::physiological);
  CHECK_FALSE(r.latching);
  CHECK(r.description.empty());
}

TEST_CASE("a rate rule maps falls_by and rises_by onto direction and change and within onto the window") {
  const auto falls = only_rule("  - {id: sbp_falling, kind: rate, metric: systolic_bp, falls_by: 30, within: 10m}\n");
  CHECK(falls.kind == rule_kind::rate);
  CHECK(falls.what == metric::systolic_bp);
  CHECK(falls.dir == direction::below);
  CHECK(falls.change == 30);
  CHECK(falls.window_ms == 600'000);
  const auto rises = only_rule("  - {id: hr_rising, kind: rate, metric: heart_rate, rises_by: 25, within: 5m, for: 30s}\n");
  CHECK(rises.dir == direction::above);
  CHECK(rises.change == 25);
  CHECK(rises.window_ms == 300'000);
  CHECK(rises.for_ms == 30'000);
}

TEST_CASE("a no_data rule maps after onto the ttl and is a technical alert by default") {
  const auto r = only_rule("  - {id: device_silent, kind: no_data, after: 2m}\n");
  CHECK(r.kind == rule_kind::no_data);
  CHECK(r.ttl_ms == 120'000);
  CHECK(r.kind_of_alert == alert_kind::technical);
}

TEST_CASE("a news2 rule maps min_band, delays and the band's priority, and a qsofa rule needs only its kind") {
  const auto n = only_rule("  - {id: news2_high, kind: news2, min_band: high, for: 1m, clear_for: 5m}\n");
  CHECK(n.kind == rule_kind::news2);
  CHECK(n.min_band == news2_band::high);
  CHECK(n.for_ms == 60'000);
  CHECK(n.clear_for_ms == 300'000);
  CHECK(n.priority == alert_priority::high);
  const auto lm = only_rule("  - {id: n, kind: news2, min_band: low_medium}\n");
  CHECK(lm.min_band == news2_band::low_medium);
  CHECK(lm.priority == alert_priority::low);
  CHECK(only_rule("  - {id: n, kind: news2, min_band: medium}\n").priority == alert_priority::medium);
  const auto q = only_rule("  - {id: sepsis_risk, kind: qsofa, priority: high, clear_for: 2m}\n");
  CHECK(q.kind == rule_kind::qsofa);
  CHECK(q.priority == alert_priority::high);
  CHECK(q.clear_for_ms == 120'000);
  CHECK(q.kind_of_alert == alert_kind::physiological);
}

TEST_CASE("a news2 rule refuses a priority, since its alert takes the band's") {
  auto load = parse_with_rules("  - id: news2\n    kind: news2\n    min_band: medium\n    priority: high\n");
  INFO(listing(load));
  CHECK(has_problem(load, 6, "a news2 alert takes the priority of the band the score is in"));
}

TEST_CASE("the alert kind defaults to technical for equipment metrics and physiological otherwise") {
  for (const char* m : {"battery", "signal_quality", "lead_impedance", "o2_cylinder"}) {
    INFO(m);
    CHECK(only_rule(std::string{"  - {id: t, kind: threshold, metric: "} + m + ", below: 20}\n").kind_of_alert ==
          alert_kind::technical);
  }
  CHECK(only_rule("  - {id: t, kind: rate, metric: battery, falls_by: 20, within: 1h}\n").kind_of_alert ==
        alert_kind::technical);
  for (const char* m : {"heart_rate", "spo2", "glucose", "o2_flow"}) {
    INFO(m);
    CHECK(only_rule(std::string{"  - {id: t, kind: threshold, metric: "} + m + ", above: 20}\n").kind_of_alert ==
          alert_kind::physiological);
  }
  CHECK(only_rule("  - {id: t, kind: threshold, metric: battery, below: 20, alert: advisory}\n").kind_of_alert ==
        alert_kind::advisory);
  CHECK(only_rule("  - {id: t, kind: no_data, after: 1m, alert: physiological}\n").kind_of_alert ==
        alert_kind::physiological);
}

TEST_CASE("durations take whole numbers with ms, s, m or h, alone or combined") {
  auto delay = [](const std::string& d) {
    return only_rule("  - {id: t, kind: threshold, metric: spo2, below: 88, for: " + d + "}\n").for_ms;
  };
  CHECK(delay("0s") == 0);
  CHECK(delay("500ms") == 500);
  CHECK(delay("20s") == 20'000);
  CHECK(delay("15m") == 900'000);
  CHECK(delay("1h") == 3'600'000);
  CHECK(delay("1h30m") == 5'400'000);
  CHECK(delay("1m30s") == 90'000);
}

TEST_CASE("a number may be written as a YAML integer, decimal or quoted string") {
  CHECK(only_rule("  - {id: t, kind: threshold, metric: temperature, above: 38}\n").threshold == 38);
  CHECK(only_rule("  - {id: t, kind: threshold, metric: temperature, above: 38.5}\n").threshold == 38.5);
  CHECK(only_rule("  - {id: t, kind: threshold, metric: temperature, above: \"38.5\"}\n").threshold == 38.5);
}

TEST_CASE("staleness limits map onto the NEWS2 policy and unset ones keep the engine default") {
  auto load = parse_rules("version: 1\nstaleness:\n  spo2: 5m\n  temperature: 12h\nrules: []\n");
  INFO(listing(load));
  REQUIRE(load.rules);
  CHECK(load.rules->staleness.spo2_ms == 5 * 60'000);
  CHECK(load.rules->staleness.temperature_ms == 12 * 3'600'000);
  CHECK(load.rules->staleness.heart_rate_ms == news2_policy{}.heart_rate_ms);
  CHECK(load.rules->rules.empty());
}

// --- Validation ----------------------------------------------------------------------------

TEST_CASE("the version must be present and 1") {
  auto missing = parse_rules("rules: []\n");
  CHECK(has_problem(missing, 1, "no version"));
  CHECK_FALSE(missing.rules);
  auto text = parse_rules("version: one\nrules: []\n");
  CHECK(has_problem(text, 1, "version must be 1, got 'one'"));
  // Another version is a different format: the rest is not checked, so no noise follows.
  auto other = parse_rules("version: 2\nrules:\n  - id: X\n");
  INFO(listing(other));
  REQUIRE(other.problems.size() == 1);
  CHECK(has_problem(other, 1, "version 2 is not supported"));
}

TEST_CASE("a file without policies and routes has an empty escalation config") {
  auto load = parse_rules("version: 1\nrules: []\n");
  INFO(listing(load));
  REQUIRE(load.rules);
  REQUIRE(load.escalation);
  CHECK(load.escalation->policies.empty());
  CHECK(load.escalation->routes.empty());
  auto empty_lists = parse_rules("version: 1\nrules: []\npolicies: []\nroutes: []\n");
  INFO(listing(empty_lists));
  REQUIRE(empty_lists.escalation);
  CHECK(empty_lists.escalation->policies.empty());
}

TEST_CASE("an unknown top-level key is reported with the nearest known key") {
  auto load = parse_rules("version: 1\nrules: []\noverides: []\n");
  INFO(listing(load));
  CHECK(has_problem(load, 3, "unknown top-level key 'overides' (did you mean 'overrides'?)"));
}

TEST_CASE("a misspelt key in a rule is reported with the keys the rule takes") {
  auto load = parse_with_rules(R"(  - id: spo2_low
    kind: threshold
    metrc: spo2
    thresold: 88
)");
  INFO(listing(load));
  CHECK(has_problem(load, 5, "unknown key 'metrc' (did you mean 'metric'?)"));
  CHECK(has_problem(load, 6, "rule 'spo2_low': unknown key 'thresold'"));
  CHECK(has_problem(load, 6, "below: N or above: N"));
  CHECK(has_problem(load, 6, "a threshold rule takes id, kind, metric, below, above, clear, for, clear_for, immediate"));
  CHECK_FALSE(load.rules);
}

TEST_CASE("a key that belongs to another kind of rule is reported as not applying") {
  auto load = parse_with_rules(R"(  - id: sbp_falling
    kind: rate
    metric: systolic_bp
    falls_by: 30
    within: 10m
    clear: 100
  - id: sepsis
    kind: qsofa
    metric: resp_rate
  - {id: silent, kind: no_data, after: 2m, for: 1m}
)");
  INFO(listing(load));
  CHECK(has_problem(load, 8, "'clear' does not apply to a rate rule"));
  CHECK(has_problem(load, 11, "'metric' does not apply to a qsofa rule"));
  CHECK(has_problem(load, 12, "'for' does not apply to a no_data rule"));
}

TEST_CASE("a key given twice in a rule is reported") {
  auto load = parse_with_rules("  - id: a\n    kind: threshold\n    metric: spo2\n    below: 88\n    below: 85\n");
  INFO(listing(load));
  CHECK(has_problem(load, 7, "'below' appears twice (first at line 6)"));
}

TEST_CASE("a duplicate rule id is reported at the second rule with the line of the first") {
  auto load = parse_with_rules(R"(  - {id: spo2_low, kind: threshold, metric: spo2, below: 88}
  - {id: hr_high, kind: threshold, metric: heart_rate, above: 130}
  - {id: spo2_low, kind: threshold, metric: spo2, below: 85}
)");
  INFO(listing(load));
  REQUIRE(load.problems.size() == 1);
  CHECK(has_problem(load, 5, "already used by the rule at line 3"));
}

TEST_CASE("rule ids are 1 to 64 lowercase letters, digits or underscores") {
  CHECK(has_problem(parse_with_rules("  - {id: SpO2-low, kind: qsofa}\n"), 3, "id 'SpO2-low' must be 1 to 64"));
  CHECK(has_problem(parse_with_rules("  - {id: '', kind: qsofa}\n"), 3, "must be 1 to 64"));
  CHECK(has_problem(parse_with_rules("  - {id: " + std::string(65, 'a') + ", kind: qsofa}\n"), 3, "must be 1 to 64"));
  CHECK(parse_with_rules("  - {id: " + std::string(64, 'a') + ", kind: qsofa}\n").rules);
  CHECK(has_problem(parse_with_rules("  - {kind: qsofa}\n"), 3, "rule #1 has no id"));
}

TEST_CASE("an unknown metric is reported with the vocabulary") {
  auto load = parse_with_rules("  - id: a\n    kind: threshold\n    metric: sp02\n    below: 88\n");
  INFO(listing(load));
  CHECK(has_problem(load, 5, "unknown metric 'sp02' (did you mean 'spo2'?)"));
  CHECK(has_problem(load, 5, "heart_rate, resp_rate, spo2, systolic_bp"));
}

TEST_CASE("an unknown kind, priority, alert kind or NEWS2 band is reported with the values allowed") {
  auto load = parse_with_rules(R"(  - id: a
    kind: treshold
  - id: b
    kind: qsofa
    priority: urgent
    alert: clinical
  - id: c
    kind: news2
    min_band: low
)");
  INFO(listing(load));
  CHECK(has_problem(load, 4, "unknown kind 'treshold' (did you mean 'threshold'?); it is one of threshold, rate"));
  CHECK(has_problem(load, 7, "unknown priority 'urgent'; it is one of high, medium or low"));
  CHECK(has_problem(load, 8, "unknown alert kind 'clinical'; it is one of physiological, technical or advisory"));
  CHECK(has_problem(load, 11, "unknown NEWS2 band 'low'"));
  CHECK(has_problem(load, 11, "low_medium, medium or high"));
}

TEST_CASE("each kind's required fields are reported when missing and conflicting ones when both given") {
  auto load = parse_with_rules(R"(  - id: no_kind
  - id: t1
    kind: threshold
  - id: t2
    kind: threshold
    metric: spo2
    below: 88
    above: 99
  - id: r1
    kind: rate
  - id: r2
    kind: rate
    metric: heart_rate
    falls_by: 20
    rises_by: 20
    within: 5m
  - id: s
    kind: no_data
  - id: n
    kind: news2
)");
  INFO(listing(load));
  CHECK(has_problem(load, 3, "rule 'no_kind' has no kind"));
  CHECK(has_problem(load, 4, "a threshold rule needs metric"));
  CHECK(has_problem(load, 4, "a threshold rule needs its limit: below: N or above: N"));
  CHECK(has_problem(load, 10, "one limit, below or above, not both"));
  CHECK(has_problem(load, 11, "a rate rule needs metric"));
  CHECK(has_problem(load, 11, "a rate rule needs the change: falls_by: N or rises_by: N"));
  CHECK(has_problem(load, 11, "a rate rule needs within"));
  CHECK(has_problem(load, 17, "falls_by or rises_by, not both"));
  CHECK(has_problem(load, 19, "a no_data rule needs after"));
  CHECK(has_problem(load, 21, "a news2 rule needs min_band"));
  CHECK(load.problems.size() == 10);
}

TEST_CASE("numbers outside what the metric can measure are reported") {
  auto load = parse_with_rules(R"(  - id: a
    kind: threshold
    metric: heart_rate
    above: 400
  - id: b
    kind: threshold
    metric: spo2
    below: 88
    clear: 101
    immediate: -1
  - id: c
    kind: threshold
    metric: spo2
    below: 0
  - id: d
    kind: threshold
    metric: spo2
    above: 100
  - id: e
    kind: rate
    metric: systolic_bp
    falls_by: 400
    within: 10m
  - id: f
    kind: rate
    metric: systolic_bp
    falls_by: 0
    within: 10m
)");
  INFO(listing(load));
  CHECK(has_problem(load, 6, "above (400) is outside what heart_rate can measure (0 to 350 /min)"));
  CHECK(has_problem(load, 11, "clear (101) is outside what spo2 can measure (0 to 100 %)"));
  CHECK(has_problem(load, 12, "immediate (-1) is outside what spo2 can measure"));
  CHECK(has_problem(load, 16, "below 0 can never fire"));
  CHECK(has_problem(load, 20, "above 100 can never fire"));
  CHECK(has_problem(load, 24, "falls_by (400) can never happen"));
  CHECK(has_problem(load, 29, "falls_by must be more than 0"));
}

TEST_CASE("a clear value on the wrong side of the limit is reported for both directions") {
  auto load = parse_with_rules(R"(  - id: spo2_low
    kind: threshold
    metric: spo2
    below: 88
    clear: 87
  - id: hr_high
    kind: threshold
    metric: heart_rate
    above: 130
    clear: 131
  - id: equal_is_fine
    kind: threshold
    metric: heart_rate
    above: 130
    clear: 130
)");
  INFO(listing(load));
  CHECK(has_problem(load, 7, "rule 'spo2_low': clear (87) must be at or above the limit (below 88) for a 'below' "
                             "rule, so the alert can clear"));
  CHECK(has_problem(load, 12, "rule 'hr_high': clear (131) must be at or below the limit (above 130)"));
  CHECK(load.problems.size() == 2);
}

TEST_CASE("an immediate tier that is not tighter than the limit is reported") {
  auto load = parse_with_rules(R"(  - id: spo2_low
    kind: threshold
    metric: spo2
    below: 88
    immediate: 88
  - id: hr_high
    kind: threshold
    metric: heart_rate
    above: 130
    immediate: 120
)");
  INFO(listing(load));
  CHECK(has_problem(load, 7, "immediate (88) must be below the limit (below 88)"));
  CHECK(has_problem(load, 12, "immediate (120) must be above the limit (above 130)"));
}

TEST_CASE("malformed, unitless and negative durations are reported with their line") {
  auto load = parse_with_rules(R"(  - {id: a, kind: threshold, metric: spo2, below: 88, for: 20}
  - {id: b, kind: threshold, metric: spo2, below: 88, for: -5s}
  - {id: c, kind: threshold, metric: spo2, below: 88, for: 1.5h}
  - {id: d, kind: threshold, metric: spo2, below: 88, for: 10 minutes}
  - {id: e, kind: threshold, metric: spo2, below: 88, for: 10d}
  - {id: f, kind: rate, metric: spo2, falls_by: 5, within: 0s}
  - {id: g, kind: no_data, after: 8d}
  - {id: h, kind: no_data, after: [2m]}
)");
  INFO(listing(load));
  CHECK(has_problem(load, 3, "for '20' has no unit"));
  CHECK(has_problem(load, 4, "for '-5s' is negative"));
  CHECK(has_problem(load, 5, "for '1.5h' is not a whole number"));
  CHECK(has_problem(load, 6, "for '10 minutes'"));
  CHECK(has_problem(load, 7, "unknown unit 'd'"));
  CHECK(has_problem(load, 8, "within must be longer than 0"));
  CHECK(has_problem(load, 9, "after '8d'"));
  CHECK(has_problem(load, 10, "after must be a duration such as 20s, 15m or 1h, got a list"));
  CHECK(load.problems.size() == 8);
}

TEST_CASE("values of the wrong YAML type are reported") {
  auto load = parse_with_rules(R"(  - id: a
    kind: threshold
    metric: spo2
    below: ninety
    clear: [90]
    latching: yes
    description: {text: x}
  - id: [b]
    kind: qsofa
  - id: c
    kind: threshold
    metric: spo2
    below:
)");
  INFO(listing(load));
  CHECK(has_problem(load, 6, "below must be a number (spo2 in %), got 'ninety'"));
  CHECK(has_problem(load, 7, "clear must be a number (spo2 in %), got a list"));
  CHECK(has_problem(load, 8, "latching must be true or false, got 'yes'"));
  CHECK(has_problem(load, 9, "description must be text, got a map"));
  CHECK(has_problem(load, 10, "id must be text, got a list"));
  CHECK(has_problem(load, 15, "below must be a number (spo2 in %), it has no value"));
  CHECK(has_problem(parse_rules("version: 1\nrules: {a: 1}\n"), 2, "rules must be a list"));
  CHECK(has_problem(parse_with_rules("  - just a rule\n"), 3, "rule #1 must be a map"));
}

TEST_CASE("a YAML syntax error is reported at its line with the parser's message") {
  auto indent = parse_rules("version: 1\nrules:\n  - id: a\n    kind: threshold\n   metric: spo2\n");
  INFO(listing(indent));
  REQUIRE(indent.problems.size() == 1);
  CHECK(indent.problems[0].line == 5);
  CHECK(has_problem(indent, 5, "YAML syntax: "));
  CHECK(has_problem(indent, 5, "check the indentation"));
  CHECK_FALSE(indent.rules);
  auto bracket = parse_rules("version: 1\nrules: [\n  {id: a, kind: qsofa}\n");
  INFO(listing(bracket));
  REQUIRE(bracket.problems.size() == 1);
  CHECK(bracket.problems[0].message.find("YAML syntax") != std::string::npos);
  auto tab = parse_rules("version: 1\nrules:\n\t- id: a\n");
  INFO(listing(tab));
  CHECK(has_problem(tab, 3, "YAML syntax: "));
}

TEST_CASE("an empty file, a file that is not a map and a second YAML document are reported") {
  auto empty = parse_rules("");
  REQUIRE(empty.problems.size() == 1);
  CHECK(empty.problems[0].message.find("empty") != std::string::npos);
  CHECK(parse_rules("# just a comment\n").problems.size() == 1);
  CHECK(has_problem(parse_rules("- version: 1\n"), 1, "must be a map"));
  auto two = parse_rules("version: 1\nrules: []\n---\nversion: 1\n");
  INFO(listing(two));
  CHECK(has_problem(two, 4, "more than one YAML document"));
}

TEST_CASE("every problem in a file is reported, in line order, and no rules are returned") {
  auto load = parse_rules(R"(version: 1
staleness:
  spo2: 15
  hr: 1h
rules:
  - id: spo2_low
    kind: threshold
    metric: spo2
    below: 88
    clear: 87
    thresold: 80
  - id: spo2_low
    kind: qsofa
  - id: silent
    kind: no_data
    after: -2m
overrides:
  - patient: "P 7"
routes: {}
)");
  INFO(listing(load));
  std::vector<int> lines;
  for (const auto& p : load.problems) lines.push_back(p.line);
  CHECK(lines == std::vector<int>{3, 4, 10, 11, 12, 16, 18, 19});
  CHECK_FALSE(load.rules);
}

// --- Escalation policies and routes -------------------------------------------------------

namespace {

// A valid file with two rules, `policies_yaml` from line 5 and then `routes_yaml`.
rules_load parse_escalation(const std::string& policies_yaml, const std::string& routes_yaml) {
  return parse_rules("version: 1\nrules:\n  - {id: spo2_low, kind: threshold, metric: spo2, below: 88}\n"
                     "  - {id: battery_low, kind: threshold, metric: battery, below: 20}\n" +
                     policies_yaml + routes_yaml);
}

const std::string one_policy = "policies:\n  - id: ward\n    levels:\n      - {targets: [nurse], timeout: 2m}\n";
const std::string catch_all = "routes:\n  - policy: ward\n";

alert_record alert_of(const std::string& rule, alert_priority p, alert_kind k, const std::string& patient = "P-1") {
  alert_record a;
  a.id = "p/" + patient + "/" + rule + "/1";
  a.rule = rule;
  a.patient = patient;
  a.priority = p;
  a.kind = k;
  return a;
}

// The single problem of a file that has exactly one.
const rules_problem& only_problem(const rules_load& load) {
  INFO(listing(load));
  REQUIRE_FALSE(load.rules);
  REQUIRE_FALSE(load.escalation);
  REQUIRE(load.problems.size() == 1);
  return load.problems[0];
}

}  // namespace

TEST_CASE("the default escalation routes high physiological, technical and other alerts to their policies") {
  auto load = parse_rules(default_rules_yaml());
  INFO(listing(load));
  REQUIRE(load.escalation);
  const auto& esc = *load.escalation;
  REQUIRE(esc.policies.size() == 3);
  REQUIRE(esc.routes.size() == 3);
  CHECK_FALSE(esc.routes.back().priority);
  CHECK_FALSE(esc.routes.back().kind);
  CHECK_FALSE(esc.routes.back().rule);
  CHECK_FALSE(esc.routes.back().patient_prefix);

  const auto* rapid = esc.route(alert_of("spo2_low", alert_priority::high, alert_kind::physiological));
  REQUIRE(rapid);
  CHECK(rapid->id == "rapid");
  const auto* tech = esc.route(alert_of("device_silent", alert_priority::medium, alert_kind::technical));
  REQUIRE(tech);
  CHECK(tech->id == "tech");
  const auto* ward = esc.route(alert_of("temp_high", alert_priority::low, alert_kind::physiological));
  REQUIRE(ward);
  CHECK(ward->id == "ward");
  const auto* medium = esc.route(alert_of("hr_high", alert_priority::medium, alert_kind::physiological));
  REQUIRE(medium);
  CHECK(medium->id == "ward");
}

TEST_CASE("the default escalation policies have the levels, repeats and timeouts the file comments give") {
  auto load = parse_rules(default_rules_yaml());
  REQUIRE(load.escalation);
  const auto& esc = *load.escalation;
  const auto* ward = esc.find("ward");
  REQUIRE(ward);
  REQUIRE(ward->levels.size() == 2);
  CHECK(ward->levels[0].targets == std::vector<std::string>{"ward-nurse"});
  CHECK(ward->levels[0].timeout_ms == 2 * 60'000);
  CHECK(ward->levels[1].targets == std::vector<std::string>{"charge-nurse"});
  CHECK(ward->levels[1].timeout_ms == 5 * 60'000);
  CHECK(ward->repeat == 1);
  CHECK(ward->ack_timeout_ms == 15 * 60'000);

  const auto* rapid = esc.find("rapid");
  REQUIRE(rapid);
  REQUIRE(rapid->levels.size() == 2);
  CHECK(rapid->levels[0].targets == std::vector<std::string>{"rapid-response"});
  CHECK(rapid->levels[0].timeout_ms == 60'000);
  CHECK(rapid->levels[1].targets == std::vector<std::string>{"ward-nurse", "charge-nurse"});
  CHECK(rapid->levels[1].timeout_ms == 2 * 60'000);
  CHECK(rapid->repeat == 3);
  CHECK(rapid->ack_timeout_ms == 0);

  const auto* tech = esc.find("tech");
  REQUIRE(tech);
  REQUIRE(tech->levels.size() == 2);
  CHECK(tech->levels[0].targets == std::vector<std::string>{"biomed"});
  CHECK(tech->levels[0].timeout_ms == 10 * 60'000);
  CHECK(tech->levels[1].targets == std::vector<std::string>{"ward-nurse"});
  CHECK(tech->levels[1].timeout_ms == 10 * 60'000);
  CHECK(tech->repeat == 0);
  for (const auto& p : esc.policies) {
    INFO(p.id);
    CHECK(p.redeliver_ms == 10'000);
    CHECK(p.redeliver_max_ms == 60'000);
  }
}

TEST_CASE("every policy and route field is read into the escalation config") {
  auto load = parse_escalation(R"(policies:
  - id: rapid
    levels:
      - targets: [rapid-response, "team@icu:1.a_b"]
        timeout: 1m30s
      - targets: [charge-nurse]
        timeout: 500ms
    repeat: 2
    ack_timeout: 15m
    redeliver: 5s
    redeliver_max: 2m
  - id: ward_3
    levels:
      - {targets: [ward3-nurse], timeout: 2m}
)",
                               R"(routes:
  - match: {priority: high, kind: physiological, rule: spo2_low, patient_prefix: W3-}
    policy: rapid
  - match: {kind: technical}
    policy: ward_3
  - match: {rule: battery_low}
    policy: rapid
  - match: {priority: low}
    policy: ward_3
  - match: {patient_prefix: "ICU"}
    policy: rapid
  - policy: ward_3
)");
  INFO(listing(load));
  REQUIRE(load.escalation);
  const auto& esc = *load.escalation;
  REQUIRE(esc.policies.size() == 2);
  const auto& rapid = esc.policies[0];
  CHECK(rapid.id == "rapid");
  REQUIRE(rapid.levels.size() == 2);
  CHECK(rapid.levels[0].targets == std::vector<std::string>{"rapid-response", "team@icu:1.a_b"});
  CHECK(rapid.levels[0].timeout_ms == 90'000);
  CHECK(rapid.levels[1].targets == std::vector<std::string>{"charge-nurse"});
  CHECK(rapid.levels[1].timeout_ms == 500);
  CHECK(rapid.repeat == 2);
  CHECK(rapid.ack_timeout_ms == 15 * 60'000);
  CHECK(rapid.redeliver_ms == 5'000);
  CHECK(rapid.redeliver_max_ms == 120'000);
  CHECK(esc.policies[1].id == "ward_3");

  REQUIRE(esc.routes.size() == 6);
  const auto& first = esc.routes[0];
  CHECK(first.priority == alert_priority::high);
  CHECK(first.kind == alert_kind::physiological);
  CHECK(first.rule == std::string{"spo2_low"});
  CHECK(first.patient_prefix == std::string{"W3-"});
  CHECK(first.policy == "rapid");
  CHECK(esc.routes[1].kind == alert_kind::technical);
  CHECK_FALSE(esc.routes[1].priority);
  CHECK(esc.routes[2].rule == std::string{"battery_low"});
  CHECK(esc.routes[3].priority == alert_priority::low);
  CHECK(esc.routes[4].patient_prefix == std::string{"ICU"});
  CHECK(esc.routes[5].policy == "ward_3");
  CHECK_FALSE(esc.routes[5].priority);
  CHECK_FALSE(esc.routes[5].kind);
  CHECK_FALSE(esc.routes[5].rule);
  CHECK_FALSE(esc.routes[5].patient_prefix);

  // The routes as escalation_config::route applies them, first match wins.
  auto policy_for = [&](const alert_record& a) {
    const auto* p = esc.route(a);
    return p ? p->id : std::string{"(none)"};
  };
  CHECK(policy_for(alert_of("spo2_low", alert_priority::high, alert_kind::physiological, "W3-7")) == "rapid");
  CHECK(policy_for(alert_of("spo2_low", alert_priority::high, alert_kind::physiological, "W4-7")) == "ward_3");
  CHECK(policy_for(alert_of("battery_low", alert_priority::low, alert_kind::technical)) == "ward_3");
  CHECK(policy_for(alert_of("battery_low", alert_priority::low, alert_kind::physiological)) == "rapid");
  CHECK(policy_for(alert_of("hr_high", alert_priority::low, alert_kind::physiological)) == "ward_3");
  CHECK(policy_for(alert_of("hr_high", alert_priority::medium, alert_kind::physiological, "ICU-2")) == "rapid");
  CHECK(policy_for(alert_of("hr_high", alert_priority::medium, alert_kind::advisory)) == "ward_3");
}

TEST_CASE("a policy's optional fields default to no repeat, no acknowledgement timeout and 10s-60s redelivery") {
  auto load = parse_escalation(one_policy, catch_all);
  INFO(listing(load));
  REQUIRE(load.escalation);
  REQUIRE(load.escalation->policies.size() == 1);
  const auto& p = load.escalation->policies[0];
  CHECK(p.repeat == 0);
  CHECK(p.ack_timeout_ms == 0);
  CHECK(p.redeliver_ms == 10'000);
  CHECK(p.redeliver_max_ms == 60'000);
  REQUIRE(load.escalation->routes.size() == 1);
  CHECK(load.escalation->route(alert_of("spo2_low", alert_priority::high, alert_kind::physiological))->id == "ward");
}

TEST_CASE("policies and routes may come in any order in the file, and before the rules") {
  auto load = parse_rules("version: 1\nroutes:\n  - match: {rule: spo2_low}\n    policy: ward\n  - policy: ward\n" +
                          one_policy + "rules:\n  - {id: spo2_low, kind: threshold, metric: spo2, below: 88}\n");
  INFO(listing(load));
  REQUIRE(load.escalation);
  CHECK(load.escalation->routes.size() == 2);
}

TEST_CASE("unknown keys in a policy, a level, a route and a match are reported with the nearest key") {
  auto load = parse_escalation(R"(policies:
  - id: ward
    level:
      - {targets: [nurse], timeout: 2m}
    repeats: 1
    ack_timout: 15m
  - id: rapid
    levels:
      - targets: [team]
        timeout: 1m
        timout: 2m
)",
                               R"(routes:
  - match: {priorty: high}
    policy: rapid
  - polcy: ward
    policy: ward
)");
  INFO(listing(load));
  CHECK(has_problem(load, 7, "policy 'ward': unknown key 'level' (did you mean 'levels'?); a policy takes id, levels"));
  CHECK(has_problem(load, 6, "policy 'ward' has no levels"));
  CHECK(has_problem(load, 9, "unknown key 'repeats' (did you mean 'repeat'?)"));
  CHECK(has_problem(load, 10, "unknown key 'ack_timout' (did you mean 'ack_timeout'?)"));
  CHECK(has_problem(load, 15, "policy 'rapid', level 1: unknown key 'timout' (did you mean 'timeout'?); a level takes "
                              "targets and timeout"));
  CHECK(has_problem(load, 17, "route #1, match: unknown key 'priorty' (did you mean 'priority'?); match takes "
                              "priority, kind, rule and patient_prefix"));
  CHECK(has_problem(load, 19, "route #2: unknown key 'polcy' (did you mean 'policy'?); a route takes match and "
                              "policy"));
  CHECK(load.problems.size() == 7);
  CHECK_FALSE(load.escalation);
  CHECK_FALSE(load.rules);
}

TEST_CASE("an unknown top-level key near policies or routes is reported with the suggestion") {
  auto load = parse_rules("version: 1\nrules: []\npolices: []\nroute: []\n");
  INFO(listing(load));
  CHECK(has_problem(load, 3, "unknown top-level key 'polices' (did you mean 'policies'?)"));
  CHECK(has_problem(load, 4, "unknown top-level key 'route' (did you mean 'routes'?)"));
}

TEST_CASE("policy ids are unique and written like rule ids") {
  auto dup = parse_escalation(one_policy + "  - id: ward\n    levels:\n      - {targets: [nurse], timeout: 2m}\n",
                              catch_all);
  const auto& p = only_problem(dup);
  CHECK(p.line == 9);
  CHECK(p.message.find("policy 'ward': the id is already used by the policy at line 6; policy ids must be unique") !=
        std::string::npos);

  for (const std::string& bad : std::vector<std::string>{"Ward", "ward-3", "ward 3", std::string(65, 'w')}) {
    INFO(bad);
    auto load = parse_escalation("policies:\n  - id: \"" + bad + "\"\n    levels:\n      - {targets: [n], timeout: 1m}\n",
                                 "routes:\n  - policy: x\n");
    CHECK(has_problem(load, 6, "policy #1: id '" + bad + "' must be 1 to 64 lowercase letters, digits or underscores"));
    // The route names no known policy: the invalid id is not registered.
    CHECK(has_problem(load, 10, "route #1: unknown policy 'x'"));
  }
  auto no_id = parse_escalation("policies:\n  - levels:\n      - {targets: [n], timeout: 1m}\n", "");
  CHECK(has_problem(no_id, 6, "policy #1 has no id"));
  const std::string longest(64, 'a');
  auto ok = parse_escalation("policies:\n  - id: " + longest + "\n    levels:\n      - {targets: [n], timeout: 1m}\n",
                             "routes:\n  - policy: " + longest + "\n");
  INFO(listing(ok));
  REQUIRE(ok.escalation);
  CHECK(ok.escalation->policies[0].id == longest);
}

TEST_CASE("a policy needs levels, a level needs targets and a timeout") {
  auto no_levels = parse_escalation("policies:\n  - id: ward\n    repeat: 1\n", catch_all);
  const auto& p1 = only_problem(no_levels);
  CHECK(p1.line == 6);
  CHECK(p1.message.find("policy 'ward' has no levels") != std::string::npos);

  auto empty_levels = parse_escalation("policies:\n  - id: ward\n    levels: []\n", catch_all);
  const auto& p2 = only_problem(empty_levels);
  CHECK(p2.line == 7);
  CHECK(p2.message.find("levels must be a list of at least one level") != std::string::npos);
  CHECK(p2.message.find("got an empty list") != std::string::npos);

  auto levels_map = parse_escalation("policies:\n  - id: ward\n    levels: {targets: [n]}\n", catch_all);
  CHECK(only_problem(levels_map).line == 7);

  auto no_targets = parse_escalation("policies:\n  - id: ward\n    levels:\n      - timeout: 2m\n", catch_all);
  const auto& p3 = only_problem(no_targets);
  CHECK(p3.line == 8);
  CHECK(p3.message.find("policy 'ward', level 1 has no targets") != std::string::npos);

  auto empty_targets =
      parse_escalation("policies:\n  - id: ward\n    levels:\n      - targets: []\n        timeout: 2m\n", catch_all);
  const auto& p4 = only_problem(empty_targets);
  CHECK(p4.line == 8);
  CHECK(p4.message.find("targets must be a list of at least one pager target") != std::string::npos);

  auto scalar_targets =
      parse_escalation("policies:\n  - id: ward\n    levels:\n      - targets: nurse\n        timeout: 2m\n", catch_all);
  CHECK(only_problem(scalar_targets).line == 8);

  auto no_timeout = parse_escalation("policies:\n  - id: ward\n    levels:\n      - {targets: [n]}\n", catch_all);
  const auto& p5 = only_problem(no_timeout);
  CHECK(p5.line == 8);
  CHECK(p5.message.find("policy 'ward', level 1 has no timeout") != std::string::npos);

  auto not_map = parse_escalation("policies:\n  - id: ward\n    levels:\n      - nurse\n", catch_all);
  const auto& p6 = only_problem(not_map);
  CHECK(p6.line == 8);
  CHECK(p6.message.find("level 1 must be a map") != std::string::npos);

  auto policy_not_map = parse_escalation("policies:\n  - ward\n", catch_all);
  CHECK(has_problem(policy_not_map, 6, "policy #1 must be a map"));
  CHECK(has_problem(policy_not_map, 8, "route #1: unknown policy 'ward'"));
}

TEST_CASE("targets are 1 to 64 letters, digits and - _ . : @, each once in a level") {
  for (const std::string& good : std::vector<std::string>{"a", "ward3-nurse", "Team_A.b:c@d", std::string(64, 'x')}) {
    INFO(good);
    auto load = parse_escalation("policies:\n  - id: ward\n    levels:\n      - targets: [\"" + good +
                                     "\"]\n        timeout: 1m\n",
                                 catch_all);
    INFO(listing(load));
    REQUIRE(load.escalation);
    CHECK(load.escalation->policies[0].levels[0].targets == std::vector<std::string>{good});
  }
  for (const std::string& bad : std::vector<std::string>{"", "*", "ward nurse", "ward/3", "nurse!", std::string(65, 'x')}) {
    INFO(bad);
    auto load = parse_escalation("policies:\n  - id: ward\n    levels:\n      - targets: [ok, \"" + bad +
                                     "\"]\n        timeout: 1m\n",
                                 catch_all);
    const auto& p = only_problem(load);
    CHECK(p.line == 8);
    CHECK(p.message.find("policy 'ward', level 1: target '" + bad + "' ") != std::string::npos);
  }
  auto twice = parse_escalation(
      "policies:\n  - id: ward\n    levels:\n      - targets:\n          - a\n          - a\n        timeout: 1m\n",
      catch_all);
  const auto& p = only_problem(twice);
  CHECK(p.line == 10);
  CHECK(p.message.find("target 'a' is listed twice") != std::string::npos);
  auto nested = parse_escalation("policies:\n  - id: ward\n    levels:\n      - {targets: [[a]], timeout: 1m}\n",
                                 catch_all);
  CHECK(only_problem(nested).message.find("a target must be a name") != std::string::npos);
}

TEST_CASE("timeouts must be longer than 0 and redeliver_max at least redeliver") {
  auto zero_level = parse_escalation("policies:\n  - id: ward\n    levels:\n      - {targets: [n], timeout: 0s}\n",
                                     catch_all);
  const auto& p1 = only_problem(zero_level);
  CHECK(p1.line == 8);
  CHECK(p1.message.find("timeout must be longer than 0") != std::string::npos);

  auto fields = [](const std::string& extra) {
    return parse_escalation("policies:\n  - id: ward\n    levels:\n      - {targets: [n], timeout: 1m}\n" + extra,
                            catch_all);
  };
  auto zero_ack = fields("    ack_timeout: 0s\n");
  const auto& p2 = only_problem(zero_ack);
  CHECK(p2.line == 9);
  CHECK(p2.message.find("ack_timeout must be longer than 0; leave it out") != std::string::npos);
  auto zero_redeliver = fields("    redeliver: 0ms\n");
  CHECK(only_problem(zero_redeliver).line == 9);
  auto zero_max = fields("    redeliver_max: 0s\n");
  CHECK(only_problem(zero_max).line == 9);
  auto unitless = fields("    ack_timeout: 15\n");
  CHECK(only_problem(unitless).message.find("has no unit") != std::string::npos);
  auto negative = fields("    redeliver: -5s\n");
  CHECK(only_problem(negative).message.find("is negative") != std::string::npos);

  auto inverted = fields("    redeliver: 30s\n    redeliver_max: 20s\n");
  const auto& p3 = only_problem(inverted);
  CHECK(p3.line == 10);
  CHECK(p3.message.find("redeliver_max (20s) is shorter than redeliver (30s)") != std::string::npos);
  auto over_default = fields("    redeliver: 2m\n");
  const auto& p4 = only_problem(over_default);
  CHECK(p4.line == 9);
  CHECK(p4.message.find("redeliver_max (1m, the default) is shorter than redeliver (2m)") != std::string::npos);
  auto equal = fields("    redeliver: 30s\n    redeliver_max: 30s\n");
  INFO(listing(equal));
  CHECK(equal.escalation);
}

TEST_CASE("repeat is a whole number from 0 to 100") {
  auto with_repeat = [](const std::string& v) {
    return parse_escalation("policies:\n  - id: ward\n    levels:\n      - {targets: [n], timeout: 1m}\n    repeat: " +
                                v + "\n",
                            catch_all);
  };
  for (const std::string& good : std::vector<std::string>{"0", "3", "100"}) {
    auto load = with_repeat(good);
    INFO(listing(load));
    REQUIRE(load.escalation);
    CHECK(load.escalation->policies[0].repeat == std::stoul(good));
  }
  for (const std::string& bad : std::vector<std::string>{"-1", "1.5", "two", "101", "[1]"}) {
    INFO(bad);
    auto load = with_repeat(bad);
    const auto& p = only_problem(load);
    CHECK(p.line == 9);
    CHECK(p.message.find("policy 'ward': repeat") != std::string::npos);
  }
}

TEST_CASE("a route must name a known policy, and its match known words and rules") {
  auto unknown_policy = parse_escalation(one_policy, "routes:\n  - policy: wrad\n");
  const auto& p1 = only_problem(unknown_policy);
  CHECK(p1.line == 10);
  CHECK(p1.message.find("route #1: unknown policy 'wrad' (did you mean 'ward'?); a route names a policy defined under "
                        "policies (ward)") != std::string::npos);

  auto no_policy = parse_escalation(one_policy, "routes:\n  - match: {priority: high}\n  - policy: ward\n");
  const auto& p2 = only_problem(no_policy);
  CHECK(p2.line == 10);
  CHECK(p2.message.find("route #1 has no policy") != std::string::npos);

  auto bad_words = parse_escalation(one_policy, R"(routes:
  - match: {priority: urgent}
    policy: ward
  - match: {kind: physiologic}
    policy: ward
  - match: {rule: spo2_lo}
    policy: ward
  - match: {patient_prefix: "/W3"}
    policy: ward
  - match: {}
    policy: ward
  - match: high
    policy: ward
  - policy: ward
)");
  INFO(listing(bad_words));
  CHECK(has_problem(bad_words, 10, "route #1, match: unknown priority 'urgent'; it is one of high, medium or low"));
  CHECK(has_problem(bad_words, 12, "route #2, match: unknown alert kind 'physiologic' (did you mean 'physiological'?)"));
  CHECK(has_problem(bad_words, 14, "route #3, match: unknown rule 'spo2_lo' (did you mean 'spo2_low'?); match: rule "
                                   "names a rule defined under rules"));
  CHECK(has_problem(bad_words, 16, "route #4, match: patient_prefix must start with a letter or digit"));
  CHECK(has_problem(bad_words, 18, "route #5: match must be a map of one or more of priority, kind, rule and "
                                   "patient_prefix"));
  CHECK(has_problem(bad_words, 18, "got an empty map; leave match out for the catch-all"));
  CHECK(has_problem(bad_words, 20, "route #6: match must be a map"));
  CHECK(bad_words.problems.size() == 6);
  CHECK_FALSE(bad_words.escalation);

  // A rule with problems of its own is still a rule a route may name: one report, at the rule.
  auto broken_rule = parse_rules("version: 1\nrules:\n  - {id: spo2_low, kind: threshold, metric: spo2}\n" + one_policy +
                                 "routes:\n  - match: {rule: spo2_low}\n    policy: ward\n  - policy: ward\n");
  const auto& p3 = only_problem(broken_rule);
  CHECK(p3.line == 3);

  auto not_map = parse_escalation(one_policy, "routes:\n  - ward\n  - policy: ward\n");
  CHECK(only_problem(not_map).message.find("route #1 must be a map") != std::string::npos);
}

TEST_CASE("the last route must be a catch-all and an earlier catch-all makes later routes unreachable") {
  auto last_matches = parse_escalation(one_policy, "routes:\n  - match: {priority: high}\n    policy: ward\n");
  const auto& p1 = only_problem(last_matches);
  CHECK(p1.line == 10);
  CHECK(p1.message.find("route #1 is the last route and has a match: the last route must have none, so that every "
                        "alert reaches a policy") != std::string::npos);

  auto early = parse_escalation(one_policy, R"(routes:
  - policy: ward
  - match: {kind: technical}
    policy: ward
  - policy: ward
)");
  const auto& p2 = only_problem(early);
  CHECK(p2.line == 10);
  CHECK(p2.message.find("route #1 has no match, so it takes every alert and the routes after it (from line 11) are "
                        "never used") != std::string::npos);

  auto both = parse_escalation(one_policy, "routes:\n  - policy: ward\n  - match: {kind: technical}\n    policy: ward\n");
  INFO(listing(both));
  CHECK(has_problem(both, 10, "route #1 has no match"));
  CHECK(has_problem(both, 11, "route #2 is the last route and has a match"));
  CHECK(both.problems.size() == 2);
}

TEST_CASE("policies without routes, or routes without policies, are reported") {
  auto no_routes = parse_escalation(one_policy, "");
  const auto& p1 = only_problem(no_routes);
  CHECK(p1.line == 5);
  CHECK(p1.message.find("there are policies but no routes: without routes no alert reaches a policy; add routes: "
                        "ending in a catch-all such as '- policy: ward'") != std::string::npos);

  auto empty_routes = parse_escalation(one_policy, "routes: []\n");
  const auto& p2 = only_problem(empty_routes);
  CHECK(p2.line == 9);
  CHECK(p2.message.find("routes is empty") != std::string::npos);

  auto no_policies = parse_escalation("", catch_all);
  const auto& p3 = only_problem(no_policies);
  CHECK(p3.line == 6);
  CHECK(p3.message.find("route #1: unknown policy 'ward'; a route names a policy defined under policies (there are "
                        "none)") != std::string::npos);

  auto routes_map = parse_escalation(one_policy, "routes: {policy: ward}\n");
  const auto& p4 = only_problem(routes_map);
  CHECK(p4.line == 9);
  CHECK(p4.message.find("routes must be a list of routes") != std::string::npos);

  auto policies_map = parse_escalation("policies: {id: ward}\n", "");
  const auto& p5 = only_problem(policies_map);
  CHECK(p5.line == 5);
  CHECK(p5.message.find("policies must be a list of escalation policies") != std::string::npos);
}

TEST_CASE("every problem in policies and routes is reported in one pass, in line order") {
  auto load = parse_escalation(R"(policies:
  - id: ward
    levels:
      - {targets: ["a b"], timeout: 0s}
  - id: ward
    levels: []
)",
                               R"(routes:
  - policy: rapid
  - match: {priority: hihg}
    policy: ward
)");
  INFO(listing(load));
  std::vector<int> lines;
  for (const auto& p : load.problems) lines.push_back(p.line);
  CHECK(lines == std::vector<int>{8, 8, 9, 10, 12, 12, 13, 13});
  CHECK_FALSE(load.escalation);
  CHECK_FALSE(load.rules);
}

// --- Overrides -----------------------------------------------------------------------------

namespace {
const std::string override_rules = R"(version: 1
rules:
  - {id: spo2_low, kind: threshold, metric: spo2, below: 88, clear: 90, for: 15s, immediate: 85}
  - {id: hr_high, kind: threshold, metric: heart_rate, above: 130}
  - {id: sbp_falling, kind: rate, metric: systolic_bp, falls_by: 30, within: 10m}
  - {id: news2, kind: news2, min_band: medium}
overrides:
)";
}  // namespace

TEST_CASE("overrides are read into the rule set per patient") {
  auto load = parse_rules(override_rules + R"(  - patient: P-0007
    spo2_scale2: true
    rules:
      spo2_low: {below: 86, clear: 88}
      hr_high: {above: 140}
  - patient: P-0008
    spo2_scale2: false
)");
  INFO(listing(load));
  REQUIRE(load.rules);
  REQUIRE(load.rules->overrides.size() == 2);
  const auto& o = load.rules->overrides[0];
  CHECK(o.patient == "P-0007");
  CHECK(o.spo2_scale2 == true);
  CHECK(o.thresholds == std::map<std::string, double>{{"spo2_low", 86}, {"hr_high", 140}});
  CHECK(o.clears == std::map<std::string, double>{{"spo2_low", 88}});
  CHECK(load.rules->overrides[1].spo2_scale2 == false);
  CHECK(load.rules->overrides[1].thresholds.empty());
}

TEST_CASE("overrides apply through rule_set::effective and spo2_scale2") {
  auto load = parse_rules(override_rules + R"(  - patient: P-0007
    spo2_scale2: true
    rules:
      spo2_low: {below: 86, clear: 88}
)");
  INFO(listing(load));
  REQUIRE(load.rules);
  const auto& rs = *load.rules;
  const rule* base = rs.find("spo2_low");
  REQUIRE(base);
  const auto p7 = rs.effective(*base, *patient_id::make("P-0007"));
  CHECK(p7.threshold == 86);
  CHECK(p7.clear == 88.0);
  CHECK(p7.immediate == 85.0);  // not overridden: the rule's
  CHECK(p7.for_ms == 15'000);
  const auto p8 = rs.effective(*base, *patient_id::make("P-0008"));
  CHECK(p8.threshold == 88);
  CHECK(p8.clear == 90.0);
  CHECK(rs.effective(*base, std::nullopt).threshold == 88);
  CHECK(rs.spo2_scale2(*patient_id::make("P-0007"), false));
  CHECK_FALSE(rs.spo2_scale2(*patient_id::make("P-0008"), false));
}

TEST_CASE("an override naming an unknown rule or a rule without a threshold is reported") {
  auto load = parse_rules(override_rules + R"(  - patient: P-0007
    rules:
      spo2_lo: {below: 86}
      sbp_falling: {below: 20}
      news2: {above: 6}
)");
  INFO(listing(load));
  CHECK(has_problem(load, 10, "unknown rule 'spo2_lo' (did you mean 'spo2_low'?)"));
  CHECK(has_problem(load, 11, "rule 'sbp_falling' is a rate rule; only threshold rules have limits"));
  CHECK(has_problem(load, 12, "rule 'news2' is a news2 rule"));
  CHECK_FALSE(load.rules);
}

TEST_CASE("an override must use the rule's own direction and known keys") {
  auto load = parse_rules(override_rules + R"(  - patient: P-0007
    rules:
      spo2_low: {above: 86}
      hr_high: {}
    thresholds: {spo2_low: 86}
)");
  INFO(listing(load));
  CHECK(has_problem(load, 10, "unknown key 'above'; an override of a 'below' rule takes below and clear"));
  CHECK(has_problem(load, 11, "the override changes nothing"));
  CHECK(has_problem(load, 12, "unknown key 'thresholds'; an override takes patient, spo2_scale2 and rules"));
}

TEST_CASE("an override whose limit crosses the rule's clear or immediate tier is reported") {
  auto load = parse_rules(override_rules + R"(  - patient: P-0007
    rules:
      spo2_low: {below: 84}
  - patient: P-0008
    rules:
      spo2_low: {below: 92}
  - patient: P-0009
    rules:
      spo2_low: {below: 86, clear: 85}
  - patient: P-0010
    rules:
      spo2_low: {below: 101}
      hr_high: {above: 140, clear: 150}
)");
  INFO(listing(load));
  CHECK(has_problem(load, 10, "immediate (85) must be below the limit (below 84)"));
  CHECK(has_problem(load, 13, "clear (90) must be at or above the limit (below 92)"));
  CHECK(has_problem(load, 16, "clear (85) must be at or above the limit (below 86)"));
  CHECK(has_problem(load, 19, "below (101) is outside what spo2 can measure"));
  CHECK(has_problem(load, 20, "clear (150) must be at or below the limit (above 140)"));
}

TEST_CASE("override patient ids are checked like every patient id and given once") {
  auto load = parse_rules(override_rules + R"(  - patient: "P 7"
    spo2_scale2: true
  - patient: P-0008
    spo2_scale2: yes
  - patient: P-0008
    spo2_scale2: true
  - spo2_scale2: true
)");
  INFO(listing(load));
  CHECK(has_problem(load, 8, "patient id"));
  CHECK(has_problem(load, 11, "spo2_scale2 must be true or false, got 'yes'"));
  CHECK(has_problem(load, 12, "already has overrides at line 10"));
  CHECK(has_problem(load, 14, "override #4 has no patient"));
}

TEST_CASE("an override of a rule that has problems of its own adds no second report") {
  auto load = parse_rules(R"(version: 1
rules:
  - {id: spo2_low, kind: threshold, metric: spo2, below: 88, clear: 80}
overrides:
  - patient: P-0007
    rules:
      spo2_low: {below: 86}
)");
  INFO(listing(load));
  REQUIRE(load.problems.size() == 1);
  CHECK(load.problems[0].line == 3);
}

// --- Files and output ----------------------------------------------------------------------

TEST_CASE("a rules file is loaded from disk and an unreadable one is one problem naming the path") {
  test::temp_dir dir;
  const auto path = dir.sub("rules.yaml");
  std::ofstream{path} << default_rules_yaml();
  auto load = load_rules_file(path);
  INFO(listing(load));
  REQUIRE(load.rules);
  CHECK(load.rules->rules.size() == defaults().rules.size());

  auto missing = load_rules_file(dir.sub("nope.yaml"));
  REQUIRE(missing.problems.size() == 1);
  CHECK(missing.problems[0].line == 0);
  CHECK(missing.problems[0].message.find(dir.sub("nope.yaml")) != std::string::npos);
  CHECK_FALSE(missing.rules);

  auto directory = load_rules_file(dir.str());
  REQUIRE(directory.problems.size() == 1);
  CHECK(directory.problems[0].line == 0);
}

TEST_CASE("problems are printed as FILE:LINE:COL: message lines") {
  const std::vector<rules_problem> ps{{12, 5, "rule 'a': bad"}, {0, 0, "cannot read"}, {3, 0, "no column"}};
  CHECK(format_problems("ward.yaml", ps) ==
        "ward.yaml:12:5: rule 'a': bad\nward.yaml: cannot read\nward.yaml:3: no column\n");
  CHECK(format_problems("x", {}).empty());
  auto load = parse_with_rules("  - id: a\n    kind: threshold\n    metric: spo2\n    below: 88\n    clear: 87\n");
  CHECK(format_problems("r.yaml", load.problems) ==
        "r.yaml:7:12: rule 'a': clear (87) must be at or above the limit (below 88) for a 'below' rule, so the alert "
        "can clear: a value from 87 to 88 would both raise and clear it\n");
}

TEST_CASE("a no_data rule may name the device kinds it watches, and only real kinds") {
  const auto r = only_rule("  - {id: s, kind: no_data, after: 5m, devices: [bp_cuff, oxygen]}\n");
  CHECK(r.device_kinds == std::vector<device_kind>{device_kind::bp_cuff, device_kind::oxygen});
  CHECK(watches(r, device_kind::bp_cuff));
  CHECK_FALSE(watches(r, device_kind::oximeter));
  auto bad = parse_rules("version: 1\nrules:\n  - id: s\n    kind: no_data\n    after: 5m\n    devices: [pump]\n");
  REQUIRE_FALSE(bad.rules.has_value());
  REQUIRE(bad.problems.size() == 1);
  CHECK(bad.problems[0].line == 6);
  CHECK(bad.problems[0].message.find("'pump' is not a device kind") != std::string::npos);
  auto not_list = parse_rules("version: 1\nrules:\n  - id: s\n    kind: no_data\n    after: 5m\n    devices: oximeter\n");
  CHECK_FALSE(not_list.rules.has_value());
  auto on_threshold = parse_rules(
      "version: 1\nrules:\n  - id: s\n    kind: threshold\n    metric: spo2\n    below: 88\n    devices: [oximeter]\n");
  CHECK_FALSE(on_threshold.rules.has_value());
}
