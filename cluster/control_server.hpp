#pragma once
// The control endpoint: a ZeroMQ ROUTER that operators' tools (alertctl) send requests to
// (docs/protocol.md, "Control protocol v1"). One I/O thread owns the socket; requests run one
// at a time on a worker thread, since commands may block on the node (a RocksDB read, an
// actor's answer), and their replies go back through the I/O thread.

#include <functional>
#include <memory>
#include <string>

#include "cluster/control_wire.hpp"
#include "cluster/curve.hpp"
#include "engine/status.hpp"

namespace zmq {
class context_t;
}

namespace alert::cluster {

struct control_options {
  std::string endpoint = "tcp://127.0.0.1:7602";
  std::size_t max_message_bytes = 1 << 20;  ///< largest request frame
  std::size_t max_queued = 64;              ///< requests waiting for the worker before `overloaded`
  /// CURVE and the access list; plaintext when not enabled.
  server_security security;
};

/// Who sent a control request. With CURVE: the key's name and role. Plaintext: nobody is
/// authenticated, and the request's own `by` is all there is.
struct control_caller {
  bool authenticated = false;
  std::string name;
  role what = role::operator_;
};

/// Runs a request on the worker thread and returns its reply (the id is filled in by the
/// server). Must not throw; an exception becomes an `internal` reply.
using control_handler = std::function<wire::control_reply(const wire::control_request&, const control_caller&)>;

class control_server {
public:
  /// Binds `opts.endpoint`; errc::unavailable when it cannot be bound.
  static result<std::unique_ptr<control_server>> start(zmq::context_t& ctx, const control_options& opts,
                                                       control_handler handler);
  ~control_server();
  control_server(const control_server&) = delete;
  control_server& operator=(const control_server&) = delete;

  const std::string& endpoint() const noexcept;

  /// Stops taking requests, lets the running one finish, sends its reply, stops. Idempotent.
  void stop();

private:
  struct impl;
  explicit control_server(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

}  // namespace alert::cluster
