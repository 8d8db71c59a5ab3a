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

// ---- shared by entities ----------------------------------------------------------------

// Journals transitions (WAL synced, with the entity's snapshot when given, in one write)
// and hands them on. A failed write is logged; the alert stays in the entity's state.
void publish(const host_config* cfg, const std::vector<alert_event>& events,
             const std::optional<std::pair<std::string, std::string>>& snapshot = std::nullopt, bool sync = true) {
  if (events.empty()) return;
  if (auto st = cfg->journal->append_alert_events(events, snapshot, sync); !st)
    log(log_level::error, "alerts", "journal_failed", {{"error", st.to_string()}});
  for (const auto& e : events)
    log(e.type == alert_event_type::fired ? log_level::warn : log_level::info, "alerts", to_string(e.type),
        {{"alert", e.after.id}, {"priority", std::string{to_string(e.after.priority)}}, {"summary", e.after.summary}});
  if (cfg->on_alert_events) cfg->on_alert_events(events);
}

template <class Events>
void append(std::vector<alert_event>& out, Events&& more) {
  out.insert(out.end(), std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()));
}

// Device rules for one reading that the device state already took.
void evaluate_device(const rule_set* rules, storage::device_snapshot& snap, const std::string& key,
                     const reading& r, std::vector<alert_event>& out) {
  if (!rules) return;
  for (const auto& rl : rules->rules) {
    if ((rl.kind != rule_kind::threshold && rl.kind != rule_kind::rate) || rl.what != r.what) continue;
    auto events = evaluate_reading(rules->effective(rl, snap.state.patient), snap.rules[rl.id], key, r, snap.state.patient);
    // A silent device's new physiological alerts are inhibited from the start.
    if (!events.empty() && snap.rules[rl.id].open && snap.rules[rl.id].open->kind == alert_kind::physiological) {
      bool silent = false;
      for (const auto& nd : rules->rules)
        if (nd.kind == rule_kind::no_data && snap.rules[nd.id].open) silent = true;
      if (silent) append(events, set_inhibited(snap.rules[rl.id], true, r.ts));
    }
    append(out, std::move(events));
  }
}

// No-data rules at node time `now`; a device that fell silent inhibits its physiological
// alerts, one that speaks again lifts that.
void check_silence(const rule_set* rules, storage::device_snapshot& snap, const std::string& key,
                   const std::string& device, epoch_ms now, std::vector<alert_event>& out) {
  if (!rules) return;
  for (const auto& rl : rules->rules) {
    if (rl.kind != rule_kind::no_data || !watches(rl, snap.state.kind())) continue;
    auto events = evaluate_silence(rl, snap.rules[rl.id], key, device, snap.state.patient, snap.state.last_seen, now);
    for (const auto& e : events) {
      bool inhibit = e.type == alert_event_type::fired;
      bool lift = e.type == alert_event_type::resolved;
      if (!inhibit && !lift) continue;
      for (auto& [id, st] : snap.rules)
        if (id != rl.id) append(out, set_inhibited(st, inhibit, now));
    }
    // The silence alert first, then what it did to the others.
    out.insert(out.begin(), events.begin(), events.end());
  }
}

// Patient rules after a reading was folded into the patient's state.
void evaluate_patient_rules(const rule_set* rules, storage::patient_snapshot& snap, const patient_id& id,
                            const reading& r, std::vector<alert_event>& out) {
  if (!rules) return;
  const bool scale2 = rules->spo2_scale2(id, snap.state.settings.spo2_scale2);
  for (const auto& rl : rules->rules) {
    if (rl.kind != rule_kind::news2 && rl.kind != rule_kind::qsofa) continue;
    append(out, evaluate_patient(rl, snap.rules[rl.id], id, snap.state, scale2, rules->staleness, r.ts,
                                 reading_ref{r.device.str(), r.seq}));
  }
}

// Finds the open alert `alert_id` in `rules` and applies an acknowledgement or resolution.
std::vector<alert_event> act_on(rule_states& rules, const std::string& alert_id, bool ack, const std::string& by,
                                epoch_ms now) {
  for (auto& [id, st] : rules)
    if (st.open && st.open->id == alert_id) return ack ? acknowledge(st, by, now) : resolve(st, by, now);
  return {};
}

// ---- what device and patient actors share ---------------------------------------------

using silence_list = std::shared_ptr<const std::vector<silence>>;

template <class Snapshot>
struct entity_state {
  std::string key;
  silence_list silences;
  std::uint64_t received = 0;        // messages taken from the host (for passivation)
  std::uint64_t since_snapshot = 0;  // readings since the last snapshot
  Snapshot snap;
  std::shared_ptr<const rule_set> rules;
  epoch_ms last_active = 0;            // node time of the last reading or command
  std::chrono::milliseconds idle{0};   // passivate after this long without either
  bool asking = false;                 // a passivation request is out
};

std::string encode_snapshot(const storage::device_snapshot& s) { return storage::encode_device(s); }
std::string encode_snapshot(const storage::patient_snapshot& s) { return storage::encode_patient(s); }

template <class State>
void snapshot(stateful_actor<State>* self, const host_config* cfg, bool sync) {
  auto& st = self->state;
  if (auto err = cfg->journal->put_snapshot(st.key, encode_snapshot(st.snap), sync); !err)
    log(log_level::warn, "entity", "snapshot_failed", {{"entity", st.key}, {"error", err.to_string()}});
  st.since_snapshot = 0;
}

// Brings silences up to date, then journals the transitions with the state that produced
// them. `synced`: false for transitions that readings caused, which wait for no fsync (a
// page waits for none): the readings are durable, and a rebuild after a power loss replays
// them through the rules and journals the same transitions under the same keys. A person's
// acknowledgement or resolution, and what timers and silences decide, are synced.
template <class State>
void commit(stateful_actor<State>* self, const host_config* cfg, std::vector<alert_event>& events, bool synced = true) {
  auto& st = self->state;
  apply_silences(st.snap.rules, *st.silences, cfg->clock->now(), events);
  if (events.empty()) return;
  publish(cfg, events, std::make_pair(st.key, encode_snapshot(st.snap)), synced);
  st.since_snapshot = 0;
}

// Counts readings towards the next (unsynced) snapshot.
template <class State>
void took_readings(stateful_actor<State>* self, const host_config* cfg, std::size_t n) {
  self->state.since_snapshot += n;
  if (self->state.since_snapshot >= cfg->snapshot_every) snapshot(self, cfg, false);
}

// A reading or a command arrived: the entity is in use.
template <class State>
void touch(stateful_actor<State>* self, const host_config* cfg) {
  ++self->state.received;
  self->state.last_active = cfg->clock->now();
}

// Called on every tick. Passivation is decided on node time since the last reading or
// command: CAF's `after` timeout would be reset by the ticks themselves. The snapshot is
// written before asking, so a successor activated right after the grant loads the latest
// state; the host grants only when the entity has taken every message it sent.
template <class State>
void maybe_passivate(stateful_actor<State>* self, actor host, const host_config* cfg) {
  auto& st = self->state;
  if (st.asking || cfg->clock->now() - st.last_active < st.idle.count()) return;
  if (st.since_snapshot > 0) snapshot(self, cfg, false);
  st.asking = true;
  self->request(host, infinite, passivate_atom::value, st.key, st.received).then([=](bool granted) {
    self->state.asking = false;
    if (granted) self->quit();
  });
}

// The handlers every entity has: acknowledge, resolve, new rules and silences, open alerts
// and stop.
template <class State>
behavior common_handlers(stateful_actor<State>* self, const host_config* cfg) {
  auto act = [=](const std::string& alert_id, bool ack, const std::string& by) {
    touch(self, cfg);
    auto events = act_on(self->state.snap.rules, alert_id, ack, by, cfg->clock->now());
    commit(self, cfg, events);
    return events;
  };
  return {
      [=](ack_atom, const std::string& alert_id, const std::string& by) { return act(alert_id, true, by); },
      [=](resolve_atom, const std::string& alert_id, const std::string& by) { return act(alert_id, false, by); },
      [=](rules_atom, std::shared_ptr<const rule_set>& r) { self->state.rules = std::move(r); },
      [=](silences_atom, silence_list& list) {
        self->state.silences = std::move(list);
        std::vector<alert_event> events;
        commit(self, cfg, events);
      },
      [=](state_atom) { return self->state.snap.state; },
      [=](alerts_atom) {
        std::vector<alert_record> open;
        for (const auto& [rid, rs] : self->state.snap.rules)
          if (rs.open) open.push_back(*rs.open);
        return open;
      },
      [=](shutdown_atom) {
        if (self->state.since_snapshot > 0) snapshot(self, cfg, true);
        self->quit();
      },
  };
}

// ---- device actor ---------------------------------------------------------------------

// A device must stay active past the longest no-data limit that watches it, or nobody
// would notice it fell silent (a passive actor gets no ticks). Its kind is known once it
// has reported; before that every no-data rule counts.
std::chrono::milliseconds device_idle_timeout(const rule_set* rules, const device_state& s, const host_config* cfg) {
  auto idle = cfg->idle_timeout;
  if (!rules) return idle;
  for (const auto& rl : rules->rules)
    if (rl.kind == rule_kind::no_data && (s.kind() == device_kind::unknown || watches(rl, s.kind())))
      idle = std::max(idle, std::chrono::milliseconds{rl.ttl_ms} + std::chrono::minutes{1});
  return idle;
}

struct device_actor_state : entity_state<storage::device_snapshot> {
  static inline const char* name = "device";
};

behavior device_actor(stateful_actor<device_actor_state>* self, actor host, device_id id, const host_config* cfg,
                      std::shared_ptr<const rule_set> rules, silence_list silences) {
  self->set_exception_handler(to_exit_reason);
  auto& st = self->state;
  st.key = storage::device_key(id);
  st.rules = std::move(rules);
  st.silences = std::move(silences);
  // Rebuild: snapshot + journal; readings after the snapshot go through the rules again, so
  // a transition lost in a crash is produced again (same alert id and version).
  std::vector<alert_event> replayed;
  // Readings replayed here may never have reached their patient (the device died with them
  // in its mailbox): they go on again. Patients fold idempotently and their rules ignore
  // readings older than ones already evaluated, so a repeat changes nothing.
  std::map<std::string, std::vector<reading>> replayed_for;
  auto loaded = storage::load_device(*cfg->journal, id, [&](storage::device_snapshot& snap, const storage::journal_entry& e) {
    evaluate_device(st.rules.get(), snap, st.key, e.r, replayed);
    if (const auto& p = e.r.patient ? e.r.patient : snap.state.patient) replayed_for[p->str()].push_back(e.r);
  });
  if (!loaded) {
    self->quit(make_error(sec::runtime_error, "loading " + st.key + ": " + loaded.error().to_string()));
    return {};
  }
  st.snap = std::move(*loaded);
  for (auto& [p, rs] : replayed_for) self->send(host, patient_readings{*patient_id::make(p), std::move(rs)});
  // Silences may have changed while the entity was passive: flags catch up (resurfacing).
  commit(self, cfg, replayed, false);
  message_handler own{
      [=](device_readings& batch) {
        auto& state = self->state;
        touch(self, cfg);
        std::map<std::string, std::vector<reading>> to_patients;
        std::vector<alert_event> events;
        for (auto& r : batch.readings) {
          auto change = apply(state.snap.state, r, batch.received);
          if (cfg->on_device_reading) cfg->on_device_reading(state.snap.state, r);
          evaluate_device(state.rules.get(), state.snap, state.key, r, events);
          if (change.unbound_from && change.unbound_from != change.attributed_to)
            to_patients[change.unbound_from->str()].push_back(r);
          if (change.attributed_to) to_patients[change.attributed_to->str()].push_back(std::move(r));
        }
        // It spoke: a silence alert resolves.
        check_silence(state.rules.get(), state.snap, state.key, state.key.substr(2), cfg->clock->now(), events);
        for (auto& [p, rs] : to_patients)
          self->send(host, patient_readings{*patient_id::make(p), std::move(rs)});
        commit(self, cfg, events, false);
        took_readings(self, cfg, batch.readings.size());
      },
      [=](tick_atom) {
        std::vector<alert_event> events;
        auto& state = self->state;
        check_silence(state.rules.get(), state.snap, state.key, state.key.substr(2), cfg->clock->now(), events);
        commit(self, cfg, events);
        maybe_passivate(self, host, cfg);
      },
      [=](shed_atom) {
        self->state.last_active = std::numeric_limits<epoch_ms>::min() / 2;  // idle: passivate now
        maybe_passivate(self, host, cfg);
      },
  };
  st.idle = device_idle_timeout(st.rules.get(), st.snap.state, cfg);
  st.last_active = cfg->clock->now();
  return own.or_else(common_handlers(self, cfg));
}

// ---- patient actor --------------------------------------------------------------------

struct patient_actor_state : entity_state<storage::patient_snapshot> {
  static inline const char* name = "patient";
};

behavior patient_actor(stateful_actor<patient_actor_state>* self, actor host, patient_id id, const host_config* cfg,
                       std::shared_ptr<const rule_set> rules, silence_list silences) {
  self->set_exception_handler(to_exit_reason);
  auto& st = self->state;
  st.key = storage::patient_key(id);
  st.rules = std::move(rules);
  st.silences = std::move(silences);
  std::vector<alert_event> replayed;
  auto loaded = storage::load_patient(*cfg->journal, id, [&](storage::patient_snapshot& snap, const storage::journal_entry& e) {
    evaluate_patient_rules(st.rules.get(), snap, id, e.r, replayed);
  });
  if (!loaded) {
    self->quit(make_error(sec::runtime_error, "loading " + st.key + ": " + loaded.error().to_string()));
    return {};
  }
  st.snap = std::move(*loaded);
  commit(self, cfg, replayed, false);
  message_handler own{
      [=](patient_readings& batch) {
        auto& state = self->state;
        touch(self, cfg);
        std::vector<alert_event> events;
        for (const auto& r : batch.readings) {
          fold_patient_reading(state.snap.state, batch.patient, state.snap.cursors[r.device.str()], r);
          evaluate_patient_rules(state.rules.get(), state.snap, batch.patient, r, events);
        }
        commit(self, cfg, events, false);
        took_readings(self, cfg, batch.readings.size());
      },
      [=](tick_atom) {
        std::vector<alert_event> events;  // silences expire
        commit(self, cfg, events);
        maybe_passivate(self, host, cfg);
      },
      [=](shed_atom) {
        self->state.last_active = std::numeric_limits<epoch_ms>::min() / 2;  // idle: passivate now
        maybe_passivate(self, host, cfg);
      },
  };
  st.idle = cfg->idle_timeout;
  st.last_active = cfg->clock->now();
  return own.or_else(common_handlers(self, cfg));
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
  std::unordered_map<std::string, std::uint64_t> quarantines;  // per entity, for alert ids
  silence_list silences;
  host_stats stats;
  bool stopping = false;
  bool ticking = true;  // false while this node has no cluster majority
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
    a = self->spawn(device_actor, actor_cast<actor>(self), id, &st.cfg, st.cfg.rules, st.silences);
    ++st.stats.active_devices;
  } else {
    a = self->spawn(patient_actor, actor_cast<actor>(self), id, &st.cfg, st.cfg.rules, st.silences);
    ++st.stats.active_patients;
  }
  self->monitor(a);
  st.by_addr[a.address()] = key;
  ++st.stats.activations;
  return &st.live.emplace(key, entry{a, 0}).first->second;
}

// Sends `msg` to an entity. During shutdown an entity may still be activated (a device
// forwarding its last readings to its patient): it is told to stop right after the message.
template <class Msg>
void deliver(host_actor* self, entry& e, Msg&& msg) {
  ++e.sent;
  self->send(e.handle, std::forward<Msg>(msg));
  if (self->state.stopping) self->send(e.handle, shutdown_atom::value);
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
    // Operators must see it like any other technical problem: a technical alert, journaled
    // and handed on like the entities' own. Its rule name is reserved ("quarantined").
    alert_record a;
    a.entity = key;
    a.rule = "quarantined";
    // Numbered by node time, not by a counter that a restart would reset: a later quarantine
    // of the same entity must never reuse an id and overwrite the earlier one's history.
    a.id = key + "/quarantined/" + std::to_string(now) + "-" + std::to_string(++st.quarantines[key]);
    if (key[0] == 'd') a.device = key.substr(2);
    else a.patient = key.substr(2);
    a.priority = alert_priority::high;
    a.kind = alert_kind::technical;
    a.latching = true;
    a.state = alert_state::firing;
    a.opened_at = a.fired_at = now;
    a.count = 1;
    a.summary = key + " quarantined after repeated crashes; its readings are journaled but not evaluated";
    a.version = 1;
    publish(&st.cfg, {alert_event{alert_event_type::fired, a, now, {}}});
    return;
  }
  ++st.stats.restarts;
  log(log_level::warn, "supervisor", "entity_restarted", {{"entity", key}, {"reason", why}});
  if (auto s = st.cfg.journal->append_event(now, "restart", key, why); !s)
    log(log_level::error, "supervisor", "event_write_failed", {{"error", s.to_string()}});
}

// Routes an acknowledgement or resolution to the entity that owns the alert ("d/<id>/..." or
// "p/<id>/..."), activating it if needed, and relays its reply.
template <class Atom>
caf::result<std::vector<alert_event>> route_command(host_actor* self, Atom atom, const std::string& alert_id,
                                                     const std::string& by) {
  if (self->state.stopping) return std::vector<alert_event>{};
  auto second = alert_id.find('/', 2);
  if (alert_id.size() < 3 || alert_id[1] != '/' || second == std::string::npos)
    return std::vector<alert_event>{};
  std::string name = alert_id.substr(2, second - 2);
  entry* e = nullptr;
  if (alert_id[0] == 'd') {
    auto id = device_id::make(name);
    if (!id) return std::vector<alert_event>{};
    e = activate(self, storage::device_key(*id), *id);
  } else if (alert_id[0] == 'p') {
    auto id = patient_id::make(name);
    if (!id) return std::vector<alert_event>{};
    e = activate(self, storage::patient_key(*id), *id);
  }
  if (!e) return std::vector<alert_event>{};
  ++e->sent;
  auto rp = self->make_response_promise<std::vector<alert_event>>();
  self->request(e->handle, infinite, atom, alert_id, by)
      .then([=](std::vector<alert_event>& evs) mutable { rp.deliver(std::move(evs)); },
            [=](error& err) mutable { rp.deliver(std::move(err)); });
  return rp;
}

// Persists the silences (synced: a silence an operator was told about must survive a
// crash) and hands the new list to every live entity.
bool store_silences(host_actor* self, std::vector<silence> list) {
  auto& st = self->state;
  if (auto s = st.cfg.journal->put_snapshot("n/silences", storage::encode_silences(list, st.cfg.next_silence), true); !s) {
    log(log_level::error, "silences", "store_failed", {{"error", s.to_string()}});
    return false;
  }
  st.silences = std::make_shared<const std::vector<silence>>(std::move(list));
  for (auto& [key, e] : st.live) self->send(e.handle, silences_atom::value, st.silences);
  return true;
}

behavior shard_host(host_actor* self, host_config cfg) {
  self->state.cfg = std::move(cfg);
  self->state.silences = std::make_shared<const std::vector<silence>>(self->state.cfg.silences);
  // The no-data timer: a real-time period, the silence judged on the node clock.
  self->delayed_send(self, self->state.cfg.tick_interval, tick_atom::value);
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
          if (auto* e = activate(self, storage::device_key(id), id))
            deliver(self, *e, device_readings{std::move(rs), batch.received});
        }
      },
      [=](patient_readings& batch) {
        if (auto* e = activate(self, storage::patient_key(batch.patient), batch.patient))
          deliver(self, *e, std::move(batch));
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
          return std::move(loaded->state);
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
      [=](tick_atom) {
        auto& st = self->state;
        // Expired silences leave the list; the entities' own tick resurfaces their alerts.
        const epoch_ms now = st.cfg.clock->now();
        if (std::any_of(st.silences->begin(), st.silences->end(), [&](const silence& s) { return s.until <= now; })) {
          std::vector<silence> kept;
          for (const auto& s : *st.silences)
            if (s.until > now) kept.push_back(s);
          store_silences(self, std::move(kept));
        }
        if (st.ticking)
          for (auto& [key, e] : st.live) self->send(e.handle, tick_atom::value);
        if (self->current_sender() == self->address() && !self->state.stopping)
          self->delayed_send(self, self->state.cfg.tick_interval, tick_atom::value);
      },
      [=](quorum_atom, bool ok) { self->state.ticking = ok; },
      [=](shed_atom) {
        for (auto& [key, e] : self->state.live) self->send(e.handle, shed_atom::value);
      },
      [=](ack_atom a, const std::string& alert_id, const std::string& by) { return route_command(self, a, alert_id, by); },
      [=](resolve_atom r, const std::string& alert_id, const std::string& by) {
        return route_command(self, r, alert_id, by);
      },
      [=](rules_atom, std::shared_ptr<const rule_set>& rules) {
        self->state.cfg.rules = rules;
        for (auto& [key, e] : self->state.live) self->send(e.handle, rules_atom::value, rules);
      },
      [=](silence_atom, silence& s) -> caf::result<std::string> {
        auto& st = self->state;
        s.id = "s-" + std::to_string(st.cfg.next_silence++);
        auto list = *st.silences;
        list.push_back(s);
        if (!store_silences(self, std::move(list))) return make_error(sec::runtime_error, "silence not stored");
        (void)st.cfg.journal->append_event(st.cfg.clock->now(), "silence_added", s.id,
                                           "by " + s.by + " until " + std::to_string(s.until) + ": " + s.reason);
        return s.id;
      },
      [=](unsilence_atom, const std::string& id, const std::string& by) -> caf::result<bool> {
        auto& st = self->state;
        std::vector<silence> kept;
        for (const auto& s : *st.silences)
          if (s.id != id) kept.push_back(s);
        if (kept.size() == st.silences->size()) return false;
        if (!store_silences(self, std::move(kept))) return make_error(sec::runtime_error, "silence not removed");
        (void)st.cfg.journal->append_event(st.cfg.clock->now(), "silence_removed", id, "by " + by);
        return true;
      },
      [=](silences_atom) { return *self->state.silences; },
      [=](stats_atom) { return self->state.stats; },
      [=](release_atom, const std::string& key, const std::string& by) {
        auto& st = self->state;
        if (st.quarantined.erase(key) == 0) return false;
        st.crashes.erase(key);
        --st.stats.quarantined;
        log(log_level::warn, "supervisor", "entity_released", {{"entity", key}, {"by", by}});
        if (auto s = st.cfg.journal->append_event(st.cfg.clock->now(), "release", key, "by " + by); !s)
          log(log_level::error, "supervisor", "event_write_failed", {{"error", s.to_string()}});
        return true;
      },
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
