#pragma once
// Who acts as the owner of each shard (docs/cluster.md, "One owner per shard"). Membership
// gives each node its own view of who is live; views differ while heartbeats are lost on
// one link and not another, so a shard placed by views alone could have two owners. Here a
// node acts as a shard's owner only while a majority of the configured members vote for it,
// and a vote is a lease: it lets the candidate act for `lease_ms` counted from the
// candidate's own heartbeat the vote answers, while the voter promises not to vote for
// anyone else for `promise_ms` after it last heard from the candidate. Any two majorities
// share a member, so two owners would need one member's vote for both inside one promise:
// it never gives it.
//
// Promises live in memory: a member that restarts has forgotten whom it voted for, so it
// votes for nobody until promise_ms after its first step (every promise it made before
// ran out by then).
//
// Catch-up: a node that may start voting for itself as a shard's owner (its promises to
// others ran out) first asks the other live members to hand the shard over, and votes for
// itself only while members that did, with itself, make a majority. A member answers only
// while it votes for the asking node, and its answer stops counting when a heartbeat shows
// it voting otherwise or it goes unheard for a lease. So when the node acts, the last owner
// has stopped: its leases from this node and from the answering members ran out before
// they voted for it. What that owner acknowledged is on it and on its follower, two
// members; with three members one of the two is this node or a member that answered. (With
// more members it may be neither: docs/cluster.md.)
//
// Pure: the caller passes a monotonic time in milliseconds, carries the votes in heartbeats
// and the handoff requests and answers between members. Not thread-safe.

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "engine/membership.hpp"

namespace alert {

struct ownership_options {
  /// How long a vote lets its candidate act, from the candidate's heartbeat it answers.
  std::int64_t lease_ms = 1200;
  /// How long a voter gives no vote to another candidate, counted from the last heartbeat
  /// it heard from the one it voted for (no lease it gave can start later). At least
  /// lease_ms plus one heartbeat interval (ownership is re-checked at every tick); what it
  /// exceeds that by covers the clocks' drift over a lease (150 ms, 12.5%, by default).
  std::int64_t promise_ms = 1600;
  /// How often a handoff request is sent again while the node still waits for it.
  std::int64_t request_every_ms = 250;
  /// The first handoff request id. Answers are matched by id, so a member that restarts
  /// should start above any id its previous run used (the node passes its wall clock).
  std::uint64_t first_request_id = 1;
};

/// Checks lease_ms > 0, promise_ms >= lease_ms + heartbeat_interval_ms, request_every_ms > 0.
status validate(const ownership_options& o, std::int64_t heartbeat_interval_ms);

/// A node's votes, one byte per shard: 0 for none, else 1 + the index of the member it
/// votes for in the configured members sorted by id.
using shard_votes = std::string;

class shard_ownership {
public:
  /// `members`: every configured member, self included (any order).
  shard_ownership(std::string self, std::vector<std::string> members, std::uint32_t shards, ownership_options o = {});

  /// A heartbeat from `from` arrived at `now`: its votes, and `echo`, the time (this node's
  /// clock) at which this node sent the last heartbeat `from` had heard from it before
  /// voting. Votes of the wrong size or naming no member are ignored (count as none).
  void heard(const std::string& from, const shard_votes& votes, std::optional<std::int64_t> echo, std::int64_t now);

  /// `member` is unreachable: its votes count no more, for leases or for routing.
  void lost(const std::string& member);

  /// `from` handed over `shards` in answer to request `id` (or a later one).
  void handoff_done(const std::string& from, std::uint64_t id, const std::vector<std::uint32_t>& shards);

  /// A handoff request to send: to `member`, for `shards`, under id `id`.
  struct request {
    std::string member;
    std::uint64_t id = 0;
    std::vector<std::uint32_t> shards;
  };

  /// What a step changed.
  struct changes {
    std::set<std::uint32_t> gained;  ///< shards this node acts as owner of from now on
    std::set<std::uint32_t> lost;    ///< shards it no longer acts as owner of
    /// Shards this node is the owner of in its view whose follower changed: what it holds of
    /// them goes to the new follower.
    std::map<std::string, std::set<std::uint32_t>> new_followers;
    std::vector<request> requests;  ///< handoff requests due now
    bool placed = false;            ///< the placement in this node's view changed
  };

  /// Re-evaluates everything at `now`: the placement over `eligible` (the live members
  /// this node can forward to, self included) when `quorum`, else none; this node's votes;
  /// which shards it acts as owner of.
  changes step(std::int64_t now, bool quorum, const std::vector<std::string>& eligible);

  /// This node's votes as of the last step (what its next heartbeats carry).
  const shard_votes& votes() const noexcept { return votes_; }

  /// Whom this node votes for as `shard`'s owner (empty: nobody). A handoff request for a
  /// shard is answered only while this names the asking member.
  const std::string& voted_for(std::uint32_t shard) const;
  /// Changes each time this node's vote for `shard` goes to another member (or to none): a
  /// handoff is answered only when it did not change while the journal was read.
  std::uint64_t vote_epoch(std::uint32_t shard) const;

  /// Whether this node may act as the owner of `shard` at `now`: its own vote and enough
  /// unexpired votes of others, as of the last step, with leases checked at `now`.
  bool acting(std::uint32_t shard, std::int64_t now) const;

  /// Who takes the shard's readings as far as this node knows: itself while acting, else the
  /// member that a majority of the votes it knows of names; empty when there is none (the
  /// shard is moving, or this node is in a minority).
  const std::string& owner(std::uint32_t shard) const;

  /// The shard's follower in this node's view (empty when none).
  const std::string& follower(std::uint32_t shard) const;

  /// The shard's owner in this node's view (empty without quorum).
  const std::string& target(std::uint32_t shard) const;

  /// Shards this node is catching up on (waits for handoffs of) before it votes for itself.
  std::size_t waiting() const noexcept;

  /// The shards this node acts as owner of at `now`.
  std::vector<std::uint32_t> owned(std::int64_t now) const;

  std::uint32_t shards() const noexcept { return shards_; }
  const std::string& self() const noexcept { return self_; }

  /// A hash of the member ids and the shard count. Votes index the members, so they mean
  /// the same only between members configured alike: heartbeats carry this, and votes from
  /// a member whose fingerprint differs are ignored.
  std::uint64_t fingerprint() const noexcept { return fingerprint_; }

private:
  struct peer_state {
    shard_votes votes;  // empty: none known
    std::optional<std::int64_t> echo;
    std::int64_t heard_at = 0;
  };
  struct shard_state {
    std::string target, follower;     // placement in this node's view
    std::string granted;              // whom this node last voted for
    std::uint64_t grant_epoch = 0;    // changes of `granted`
    std::int64_t promise_until = 0;   // no vote for anyone else before this
    std::int64_t acting_until = 0;    // 0: not acting
    std::string owner;                // as owner() returns
    std::uint64_t wait_start = 0;         // answers count if to a request id above this
    std::set<std::string> answered;       // members that handed the shard over since, voting for it since
    std::vector<std::string> waiting;     // live members still to answer, as of the last step
  };
  std::uint8_t vote_byte(const std::string& member) const;
  const std::string& member_of(std::uint8_t byte) const;

  std::string self_;
  std::vector<std::string> members_;  // sorted
  std::uint32_t shards_;
  ownership_options o_;
  std::size_t majority_;
  std::map<std::string, peer_state> peers_;
  std::vector<shard_state> state_;
  shard_votes votes_;
  bool placed_ = false;  // a placement was made since the last quorum
  std::optional<std::int64_t> started_;  // the time of the first step
  std::uint64_t next_request_;
  std::uint64_t fingerprint_ = 0;
  std::map<std::string, std::int64_t> requested_at_;  // holder -> last request sent
  std::string none_;
};

}  // namespace alert
