#include "cluster/control_server.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <zmq.hpp>

#include "engine/log.hpp"

namespace alert::cluster {

struct control_server::impl {
  impl(zmq::context_t& ctx, const control_options& o, control_handler h)
      : opts(o), handler(std::move(h)), socket(ctx, zmq::socket_type::router) {}
  ~impl() {
    if (wake_fd >= 0) ::close(wake_fd);
  }

  struct job {
    std::string identity;
    wire::control_request request;
    control_caller caller;
  };
  struct outgoing {
    std::string identity;
    std::string payload;
  };

  control_options opts;
  control_handler handler;
  zmq::socket_t socket;
  std::string bound;
  int wake_fd = -1;
  std::thread io, worker;
  std::atomic<bool> stopping{false};

  std::mutex mutex;  // guards jobs, out, worker_done
  std::condition_variable work;
  std::deque<job> jobs;
  std::deque<outgoing> out;
  bool worker_done = false;

  void wake() {
    std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_fd, &one, sizeof one);
  }

  void send(const outgoing& o) {
    try {
      socket.send(zmq::buffer(o.identity), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
      socket.send(zmq::buffer(o.payload), zmq::send_flags::dontwait);
    } catch (const zmq::error_t& e) {
      // The client went away (ROUTER_MANDATORY) or is not reading: its answer is dropped.
      log(log_level::debug, "control", "reply_dropped", {{"error", e.what()}});
    }
  }

  void reply_error(const std::string& identity, std::uint64_t id, errc code, std::string message) {
    wire::control_reply r;
    r.id = id;
    r.ok = false;
    r.code = code;
    r.message = std::move(message);
    send({identity, wire::encode_control_reply(r)});
  }

  void receive_one(zmq::message_t& first) {
    std::string identity{static_cast<const char*>(first.data()), first.size()};
    std::vector<zmq::message_t> parts;
    bool more = first.more();
    while (more) {
      zmq::message_t m;
      if (!socket.recv(m)) return;
      more = m.more();
      parts.push_back(std::move(m));
    }
    if (parts.size() != 1) {
      reply_error(identity, 0, errc::malformed, "send one MessagePack frame per request");
      return;
    }
    // The peer's metadata rides on the frames it sent, not on the ROUTER's identity frame.
    auto sender = peer_of(parts[0], opts.security, endpoint_kind::control);
    const auto* data = static_cast<const char*>(parts[0].data());
    const auto size = parts[0].size();
    const auto id = wire::peek_control_request_id(data, size).value_or(0);
    if (size > opts.max_message_bytes) {
      reply_error(identity, id, errc::too_large, "request larger than " + std::to_string(opts.max_message_bytes) + " bytes");
      return;
    }
    auto req = wire::decode_control_request(data, size);
    if (!req) {
      reply_error(identity, id, req.code(), req.error().message());
      return;
    }
    control_caller caller;
    if (opts.security.enabled()) {
      if (!sender) {
        reply_error(identity, id, errc::unauthorized, "this key is no longer in the node's access list");
        return;
      }
      caller = {true, sender->who->name, sender->who->what};
    }
    {
      std::lock_guard<std::mutex> lock{mutex};
      if (jobs.size() >= opts.max_queued) {
        reply_error(identity, id, errc::overloaded, "too many control requests waiting; retry shortly");
        return;
      }
      jobs.push_back({std::move(identity), std::move(*req), std::move(caller)});
    }
    work.notify_one();
  }

  void flush() {
    std::deque<outgoing> batch;
    {
      std::lock_guard<std::mutex> lock{mutex};
      batch.swap(out);
    }
    for (const auto& o : batch) send(o);
  }

  void run_io() {
    zmq::pollitem_t items[2] = {{socket.handle(), 0, ZMQ_POLLIN, 0}, {nullptr, wake_fd, ZMQ_POLLIN, 0}};
    try {
      for (;;) {
        zmq::poll(items, 2, std::chrono::milliseconds{-1});
        if (items[1].revents & ZMQ_POLLIN) {
          std::uint64_t n;
          [[maybe_unused]] auto r = ::read(wake_fd, &n, sizeof n);
        }
        flush();
        bool done;
        {
          std::lock_guard<std::mutex> lock{mutex};
          done = worker_done && out.empty();
        }
        if (done) break;
        if (!stopping.load() && (items[0].revents & ZMQ_POLLIN)) {
          for (int i = 0; i < 64; ++i) {
            zmq::message_t first;
            if (!socket.recv(first, zmq::recv_flags::dontwait)) break;
            receive_one(first);
          }
        }
      }
    } catch (const std::exception& e) {
      log(log_level::error, "control", "io_thread_failed", {{"error", e.what()}});
    }
    socket.set(zmq::sockopt::linger, 1000);
    socket.close();
  }

  void run_worker() {
    for (;;) {
      job j;
      {
        std::unique_lock<std::mutex> lock{mutex};
        work.wait(lock, [&] { return stopping.load() || !jobs.empty(); });
        if (jobs.empty()) {
          worker_done = true;
          break;
        }
        j = std::move(jobs.front());
        jobs.pop_front();
      }
      wire::control_reply reply;
      try {
        reply = handler(j.request, j.caller);
      } catch (const std::exception& e) {
        reply = wire::control_reply{};
        reply.ok = false;
        reply.code = errc::internal;
        reply.message = std::string{"command failed: "} + e.what();
      }
      reply.id = j.request.id;
      {
        std::lock_guard<std::mutex> lock{mutex};
        out.push_back({std::move(j.identity), wire::encode_control_reply(reply)});
      }
      wake();
    }
    wake();
  }
};

result<std::unique_ptr<control_server>> control_server::start(zmq::context_t& ctx, const control_options& opts,
                                                              control_handler handler) {
  auto p = std::make_unique<impl>(ctx, opts, std::move(handler));
  p->wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (p->wake_fd < 0) return status{errc::io_error, "eventfd failed"};
  try {
    p->socket.set(zmq::sockopt::router_mandatory, 1);
    p->socket.set(zmq::sockopt::maxmsgsize, static_cast<std::int64_t>(opts.max_message_bytes) * 4);
    p->socket.set(zmq::sockopt::linger, 0);
    apply_server(p->socket, opts.security, endpoint_kind::control);
    p->socket.bind(opts.endpoint);
    p->bound = p->socket.get(zmq::sockopt::last_endpoint);
  } catch (const zmq::error_t& e) {
    return status{errc::unavailable, "cannot bind control endpoint " + opts.endpoint + ": " + e.what()};
  }
  auto* raw = p.get();
  raw->io = std::thread{[raw] { raw->run_io(); }};
  raw->worker = std::thread{[raw] { raw->run_worker(); }};
  log(log_level::info, "control", "listening", {{"endpoint", raw->bound}});
  return std::unique_ptr<control_server>{new control_server{std::move(p)}};
}

control_server::control_server(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
control_server::~control_server() { stop(); }

const std::string& control_server::endpoint() const noexcept { return impl_->bound; }

void control_server::stop() {
  if (!impl_ || !impl_->io.joinable()) return;
  {
    std::lock_guard<std::mutex> lock{impl_->mutex};
    impl_->stopping = true;
  }
  impl_->work.notify_all();
  impl_->worker.join();
  impl_->io.join();
}

}  // namespace alert::cluster
