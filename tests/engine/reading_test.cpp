#include "engine/reading.hpp"

#include <catch2/catch.hpp>
#include <limits>

using namespace alert;

namespace {
constexpr epoch_ms now = 1'700'000'000'000;
reading_input spo2(double v) {
  reading_input in;
  in.device = "oxi-1";
  in.metric = "spo2";
  in.value = v;
  in.ts = now - 1000;
  in.seq = 7;
  return in;
}
}  // namespace

TEST_CASE("a well-formed reading is accepted with its fields") {
  auto in = spo2(93);
  in.patient = "P-1";
  auto r = make_reading(in, now);
  REQUIRE(r.has_value());
  CHECK(r->device.str() == "oxi-1");
  REQUIRE(r->patient.has_value());
  CHECK(r->patient->str() == "P-1");
  CHECK(r->what == metric::spo2);
  CHECK(r->value == 93);
  CHECK(r->ts == now - 1000);
  CHECK(r->seq == 7);
}

TEST_CASE("a reading is converted to the canonical unit") {
  reading_input in;
  in.device = "therm-1";
  in.metric = "temperature";
  in.value = 98.6;
  in.unit = "[degF]";
  in.ts = now;
  auto r = make_reading(in, now);
  REQUIRE(r.has_value());
  CHECK(r->value == Approx(37.0));
}

TEST_CASE("each semantic problem of a reading gets its own code") {
  auto bad_device = spo2(93);
  bad_device.device = "oxi 1";
  CHECK(make_reading(bad_device, now).code() == errc::invalid_id);

  auto bad_patient = spo2(93);
  bad_patient.patient = "";
  CHECK(make_reading(bad_patient, now).code() == errc::invalid_id);

  auto bad_metric = spo2(93);
  bad_metric.metric = "sp02";
  CHECK(make_reading(bad_metric, now).code() == errc::unknown_metric);

  auto bad_unit = spo2(93);
  bad_unit.unit = "mm[Hg]";
  CHECK(make_reading(bad_unit, now).code() == errc::unit_mismatch);

  CHECK(make_reading(spo2(std::numeric_limits<double>::quiet_NaN()), now).code() == errc::not_finite);
  CHECK(make_reading(spo2(101), now).code() == errc::value_out_of_range);

  auto future = spo2(93);
  future.ts = now + default_max_future_ms + 1;
  CHECK(make_reading(future, now).code() == errc::timestamp_in_future);

  auto negative = spo2(93);
  negative.ts = -1;
  CHECK(make_reading(negative, now).code() == errc::value_out_of_range);
}

TEST_CASE("a timestamp up to the skew allowance ahead of the node clock is accepted") {
  auto in = spo2(93);
  in.ts = now + default_max_future_ms;
  CHECK(make_reading(in, now).has_value());
  in.ts = now + 10;
  CHECK(make_reading(in, now, 5).code() == errc::timestamp_in_future);
}

TEST_CASE("a NaN in a foreign unit is reported as not finite") {
  auto in = spo2(std::numeric_limits<double>::quiet_NaN());
  in.unit = "kPa";
  CHECK(make_reading(in, now).code() == errc::not_finite);
}

TEST_CASE("a value in range only after conversion is checked after conversion") {
  reading_input in;
  in.device = "therm-1";
  in.metric = "temperature";
  in.value = 104;  // 40 Cel: plausible, though 104 Cel is not
  in.unit = "[degF]";
  in.ts = now;
  CHECK(make_reading(in, now).has_value());
  in.unit.reset();
  CHECK(make_reading(in, now).code() == errc::value_out_of_range);
}

TEST_CASE("a huge skew allowance does not overflow into refusing every reading") {
  auto in = spo2(93);
  CHECK(make_reading(in, now, std::numeric_limits<epoch_ms>::max()).has_value());
}

TEST_CASE("a finite value that overflows in unit conversion is out of range") {
  reading_input in;
  in.device = "bp-1";
  in.metric = "systolic_bp";
  in.value = 1e308;
  in.unit = "kPa";
  in.ts = now;
  CHECK(make_reading(in, now).code() == errc::value_out_of_range);
}
