#include "cluster/ingest_server.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <zmq.hpp>

#include "engine/log.hpp"

namespace alert::cluster {
namespace {

constexpr std::size_t max_envelope_frames = 8;

std::string reading_context(const wire::batch_id& batch) { return wire::to_string(batch); }

}  // namespace

struct ingest_server::impl {
  impl(zmq::context_t& ctx, const ingest_options& o, ingest_backend& b, const time_source& c)
      : opts(o), backend(b), clock(c), socket(ctx, zmq::socket_type::router) {}

  ~impl() {
    if (wake_fd >= 0) ::close(wake_fd);
  }

  // A reply ready to go out: the request's envelope frames, then the payload.
  struct outgoing {
    std::vector<std::string> envelope;
    std::string payload;
  };

  ingest_options opts;
  ingest_backend& backend;
  const time_source& clock;
  zmq::socket_t socket;
  int wake_fd = -1;
  std::thread thread;

  std::mutex out_mutex;
  std::deque<outgoing> out;

  std::atomic<bool> stopping{false};
  std::atomic<std::uint64_t> in_flight{0};
  std::atomic<std::uint64_t> requests{0}, request_errors{0}, accepted{0}, duplicates{0}, rejected{0},
      replies_dropped{0};
  std::array<std::atomic<std::uint64_t>, errc_count> rejected_by_code{}, errors_by_code{};
  histogram request_latency{histogram::latency_bounds()};

  static std::size_t index_of(errc c) { return std::min(static_cast<std::size_t>(c), errc_count - 1); }

  void wake() {
    std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_fd, &one, sizeof one);
  }

  void post(outgoing&& o) {
    {
      std::lock_guard<std::mutex> lock{out_mutex};
      out.push_back(std::move(o));
    }
    wake();
  }

  void flush_replies() {
    std::deque<outgoing> batch;
    {
      std::lock_guard<std::mutex> lock{out_mutex};
      batch.swap(out);
    }
    for (auto& o : batch) send(o);
  }

  void send(const outgoing& o) {
    try {
      for (const auto& frame : o.envelope)
        if (!socket.send(zmq::buffer(frame), zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
          replies_dropped.fetch_add(1, std::memory_order_relaxed);
          return;
        }
      if (!socket.send(zmq::buffer(o.payload), zmq::send_flags::dontwait))
        replies_dropped.fetch_add(1, std::memory_order_relaxed);
    } catch (const zmq::error_t& e) {
      // ROUTER drops messages to unknown peers; anything else is logged, never fatal.
      replies_dropped.fetch_add(1, std::memory_order_relaxed);
      log(log_level::warn, "ingest", "reply_failed", {{"error", e.what()}});
    }
  }

  // Refusals are logged at most refusals_logged_per_second a second for each code; the
  // rest are counted (metrics) and summed up in one line when the second is over. An
  // integrator retrying in a tight loop (e.g. while a shard moves) does not flood the log.
  static constexpr std::uint32_t refusals_logged_per_second = 10;
  struct refusal_window {
    std::int64_t second = 0;
    std::uint32_t logged = 0;
    std::uint64_t suppressed = 0;
  };
  std::mutex refusals_mutex;
  std::array<refusal_window, errc_count> refusals{};

  void log_refusal(const wire::batch_id& batch, errc code, const std::string& message) {
    const auto second =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
    std::uint64_t summed = 0;
    bool log_it = false;
    {
      std::lock_guard<std::mutex> lock{refusals_mutex};
      auto& w = refusals[index_of(code)];
      if (w.second != second) {
        summed = w.suppressed;
        w = refusal_window{second, 0, 0};
      }
      log_it = w.logged < refusals_logged_per_second;
      if (log_it) ++w.logged;
      else ++w.suppressed;
    }
    if (summed > 0)
      log(log_level::info, "ingest", "requests_refused_unlogged",
          {{"code", std::string{to_string(code)}}, {"count", std::to_string(summed)}});
    if (log_it)
      log(log_level::info, "ingest", "request_refused",
          {{"batch", reading_context(batch)}, {"code", std::string{to_string(code)}}, {"msg", message}});
  }

  void reply_error(std::vector<std::string>&& envelope, wire::batch_id batch, errc code, std::string message) {
    request_errors.fetch_add(1, std::memory_order_relaxed);
    errors_by_code[index_of(code)].fetch_add(1, std::memory_order_relaxed);
    log_refusal(batch, code, message);
    send({std::move(envelope), wire::encode_error({std::move(batch), code, std::move(message)})});
  }

  // Reads one multipart message; returns false when none is waiting.
  bool receive_one() {
    std::vector<std::string> envelope;
    zmq::message_t msg;
    std::string payload;
    bool oversized = false;
    std::size_t frames = 0;
    if (!socket.recv(msg, zmq::recv_flags::dontwait)) return false;
    for (;;) {
      ++frames;
      bool more = msg.more();
      if (!more) {
        if (msg.size() > opts.max_message_bytes) oversized = true;
        else payload.assign(static_cast<const char*>(msg.data()), msg.size());
        break;
      }
      if (envelope.size() < max_envelope_frames) envelope.emplace_back(static_cast<const char*>(msg.data()), msg.size());
      if (!socket.recv(msg)) return true;  // cannot happen: ZeroMQ delivers messages whole
    }
    // The peer's metadata rides on the frames it sent, not on the ROUTER's identity frame.
    auto sender = peer_of(msg, opts.security, endpoint_kind::ingest);
    requests.fetch_add(1, std::memory_order_relaxed);
    if (envelope.empty()) return true;  // ROUTER always adds an identity; nothing to answer
    if (frames > max_envelope_frames + 1) {
      reply_error(std::move(envelope), {}, errc::malformed, "too many frames: send one MessagePack frame per request");
      return true;
    }
    if (oversized) {
      reply_error(std::move(envelope), {}, errc::too_large,
                  "request frame is larger than " + std::to_string(opts.max_message_bytes) + " bytes");
      return true;
    }
    handle(std::move(envelope), payload, sender);
    return true;
  }

  void deny(const std::string& who, const std::string& action, const std::string& subject) {
    if (!opts.security.on_denied) return;
    try {
      opts.security.on_denied(who, action, subject);
    } catch (const std::exception& e) {
      log(log_level::error, "ingest", "denial_report_failed", {{"error", e.what()}});
    }
  }

  void handle(std::vector<std::string>&& envelope, const std::string& payload, const std::optional<peer>& sender) {
    auto req = wire::decode_request(payload.data(), payload.size(), opts.limits);
    if (!req.error) {
      reply_error(std::move(envelope), std::move(req.batch), req.error.code(), req.error.message());
      return;
    }
    // With CURVE every sender passed the ZAP handler; one missing now was removed from the
    // access list by a reload after it connected.
    if (opts.security.enabled() && !sender) {
      deny("(removed key)", "ingest", wire::to_string(req.batch));
      reply_error(std::move(envelope), std::move(req.batch), errc::unauthorized,
                  "this key is no longer in the node's access list");
      return;
    }
    const principal* who = sender ? sender->who : nullptr;
    const bool checked = who && who->what == role::integrator;
    const epoch_ms now = clock.now();
    std::vector<wire::rejection> refused = std::move(req.rejected);
    std::vector<reading> readings;
    readings.reserve(req.readings.size());
    std::size_t denied = 0;
    std::string first_denied;
    for (std::size_t i = 0; i < req.readings.size(); ++i) {
      if (checked && !matches_any(who->devices, req.readings[i].device)) {
        if (denied++ == 0) first_denied = req.readings[i].device;
        refused.push_back({req.indexes[i], errc::unauthorized,
                           "key '" + who->name + "' may not send for device '" + req.readings[i].device + "'"});
        continue;
      }
      auto r = make_reading(req.readings[i], now, opts.max_future_ms);
      if (r) readings.push_back(std::move(*r));
      else refused.push_back({req.indexes[i], r.code(), r.error().message()});
    }
    if (denied > 0) {
      log(log_level::warn, "ingest", "readings_denied",
          {{"who", who->name}, {"device", first_denied}, {"count", std::to_string(denied)}});
      deny(who->name, "ingest", first_denied + (denied > 1 ? " and " + std::to_string(denied - 1) + " more" : ""));
    }
    std::sort(refused.begin(), refused.end(), [](const auto& a, const auto& b) { return a.index < b.index; });
    rejected.fetch_add(refused.size(), std::memory_order_relaxed);
    for (const auto& r : refused) rejected_by_code[index_of(r.code)].fetch_add(1, std::memory_order_relaxed);
    if (readings.empty()) {
      send({std::move(envelope), wire::encode_ack({std::move(req.batch), 0, 0, std::move(refused)})});
      return;
    }
    // The reply waits for durability: it is built by the backend's completion.
    auto pending = std::make_shared<outgoing>();
    pending->envelope = std::move(envelope);
    auto ack = std::make_shared<wire::ingest_ack>();
    ack->batch = std::move(req.batch);
    ack->rejected = std::move(refused);
    in_flight.fetch_add(1, std::memory_order_relaxed);
    const auto arrived = std::chrono::steady_clock::now();
    // Only a member (role node with CURVE) may say its readings are already routed.
    const bool member = !req.forwarded_by.empty() &&
                        (!opts.security.enabled() || (who && who->what == role::node && who->name == req.forwarded_by));
    const auto from = !member ? ingest_backend::origin::integrator
                      : req.replica ? ingest_backend::origin::replica
                                    : ingest_backend::origin::forwarded;
    auto st = backend.submit(std::move(readings), now, [this, pending, ack, arrived](status s, std::uint64_t acc,
                                                                                     std::uint64_t dup) {
      if (s) {
        ack->accepted = acc;
        ack->duplicates = dup;
        accepted.fetch_add(acc, std::memory_order_relaxed);
        duplicates.fetch_add(dup, std::memory_order_relaxed);
        pending->payload = wire::encode_ack(*ack);
      } else {
        request_errors.fetch_add(1, std::memory_order_relaxed);
        errors_by_code[index_of(errc::unavailable)].fetch_add(1, std::memory_order_relaxed);
        pending->payload = wire::encode_error(
            {ack->batch, errc::unavailable, "readings could not be stored (" + s.to_string() + "); retry later"});
      }
      post(std::move(*pending));
      request_latency.observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - arrived).count());
      in_flight.fetch_sub(1, std::memory_order_relaxed);
    }, from);
    if (!st) {
      in_flight.fetch_sub(1, std::memory_order_relaxed);
      auto code = st.code() == errc::overloaded ? errc::overloaded : errc::unavailable;
      reply_error(std::move(pending->envelope), std::move(ack->batch), code, st.message());
    }
  }

  void run() {
    zmq::pollitem_t items[2] = {{socket.handle(), 0, ZMQ_POLLIN, 0}, {nullptr, wake_fd, ZMQ_POLLIN, 0}};
    try {
      while (!stopping.load(std::memory_order_acquire)) {
        zmq::poll(items, 2, std::chrono::milliseconds{-1});
        if (items[1].revents & ZMQ_POLLIN) {
          std::uint64_t n;
          [[maybe_unused]] auto r = ::read(wake_fd, &n, sizeof n);
          flush_replies();
        }
        if (items[0].revents & ZMQ_POLLIN) {
          // Bounded so replies keep flowing under a flood of requests.
          for (int i = 0; i < 256 && receive_one(); ++i) {
          }
        }
      }
      // Draining: no new requests; answer what is in flight.
      auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds{opts.drain_timeout_ms};
      while (in_flight.load() > 0 && std::chrono::steady_clock::now() < deadline) {
        zmq::poll(&items[1], 1, std::chrono::milliseconds{100});
        if (items[1].revents & ZMQ_POLLIN) {
          std::uint64_t n;
          [[maybe_unused]] auto r = ::read(wake_fd, &n, sizeof n);
        }
        flush_replies();
      }
      flush_replies();
      if (in_flight.load() > 0)
        log(log_level::error, "ingest", "drain_timeout", {{"in_flight", std::to_string(in_flight.load())}});
    } catch (const std::exception& e) {
      log(log_level::error, "ingest", "io_thread_failed", {{"error", e.what()}});
    }
    socket.set(zmq::sockopt::linger, 2000);
    socket.close();
  }
};

result<std::unique_ptr<ingest_server>> ingest_server::start(zmq::context_t& ctx, const ingest_options& opts,
                                                            ingest_backend& backend, const time_source& clock) {
  auto p = std::make_unique<impl>(ctx, opts, backend, clock);
  p->wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (p->wake_fd < 0) return status{errc::io_error, "eventfd failed"};
  std::string bound;
  try {
    // Frames far over the limit drop the peer outright; those a little over get too_large.
    p->socket.set(zmq::sockopt::maxmsgsize, static_cast<std::int64_t>(opts.max_message_bytes) * 4);
    p->socket.set(zmq::sockopt::sndhwm, 100000);
    p->socket.set(zmq::sockopt::rcvhwm, 100000);
    p->socket.set(zmq::sockopt::linger, 0);
    apply_server(p->socket, opts.security, endpoint_kind::ingest);
    p->socket.bind(opts.endpoint);
    bound = p->socket.get(zmq::sockopt::last_endpoint);
  } catch (const zmq::error_t& e) {
    return status{errc::unavailable, "cannot bind ingest endpoint " + opts.endpoint + ": " + e.what()};
  }
  std::unique_ptr<ingest_server> s{new ingest_server{std::move(p)}};
  s->bound_ = std::move(bound);
  auto* raw = s->impl_.get();
  raw->thread = std::thread{[raw] { raw->run(); }};
  log(log_level::info, "ingest", "listening", {{"endpoint", s->bound_}});
  return s;
}

ingest_server::ingest_server(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

ingest_server::~ingest_server() { stop(); }

void ingest_server::stop() {
  if (!impl_ || !impl_->thread.joinable()) return;
  impl_->stopping.store(true, std::memory_order_release);
  impl_->wake();
  impl_->thread.join();
}

ingest_stats ingest_server::stats() const {
  ingest_stats s;
  s.requests = impl_->requests.load();
  s.request_errors = impl_->request_errors.load();
  s.accepted = impl_->accepted.load();
  s.duplicates = impl_->duplicates.load();
  s.rejected = impl_->rejected.load();
  for (std::size_t i = 0; i < errc_count; ++i) {
    s.rejected_by_code[i] = impl_->rejected_by_code[i].load(std::memory_order_relaxed);
    s.errors_by_code[i] = impl_->errors_by_code[i].load(std::memory_order_relaxed);
  }
  s.request_latency = impl_->request_latency.read();
  s.replies_dropped = impl_->replies_dropped.load();
  s.in_flight = impl_->in_flight.load();
  return s;
}

}  // namespace alert::cluster
