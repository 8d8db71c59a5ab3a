#include "actors/node.hpp"

#include <algorithm>
#include <atomic>
#include <thread>
#include <set>
#include <future>
#include <deque>
#include <condition_variable>
#include <map>
#include <mutex>
#include <unordered_map>
#include <zmq.hpp>

#include "actors/control.hpp"
#include "actors/escalator.hpp"
#include "actors/metrics.hpp"
#include "actors/shard_host.hpp"
#include "cluster/control_server.hpp"
#include "cluster/curve.hpp"
#include "cluster/forwarder.hpp"
#include "cluster/ingest_server.hpp"
#include "cluster/pager_server.hpp"
#include "cluster/peer_link.hpp"
#include "config/access_file.hpp"
#include "config/node_options.hpp"
#include "config/rules_file.hpp"
#include "engine/log.hpp"
#include "engine/ownership.hpp"
#include "storage/data_keys.hpp"
#include "storage/entity_store.hpp"
#include "storage/journal.hpp"

namespace alert {
namespace {

// Where each shard's readings go in a cluster: who acts as each shard's owner and who
// follows it (engine/ownership: majority leases over the members' own views), each member's
// ingest endpoint as its heartbeats give it, and the keys to reach it. Guarded by `mutex`;
// the peer thread writes it.
struct cluster_routing {
  std::mutex mutex;
  std::string self;
  std::uint32_t shards = 0;
  std::optional<shard_ownership> own;             // nothing: not clustered
  std::map<std::string, std::string> ingest_of;   // member -> its ingest endpoint
  std::map<std::string, cluster::client_security> keys_of;  // member -> CURVE to reach it
  cluster::forwarder* forward = nullptr;
  cluster::peer_link* peers = nullptr;  // set once the peer links run
  std::set<std::string> mismatched;       // members whose cluster fingerprint differs (logged once)
};

// The monotonic clock ownership leases are counted on (the peer links stamp heartbeats with it).
std::int64_t mono_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::uint32_t shard_of_reading(const reading& r, std::uint32_t shards) {
  return shard_of(routing_key(r.device.str(), r.patient ? std::optional<std::string_view>{r.patient->str()} : std::nullopt),
                  shards);
}

// The shard of an alert: by its patient when it names one, else by its device (or, for a
// patient-level alert, the entity's id), as readings are routed.
std::uint32_t shard_of_alert(const alert_record& a, std::uint32_t shards) {
  const auto key = routing_key(a.device.empty() ? a.entity.substr(a.entity.find('/') + 1) : a.device,
                               a.patient.empty() ? std::nullopt : std::optional<std::string_view>{a.patient});
  return shard_of(key, shards);
}

// Pushes the journaled readings and escalation records of some shards to a member, as
// replicas: to a member that asked for them before it votes for itself as their owner
// (engine/ownership), then says so with a handoff_done; and to a new follower of shards
// this node owns. One thread, one job at a time, batches of 500 each waited for.
class handoff {
public:
  handoff(storage::journal& j, cluster_routing& r) : journal_(j), routing_(r), thread_([this] { run(); }) {}
  ~handoff() {
    {
      std::lock_guard<std::mutex> lock{mutex_};
      stopping_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }
  // What a shard's handoff answers: the member's request id (0: none, a push to a new
  // follower) and this node's vote epoch for the shard when it was asked.
  struct answer {
    std::uint64_t request = 0;
    std::uint64_t epoch = 0;
  };
  // A shard already waiting or being sent to the member is not queued again (members ask
  // every heartbeat until answered); a waiting one answers the newer request.
  void push(const std::string& member, const std::map<std::uint32_t, answer>& shards) {
    {
      std::lock_guard<std::mutex> lock{mutex_};
      auto same = std::find_if(jobs_.begin(), jobs_.end(), [&](const job& j) { return j.member == member; });
      if (same == jobs_.end()) {
        jobs_.push_back({member, {}});
        same = std::prev(jobs_.end());
      }
      for (const auto& [s, a] : shards) {
        if (running_.count({member, s})) continue;
        auto& waiting = same->shards[s];
        if (a.request >= waiting.request) waiting = a;
      }
      if (same->shards.empty()) jobs_.erase(same);
    }
    wake_.notify_all();
  }

private:
  struct job {
    std::string member;
    std::map<std::uint32_t, answer> shards;
  };
  void run() {
    for (;;) {
      job j;
      {
        std::unique_lock<std::mutex> lock{mutex_};
        wake_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
        if (stopping_) return;
        j = std::move(jobs_.front());
        jobs_.pop_front();
        for (const auto& [s, a] : j.shards) running_.insert({j.member, s});
      }
      try {
        transfer(j);
      } catch (const std::exception& e) {
        log(log_level::error, "cluster", "handoff_failed", {{"member", j.member}, {"error", e.what()}});
      }
      std::lock_guard<std::mutex> lock{mutex_};
      for (const auto& [s, a] : j.shards) running_.erase({j.member, s});
    }
  }
  bool stopping() {
    std::lock_guard<std::mutex> lock{mutex_};
    return stopping_;
  }
  // Sends one batch and waits for the member's ack (or the forwarder's timeout); a refusal
  // is tried again, 3 times in all, half a second apart (the member may be starting). On a
  // failure the member asks again.
  bool send(const cluster::forward_target& to, std::vector<reading>& batch) {
    status st;
    for (int attempt = 0; attempt < 3 && !stopping(); ++attempt) {
      if (attempt > 0) {
        std::unique_lock<std::mutex> lock{mutex_};
        wake_.wait_for(lock, std::chrono::milliseconds{500}, [&] { return stopping_; });
      }
      auto done = std::make_shared<std::promise<status>>();
      auto reply = done->get_future();
      routing_.forward->forward(
          to, batch, [done](status s, std::uint64_t, std::uint64_t) { done->set_value(s); }, true);
      st = reply.get();
      if (st) break;
    }
    batch.clear();
    if (!st) log(log_level::warn, "cluster", "handoff_failed", {{"member", to.member}, {"error", st.to_string()}});
    return st.is_ok();
  }
  // Everything appended before now is durable: appends are written in order.
  bool drain_journal() {
    auto done = std::make_shared<std::promise<bool>>();
    auto written = done->get_future();
    auto st = journal_.append({}, 0, [done](storage::append_result&& r, std::vector<reading>&&) {
      done->set_value(r.error.is_ok());
    });
    return st.is_ok() && written.get();
  }
  void transfer(const job& j) {
    cluster::forward_target to;
    std::uint32_t shards = 0;
    cluster::peer_link* peers = nullptr;
    std::string self;
    {
      std::lock_guard<std::mutex> lock{routing_.mutex};
      auto at = routing_.ingest_of.find(j.member);
      if (at == routing_.ingest_of.end() || at->second.empty()) {
        log(log_level::warn, "cluster", "handoff_skipped",
            {{"member", j.member}, {"msg", "its ingest endpoint is not known (yet); it asks again"}});
        return;
      }
      to = cluster::forward_target{j.member, at->second, routing_.keys_of[j.member]};
      shards = routing_.shards;
      peers = routing_.peers;
      self = routing_.self;
    }
    // Readings this node took as owner were queued to the journal before it stopped
    // acting (the ingest path checks and appends under the routing lock): once they are
    // durable, the scan below sees every one.
    bool ok = drain_journal();
    std::vector<reading> batch;
    std::uint64_t sent = 0;
    auto st = journal_.for_each([&](const storage::journal_entry& e) {
      if (!ok) return false;
      if (!j.shards.count(shard_of_reading(e.r, shards))) return true;
      batch.push_back(e.r);
      ++sent;
      if (batch.size() >= 500) ok = send(to, batch);
      return ok && !stopping();
    });
    if (ok && !batch.empty()) ok = send(to, batch);
    if (!st) {
      log(log_level::error, "cluster", "handoff_read_failed", {{"error", st.to_string()}});
      ok = false;
    }
    // The escalations of those shards go too, so that the member goes on from the step
    // reached here (it adopts them when it starts acting as their owner).
    std::uint64_t escalations = 0;
    if (ok && peers) {
      auto es = journal_.for_each_snapshot("x/", [&](const std::string&, const std::string& bytes) {
        auto r = storage::decode_escalation(bytes);
        if (!r || r->alert.entity.rfind("n/", 0) == 0 || !j.shards.count(shard_of_alert(r->alert, shards))) return;
        peers->send(j.member, cluster::wire::encode_escalation_copy({self, r->state.alert_id, bytes}));
        ++escalations;
      });
      if (!es) {
        log(log_level::error, "cluster", "handoff_read_failed", {{"error", es.to_string()}});
        ok = false;
      }
    }
    // Said last, after the records on the same link: the member may own the shards now.
    // Only for shards this node still votes the member owner of: had it voted for another
    // meanwhile, that one could have taken readings the scan missed. Unsaid on a failure:
    // the member asks again.
    if (ok && peers) {
      std::map<std::uint64_t, std::vector<std::uint32_t>> answers;
      {
        std::lock_guard<std::mutex> lock{routing_.mutex};
        for (const auto& [s, a] : j.shards)
          if (a.request > 0 && routing_.own && routing_.own->voted_for(s) == j.member &&
              routing_.own->vote_epoch(s) == a.epoch)
            answers[a.request].push_back(s);
      }
      for (auto& [id, list] : answers)
        peers->send(j.member, cluster::wire::encode_handoff_done({self, id, std::move(list)}));
    }
    log(ok ? log_level::info : log_level::warn, "cluster", ok ? "handoff_done" : "handoff_incomplete",
        {{"member", j.member}, {"shards", std::to_string(j.shards.size())}, {"readings", std::to_string(sent)},
         {"escalations", std::to_string(escalations)}});
  }

  storage::journal& journal_;
  cluster_routing& routing_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<job> jobs_;
  std::set<std::pair<std::string, std::uint32_t>> running_;  // (member, shard) being sent now
  bool stopping_ = false;
  std::thread thread_;  // last: starts once the members above exist
};

// Completes an ingest request split between this node and the owners it was forwarded to:
// one answer once every part answered, a failure if any part failed (the integrator
// resends, and what was stored already counts as duplicate).
struct split_request {
  std::mutex mutex;
  std::size_t parts = 0;
  status failure;
  std::uint64_t accepted = 0, duplicates = 0;
  cluster::ingest_backend::done_fn done;
  void part(status st, std::uint64_t a, std::uint64_t d) {
    std::unique_lock<std::mutex> lock{mutex};
    if (!st && failure.is_ok()) failure = st;
    accepted += a;
    duplicates += d;
    if (--parts > 0) return;
    lock.unlock();
    done(failure, accepted, duplicates);
  }
};

// Ingest backend: in a cluster, readings whose shard another member owns are forwarded to
// it; the rest go to the journal, then to the shard host.
class journal_backend final : public cluster::ingest_backend {
public:
  journal_backend(storage::journal& j, caf::actor host, const std::atomic<bool>& quorum, cluster_routing* routing)
      : journal_(j), host_(std::move(host)), quorum_(quorum), routing_(routing) {}

  status submit(std::vector<reading> readings, epoch_ms received, done_fn done, origin from) override {
    // An owner's replica is only journaled: taking it is safe whatever this node sees (a
    // member that has just come back gets its handoff before it has heard a majority).
    if (from == origin::replica) return store(std::move(readings), received, std::move(done), false);
    // The minority side of a partition takes nothing: the majority may own these entities.
    if (!quorum_.load(std::memory_order_acquire))
      return {errc::unavailable, "this node does not see a majority of its cluster; send to another member or retry"};
    if (routing_ == nullptr) return store(std::move(readings), received, std::move(done));
    if (from == origin::forwarded) {
      // A shard is taken only by the member a majority lets act as its owner, so that it
      // never has two owners (engine/ownership).
      std::lock_guard<std::mutex> lock{routing_->mutex};
      const auto now = mono_ms();
      for (const auto& r : readings)
        if (!routing_->own || !routing_->own->acting(shard_of_reading(r, routing_->shards), now))
          return {errc::unavailable, "this member does not own the shard of device " + r.device.str() +
                                         " (the cluster's placement is changing); retry"};
      return store(std::move(readings), received, std::move(done));
    }
    std::vector<reading> local;
    std::map<std::string, std::vector<reading>> remote;
    std::map<std::string, cluster::forward_target> targets;
    std::shared_ptr<split_request> split;
    {
      // Held until what this node takes is queued to the journal: a handoff of these shards
      // (which waits until this node no longer acts as their owner, then drains the journal)
      // cannot miss it.
      std::lock_guard<std::mutex> lock{routing_->mutex};
      if (!routing_->own) return store(std::move(readings), received, std::move(done));
      const auto now = mono_ms();
      for (auto& r : readings) {
        const auto shard = shard_of_reading(r, routing_->shards);
        const auto& owner = routing_->own->owner(shard);
        if (owner == routing_->self && routing_->own->acting(shard, now)) {
          local.push_back(std::move(r));
          continue;
        }
        if (owner.empty() || owner == routing_->self)
          return {errc::unavailable, "the shard of device " + r.device.str() +
                                         " has no owner this member can reach (it is moving, or links are down); retry"};
        if (!targets.count(owner)) {
          auto at = routing_->ingest_of.find(owner);
          if (at == routing_->ingest_of.end() || at->second.empty())
            return {errc::unavailable, "member " + owner + " owns some of these readings and has not said where it takes them yet; retry"};
          targets[owner] = cluster::forward_target{owner, at->second, routing_->keys_of[owner]};
        }
        remote[owner].push_back(std::move(r));
      }
      if (remote.empty()) return store(std::move(local), received, std::move(done));
      split = std::make_shared<split_request>();
      split->parts = remote.size() + (local.empty() ? 0 : 1);
      split->done = std::move(done);
      if (!local.empty()) {
        auto st = store(std::move(local), received, [split](status s, std::uint64_t a, std::uint64_t d) { split->part(s, a, d); });
        if (!st) return st;  // nothing was sent anywhere yet
      }
    }
    for (auto& [owner, rs] : remote)
      routing_->forward->forward(targets[owner], std::move(rs),
                                 [split](status s, std::uint64_t a, std::uint64_t d) { split->part(s, a, d); });
    return {};
  }

private:
  // Journals `readings`; as their owner (`own`), also hands the new ones to the entities
  // and, in a cluster, replicates all of them to their shards' followers before `done`.
  status store(std::vector<reading> readings, epoch_ms received, done_fn done, bool own = true) {
    return journal_.append(std::move(readings), received,
                           [this, received, own, done = std::move(done)](storage::append_result&& r, std::vector<reading>&& rs) {
                             if (!own || !r.error) {
                               done(r.error, r.accepted, r.duplicates);
                               return;
                             }
                             // Every reading is replicated, duplicates too: a resend after a
                             // failed replication must reach the follower this time.
                             auto replicas = replicas_of(rs);
                             // Only new readings go on: duplicates were processed when first seen.
                             if (r.accepted > 0) {
                               if (r.duplicates > 0) {
                                 std::vector<reading> fresh;
                                 fresh.reserve(r.accepted);
                                 for (std::size_t i = 0; i < rs.size(); ++i)
                                   if (!r.duplicate[i]) fresh.push_back(std::move(rs[i]));
                                 rs.swap(fresh);
                               }
                               caf::anon_send(host_, actors::reading_batch{std::move(rs), received});
                             }
                             if (!replicas.reachable) {
                               // Journaled here only: not acked (the resend is replicated).
                               done({errc::unavailable, "the follower of these readings' shard cannot be reached "
                                                        "(the cluster's placement is changing); retry"},
                                    0, 0);
                               return;
                             }
                             if (replicas.batches.empty()) {
                               done(r.error, r.accepted, r.duplicates);
                               return;
                             }
                             // Acked only once every follower has the readings durably, and
                             // only if this node still acts as their shards' owner then: a new
                             // owner may have caught up from the follower before a replica in
                             // flight reached it (it could not act meanwhile; the resend goes
                             // to it).
                             auto split = std::make_shared<split_request>();
                             split->parts = replicas.batches.size();
                             split->accepted = r.accepted;
                             split->duplicates = r.duplicates;
                             split->done = [this, shards = std::move(replicas.shards), done](status st, std::uint64_t a,
                                                                                             std::uint64_t d) {
                               if (st && !still_acting(shards))
                                 st = {errc::unavailable, "this member stopped owning these readings' shard before "
                                                          "its follower had them; retry"};
                               done(st, a, d);
                             };
                             for (auto& [target, batch] : replicas.batches)
                               routing_->forward->forward(
                                   target, std::move(batch),
                                   [split](status s, std::uint64_t, std::uint64_t) { split->part(s, 0, 0); }, true);
                           });
  }

  bool still_acting(const std::set<std::uint32_t>& shards) {
    std::lock_guard<std::mutex> lock{routing_->mutex};
    const auto now = mono_ms();
    for (auto s : shards)
      if (!routing_->own || !routing_->own->acting(s, now)) return false;
    return true;
  }

  // What a batch's followers must journal.
  struct replica_plan {
    std::vector<std::pair<cluster::forward_target, std::vector<reading>>> batches;  // by follower
    std::set<std::uint32_t> shards;  // of the readings replicated
    // False when some reading's follower cannot be sent to: this node is its follower now
    // (the placement changed under the write), or its endpoint is not known.
    bool reachable = true;
  };

  // None when not clustered or alone.
  replica_plan replicas_of(const std::vector<reading>& rs) {
    replica_plan out;
    if (routing_ == nullptr) return out;
    std::lock_guard<std::mutex> lock{routing_->mutex};
    if (!routing_->own) return out;
    std::map<std::string, std::size_t> index;
    for (const auto& r : rs) {
      const auto shard = shard_of_reading(r, routing_->shards);
      const auto& follower = routing_->own->follower(shard);
      if (follower.empty()) continue;  // alone: a single-member cluster
      auto at = routing_->ingest_of.find(follower);
      if (follower == routing_->self || at == routing_->ingest_of.end() || at->second.empty()) {
        out.reachable = false;
        continue;
      }
      auto [it, fresh] = index.emplace(follower, out.batches.size());
      if (fresh) out.batches.push_back({cluster::forward_target{follower, at->second, routing_->keys_of[follower]}, {}});
      out.batches[it->second].second.push_back(r);
      out.shards.insert(shard);
    }
    return out;
  }

  storage::journal& journal_;
  caf::actor host_;
  const std::atomic<bool>& quorum_;
  cluster_routing* routing_;
};

// Writes security audit records without letting a flood of refusals flood the log (or stall
// the thread that writes them: each record is a synced write). A record is written at most
// once per `per_key_ms` for one key (who, action, endpoint); records of unknown keys, which
// anyone can make up by the thousand, also at most once per second all together. A record
// counts the attempts since the one before it for the same key. Thread-safe: the ZAP and
// I/O threads call it.
class audit_throttle {
public:
  audit_throttle(storage::journal& j, const time_source& clock) : journal_(j), clock_(clock) {}

  void operator()(const std::string& who, const std::string& action, const std::string& subject,
                  const std::string& outcome, const std::string& key, std::int64_t per_key_ms, bool unknown_key) {
    const epoch_ms now = clock_.now();
    std::uint64_t attempts;
    {
      std::lock_guard<std::mutex> lock{mutex_};
      if (seen_.size() > 10'000) seen_.clear();  // a bound on memory; it only thins records
      auto& r = seen_[key];
      ++r.count;
      if (r.last != 0 && now - r.last < per_key_ms) return;
      if (unknown_key && last_unknown_ != 0 && now - last_unknown_ < unknown_keys_ms) return;
      attempts = r.count;
      r.last = now;
      r.count = 0;
      if (unknown_key) last_unknown_ = now;
    }
    (void)journal_.append_audit(now, who, action,
                                attempts > 1 ? subject + " (" + std::to_string(attempts) + " attempts)" : subject,
                                outcome);
  }

private:
  static constexpr std::int64_t unknown_keys_ms = 1000;
  struct entry {
    epoch_ms last = 0;
    std::uint64_t count = 0;
  };
  storage::journal& journal_;
  const time_source& clock_;
  std::mutex mutex_;
  std::unordered_map<std::string, entry> seen_;
  epoch_ms last_unknown_ = 0;
};

// Logs and audits what the ZAP handler decides: every authentication that succeeds (one per
// connection), and refusals through the throttle (a refused client retries at every
// reconnect, and anyone may try a new random key each time).
void report_auth(audit_throttle& audit, storage::journal& journal, const time_source& clock,
                 const cluster::auth_event& ev) {
  const std::string endpoint{to_string(ev.endpoint)};
  const std::string who = ev.name.empty() ? "key:" + ev.public_key : ev.name;
  if (ev.ok) {
    log(log_level::info, "security", "authenticated", {{"who", who}, {"endpoint", endpoint}, {"address", ev.address}});
    (void)journal.append_audit(clock.now(), who, "authenticate", endpoint + " from " + ev.address, "ok");
    return;
  }
  log(log_level::warn, "security", "authentication_refused",
      {{"who", who}, {"endpoint", endpoint}, {"address", ev.address}, {"reason", ev.reason}});
  audit(who, "authenticate", endpoint + " from " + ev.address + " (" + ev.reason + ")", "unauthorized",
        who + "|" + endpoint, 60'000, ev.name.empty());
}

}  // namespace

result<loaded_rules> load_rules(const config::node_options& opts) {
  auto loaded = opts.rules_file.empty() ? config::parse_rules(config::default_rules_yaml())
                                        : config::load_rules_file(opts.rules_file);
  if (!loaded.rules)
    return status{errc::config_error,
                  config::format_problems(opts.rules_file.empty() ? "(built-in rules)" : opts.rules_file, loaded.problems)};
  return loaded_rules{std::make_shared<const rule_set>(std::move(*loaded.rules)),
                      std::make_shared<const escalation_config>(std::move(*loaded.escalation))};
}

struct node::impl {
  config::node_options opts;
  const time_source* clock = nullptr;
  caf::actor_system_config caf_cfg;
  std::unique_ptr<caf::actor_system> sys;
  caf::actor host;
  caf::actor escalator;
  zmq::context_t ctx{1};
  cluster::server_security security;        // CURVE on every endpoint unless plaintext
  cluster::curve_keypair own_keys;           // with CURVE: this node's key pair (peer links)
  // The cluster: membership (guarded by cluster_mutex; the peer thread updates it) and the
  // quorum it gives, read on the ingest path.
  mutable std::mutex cluster_mutex;
  std::optional<membership> members;
  std::atomic<bool> quorum{true};
  std::unique_ptr<cluster::peer_link> peers;
  cluster_routing routing;
  std::unique_ptr<cluster::forwarder> forward;
  std::unique_ptr<handoff> handoffs;
  std::unique_ptr<cluster::zap_handler> zap;  // admits the keys of the access list
  std::unique_ptr<cluster::pager_server> pager;
  std::unique_ptr<storage::journal> journal;
  std::unique_ptr<journal_backend> backend;
  std::unique_ptr<cluster::ingest_server> ingest;
  std::unique_ptr<cluster::control_server> control;
  actors::escalation_metrics escalation_counts;
  std::unique_ptr<actors::metrics_endpoint> metrics;
  epoch_ms started_at = 0;
  std::atomic<bool> stopped{false};
  std::atomic<bool> serving{false};  // every part is up: control requests may run
};

// Starts membership and the peer links when the node is configured as a cluster member.
// Until it hears a majority, the node takes no readings and its escalator pages nothing.
status node::start_cluster(impl& p, const config::node_options& opts, const time_source& clock) {
  if (opts.cluster_members.empty()) return {};
  auto entries = config::parse_members(opts.cluster_members);
  if (!entries) return entries.error();
  cluster_config cc;
  cc.self = opts.node_id;
  for (const auto& e : *entries) cc.members.push_back({e.id, e.endpoint});
  cc.shards = opts.cluster_shards;
  cc.fd.heartbeat_interval_ms = opts.cluster_heartbeat_ms;
  cc.fd.phi_threshold = opts.cluster_phi_threshold;
  cc.fd.acceptable_pause_ms = opts.cluster_acceptable_pause_ms;
  ownership_options own_opts;
  own_opts.lease_ms = opts.cluster_lease_ms;
  own_opts.promise_ms = opts.cluster_promise_ms;
  // Above any id an earlier run of this node used: a late answer to one cannot count.
  own_opts.first_request_id = static_cast<std::uint64_t>(std::max<epoch_ms>(clock.now(), 1)) << 10;
  auto made = membership::make(cc);
  if (!made) return made.error();
  p.members.emplace(std::move(*made));
  p.quorum = p.members->has_quorum(clock.now());
  if (!p.quorum) {
    caf::anon_send(p.escalator, actors::quorum_atom::value, false);
    caf::anon_send(p.host, actors::quorum_atom::value, false);
  }
  cluster::peer_link_options lo;
  lo.self = opts.node_id;
  for (const auto& m : cc.members) {
    if (m.id == opts.node_id) lo.bind = m.endpoint;
    else lo.others.push_back(m);
  }
  lo.heartbeat_interval = std::chrono::milliseconds{opts.cluster_heartbeat_ms};
  lo.security = p.security;
  lo.own_keys = p.own_keys;
  cluster::peer_events ev;
  ev.on_heartbeat = [pp = &p, c = &clock](const cluster::wire::heartbeat& h) {
    {
      std::lock_guard<std::mutex> lock{pp->cluster_mutex};
      if (!pp->members->heartbeat_from(h.from, c->now())) return;
    }
    std::lock_guard<std::mutex> lock{pp->routing.mutex};
    pp->routing.ingest_of[h.from] = h.ingest;
    auto& own = *pp->routing.own;
    if (h.config != own.fingerprint()) {
      // Configured with other members or another shard count: its votes would name other
      // members than they seem to. It counts as live, and votes for nobody here.
      if (pp->routing.mismatched.insert(h.from).second)
        log(log_level::error, "cluster", "member_config_differs",
            {{"member", h.from}, {"msg", "its cluster.members or cluster.shards differ from this node's: its votes are "
                                        "ignored until they match (restart the members with one configuration)"}});
      own.heard(h.from, {}, h.echo, mono_ms());
      return;
    }
    if (pp->routing.mismatched.erase(h.from))
      log(log_level::info, "cluster", "member_config_matches", {{"member", h.from}});
    own.heard(h.from, h.votes, h.echo, mono_ms());
  };
  ev.on_tick = [pp = &p, c = &clock]() -> std::string {
    std::lock_guard<std::mutex> lock{pp->cluster_mutex};
    const auto now = c->now();
    pp->members->tick(now);
    std::vector<std::string> gone;
    for (const auto& t : pp->members->take_transitions()) {
      log(t.to == member_state::up ? log_level::info : log_level::warn, "cluster",
          "member_" + std::string{to_string(t.to)}, {{"member", t.id}, {"was", std::string{to_string(t.from)}}});
      if (t.to == member_state::unreachable) {
        if (pp->forward) pp->forward->abandon(t.id);
        gone.push_back(t.id);
      }
    }
    const bool q = pp->members->has_quorum(now);
    auto live = pp->members->live(now);
    std::lock_guard<std::mutex> routing_lock{pp->routing.mutex};
    auto& own = *pp->routing.own;
    for (const auto& id : gone) own.lost(id);
    // A member owns nothing until it says where it takes readings (its ingest endpoint is
    // bound after its peer link starts): a forward or handoff to it could not be sent. Nor
    // does one configured otherwise.
    live.erase(std::remove_if(live.begin(), live.end(),
                              [&](const std::string& m) {
                                if (m == pp->routing.self) return false;
                                auto at = pp->routing.ingest_of.find(m);
                                return at == pp->routing.ingest_of.end() || at->second.empty() ||
                                       pp->routing.mismatched.count(m) > 0;
                              }),
               live.end());
    // A majority of members it can forward to: a member heard but not yet bound counts for
    // nothing here, or a node starting with all its peers would place every shard on itself.
    const bool placeable = q && live.size() * 2 > pp->members->size();
    auto changes = own.step(mono_ms(), placeable, live);
    // What this node owns goes to a new follower of it. Its own handoff requests go out
    // (members answer them in on_handoff_request).
    if (pp->handoffs)
      for (const auto& [member, shards] : changes.new_followers) {
        std::map<std::uint32_t, handoff::answer> all;
        for (auto s : shards) all[s] = {};
        pp->handoffs->push(member, all);
      }
    for (const auto& r : changes.requests)
      if (pp->routing.peers)
        pp->routing.peers->send(r.member, cluster::wire::encode_handoff_request({pp->routing.self, r.id, r.shards}));
    if (changes.placed) {
      std::string names;
      for (const auto& m : live) names += (names.empty() ? "" : ",") + m;
      log(log_level::info, "cluster", "shards_placed",
          {{"live", q ? names : std::string{"(no quorum)"}}, {"waiting", std::to_string(own.waiting())}});
    }
    if (!changes.gained.empty() || !changes.lost.empty())
      log(log_level::info, "cluster", "shards_acting",
          {{"gained", std::to_string(changes.gained.size())}, {"lost", std::to_string(changes.lost.size())},
           {"owned", std::to_string(own.owned(mono_ms()).size())}});
    // Entities of shards that moved away must not stay active here (their no-data rules
    // would page for devices now streaming to another owner). Escalations of shards that
    // came here go on from this node: their records came before the handoff was done.
    if (!changes.lost.empty()) caf::anon_send(pp->host, actors::shed_atom::value);
    if (!changes.gained.empty()) caf::anon_send(pp->escalator, actors::adopt_atom::value);
    if (q != pp->quorum.exchange(q)) {
      log(q ? log_level::info : log_level::error, "cluster", q ? "quorum_gained" : "quorum_lost",
          {{"live", std::to_string(pp->members->live(now).size())}, {"members", std::to_string(pp->members->size())}});
      caf::anon_send(pp->escalator, actors::quorum_atom::value, q);
      caf::anon_send(pp->host, actors::quorum_atom::value, q);
    }
    return own.votes();
  };
  ev.on_handoff_request = [pp = &p](const cluster::wire::handoff_request& r) {
    std::map<std::uint32_t, handoff::answer> shards;
    {
      std::lock_guard<std::mutex> lock{pp->routing.mutex};
      // Only while this node votes for the asking member: the member that owned the shard
      // before cannot act on this node's vote any more (engine/ownership.hpp). Else it
      // asks again at its next heartbeat.
      for (auto s : r.shards)
        if (s < pp->routing.shards && pp->routing.own->voted_for(s) == r.from)
          shards[s] = {r.id, pp->routing.own->vote_epoch(s)};
    }
    if (!shards.empty() && pp->handoffs) pp->handoffs->push(r.from, shards);
  };
  ev.on_handoff_done = [pp = &p](const cluster::wire::handoff_done& d) {
    std::lock_guard<std::mutex> lock{pp->routing.mutex};
    pp->routing.own->handoff_done(d.from, d.id, d.shards);
  };
  ev.on_escalation = [pp = &p](const cluster::wire::escalation_copy& e) {
    const auto key = storage::escalation_key(e.alert);
    auto st = e.record ? pp->journal->put_snapshot(key, *e.record, true) : pp->journal->delete_snapshot(key);
    if (!st) log(log_level::error, "cluster", "escalation_copy_failed", {{"alert", e.alert}, {"error", st.to_string()}});
  };
  ev.on_failed = [pp = &p] {
    // Without heartbeats this node cannot know whether it is in the majority: it acts as if
    // it were not (the others take its shards over), rather than risk two owners.
    pp->quorum = false;
    caf::anon_send(pp->escalator, actors::quorum_atom::value, false);
    caf::anon_send(pp->host, actors::quorum_atom::value, false);
  };
  {
    std::lock_guard<std::mutex> lock{p.routing.mutex};
    p.routing.self = opts.node_id;
    p.routing.shards = cc.shards;
    std::vector<std::string> ids;
    for (const auto& m : cc.members) ids.push_back(m.id);
    p.routing.own.emplace(opts.node_id, std::move(ids), cc.shards, own_opts);
    const auto list = p.security.enabled() ? p.security.access->get() : nullptr;
    for (const auto& m : cc.members) {
      if (m.id == opts.node_id || !list) continue;
      if (const principal* who = list->by_name(m.id); who && who->what == role::node)
        p.routing.keys_of[m.id] = cluster::client_security{who->public_key, p.own_keys};
    }
  }
  auto fwd = cluster::forwarder::start(p.ctx, opts.node_id, std::chrono::milliseconds{5000});
  if (!fwd) return fwd.error();
  p.forward = std::move(*fwd);
  p.routing.forward = p.forward.get();
  p.handoffs = std::make_unique<handoff>(*p.journal, p.routing);
  lo.config = p.routing.own->fingerprint();
  auto link = cluster::peer_link::start(p.ctx, std::move(lo), std::move(ev));
  if (!link) return link.error();
  p.peers = std::move(*link);
  {
    std::lock_guard<std::mutex> lock{p.routing.mutex};
    p.routing.peers = p.peers.get();
  }
  log(log_level::info, "cluster", "member", {{"node", opts.node_id}, {"members", std::to_string(cc.members.size())},
                                             {"shards", std::to_string(cc.shards)}});
  return {};
}

cluster_view node::cluster() const {
  cluster_view v;
  const auto now = impl_->clock->now();
  std::lock_guard<std::mutex> lock{impl_->cluster_mutex};
  if (!impl_->members) {
    member_view self;
    self.id = impl_->opts.node_id;
    self.self = true;
    self.state = member_state::up;
    v.members.push_back(std::move(self));
    return v;
  }
  v.clustered = true;
  v.quorum = impl_->quorum.load();  // what the node acts on (updated at each heartbeat tick)
  v.members = impl_->members->view(now);
  v.shards = impl_->members->shards();
  // Who takes each shard's readings as this node routes them now (recomputed at each
  // heartbeat tick), the shards it acts as owner of, and those it is catching up on.
  std::lock_guard<std::mutex> routing_lock{impl_->routing.mutex};
  const auto& own = *impl_->routing.own;
  for (std::uint32_t s = 0; s < own.shards(); ++s)
    if (const auto& owner = own.owner(s); !owner.empty()) ++v.owned[owner];
  v.acting = own.owned(mono_ms());
  v.waiting = static_cast<std::uint32_t>(own.waiting());
  return v;
}

result<std::unique_ptr<node>> node::start(const config::node_options& opts, const time_source& clock,
                                          node_hooks hooks) {
  auto rules = load_rules(opts);
  if (!rules) return rules.error();
  auto p = std::make_unique<impl>();
  p->opts = opts;
  p->clock = &clock;
  storage::journal_options jo;
  jo.sync = opts.journal_sync;
  jo.max_pending_readings = opts.ingest_max_pending_readings;
  if (opts.plaintext_storage) {
    log(log_level::warn, "security", "plaintext_storage",
        {{"msg", "patient data is stored UNENCRYPTED (security.plaintext-storage); test benches only"}});
  } else {
    if (auto st = storage::check_data_key_file_location(opts.data_key_file, opts.data_dir); !st) return st;
    auto keys = storage::load_data_keys(opts.data_key_file);
    if (!keys) return keys.error();
    jo.keys = std::move(*keys);
  }
  auto j = storage::journal::open(opts.data_dir, jo);
  if (!j) return j.error();
  p->journal = std::move(*j);
  if (opts.plaintext_endpoints) {
    log(log_level::warn, "security", "plaintext_endpoints",
        {{"msg", "ingest, pager and control are served WITHOUT authentication or encryption "
                 "(security.plaintext): anyone who reaches a port can send readings, take pages and "
                 "run commands; test benches only"}});
  } else {
    auto ready = [&]() -> status {
      auto own = cluster::load_key_file(opts.node_key_file);
      if (!own) return own.error();
      auto list = config::load_access_file(opts.access_file);
      if (!list) return list.error();
      p->security.access = std::make_shared<cluster::access_holder>(std::move(*list));
      p->security.secret_key = own->secret_key;
      p->own_keys = *own;
      auto throttle = std::make_shared<audit_throttle>(*p->journal, clock);
      p->security.on_denied = [throttle](const std::string& who, const std::string& action,
                                         const std::string& subject) {
        (*throttle)(who, action, subject, "unauthorized", who + "|" + action, 1000, false);
      };
      auto zap = cluster::zap_handler::start(
          p->ctx, p->security.access,
          [throttle, j = p->journal.get(), c = &clock](const cluster::auth_event& ev) { report_auth(*throttle, *j, *c, ev); });
      if (!zap) return zap.error();
      p->zap = std::move(*zap);
      log(log_level::info, "security", "curve_on",
          {{"keys", std::to_string(p->security.access->get()->size())}, {"access", opts.access_file}});
      return {};
    }();
    if (!ready) {
      p->journal->close();
      return ready;
    }
  }
  if (!opts.journal_sync)
    log(log_level::warn, "node", "journal_sync_off",
        {{"msg", "acknowledged readings can be lost on power failure; never run like this in production"}});
  p->caf_cfg.set("scheduler.max-threads", static_cast<std::size_t>(opts.scheduler_threads));
  // Work stealing polls busily when idle; on a 2-core node that takes CPU from the I/O and
  // journal threads. A shared queue sleeps instead.
  p->caf_cfg.set("scheduler.policy", caf::atom("sharing"));
  p->caf_cfg.set("logger.verbosity", caf::atom("quiet"));
  p->sys = std::make_unique<caf::actor_system>(p->caf_cfg);
  // Stops what started so far when a later step fails.
  auto abandon = [&p](status why) -> status {
    for (auto* a : {&p->host, &p->escalator})
      if (*a) caf::anon_send(*a, actors::shutdown_atom::value);
    p->sys->await_all_actors_done();
    if (p->peers) p->peers->stop();
    if (p->forward) p->forward->stop();
    p->handoffs.reset();
    if (p->pager) p->pager->stop();
    if (p->zap) p->zap->stop();
    p->journal->close();
    return why;
  };

  // The escalator first: it loads the escalations in progress before any alert can reach it.
  actors::escalator_config ec;
  ec.journal = p->journal.get();
  ec.clock = &clock;
  ec.policies = rules->escalation;
  ec.grace_ms = opts.pager_grace_ms;
  ec.tick_interval = std::chrono::milliseconds{opts.rules_tick_ms};
  ec.metrics = &p->escalation_counts;
  if (!opts.cluster_members.empty()) {
    // In a cluster the escalator acts only on the alerts whose shard this node owns, and
    // copies every escalation record to the shard's follower, so that a new owner goes on
    // from the step reached.
    ec.owns = [r = &p->routing](const alert_record& a) {
      std::lock_guard<std::mutex> lock{r->mutex};
      return r->own && r->own->acting(shard_of_alert(a, r->shards), mono_ms());
    };
    ec.on_persist = [pp = p.get()](const alert_record& a, const std::optional<std::string>& record) {
      std::string follower;
      cluster::peer_link* peers = nullptr;
      {
        std::lock_guard<std::mutex> lock{pp->routing.mutex};
        if (!pp->routing.own) return;
        follower = pp->routing.own->follower(shard_of_alert(a, pp->routing.shards));
        if (follower.empty() || follower == pp->routing.self) return;
        peers = pp->routing.peers;  // set once the peer links run
      }
      if (peers) peers->send(follower, cluster::wire::encode_escalation_copy({pp->routing.self, a.id, record}));
    };
  }
  p->escalator = actors::spawn_escalator(*p->sys, std::move(ec));
  cluster::pager_options po;
  po.endpoint = opts.pager_endpoint;
  po.max_message_bytes = opts.pager_max_message_bytes;
  po.security = p->security;
  cluster::pager_events pe;
  pe.on_status = [esc = p->escalator](const std::string& gateway, const wire::pager_status& st) {
    caf::anon_send(esc, actors::page_status_atom::value, gateway, st.page_id, st.status, st.by);
  };
  pe.on_hello = [esc = p->escalator](const wire::pager_hello& h) {
    caf::anon_send(esc, actors::hello_atom::value, h.targets);
  };
  auto pager = cluster::pager_server::start(p->ctx, po, std::move(pe));
  if (!pager) return abandon(pager.error());
  p->pager = std::move(*pager);

  actors::host_config hc;
  hc.journal = p->journal.get();
  hc.clock = &clock;
  hc.idle_timeout = std::chrono::milliseconds{opts.entity_idle_timeout_ms};
  hc.rules = rules->rules;
  auto stored = p->journal->get_snapshot("n/silences");
  if (!stored) return abandon(stored.error());
  if (*stored) {
    auto decoded = storage::decode_silences(**stored);
    if (!decoded) return abandon(decoded.error());
    hc.silences = std::move(decoded->first);
    hc.next_silence = decoded->second;
  }
  hc.on_alert_events = [esc = p->escalator, user = std::move(hooks.on_alert_events)](const std::vector<alert_event>& events) {
    caf::anon_send(esc, events);
    if (user) user(events);
  };
  hc.tick_interval = std::chrono::milliseconds{opts.rules_tick_ms};
  hc.snapshot_every = opts.entity_snapshot_every;
  hc.max_restarts = opts.supervision_max_restarts;
  hc.restart_window_ms = opts.supervision_window_ms;
  hc.on_device_reading = std::move(hooks.on_device_reading);
  hc.on_quarantine = std::move(hooks.on_quarantine);
  p->host = actors::spawn_shard_host(*p->sys, std::move(hc));
  caf::anon_send(p->escalator, actors::start_atom::value, p->host, actors::pager_handle{p->pager.get()});
  if (auto st = start_cluster(*p, opts, clock); !st) return abandon(st);
  p->backend = std::make_unique<journal_backend>(*p->journal, p->host, p->quorum,
                                                 p->members ? &p->routing : nullptr);

  cluster::ingest_options io;
  io.endpoint = opts.ingest_endpoint;
  io.max_message_bytes = opts.ingest_max_message_bytes;
  io.limits.max_readings = opts.ingest_max_batch_readings;
  io.max_future_ms = opts.ingest_max_future_ms;
  io.security = p->security;
  auto server = cluster::ingest_server::start(p->ctx, io, *p->backend, clock);
  if (!server) return abandon(server.error());
  p->ingest = std::move(*server);
  if (p->peers) p->peers->advertise_ingest(p->ingest->endpoint());
  p->started_at = clock.now();
  std::unique_ptr<node> n{new node{std::move(p)}};
  cluster::control_options co;
  co.endpoint = opts.control_endpoint;
  co.security = n->impl_->security;
  auto* raw = n.get();
  auto control = cluster::control_server::start(raw->impl_->ctx, co, [raw](const wire::control_request& req,
                                                                          const cluster::control_caller& caller) {
    if (!raw->impl_->serving.load()) {
      wire::control_reply busy;
      busy.ok = false;
      busy.code = errc::unavailable;
      busy.message = "the node is starting or stopping; retry shortly";
      return busy;
    }
    return actors::handle_control(*raw, req, caller);
  });
  if (!control) {
    n->stop();
    return control.error();
  }
  n->impl_->control = std::move(*control);
  if (!opts.metrics_endpoint.empty() && opts.metrics_endpoint != "off") {
    auto metrics = actors::metrics_endpoint::start(opts.metrics_endpoint, *raw, raw->impl_->escalation_counts);
    if (!metrics) {
      n->stop();
      return metrics.error();
    }
    n->impl_->metrics = std::move(*metrics);
  }
  n->impl_->serving = true;
  log(log_level::info, "node", "started",
      {{"node", opts.node_id},
       {"data_dir", opts.data_dir},
       {"ingest", n->impl_->ingest->endpoint()},
       {"pager", n->impl_->pager->endpoint()},
       {"control", n->impl_->control->endpoint()},
       {"metrics", n->metrics_url()}});
  return n;
}

node::node(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

node::~node() { stop(); }

void node::stop() {
  if (!impl_ || impl_->stopped.exchange(true)) return;
  impl_->serving = false;
  // Order matters: operators' commands first (the one running finishes), then stop intake and answer in-flight batches, then let the journal finish
  // every queued append (its completions still reach the ingest server, which is alive).
  impl_->metrics.reset();  // no scrape reaches a node being taken apart
  if (impl_->control) impl_->control->stop();
  impl_->ingest->stop();
  // Every append has completed (the endpoint drained), so the host has every reading; the
  // entities snapshot and stop before the database closes.
  // The escalator stops first (escalations are persisted at each step), so that an
  // acceptance it is handing to an entity reaches the host before the host's shutdown. The
  // pager endpoint outlives it (the escalator sends through it), then goes.
  {
    caf::scoped_actor self{*impl_->sys};
    self->send(impl_->escalator, actors::shutdown_atom::value);
    self->wait_for(impl_->escalator);
  }
  caf::anon_send(impl_->host, actors::shutdown_atom::value);
  impl_->sys->await_all_actors_done();
  if (impl_->peers) impl_->peers->stop();      // no more ticks, so no new handoffs
  if (impl_->forward) impl_->forward->stop();  // fails what a handoff may be waiting for
  impl_->handoffs.reset();
  impl_->pager->stop();
  if (impl_->zap) impl_->zap->stop();  // it audits: before the journal closes
  impl_->journal->close();
  log(log_level::info, "node", "stopped", {{"accepted", std::to_string(impl_->ingest->stats().accepted)}});
}

const std::string& node::ingest_endpoint() const { return impl_->ingest->endpoint(); }

const std::string& node::pager_endpoint() const { return impl_->pager->endpoint(); }

const std::string& node::control_endpoint() const { return impl_->control->endpoint(); }

std::string node::metrics_url() const { return impl_->metrics ? impl_->metrics->url() : std::string{}; }

const config::node_options& node::options() const { return impl_->opts; }

epoch_ms node::started_at() const { return impl_->started_at; }

epoch_ms node::now() const { return impl_->clock->now(); }

status node::reload_access() {
  if (!impl_->security.enabled()) return {};
  auto list = config::load_access_file(impl_->opts.access_file);
  if (!list) {
    log(log_level::error, "security", "access_reload_failed", {{"error", list.error().to_string()}});
    return list.error();
  }
  const auto keys = (*list)->size();
  impl_->security.access->set(std::move(*list));
  impl_->pager->recheck_access();
  log(log_level::info, "security", "access_reloaded", {{"keys", std::to_string(keys)}, {"access", impl_->opts.access_file}});
  return {};
}

status node::health() const {
  if (impl_->stopped) return {errc::unavailable, "node is stopped"};
  auto r = impl_->journal->get_snapshot("n/silences");
  return r ? status{} : r.error();
}

result<std::vector<alert_event>> node::open_alerts() const {
  if (impl_->stopped) return status{errc::unavailable, "node is stopped"};
  std::vector<alert_event> out;
  auto st = impl_->journal->for_each_open_alert([&](const alert_event& e) {
    out.push_back(e);
    return true;
  });
  if (!st) return st;
  return out;
}

result<std::vector<alert_event>> node::latest_alerts() const {
  if (impl_->stopped) return status{errc::unavailable, "node is stopped"};
  std::vector<alert_event> out;
  auto st = impl_->journal->for_each_alert_event([&](const alert_event& e) {
    if (!out.empty() && out.back().after.id == e.after.id) out.back() = e;
    else out.push_back(e);
    return true;
  });
  if (!st) return st;
  return out;
}

status node::audit(const std::string& actor, const std::string& action, const std::string& subject,
                  const std::string& outcome) {
  if (impl_->stopped) return {errc::unavailable, "node is stopped"};
  auto st = impl_->journal->append_audit(impl_->clock->now(), actor, action, subject, outcome);
  if (!st) log(log_level::error, "audit", "write_failed", {{"action", action}, {"error", st.to_string()}});
  return st;
}

result<std::vector<storage::journal::audit_record>> node::audit_log(std::size_t limit) const {
  if (impl_->stopped) return status{errc::unavailable, "node is stopped"};
  return impl_->journal->audit(limit);
}

result<storage::journal::audit_check> node::verify_audit() const {
  if (impl_->stopped) return status{errc::unavailable, "node is stopped"};
  return impl_->journal->verify_audit();
}

result<std::vector<storage::journal::node_event>> node::recent_events(std::size_t limit, const std::string& kind) const {
  if (impl_->stopped) return status{errc::unavailable, "node is stopped"};
  return impl_->journal->recent_events(limit, kind);
}

result<std::vector<storage::journal::node_event>> node::events_about(const std::string& subject) const {
  if (impl_->stopped) return status{errc::unavailable, "node is stopped"};
  return impl_->journal->events_about(subject);
}

result<std::vector<storage::journal_entry>> node::readings(const device_id& id, std::uint64_t from_seq,
                                                           std::size_t limit) const {
  if (impl_->stopped) return status{errc::unavailable, "node is stopped"};
  return impl_->journal->read_device(id, from_seq, limit);
}

result<device_state> node::device_at(const device_id& id, epoch_ms at) const {
  if (impl_->stopped) return status{errc::unavailable, "node is stopped"};
  return storage::device_at(*impl_->journal, id, at);
}

result<patient_state> node::patient_at(const patient_id& id, epoch_ms at) const {
  if (impl_->stopped) return status{errc::unavailable, "node is stopped"};
  return storage::patient_at(*impl_->journal, id, at);
}

std::vector<std::string> node::gateways() const { return impl_->stopped ? std::vector<std::string>{} : impl_->pager->gateways(); }

namespace {
template <class T, class... Ts>
result<T> ask(caf::actor_system& sys, const caf::actor& host, Ts&&... xs) {
  result<T> out{errc::unavailable, "node is stopped"};
  caf::scoped_actor self{sys};
  self->request(host, std::chrono::seconds{30}, std::forward<Ts>(xs)...)
      .receive([&](T& v) { out = std::move(v); },
               [&](caf::error& e) { out = status{errc::unavailable, caf::to_string(e)}; });
  return out;
}
}  // namespace

result<device_state> node::device(const device_id& id) const {
  if (impl_->stopped) return status{errc::unavailable, "node is stopped"};
  return ask<device_state>(*impl_->sys, impl_->host, actors::state_atom::value, id);
}

result<patient_state> node::patient(const patient_id& id) const {
  if (impl_->stopped) return status{errc::unavailable, "node is stopped"};
  return ask<patient_state>(*impl_->sys, impl_->host, actors::state_atom::value, id);
}

void node::tick() {
  if (impl_->stopped) return;
  caf::anon_send(impl_->host, actors::tick_atom::value);
  caf::anon_send(impl_->escalator, actors::tick_atom::value);
}

namespace {
// Node-level alerts (an unreachable pager target) and quarantine alerts, whose entity no
// longer runs, are acknowledged and resolved by the escalator; the rest by their entity.
bool escalator_owns(const std::string& alert_id) {
  return alert_id.rfind("n/", 0) == 0 || alert_id.find("/quarantined/") != std::string::npos;
}
}  // namespace

// Who acknowledged or resolved an alert by hand, and when: a node event beside the
// transition (an alert keeps who acknowledged it, not who resolved it).
static void record_by_hand(storage::journal& j, const time_source& clock, const result<std::vector<alert_event>>& events,
           const char* kind, const std::string& alert_id, const std::string& by) {
  if (!events || events->empty()) return;
  if (auto st = j.append_event(clock.now(), kind, alert_id, "by " + by); !st)
    log(log_level::error, "node", "audit_write_failed", {{"error", st.to_string()}});
}

// In a cluster, an entity's alert is acknowledged or resolved only by the member acting as
// its shard's owner: another member's copy of the entity (a follower's, a former owner's)
// would take the acknowledgement while the owner went on paging. The shard comes from the
// alert as this member last journaled it, else from its id: the patient of a patient's
// alert; for a device's, the patient its first journaled reading names. A member that holds
// nothing of the device lets the entity answer (it knows no such alert).
status node::check_owns_alert(const std::string& alert_id) const {
  auto& p = *impl_;
  if (!p.routing.own || escalator_owns(alert_id)) return {};
  std::optional<std::uint32_t> shard;
  if (auto history = p.journal->alert_history(alert_id); history && !history->empty())
    shard = shard_of_alert(history->back().after, p.routing.shards);
  const auto slash = alert_id.find('/', 2);
  if (!shard && alert_id.size() > 2 && alert_id[1] == '/' && slash != std::string::npos) {
    const auto entity = alert_id.substr(2, slash - 2);
    if (alert_id[0] == 'p') {
      shard = shard_of(routing_key(entity, std::string_view{entity}), p.routing.shards);
    } else if (alert_id[0] == 'd') {
      if (auto id = device_id::make(entity); id)
        if (auto first = p.journal->read_device(*id, 0, 1); first && !first->empty()) {
          const auto& r = first->front().r;
          shard = shard_of_reading(r, p.routing.shards);
        }
    }
  }
  if (!shard) return {};  // not an alert id this member can place: the entity says it does not know it
  std::lock_guard<std::mutex> lock{p.routing.mutex};
  if (p.routing.own->acting(*shard, mono_ms())) return {};
  const auto& owner = p.routing.own->owner(*shard);
  return {errc::unavailable, "alert " + alert_id + " belongs to shard " + std::to_string(*shard) + ", which " +
                                 (owner.empty() ? std::string{"has no owner right now (it is moving); retry"}
                                                : "member " + owner + " owns: send the command to " + owner)};
}

result<std::vector<alert_event>> node::acknowledge(const std::string& alert_id, const std::string& by) {
  if (impl_->stopped) return status{errc::unavailable, "node is stopped"};
  if (auto st = check_owns_alert(alert_id); !st) return st;
  auto events = ask<std::vector<alert_event>>(*impl_->sys, escalator_owns(alert_id) ? impl_->escalator : impl_->host,
                                              actors::ack_atom::value, alert_id, by);
  record_by_hand(*impl_->journal, *impl_->clock, events, "alert_acknowledged", alert_id, by);
  return events;
}

result<std::vector<alert_event>> node::resolve(const std::string& alert_id, const std::string& by) {
  if (impl_->stopped) return status{errc::unavailable, "node is stopped"};
  if (auto st = check_owns_alert(alert_id); !st) return st;
  auto events = ask<std::vector<alert_event>>(*impl_->sys, escalator_owns(alert_id) ? impl_->escalator : impl_->host,
                                              actors::resolve_atom::value, alert_id, by);
  record_by_hand(*impl_->journal, *impl_->clock, events, "alert_resolved", alert_id, by);
  return events;
}

status node::reload_rules() {
  if (impl_->stopped) return {errc::unavailable, "node is stopped"};
  auto rules = load_rules(impl_->opts);
  if (!rules) {
    log(log_level::error, "node", "rules_reload_rejected", {{"problems", rules.error().message()}});
    return rules.error();
  }
  caf::anon_send(impl_->host, actors::rules_atom::value, rules->rules);
  caf::anon_send(impl_->escalator, actors::rules_atom::value, rules->escalation);
  log(log_level::info, "node", "rules_reloaded",
      {{"rules", std::to_string(rules->rules->rules.size())},
       {"policies", std::to_string(rules->escalation->policies.size())}});
  return {};
}

result<std::string> node::add_silence(silence s) {
  if (impl_->stopped) return status{errc::unavailable, "node is stopped"};
  if (!s.patient && !s.device && !s.rule && !s.priority)
    return status{errc::invalid_argument, "a silence needs a scope: patient, device, rule or priority"};
  if (s.until <= impl_->clock->now()) return status{errc::invalid_argument, "a silence must end in the future"};
  return ask<std::string>(*impl_->sys, impl_->host, actors::silence_atom::value, std::move(s));
}

result<bool> node::remove_silence(const std::string& id, const std::string& by) {
  if (impl_->stopped) return status{errc::unavailable, "node is stopped"};
  return ask<bool>(*impl_->sys, impl_->host, actors::unsilence_atom::value, id, by);
}

result<std::vector<silence>> node::silences() const {
  if (impl_->stopped) return status{errc::unavailable, "node is stopped"};
  return ask<std::vector<silence>>(*impl_->sys, impl_->host, actors::silences_atom::value);
}

result<std::vector<alert_event>> node::alert_history(const std::string& alert_id) const {
  if (impl_->stopped) return status{errc::unavailable, "node is stopped"};
  return impl_->journal->alert_history(alert_id);
}

result<std::vector<escalation_state>> node::escalations() const {
  if (impl_->stopped) return status{errc::unavailable, "node is stopped"};
  return ask<std::vector<escalation_state>>(*impl_->sys, impl_->escalator, actors::escalations_atom::value);
}

result<bool> node::release(const std::string& entity, const std::string& by) {
  if (impl_->stopped) return status{errc::unavailable, "node is stopped"};
  return ask<bool>(*impl_->sys, impl_->host, actors::release_atom::value, entity, by);
}

std::vector<std::string> node::quarantined() const {
  if (impl_->stopped) return {};
  auto r = ask<std::vector<std::string>>(*impl_->sys, impl_->host, actors::quarantined_atom::value);
  return r ? std::move(*r) : std::vector<std::string>{};
}

node_stats node::stats() const {
  node_stats s;
  auto in = impl_->ingest->stats();
  s.requests = in.requests;
  s.request_errors = in.request_errors;
  s.accepted = in.accepted;
  s.duplicates = in.duplicates;
  s.rejected = in.rejected;
  s.rejected_by_code.assign(in.rejected_by_code.begin(), in.rejected_by_code.end());
  s.errors_by_code.assign(in.errors_by_code.begin(), in.errors_by_code.end());
  s.request_latency = std::move(in.request_latency);
  if (!impl_->stopped) {
    auto js = impl_->journal->stats();
    s.journal_commits = js.commits;
    s.journal_commit_micros = js.commit_micros;
    s.journal_pending = js.pending;
    s.journal_commit_latency = std::move(js.commit_latency);
    if (auto hs = ask<actors::host_stats>(*impl_->sys, impl_->host, actors::stats_atom::value)) {
      s.active_devices = hs->active_devices;
      s.active_patients = hs->active_patients;
      s.activations = hs->activations;
      s.passivations = hs->passivations;
      s.restarts = hs->restarts;
      s.quarantined = hs->quarantined;
    }
  }
  return s;
}

}  // namespace alert
