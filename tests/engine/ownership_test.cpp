// Shard ownership by majority leases: never two owners of a shard at one time, whatever
// links are cut; the follower takes over a dead owner's shards; a returning member owns
// nothing before the members that held its shards handed them over.
#include "engine/ownership.hpp"

#include <catch2/catch.hpp>
#include <map>
#include <set>

using namespace alert;

namespace {

constexpr std::uint32_t shards = 64;
constexpr std::int64_t tick = 250;

// Members exchanging heartbeats over links that can be cut. Each round, every running
// member steps (at its own offset within the round), then sends a heartbeat over every
// open link; a heartbeat carries the sender's votes and the time of the last heartbeat it
// heard from the receiver. A member's eligible set is itself plus the members it heard in
// the last 2 s (the failure detector's verdict, simplified). Handoff requests are answered
// at once by a holder that does not act as the shard's owner.
struct cluster_sim {
  std::vector<std::string> ids;
  std::map<std::string, std::unique_ptr<shard_ownership>> nodes;
  std::set<std::pair<std::string, std::string>> cut;  // both orders
  std::map<std::string, std::map<std::string, std::int64_t>> last_heard;  // at -> from -> sender's time
  std::map<std::string, std::map<std::string, std::int64_t>> heard_at;    // at -> from -> receiver's time
  std::int64_t now = 1'000'000;
  std::size_t requests_answered = 0;
  // Every (shard, member) that acted as owner, and the violations of one owner at a time.
  std::map<std::uint32_t, std::set<std::string>> ever_owned;
  std::size_t double_owners = 0;

  explicit cluster_sim(std::vector<std::string> members) : ids(std::move(members)) {
    for (const auto& id : ids) start(id);
  }
  void start(const std::string& id) {
    nodes[id] = std::make_unique<shard_ownership>(id, ids, shards);
    last_heard[id].clear();
    heard_at[id].clear();
  }
  void kill(const std::string& id) { nodes.erase(id); }
  bool linked(const std::string& a, const std::string& b) const { return !cut.count({a, b}); }
  void cut_link(const std::string& a, const std::string& b) {
    cut.insert({a, b});
    cut.insert({b, a});
  }
  void heal_link(const std::string& a, const std::string& b) {
    cut.erase({a, b});
    cut.erase({b, a});
  }

  std::vector<std::string> eligible(const std::string& id, std::int64_t t) {
    std::vector<std::string> out{id};
    for (const auto& [from, at] : heard_at[id])
      if (t - at < 2000) out.push_back(from);
      else nodes[id]->lost(from);
    return out;
  }

  void round() {
    std::int64_t offset = 0;
    for (const auto& id : ids) {
      if (!nodes.count(id)) continue;
      const auto t = now + offset;
      offset += 70;
      auto& n = *nodes[id];
      auto live = eligible(id, t);
      auto c = n.step(t, live.size() * 2 > ids.size(), live);
      for (const auto& r : c.requests) {
        if (!nodes.count(r.member) || !linked(id, r.member)) continue;
        std::vector<std::uint32_t> done;
        for (auto s : r.shards)
          if (!nodes[r.member]->acting(s, t)) done.push_back(s);
        ++requests_answered;
        n.handoff_done(r.member, r.id, done);
      }
      for (const auto& to : ids) {
        if (to == id || !nodes.count(to) || !linked(id, to)) continue;
        std::optional<std::int64_t> echo;
        if (last_heard[id].count(to)) echo = last_heard[id][to];
        nodes[to]->heard(id, n.votes(), echo, t);
        last_heard[to][id] = t;
        heard_at[to][id] = t;
      }
      check(t);
    }
    now += tick;
  }
  void check(std::int64_t t) {
    for (std::uint32_t s = 0; s < shards; ++s) {
      std::size_t owners = 0;
      for (const auto& [id, n] : nodes)
        if (n->acting(s, t)) {
          ++owners;
          ever_owned[s].insert(id);
        }
      if (owners > 1) ++double_owners;
    }
  }
  void run(int rounds) {
    for (int i = 0; i < rounds; ++i) round();
  }
  std::size_t acting_count(const std::string& id) { return nodes[id]->owned(now).size(); }
  std::size_t owned_total() {
    std::size_t total = 0;
    for (const auto& [id, n] : nodes) total += n->owned(now).size();
    return total;
  }
};

}  // namespace

TEST_CASE("three members in full contact each own their rendezvous shards, once") {
  cluster_sim sim{{"a", "b", "c"}};
  sim.run(12);  // 3 s
  CHECK(sim.double_owners == 0);
  CHECK(sim.owned_total() == shards);
  for (std::uint32_t s = 0; s < shards; ++s) {
    const auto expected = place(s, {"a", "b", "c"}).owner;
    CHECK(sim.nodes[expected]->acting(s, sim.now));
    for (const auto& id : sim.ids) CHECK(sim.nodes[id]->owner(s) == expected);
  }
}

TEST_CASE("a cut link between two members never gives a shard two owners") {
  cluster_sim sim{{"a", "b", "c"}};
  sim.run(12);
  sim.cut_link("a", "c");
  sim.run(40);  // 10 s: a and c each still hear b
  CHECK(sim.double_owners == 0);
  // b sees everybody and votes by the full placement: the shards a or c would take from
  // each other in their own views have no owner, the rest keep theirs.
  std::size_t owned = sim.owned_total();
  CHECK(owned > 0);
  CHECK(owned <= shards);
  sim.heal_link("a", "c");
  sim.run(20);
  CHECK(sim.double_owners == 0);
  CHECK(sim.owned_total() == shards);
}

TEST_CASE("when the owner dies its follower owns its shards, after the promises ran out") {
  cluster_sim sim{{"a", "b", "c"}};
  sim.run(12);
  const auto a_owned = sim.nodes["a"]->owned(sim.now);
  REQUIRE(!a_owned.empty());
  std::map<std::uint32_t, std::string> follower;
  for (auto s : a_owned) follower[s] = sim.nodes["a"]->follower(s);
  const auto killed_at = sim.now;
  sim.kill("a");
  std::int64_t all_owned_at = 0;
  for (int i = 0; i < 40 && !all_owned_at; ++i) {
    sim.round();
    if (sim.owned_total() == shards) all_owned_at = sim.now;
  }
  REQUIRE(all_owned_at > 0);
  CHECK(sim.double_owners == 0);
  // Detection (2 s here) bounds it: the promises ran from the last heartbeat heard.
  CHECK(all_owned_at - killed_at <= 2500);
  for (auto s : a_owned) CHECK(sim.nodes[follower[s]]->acting(s, sim.now));
}

TEST_CASE("a returning member owns nothing until the holders of its shards handed them over") {
  cluster_sim sim{{"a", "b", "c"}};
  sim.run(12);
  sim.kill("c");
  sim.run(16);
  REQUIRE(sim.owned_total() == shards);
  sim.start("c");
  // c hears a and b, places, and asks them: until a request is answered it votes for no
  // shard of its own, so it acts as owner of none.
  sim.round();
  CHECK(sim.acting_count("c") == 0);
  CHECK(sim.nodes["c"]->waiting() > 0);
  sim.run(20);
  CHECK(sim.double_owners == 0);
  CHECK(sim.nodes["c"]->waiting() == 0);
  CHECK(sim.requests_answered > 0);
  CHECK(sim.owned_total() == shards);
  CHECK(sim.acting_count("c") > 0);
}

TEST_CASE("a member waits for every holder that is up, and a holder's stale answer does not count") {
  const std::vector<std::string> all{"a", "b", "c"};
  shard_ownership c{"c", all, shards};
  std::int64_t now = 5000;
  // c has just started and hears a and b: every shard it would own has two holders.
  auto first = c.step(now, true, all);
  REQUIRE(c.waiting() > 0);
  std::map<std::string, std::vector<std::uint32_t>> asked;
  std::map<std::string, std::uint64_t> ids;
  for (const auto& r : first.requests) {
    asked[r.member] = r.shards;
    ids[r.member] = r.id;
  }
  REQUIRE(asked.count("a"));
  REQUIRE(asked.count("b"));
  // An answer to a request older than the wait counts for nothing.
  c.handoff_done("a", 0, asked["a"]);
  c.handoff_done("b", 0, asked["b"]);
  c.step(now += tick, true, all);
  CHECK(c.waiting() > 0);
  // a answers: still waiting for b.
  c.handoff_done("a", ids["a"], asked["a"]);
  c.step(now += tick, true, all);
  CHECK(c.waiting() > 0);
  for (auto s : asked["a"])
    if (c.target(s) == "c") CHECK(static_cast<std::uint8_t>(c.votes()[s]) == 0);
  // Not answered within request_every_ms: asked again under a new id.
  auto later = c.step(now += 1000, true, all);
  bool again = false;
  for (const auto& r : later.requests)
    if (r.member == "b" && r.id > ids["b"]) again = true;
  CHECK(again);
  c.handoff_done("b", ids["b"], asked["b"]);
  c.step(now += tick, true, all);
  CHECK(c.waiting() == 0);
  // b goes away while c waits on it after a fresh start: c stops waiting for it.
  shard_ownership d{"c", all, shards};
  d.step(now, true, all);
  REQUIRE(d.waiting() > 0);
  d.step(now += tick, true, {"a", "c"});
  // Shards whose holders were a and b now wait on a alone, or on nobody.
  auto after = d.step(now += 2000, true, {"a", "c"});
  for (const auto& r : after.requests) CHECK(r.member == "a");
}

TEST_CASE("a member without quorum votes for nobody and owns nothing") {
  const std::vector<std::string> all{"a", "b", "c"};
  shard_ownership a{"a", all, shards};
  auto c = a.step(1000, false, {"a"});
  CHECK(a.owned(1000).empty());
  CHECK(c.requests.empty());
  for (auto v : a.votes()) CHECK(v == '\0');
  for (std::uint32_t s = 0; s < shards; ++s) CHECK(a.owner(s).empty());
}

TEST_CASE("a single-member cluster owns every shard at once") {
  shard_ownership a{"a", {"a"}, shards};
  auto c = a.step(1000, true, {"a"});
  CHECK(c.gained.size() == shards);
  CHECK(a.owned(1000).size() == shards);
}

TEST_CASE("a vote lets its candidate act for lease_ms from the heartbeat it answers") {
  const std::vector<std::string> all{"a", "b", "c"};
  ownership_options o;
  shard_ownership a{"a", all, shards, o};
  // a starts at 0 (it votes for nobody before 0 + promise_ms), and is first placed with
  // b's and c's handoffs answered.
  auto first = a.step(0, true, all);
  for (const auto& r : first.requests) a.handoff_done(r.member, r.id, r.shards);
  a.step(2000, true, all);
  std::uint32_t mine = shards;
  for (std::uint32_t s = 0; s < shards && mine == shards; ++s)
    if (a.target(s) == "a") mine = s;
  REQUIRE(mine < shards);
  CHECK(static_cast<std::uint8_t>(a.votes()[mine]) == 1);
  // b votes for a, answering a's heartbeat sent at 2200.
  shard_votes b_votes(shards, '\0');
  b_votes[mine] = 1;  // "a"
  a.heard("b", b_votes, 2200, 2290);
  a.step(2300, true, all);
  CHECK(a.acting(mine, 2300));
  CHECK(a.acting(mine, 2200 + o.lease_ms - 1));
  CHECK_FALSE(a.acting(mine, 2200 + o.lease_ms));
  // A later step after the lease ran out without a fresher vote: no longer acting.
  auto c = a.step(2200 + o.lease_ms + 10, true, all);
  CHECK(c.lost.count(mine));
  CHECK(validate(o, 250).is_ok());
  o.promise_ms = o.lease_ms;
  CHECK_FALSE(validate(o, 250).is_ok());
}

TEST_CASE("a member that has just started votes for nobody for promise_ms") {
  const std::vector<std::string> all{"a", "b", "c"};
  shard_ownership a{"a", all, shards};
  auto first = a.step(10'000, true, all);
  for (const auto& r : first.requests) a.handoff_done(r.member, r.id, r.shards);
  a.step(10'250, true, all);
  for (auto v : a.votes()) CHECK(v == '\0');
  a.step(10'000 + ownership_options{}.promise_ms, true, all);
  std::size_t votes = 0;
  for (auto v : a.votes()) votes += v != '\0';
  CHECK(votes == shards);
}

TEST_CASE("links cut and healed and members killed and restarted at random never give a shard two owners") {
  for (std::uint32_t seed : {1u, 2u, 3u, 4u, 5u}) {
    cluster_sim sim{{"a", "b", "c", "d", "e"}};
    std::uint32_t x = seed * 2654435761u;
    auto next = [&] {
      x ^= x << 13;
      x ^= x >> 17;
      x ^= x << 5;
      return x;
    };
    for (int i = 0; i < 400; ++i) {
      const auto& p = sim.ids[next() % 5];
      const auto& q = sim.ids[next() % 5];
      switch (next() % 12) {
        case 0: if (p != q) sim.cut_link(p, q); break;
        case 1: case 2: sim.heal_link(p, q); break;
        case 3: if (sim.nodes.size() > 3) sim.kill(p); break;
        case 4: if (!sim.nodes.count(p)) sim.start(p); break;
        default: break;
      }
      sim.round();
    }
    CAPTURE(seed);
    CHECK(sim.double_owners == 0);
    // Everything healed and running: every shard is owned again, once.
    for (const auto& id : sim.ids)
      if (!sim.nodes.count(id)) sim.start(id);
    sim.cut.clear();
    sim.run(40);
    CHECK(sim.double_owners == 0);
    CHECK(sim.owned_total() == shards);
  }
}

TEST_CASE("a voter that restarts votes for nobody until any promise it made before ran out") {
  cluster_sim sim{{"a", "b", "c"}};
  sim.run(12);
  // a and c cannot hear each other; b's votes decide, and a keeps the shards it ranks first.
  sim.cut_link("a", "c");
  sim.run(20);
  REQUIRE(sim.double_owners == 0);
  // b restarts at once, and for its first round hears only c: in that view c owns the
  // shards a owns now. Had b forgotten its votes for a, c would own them while a's leases
  // from b's last votes still ran.
  sim.kill("b");
  sim.start("b");
  sim.cut_link("a", "b");
  sim.run(3);
  sim.heal_link("a", "b");
  sim.run(20);
  CHECK(sim.double_owners == 0);
}
