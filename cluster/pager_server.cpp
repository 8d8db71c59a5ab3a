#include "cluster/pager_server.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <zmq.hpp>

#include "engine/escalation.hpp"
#include "engine/log.hpp"

namespace alert::cluster {

struct pager_server::impl {
  impl(zmq::context_t& ctx, const pager_options& o, pager_events e)
      : opts(o), events(std::move(e)), socket(ctx, zmq::socket_type::router) {}
  ~impl() {
    if (wake_fd >= 0) ::close(wake_fd);
  }

  struct gateway {
    std::string name;
    std::vector<std::string> targets;
    std::string key;  // with CURVE: the Z85 key it authenticated with
  };
  struct outgoing {
    std::string identity;
    std::string payload;
  };

  pager_options opts;
  pager_events events;
  zmq::socket_t socket;
  std::string bound;
  int wake_fd = -1;
  std::thread thread;
  std::atomic<bool> stopping{false};

  mutable std::mutex mutex;                 // guards gateways and out
  std::map<std::string, gateway> gateways;  // by ZeroMQ routing id
  std::deque<outgoing> out;

  void wake() {
    std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_fd, &one, sizeof one);
  }

  std::size_t queue_for(const std::string& target, const std::string& payload) {
    std::size_t n = 0;
    {
      std::lock_guard<std::mutex> lock{mutex};
      for (const auto& [id, g] : gateways)
        for (const auto& t : g.targets)
          if (t == target || t == "*") {
            out.push_back({id, payload});
            ++n;
            break;
          }
    }
    if (n > 0) wake();
    return n;
  }

  // Sends one message; a peer that is gone (ROUTER_MANDATORY) is forgotten.
  void send(const outgoing& o) {
    try {
      socket.send(zmq::buffer(o.identity), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
      socket.send(zmq::buffer(o.payload), zmq::send_flags::dontwait);
    } catch (const zmq::error_t& e) {
      if (e.num() != EHOSTUNREACH) {
        log(log_level::warn, "pager", "send_failed", {{"error", e.what()}});
        return;
      }
      std::string name;
      {
        std::lock_guard<std::mutex> lock{mutex};
        auto it = gateways.find(o.identity);
        if (it == gateways.end()) return;
        name = it->second.name;
        gateways.erase(it);
      }
      log(log_level::warn, "pager", "gateway_gone", {{"gateway", name}});
      if (events.on_gone) events.on_gone(name);
    }
  }

  void flush() {
    std::deque<outgoing> batch;
    {
      std::lock_guard<std::mutex> lock{mutex};
      batch.swap(out);
    }
    for (const auto& o : batch) send(o);
  }

  void reply_now(const std::string& identity, std::string payload) { send({identity, std::move(payload)}); }

  // Forgets the gateway on connection `identity`, if any: no more pages go to it.
  void forget(const std::string& identity, const char* why) {
    std::string name;
    {
      std::lock_guard<std::mutex> lock{mutex};
      auto it = gateways.find(identity);
      if (it == gateways.end()) return;
      name = it->second.name;
      gateways.erase(it);
    }
    log(log_level::warn, "pager", "gateway_dropped", {{"gateway", name}, {"why", why}});
    if (events.on_gone) events.on_gone(name);
  }

  void deny(const std::string& who, const std::string& action, const std::string& subject) {
    if (!opts.security.on_denied) return;
    try {
      opts.security.on_denied(who, action, subject);
    } catch (const std::exception& e) {
      log(log_level::error, "pager", "denial_report_failed", {{"error", e.what()}});
    }
  }

  // With CURVE: refuses (and forgets) a connection whose key is no longer admitted.
  bool admitted(const std::string& identity, const std::optional<peer>& sender) {
    if (!opts.security.enabled() || sender) return true;
    forget(identity, "key no longer admitted");
    reply_now(identity, wire::encode_error({errc::unauthorized, "this key is no longer in the node's access list"}));
    return false;
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
      reply_now(identity, wire::encode_error({errc::malformed, "send one MessagePack frame per message"}));
      return;
    }
    auto& frame = parts[0];
    // The peer's metadata rides on the frames it sent, not on the ROUTER's identity frame.
    auto sender = peer_of(frame, opts.security, endpoint_kind::pager);
    if (frame.size() > opts.max_message_bytes) {
      reply_now(identity, wire::encode_error({errc::too_large, "message larger than " +
                                                                   std::to_string(opts.max_message_bytes) + " bytes"}));
      return;
    }
    auto msg = wire::decode_from_gateway(static_cast<const char*>(frame.data()), frame.size());
    if (!msg) {
      reply_now(identity, wire::encode_error({msg.code(), msg.error().message()}));
      return;
    }
    if (auto* hello = std::get_if<wire::pager_hello>(&*msg)) {
      std::string key;
      if (opts.security.enabled()) {
        // The key says who the gateway is; the targets it claims must be its own.
        if (!admitted(identity, sender)) return;
        hello->gateway = sender->who->name;
        key = sender->who->public_key;
        for (const auto& t : hello->targets)
          if (!matches_any(sender->who->targets, t)) {
            log(log_level::warn, "pager", "hello_denied", {{"gateway", hello->gateway}, {"target", t}});
            forget(identity, "hello for a target not its own");
            deny(hello->gateway, "gateway-hello", t);
            reply_now(identity, wire::encode_error({errc::unauthorized, "key '" + hello->gateway +
                                                                            "' may not serve target '" + t + "'"}));
            return;
          }
      }
      // Gateways repeat their hello as a heartbeat (a restarted node learns them from it);
      // only a new gateway, or new targets, is news.
      bool news = false;
      {
        std::lock_guard<std::mutex> lock{mutex};
        auto it = gateways.find(identity);
        news = it == gateways.end() || it->second.name != hello->gateway || it->second.targets != hello->targets;
        if (news) gateways[identity] = gateway{hello->gateway, hello->targets, key};
      }
      reply_now(identity, wire::encode_welcome({hello->gateway, hello->targets}));
      if (!news) return;
      std::string targets;
      for (const auto& t : hello->targets) targets += (targets.empty() ? "" : ",") + t;
      log(log_level::info, "pager", "gateway_hello", {{"gateway", hello->gateway}, {"targets", targets}});
      if (events.on_hello) events.on_hello(*hello);
      return;
    }
    const auto& st = std::get<wire::pager_status>(*msg);
    if (!admitted(identity, sender)) return;
    std::string name;
    bool serves = false;
    const auto target = page_target(st.page_id);
    {
      std::lock_guard<std::mutex> lock{mutex};
      auto it = gateways.find(identity);
      if (it != gateways.end()) {
        name = it->second.name;
        for (const auto& t : it->second.targets) serves = serves || t == "*" || t == target;
      }
    }
    if (name.empty()) {
      reply_now(identity, wire::encode_error({errc::unauthorized, "say hello before sending statuses"}));
      return;
    }
    // A gateway answers only for pages of its own targets: it cannot accept (and so stop)
    // another team's escalation.
    if (opts.security.enabled() && (!serves || !matches_any(sender->who->targets, target))) {
      log(log_level::warn, "pager", "status_denied", {{"gateway", name}, {"page", st.page_id}});
      deny(name, "page-status", st.page_id);
      reply_now(identity, wire::encode_error({errc::unauthorized, "gateway '" + name + "' does not serve the target of page '" +
                                                                      st.page_id + "'"}));
      return;
    }
    if (events.on_status) events.on_status(name, st);
  }

  void run() {
    zmq::pollitem_t items[2] = {{socket.handle(), 0, ZMQ_POLLIN, 0}, {nullptr, wake_fd, ZMQ_POLLIN, 0}};
    try {
      while (!stopping.load()) {
        zmq::poll(items, 2, std::chrono::milliseconds{-1});
        if (items[1].revents & ZMQ_POLLIN) {
          std::uint64_t n;
          [[maybe_unused]] auto r = ::read(wake_fd, &n, sizeof n);
        }
        flush();
        if (items[0].revents & ZMQ_POLLIN) {
          for (int i = 0; i < 256; ++i) {
            zmq::message_t first;
            if (!socket.recv(first, zmq::recv_flags::dontwait)) break;
            receive_one(first);
          }
        }
      }
      flush();
    } catch (const std::exception& e) {
      log(log_level::error, "pager", "io_thread_failed", {{"error", e.what()}});
    }
    socket.set(zmq::sockopt::linger, 1000);
    socket.close();
  }
};

result<std::unique_ptr<pager_server>> pager_server::start(zmq::context_t& ctx, const pager_options& opts,
                                                          pager_events events) {
  auto p = std::make_unique<impl>(ctx, opts, std::move(events));
  p->wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (p->wake_fd < 0) return status{errc::io_error, "eventfd failed"};
  try {
    p->socket.set(zmq::sockopt::router_mandatory, 1);  // a gone gateway is an error, not silence
    p->socket.set(zmq::sockopt::maxmsgsize, static_cast<std::int64_t>(opts.max_message_bytes) * 4);
    p->socket.set(zmq::sockopt::linger, 0);
    apply_server(p->socket, opts.security, endpoint_kind::pager);
    p->socket.bind(opts.endpoint);
    p->bound = p->socket.get(zmq::sockopt::last_endpoint);
  } catch (const zmq::error_t& e) {
    return status{errc::unavailable, "cannot bind pager endpoint " + opts.endpoint + ": " + e.what()};
  }
  auto* raw = p.get();
  raw->thread = std::thread{[raw] { raw->run(); }};
  log(log_level::info, "pager", "listening", {{"endpoint", raw->bound}});
  return std::unique_ptr<pager_server>{new pager_server{std::move(p)}};
}

pager_server::pager_server(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
pager_server::~pager_server() { stop(); }

const std::string& pager_server::endpoint() const noexcept { return impl_->bound; }

std::size_t pager_server::send_page(const wire::pager_page& page) {
  return impl_->queue_for(page.target, wire::encode_page(page));
}

std::size_t pager_server::send_cancel(const std::string& target, const wire::pager_cancel& cancel) {
  return impl_->queue_for(target, wire::encode_cancel(cancel));
}

void pager_server::recheck_access() {
  if (!impl_->opts.security.enabled()) return;
  auto list = impl_->opts.security.access->get();
  std::vector<std::string> dropped;
  {
    std::lock_guard<std::mutex> lock{impl_->mutex};
    for (auto it = impl_->gateways.begin(); it != impl_->gateways.end();) {
      const principal* who = list ? list->by_key(it->second.key) : nullptr;
      bool ok = who && may_connect(who->what, endpoint_kind::pager);
      for (const auto& t : it->second.targets) ok = ok && matches_any(who->targets, t);
      if (ok) {
        ++it;
        continue;
      }
      dropped.push_back(it->second.name);
      it = impl_->gateways.erase(it);
    }
  }
  for (const auto& name : dropped) {
    log(log_level::warn, "pager", "gateway_dropped", {{"gateway", name}, {"why", "access file reloaded"}});
    if (impl_->events.on_gone) impl_->events.on_gone(name);
  }
}

std::vector<std::string> pager_server::gateways() const {
  std::lock_guard<std::mutex> lock{impl_->mutex};
  std::vector<std::string> out;
  for (const auto& [id, g] : impl_->gateways) out.push_back(g.name);
  std::sort(out.begin(), out.end());
  return out;
}

void pager_server::stop() {
  if (!impl_ || !impl_->thread.joinable()) return;
  impl_->stopping = true;
  impl_->wake();
  impl_->thread.join();
}

}  // namespace alert::cluster
