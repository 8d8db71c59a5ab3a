#include "cluster/peer_link.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cstring>
#include <deque>
#include <mutex>
#include <zmq.hpp>

#include "cluster/msgpack_util.hpp"
#include "engine/log.hpp"

namespace alert::cluster {

namespace wire {
namespace {
using namespace alert::wire::detail;

constexpr limit_names escalation_limits{16, 16, 1 << 20, 4};

peer_message decode_unguarded(const char* data, std::size_t size) {
  auto limit = msgpack::unpack_limit(escalation_limits.max_array, escalation_limits.max_map_entries,
                                     escalation_limits.max_string_bytes, 1 << 20, max_bin_ext_bytes,
                                     escalation_limits.max_depth);
  std::size_t off = 0;
  auto handle = msgpack::unpack(data, size, off, nullptr, nullptr, limit);
  if (off != size) throw bad_message("trailing bytes after the message");
  const auto& top = handle.get();
  if (top.type != msgpack::type::MAP) throw bad_message("a peer message must be a map");
  const auto& v = need(top, "v");
  if (v.type != msgpack::type::POSITIVE_INTEGER || v.via.u64 != 1) throw bad_message(field("v") + " must be 1");
  const auto type = need_str(top, "type");
  if (type == "escalation") {
    escalation_copy e;
    e.from = need_str(top, "from");
    e.alert = need_str(top, "alert");
    if (const auto* r = find(top, "record")) {
      if (r->type != msgpack::type::BIN) throw bad_message(field("record") + " must be binary");
      e.record = std::string{r->via.bin.ptr, r->via.bin.size};
    }
    return e;
  }
  if (type != "heartbeat") throw bad_message(field("type") + " must be \"heartbeat\" or \"escalation\"");
  heartbeat h;
  h.from = need_str(top, "from");
  if (h.from.empty()) throw bad_message(field("from") + " must not be empty");
  const auto& at = need(top, "at");
  if (!is_integer(at)) throw bad_message(field("at") + " must be an integer");
  h.at = at.type == msgpack::type::NEGATIVE_INTEGER ? at.via.i64 : static_cast<epoch_ms>(at.via.u64);
  if (const auto* ingest = find(top, "ingest")) {
    if (ingest->type != msgpack::type::STR) throw bad_message(field("ingest") + " must be a string");
    h.ingest = std::string{str_of(*ingest)};
  }
  return h;
}
}  // namespace

std::string encode_heartbeat(const heartbeat& h) {
  msgpack::sbuffer buf;
  packer pk(&buf);
  pk.pack_map(h.ingest.empty() ? 4 : 5);
  pack_str(pk, "v");
  pk.pack_uint8(1);
  pack_str(pk, "type");
  pack_str(pk, "heartbeat");
  pack_str(pk, "from");
  pack_str(pk, h.from);
  pack_str(pk, "at");
  pk.pack_int64(h.at);
  if (!h.ingest.empty()) {
    pack_str(pk, "ingest");
    pack_str(pk, h.ingest);
  }
  return to_bytes(buf);
}

result<heartbeat> decode_heartbeat(const char* data, std::size_t size) {
  auto m = decode_peer_message(data, size);
  if (!m) return m.error();
  if (auto* h = std::get_if<heartbeat>(&*m)) return std::move(*h);
  return status{errc::malformed, "not a heartbeat"};
}

result<peer_message> decode_peer_message(const char* data, std::size_t size) {
  return guarded<peer_message>(decode_unguarded, data, size, escalation_limits);
}

std::string encode_escalation_copy(const escalation_copy& e) {
  msgpack::sbuffer buf;
  packer pk(&buf);
  pk.pack_map(e.record ? 5 : 4);
  pack_str(pk, "v");
  pk.pack_uint8(1);
  pack_str(pk, "type");
  pack_str(pk, "escalation");
  pack_str(pk, "from");
  pack_str(pk, e.from);
  pack_str(pk, "alert");
  pack_str(pk, e.alert);
  if (e.record) {
    pack_str(pk, "record");
    pk.pack_bin(wire_size(e.record->size()));
    pk.pack_bin_body(e.record->data(), wire_size(e.record->size()));
  }
  return to_bytes(buf);
}
}  // namespace wire

struct peer_link::impl {
  impl(zmq::context_t& c, peer_link_options o, peer_events e)
      : ctx(c), opts(std::move(o)), events(std::move(e)), router(c, zmq::socket_type::router) {}
  ~impl() {
    if (wake_fd >= 0) ::close(wake_fd);
  }

  zmq::context_t& ctx;
  peer_link_options opts;
  peer_events events;
  zmq::socket_t router;
  std::vector<std::unique_ptr<zmq::socket_t>> dealers;
  int wake_fd = -1;
  std::thread thread;
  std::atomic<bool> stopping{false};
  std::mutex advertised_mutex;
  std::string advertised_ingest;  // guarded by advertised_mutex
  std::deque<std::pair<std::string, std::string>> outgoing;  // (member, bytes), guarded by advertised_mutex

  void flush_outgoing() {
    std::deque<std::pair<std::string, std::string>> batch;
    {
      std::lock_guard<std::mutex> lock{advertised_mutex};
      batch.swap(outgoing);
    }
    for (const auto& [member, bytes] : batch)
      for (std::size_t i = 0; i < opts.others.size() && i < dealers.size(); ++i)
        if (opts.others[i].id == member) {
          try {
            (void)dealers[i]->send(zmq::buffer(bytes), zmq::send_flags::dontwait);
          } catch (const zmq::error_t& e) {
            log(log_level::warn, "cluster", "peer_send_failed", {{"member", member}, {"error", e.what()}});
          }
        }
  }

  static epoch_ms wall_now() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
  }

  void send_heartbeats() {
    std::string ingest;
    {
      std::lock_guard<std::mutex> lock{advertised_mutex};
      ingest = advertised_ingest;
    }
    const auto bytes = wire::encode_heartbeat({opts.self, wall_now(), ingest});
    for (auto& d : dealers) {
      try {
        // Not queued for a member that is not connected (immediate): a heartbeat is news now
        // or never.
        (void)d->send(zmq::buffer(bytes), zmq::send_flags::dontwait);
      } catch (const zmq::error_t& e) {
        log(log_level::debug, "cluster", "heartbeat_not_sent", {{"error", e.what()}});
      }
    }
  }

  void receive_one(zmq::message_t& first) {
    std::vector<zmq::message_t> parts;
    bool more = first.more();
    while (more) {
      zmq::message_t m;
      if (!router.recv(m)) return;
      more = m.more();
      parts.push_back(std::move(m));
    }
    if (parts.size() != 1) return;  // not a heartbeat: peers send one frame
    auto msg = wire::decode_peer_message(static_cast<const char*>(parts[0].data()), parts[0].size());
    if (!msg) {
      log(log_level::warn, "cluster", "bad_peer_message", {{"error", msg.error().to_string()}});
      return;
    }
    const auto& from = std::visit([](const auto& m) -> const std::string& { return m.from; }, *msg);
    if (opts.security.enabled()) {
      // A key of role node may speak only for the member it is named after.
      auto sender = peer_of(parts[0], opts.security, endpoint_kind::peer);
      if (!sender || sender->who->name != from) {
        log(log_level::warn, "cluster", "peer_message_refused",
            {{"from", from}, {"key", sender ? sender->who->name : std::string{"(not admitted)"}}});
        return;
      }
    }
    if (auto* h = std::get_if<wire::heartbeat>(&*msg)) {
      if (events.on_heartbeat) events.on_heartbeat(h->from, h->ingest);
    } else if (events.on_escalation) {
      events.on_escalation(std::get<wire::escalation_copy>(*msg));
    }
  }

  void run() {
    zmq::pollitem_t items[2] = {{router.handle(), 0, ZMQ_POLLIN, 0}, {nullptr, wake_fd, ZMQ_POLLIN, 0}};
    auto next = std::chrono::steady_clock::now();
    try {
      while (!stopping.load()) {
        const auto now = std::chrono::steady_clock::now();
        if (now >= next) {
          send_heartbeats();
          if (events.on_tick) events.on_tick();
          next = now + opts.heartbeat_interval;
        }
        const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next - now);
        try {
          zmq::poll(items, 2, std::max(wait, std::chrono::milliseconds{1}));
        } catch (const zmq::error_t& e) {
          if (e.num() == EINTR) continue;
          throw;
        }
        if (items[1].revents & ZMQ_POLLIN) {
          std::uint64_t n;
          [[maybe_unused]] auto r = ::read(wake_fd, &n, sizeof n);
        }
        flush_outgoing();
        if (items[0].revents & ZMQ_POLLIN) {
          for (int i = 0; i < 256; ++i) {
            zmq::message_t first;
            if (!router.recv(first, zmq::recv_flags::dontwait)) break;
            receive_one(first);
          }
        }
      }
    } catch (const std::exception& e) {
      log(log_level::error, "cluster", "peer_thread_failed", {{"error", e.what()}});
      if (events.on_failed) events.on_failed();
    }
    for (auto& d : dealers) d->close();
    router.close();
  }
};

result<std::unique_ptr<peer_link>> peer_link::start(zmq::context_t& ctx, peer_link_options opts, peer_events events) {
  auto p = std::make_unique<impl>(ctx, std::move(opts), std::move(events));
  p->wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (p->wake_fd < 0) return status{errc::io_error, "eventfd failed"};
  std::string bound;
  try {
    p->router.set(zmq::sockopt::linger, 0);
    // Escalation records with many pages run to tens of KiB; a frame over the limit would
    // drop the member's connection, heartbeats included.
    p->router.set(zmq::sockopt::maxmsgsize, std::int64_t{4 << 20});
    apply_server(p->router, p->opts.security, endpoint_kind::peer);
    p->router.bind(p->opts.bind);
    bound = p->router.get(zmq::sockopt::last_endpoint);
  } catch (const zmq::error_t& e) {
    return status{errc::unavailable, "cannot bind peer endpoint " + p->opts.bind + ": " + e.what()};
  }
  const auto list = p->opts.security.enabled() ? p->opts.security.access->get() : nullptr;
  for (const auto& m : p->opts.others) {
    client_security sec;
    if (p->opts.security.enabled()) {
      const principal* who = list ? list->by_name(m.id) : nullptr;
      if (!who || who->what != role::node)
        return status{errc::config_error, "cluster member '" + m.id +
                                              "' has no key of role node under that name in the access file"};
      sec.server_key = who->public_key;
      sec.keys = p->opts.own_keys;
    }
    try {
      auto d = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::dealer);
      d->set(zmq::sockopt::linger, 0);
      d->set(zmq::sockopt::immediate, 1);
      d->set(zmq::sockopt::sndhwm, 1000);
      d->set(zmq::sockopt::reconnect_ivl, 100);
      d->set(zmq::sockopt::reconnect_ivl_max, 1000);
      apply_client(*d, sec);
      d->connect(m.endpoint);
      p->dealers.push_back(std::move(d));
    } catch (const zmq::error_t& e) {
      return status{errc::config_error, "cannot connect to member '" + m.id + "' at " + m.endpoint + ": " + e.what()};
    }
  }
  std::unique_ptr<peer_link> link{new peer_link{std::move(p)}};
  link->bound_ = std::move(bound);
  auto* raw = link->impl_.get();
  raw->thread = std::thread{[raw] { raw->run(); }};
  log(log_level::info, "cluster", "peer_listening", {{"endpoint", link->bound_}});
  return link;
}

peer_link::peer_link(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

void peer_link::send(const std::string& member, std::string bytes) {
  {
    std::lock_guard<std::mutex> lock{impl_->advertised_mutex};
    impl_->outgoing.emplace_back(member, std::move(bytes));
  }
  std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(impl_->wake_fd, &one, sizeof one);
}

void peer_link::advertise_ingest(const std::string& endpoint) {
  std::lock_guard<std::mutex> lock{impl_->advertised_mutex};
  impl_->advertised_ingest = endpoint;
}
peer_link::~peer_link() { stop(); }

void peer_link::stop() {
  if (!impl_ || !impl_->thread.joinable()) return;
  impl_->stopping.store(true);
  std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(impl_->wake_fd, &one, sizeof one);
  impl_->thread.join();
}

}  // namespace alert::cluster
