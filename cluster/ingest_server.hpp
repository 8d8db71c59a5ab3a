#pragma once
// The ingest endpoint: a ZeroMQ ROUTER owned by one I/O thread. It decodes and validates
// telemetry requests, hands the valid readings to a backend (the journal, or in a cluster
// the shard owner) and replies only when the backend says they are durable.

#include <atomic>
#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cluster/curve.hpp"
#include "cluster/ingest_wire.hpp"
#include "engine/reading.hpp"
#include "engine/histogram.hpp"
#include "engine/status.hpp"
#include "engine/time.hpp"

namespace zmq {
class context_t;
}

namespace alert::cluster {

/// Where accepted readings go. Implemented by the node (journal, then actors).
class ingest_backend {
public:
  virtual ~ingest_backend() = default;
  /// Called once the readings are durable (status ok) or could not be stored (status says
  /// why); may run on any thread, must not block.
  using done_fn = std::function<void(status, std::uint64_t accepted, std::uint64_t duplicates)>;
  /// Where readings come from: an integrator; a cluster member that forwards them to this
  /// node as their owner (never routed again); or their owner, replicating them to this
  /// node as their shard's follower (journaled only).
  enum class origin { integrator, forwarded, replica };
  /// Takes `readings` received at node time `received`. Returns errc::overloaded or
  /// errc::unavailable without calling `done` when it cannot take them now.
  virtual status submit(std::vector<reading> readings, epoch_ms received, done_fn done, origin from) = 0;
};

/// Settings of the ingest endpoint.
struct ingest_options {
  std::string endpoint = "tcp://127.0.0.1:7600";
  std::size_t max_message_bytes = 1 << 20;  ///< larger frames are answered too_large
  wire::decode_limits limits;
  epoch_ms max_future_ms = default_max_future_ms;
  /// How long stop() waits for in-flight batches to be answered.
  std::int64_t drain_timeout_ms = 10'000;
  /// CURVE and the access list; plaintext when not enabled. With it, an integrator's readings
  /// for devices outside its allowance are refused one by one with `unauthorized`.
  server_security security;
};

/// Counters for operators (monotonic since start).
/// Number of error codes (errc values), for per-code counts.
inline constexpr std::size_t errc_count = static_cast<std::size_t>(errc::internal) + 1;

struct ingest_stats {
  std::uint64_t requests = 0;
  std::uint64_t request_errors = 0;  ///< requests answered with an error reply
  std::uint64_t accepted = 0;
  std::uint64_t duplicates = 0;
  std::uint64_t rejected = 0;        ///< readings refused with a per-reading code
  std::uint64_t replies_dropped = 0; ///< replies a gone or stalled peer could not take
  std::uint64_t in_flight = 0;       ///< batches waiting for the backend
  std::array<std::uint64_t, errc_count> rejected_by_code{};  ///< readings refused, by code
  std::array<std::uint64_t, errc_count> errors_by_code{};    ///< requests refused whole, by code
  /// Seconds from a request's arrival to its reply (acks wait for the disk).
  histogram::snapshot request_latency;
};

/// A running ingest endpoint.
class ingest_server {
public:
  /// Binds `opts.endpoint` (tcp://127.0.0.1:* picks a free port) and starts the I/O thread.
  /// errc::unavailable when the endpoint cannot be bound.
  static result<std::unique_ptr<ingest_server>> start(zmq::context_t& ctx, const ingest_options& opts,
                                                      ingest_backend& backend, const time_source& clock);
  ~ingest_server();
  ingest_server(const ingest_server&) = delete;
  ingest_server& operator=(const ingest_server&) = delete;

  /// The endpoint actually bound, with the port resolved.
  const std::string& endpoint() const noexcept { return bound_; }

  /// Stops reading requests, answers every batch in flight (bounded by drain_timeout_ms),
  /// then closes the socket. Idempotent.
  void stop();

  ingest_stats stats() const;

private:
  struct impl;
  explicit ingest_server(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
  std::string bound_;
};

}  // namespace alert::cluster
