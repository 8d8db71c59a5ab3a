#include "actors/escalator.hpp"

#include <algorithm>
#include <map>
#include <optional>
#include <set>

#include "engine/log.hpp"
#include "storage/entity_store.hpp"

namespace alert::actors {
namespace {

using namespace caf;

// The node-level technical alert for a target no gateway serves. Its id names the target
// (pager names never hold '/') and the node time it was raised, so ids never repeat.
constexpr std::string_view unreachable_entity = "n/pager";
constexpr std::string_view unreachable_rule = "target_unreachable";
const std::string unreachable_prefix = "n/pager/target_unreachable/";

std::string target_of_unreachable(const std::string& alert_id) {
  auto end = alert_id.rfind('/');
  if (alert_id.rfind(unreachable_prefix, 0) != 0 || end < unreachable_prefix.size()) return {};
  return alert_id.substr(unreachable_prefix.size(), end - unreachable_prefix.size());
}

// The alert a page id belongs to: "<alert id>@<level>.<repeat>/<target>", where a target
// may hold '@' but never '/'.
std::string alert_of_page(const std::string& page_id) {
  auto slash = page_id.rfind('/');
  if (slash == std::string::npos) return {};
  auto at = page_id.rfind('@', slash);
  return at == std::string::npos ? std::string{} : page_id.substr(0, at);
}

struct entry {
  escalation_state st;
  alert_record alert;
};

struct escalator_state {
  escalator_config cfg;
  actor host;
  cluster::pager_server* pager = nullptr;
  std::map<std::string, entry> live;               // by alert id; std::map: stable references
  std::map<std::string, std::string> unreachable;  // target -> its open technical alert
  epoch_ms started_at = 0;
  bool paused = false;  // no cluster majority: nothing is paged
  std::uint64_t raised = 0;  // unreachable alerts raised in this run (for unique ids)
  static inline const char* name = "escalator";
};
using esc_actor = stateful_actor<escalator_state>;

// The policy an escalation runs under: its own, or (when a reload removed it) the one its
// alert routes to now.
const escalation_policy* policy_of(escalator_state& s, entry& e) {
  if (!s.cfg.policies) return nullptr;
  if (const auto* p = s.cfg.policies->find(e.st.policy)) return p;
  const auto* p = s.cfg.policies->route(e.alert);
  if (p) e.st.policy = p->id;
  return p;
}

void persist(escalator_state& s, const entry& e, const std::vector<storage::journal::node_event>& events,
             bool remove = false) {
  std::optional<std::string> bytes;
  if (!remove) bytes = storage::encode_escalation({e.st, e.alert});
  if (auto st = s.cfg.journal->write_snapshot_and_events(storage::escalation_key(e.st.alert_id), bytes, events); !st)
    log(log_level::error, "escalation", "persist_failed", {{"alert", e.st.alert_id}, {"error", st.to_string()}});
  else if (s.cfg.on_persist)
    s.cfg.on_persist(e.alert, bytes);
}

// In a cluster, whether this node acts on the alert (node-level alerts are always its own).
bool acting_on(const escalator_state& s, const alert_record& a);

wire::pager_page to_wire(const entry& e, const page& p, epoch_ms now) {
  wire::pager_page w;
  w.page_id = p.id;
  w.alert_id = e.alert.id;
  w.target = p.target;
  w.level = p.level;
  w.repeat = p.repeat;
  w.priority = e.alert.priority;
  w.kind = e.alert.kind;
  w.patient = e.alert.patient;
  w.device = e.alert.device;
  w.rule = e.alert.rule;
  w.summary = e.alert.summary;
  w.details = e.alert.details;
  w.ts = now;
  w.event_ts = e.alert.fired_at;
  return w;
}

void handle_event(esc_actor* self, const alert_event& ev);

void count(std::atomic<std::uint64_t>& c) { c.fetch_add(1, std::memory_order_relaxed); }

void ask_host_ack(esc_actor* self, const std::string& alert_id, const std::string& by);

// Journals transitions of an alert this actor owns and handles them like an entity's.
void publish_own(esc_actor* self, const alert_event& ev) {
  if (auto st = self->state.cfg.journal->append_alert_events({ev}); !st)
    log(log_level::error, "alerts", "journal_failed", {{"error", st.to_string()}});
  log(ev.type == alert_event_type::fired ? log_level::warn : log_level::info, "alerts", to_string(ev.type),
      {{"alert", ev.after.id}, {"priority", std::string{to_string(ev.after.priority)}}, {"summary", ev.after.summary}});
  handle_event(self, ev);
}

void raise_unreachable(esc_actor* self, const std::string& target) {
  auto& s = self->state;
  if (s.unreachable.count(target)) return;
  const auto now = s.cfg.clock->now();
  alert_record a;
  a.entity = std::string{unreachable_entity};
  a.rule = std::string{unreachable_rule};
  a.id = unreachable_prefix + target + "/" + std::to_string(now) + "-" + std::to_string(++s.raised);
  a.priority = alert_priority::high;
  a.kind = alert_kind::technical;
  a.state = alert_state::firing;
  a.opened_at = a.fired_at = now;
  a.count = 1;
  a.summary = "no pager gateway serves target " + target + ": its pages cannot be delivered; check the gateway";
  a.version = 1;
  s.unreachable[target] = a.id;
  log(log_level::error, "escalation", "target_unreachable", {{"target", target}, {"alert", a.id}});
  publish_own(self, alert_event{alert_event_type::fired, a, now, {}});
}

// Acknowledges or resolves an alert this actor owns (an unreachable target) or keeps for an
// entity that cannot act any more (a quarantine alert). Returns the transitions.
std::vector<alert_event> act_on_own(esc_actor* self, const std::string& id, bool ack, const std::string& by) {
  auto& s = self->state;
  auto it = s.live.find(id);
  if (it == s.live.end()) return {};
  auto a = it->second.alert;
  if (a.state == alert_state::resolved || (ack && a.state != alert_state::firing)) return {};
  const auto now = s.cfg.clock->now();
  ++a.version;
  if (ack) {
    a.state = alert_state::acknowledged;
    a.acked_at = now;
    a.acked_by = by;
  } else {
    a.state = alert_state::resolved;
    a.resolved_at = now;
    if (a.acked_by.empty()) a.acked_by = by;
  }
  alert_event ev{ack ? alert_event_type::acknowledged : alert_event_type::resolved, a, now, {}};
  publish_own(self, ev);
  return {ev};
}

// Runs `f`; an exception (a bug, or memory) is logged and the escalator goes on with its
// other escalations rather than dying with all of them.
template <class F>
void safely(const char* what, F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    log(log_level::error, "escalation", "handler_failed", {{"in", what}, {"error", e.what()}});
  }
}

bool owned_here(const alert_record& a) { return a.entity == unreachable_entity || a.rule == "quarantined"; }

bool acting_on(const escalator_state& s, const alert_record& a) {
  return !s.cfg.owns || owned_here(a) || a.entity.rfind("n/", 0) == 0 || s.cfg.owns(a);
}

// Carries out an escalation's actions, then persists the step with its page events; sends
// that find no gateway (after the start grace) make the page
// unreachable, which may page the next step at once and raises a technical alert.
void run(esc_actor* self, const std::string& alert_id, std::vector<escalation_action> acts) {
  auto& s = self->state;
  // Without a cluster majority nothing leaves: a response handler (which skip does not hold
  // back) may still get here. The step is taken again when the majority is back.
  if (s.paused) return;
  std::vector<std::string> lost;  // targets found unreachable
  for (int round = 0; !acts.empty() && round < 64; ++round) {
    auto it = s.live.find(alert_id);
    if (it == s.live.end()) return;
    entry& e = it->second;
    const auto now = s.cfg.clock->now();
    std::vector<storage::journal::node_event> events;
    for (const auto& a : acts) {
      switch (a.what) {
        case escalation_action::type::send:
          events.push_back({now, a.pg.sends > 1 ? "page_resent" : "page_sent", a.pg.id,
                            "target " + a.pg.target + ", level " + std::to_string(a.pg.level) + ", repeat " +
                                std::to_string(a.pg.repeat) + ", send " + std::to_string(a.pg.sends)});
          break;
        case escalation_action::type::cancel:
          events.push_back({now, "page_cancelled", a.pg.id, a.reason});
          break;
        case escalation_action::type::acknowledge: break;
      }
    }
    std::vector<escalation_action> more;
    std::set<std::pair<unsigned, unsigned>> steps;  // (level, repeat) first paged in this round
    for (const auto& a : acts) {
      switch (a.what) {
        case escalation_action::type::send: {
          auto n = s.pager ? s.pager->send_page(to_wire(e, a.pg, now)) : 0;
          if (auto* m = s.cfg.metrics) {
            count(a.pg.sends > 1 ? m->pages_resent : m->pages_sent);
            if (a.pg.sends == 1 && steps.insert({a.pg.level, a.pg.repeat}).second)
              count(m->steps_by_level[std::min<std::size_t>(a.pg.level, m->steps_by_level.size() - 1)]);
            if (n == 0 && now >= s.started_at + s.cfg.grace_ms) count(m->pages_unreachable);
          }
          log(log_level::info, "escalation", a.pg.sends > 1 ? "page_resent" : "page_sent",
              {{"page", a.pg.id}, {"target", a.pg.target}, {"gateways", std::to_string(n)}});
          if (n == 0 && now >= s.started_at + s.cfg.grace_ms) {
            if (const auto* pol = policy_of(s, e)) on_page_unreachable(*pol, e.st, a.pg.id, now, more);
            lost.push_back(a.pg.target);
          }
          break;
        }
        case escalation_action::type::cancel:
          if (s.pager) s.pager->send_cancel(a.pg.target, {a.pg.id, e.st.alert_id, a.reason});
          if (auto* m = s.cfg.metrics) count(m->pages_cancelled);
          log(log_level::info, "escalation", "page_cancelled", {{"page", a.pg.id}, {"reason", a.reason}});
          break;
        case escalation_action::type::acknowledge:
          // A responder accepted: the alert's owner journals the acknowledgement, and the
          // transition comes back here (escalation is already stopped).
          if (owned_here(e.alert)) {
            act_on_own(self, alert_id, true, a.pg.by);
          } else {
            ask_host_ack(self, alert_id, a.pg.by);
          }
          break;
      }
    }
    // The step and its page events are written (synced) right after the pages leave, not
    // before: a page waits for no fsync. A crash in between loses nothing: the step is
    // taken again after the restart (from the previous record, or from the open-alert index
    // for a first step) under the same deterministic page ids, which gateways deduplicate,
    // and its page events are written then.
    auto again = s.live.find(alert_id);
    if (again != s.live.end()) persist(s, again->second, events);
    if (more.empty()) break;
    acts = std::move(more);
  }
  for (const auto& t : lost) raise_unreachable(self, t);
}

// Carries out `acts` (run persists the escalation after them), or, when a change of state
// needs no action, persists it alone: one write either way.
void apply(esc_actor* self, const std::string& alert_id, std::vector<escalation_action> acts) {
  auto& s = self->state;
  if (!acts.empty()) {
    run(self, alert_id, std::move(acts));
    return;
  }
  if (auto it = s.live.find(alert_id); it != s.live.end()) persist(s, it->second, {});
}

void close(esc_actor* self, std::map<std::string, entry>::iterator it, const std::string& reason, bool remove) {
  auto& s = self->state;
  std::vector<escalation_action> acts;
  on_alert_closed(it->second.st, reason, acts);
  const auto id = it->first;
  if (!remove) {
    apply(self, id, std::move(acts));
    return;
  }
  run(self, id, std::move(acts));
  it = s.live.find(id);
  if (it == s.live.end()) return;
  persist(s, it->second, {{s.cfg.clock->now(), "escalation_ended", id, reason}}, true);
  if (auto target = target_of_unreachable(id); !target.empty()) {
    auto u = s.unreachable.find(target);
    if (u != s.unreachable.end() && u->second == id) s.unreachable.erase(u);
  }
  s.live.erase(it);
}

// Whether the alert journal already holds a later transition of `a`: an entity rebuilt after
// a crash replays transitions, and an alert whose escalation already ended (its record is
// gone) must not start paging again from a replayed `fired`.
bool moved_on(escalator_state& s, const alert_record& a) {
  auto history = s.cfg.journal->alert_history(a.id);
  return history && !history->empty() && history->back().after.version > a.version;
}

// Arrival-to-page: from the node time the reading that fired the alert was received to now,
// when its first page leaves. Alerts fired by a timer (no reading) are not counted.
void observe_arrival(escalator_state& s, const alert_event& ev, epoch_ms now) {
  if (ev.cause.empty()) return;
  const auto& c = ev.cause.back();
  auto d = device_id::make(c.device);
  if (!d) return;
  auto entries = s.cfg.journal->read_device(*d, c.seq, 1);
  if (!entries || entries->empty() || entries->front().r.seq != c.seq) return;
  s.cfg.metrics->arrival_to_page.observe(static_cast<double>(now - entries->front().received) / 1000.0);
}

void handle_event(esc_actor* self, const alert_event& ev) {
  auto& s = self->state;
  const auto& a = ev.after;
  if (!acting_on(s, a)) return;  // another member owns it now (a stale copy here)
  auto it = s.live.find(a.id);
  if (it != s.live.end() && a.version <= it->second.alert.version) return;  // a rebuild repeating it
  const auto now = s.cfg.clock->now();
  switch (ev.type) {
    case alert_event_type::pending:
    case alert_event_type::cancelled: return;
    case alert_event_type::resolved:
      if (it == s.live.end()) return;
      it->second.alert = a;
      close(self, it, "resolved", true);
      return;
    case alert_event_type::acknowledged: {
      if (it == s.live.end()) return;
      auto& e = it->second;
      e.alert = a;
      std::vector<escalation_action> acts;
      if (const auto* pol = policy_of(s, e)) on_alert_acknowledged(*pol, e.st, now, acts);
      apply(self, a.id, std::move(acts));
      return;
    }
    case alert_event_type::silenced:
    case alert_event_type::inhibited:
      // A silence, or the device went silent: no pages until it resurfaces. Gateways only
      // know the reasons acknowledged, resolved and silenced.
      if (it == s.live.end()) return;
      it->second.alert = a;
      close(self, it, "silenced", false);
      return;
    case alert_event_type::fired:
    case alert_event_type::updated:
    case alert_event_type::cleared:
    case alert_event_type::unsilenced:
    case alert_event_type::uninhibited: break;
  }
  const bool pageable = a.state == alert_state::firing && !a.silenced && !a.inhibited;
  if (!pageable) {
    if (it != s.live.end()) it->second.alert = a;
    return;
  }
  const auto* routed = s.cfg.policies ? s.cfg.policies->route(a) : nullptr;
  if (it == s.live.end()) {
    if (moved_on(s, a)) return;
    if (auto target = target_of_unreachable(a.id); !target.empty()) s.unreachable[target] = a.id;
    if (!routed) {
      // No policy takes it. Alerts this actor owns are still kept, so that people can
      // acknowledge and resolve them.
      if (!owned_here(a)) return;
      entry kept;
      kept.alert = a;
      kept.st.alert_id = a.id;
      kept.st.at = escalation_state::phase::done;
      persist(s, s.live.emplace(a.id, std::move(kept)).first->second, {});
      return;
    }
    entry e;
    e.alert = a;
    std::vector<escalation_action> acts;
    e.st = start_escalation(*routed, a, now, acts);
    s.live.emplace(a.id, std::move(e));
    log(log_level::info, "escalation", "started", {{"alert", a.id}, {"policy", routed->id}});
    if (auto* m = s.cfg.metrics) {
      count(m->escalations_started);
      if (ev.type == alert_event_type::fired) observe_arrival(s, ev, now);
    }
    run(self, a.id, std::move(acts));
    return;
  }
  auto& e = it->second;
  const auto before = e.alert.priority;
  e.alert = a;
  std::vector<escalation_action> acts;
  if (e.st.at == escalation_state::phase::done) {
    // Resurfaced after a silence or after its device spoke again: a new run, new page ids.
    if (const auto* pol = routed ? routed : policy_of(s, e)) restart_escalation(*pol, e.st, now, acts);
    log(log_level::info, "escalation", "restarted", {{"alert", a.id}, {"policy", e.st.policy}});
  } else if (e.st.at == escalation_state::phase::paging && a.priority > before && routed &&
             routed->id != e.st.policy) {
    // Worse now (a NEWS2 band rising): the policy for its new priority takes over.
    restart_escalation(*routed, e.st, now, acts);
    log(log_level::info, "escalation", "rerouted", {{"alert", a.id}, {"policy", routed->id}});
  }
  run(self, a.id, std::move(acts));
}

void tick(esc_actor* self) {
  auto& s = self->state;
  const auto now = s.cfg.clock->now();
  std::vector<std::string> due;
  for (const auto& [id, e] : s.live)
    if (auto d = next_due(e.st); d && *d <= now && acting_on(s, e.alert)) due.push_back(id);
  for (const auto& id : due) {
    auto it = s.live.find(id);
    if (it == s.live.end()) continue;
    std::vector<escalation_action> acts;
    const auto* pol = policy_of(s, it->second);
    if (!pol) continue;  // no policy takes it any more (a reload): nothing to do, nothing to write
    on_escalation_timer(*pol, it->second.st, now, acts);
    apply(self, id, std::move(acts));  // with no action, deadlines may still have moved
  }
}

// The host could not journal a responder's acceptance (the node stopped, the entity is
// quarantined, ...): if the alert is still firing, nobody has it, so paging starts again.
void accept_not_recorded(esc_actor* self, const std::string& alert_id) {
  auto& s = self->state;
  auto it = s.live.find(alert_id);
  if (it == s.live.end() || it->second.st.at != escalation_state::phase::acknowledged) return;
  auto history = s.cfg.journal->alert_history(alert_id);
  if (!history || history->empty() || history->back().after.state != alert_state::firing) return;
  log(log_level::error, "escalation", "accept_not_recorded",
      {{"alert", alert_id}, {"msg", "a responder accepted but the alert could not be acknowledged; paging again"}});
  std::vector<escalation_action> acts;
  if (const auto* pol = policy_of(s, it->second)) restart_escalation(*pol, it->second.st, s.cfg.clock->now(), acts);
  run(self, alert_id, std::move(acts));
}

// Asks the alert's entity (through the host) to journal a responder's acceptance; the
// transition comes back through the host's hook. An empty answer or an error means it was
// not recorded.
void ask_host_ack(esc_actor* self, const std::string& alert_id, const std::string& by) {
  auto& s = self->state;
  if (!s.host) return;
  self->request(s.host, std::chrono::seconds{30}, ack_atom::value, alert_id, by)
      .then(
          [=](const std::vector<alert_event>& events) {
            if (events.empty()) safely("accept", [&] { accept_not_recorded(self, alert_id); });
          },
          [=](const caf::error&) { safely("accept", [&] { accept_not_recorded(self, alert_id); }); });
}

// What fell through the cracks while the node was down: an alert journaled as firing whose
// escalation record was never written starts escalating now; one journaled as acknowledged
// or resolved after its record was last written catches up. Reads the open-alert index and
// the history of the escalations kept, not the whole alert journal.
void recover(esc_actor* self) {
  auto& s = self->state;
  std::vector<alert_event> latest;
  std::set<std::string> open;
  auto st = s.cfg.journal->for_each_open_alert([&](const alert_event& ev) {
    open.insert(ev.after.id);
    latest.push_back(ev);
    return true;
  });
  for (const auto& [id, e] : s.live) {
    if (open.count(id)) continue;
    auto history = s.cfg.journal->alert_history(id);
    if (history && !history->empty()) latest.push_back(history->back());
  }
  if (!st) {
    log(log_level::error, "escalation", "recovery_scan_failed", {{"error", st.to_string()}});
    return;
  }
  for (const auto& ev : latest) handle_event(self, ev);
  // A responder accepted but the node stopped before the alert was acknowledged: ask again.
  for (const auto& [id, e] : s.live) {
    if (e.st.at != escalation_state::phase::acknowledged || owned_here(e.alert) || e.alert.state != alert_state::firing)
      continue;
    for (const auto& p : e.st.pages)
      if (p.status == page_status::accepted) {
        ask_host_ack(self, id, p.by);
        break;
      }
  }
}

void on_status(esc_actor* self, const std::string& gateway, const std::string& page_id, page_status status,
               const std::string& by) {
  auto& s = self->state;
  const auto now = s.cfg.clock->now();
  auto id = alert_of_page(page_id);
  auto it = s.live.find(id);
  if (it == s.live.end()) {
    log(log_level::debug, "escalation", "status_for_unknown_page", {{"page", page_id}, {"gateway", gateway}});
    return;
  }
  const std::string who = by.empty() ? gateway : by;
  const auto& pages = it->second.st.pages;
  if (std::none_of(pages.begin(), pages.end(), [&](const page& p) { return p.id == page_id; })) {
    log(log_level::debug, "escalation", "status_for_unknown_page", {{"page", page_id}, {"gateway", gateway}});
    return;  // a page it no longer keeps: nothing changes, nothing is written
  }
  std::vector<escalation_action> acts;
  if (auto* m = s.cfg.metrics) count(m->statuses[static_cast<std::size_t>(status)]);
  if (const auto* pol = policy_of(s, it->second))
    on_page_status(*pol, it->second.st, page_id, status, who, now, acts);
  persist(s, it->second,
          {{now, "page_status", page_id, std::string{to_string(status)} + " by " + who + " via " + gateway}});
  // A responder's answer is an action on the alert: audited like an operator's.
  if (status == page_status::accepted || status == page_status::rejected)
    if (auto st = s.cfg.journal->append_audit(now, who, "page_" + std::string{to_string(status)}, page_id, "ok"); !st)
      log(log_level::error, "audit", "write_failed", {{"page", page_id}, {"error", st.to_string()}});
  log(log_level::info, "escalation", "page_status",
      {{"page", page_id}, {"status", std::string{to_string(status)}}, {"by", who}});
  run(self, id, std::move(acts));
}

void on_hello(esc_actor* self, const std::vector<std::string>& targets) {
  auto& s = self->state;
  const auto now = s.cfg.clock->now();
  // Targets served again: their technical alerts resolve.
  std::vector<std::string> back;
  for (const auto& [target, alert_id] : s.unreachable)
    for (const auto& t : targets)
      if (t == target || t == wire::any_target) back.push_back(alert_id);
  for (const auto& alert_id : back) act_on_own(self, alert_id, false, "pager");
  std::vector<std::string> ids;
  for (const auto& [id, e] : s.live) ids.push_back(id);
  for (const auto& id : ids) {
    auto it = s.live.find(id);
    if (it == s.live.end()) continue;
    std::vector<escalation_action> acts;
    if (const auto* pol = policy_of(s, it->second)) on_gateway_available(*pol, it->second.st, targets, now, acts);
    run(self, id, std::move(acts));
  }
}

// Shards moved here: the records of the alerts this node owns now, as their
// previous owner copied or handed them over, replace what this node kept of them; then what
// is due fires.
void adopt(esc_actor* self) {
  auto& s = self->state;
  std::size_t adopted = 0;
  auto st = s.cfg.journal->for_each_snapshot("x/", [&](const std::string& key, const std::string& bytes) {
    auto r = storage::decode_escalation(bytes);
    if (!r) {
      log(log_level::error, "escalation", "record_unreadable", {{"key", key}, {"error", r.error().to_string()}});
      return;
    }
    if (owned_here(r->alert) || !acting_on(s, r->alert)) return;
    // What RocksDB holds is the newest: this node writes every step it takes, and a handed
    // over record replaces an older one of its own.
    const auto id = r->state.alert_id;  // copied first: the right side is moved before the map is indexed
    s.live[id] = entry{std::move(r->state), std::move(r->alert)};
    ++adopted;
  });
  if (!st) log(log_level::error, "escalation", "adopt_failed", {{"error", st.to_string()}});
  log(log_level::info, "escalation", "adopted", {{"escalations", std::to_string(adopted)}});
  recover(self);
  tick(self);
}

behavior paused(esc_actor* self);
behavior running(esc_actor* self);

behavior running(esc_actor* self) {
  return {
      [=](quorum_atom, bool ok) {
        if (ok) return;
        // The minority side of a partition pages nothing: everything but the questions below
        // waits in the mailbox until the majority is back.
        log(log_level::error, "escalation", "paused", {{"msg", "no cluster majority: paging stops until it is back"}});
        self->state.paused = true;
        self->set_default_handler(skip);
        self->become(paused(self));
      },
      [=](const std::vector<alert_event>& events) {
        for (const auto& ev : events) safely("alert_event", [&] { handle_event(self, ev); });
      },
      [=](page_status_atom, const std::string& gateway, const std::string& page_id, page_status status,
          const std::string& by) {
        safely("page_status", [&] { on_status(self, gateway, page_id, status, by); });
      },
      [=](hello_atom, const std::vector<std::string>& targets) {
        safely("hello", [&] { on_hello(self, targets); });
      },
      [=](tick_atom) { safely("tick", [&] { tick(self); }); },
      [=](adopt_atom) { safely("adopt", [&] { adopt(self); }); },
      [=](tick_atom, bool) {
        safely("tick", [&] { tick(self); });
        self->delayed_send(self, self->state.cfg.tick_interval, tick_atom::value, true);
      },
      [=](rules_atom, std::shared_ptr<const escalation_config>& policies) {
        self->state.cfg.policies = std::move(policies);
      },
      [=](ack_atom, const std::string& id, const std::string& by) {
        std::vector<alert_event> out;
        safely("ack", [&] { out = act_on_own(self, id, true, by); });
        return out;
      },
      [=](resolve_atom, const std::string& id, const std::string& by) {
        std::vector<alert_event> out;
        safely("resolve", [&] { out = act_on_own(self, id, false, by); });
        return out;
      },
      [=](escalations_atom) {
        std::vector<escalation_state> out;
        for (const auto& [id, e] : self->state.live) out.push_back(e.st);
        return out;
      },
      [=](shutdown_atom) { self->quit(); },
  };
}

behavior paused(esc_actor* self) {
  return {
      [=](quorum_atom, bool ok) {
        if (!ok) return;
        log(log_level::info, "escalation", "resumed_with_quorum", {{"escalations", std::to_string(self->state.live.size())}});
        self->state.paused = false;
        self->set_default_handler(print_and_drop);
        self->become(running(self));
        safely("tick", [&] { tick(self); });  // what fell due while paused fires now
      },
      [=](rules_atom, std::shared_ptr<const escalation_config>& policies) {
        self->state.cfg.policies = std::move(policies);
      },
      [=](escalations_atom) {
        std::vector<escalation_state> out;
        for (const auto& [id, e] : self->state.live) out.push_back(e.st);
        return out;
      },
      [=](shutdown_atom) { self->quit(); },
  };
}

behavior escalator(esc_actor* self, escalator_config cfg) {
  auto& s = self->state;
  s.cfg = std::move(cfg);
  auto st = s.cfg.journal->for_each_snapshot("x/", [&](const std::string& key, const std::string& bytes) {
    auto r = storage::decode_escalation(bytes);
    if (!r) {
      log(log_level::error, "escalation", "record_unreadable", {{"key", key}, {"error", r.error().to_string()}});
      return;
    }
    auto id = r->state.alert_id;
    if (auto target = target_of_unreachable(id); !target.empty() && r->alert.state != alert_state::resolved)
      s.unreachable[target] = id;
    s.live[id] = entry{std::move(r->state), std::move(r->alert)};
  });
  if (!st) log(log_level::error, "escalation", "load_failed", {{"error", st.to_string()}});
  if (!s.cfg.policies || s.cfg.policies->policies.empty())
    log(log_level::warn, "escalation", "no_policies",
        {{"msg", "the rules file has no escalation policies: alerts are journaled and logged, not paged"}});
  // Until the node hands over the host and the pager endpoint, every other message waits.
  self->set_default_handler(skip);
  return {
      [=](start_atom, actor host, pager_handle pager) {
        auto& es = self->state;
        es.host = std::move(host);
        es.pager = pager.server;
        es.started_at = es.cfg.clock->now();
        log(log_level::info, "escalation", "resumed", {{"escalations", std::to_string(es.live.size())}});
        self->set_default_handler(print_and_drop);
        self->become(running(self));
        safely("recover", [&] { recover(self); });
        safely("tick", [&] { tick(self); });  // what fell due while the node was down fires now
        self->delayed_send(self, es.cfg.tick_interval, tick_atom::value, true);
      },
      [=](shutdown_atom) { self->quit(); },  // the node failed to start
  };
}

}  // namespace

caf::actor spawn_escalator(caf::actor_system& sys, escalator_config cfg) {
  return sys.spawn(escalator, std::move(cfg));
}

}  // namespace alert::actors
