#include "engine/metric.hpp"

#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <set>
#include <string>

using namespace alert;

namespace {
// The expected vocabulary, written out independently of engine/metric.cpp. LOINC codes and
// UCUM units are those of ../shared/DOMAIN.md ("Vital-sign codes").
struct expected {
  const char* name;
  const char* unit;
  const char* loinc;
  double min;
  double max;
  metric_kind kind;
};
const expected table[] = {
    {"heart_rate", "/min", "8867-4", 0, 350, metric_kind::physiological},
    {"resp_rate", "/min", "9279-1", 0, 120, metric_kind::physiological},
    {"spo2", "%", "59408-5", 0, 100, metric_kind::physiological},
    {"systolic_bp", "mm[Hg]", "8480-6", 0, 350, metric_kind::physiological},
    {"diastolic_bp", "mm[Hg]", "8462-4", 0, 300, metric_kind::physiological},
    {"temperature", "Cel", "8310-5", 10, 47, metric_kind::physiological},
    {"consciousness", "{ACVPU}", "", 0, 4, metric_kind::physiological},
    {"o2_supplement", "{bool}", "", 0, 1, metric_kind::therapy},
    {"o2_flow", "L/min", "3151-8", 0, 80, metric_kind::therapy},
    {"glucose", "mmol/L", "15074-8", 0, 60, metric_kind::physiological},
    {"battery", "%", "", 0, 100, metric_kind::technical},
    {"signal_quality", "%", "", 0, 100, metric_kind::technical},
    {"lead_impedance", "kOhm", "", 0, 10000, metric_kind::technical},
    {"o2_cylinder", "%", "", 0, 100, metric_kind::technical},
};
}  // namespace

TEST_CASE("the vocabulary holds exactly the expected metrics with their units, codes and ranges") {
  REQUIRE(metrics().size() == std::size(table));
  for (const auto& e : table) {
    INFO(e.name);
    auto m = metric_from_name(e.name);
    REQUIRE(m.has_value());
    const auto& mi = info(*m);
    CHECK(mi.id == *m);
    CHECK(mi.name == e.name);
    CHECK(mi.unit == e.unit);
    CHECK(mi.loinc == e.loinc);
    CHECK(mi.min == e.min);
    CHECK(mi.max == e.max);
    CHECK(mi.kind == e.kind);
    CHECK_FALSE(mi.description.empty());
  }
}

TEST_CASE("metrics are in enum order so their index is stable in the journal") {
  for (std::size_t i = 0; i < metrics().size(); ++i)
    CHECK(static_cast<std::size_t>(metrics()[i].id) == i);
}

TEST_CASE("every metric accepts its range bounds and refuses values just outside") {
  for (const auto& mi : metrics()) {
    INFO(mi.name);
    CHECK(check_value(mi.id, mi.min).is_ok());
    CHECK(check_value(mi.id, mi.max).is_ok());
    CHECK(check_value(mi.id, mi.min - 0.5).code() == errc::value_out_of_range);
    CHECK(check_value(mi.id, mi.max + 0.5).code() == errc::value_out_of_range);
  }
}

TEST_CASE("NaN and infinities are not finite for every metric") {
  for (const auto& mi : metrics()) {
    INFO(mi.name);
    CHECK(check_value(mi.id, std::numeric_limits<double>::quiet_NaN()).code() == errc::not_finite);
    CHECK(check_value(mi.id, std::numeric_limits<double>::infinity()).code() == errc::not_finite);
    CHECK(check_value(mi.id, -std::numeric_limits<double>::infinity()).code() == errc::not_finite);
  }
}

TEST_CASE("coded metrics take only whole numbers") {
  CHECK(check_value(metric::consciousness, 2).is_ok());
  CHECK(check_value(metric::consciousness, 2.5).code() == errc::value_out_of_range);
  CHECK(check_value(metric::o2_supplement, 1).is_ok());
  CHECK(check_value(metric::o2_supplement, 0.5).code() == errc::value_out_of_range);
  CHECK(check_value(metric::heart_rate, 72.5).is_ok());
}

TEST_CASE("ACVPU levels are coded 0 alert to 4 unresponsive") {
  CHECK(static_cast<int>(acvpu::alert) == 0);
  CHECK(static_cast<int>(acvpu::confusion) == 1);
  CHECK(static_cast<int>(acvpu::voice) == 2);
  CHECK(static_cast<int>(acvpu::pain) == 3);
  CHECK(static_cast<int>(acvpu::unresponsive) == 4);
}

TEST_CASE("unknown metric names are not in the vocabulary") {
  CHECK_FALSE(metric_from_name("SpO2").has_value());
  CHECK_FALSE(metric_from_name("").has_value());
  CHECK_FALSE(metric_from_name("pulse").has_value());
}

TEST_CASE("every metric takes its canonical unit or no unit unchanged") {
  for (const auto& mi : metrics()) {
    INFO(mi.name);
    auto same = to_canonical(mi.id, 1.25, mi.unit);
    REQUIRE(same.has_value());
    CHECK(*same == 1.25);
    auto none = to_canonical(mi.id, 1.25, "");
    REQUIRE(none.has_value());
    CHECK(*none == 1.25);
  }
}

TEST_CASE("foreign units are converted to the canonical unit") {
  CHECK(*to_canonical(metric::temperature, 98.6, "[degF]") == Approx(37.0).margin(1e-9));
  CHECK(*to_canonical(metric::temperature, 32, "[degF]") == Approx(0.0).margin(1e-9));
  CHECK(*to_canonical(metric::systolic_bp, 16, "kPa") == Approx(120.01).margin(0.01));
  CHECK(*to_canonical(metric::diastolic_bp, 10.6658, "kPa") == Approx(80.0).margin(0.01));
  CHECK(*to_canonical(metric::glucose, 90, "mg/dL") == Approx(4.996).margin(0.001));
  CHECK(*to_canonical(metric::o2_flow, 2000, "mL/min") == Approx(2.0));
  CHECK(*to_canonical(metric::lead_impedance, 5000, "Ohm") == Approx(5.0));
  CHECK(*to_canonical(metric::heart_rate, 70, "{beats}/min") == 70);
  CHECK(*to_canonical(metric::resp_rate, 16, "{breaths}/min") == 16);
}

TEST_CASE("a unit that does not fit the metric is a unit mismatch naming the expected unit") {
  auto r = to_canonical(metric::spo2, 97, "mm[Hg]");
  REQUIRE_FALSE(r.has_value());
  CHECK(r.code() == errc::unit_mismatch);
  CHECK(r.error().message().find("'%'") != std::string::npos);
  CHECK(to_canonical(metric::temperature, 37, "[degF]x").code() == errc::unit_mismatch);
  CHECK(to_canonical(metric::heart_rate, 60, "kPa").code() == errc::unit_mismatch);
  // A conversion of one metric does not leak to another.
  CHECK(to_canonical(metric::heart_rate, 60, "[degF]").code() == errc::unit_mismatch);
}

TEST_CASE("metric names are unique") {
  std::set<std::string> names;
  for (const auto& mi : metrics()) CHECK(names.insert(std::string{mi.name}).second);
}
