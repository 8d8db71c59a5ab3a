#pragma once
// A small blocking client for the ingest protocol, used by alert-sim, alert-bench and tests.
// It resends a batch under the same batch id when no reply comes in time; the node counts
// readings it already has as duplicates, so a resend never doubles anything.

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "cluster/curve.hpp"
#include "cluster/ingest_wire.hpp"
#include "engine/status.hpp"

namespace zmq {
class context_t;
class socket_t;
}  // namespace zmq

namespace alert::cluster {

struct client_options {
  std::string endpoint = "tcp://127.0.0.1:7600";
  /// How long to wait for a reply before sending the batch again.
  std::chrono::milliseconds timeout{5000};
  /// Sends of one batch in all (first try included) before giving up.
  int attempts = 5;
  /// Pause before resending after an `overloaded` reply; doubles each time.
  std::chrono::milliseconds overload_backoff{50};
  /// CURVE keys (cluster/curve.hpp); plaintext when not enabled.
  client_security security;
};

/// A DEALER connected to one node. Not thread-safe: one client per thread.
class ingest_client {
public:
  ingest_client(zmq::context_t& ctx, client_options opts);
  ~ingest_client();
  ingest_client(const ingest_client&) = delete;
  ingest_client& operator=(const ingest_client&) = delete;

  /// Sends one batch and waits for its ack. An error reply becomes an error result with
  /// the node's code and message (`overloaded` is retried within the attempts first);
  /// errc::unavailable when no reply came after every attempt.
  result<wire::ingest_ack> send(const wire::batch_id& batch, const std::vector<reading_input>& readings);

  /// Sends an already encoded request and returns the raw reply (for protocol tests).
  result<std::string> request_raw(const std::string& frame, std::chrono::milliseconds timeout);

  /// Resends made because a reply did not come in time (for tests and tools).
  std::uint64_t resends() const noexcept { return resends_; }

private:
  void reconnect();
  zmq::context_t& ctx_;
  client_options opts_;
  std::unique_ptr<zmq::socket_t> socket_;
  std::uint64_t resends_ = 0;
};

}  // namespace alert::cluster
