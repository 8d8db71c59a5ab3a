#include "cluster/peer_link.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cstring>
#include <deque>
#include <iterator>
#include <map>
#include <mutex>
#include <zmq.hpp>

#include "cluster/msgpack_util.hpp"
#include "engine/log.hpp"

namespace alert::cluster {

namespace wire {
namespace {
using namespace alert::wire::detail;

// Arrays: the shards of a handoff (at most max_shards). Strings: an escalation record.
constexpr limit_names escalation_limits{max_shards, 16, 1 << 20, 4};

std::vector<std::uint32_t> shards_of(const msgpack::object& top) {
  const auto& a = need(top, "shards");
  if (a.type != msgpack::type::ARRAY) throw bad_message(field("shards") + " must be an array");
  std::vector<std::uint32_t> out;
  for (std::uint32_t i = 0; i < a.via.array.size; ++i) {
    const auto& x = a.via.array.ptr[i];
    if (x.type != msgpack::type::POSITIVE_INTEGER || x.via.u64 >= max_shards)
      throw bad_message(field("shards") + " must hold shard numbers below " + std::to_string(max_shards));
    out.push_back(static_cast<std::uint32_t>(x.via.u64));
  }
  return out;
}

std::uint64_t id_of(const msgpack::object& top) {
  const auto& id = need(top, "id");
  if (id.type != msgpack::type::POSITIVE_INTEGER) throw bad_message(field("id") + " must be a positive integer");
  return id.via.u64;
}

std::int64_t int_of(const msgpack::object& o, const char* name) {
  if (!is_integer(o)) throw bad_message(field(name) + " must be an integer");
  return o.type == msgpack::type::NEGATIVE_INTEGER ? o.via.i64 : static_cast<std::int64_t>(o.via.u64);
}

std::string encode_shards(const char* type, const std::string& from, std::uint64_t id,
                          const std::vector<std::uint32_t>& shards) {
  msgpack::sbuffer buf;
  packer pk(&buf);
  pk.pack_map(5);
  pack_str(pk, "v");
  pk.pack_uint8(1);
  pack_str(pk, "type");
  pack_str(pk, type);
  pack_str(pk, "from");
  pack_str(pk, from);
  pack_str(pk, "id");
  pk.pack_uint64(id);
  pack_str(pk, "shards");
  pk.pack_array(static_cast<std::uint32_t>(shards.size()));
  for (auto s : shards) pk.pack_uint32(s);
  return to_bytes(buf);
}

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
  if (type == "handoff_request") return handoff_request{need_str(top, "from"), id_of(top), shards_of(top)};
  if (type == "handoff_done") return handoff_done{need_str(top, "from"), id_of(top), shards_of(top)};
  if (type != "heartbeat")
    throw bad_message(field("type") + " must be \"heartbeat\", \"escalation\", \"handoff_request\" or \"handoff_done\"");
  heartbeat h;
  h.from = need_str(top, "from");
  if (h.from.empty()) throw bad_message(field("from") + " must not be empty");
  h.at = int_of(need(top, "at"), "at");
  if (const auto* ingest = find(top, "ingest")) {
    if (ingest->type != msgpack::type::STR) throw bad_message(field("ingest") + " must be a string");
    h.ingest = std::string{str_of(*ingest)};
  }
  if (const auto* mono = find(top, "mono")) h.mono = int_of(*mono, "mono");
  if (const auto* config = find(top, "config")) {
    if (config->type != msgpack::type::POSITIVE_INTEGER) throw bad_message(field("config") + " must be an unsigned integer");
    h.config = config->via.u64;
  }
  if (const auto* echo = find(top, "echo")) h.echo = int_of(*echo, "echo");
  if (const auto* votes = find(top, "votes")) {
    if (votes->type != msgpack::type::BIN) throw bad_message(field("votes") + " must be binary");
    h.votes = std::string{votes->via.bin.ptr, votes->via.bin.size};
  }
  return h;
}
}  // namespace

std::string encode_heartbeat(const heartbeat& h) {
  msgpack::sbuffer buf;
  packer pk(&buf);
  pk.pack_map(6u + (h.ingest.empty() ? 0u : 1u) + (h.echo ? 1u : 0u) + (h.votes.empty() ? 0u : 1u));
  pack_str(pk, "v");
  pk.pack_uint8(1);
  pack_str(pk, "type");
  pack_str(pk, "heartbeat");
  pack_str(pk, "from");
  pack_str(pk, h.from);
  pack_str(pk, "at");
  pk.pack_int64(h.at);
  pack_str(pk, "mono");
  pk.pack_int64(h.mono);
  pack_str(pk, "config");
  pk.pack_uint64(h.config);
  if (!h.ingest.empty()) {
    pack_str(pk, "ingest");
    pack_str(pk, h.ingest);
  }
  if (h.echo) {
    pack_str(pk, "echo");
    pk.pack_int64(*h.echo);
  }
  if (!h.votes.empty()) {
    pack_str(pk, "votes");
    pk.pack_bin(wire_size(h.votes.size()));
    pk.pack_bin_body(h.votes.data(), wire_size(h.votes.size()));
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

std::string encode_handoff_request(const handoff_request& r) { return encode_shards("handoff_request", r.from, r.id, r.shards); }
std::string encode_handoff_done(const handoff_done& d) { return encode_shards("handoff_done", d.from, d.id, d.shards); }
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
  std::map<std::string, std::int64_t> last_mono;  // member -> `mono` of its last heartbeat (I/O thread)

  // Most messages kept for one member while its queue is full or it is not connected;
  // beyond it newer ones are dropped (and logged), so none overtakes an older one: a
  // member that misses a handoff's done asks again.
  static constexpr std::size_t max_kept_per_member = 20000;

  // Sends what is queued, in order per member. A member whose socket takes no more now
  // (its send queue is full, or it is not connected) keeps the rest of its messages, in
  // order, for the next round: a handoff's records are never overtaken by its done.
  void flush_outgoing() {
    std::deque<std::pair<std::string, std::string>> batch;
    {
      std::lock_guard<std::mutex> lock{advertised_mutex};
      batch.swap(outgoing);
    }
    std::deque<std::pair<std::string, std::string>> kept;
    std::map<std::string, std::size_t> blocked;  // member -> messages kept
    for (auto& item : batch) {
      const auto& member = item.first;
      if (!blocked.count(member)) {
        bool sent = false, known = false;
        for (std::size_t i = 0; i < opts.others.size() && i < dealers.size(); ++i)
          if (opts.others[i].id == member) {
            known = true;
            try {
              sent = dealers[i]->send(zmq::buffer(item.second), zmq::send_flags::dontwait).has_value();
            } catch (const zmq::error_t& e) {
              log(log_level::warn, "cluster", "peer_send_failed", {{"member", member}, {"error", e.what()}});
              sent = true;  // not retried: the socket refused it for good
            }
          }
        if (sent || !known) continue;
      }
      if (++blocked[member] > max_kept_per_member) continue;
      kept.push_back(std::move(item));
    }
    for (const auto& [member, n] : blocked)
      if (n > max_kept_per_member)
        log(log_level::warn, "cluster", "peer_messages_dropped",
            {{"member", member}, {"count", std::to_string(n - max_kept_per_member)}});
    if (kept.empty()) return;
    std::lock_guard<std::mutex> lock{advertised_mutex};
    outgoing.insert(outgoing.begin(), std::make_move_iterator(kept.begin()), std::make_move_iterator(kept.end()));
  }

  static epoch_ms wall_now() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
  }

  static std::int64_t mono_now() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }

  void send_heartbeats(const std::string& votes) {
    wire::heartbeat h;
    h.from = opts.self;
    h.at = wall_now();
    h.mono = mono_now();
    h.votes = votes;
    h.config = opts.config;
    {
      std::lock_guard<std::mutex> lock{advertised_mutex};
      h.ingest = advertised_ingest;
    }
    for (std::size_t i = 0; i < dealers.size() && i < opts.others.size(); ++i) {
      auto& d = dealers[i];
      // Each member's copy echoes the last heartbeat heard from it (its leases count from there).
      auto heard = last_mono.find(opts.others[i].id);
      if (heard != last_mono.end()) h.echo = heard->second;
      else h.echo.reset();
      const auto bytes = wire::encode_heartbeat(h);
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
      last_mono[h->from] = h->mono;
      if (events.on_heartbeat) events.on_heartbeat(*h);
    } else if (auto* e = std::get_if<wire::escalation_copy>(&*msg)) {
      if (events.on_escalation) events.on_escalation(*e);
    } else if (auto* r = std::get_if<wire::handoff_request>(&*msg)) {
      if (events.on_handoff_request) events.on_handoff_request(*r);
    } else if (auto* d = std::get_if<wire::handoff_done>(&*msg)) {
      if (events.on_handoff_done) events.on_handoff_done(*d);
    }
  }

  void run() {
    zmq::pollitem_t items[2] = {{router.handle(), 0, ZMQ_POLLIN, 0}, {nullptr, wake_fd, ZMQ_POLLIN, 0}};
    auto next = std::chrono::steady_clock::now();
    try {
      while (!stopping.load()) {
        const auto now = std::chrono::steady_clock::now();
        if (now >= next) {
          // The tick first: the heartbeats carry the votes it has just made.
          send_heartbeats(events.on_tick ? events.on_tick() : std::string{});
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
