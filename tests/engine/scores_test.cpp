#include "engine/scores.hpp"

#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

using namespace alert;

// Every expected value below is read off the NEWS2 chart (RCP 2017, Chart 1 and Chart 4) and
// the qSOFA definition (Sepsis-3) in ../shared/DOMAIN.md, written out by hand, never taken
// from engine/scores.cpp. Rounding (temperature to one decimal, the rest to integers, half
// away from zero) and the staleness defaults are those documented in docs/rules.md.

namespace {

struct band_case {
  double value;
  int score;
};

template <class F>
void check_table(const char* what, F score_of, const std::vector<band_case>& table) {
  for (const auto& c : table) {
    INFO(what << " " << c.value);
    CHECK(score_of(c.value) == c.score);
  }
}

constexpr epoch_ms now = 1'700'000'000'000;
constexpr epoch_ms minute = 60 * 1000;

vital at_now(double v) { return vital{v, now}; }

// A patient with every parameter normal and measured now: NEWS2 0.
news2_inputs healthy() {
  news2_inputs in;
  in.resp_rate = at_now(16);
  in.spo2 = at_now(98);
  in.o2_supplement = at_now(0);
  in.systolic_bp = at_now(125);
  in.heart_rate = at_now(72);
  in.consciousness = at_now(0);
  in.temperature = at_now(37.0);
  return in;
}

std::vector<std::string> names(const std::vector<metric>& ms) {
  std::vector<std::string> out;
  for (auto m : ms) out.emplace_back(info(m).name);
  return out;
}

using strings = std::vector<std::string>;

}  // namespace

// --- Chart 1, parameter by parameter ---------------------------------------------------

TEST_CASE("respiration rate scores per the chart on both sides of every band boundary") {
  check_table("rr", news2_resp_rate_score,
              {{0, 3}, {4, 3}, {8, 3}, {9, 1}, {11, 1}, {12, 0}, {20, 0}, {21, 2}, {24, 2},
               {25, 3}, {60, 3}});
}

TEST_CASE("respiration rate is rounded to an integer half away from zero before banding") {
  check_table("rr", news2_resp_rate_score,
              {{8.4, 3}, {8.5, 1}, {11.4, 1}, {11.5, 0}, {20.4, 0}, {20.5, 2}, {24.4, 2},
               {24.5, 3}});
}

TEST_CASE("spo2 scale 1 scores per the chart on both sides of every band boundary") {
  check_table("spo2", news2_spo2_scale1_score,
              {{50, 3}, {91, 3}, {92, 2}, {93, 2}, {94, 1}, {95, 1}, {96, 0}, {100, 0}});
}

TEST_CASE("spo2 scale 1 is rounded to an integer half away from zero before banding") {
  check_table("spo2", news2_spo2_scale1_score,
              {{91.4, 3}, {91.5, 2}, {93.4, 2}, {93.5, 1}, {95.4, 1}, {95.5, 0}});
}

TEST_CASE("spo2 scale 2 on air scores 0 from 88 upwards and the low bands as the chart says") {
  check_table("spo2 air", [](double v) { return news2_spo2_scale2_score(v, false); },
              {{50, 3}, {83, 3}, {84, 2}, {85, 2}, {86, 1}, {87, 1}, {88, 0}, {92, 0}, {93, 0},
               {94, 0}, {95, 0}, {96, 0}, {97, 0}, {100, 0}});
}

TEST_CASE("spo2 scale 2 on oxygen scores 1, 2, 3 from 93, 95, 97 and the low bands as on air") {
  check_table("spo2 o2", [](double v) { return news2_spo2_scale2_score(v, true); },
              {{50, 3}, {83, 3}, {84, 2}, {85, 2}, {86, 1}, {87, 1}, {88, 0}, {92, 0}, {93, 1},
               {94, 1}, {95, 2}, {96, 2}, {97, 3}, {100, 3}});
}

TEST_CASE("spo2 scale 2 is rounded to an integer half away from zero before banding") {
  check_table("spo2 o2", [](double v) { return news2_spo2_scale2_score(v, true); },
              {{83.4, 3}, {83.5, 2}, {87.4, 1}, {87.5, 0}, {92.4, 0}, {92.5, 1}, {96.4, 2},
               {96.5, 3}});
  check_table("spo2 air", [](double v) { return news2_spo2_scale2_score(v, false); },
              {{87.4, 1}, {87.5, 0}, {92.5, 0}, {99.9, 0}});
}

TEST_CASE("oxygen scores 2 and air scores 0") {
  CHECK(news2_o2_supplement_score(true) == 2);
  CHECK(news2_o2_supplement_score(false) == 0);
}

TEST_CASE("systolic blood pressure scores per the chart on both sides of every band boundary") {
  check_table("sbp", news2_systolic_bp_score,
              {{40, 3}, {90, 3}, {91, 2}, {100, 2}, {101, 1}, {110, 1}, {111, 0}, {219, 0},
               {220, 3}, {300, 3}});
}

TEST_CASE("systolic blood pressure is rounded to an integer half away from zero before banding") {
  check_table("sbp", news2_systolic_bp_score,
              {{90.4, 3}, {90.5, 2}, {100.4, 2}, {100.5, 1}, {110.4, 1}, {110.5, 0}, {219.4, 0},
               {219.5, 3}});
}

TEST_CASE("pulse scores per the chart on both sides of every band boundary") {
  check_table("hr", news2_heart_rate_score,
              {{20, 3}, {40, 3}, {41, 1}, {50, 1}, {51, 0}, {90, 0}, {91, 1}, {110, 1}, {111, 2},
               {130, 2}, {131, 3}, {220, 3}});
}

TEST_CASE("pulse is rounded to an integer half away from zero before banding") {
  check_table("hr", news2_heart_rate_score,
              {{40.4, 3}, {40.5, 1}, {50.4, 1}, {50.5, 0}, {90.4, 0}, {90.5, 1}, {110.4, 1},
               {110.5, 2}, {130.4, 2}, {130.5, 3}});
}

TEST_CASE("consciousness scores 0 when alert and 3 for new confusion, voice, pain or unresponsive") {
  check_table("acvpu", news2_consciousness_score, {{0, 0}, {1, 3}, {2, 3}, {3, 3}, {4, 3}});
}

TEST_CASE("temperature scores per the chart on both sides of every band boundary") {
  check_table("temp", news2_temperature_score,
              {{30.0, 3}, {35.0, 3}, {35.1, 1}, {36.0, 1}, {36.1, 0}, {38.0, 0}, {38.1, 1},
               {39.0, 1}, {39.1, 2}, {42.0, 2}});
}

TEST_CASE("temperature is rounded to one decimal half away from zero so the chart has no gaps") {
  // 35.05 and 38.05 are not exact in binary (35.05 is 35.04999...): they still round up.
  check_table("temp", news2_temperature_score,
              {{35.04, 3}, {35.05, 1}, {36.04, 1}, {36.05, 0}, {38.04, 0}, {38.05, 1},
               {39.04, 1}, {39.05, 2}});
}

TEST_CASE("a value a floating-point hair below a decimal half rounds as the half") {
  // The double just below 36.05 is 36.05 with an error no thermometer can make: 36.1 -> 0.
  CHECK(news2_temperature_score(std::nextafter(36.05, 0.0)) == 0);
  CHECK(news2_temperature_score(std::nextafter(39.05, 0.0)) == 2);
  CHECK(news2_resp_rate_score(std::nextafter(20.5, 0.0)) == 2);
  CHECK(news2_systolic_bp_score(std::nextafter(90.5, 0.0)) == 2);
}

// --- Whole patients ---------------------------------------------------------------------

TEST_CASE("a healthy patient scores 0, complete, band none") {
  const auto r = compute_news2(healthy(), now);
  CHECK(r.complete);
  CHECK(r.missing.empty());
  CHECK(r.total == 0);
  CHECK(r.band == news2_band::none);
  CHECK_FALSE(r.any_single_3);
  CHECK(r.sub.resp_rate == 0);
  CHECK(r.sub.spo2 == 0);
  CHECK(r.sub.o2_supplement == 0);
  CHECK(r.sub.systolic_bp == 0);
  CHECK(r.sub.heart_rate == 0);
  CHECK(r.sub.consciousness == 0);
  CHECK(r.sub.temperature == 0);
}

TEST_CASE("each parameter's sub-score lands in its own field and adds to the total") {
  auto in = healthy();
  in.resp_rate = at_now(22);     // 2
  in.spo2 = at_now(94);          // 1 (scale 1)
  in.o2_supplement = at_now(1);  // 2
  in.systolic_bp = at_now(95);   // 2
  in.heart_rate = at_now(45);    // 1
  in.consciousness = at_now(0);  // 0
  in.temperature = at_now(39.5); // 2
  const auto r = compute_news2(in, now);
  CHECK(r.complete);
  CHECK(r.sub.resp_rate == 2);
  CHECK(r.sub.spo2 == 1);
  CHECK(r.sub.o2_supplement == 2);
  CHECK(r.sub.systolic_bp == 2);
  CHECK(r.sub.heart_rate == 1);
  CHECK(r.sub.consciousness == 0);
  CHECK(r.sub.temperature == 2);
  CHECK(r.total == 10);
  CHECK_FALSE(r.any_single_3);
  CHECK(r.band == news2_band::high);
}

TEST_CASE("a patient normal but for a respiration rate of 25 scores 3, band low_medium") {
  auto in = healthy();
  in.resp_rate = at_now(25);
  const auto r = compute_news2(in, now);
  CHECK(r.complete);
  CHECK(r.total == 3);
  CHECK(r.any_single_3);
  CHECK(r.band == news2_band::low_medium);
}

TEST_CASE("new confusion alone scores 3, band low_medium") {
  auto in = healthy();
  in.consciousness = at_now(1);
  const auto r = compute_news2(in, now);
  CHECK(r.total == 3);
  CHECK(r.any_single_3);
  CHECK(r.band == news2_band::low_medium);
}

TEST_CASE("a total of 1 is band low") {
  auto in = healthy();
  in.heart_rate = at_now(95);  // 1
  const auto r = compute_news2(in, now);
  CHECK(r.total == 1);
  CHECK(r.band == news2_band::low);
}

TEST_CASE("a total of 4 with no single 3 is band low") {
  auto in = healthy();
  in.resp_rate = at_now(21);     // 2
  in.heart_rate = at_now(95);    // 1
  in.temperature = at_now(38.5); // 1
  const auto r = compute_news2(in, now);
  CHECK(r.total == 4);
  CHECK_FALSE(r.any_single_3);
  CHECK(r.band == news2_band::low);
}

TEST_CASE("a total of 4 containing a single 3 is band low_medium") {
  auto in = healthy();
  in.resp_rate = at_now(25);   // 3
  in.heart_rate = at_now(95);  // 1
  const auto r = compute_news2(in, now);
  CHECK(r.total == 4);
  CHECK(r.any_single_3);
  CHECK(r.band == news2_band::low_medium);
}

TEST_CASE("a total of 5 is band medium") {
  auto in = healthy();
  in.resp_rate = at_now(21);    // 2
  in.systolic_bp = at_now(95);  // 2
  in.heart_rate = at_now(95);   // 1
  const auto r = compute_news2(in, now);
  CHECK(r.total == 5);
  CHECK(r.band == news2_band::medium);
}

TEST_CASE("a total of 5 containing a single 3 is band medium, not low_medium") {
  auto in = healthy();
  in.resp_rate = at_now(25);     // 3
  in.o2_supplement = at_now(1);  // 2
  const auto r = compute_news2(in, now);
  CHECK(r.total == 5);
  CHECK(r.any_single_3);
  CHECK(r.band == news2_band::medium);
}

TEST_CASE("a total of 6 is band medium") {
  auto in = healthy();
  in.resp_rate = at_now(22);    // 2
  in.spo2 = at_now(93);         // 2
  in.heart_rate = at_now(115);  // 2
  const auto r = compute_news2(in, now);
  CHECK(r.total == 6);
  CHECK(r.band == news2_band::medium);
}

TEST_CASE("a total of 7 is band high") {
  auto in = healthy();
  in.resp_rate = at_now(22);     // 2
  in.spo2 = at_now(93);          // 2
  in.heart_rate = at_now(115);   // 2
  in.temperature = at_now(38.5); // 1
  const auto r = compute_news2(in, now);
  CHECK(r.total == 7);
  CHECK(r.band == news2_band::high);
}

TEST_CASE("the sickest possible patient on scale 1 scores exactly 20") {
  news2_inputs in;
  in.resp_rate = at_now(30);      // 3
  in.spo2 = at_now(85);           // 3 (scale 1: <=91)
  in.o2_supplement = at_now(1);   // 2
  in.systolic_bp = at_now(80);    // 3
  in.heart_rate = at_now(35);     // 3
  in.consciousness = at_now(4);   // 3
  in.temperature = at_now(34.0);  // 3
  const auto r = compute_news2(in, now);
  CHECK(r.complete);
  CHECK(r.total == 20);
  CHECK(r.any_single_3);
  CHECK(r.band == news2_band::high);
}

TEST_CASE("the sickest possible patient on scale 2 scores exactly 20, with SpO2 high on oxygen") {
  news2_inputs in;
  in.spo2_scale2 = true;
  in.resp_rate = at_now(30);      // 3
  in.spo2 = at_now(98);           // 3 (scale 2, >=97 on oxygen)
  in.o2_supplement = at_now(1);   // 2
  in.systolic_bp = at_now(80);    // 3
  in.heart_rate = at_now(35);     // 3
  in.consciousness = at_now(4);   // 3
  in.temperature = at_now(34.0);  // 3
  const auto r = compute_news2(in, now);
  CHECK(r.sub.spo2 == 3);
  CHECK(r.total == 20);
}

TEST_CASE("the per-patient scale 2 setting is what picks the SpO2 scale") {
  auto in = healthy();
  in.spo2 = at_now(90);
  CHECK(compute_news2(in, now).sub.spo2 == 3);  // scale 1: <=91
  in.spo2_scale2 = true;
  CHECK(compute_news2(in, now).sub.spo2 == 0);  // scale 2: 88-92
  in.spo2 = at_now(95);
  CHECK(compute_news2(in, now).sub.spo2 == 0);  // on air
  in.o2_supplement = at_now(1);
  const auto r = compute_news2(in, now);
  CHECK(r.sub.spo2 == 2);  // 95-96 on oxygen
  CHECK(r.total == 4);     // plus 2 for oxygen
}

// --- Staleness ---------------------------------------------------------------------------

TEST_CASE("a stale SpO2 makes the score incomplete and names spo2 as missing") {
  auto in = healthy();
  in.spo2 = vital{98, now - 15 * minute - 1};
  const auto r = compute_news2(in, now);
  CHECK_FALSE(r.complete);
  CHECK(names(r.missing) == strings{"spo2"});
  CHECK_FALSE(r.sub.spo2.has_value());
  CHECK(r.band == news2_band::incomplete);
}

TEST_CASE("a SpO2 exactly at its staleness limit or just before still counts") {
  auto in = healthy();
  in.spo2 = vital{98, now - 15 * minute};
  CHECK(compute_news2(in, now).complete);
  in.spo2 = vital{98, now - 15 * minute + 1};
  CHECK(compute_news2(in, now).complete);
}

TEST_CASE("each parameter goes stale at its documented default limit and not before") {
  struct expected_default {
    std::optional<vital> news2_inputs::*field;
    const char* name;
    epoch_ms limit;
  };
  const expected_default defaults[] = {
      {&news2_inputs::resp_rate, "resp_rate", 15 * minute},
      {&news2_inputs::spo2, "spo2", 15 * minute},
      {&news2_inputs::heart_rate, "heart_rate", 15 * minute},
      {&news2_inputs::systolic_bp, "systolic_bp", 60 * minute},
      {&news2_inputs::o2_supplement, "o2_supplement", 60 * minute},
      {&news2_inputs::consciousness, "consciousness", 4 * 60 * minute},
      {&news2_inputs::temperature, "temperature", 4 * 60 * minute},
  };
  for (const auto& d : defaults) {
    INFO(d.name);
    auto in = healthy();
    const double v = (in.*d.field)->value;
    in.*d.field = vital{v, now - d.limit};
    CHECK(compute_news2(in, now).complete);
    in.*d.field = vital{v, now - d.limit - 1};
    const auto r = compute_news2(in, now);
    CHECK_FALSE(r.complete);
    CHECK(names(r.missing) == strings{d.name});
  }
}

TEST_CASE("a value stamped after now counts as current") {
  auto in = healthy();
  in.temperature = vital{39.5, now + 10 * minute};
  const auto r = compute_news2(in, now);
  CHECK(r.complete);
  CHECK(r.sub.temperature == 2);
}

TEST_CASE("a ward can override a staleness limit") {
  auto in = healthy();
  in.temperature = vital{37.0, now - 8 * 60 * minute};
  CHECK_FALSE(compute_news2(in, now).complete);
  news2_policy twelve_hourly;
  twelve_hourly.temperature_ms = 12 * 60 * minute;
  CHECK(compute_news2(in, now, twelve_hourly).complete);
}

TEST_CASE("a negative staleness limit makes the parameter always stale, even when stamped now") {
  auto in = healthy();
  news2_policy p;
  p.heart_rate_ms = -1;
  const auto r = compute_news2(in, now, p);
  CHECK(names(r.missing) == strings{"heart_rate"});
}

TEST_CASE("an absent or non-finite value is missing") {
  auto in = healthy();
  in.resp_rate.reset();
  in.systolic_bp = at_now(std::numeric_limits<double>::quiet_NaN());
  in.temperature = at_now(std::numeric_limits<double>::infinity());
  const auto r = compute_news2(in, now);
  CHECK_FALSE(r.complete);
  CHECK(names(r.missing) == strings{"resp_rate", "systolic_bp", "temperature"});
  CHECK_FALSE(r.sub.resp_rate.has_value());
  CHECK_FALSE(r.sub.systolic_bp.has_value());
  CHECK_FALSE(r.sub.temperature.has_value());
}

TEST_CASE("with nothing known every parameter is missing, in chart order, and no band is given") {
  const auto r = compute_news2(news2_inputs{}, now);
  CHECK_FALSE(r.complete);
  CHECK(names(r.missing) == strings{"resp_rate", "spo2", "o2_supplement", "systolic_bp",
                                    "heart_rate", "consciousness", "temperature"});
  CHECK(r.total == 0);
  CHECK(r.band == news2_band::incomplete);
}

// --- A missing value never hides a high score -----------------------------------------------

TEST_CASE("a partial total of 7 is already band high though a parameter is missing") {
  auto in = healthy();
  in.resp_rate = at_now(22);    // 2
  in.spo2 = at_now(93);         // 2
  in.heart_rate = at_now(115);  // 2
  in.systolic_bp = at_now(105); // 1
  in.temperature.reset();
  const auto r = compute_news2(in, now);
  CHECK_FALSE(r.complete);
  CHECK(names(r.missing) == strings{"temperature"});
  CHECK(r.total == 7);
  CHECK(r.band == news2_band::high);
}

TEST_CASE("a partial total of 5 or 6 is already band medium though a parameter is missing") {
  auto in = healthy();
  in.resp_rate = at_now(21);    // 2
  in.systolic_bp = at_now(95);  // 2
  in.heart_rate = at_now(95);   // 1
  in.spo2.reset();
  auto r = compute_news2(in, now);
  CHECK_FALSE(r.complete);
  CHECK(r.total == 5);
  CHECK(r.band == news2_band::medium);
  in.heart_rate = at_now(115);  // 2
  r = compute_news2(in, now);
  CHECK(r.total == 6);
  CHECK(r.band == news2_band::medium);
}

TEST_CASE("a known single 3 is already band low_medium though a parameter is missing") {
  auto in = healthy();
  in.resp_rate = at_now(25);  // 3
  in.consciousness = vital{0, now - 5 * 60 * minute};
  const auto r = compute_news2(in, now);
  CHECK_FALSE(r.complete);
  CHECK(r.total == 3);
  CHECK(r.any_single_3);
  CHECK(r.band == news2_band::low_medium);
}

TEST_CASE("a partial total below 5 without a 3 proves nothing and is band incomplete") {
  auto in = healthy();
  in.resp_rate = at_now(21);     // 2
  in.heart_rate = at_now(95);    // 1
  in.temperature = at_now(38.5); // 1
  in.o2_supplement.reset();
  auto r = compute_news2(in, now);
  CHECK(r.total == 4);
  CHECK(r.band == news2_band::incomplete);  // not low: the missing oxygen could make it 6
  r = compute_news2(news2_inputs{}, now);
  CHECK(r.band == news2_band::incomplete);  // not none
}

TEST_CASE("on scale 2 a SpO2 of 93 or more with air or oxygen unknown has no sub-score") {
  auto in = healthy();
  in.spo2_scale2 = true;
  in.o2_supplement.reset();
  in.spo2 = at_now(97);  // 0 on air, 3 on oxygen
  auto r = compute_news2(in, now);
  CHECK_FALSE(r.sub.spo2.has_value());
  CHECK(names(r.missing) == strings{"o2_supplement"});
  CHECK(r.total == 0);
  in.spo2 = at_now(92.5);  // rounds to 93
  CHECK_FALSE(compute_news2(in, now).sub.spo2.has_value());
}

TEST_CASE("on scale 2 a SpO2 below 93 scores without knowing air or oxygen") {
  auto in = healthy();
  in.spo2_scale2 = true;
  in.o2_supplement.reset();
  in.spo2 = at_now(85);  // 2
  auto r = compute_news2(in, now);
  CHECK(r.sub.spo2 == 2);
  CHECK(r.total == 2);
  in.spo2 = at_now(92);  // 0
  CHECK(compute_news2(in, now).sub.spo2 == 0);
}

TEST_CASE("band names are stable strings") {
  CHECK(to_string(news2_band::incomplete) == "incomplete");
  CHECK(to_string(news2_band::none) == "none");
  CHECK(to_string(news2_band::low) == "low");
  CHECK(to_string(news2_band::low_medium) == "low_medium");
  CHECK(to_string(news2_band::medium) == "medium");
  CHECK(to_string(news2_band::high) == "high");
}

// --- qSOFA -------------------------------------------------------------------------------

namespace {
qsofa_inputs qsofa_normal() {
  qsofa_inputs in;
  in.resp_rate = at_now(16);
  in.systolic_bp = at_now(120);
  in.consciousness = at_now(0);
  return in;
}
}  // namespace

TEST_CASE("qsofa of a patient with no criterion met is 0, complete, not high risk") {
  const auto r = compute_qsofa(qsofa_normal(), now);
  CHECK(r.complete);
  CHECK(r.missing.empty());
  CHECK(r.score == 0);
  CHECK_FALSE(r.high_risk);
  CHECK(r.resp_rate_met == false);
  CHECK(r.systolic_bp_met == false);
  CHECK(r.altered_mentation_met == false);
}

TEST_CASE("qsofa counts a respiratory rate of 22 but not 21") {
  auto in = qsofa_normal();
  for (const auto& [rr, met] : std::vector<std::pair<double, bool>>{
           {21, false}, {22, true}, {21.4, false}, {21.5, true}, {40, true}}) {
    INFO("rr " << rr);
    in.resp_rate = at_now(rr);
    const auto r = compute_qsofa(in, now);
    CHECK(r.resp_rate_met == met);
    CHECK(r.score == (met ? 1 : 0));
  }
}

TEST_CASE("qsofa counts a systolic pressure of 100 but not 101") {
  auto in = qsofa_normal();
  for (const auto& [sbp, met] : std::vector<std::pair<double, bool>>{
           {100, true}, {101, false}, {100.4, true}, {100.5, false}, {70, true}}) {
    INFO("sbp " << sbp);
    in.systolic_bp = at_now(sbp);
    const auto r = compute_qsofa(in, now);
    CHECK(r.systolic_bp_met == met);
    CHECK(r.score == (met ? 1 : 0));
  }
}

TEST_CASE("qsofa counts any ACVPU level below alert as altered mentation") {
  auto in = qsofa_normal();
  for (const auto& [code, met] : std::vector<std::pair<double, bool>>{
           {0, false}, {1, true}, {2, true}, {3, true}, {4, true}}) {
    INFO("acvpu " << code);
    in.consciousness = at_now(code);
    const auto r = compute_qsofa(in, now);
    CHECK(r.altered_mentation_met == met);
    CHECK(r.score == (met ? 1 : 0));
  }
}

TEST_CASE("qsofa is high risk at 2 points and above, not at 1") {
  auto in = qsofa_normal();
  in.resp_rate = at_now(22);
  auto r = compute_qsofa(in, now);
  CHECK(r.score == 1);
  CHECK_FALSE(r.high_risk);
  in.systolic_bp = at_now(100);
  r = compute_qsofa(in, now);
  CHECK(r.score == 2);
  CHECK(r.high_risk);
  in.consciousness = at_now(1);
  r = compute_qsofa(in, now);
  CHECK(r.score == 3);
  CHECK(r.high_risk);
}

TEST_CASE("a partial qsofa of 2 is already high risk though a parameter is missing") {
  auto in = qsofa_normal();
  in.resp_rate.reset();
  in.systolic_bp = at_now(90);
  in.consciousness = at_now(1);
  const auto r = compute_qsofa(in, now);
  CHECK_FALSE(r.complete);
  CHECK(names(r.missing) == strings{"resp_rate"});
  CHECK_FALSE(r.resp_rate_met.has_value());
  CHECK(r.score == 2);
  CHECK(r.high_risk);
}

TEST_CASE("a partial qsofa of 1 is incomplete and not yet high risk") {
  auto in = qsofa_normal();
  in.systolic_bp = at_now(90);
  in.consciousness = vital{0, now - 4 * 60 * minute - 1};
  const auto r = compute_qsofa(in, now);
  CHECK_FALSE(r.complete);
  CHECK(names(r.missing) == strings{"consciousness"});
  CHECK(r.score == 1);
  CHECK_FALSE(r.high_risk);
}

TEST_CASE("qsofa parameters go stale at the NEWS2 default limits") {
  auto in = qsofa_normal();
  in.resp_rate = vital{16, now - 15 * minute};
  in.systolic_bp = vital{120, now - 60 * minute};
  in.consciousness = vital{0, now - 4 * 60 * minute};
  CHECK(compute_qsofa(in, now).complete);
  in.resp_rate = vital{16, now - 15 * minute - 1};
  in.systolic_bp = vital{120, now - 60 * minute - 1};
  in.consciousness = vital{0, now - 4 * 60 * minute - 1};
  const auto r = compute_qsofa(in, now);
  CHECK(names(r.missing) == strings{"resp_rate", "systolic_bp", "consciousness"});
  CHECK(r.score == 0);
}

TEST_CASE("a qsofa value stamped after now counts and a ward can override a limit") {
  auto in = qsofa_normal();
  in.resp_rate = vital{24, now + minute};
  CHECK(compute_qsofa(in, now).resp_rate_met == true);
  in.systolic_bp = vital{95, now - 2 * 60 * minute};
  CHECK_FALSE(compute_qsofa(in, now).systolic_bp_met.has_value());
  qsofa_policy p;
  p.systolic_bp_ms = 3 * 60 * minute;
  const auto r = compute_qsofa(in, now, p);
  CHECK(r.systolic_bp_met == true);
  CHECK(r.high_risk);
}
