#pragma once
// Static cluster membership: configuration, a phi-accrual failure detector per peer, member
// states and quorum, and shard placement by rendezvous hashing. Pure: the caller passes the
// time, sends and receives the heartbeats, and acts on quorum and placement (cluster/ and
// actors/ do). Anchors: Akka's PhiAccrualFailureDetector (Hayashibara et al. 2004) and its
// keep-majority split-brain resolver; zguide's Paranoid Pirate heartbeating.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/status.hpp"
#include "engine/time.hpp"

namespace alert {

/// Failure detector settings (one set for all peers). With the defaults, a peer that sent
/// heartbeats every 250 ms and then falls silent is declared unreachable about 1.77 s after
/// its last heartbeat; a peer heard only once, about 2.15 s after it (tests/engine/
/// membership_test.cpp computes both). Raise acceptable_pause_ms to ride out longer stalls
/// (GC, VM migration, a saturated link); each extra millisecond delays detection by one.
struct failure_detector_options {
  /// How often every node sends a heartbeat to every peer (the sender's period; the
  /// detector itself learns the actual intervals).
  std::int64_t heartbeat_interval_ms = 250;
  /// A peer is unreachable while phi >= this. phi 8 means the silence so far would occur
  /// with probability 1e-8 if the peer were alive and behaving as it did before.
  double phi_threshold = 8.0;
  /// A silence this much longer than the mean interval still counts as normal: added to the
  /// mean interval before phi is computed.
  std::int64_t acceptable_pause_ms = 1000;
  /// Lower bound of the interval's standard deviation, so that perfectly regular heartbeats
  /// do not make the detector hair-triggered.
  std::int64_t min_std_deviation_ms = 100;
  /// Intervals kept per peer (the most recent).
  std::size_t max_samples = 100;
  /// Assumed mean interval before any has been measured: the first heartbeat seeds the
  /// history with this +/- a quarter of it (as Akka does).
  std::int64_t first_heartbeat_estimate_ms = 500;
};

/// One configured node.
struct member_config {
  std::string id;        ///< node id, an id as in engine/ids.hpp (e.g. "node-a")
  std::string endpoint;  ///< its node-to-node endpoint, e.g. "tcp://10.0.0.5:7102"
};

/// The static cluster: who the members are, which one is this node, how many shards.
struct cluster_config {
  std::string self;                     ///< this node's id; one of members
  std::vector<member_config> members;   ///< every member, self included
  std::uint32_t shards = 64;            ///< fixed for the life of the data: never change it
  failure_detector_options fd;
};

/// Most members a cluster may have.
inline constexpr std::size_t max_members = 16;
/// Most shards a cluster may have.
inline constexpr std::uint32_t max_shards = 4096;

/// Checks a cluster configuration: 1..max_members members with valid (engine/ids.hpp),
/// unique ids and non-empty, unique endpoints; self among them; 1..max_shards shards;
/// positive detector intervals, a finite positive threshold, max_samples >= 1.
/// Returns errc::config_error with a message naming the problem.
status validate(const cluster_config& config);

/// Phi-accrual failure detector for one peer (Akka's): phi grows with the silence since the
/// last heartbeat, measured against a normal distribution of the past inter-arrival
/// intervals whose mean is raised by acceptable_pause_ms. Times should come from a clock
/// that does not jump; one that steps back is tolerated (the interval is not recorded).
class phi_accrual_detector {
public:
  explicit phi_accrual_detector(failure_detector_options options = {});

  /// A heartbeat arrived at `now`. The interval since the previous one joins the history,
  /// except when the peer was already unreachable (a long outage would skew the statistics).
  void heartbeat(epoch_ms now);

  /// Suspicion at `now`: -log10 of the probability that a live peer stays silent this long.
  /// +infinity before the first heartbeat, and also after a long enough silence (the
  /// probability underflows to 0); whoever formats it (JSON, metrics) must handle infinity.
  double phi(epoch_ms now) const;

  /// phi(now) < phi_threshold; false before the first heartbeat.
  bool available(epoch_ms now) const { return phi(now) < options_.phi_threshold; }

  /// When the last heartbeat arrived; nothing before the first.
  std::optional<epoch_ms> last_heartbeat() const noexcept { return last_; }

  /// Mean and standard deviation (floored at min_std_deviation_ms) of the kept intervals, ms.
  double mean_interval() const noexcept { return mean_; }
  double std_deviation() const noexcept { return std_; }

private:
  void recompute();

  failure_detector_options options_;
  std::optional<epoch_ms> last_;
  std::deque<std::int64_t> intervals_;
  double mean_ = 0.0;
  double std_ = 0.0;
};

/// Phi for a silence of `elapsed_ms`, given the (pause-raised) mean and the standard
/// deviation: the logistic approximation of the normal CDF that Akka uses.
double phi_of(double elapsed_ms, double mean_ms, double std_deviation_ms) noexcept;

/// A member as this node sees it. Static membership has no joining or leaving: a member is
/// never heard of, up, or unreachable, and comes back up by itself when heard again.
enum class member_state : std::uint8_t {
  unknown,      ///< never heard from since this node started
  up,           ///< heartbeats arrive (phi below the threshold); this node is always up
  unreachable,  ///< was heard from, but has been silent too long (phi at or above it)
};

/// "unknown", "up", "unreachable".
std::string_view to_string(member_state s) noexcept;

/// One member's state, for alertctl status and the metrics endpoint.
struct member_view {
  std::string id;
  std::string endpoint;
  bool self = false;
  member_state state = member_state::unknown;
  double phi = 0.0;                       ///< 0 for self; may be +infinity (see phi())
  std::optional<epoch_ms> last_heartbeat; ///< nothing for self and for never-heard members
};

/// A change of a member's state, for the node to log and count.
struct member_transition {
  std::string id;
  member_state from = member_state::unknown;
  member_state to = member_state::unknown;
  epoch_ms at = 0;  ///< the time passed to the call that noticed it
};

/// The members as this node sees them. States are a function of the time asked about;
/// transitions are recorded when heartbeat_from or tick notices a change, so call tick at
/// least once per heartbeat interval. Not thread-safe: one owner (the node's membership
/// actor).
class membership {
public:
  /// Transitions kept when nobody takes them; beyond it the oldest are dropped.
  static constexpr std::size_t max_kept_transitions = 1000;

  /// Membership for a configuration, or the error validate() reports.
  static result<membership> make(const cluster_config& config);

  /// A heartbeat from `id` arrived at `now`. Returns false, and changes nothing, for an id
  /// that is not a configured member; a heartbeat naming this node is accepted and ignored.
  bool heartbeat_from(const std::string& id, epoch_ms now);

  /// Re-evaluates every member at `now` and records the transitions.
  void tick(epoch_ms now);

  /// The state of `id` at `now`; unknown for an id that is not a member.
  member_state state_of(const std::string& id, epoch_ms now) const;

  /// Ids of the members up at `now`, self always included, sorted.
  std::vector<std::string> live(epoch_ms now) const;

  /// Whether this node sees a strict majority of the configured members at `now`
  /// (2 of 3, 3 of 4, 3 of 5). Without it the node must own no shard and page nobody.
  bool has_quorum(epoch_ms now) const;

  /// Every member at `now`, sorted by id.
  std::vector<member_view> view(epoch_ms now) const;

  /// The transitions recorded since the last call, oldest first.
  std::vector<member_transition> take_transitions();

  const std::string& self() const noexcept { return self_; }
  std::size_t size() const noexcept { return members_.size(); }
  std::uint32_t shards() const noexcept { return shards_; }

private:
  struct member {
    member_config config;
    phi_accrual_detector detector;
    member_state reported = member_state::unknown;  // as last recorded in transitions_
  };
  explicit membership(const cluster_config& config);
  std::size_t index_of(const std::string& id) const;  // size() when absent
  member_state evaluate(const member& m, epoch_ms now) const;
  void record(member& m, epoch_ms now);

  std::string self_;
  std::uint32_t shards_ = 0;
  std::vector<member> members_;  // sorted by id
  std::vector<member_transition> transitions_;
};

/// FNV-1a, 64 bits, over the bytes of `bytes`.
std::uint64_t fnv1a64(std::string_view bytes) noexcept;

/// The cluster's stable hash: MurmurHash3's fmix64 finalizer applied to fnv1a64(bytes).
/// FNV-1a alone mixes its low bits poorly, and shards are picked from the low bits. Part of
/// the data layout (which node holds which shard): never change it.
std::uint64_t stable_hash64(std::string_view bytes) noexcept;

/// The shard of a routing key: stable_hash64(key) % shards; 0 when shards is 0.
std::uint32_t shard_of(std::string_view routing_key, std::uint32_t shards) noexcept;

/// The routing key of a reading (ARCHITECTURE.md): the patient id when the device is bound
/// to a patient (a present, non-empty `patient`), otherwise the device id. So a patient and
/// all its devices live in one shard.
std::string routing_key(std::string_view device, std::optional<std::string_view> patient);

/// Rendezvous score of `member` for `shard`: the fmix64 finalizer applied to the FNV-1a 64
/// of the member id's bytes followed by the shard number's 4 bytes, big-endian.
std::uint64_t rendezvous_score(std::string_view member, std::uint32_t shard) noexcept;

/// Who holds a shard.
struct shard_placement {
  std::string owner;     ///< empty only when no member is live
  std::string follower;  ///< empty when fewer than two members are live
};

/// Places `shard` on `live_members` (distinct ids, any order) by rendezvous (highest random
/// weight) hashing: the owner has the highest rendezvous_score, the follower the second
/// highest, ties going to the smaller id. Removing a member moves only the shards it owned
/// or followed, and an owner's follower becomes the owner when the owner leaves. The
/// caller passes the live members of a quorum (membership::live when has_quorum).
shard_placement place(std::uint32_t shard, const std::vector<std::string>& live_members);

}  // namespace alert
