#pragma once
// The pager endpoint: a ZeroMQ ROUTER owned by one I/O thread. Gateways say hello with the
// targets they serve; the node sends pages and cancels to every gateway serving a target
// and hears back statuses. The node's escalator drives it.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cluster/curve.hpp"
#include "cluster/pager_wire.hpp"
#include "engine/status.hpp"

namespace zmq {
class context_t;
}

namespace alert::cluster {

struct pager_options {
  std::string endpoint = "tcp://127.0.0.1:7601";
  std::size_t max_message_bytes = 64 * 1024;
  /// CURVE and the access list; plaintext when not enabled. With it, a gateway is known by
  /// its key's name, and a hello naming a target outside the key's allowance is refused.
  server_security security;
};

/// What gateways report, delivered on the I/O thread (must not block).
struct pager_events {
  /// A status for a page, from the gateway named `gateway`.
  std::function<void(const std::string& gateway, const wire::pager_status&)> on_status;
  /// A gateway said hello for the first time, or again with other targets (a repeated
  /// hello, the gateways' heartbeat, is only answered).
  std::function<void(const wire::pager_hello&)> on_hello;
  /// A gateway could not be reached any more and was forgotten.
  std::function<void(const std::string& gateway)> on_gone;
};

/// A running pager endpoint. Thread-safe.
class pager_server {
public:
  /// Binds `opts.endpoint` (tcp://127.0.0.1:* picks a free port); errc::unavailable when it
  /// cannot be bound.
  static result<std::unique_ptr<pager_server>> start(zmq::context_t& ctx, const pager_options& opts,
                                                     pager_events events);
  ~pager_server();
  pager_server(const pager_server&) = delete;
  pager_server& operator=(const pager_server&) = delete;

  const std::string& endpoint() const noexcept;

  /// Queues `page` for every gateway serving its target (by name or "*"). Returns the
  /// number of gateways it goes to; 0 means the target is unreachable now.
  std::size_t send_page(const wire::pager_page& page);
  /// Queues a cancel for every gateway serving `target`; returns how many.
  std::size_t send_cancel(const std::string& target, const wire::pager_cancel& cancel);

  /// With CURVE, after the access list was replaced: forgets every gateway whose key is no
  /// longer admitted or whose targets are no longer all its own (no more pages go to it).
  void recheck_access();

  /// Names of the gateways that said hello and have not been found gone.
  std::vector<std::string> gateways() const;

  /// Stops the I/O thread after sending what is queued. Idempotent.
  void stop();

private:
  struct impl;
  explicit pager_server(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

}  // namespace alert::cluster
