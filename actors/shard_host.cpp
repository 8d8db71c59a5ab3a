#include "actors/shard_host.hpp"

#include <map>

#include "engine/log.hpp"

namespace alert::actors {
namespace {

using namespace caf;

// Turns an exception escaping an entity's handler into an error exit reason: the entity
// dies, the host sees why, the node goes on.
error to_exit_reason(scheduled_actor*, std::exception_ptr& eptr) {
  try {
    std::rethrow_exception(eptr);
  } catch (const std::exception& e) {
    return make_error(sec::runtime_error, std::string{e.what()});
  } catch (...) {
    return make_error(sec::runtime_error, std::string{"unknown exception"});
  }
}

std::string reason_text(const error& e) { return e ? to_string(e) : "normal"; }

// ---- device actor ---------------------------------------------------------------------

struct device_actor_state {
  std::string key;
  std::uint64_t received = 0;        // messages taken from the host (for passivation)
  std::uint64_t since_snapshot = 0;  // readings since the last snapshot
  device_state s;
  static inline const char* name = "device";
};

behavior device_actor(stateful_actor<device_actor_state>* self, actor host, device_id id, const host_config* cfg) {
  self->set_exception_handler(to_exit_reason);
  auto& st = self->state;
  st.key = storage::device_key(id);
  auto loaded = storage::load_device(*cfg->journal, id);
  if (!loaded) {
    self->quit(make_error(sec::runtime_error, "loading " + st.key + ": " + loaded.error().to_string()));
    return {};
  }
  st.s = std::move(*loaded);
  auto snapshot = [=] {
    auto& state = self->state;
    if (auto err = cfg->journal->put_snapshot(state.key, storage::encode_device(state.s)); !err)
      log(log_level::warn, "entity", "snapshot_failed", {{"entity", state.key}, {"error", err.to_string()}});
    state.since_snapshot = 0;
  };
  return {
      [=](device_readings& batch) {
        auto& state = self->state;
        ++state.received;
        std::map<std::string, std::vector<reading>> to_patients;
        for (auto& r : batch.readings) {
          auto change = apply(state.s, r, batch.received);
          if (cfg->on_device_reading) cfg->on_device_reading(state.s, r);
          if (change.unbound_from && change.unbound_from != change.attributed_to)
            to_patients[change.unbound_from->str()].push_back(r);
          if (change.attributed_to) to_patients[change.attributed_to->str()].push_back(std::move(r));
        }
        for (auto& [p, rs] : to_patients)
          self->send(host, patient_readings{*patient_id::make(p), std::move(rs)});
        state.since_snapshot += batch.readings.size();
        if (state.since_snapshot >= cfg->snapshot_every) snapshot();
      },
      [=](state_atom) { return self->state.s; },
      [=](shutdown_atom) {
        if (self->state.since_snapshot > 0) snapshot();
        self->quit();
      },
      after(cfg->idle_timeout) >>
          [=] {
            self->request(host, infinite, passivate_atom::value, self->state.key, self->state.received)
                .then([=](bool granted) {
                  if (!granted) return;
                  if (self->state.since_snapshot > 0) snapshot();
                  self->quit();
                });
          },
  };
}

// ---- patient actor --------------------------------------------------------------------

struct patient_actor_state {
  std::string key;
  std::uint64_t received = 0;
  std::uint64_t since_snapshot = 0;
  storage::patient_snapshot snap;
  static inline const char* name = "patient";
};

behavior patient_actor(stateful_actor<patient_actor_state>* self, actor host, patient_id id, const host_config* cfg) {
  self->set_exception_handler(to_exit_reason);
  auto& st = self->state;
  st.key = storage::patient_key(id);
  auto loaded = storage::load_patient(*cfg->journal, id);
  if (!loaded) {
    self->quit(make_error(sec::runtime_error, "loading " + st.key + ": " + loaded.error().to_string()));
    return {};
  }
  st.snap = std::move(*loaded);
  auto snapshot = [=] {
    auto& state = self->state;
    if (auto err = cfg->journal->put_snapshot(state.key, storage::encode_patient(state.snap)); !err)
      log(log_level::warn, "entity", "snapshot_failed", {{"entity", state.key}, {"error", err.to_string()}});
    state.since_snapshot = 0;
  };
  return {
      [=](patient_readings& batch) {
        auto& state = self->state;
        ++state.received;
        for (const auto& r : batch.readings)
          fold_patient_reading(state.snap.state, batch.patient, state.snap.cursors[r.device.str()], r);
        state.since_snapshot += batch.readings.size();
        if (state.since_snapshot >= cfg->snapshot_every) snapshot();
      },
      [=](state_atom) { return self->state.snap.state; },
      [=](shutdown_atom) {
        if (self->state.since_snapshot > 0) snapshot();
        self->quit();
      },
      after(cfg->idle_timeout) >>
          [=] {
            self->request(host, infinite, passivate_atom::value, self->state.key, self->state.received)
                .then([=](bool granted) {
                  if (!granted) return;
                  if (self->state.since_snapshot > 0) snapshot();
                  self->quit();
                });
          },
  };
}

// ---- host -----------------------------------------------------------------------------

struct entry {
  actor handle;
  std::uint64_t sent = 0;
};

struct host_state {
  host_config cfg;
  std::unordered_map<std::string, entry> live;
  std::map<actor_addr, std::string> by_addr;
  std::unordered_map<std::string, std::deque<epoch_ms>> crashes;
  std::unordered_set<std::string> quarantined;
  host_stats stats;
  bool stopping = false;
  static inline const char* name = "shard_host";
};

using host_actor = stateful_actor<host_state>;

// The live actor of `key`, activating it if needed; nothing when quarantined.
template <class Id>
entry* activate(host_actor* self, const std::string& key, const Id& id) {
  auto& st = self->state;
  if (st.quarantined.count(key)) {
    ++st.stats.dropped;
    return nullptr;
  }
  auto it = st.live.find(key);
  if (it != st.live.end()) return &it->second;
  actor a;
  if constexpr (std::is_same_v<Id, device_id>) {
    a = self->spawn(device_actor, actor_cast<actor>(self), id, &st.cfg);
    ++st.stats.active_devices;
  } else {
    a = self->spawn(patient_actor, actor_cast<actor>(self), id, &st.cfg);
    ++st.stats.active_patients;
  }
  self->monitor(a);
  st.by_addr[a.address()] = key;
  ++st.stats.activations;
  return &st.live.emplace(key, entry{a, 0}).first->second;
}

void forget(host_actor* self, const std::string& key) {
  auto& st = self->state;
  if (st.live.erase(key) == 0) return;
  if (key[0] == 'd') --st.stats.active_devices;
  else --st.stats.active_patients;
}

void on_crash(host_actor* self, const std::string& key, const error& reason) {
  auto& st = self->state;
  const epoch_ms now = st.cfg.clock->now();
  auto& times = st.crashes[key];
  times.push_back(now);
  while (!times.empty() && now - times.front() > st.cfg.restart_window_ms) times.pop_front();
  const std::string why = reason_text(reason);
  if (times.size() > st.cfg.max_restarts) {
    st.quarantined.insert(key);
    st.crashes.erase(key);
    ++st.stats.quarantined;
    std::string detail = std::to_string(st.cfg.max_restarts + 1) + " crashes within " +
                         std::to_string(st.cfg.restart_window_ms) + " ms; last: " + why;
    log(log_level::error, "supervisor", "entity_quarantined", {{"entity", key}, {"detail", detail}});
    if (auto s = st.cfg.journal->append_event(now, "quarantine", key, detail); !s)
      log(log_level::error, "supervisor", "event_write_failed", {{"error", s.to_string()}});
    if (st.cfg.on_quarantine) st.cfg.on_quarantine(key, detail);
    return;
  }
  ++st.stats.restarts;
  log(log_level::warn, "supervisor", "entity_restarted", {{"entity", key}, {"reason", why}});
  if (auto s = st.cfg.journal->append_event(now, "restart", key, why); !s)
    log(log_level::error, "supervisor", "event_write_failed", {{"error", s.to_string()}});
}

behavior shard_host(host_actor* self, host_config cfg) {
  self->state.cfg = std::move(cfg);
  self->set_down_handler([=](down_msg& dm) {
    auto& st = self->state;
    auto it = st.by_addr.find(dm.source);
    if (it == st.by_addr.end()) return;
    std::string key = std::move(it->second);
    st.by_addr.erase(it);
    auto live = st.live.find(key);
    if (live != st.live.end() && live->second.handle.address() == dm.source) forget(self, key);
    if (dm.reason && dm.reason != exit_reason::user_shutdown) on_crash(self, key, dm.reason);
    if (st.stopping && st.by_addr.empty()) self->quit();
  });
  return {
      [=](reading_batch& batch) {
        // Group by device so each device actor gets one message per append.
        std::unordered_map<std::string, std::vector<reading>> per_device;
        for (auto& r : batch.readings) per_device[r.device.str()].push_back(std::move(r));
        for (auto& [dev, rs] : per_device) {
          auto id = rs.front().device;
          if (auto* e = activate(self, storage::device_key(id), id)) {
            ++e->sent;
            self->send(e->handle, device_readings{std::move(rs), batch.received});
          }
        }
      },
      [=](patient_readings& batch) {
        if (auto* e = activate(self, storage::patient_key(batch.patient), batch.patient)) {
          ++e->sent;
          self->send(e->handle, std::move(batch));
        }
      },
      [=](passivate_atom, const std::string& key, std::uint64_t received) {
        auto& st = self->state;
        auto it = st.live.find(key);
        // Granted only when the entity has taken every message sent to it.
        if (it == st.live.end() || it->second.sent != received ||
            it->second.handle.address() != self->current_sender())
          return false;
        forget(self, key);
        ++st.stats.passivations;
        return true;
      },
      [=](state_atom, const device_id& id) -> caf::result<device_state> {
        auto& st = self->state;
        auto it = st.live.find(storage::device_key(id));
        if (it == st.live.end()) {
          auto loaded = storage::load_device(*st.cfg.journal, id);
          if (!loaded) return make_error(sec::runtime_error, loaded.error().to_string());
          return std::move(*loaded);
        }
        auto rp = self->make_response_promise<device_state>();
        self->request(it->second.handle, infinite, state_atom::value)
            .then([=](device_state& s) mutable { rp.deliver(std::move(s)); },
                  [=](error& e) mutable { rp.deliver(std::move(e)); });
        return rp;
      },
      [=](state_atom, const patient_id& id) -> caf::result<patient_state> {
        auto& st = self->state;
        auto it = st.live.find(storage::patient_key(id));
        if (it == st.live.end()) {
          auto loaded = storage::load_patient(*st.cfg.journal, id);
          if (!loaded) return make_error(sec::runtime_error, loaded.error().to_string());
          return std::move(loaded->state);
        }
        auto rp = self->make_response_promise<patient_state>();
        self->request(it->second.handle, infinite, state_atom::value)
            .then([=](patient_state& s) mutable { rp.deliver(std::move(s)); },
                  [=](error& e) mutable { rp.deliver(std::move(e)); });
        return rp;
      },
      [=](stats_atom) { return self->state.stats; },
      [=](quarantined_atom) {
        std::vector<std::string> out(self->state.quarantined.begin(), self->state.quarantined.end());
        std::sort(out.begin(), out.end());
        return out;
      },
      [=](shutdown_atom) {
        auto& st = self->state;
        st.stopping = true;
        for (auto& [key, e] : st.live) self->send(e.handle, shutdown_atom::value);
        if (st.by_addr.empty()) self->quit();
      },
  };
}

}  // namespace

caf::actor spawn_shard_host(caf::actor_system& sys, host_config cfg) { return sys.spawn(shard_host, std::move(cfg)); }

}  // namespace alert::actors
