#include "engine/entity.hpp"

#include <algorithm>
#include <catch2/catch.hpp>
#include <random>

using namespace alert;

namespace {
reading rd(const std::string& dev, std::uint64_t seq, metric m, double v, epoch_ms ts,
           std::optional<std::string> patient = std::nullopt) {
  reading r{*device_id::make(dev), std::nullopt, m, v, ts, seq};
  if (patient) r.patient = *patient_id::make(*patient);
  return r;
}
}  // namespace

TEST_CASE("a device keeps the highest-seq value of each metric") {
  device_state s;
  apply(s, rd("oxi-1", 2, metric::spo2, 91, 2000), 10);
  apply(s, rd("oxi-1", 1, metric::spo2, 99, 1000), 11);  // late: older seq
  apply(s, rd("oxi-1", 3, metric::heart_rate, 80, 3000), 12);
  const auto* spo2 = s.last(metric::spo2);
  REQUIRE(spo2 != nullptr);
  CHECK(spo2->value == 91);
  CHECK(spo2->seq == 2);
  CHECK(s.last_seq == 3);
  CHECK(s.last_seen == 12);
}

TEST_CASE("a reading with a patient binds its device and a new patient moves it") {
  device_state s;
  auto c1 = apply(s, rd("oxi-1", 1, metric::spo2, 95, 1, "P-1"), 1);
  CHECK(c1.bound);
  CHECK_FALSE(c1.unbound_from.has_value());
  REQUIRE(s.patient.has_value());
  CHECK(s.patient->str() == "P-1");
  auto c2 = apply(s, rd("oxi-1", 2, metric::spo2, 95, 2), 2);
  CHECK_FALSE(c2.bound);
  REQUIRE(c2.attributed_to.has_value());
  CHECK(c2.attributed_to->str() == "P-1");
  auto c3 = apply(s, rd("oxi-1", 3, metric::spo2, 95, 3, "P-2"), 3);
  CHECK(c3.bound);
  REQUIRE(c3.unbound_from.has_value());
  CHECK(c3.unbound_from->str() == "P-1");
  CHECK(s.patient->str() == "P-2");
  // A late reading naming the old patient does not move the device back.
  auto c4 = apply(s, rd("oxi-1", 2, metric::heart_rate, 70, 2, "P-1"), 4);
  CHECK_FALSE(c4.bound);
  CHECK(s.patient->str() == "P-2");
  CHECK(c4.attributed_to->str() == "P-1");
}

TEST_CASE("an unbound device still records its readings") {
  device_state s;
  auto c = apply(s, rd("bp-1", 1, metric::systolic_bp, 120, 1), 1);
  CHECK_FALSE(c.attributed_to.has_value());
  CHECK_FALSE(s.patient.has_value());
  CHECK(s.last(metric::systolic_bp) != nullptr);
  CHECK(s.last(metric::spo2) == nullptr);
}

TEST_CASE("device state does not depend on the order readings arrive in, nor on repeats") {
  std::vector<reading> rs;
  std::mt19937 rng{7};
  std::uniform_int_distribution<int> metric_pick{0, static_cast<int>(metric_count) - 1};
  for (std::uint64_t seq = 1; seq <= 200; ++seq) {
    auto m = static_cast<metric>(metric_pick(rng));
    std::optional<std::string> p;
    if (seq % 37 == 0) p = "P-" + std::to_string(seq % 3);
    rs.push_back(rd("mon-1", seq, m, info(m).min, static_cast<epoch_ms>(seq * 1000), p));
  }
  device_state in_order;
  for (const auto& r : rs) apply(in_order, r, static_cast<epoch_ms>(r.seq));
  for (int round = 0; round < 20; ++round) {
    auto shuffled = rs;
    std::shuffle(shuffled.begin(), shuffled.end(), rng);
    shuffled.insert(shuffled.end(), rs.begin(), rs.begin() + 30);  // repeats
    device_state s;
    for (const auto& r : shuffled) apply(s, r, static_cast<epoch_ms>(r.seq));
    CHECK(s == in_order);
  }
  CHECK(in_order.patient->str() == "P-" + std::to_string(185 % 3));
}

TEST_CASE("a device's kind follows the metrics it reports, in any order") {
  device_state oxi;
  apply(oxi, rd("d", 1, metric::spo2, 95, 1), 1);
  apply(oxi, rd("d", 2, metric::heart_rate, 70, 1), 1);
  apply(oxi, rd("d", 3, metric::battery, 50, 1), 1);
  CHECK(oxi.kind() == device_kind::oximeter);
  device_state cuff;
  apply(cuff, rd("d", 1, metric::systolic_bp, 120, 1), 1);
  CHECK(cuff.kind() == device_kind::bp_cuff);
  device_state mon_a, mon_b;
  apply(mon_a, rd("d", 1, metric::spo2, 95, 1), 1);
  apply(mon_a, rd("d", 2, metric::resp_rate, 15, 1), 1);
  apply(mon_b, rd("d", 2, metric::resp_rate, 15, 1), 1);
  apply(mon_b, rd("d", 1, metric::spo2, 95, 1), 1);
  CHECK(mon_a.kind() == device_kind::monitor);
  CHECK(mon_a == mon_b);
  device_state o2;
  apply(o2, rd("d", 1, metric::o2_flow, 2, 1), 1);
  CHECK(o2.kind() == device_kind::oxygen);
  CHECK(device_state{}.kind() == device_kind::unknown);
  CHECK(to_string(device_kind::bp_cuff) == "bp_cuff");
}

TEST_CASE("battery comes from the battery metric") {
  device_state s;
  CHECK_FALSE(s.battery().has_value());
  apply(s, rd("d", 1, metric::battery, 14, 1), 1);
  REQUIRE(s.battery().has_value());
  CHECK(*s.battery() == 14);
}

TEST_CASE("a patient's vital is the newest by device time across its devices") {
  patient_state p;
  CHECK(apply(p, rd("oxi-1", 10, metric::spo2, 95, 5000)));
  CHECK(apply(p, rd("mon-1", 3, metric::spo2, 90, 6000)));
  CHECK_FALSE(apply(p, rd("oxi-1", 11, metric::spo2, 97, 5500)));  // older device time
  CHECK_FALSE(apply(p, rd("mon-1", 3, metric::spo2, 90, 6000)));   // repeat
  const auto& v = p.vitals[static_cast<std::size_t>(metric::spo2)];
  REQUIRE(v.has_value());
  CHECK(v->value == 90);
  CHECK(v->device == "mon-1");
  CHECK(v->ts == 6000);
}

TEST_CASE("binding and unbinding devices keeps a sorted set") {
  patient_state p;
  bind_device(p, *device_id::make("oxi-2"));
  bind_device(p, *device_id::make("bp-1"));
  bind_device(p, *device_id::make("oxi-2"));
  CHECK(p.devices == std::vector<std::string>{"bp-1", "oxi-2"});
  unbind_device(p, *device_id::make("bp-1"));
  unbind_device(p, *device_id::make("nope"));
  CHECK(p.devices == std::vector<std::string>{"oxi-2"});
}
