#pragma once
// Node-to-node links of a cluster (docs/cluster.md): this node's peer ROUTER, where the
// other members' DEALERs connect, and one DEALER to each other member. One I/O thread owns
// them all; it sends a heartbeat to every member each interval, and reports heartbeats
// heard and each interval's tick. With CURVE the peer endpoint admits only keys of role
// `node`, and a heartbeat counts only from the member its key names.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "cluster/curve.hpp"
#include "engine/membership.hpp"
#include "engine/status.hpp"
#include "engine/time.hpp"

namespace zmq {
class context_t;
}

namespace alert::cluster {

namespace wire {
/// Node -> node, every heartbeat interval:
/// `{v: 1, type: "heartbeat", from, at, ingest, mono, echo, votes}`.
struct heartbeat {
  std::string from;    ///< the sender's member id
  epoch_ms at = 0;     ///< the sender's wall clock when it was sent
  std::string ingest;  ///< the sender's ingest endpoint (where readings it owns are forwarded)
  std::int64_t mono = 0;              ///< the sender's monotonic clock, ms, when it was sent
  std::optional<std::int64_t> echo;   ///< `mono` of the last heartbeat the sender heard from the receiver
  std::string votes;                  ///< the sender's shard votes (engine/ownership.hpp)
  std::uint64_t config = 0;           ///< the sender's cluster fingerprint (shard_ownership::fingerprint)
};
std::string encode_heartbeat(const heartbeat& h);

/// Node -> node: `{v: 1, type: "handoff_request", from, id, shards}`: send me what you hold
/// of these shards. Answered, once sent, by `handoff_done` with the same id and the shards
/// handed over (those the sender did not act as owner of when it read its journal).
struct handoff_request {
  std::string from;
  std::uint64_t id = 0;
  std::vector<std::uint32_t> shards;
};
struct handoff_done {
  std::string from;
  std::uint64_t id = 0;
  std::vector<std::uint32_t> shards;
};
std::string encode_handoff_request(const handoff_request& r);
std::string encode_handoff_done(const handoff_done& d);

/// Owner -> follower: `{v: 1, type: "escalation", from, alert, record}`, the escalation
/// record of an alert (storage/entity_store's encoding) as the owner just persisted it;
/// without `record` the escalation ended and the record goes.
struct escalation_copy {
  std::string from;
  std::string alert;
  std::optional<std::string> record;
};
std::string encode_escalation_copy(const escalation_copy& e);

/// A message between members.
using peer_message = std::variant<heartbeat, escalation_copy, handoff_request, handoff_done>;
result<peer_message> decode_peer_message(const char* data, std::size_t size);
/// Never throws: malformed or too_large for bytes that are not a heartbeat.
result<heartbeat> decode_heartbeat(const char* data, std::size_t size);
}  // namespace wire

struct peer_link_options {
  std::string self;                    ///< this node's member id
  std::string bind;                    ///< this node's peer endpoint (its entry in the members list)
  std::vector<member_config> others;   ///< every other member
  std::chrono::milliseconds heartbeat_interval{250};
  std::uint64_t config = 0;            ///< this node's cluster fingerprint, sent in every heartbeat
  server_security security;            ///< CURVE for the peer ROUTER; plaintext when not enabled
  curve_keypair own_keys;              ///< this node's key pair, for its DEALERs (with CURVE)
};

struct peer_events {
  /// A heartbeat from a member (I/O thread; must not block).
  std::function<void(const wire::heartbeat&)> on_heartbeat;
  /// Once per heartbeat interval, just before the heartbeats go out (I/O thread): what it
  /// returns is the votes they carry.
  std::function<std::string()> on_tick;
  /// A member asks for shards (I/O thread; must not block).
  std::function<void(const wire::handoff_request&)> on_handoff_request;
  /// A member handed shards over (I/O thread).
  std::function<void(const wire::handoff_done&)> on_handoff_done;
  /// The I/O thread failed and stopped: no heartbeats go out or come in any more.
  std::function<void()> on_failed;
  /// An escalation record from the owner of its alert's shard (I/O thread).
  std::function<void(const wire::escalation_copy&)> on_escalation;
};

class peer_link {
public:
  /// Binds `opts.bind`, connects to every other member, starts the I/O thread.
  /// errc::unavailable when the endpoint cannot be bound; config_error when, with CURVE, a
  /// member has no key of role `node` named after it in the access list.
  static result<std::unique_ptr<peer_link>> start(zmq::context_t& ctx, peer_link_options opts, peer_events events);
  ~peer_link();
  peer_link(const peer_link&) = delete;
  peer_link& operator=(const peer_link&) = delete;
  const std::string& endpoint() const noexcept { return bound_; }
  /// The ingest endpoint this node's heartbeats give from now on (it is bound after the
  /// peer links start). Thread-safe.
  void advertise_ingest(const std::string& endpoint);
  /// Queues `bytes` for member `member` (dropped when it is not connected). Thread-safe.
  void send(const std::string& member, std::string bytes);
  /// Stops the I/O thread and closes the sockets. Idempotent.
  void stop();

private:
  struct impl;
  explicit peer_link(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
  std::string bound_;
};

}  // namespace alert::cluster
