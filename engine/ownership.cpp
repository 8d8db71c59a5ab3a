#include "engine/ownership.hpp"

#include <algorithm>
#include <limits>

namespace alert {

status validate(const ownership_options& o, std::int64_t heartbeat_interval_ms) {
  if (o.lease_ms <= 0) return {errc::config_error, "cluster.lease-ms must be positive"};
  if (o.promise_ms < o.lease_ms + heartbeat_interval_ms)
    return {errc::config_error, "cluster.promise-ms must be at least cluster.lease-ms plus cluster.heartbeat-ms (" +
                                    std::to_string(o.lease_ms + heartbeat_interval_ms) + ")"};
  if (o.request_every_ms <= 0) return {errc::config_error, "the handoff request interval must be positive"};
  return {};
}

shard_ownership::shard_ownership(std::string self, std::vector<std::string> members, std::uint32_t shards,
                                 ownership_options o)
    : self_(std::move(self)), members_(std::move(members)), shards_(shards), o_(o), state_(shards),
      votes_(shards, '\0'), next_request_(o.first_request_id) {
  std::sort(members_.begin(), members_.end());
  members_.erase(std::unique(members_.begin(), members_.end()), members_.end());
  majority_ = members_.size() / 2 + 1;
  std::string all = std::to_string(shards_);
  for (const auto& m : members_) all += "," + m;
  fingerprint_ = stable_hash64(all);
}

std::uint8_t shard_ownership::vote_byte(const std::string& member) const {
  auto at = std::lower_bound(members_.begin(), members_.end(), member);
  if (at == members_.end() || *at != member) return 0;
  return static_cast<std::uint8_t>(at - members_.begin() + 1);
}

const std::string& shard_ownership::member_of(std::uint8_t byte) const {
  if (byte == 0 || byte > members_.size()) return none_;
  return members_[byte - 1];
}

void shard_ownership::heard(const std::string& from, const shard_votes& votes, std::optional<std::int64_t> echo,
                            std::int64_t now) {
  if (from == self_ || vote_byte(from) == 0) return;
  auto& p = peers_[from];
  // A member's handoff counts only while it has voted for this node ever since, and was
  // heard from all along: had it voted for another, that one could have taken readings.
  const bool gap = p.heard_at != 0 && now - p.heard_at > o_.lease_ms;
  const auto me = static_cast<char>(vote_byte(self_));
  for (std::uint32_t s = 0; s < shards_; ++s)
    if (gap || votes.size() != shards_ || votes[s] != me) state_[s].answered.erase(from);
  p.echo = echo;
  p.heard_at = std::max(p.heard_at, now);
  if (votes.size() != shards_) {
    p.votes.clear();
    return;
  }
  p.votes = votes;
  for (auto& b : p.votes)
    if (static_cast<std::uint8_t>(b) > members_.size()) b = '\0';
}

void shard_ownership::lost(const std::string& member) {
  peers_.erase(member);
  for (auto& st : state_) st.answered.erase(member);
}

void shard_ownership::handoff_done(const std::string& from, std::uint64_t id,
                                   const std::vector<std::uint32_t>& shards) {
  for (auto s : shards) {
    if (s >= shards_) continue;
    auto& st = state_[s];
    // Counted only while the member's last heartbeat votes for this node: a heartbeat with
    // a new vote may overtake an answer its sender queued just before.
    auto p = peers_.find(from);
    const bool votes_here = p != peers_.end() && p->second.votes.size() == shards_ &&
                            p->second.votes[s] == static_cast<char>(vote_byte(self_));
    if (st.granted == self_ && id > st.wait_start && votes_here) st.answered.insert(from);
  }
}

shard_ownership::changes shard_ownership::step(std::int64_t now, bool quorum, const std::vector<std::string>& eligible) {
  changes c;
  std::vector<std::string> live = eligible;
  std::sort(live.begin(), live.end());
  live.erase(std::unique(live.begin(), live.end()), live.end());
  const bool live_has_self = std::binary_search(live.begin(), live.end(), self_);
  if (!quorum || !live_has_self) {
    // No placement without a majority: this node votes for nobody (once its promises ran
    // out), and to own a shard again it catches up first, as after a start.
    if (placed_) c.placed = true;
    placed_ = false;
    for (auto& st : state_) {
      st.target.clear();
      st.follower.clear();
      st.waiting.clear();
    }
  } else {
    const bool first = !placed_;
    for (std::uint32_t s = 0; s < shards_; ++s) {
      auto& st = state_[s];
      auto p = place(s, live);
      if (first || p.owner != st.target || p.follower != st.follower) c.placed = true;
      if (!first && p.owner == self_ && !p.follower.empty() && p.follower != st.follower)
        c.new_followers[p.follower].insert(s);
      st.target = std::move(p.owner);
      st.follower = std::move(p.follower);
    }
    placed_ = true;
  }

  // Votes: for the owner in this node's view (itself only once caught up), but never for
  // another before the promise to the last one ran out. A vote echoes the last heartbeat
  // heard from its candidate, so the promise runs from then: a candidate gone silent gets
  // no longer lease from votes sent after it fell silent.
  auto promise_for = [&](const std::string& who) {
    auto at = peers_.find(who);
    return (who == self_ || at == peers_.end() ? now : at->second.heard_at) + o_.promise_ms;
  };
  if (!started_) started_ = now;
  // What it promised before a restart may still run (alone, it promised nobody).
  const bool quiet = majority_ > 1 && now < *started_ + o_.promise_ms;
  std::vector<std::string> others;
  if (placed_)
    for (const auto& m : live)
      if (m != self_) others.push_back(m);
  for (std::uint32_t s = 0; s < shards_; ++s) {
    auto& st = state_[s];
    std::string want = quiet ? std::string{} : st.target;
    if (!want.empty() && want == st.granted) {
      st.promise_until = std::max(st.promise_until, promise_for(want));
    } else if (!st.granted.empty() && now < st.promise_until) {
      want.clear();
    } else {
      if (want == self_ && st.granted != self_) {
        // This node may be the owner from now on: what the others hold of the shard comes
        // first. Answers to requests from here on count.
        st.wait_start = next_request_ - 1;
        st.answered.clear();
      }
      if (st.granted != want) ++st.grant_epoch;
      st.granted = want;
      if (!want.empty()) st.promise_until = promise_for(want);
    }
    // Itself only while enough live members, with itself a majority, handed the shard over
    // while voting for it (engine header: why that suffices). The others are asked until
    // then; a member that comes later does not unseat an owner that has its majority.
    st.waiting.clear();
    if (want == self_) {
      std::size_t have = 1;
      for (const auto& m : others)
        if (st.answered.count(m)) ++have;
        else st.waiting.push_back(m);
      if (have >= majority_) st.waiting.clear();
      else want.clear();
    }
    votes_[s] = static_cast<char>(vote_byte(want));
  }

  // Acting: this node's own vote and a majority with unexpired leases.
  const auto me = static_cast<char>(vote_byte(self_));
  std::vector<std::int64_t> expiries;
  for (std::uint32_t s = 0; s < shards_; ++s) {
    auto& st = state_[s];
    const bool was = st.acting_until > 0;
    st.acting_until = 0;
    if (votes_[s] == me) {
      expiries.clear();
      for (const auto& [id, p] : peers_)
        if (p.votes.size() == shards_ && p.votes[s] == me && p.echo && *p.echo <= now && *p.echo + o_.lease_ms > now)
          expiries.push_back(*p.echo + o_.lease_ms);
      const std::size_t need = majority_ - 1;
      if (need == 0) {
        st.acting_until = std::numeric_limits<std::int64_t>::max();
      } else if (expiries.size() >= need) {
        std::nth_element(expiries.begin(), expiries.begin() + static_cast<std::ptrdiff_t>(need - 1), expiries.end(),
                         std::greater<>());
        st.acting_until = expiries[need - 1];
      }
    }
    const bool is = st.acting_until > 0;
    if (is && !was) c.gained.insert(s);
    if (was && !is) c.lost.insert(s);
    // Routing: this node while it acts, else whom a majority of the known votes names.
    st.owner.clear();
    if (is) {
      st.owner = self_;
      continue;
    }
    std::map<char, std::size_t> count;
    if (votes_[s] != '\0') ++count[votes_[s]];
    for (const auto& [id, p] : peers_)
      if (p.votes.size() == shards_ && p.votes[s] != '\0') ++count[p.votes[s]];
    for (const auto& [who, n] : count)
      if (n >= majority_ && who != me) st.owner = member_of(static_cast<std::uint8_t>(who));
  }

  // Handoff requests, repeated until answered.
  std::map<std::string, std::vector<std::uint32_t>> asks;
  for (std::uint32_t s = 0; s < shards_; ++s)
    for (const auto& holder : state_[s].waiting) asks[holder].push_back(s);
  for (auto& [holder, shards] : asks) {
    auto last = requested_at_.find(holder);
    if (last != requested_at_.end() && now - last->second < o_.request_every_ms) continue;
    requested_at_[holder] = now;
    c.requests.push_back({holder, next_request_++, std::move(shards)});
  }
  for (auto it = requested_at_.begin(); it != requested_at_.end();)
    it = asks.count(it->first) ? std::next(it) : requested_at_.erase(it);
  return c;
}

const std::string& shard_ownership::voted_for(std::uint32_t shard) const {
  return shard < shards_ ? member_of(static_cast<std::uint8_t>(votes_[shard])) : none_;
}

std::uint64_t shard_ownership::vote_epoch(std::uint32_t shard) const {
  return shard < shards_ ? state_[shard].grant_epoch : 0;
}

bool shard_ownership::acting(std::uint32_t shard, std::int64_t now) const {
  return shard < shards_ && state_[shard].acting_until > now;
}

const std::string& shard_ownership::owner(std::uint32_t shard) const {
  return shard < shards_ ? state_[shard].owner : none_;
}

const std::string& shard_ownership::follower(std::uint32_t shard) const {
  return shard < shards_ ? state_[shard].follower : none_;
}

const std::string& shard_ownership::target(std::uint32_t shard) const {
  return shard < shards_ ? state_[shard].target : none_;
}

std::size_t shard_ownership::waiting() const noexcept {
  return static_cast<std::size_t>(
      std::count_if(state_.begin(), state_.end(), [](const shard_state& st) { return !st.waiting.empty(); }));
}

std::vector<std::uint32_t> shard_ownership::owned(std::int64_t now) const {
  std::vector<std::uint32_t> out;
  for (std::uint32_t s = 0; s < shards_; ++s)
    if (acting(s, now)) out.push_back(s);
  return out;
}

}  // namespace alert
