#include "engine/simulation.hpp"

#include <catch2/catch.hpp>
#include <map>

using namespace alert;
using namespace alert::sim;

namespace {
constexpr epoch_ms start = 1'700'000'000'000;
}

TEST_CASE("the same seed gives the same ward") {
  ward a{{}, start}, b{{}, start};
  auto ra = a.advance(start + 60'000);
  auto rb = b.advance(start + 60'000);
  REQUIRE(ra.size() == rb.size());
  REQUIRE_FALSE(ra.empty());
  for (std::size_t i = 0; i < ra.size(); ++i) {
    CHECK(ra[i].device == rb[i].device);
    CHECK(ra[i].value == rb[i].value);
    CHECK(ra[i].seq == rb[i].seq);
  }
}

TEST_CASE("every simulated reading passes the engine's validation") {
  ward_options o;
  o.patients = 30;
  o.low_battery_fraction = 0.5;
  o.deteriorating_at_start = 10;
  ward w{o, start};
  std::size_t n = 0;
  for (epoch_ms t = start; t <= start + 30 * 60'000; t += 10'000)
    for (const auto& in : w.advance(t)) {
      auto r = make_reading(in, t);
      INFO(in.device << " " << in.metric << " " << in.value);
      REQUIRE(r.has_value());
      ++n;
    }
  CHECK(n > 10'000);
}

TEST_CASE("seqs strictly increase per device and readings come in time order") {
  ward w{{}, start};
  std::map<std::string, std::uint64_t> last_seq;
  epoch_ms last_ts = 0;
  for (epoch_ms t = start; t <= start + 5 * 60'000; t += 1'000)
    for (const auto& r : w.advance(t)) {
      CHECK(r.seq > last_seq[r.device]);
      last_seq[r.device] = r.seq;
      CHECK(r.ts >= last_ts);
      last_ts = r.ts;
      CHECK(r.ts <= t);
    }
  CHECK(last_seq.size() == w.device_count());
}

TEST_CASE("a deteriorating patient's saturation falls and breathing quickens") {
  ward_options o;
  o.patients = 1;
  o.deteriorating_at_start = 1;
  o.silences_per_hour = 0;
  ward w{o, start};
  auto mean = [](const std::vector<reading_input>& rs, const char* metric) {
    double sum = 0;
    int n = 0;
    for (const auto& r : rs)
      if (r.metric == metric) {
        sum += r.value;
        ++n;
      }
    REQUIRE(n > 0);
    return sum / n;
  };
  auto early = w.advance(start + 60'000);
  w.advance(start + o.deterioration_ms);
  auto late = w.advance(start + o.deterioration_ms + 60'000);
  CHECK(mean(late, "spo2") < mean(early, "spo2") - 8);
  CHECK(mean(late, "resp_rate") > mean(early, "resp_rate") + 6);
  auto events = w.take_events();
  REQUIRE_FALSE(events.empty());
  CHECK(events.front().what == "P-0001 starts deteriorating");
}

TEST_CASE("a silent device sends nothing until it speaks again") {
  ward_options o;
  o.patients = 4;
  o.silences_per_hour = 1e6;  // every device falls silent at the first step
  o.silence_ms = 60'000;
  ward w{o, start};
  auto first = w.advance(start + 30'000);
  CHECK(first.empty());
  auto later = w.advance(start + 120'000);
  CHECK_FALSE(later.empty());
  bool spoke_again = false;
  for (const auto& e : w.take_events()) spoke_again |= e.what.find("speaks again") != std::string::npos;
  CHECK(spoke_again);
}

TEST_CASE("devices are bound to their patient in every reading") {
  ward w{{}, start};
  for (const auto& r : w.advance(start + 60'000)) {
    REQUIRE(r.patient.has_value());
    CHECK(r.device.substr(r.device.find('-')) == r.patient->substr(1));
  }
}

TEST_CASE("a seq base lets a restarted simulator continue after an earlier run") {
  ward w{{}, start};
  w.set_seq_base(5000);
  for (const auto& r : w.advance(start + 10'000)) CHECK(r.seq > 5000);
}
