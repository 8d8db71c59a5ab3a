#include "engine/membership.hpp"

#include <catch2/catch.hpp>
#include <cmath>
#include <map>
#include <random>
#include <string>
#include <vector>

using namespace alert;

namespace {

// The first time at or after `from` when the detector declares the peer unreachable.
epoch_ms down_at(const phi_accrual_detector& d, epoch_ms from) {
  epoch_ms t = from;
  while (d.available(t)) ++t;
  return t;
}

// A detector that has seen `n` heartbeats exactly `interval` apart; returns the last one's time.
epoch_ms steady(phi_accrual_detector& d, int n, epoch_ms interval, epoch_ms start = 0) {
  epoch_ms t = start;
  for (int i = 0; i < n; ++i, t += interval) d.heartbeat(t);
  return t - interval;
}

cluster_config config_of(int n, const std::string& self = "node-a") {
  cluster_config c;
  c.self = self;
  for (int i = 0; i < n; ++i) {
    std::string id = std::string("node-") + static_cast<char>('a' + i);
    c.members.push_back({id, "tcp://10.0.0." + std::to_string(i + 1) + ":7102"});
  }
  return c;
}

std::vector<std::string> names(int n) {
  std::vector<std::string> out;
  for (const auto& m : config_of(n).members) out.push_back(m.id);
  return out;
}

}  // namespace

// ---- failure detector ----

TEST_CASE("a peer never heard from is unavailable", "[membership]") {
  phi_accrual_detector d;
  CHECK(std::isinf(d.phi(0)));
  CHECK_FALSE(d.available(0));
  CHECK_FALSE(d.last_heartbeat());
}

TEST_CASE("regular heartbeats keep phi low", "[membership]") {
  phi_accrual_detector d;
  epoch_ms t = 0;
  for (int i = 0; i < 400; ++i, t += 250) {
    d.heartbeat(t);
    CHECK(d.phi(t + 249) < 1.0);  // just before the next one is due
  }
  CHECK(d.mean_interval() == Approx(250.0));
  CHECK(d.std_deviation() == Approx(100.0));  // 0 measured, floored at min_std_deviation_ms
}

// The figures quoted in failure_detector_options' comment come from this test.
TEST_CASE("with the defaults a silent peer is declared down after about 1.77 s, or 2.15 s if heard once",
          "[membership]") {
  phi_accrual_detector d;
  const auto last = steady(d, 200, 250);
  // mean 250 + pause 1000, std 100: phi reaches 8 at about 5.22 std beyond the raised mean.
  CHECK(down_at(d, last) - last == 1773);
  CHECK(d.available(last + 1772));
  CHECK_FALSE(d.available(last + 1773));

  phi_accrual_detector once;
  once.heartbeat(1000);
  // Seeded history 375 and 625 ms: mean 500 + pause 1000, std 125.
  CHECK(down_at(once, 1000) - 1000 == 2154);
}

TEST_CASE("phi grows with silence and the crossing time follows the configured threshold",
          "[membership]") {
  failure_detector_options o;
  phi_accrual_detector d8{o};
  o.phi_threshold = 12.0;
  phi_accrual_detector d12{o};
  const auto l8 = steady(d8, 50, 250);
  const auto l12 = steady(d12, 50, 250);
  double prev = 0.0;
  for (epoch_ms dt = 0; dt <= 3000; dt += 50) {
    CHECK(d8.phi(l8 + dt) >= prev);
    prev = d8.phi(l8 + dt);
  }
  CHECK(down_at(d12, l12) > down_at(d8, l8));
  CHECK(down_at(d12, l12) - l12 < 2500);
}

TEST_CASE("jittery heartbeats are tolerated", "[membership]") {
  phi_accrual_detector d;
  std::mt19937 rng{42};
  std::uniform_int_distribution<epoch_ms> gap{100, 700};  // 250 ms nominal, heavy jitter
  epoch_ms t = 0;
  for (int i = 0; i < 1000; ++i) {
    d.heartbeat(t);
    const auto next = t + gap(rng);
    CHECK(d.available(next - 1));
    t = next;
  }
  // And silence is still detected within a few seconds.
  d.heartbeat(t);
  CHECK(down_at(d, t) - t < 3000);
}

TEST_CASE("a pause up to acceptable_pause_ms beyond the usual interval is tolerated", "[membership]") {
  failure_detector_options o;
  o.acceptable_pause_ms = 1000;
  phi_accrual_detector tolerant{o};
  o.acceptable_pause_ms = 0;
  phi_accrual_detector strict{o};
  const auto a = steady(tolerant, 100, 250);
  const auto b = steady(strict, 100, 250);
  // Silent for the usual 250 ms plus a 1 s stall.
  CHECK(tolerant.phi(a + 1250) < 1.0);
  CHECK(tolerant.available(a + 1250));
  CHECK_FALSE(strict.available(b + 1250));
  // Each millisecond of acceptable pause delays detection by one.
  CHECK(down_at(tolerant, a) - down_at(strict, b) == 1000);
}

TEST_CASE("the heartbeat ending an outage is not counted as an interval", "[membership]") {
  phi_accrual_detector d;
  auto last = steady(d, 100, 250);
  const double mean = d.mean_interval();
  d.heartbeat(last + 60'000);  // back after a minute of silence
  CHECK(d.mean_interval() == Approx(mean));
  CHECK(d.available(last + 60'000 + 250));
}

TEST_CASE("only the last max_samples intervals are kept", "[membership]") {
  failure_detector_options o;
  o.max_samples = 10;
  phi_accrual_detector d{o};
  auto last = steady(d, 20, 1000);
  steady(d, 11, 200, last + 200);
  CHECK(d.mean_interval() == Approx(200.0));
}

TEST_CASE("a clock stepping back records no negative interval", "[membership]") {
  phi_accrual_detector d;
  auto last = steady(d, 200, 250);
  d.heartbeat(last - 5000);
  CHECK(d.mean_interval() == Approx(250.0));
  CHECK(d.last_heartbeat() == last - 5000);
  CHECK(d.available(last - 5000 + 250));
}

TEST_CASE("phi_of is -log10 of the normal tail probability, approximately", "[membership]") {
  CHECK(phi_of(1000, 1000, 100) == Approx(std::log10(2.0)).epsilon(0.01));  // at the mean: p = 0.5
  CHECK(phi_of(1100, 1000, 100) == Approx(-std::log10(0.1587)).epsilon(0.02));  // one sigma
  CHECK(phi_of(1300, 1000, 100) == Approx(-std::log10(0.00135)).epsilon(0.02));  // three sigma
  CHECK(phi_of(500, 1000, 100) < 0.001);
}

// ---- membership ----

TEST_CASE("three members: quorum with two up, none with one", "[membership]") {
  auto m = membership::make(config_of(3));
  REQUIRE(m);
  CHECK(m->live(0) == std::vector<std::string>{"node-a"});
  CHECK_FALSE(m->has_quorum(0));
  CHECK(m->state_of("node-a", 0) == member_state::up);
  CHECK(m->state_of("node-b", 0) == member_state::unknown);

  CHECK(m->heartbeat_from("node-c", 100));
  CHECK(m->live(100) == std::vector<std::string>{"node-a", "node-c"});
  CHECK(m->has_quorum(100));

  // node-c falls silent: after about 2.2 s this node is alone, a minority.
  CHECK(m->has_quorum(2000));
  CHECK_FALSE(m->has_quorum(3000));
  CHECK(m->state_of("node-c", 3000) == member_state::unreachable);
  CHECK(m->live(3000) == std::vector<std::string>{"node-a"});
}

TEST_CASE("two of four members is not a quorum, three is", "[membership]") {
  auto m = membership::make(config_of(4));
  REQUIRE(m);
  m->heartbeat_from("node-b", 0);
  CHECK(m->live(0).size() == 2);
  CHECK_FALSE(m->has_quorum(0));
  m->heartbeat_from("node-d", 0);
  CHECK(m->has_quorum(0));
}

TEST_CASE("a single-member cluster always has its quorum", "[membership]") {
  auto m = membership::make(config_of(1));
  REQUIRE(m);
  CHECK(m->has_quorum(0));
  CHECK(m->live(1'000'000) == std::vector<std::string>{"node-a"});
}

TEST_CASE("heartbeats from unknown ids are ignored", "[membership]") {
  auto m = membership::make(config_of(3));
  REQUIRE(m);
  CHECK_FALSE(m->heartbeat_from("node-z", 0));
  CHECK_FALSE(m->heartbeat_from("", 0));
  CHECK(m->heartbeat_from("node-a", 0));  // self: known, nothing changes
  CHECK(m->live(0).size() == 1);
  CHECK(m->take_transitions().empty());
  CHECK(m->state_of("node-z", 0) == member_state::unknown);
}

TEST_CASE("transitions are recorded once each, and a recovered member goes back to up", "[membership]") {
  auto m = membership::make(config_of(3));
  REQUIRE(m);
  epoch_ms t = 0;
  for (; t <= 5000; t += 250) {
    m->heartbeat_from("node-b", t);
    m->tick(t);
  }
  auto tr = m->take_transitions();
  REQUIRE(tr.size() == 1);
  CHECK(tr[0].id == "node-b");
  CHECK(tr[0].from == member_state::unknown);
  CHECK(tr[0].to == member_state::up);
  CHECK(tr[0].at == 0);
  CHECK(m->take_transitions().empty());

  // Silence: ticks notice the peer is down, once.
  const auto last = t - 250;
  for (; t <= last + 10'000; t += 250) m->tick(t);
  tr = m->take_transitions();
  REQUIRE(tr.size() == 1);
  CHECK(tr[0].from == member_state::up);
  CHECK(tr[0].to == member_state::unreachable);
  CHECK(tr[0].at == last + 2000);  // the first tick after the 1773 ms crossing

  // It comes back.
  m->heartbeat_from("node-b", t);
  CHECK(m->state_of("node-b", t) == member_state::up);
  m->tick(t + 250);
  tr = m->take_transitions();
  REQUIRE(tr.size() == 1);
  CHECK(tr[0].from == member_state::unreachable);
  CHECK(tr[0].to == member_state::up);
  CHECK(tr[0].at == t);
}

TEST_CASE("the view lists every member with its state, phi and last heartbeat", "[membership]") {
  auto m = membership::make(config_of(3, "node-b"));
  REQUIRE(m);
  m->heartbeat_from("node-c", 100);
  auto v = m->view(200);
  REQUIRE(v.size() == 3);
  CHECK(v[0].id == "node-a");
  CHECK(v[0].endpoint == "tcp://10.0.0.1:7102");
  CHECK(v[0].state == member_state::unknown);
  CHECK(std::isinf(v[0].phi));
  CHECK_FALSE(v[0].last_heartbeat);
  CHECK(v[1].id == "node-b");
  CHECK(v[1].self);
  CHECK(v[1].state == member_state::up);
  CHECK(v[1].phi == 0.0);
  CHECK(v[2].state == member_state::up);
  CHECK(v[2].last_heartbeat == 100);
  CHECK(v[2].phi < 1.0);
  CHECK(to_string(member_state::unreachable) == "unreachable");
}

TEST_CASE("the transition log keeps at most max_kept_transitions", "[membership]") {
  auto m = membership::make(config_of(2));
  REQUIRE(m);
  epoch_ms t = 0;
  for (int i = 0; i < 1000; ++i, t += 10'000) {
    m->heartbeat_from("node-b", t);  // up
    m->tick(t + 5000);               // unreachable
  }
  CHECK(m->take_transitions().size() == membership::max_kept_transitions);
}

// ---- configuration ----

TEST_CASE("cluster configurations are validated", "[membership]") {
  CHECK(validate(config_of(3)).is_ok());
  auto bad = [](auto change) {
    auto c = config_of(3);
    change(c);
    auto st = validate(c);
    CHECK(st.code() == errc::config_error);
    return st.message();
  };
  CHECK(bad([](cluster_config& c) { c.members.clear(); }).find("no members") != std::string::npos);
  CHECK(bad([](cluster_config& c) { c = config_of(17); }).find("17") != std::string::npos);
  CHECK(bad([](cluster_config& c) { c.members[1].id = "node-a"; }).find("twice") != std::string::npos);
  CHECK(bad([](cluster_config& c) { c.members[1].id = ""; }).find("empty") != std::string::npos);
  CHECK(bad([](cluster_config& c) { c.members[1].id = "node b"; }).find("member id") != std::string::npos);
  CHECK(bad([](cluster_config& c) { c.members[1].endpoint = ""; }).find("no endpoint") != std::string::npos);
  CHECK(bad([](cluster_config& c) { c.members[2].endpoint = c.members[0].endpoint; })
            .find("used by another") != std::string::npos);
  CHECK(bad([](cluster_config& c) { c.self = "node-z"; }).find("not a member") != std::string::npos);
  CHECK(bad([](cluster_config& c) { c.self = ""; }).find("self") != std::string::npos);
  CHECK(bad([](cluster_config& c) { c.shards = 0; }).find("shards") != std::string::npos);
  CHECK(bad([](cluster_config& c) { c.shards = 4097; }).find("4097") != std::string::npos);
  CHECK(bad([](cluster_config& c) { c.fd.heartbeat_interval_ms = 0; }).find("heartbeat") != std::string::npos);
  CHECK(bad([](cluster_config& c) { c.fd.phi_threshold = std::nan(""); }).find("phi") != std::string::npos);
  CHECK(bad([](cluster_config& c) { c.fd.acceptable_pause_ms = -1; }).find("pause") != std::string::npos);
  CHECK(bad([](cluster_config& c) { c.fd.min_std_deviation_ms = 0; }).find("deviation") != std::string::npos);
  CHECK(bad([](cluster_config& c) { c.fd.max_samples = 0; }).find("samples") != std::string::npos);
  CHECK(bad([](cluster_config& c) { c.fd.first_heartbeat_estimate_ms = 0; }).find("estimate") != std::string::npos);
  auto c = config_of(16);
  c.shards = 4096;
  CHECK(validate(c).is_ok());
  CHECK(membership::make(config_of(3, "node-z")).code() == errc::config_error);
}

// ---- shards ----

TEST_CASE("the stable hash is FNV-1a 64 with fmix64 and its values are pinned", "[membership]") {
  // Published FNV-1a 64 test vectors.
  CHECK(fnv1a64("") == 0xcbf29ce484222325ULL);
  CHECK(fnv1a64("a") == 0xaf63dc4c8601ec8cULL);
  CHECK(fnv1a64("foobar") == 0x85944171f73967e8ULL);
  // These values place data: if one changes, shards move to other nodes. Never update them.
  CHECK(stable_hash64("foobar") == 0x2c22194922d1672bULL);
  CHECK(shard_of("P-100234", 64) == 60);
  CHECK(shard_of("oxi-0042", 64) == 19);
  CHECK(shard_of("W3-bed7", 64) == 5);
  CHECK(shard_of("P-100234", 1024) == 380);
  CHECK(shard_of("oxi-0042", 1024) == 211);
  CHECK(rendezvous_score("node-a", 0) == 0x1b5449c30a5c45ccULL);
  CHECK(rendezvous_score("node-b", 7) == 0xad004daa47a58870ULL);
  CHECK(shard_of("anything", 0) == 0);
}

TEST_CASE("10000 keys spread evenly over 64 shards", "[membership]") {
  std::vector<int> count(64, 0);
  for (int i = 0; i < 10'000; ++i) ++count[shard_of("dev-" + std::to_string(i), 64)];
  for (int c : count) {
    CHECK(c >= 110);  // mean 156, standard deviation 12
    CHECK(c <= 205);
  }
}

TEST_CASE("the routing key is the patient when bound, else the device", "[membership]") {
  CHECK(routing_key("oxi-0042", std::string_view{"P-100234"}) == "P-100234");
  CHECK(routing_key("oxi-0042", std::nullopt) == "oxi-0042");
  CHECK(routing_key("oxi-0042", std::string_view{}) == "oxi-0042");
}

TEST_CASE("placement is deterministic, independent of order, and owner differs from follower",
          "[membership]") {
  const auto five = names(5);
  auto reversed = std::vector<std::string>(five.rbegin(), five.rend());
  for (std::uint32_t s = 0; s < 64; ++s) {
    auto p = place(s, five);
    CHECK_FALSE(p.owner.empty());
    CHECK_FALSE(p.follower.empty());
    CHECK(p.owner != p.follower);
    auto q = place(s, reversed);
    CHECK(q.owner == p.owner);
    CHECK(q.follower == p.follower);
  }
  auto one = place(3, {"node-a"});
  CHECK(one.owner == "node-a");
  CHECK(one.follower.empty());
  auto none = place(3, {});
  CHECK(none.owner.empty());
  auto dup = place(3, {"node-a", "node-a"});
  CHECK(dup.follower.empty());
}

TEST_CASE("removing a member moves only the shards it owned or followed, and its follower takes over",
          "[membership]") {
  for (int n : {3, 5}) {
    const auto all = names(n);
    for (const auto& gone : all) {
      std::vector<std::string> rest;
      for (const auto& id : all)
        if (id != gone) rest.push_back(id);
      for (std::uint32_t s = 0; s < 64; ++s) {
        INFO("members " << n << ", removed " << gone << ", shard " << s);
        const auto before = place(s, all);
        const auto after = place(s, rest);
        if (before.owner == gone) {
          CHECK(after.owner == before.follower);
        } else if (before.follower == gone) {
          CHECK(after.owner == before.owner);
        } else {
          CHECK(after.owner == before.owner);
          CHECK(after.follower == before.follower);
        }
      }
    }
  }
}

TEST_CASE("owners and followers are balanced over the members", "[membership]") {
  for (std::uint32_t shards : {64u, 1024u}) {
    for (int n : {3, 5}) {
      std::map<std::string, int> owned, followed;
      for (std::uint32_t s = 0; s < shards; ++s) {
        auto p = place(s, names(n));
        ++owned[p.owner];
        ++followed[p.follower];
      }
      const double mean = static_cast<double>(shards) / n;
      const double band = shards == 64 ? 0.55 : 0.25;  // few shards: wider band
      REQUIRE(owned.size() == static_cast<std::size_t>(n));
      for (const auto& id : names(n)) {
        INFO(shards << " shards, " << n << " members, " << id);
        CHECK(std::abs(owned[id] - mean) <= band * mean);
        CHECK(std::abs(followed[id] - mean) <= band * mean);
      }
    }
  }
}
