// Shard ownership by majority leases: never two owners of a shard at one time, whatever
// links are cut; the follower takes over a dead owner's shards; a returning member owns
// nothing before the members that held its shards handed them over.
#include "engine/ownership.hpp"

#include <algorithm>
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
// at once by a member that votes for the asking one, as nodes do.
//
// Readings are modelled too: each round the member acting as a shard's owner acknowledges
// one, held by it and by the follower in its view (not acknowledged when that follower is
// cut off). A handoff gives the asking member what the answering one holds. A member that
// starts acting as a shard's owner must hold every reading acknowledged for it.
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
  std::map<std::string, std::map<std::uint32_t, std::set<int>>> held;  // member -> shard -> readings
  std::map<std::uint32_t, std::set<int>> acked;
  int next_reading = 0;
  std::size_t owned_without_every_reading = 0;
  // For a failure's message: who acked each reading, the first member that acted without
  // one, and the cuts, kills and restarts before it.
  std::map<int, std::string> acked_how;
  std::string first_violation;
  std::vector<std::string> events;

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
      for (auto s : c.gained) {
        const auto& mine = held[id][s];
        if (!std::includes(mine.begin(), mine.end(), acked[s].begin(), acked[s].end())) {
          ++owned_without_every_reading;
          if (first_violation.empty()) {
            first_violation = "t=" + std::to_string(t) + " " + id + " gained " + std::to_string(s) + " missing:";
            for (int r : acked[s])
              if (!mine.count(r)) first_violation += " " + std::to_string(r) + "(" + acked_how[r] + ")";
            for (const auto& e : events) first_violation += "\n" + e;
          }
        }
      }
      for (const auto& r : c.requests) {
        if (!nodes.count(r.member) || !linked(id, r.member)) continue;
        std::vector<std::uint32_t> done;
        for (auto s : r.shards)
          if (nodes[r.member]->voted_for(s) == id) {
            done.push_back(s);
            held[id][s].insert(held[r.member][s].begin(), held[r.member][s].end());
          }
        ++requests_answered;
        n.handoff_done(r.member, r.id, done);
      }
      for (std::uint32_t s = 0; s < shards; ++s) {
        if (!n.acting(s, t)) continue;
        const auto& f = n.follower(s);
        if (!f.empty() && (!nodes.count(f) || !linked(id, f))) continue;  // no replica: not acknowledged
        const int r = ++next_reading;
        held[id][s].insert(r);
        if (!f.empty()) held[f][s].insert(r);
        acked[s].insert(r);
        acked_how[r] = id + "->" + f + "@" + std::to_string(t);
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
  CHECK(sim.owned_without_every_reading == 0);
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
  CHECK(sim.owned_without_every_reading == 0);
  // b sees everybody and votes by the full placement: its vote decides each shard a and c
  // both claim in their own views, so every shard still has one owner.
  CHECK(sim.owned_total() == shards);
  for (std::uint32_t s = 0; s < shards; ++s) {
    const auto expected = place(s, {"a", "b", "c"}).owner;
    CHECK(sim.nodes[expected]->acting(s, sim.now));
  }
  sim.heal_link("a", "c");
  sim.run(20);
  CHECK(sim.double_owners == 0);
  CHECK(sim.owned_without_every_reading == 0);
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
  CHECK(sim.owned_without_every_reading == 0);
  // Detection (2 s here) bounds it: the promises ran from the last heartbeat heard.
  CHECK(all_owned_at - killed_at <= 2500);
  for (auto s : a_owned) CHECK(sim.nodes[follower[s]]->acting(s, sim.now));
}

TEST_CASE("a returning member owns nothing until the others handed its shards over") {
  cluster_sim sim{{"a", "b", "c"}};
  sim.run(12);
  sim.kill("c");
  sim.run(16);
  REQUIRE(sim.owned_total() == shards);
  const auto answered_before = sim.requests_answered;
  sim.start("c");
  // c votes for nobody for promise_ms, then asks a and b for its shards: until they
  // answered it votes for none of its own, so it acts as owner of none.
  bool waited = false;
  std::size_t unseated = 0;  // rounds x shards staying with a or b that had no owner
  for (int i = 0; i < 24; ++i) {
    sim.round();
    for (std::uint32_t s = 0; s < shards; ++s) {
      const auto owner = place(s, {"a", "b", "c"}).owner;
      if (owner != "c" && !sim.nodes[owner]->acting(s, sim.now)) ++unseated;
    }
    if (sim.nodes["c"]->waiting() > 0) waited = true;
    if (sim.acting_count("c") > 0) {
      CHECK(waited);
      CHECK(sim.requests_answered > answered_before);
      break;
    }
  }
  // The shards that stay with a or b keep their owner all along.
  CHECK(unseated == 0);
  sim.run(8);
  CHECK(sim.double_owners == 0);
  CHECK(sim.owned_without_every_reading == 0);
  CHECK(sim.nodes["c"]->waiting() == 0);
  CHECK(sim.owned_total() == shards);
  CHECK(sim.acting_count("c") > 0);
}

namespace {
// Votes naming `member` for every shard.
shard_votes all_for(const std::vector<std::string>& sorted_members, const std::string& member) {
  const auto at = std::find(sorted_members.begin(), sorted_members.end(), member) - sorted_members.begin();
  return shard_votes(shards, static_cast<char>(at + 1));
}
}  // namespace

TEST_CASE("a member owns only with answers from a majority, each voting for it all along") {
  const std::vector<std::string> all{"a", "b", "c"};
  shard_ownership c{"c", all, shards};
  std::int64_t now = 0;
  c.step(now, true, all);  // it has just started: no votes, no requests
  CHECK(c.waiting() == 0);
  // Its promises (none after a start) ran out: it asks a and b for its shards.
  auto first = c.step(now = 2000, true, all);
  REQUIRE(c.waiting() > 0);
  std::map<std::string, std::vector<std::uint32_t>> asked;
  std::map<std::string, std::uint64_t> ids;
  for (const auto& r : first.requests) {
    asked[r.member] = r.shards;
    ids[r.member] = r.id;
  }
  REQUIRE(asked.count("a"));
  REQUIRE(asked.count("b"));
  auto mine = asked["a"];
  auto own_votes = [&] {
    std::size_t n = 0;
    for (auto s : mine) n += c.votes()[s] == '\3';  // "c"
    return n;
  };
  // An answer to a request from before the wait counts for nothing; nor does one from a
  // member whose last heartbeat does not vote for c.
  c.heard("a", all_for(all, "c"), std::nullopt, now);
  c.handoff_done("a", 0, mine);
  c.heard("b", all_for(all, "a"), std::nullopt, now);
  c.handoff_done("b", ids["b"], mine);
  c.step(now += tick, true, all);
  CHECK(own_votes() == 0);
  // a answers voting for c: with c itself a majority, so c votes for itself.
  c.handoff_done("a", ids["a"], mine);
  c.step(now += tick, true, all);
  CHECK(own_votes() == mine.size());
  CHECK(c.waiting() == 0);
  // a's heartbeat shows it voting for b: its answer lapses, and c asks again.
  c.heard("a", all_for(all, "b"), std::nullopt, now);
  auto again = c.step(now += tick, true, all);
  CHECK(own_votes() == 0);
  std::set<std::string> asked_again;
  for (const auto& r : again.requests) asked_again.insert(r.member);
  CHECK(asked_again == std::set<std::string>{"a", "b"});
  // b answers, voting for c.
  std::uint64_t b_id = 0;
  for (const auto& r : again.requests)
    if (r.member == "b") b_id = r.id;
  c.heard("b", all_for(all, "c"), std::nullopt, now);
  c.handoff_done("b", b_id, mine);
  c.step(now += tick, true, all);
  CHECK(own_votes() == mine.size());
  // b goes unheard for longer than a lease: its answer lapses.
  c.heard("b", all_for(all, "c"), std::nullopt, now + ownership_options{}.lease_ms + 1);
  c.step(now += ownership_options{}.lease_ms + 1, true, all);
  CHECK(own_votes() == 0);
  // A member that comes after the answers does not unseat the owner.
  shard_ownership d{"c", all, shards};
  d.step(0, true, all);
  auto d_first = d.step(2000, true, {"a", "c"});
  REQUIRE(d.waiting() > 0);
  d.heard("a", all_for(all, "c"), std::nullopt, 2000);
  for (const auto& r : d_first.requests) {
    CHECK(r.member == "a");
    d.handoff_done("a", r.id, r.shards);
  }
  d.step(2250, true, {"a", "c"});
  const auto before = d.votes();
  auto d_b = d.step(2500, true, all);
  for (const auto& r : d_b.requests) CHECK(r.member != "b");
  for (std::uint32_t s = 0; s < shards; ++s)
    if (d.target(s) == "c" && before[s] == '\3') CHECK(d.votes()[s] == '\3');
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
  // a starts at 0 (it votes for nobody before 0 + promise_ms); at 2000 it asks b and c,
  // which answer voting for it.
  a.step(0, true, all);
  auto asks = a.step(2000, true, all);
  a.heard("b", all_for(all, "a"), std::nullopt, 2000);
  a.heard("c", all_for(all, "a"), std::nullopt, 2000);
  for (const auto& r : asks.requests) a.handoff_done(r.member, r.id, r.shards);
  a.step(2100, true, all);
  std::uint32_t mine = shards;
  for (std::uint32_t s = 0; s < shards && mine == shards; ++s)
    if (a.target(s) == "a") mine = s;
  REQUIRE(mine < shards);
  CHECK(static_cast<std::uint8_t>(a.votes()[mine]) == 1);
  // b votes for a, answering a's heartbeat sent at 2200.
  a.heard("b", all_for(all, "a"), 2200, 2290);
  a.step(2300, true, all);
  CHECK(a.acting(mine, 2300));
  CHECK(a.acting(mine, 2200 + o.lease_ms - 1));
  CHECK_FALSE(a.acting(mine, 2200 + o.lease_ms));
  // A later step after the lease ran out without a fresher vote: no longer acting.
  auto c = a.step(2200 + o.lease_ms + 10, true, all);
  CHECK(c.lost.count(mine));
  // An echo from the future (another run's clock) gives no lease.
  a.heard("b", all_for(all, "a"), 99'999'999, 3500);
  a.step(3500, true, all);
  CHECK_FALSE(a.acting(mine, 3500));
  CHECK(validate(o, 250).is_ok());
  o.promise_ms = o.lease_ms;
  CHECK_FALSE(validate(o, 250).is_ok());
}

TEST_CASE("a member that has just started votes for nobody for promise_ms") {
  const std::vector<std::string> all{"a", "b", "c"};
  shard_ownership a{"a", all, shards};
  a.step(10'000, true, all);
  a.step(10'250, true, all);
  for (auto v : a.votes()) CHECK(v == '\0');
  // Then for the others' shards at once, and for its own once they are handed over.
  a.step(10'000 + ownership_options{}.promise_ms, true, all);
  std::size_t others = 0, own = 0;
  for (std::uint32_t s = 0; s < shards; ++s) {
    if (a.target(s) == "a") ++own;
    else others += a.votes()[s] != '\0';
  }
  CHECK(others == shards - own);
  CHECK(own > 0);
}

TEST_CASE("links cut and healed and members killed and restarted at random never give a shard two owners") {
  for (const std::vector<std::string>& members :
       {std::vector<std::string>{"a", "b", "c"}, std::vector<std::string>{"a", "b", "c", "d", "e"}}) {
    for (std::uint32_t seed : {1u, 2u, 3u, 4u, 5u}) {
      cluster_sim sim{members};
      const auto n = static_cast<std::uint32_t>(members.size());
      std::uint32_t x = seed * 2654435761u;
      auto next = [&] {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        return x;
      };
      for (int i = 0; i < 400; ++i) {
        const auto& p = sim.ids[next() % n];
        const auto& q = sim.ids[next() % n];
        const auto at = "t=" + std::to_string(sim.now) + " ";
        switch (next() % 12) {
          case 0:
            if (p != q) {
              sim.cut_link(p, q);
              sim.events.push_back(at + "cut " + p + "-" + q);
            }
            break;
          case 1:
          case 2:
            if (sim.cut.count({p, q})) sim.events.push_back(at + "heal " + p + "-" + q);
            sim.heal_link(p, q);
            break;
          case 3:
            if (sim.nodes.size() * 2 > n + 1 && sim.nodes.count(p)) {
              sim.kill(p);
              sim.events.push_back(at + "kill " + p);
            }
            break;
          case 4:
            if (!sim.nodes.count(p)) {
              sim.start(p);
              sim.events.push_back(at + "start " + p);
            }
            break;
          default:
            break;
        }
        sim.round();
      }
      CAPTURE(n, seed);
      CHECK(sim.double_owners == 0);
      INFO(sim.first_violation);
      // With three members an acknowledged reading is on two of them, a majority: a new owner
      // always gets it. (With five it is on two of five, and a new owner may gather its votes
      // from members that hold neither copy: docs/cluster.md.)
      if (n == 3) CHECK(sim.owned_without_every_reading == 0);
      // Everything healed and running: every shard is owned again, once.
      for (const auto& id : sim.ids)
        if (!sim.nodes.count(id)) sim.start(id);
      sim.cut.clear();
      sim.run(40);
      CHECK(sim.double_owners == 0);
      CHECK(sim.owned_total() == shards);
    }
  }
}

TEST_CASE("the fingerprint tells members configured alike from others") {
  shard_ownership a{"a", {"a", "b", "c"}, shards};
  CHECK(a.fingerprint() == shard_ownership{"b", {"c", "b", "a"}, shards}.fingerprint());
  CHECK(a.fingerprint() != shard_ownership{"a", {"a", "b", "d"}, shards}.fingerprint());
  CHECK(a.fingerprint() != shard_ownership{"a", {"a", "b", "c"}, shards + 1}.fingerprint());
}
