#pragma once
// Forwards readings to the member that owns their shard (docs/cluster.md): one I/O thread,
// a DEALER per member (CURVE with this node's key, role node), each batch sent as an ingest
// request marked `forwarded_by` and completed by the owner's reply, or failed as
// unavailable when none comes in time. The owner journals forwarded readings as its own;
// (device, seq) makes a resend after a timeout harmless.

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cluster/curve.hpp"
#include "engine/reading.hpp"
#include "engine/status.hpp"

namespace zmq {
class context_t;
class socket_t;
}  // namespace zmq

namespace alert::cluster {

/// A member to forward to.
struct forward_target {
  std::string member;         ///< its node id
  std::string endpoint;       ///< its ingest endpoint, as its heartbeats say
  client_security security;   ///< with CURVE: this node's keys and the member's public key
};

class forwarder {
public:
  /// Ok with the owner's counts, or unavailable (no answer, or an error reply) with why.
  using done_fn = std::function<void(status, std::uint64_t accepted, std::uint64_t duplicates)>;

  static result<std::unique_ptr<forwarder>> start(zmq::context_t& ctx, std::string self,
                                                  std::chrono::milliseconds timeout);
  ~forwarder();
  forwarder(const forwarder&) = delete;
  forwarder& operator=(const forwarder&) = delete;

  /// Queues `readings` for `to` (as their owner's `replica` to journal only, or for `to` to
  /// own); `done` runs once, on the forwarder's thread (or in stop()).
  void forward(const forward_target& to, std::vector<reading> readings, done_fn done, bool replica = false);

  /// Fails at once what waits for `member` (found unreachable): the integrator resends
  /// through the new placement instead of waiting for the timeout.
  void abandon(const std::string& member);

  /// Fails whatever is outstanding with unavailable and stops the thread. Idempotent.
  void stop();

private:
  struct job {
    forward_target to;
    std::string bytes;
    std::uint64_t id = 0;
    done_fn done;
  };
  struct waiting {
    done_fn done;
    std::chrono::steady_clock::time_point deadline;
    std::string member;
    std::string endpoint;
  };
  forwarder() = default;
  void run();
  zmq::socket_t& socket_for(const forward_target& to);

  zmq::context_t* ctx_ = nullptr;
  std::string self_;
  std::chrono::milliseconds timeout_{5000};
  int wake_fd_ = -1;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<std::uint64_t> next_id_{1};
  std::mutex mutex_;
  std::deque<job> queue_;  // guarded by mutex_
  std::vector<std::string> abandoned_;  // guarded by mutex_
  // The I/O thread's own: a DEALER per endpoint, and the requests waiting for a reply.
  std::map<std::string, std::unique_ptr<zmq::socket_t>> sockets_;
  std::map<std::uint64_t, waiting> waiting_;
};

/// A validated reading back in wire form (canonical unit), to forward it.
reading_input to_input(const reading& r);

}  // namespace alert::cluster
