#include "actors/control.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>

#include "actors/node.hpp"
#include "config/rules_file.hpp"
#include "engine/access.hpp"
#include "engine/log.hpp"
#include "engine/metric.hpp"

namespace alert::actors {
namespace {

using wire::value;
using wire::value_array;
using wire::value_object;

// A failure the command reports: becomes a reply with this code and message.
struct refusal {
  errc code;
  std::string message;
};

[[noreturn]] void refuse(errc code, std::string message) { throw refusal{code, std::move(message)}; }

template <class T>
T take(result<T> r) {
  if (!r) refuse(r.code(), r.error().message());
  return std::move(*r);
}

void take(const status& s) {
  if (!s) refuse(s.code(), s.message());
}

const value& args_of(const wire::control_request& req) { return req.args; }

std::string required_string(const value& args, std::string_view key) {
  auto s = args.str(key);
  if (!s || s->empty()) refuse(errc::invalid_argument, "argument '" + std::string{key} + "' (a string) is required");
  return *s;
}

std::optional<std::string> optional_string(const value& args, std::string_view key) {
  const auto* v = args.get(key);
  if (!v || v->is_null()) return std::nullopt;
  if (!v->is_string()) refuse(errc::invalid_argument, "argument '" + std::string{key} + "' must be a string");
  return std::get<std::string>(v->v);
}

std::optional<std::int64_t> optional_int(const value& args, std::string_view key) {
  const auto* v = args.get(key);
  if (!v || v->is_null()) return std::nullopt;
  if (!v->is_int()) refuse(errc::invalid_argument, "argument '" + std::string{key} + "' must be an integer");
  return std::get<std::int64_t>(v->v);
}

std::size_t limit_of(const value& args, std::size_t fallback) {
  auto l = optional_int(args, "limit");
  if (!l) return fallback;
  if (*l < 1 || *l > 100'000) refuse(errc::invalid_argument, "argument 'limit' must be between 1 and 100000");
  return static_cast<std::size_t>(*l);
}

std::string by_of(const value& args) {
  auto by = optional_string(args, "by");
  return by && !by->empty() ? *by : std::string{"operator"};
}

// ---- values of the engine's types -----------------------------------------------------------

value details_value(const std::map<std::string, double>& details) {
  value out = value_object{};
  for (const auto& [k, v] : details) out.set(k, v);
  return out;
}

value alert_value(const alert_record& a) {
  value out = value_object{};
  out.set("id", a.id);
  out.set("state", std::string{to_string(a.state)});
  out.set("priority", std::string{to_string(a.priority)});
  out.set("kind", std::string{to_string(a.kind)});
  out.set("rule", a.rule);
  out.set("patient", a.patient);
  out.set("device", a.device);
  out.set("summary", a.summary);
  out.set("latching", a.latching);
  out.set("condition", a.condition);
  out.set("inhibited", a.inhibited);
  out.set("silenced", a.silenced);
  out.set("opened_at", a.opened_at);
  out.set("fired_at", a.fired_at);
  out.set("acked_at", a.acked_at);
  out.set("acked_by", a.acked_by);
  out.set("resolved_at", a.resolved_at);
  out.set("count", a.count);
  out.set("worst_value", a.worst_value);
  out.set("last_value", a.last_value);
  out.set("details", details_value(a.details));
  out.set("version", a.version);
  return out;
}

value event_value(const alert_event& e) {
  value out = value_object{};
  out.set("type", std::string{to_string(e.type)});
  out.set("at", e.at);
  out.set("version", e.after.version);
  out.set("state", std::string{to_string(e.after.state)});
  out.set("priority", std::string{to_string(e.after.priority)});
  out.set("summary", e.after.summary);
  if (e.type == alert_event_type::acknowledged && !e.after.acked_by.empty()) out.set("by", e.after.acked_by);
  value cause = value_array{};
  for (const auto& c : e.cause) cause.push(c.device + "#" + std::to_string(c.seq));
  out.set("cause", std::move(cause));
  return out;
}

value node_event_value(const storage::journal::node_event& e) {
  value out = value_object{};
  out.set("at", e.at);
  out.set("kind", e.kind);
  out.set("entity", e.entity);
  out.set("detail", e.detail);
  return out;
}

value escalation_value(const escalation_state& st) {
  value out = value_object{};
  out.set("policy", st.policy);
  const char* phase = st.at == escalation_state::phase::paging         ? "paging"
                      : st.at == escalation_state::phase::acknowledged ? "acknowledged"
                                                                       : "stopped";
  out.set("phase", phase);
  out.set("level", st.level);
  out.set("repeat", st.repeat);
  if (auto due = next_due(st)) out.set("next_due", *due);
  value pages = value_array{};
  for (const auto& p : st.pages) {
    value pv = value_object{};
    pv.set("page_id", p.id);
    pv.set("target", p.target);
    pv.set("level", p.level);
    pv.set("repeat", p.repeat);
    pv.set("status", std::string{to_string(p.status)});
    pv.set("sends", p.sends);
    pv.set("first_sent", p.first_sent);
    pv.set("unreachable", p.unreachable);
    if (!p.by.empty()) pv.set("by", p.by);
    pages.push(std::move(pv));
  }
  out.set("pages", std::move(pages));
  return out;
}

value device_value(const std::string& id, const device_state& d) {
  value out = value_object{};
  out.set("device", id);
  out.set("patient", d.patient ? value{d.patient->str()} : value{});
  out.set("kind", std::string{to_string(d.kind())});
  out.set("last_seq", d.last_seq);
  out.set("last_seen", d.last_seen);
  value samples = value_array{};
  for (const auto& s : d.samples) {
    value sv = value_object{};
    sv.set("metric", std::string{info(s.what).name});
    sv.set("value", s.value);
    sv.set("unit", std::string{info(s.what).unit});
    sv.set("ts", s.ts);
    sv.set("seq", s.seq);
    samples.push(std::move(sv));
  }
  out.set("samples", std::move(samples));
  return out;
}

value patient_value(const std::string& id, const patient_state& p) {
  value out = value_object{};
  out.set("patient", id);
  value devices = value_array{};
  for (const auto& d : p.devices) devices.push(d);
  out.set("devices", std::move(devices));
  value vitals = value_array{};
  for (std::size_t i = 0; i < metric_count; ++i) {
    if (!p.vitals[i]) continue;
    const auto& v = *p.vitals[i];
    value vv = value_object{};
    vv.set("metric", std::string{metrics()[i].name});
    vv.set("value", v.value);
    vv.set("unit", std::string{metrics()[i].unit});
    vv.set("ts", v.ts);
    vv.set("device", v.device);
    vitals.push(std::move(vv));
  }
  out.set("vitals", std::move(vitals));
  out.set("spo2_scale2", p.settings.spo2_scale2);
  return out;
}

value silence_value(const silence& s) {
  value out = value_object{};
  out.set("id", s.id);
  out.set("patient", s.patient ? value{*s.patient} : value{});
  out.set("device", s.device ? value{*s.device} : value{});
  out.set("rule", s.rule ? value{*s.rule} : value{});
  out.set("priority", s.priority ? value{std::string{to_string(*s.priority)}} : value{});
  out.set("until", s.until);
  out.set("reason", s.reason);
  out.set("by", s.by);
  return out;
}

value problems_value(const std::vector<config::rules_problem>& problems) {
  value out = value_array{};
  for (const auto& p : problems) {
    value pv = value_object{};
    pv.set("line", p.line);
    pv.set("column", p.column);
    pv.set("message", p.message);
    out.push(std::move(pv));
  }
  return out;
}

// ---- commands -------------------------------------------------------------------------------

value cmd_status(node& n, const value&) {
  const auto& o = n.options();
  auto s = n.stats();
  value out = value_object{};
  out.set("node", o.node_id);
  out.set("version", "0.1.0");
  out.set("started_at", n.started_at());
  out.set("data_dir", o.data_dir);
  value endpoints = value_object{};
  endpoints.set("ingest", n.ingest_endpoint());
  endpoints.set("pager", n.pager_endpoint());
  endpoints.set("control", n.control_endpoint());
  out.set("endpoints", std::move(endpoints));
  value stats = value_object{};
  stats.set("requests", s.requests);
  stats.set("accepted", s.accepted);
  stats.set("duplicates", s.duplicates);
  stats.set("rejected", s.rejected);
  stats.set("request_errors", s.request_errors);
  stats.set("journal_commits", s.journal_commits);
  stats.set("journal_pending", s.journal_pending);
  stats.set("active_devices", s.active_devices);
  stats.set("active_patients", s.active_patients);
  stats.set("restarts", s.restarts);
  stats.set("quarantined", s.quarantined);
  out.set("stats", std::move(stats));
  value gateways = value_array{};
  for (const auto& g : n.gateways()) gateways.push(g);
  out.set("gateways", std::move(gateways));
  std::map<std::string, std::int64_t> by_state;
  for (const auto& e : take(n.open_alerts())) ++by_state[std::string{to_string(e.after.state)}];
  value alerts = value_object{};
  for (const auto& [state, count] : by_state) alerts.set(state, count);
  out.set("open_alerts", std::move(alerts));
  out.set("escalations", take(n.escalations()).size());
  value quarantined = value_array{};
  for (const auto& q : n.quarantined()) quarantined.push(q);
  out.set("quarantined", std::move(quarantined));
  const auto cv = n.cluster();
  value cluster = value_object{};
  cluster.set("mode", cv.clustered ? "cluster" : "single");
  cluster.set("quorum", cv.quorum);
  value members = value_array{};
  for (const auto& m : cv.members) {
    value mv = value_object{};
    mv.set("node", m.id);
    mv.set("state", std::string{to_string(m.state)});
    if (m.self) mv.set("self", true);
    if (!m.endpoint.empty()) mv.set("endpoint", m.endpoint);
    if (!m.self && std::isfinite(m.phi)) mv.set("phi", m.phi);
    if (m.last_heartbeat) mv.set("last_heartbeat", *m.last_heartbeat);
    members.push(std::move(mv));
  }
  cluster.set("members", std::move(members));
  if (cv.clustered) {
    cluster.set("shards", cv.shards);
    value owned = value_object{};
    for (const auto& [id, count] : cv.owned) owned.set(id, count);
    cluster.set("owned", std::move(owned));
    value acting = value_array{};
    for (auto shard : cv.acting) acting.push(static_cast<std::int64_t>(shard));
    cluster.set("acting", std::move(acting));
    cluster.set("catching_up", static_cast<std::int64_t>(cv.waiting));
  }
  out.set("cluster", std::move(cluster));
  return out;
}

value cmd_health(node& n, const value&) {
  value checks = value_array{};
  bool ok = true;
  auto check = [&](const std::string& name, bool good, const std::string& detail) {
    value c = value_object{};
    c.set("check", name);
    c.set("ok", good);
    c.set("detail", detail);
    checks.push(std::move(c));
    ok = ok && good;
  };
  auto journal = n.health();
  check("journal", journal.is_ok(), journal.is_ok() ? "readable" : journal.to_string());
  auto esc = n.escalations();
  check("escalation", esc.has_value(),
        esc ? std::to_string(esc->size()) + " escalation(s) kept" : "the escalator does not answer: " + esc.error().message());
  auto q = n.quarantined();
  check("entities", q.empty(), q.empty() ? "none quarantined" : std::to_string(q.size()) + " quarantined");
  auto g = n.gateways();
  check("pager", !g.empty(), g.empty() ? "no pager gateway connected: nobody can be paged"
                                       : std::to_string(g.size()) + " gateway(s) connected");
  value out = value_object{};
  out.set("ok", ok);
  out.set("checks", std::move(checks));
  return out;
}

value cmd_alerts(node& n, const value& args) {
  auto state = optional_string(args, "state");
  auto priority = optional_string(args, "priority");
  auto patient = optional_string(args, "patient");
  const auto limit = limit_of(args, 1000);
  if (state && *state != "pending" && *state != "firing" && *state != "acknowledged" && *state != "resolved" &&
      *state != "open" && *state != "all")
    refuse(errc::invalid_argument, "state must be open, pending, firing, acknowledged, resolved or all");
  if (priority && !priority_from_string(*priority))
    refuse(errc::invalid_argument, "priority must be high, medium or low");
  const bool history = state && (*state == "resolved" || *state == "all");
  auto events = take(history ? n.latest_alerts() : n.open_alerts());
  // By id, whatever order the journal keeps them in (hashed ids when encrypted at rest).
  std::sort(events.begin(), events.end(), [](const auto& a, const auto& b) { return a.after.id < b.after.id; });
  value list = value_array{};
  std::size_t matched = 0;
  for (const auto& e : events) {
    const auto& a = e.after;
    if (state && *state != "open" && *state != "all" && to_string(a.state) != *state) continue;
    if (priority && to_string(a.priority) != *priority) continue;
    if (patient && a.patient != *patient) continue;
    if (e.type == alert_event_type::cancelled) continue;  // never fired
    if (++matched > limit) continue;
    list.push(alert_value(a));
  }
  value out = value_object{};
  out.set("alerts", std::move(list));
  out.set("matched", matched);
  return out;
}

value cmd_alert(node& n, const value& args) {
  auto id = required_string(args, "id");
  auto history = take(n.alert_history(id));
  if (history.empty()) refuse(errc::not_found, "no alert " + id + " (list them with: alertctl alerts)");
  value out = value_object{};
  out.set("alert", alert_value(history.back().after));
  value events = value_array{};
  for (const auto& e : history) events.push(event_value(e));
  out.set("history", std::move(events));
  for (const auto& st : take(n.escalations()))
    if (st.alert_id == id) out.set("escalation", escalation_value(st));
  // Every page step and gateway report, from the node's event journal.
  // Every page step and gateway report, and who acted on it by hand, from the node's events.
  value pages = value_array{};
  value actions = value_array{};
  const std::string prefix = id + "@";
  for (const auto& e : take(n.events_about(id))) {
    if (e.kind.rfind("page_", 0) == 0 && e.entity.rfind(prefix, 0) == 0) pages.push(node_event_value(e));
    if (e.kind.rfind("alert_", 0) == 0 && e.entity == id) actions.push(node_event_value(e));
  }
  out.set("pages", std::move(pages));
  out.set("actions", std::move(actions));
  return out;
}

value transitions_value(const std::vector<alert_event>& events) {
  value out = value_object{};
  value list = value_array{};
  for (const auto& e : events) list.push(event_value(e));
  out.set("transitions", std::move(list));
  return out;
}

value cmd_ack(node& n, const value& args) {
  auto id = required_string(args, "id");
  auto events = take(n.acknowledge(id, by_of(args)));
  if (events.empty())
    refuse(errc::not_found, "no firing alert " + id + " to acknowledge (already acknowledged, resolved, or unknown" +
                                (n.cluster().clustered ? std::string{"; in a cluster, send it to the member that owns it"}
                                                       : std::string{}) +
                                ")");
  return transitions_value(events);
}

value cmd_resolve(node& n, const value& args) {
  auto id = required_string(args, "id");
  auto events = take(n.resolve(id, by_of(args)));
  if (events.empty())
    refuse(errc::not_found, "no open alert " + id + " to resolve" +
                                (n.cluster().clustered ? std::string{" (in a cluster, send it to the member that owns it)"}
                                                       : std::string{}));
  return transitions_value(events);
}

value cmd_silence(node& n, const value& args) {
  silence s;
  s.patient = optional_string(args, "patient");
  s.device = optional_string(args, "device");
  s.rule = optional_string(args, "rule");
  if (auto p = optional_string(args, "priority")) {
    s.priority = priority_from_string(*p);
    if (!s.priority) refuse(errc::invalid_argument, "priority must be high, medium or low");
  }
  auto duration = optional_int(args, "duration_s");
  if (!duration || *duration < 1 || *duration > 7 * 24 * 3600)
    refuse(errc::invalid_argument, "argument 'duration_s' (seconds, 1 to 604800) is required");
  s.reason = required_string(args, "reason");
  s.by = by_of(args);
  s.until = n.now() + *duration * 1000;
  auto until = s.until;
  value out = value_object{};
  out.set("id", take(n.add_silence(std::move(s))));
  out.set("until", until);
  return out;
}

value cmd_unsilence(node& n, const value& args) {
  auto id = required_string(args, "id");
  if (!take(n.remove_silence(id, by_of(args)))) refuse(errc::not_found, "no silence " + id + " (see: alertctl silences)");
  return value{value_object{{"removed", id}}};
}

value cmd_silences(node& n, const value&) {
  value list = value_array{};
  for (const auto& s : take(n.silences())) list.push(silence_value(s));
  return value{value_object{{"silences", std::move(list)}}};
}

value cmd_device(node& n, const value& args) {
  auto name = required_string(args, "id");
  auto id = device_id::make(name);
  if (!id) refuse(errc::invalid_argument, id.error().message());
  auto at = optional_int(args, "at");
  auto state = at ? take(n.device_at(*id, *at)) : take(n.device(*id));
  if (state.last_seq == 0) refuse(errc::not_found, "no readings from device " + name + (at ? " by then" : ""));
  auto out = device_value(name, state);
  if (at) out.set("at", *at);
  return out;
}

value cmd_patient(node& n, const value& args) {
  auto name = required_string(args, "id");
  auto id = patient_id::make(name);
  if (!id) refuse(errc::invalid_argument, id.error().message());
  auto at = optional_int(args, "at");
  auto state = at ? take(n.patient_at(*id, *at)) : take(n.patient(*id));
  if (state.devices.empty() && std::none_of(state.vitals.begin(), state.vitals.end(), [](const auto& v) { return v.has_value(); }))
    refuse(errc::not_found, "no readings for patient " + name + (at ? " by then" : ""));
  auto out = patient_value(name, state);
  if (at) out.set("at", *at);
  return out;
}

value cmd_rules_check(node& n, const value& args) {
  auto path = optional_string(args, "path");
  const std::string file = path ? *path : n.options().rules_file;
  auto loaded = file.empty() ? config::parse_rules(config::default_rules_yaml()) : config::load_rules_file(file);
  value out = value_object{};
  out.set("file", file.empty() ? std::string{"(built-in rules)"} : file);
  out.set("ok", loaded.rules.has_value());
  out.set("problems", problems_value(loaded.problems));
  if (loaded.rules) {
    out.set("rules", loaded.rules->rules.size());
    out.set("policies", loaded.escalation->policies.size());
    out.set("routes", loaded.escalation->routes.size());
  }
  return out;
}

value cmd_rules_reload(node& n, const value&) {
  take(n.reload_rules());
  value out = value_object{};
  out.set("reloaded", n.options().rules_file.empty() ? std::string{"(built-in rules)"} : n.options().rules_file);
  return out;
}

value cmd_release(node& n, const value& args) {
  auto entity = required_string(args, "id");
  if (!take(n.release(entity, by_of(args))))
    refuse(errc::not_found, entity + " is not quarantined (see: alertctl status)");
  return value{value_object{{"released", entity}}};
}

value cmd_audit(node& n, const value& args) {
  value list = value_array{};
  for (const auto& r : take(n.audit_log(limit_of(args, 100)))) {
    value rv = value_object{};
    rv.set("seq", r.seq);
    rv.set("at", r.at);
    rv.set("actor", r.actor);
    rv.set("action", r.action);
    rv.set("subject", r.subject);
    rv.set("outcome", r.outcome);
    list.push(std::move(rv));
  }
  return value{value_object{{"records", std::move(list)}}};
}

value cmd_audit_verify(node& n, const value&) {
  auto c = take(n.verify_audit());
  value out = value_object{};
  out.set("ok", c.ok);
  out.set("records", c.records);
  if (!c.ok) {
    out.set("first_broken", c.first_broken);
    out.set("reason", c.reason);
  } else {
    out.set("head", c.head);
  }
  return out;
}

value cmd_events(node& n, const value& args) {
  auto kind = optional_string(args, "kind");
  value list = value_array{};
  for (const auto& e : take(n.recent_events(limit_of(args, 100), kind.value_or(""))))
    list.push(node_event_value(e));
  value out = value_object{};
  out.set("events", std::move(list));
  return out;
}

value cmd_readings(node& n, const value& args) {
  auto name = required_string(args, "device");
  auto id = device_id::make(name);
  if (!id) refuse(errc::invalid_argument, id.error().message());
  auto from = optional_int(args, "from_seq").value_or(0);
  if (from < 0) refuse(errc::invalid_argument, "from_seq must not be negative");
  auto entries = take(n.readings(*id, static_cast<std::uint64_t>(from), limit_of(args, 100)));
  value list = value_array{};
  for (const auto& e : entries) {
    value r = value_object{};
    r.set("seq", e.r.seq);
    r.set("metric", std::string{info(e.r.what).name});
    r.set("value", e.r.value);
    r.set("unit", std::string{info(e.r.what).unit});
    r.set("ts", e.r.ts);
    r.set("received", e.received);
    r.set("patient", e.r.patient ? value{e.r.patient->str()} : value{});
    list.push(std::move(r));
  }
  value out = value_object{};
  out.set("device", name);
  out.set("readings", std::move(list));
  return out;
}

using command = value (*)(node&, const value&);
const std::map<std::string, command, std::less<>>& commands() {
  static const std::map<std::string, command, std::less<>> table{
      {"status", cmd_status},       {"health", cmd_health},         {"alerts", cmd_alerts},
      {"alert", cmd_alert},         {"ack", cmd_ack},               {"resolve", cmd_resolve},
      {"silence", cmd_silence},     {"unsilence", cmd_unsilence},   {"silences", cmd_silences},
      {"device", cmd_device},       {"patient", cmd_patient},       {"rules-check", cmd_rules_check},
      {"rules-reload", cmd_rules_reload}, {"events", cmd_events},   {"readings", cmd_readings},
      {"audit", cmd_audit},         {"audit-verify", cmd_audit_verify}, {"release", cmd_release},
  };
  return table;
}

// What a command is about, for its audit record.
std::string subject_of(const value& args) {
  for (const char* key : {"id", "device", "patient", "path", "rule", "priority"})
    if (auto v = args.str(key); v && !v->empty()) return *v;
  return {};
}

wire::control_reply run_command(node& n, const wire::control_request& request);

}  // namespace

wire::control_reply handle_control(node& n, const wire::control_request& request,
                                   const cluster::control_caller& caller) {
  if (!caller.authenticated) return run_command(n, request);
  // With CURVE the key says who is asking: its name is the `by` of whatever it does, and its
  // role decides what it may do.
  if (!may_run(caller.what, request.cmd)) {
    wire::control_reply reply;
    reply.id = request.id;
    reply.ok = false;
    reply.code = errc::unauthorized;
    reply.message = "a " + std::string{to_string(caller.what)} + " key may not run '" + request.cmd + "'";
    log(log_level::warn, "control", "command_denied",
        {{"who", caller.name}, {"role", std::string{to_string(caller.what)}}, {"cmd", request.cmd}});
    try {
      (void)n.audit(caller.name, request.cmd, subject_of(args_of(request)), "unauthorized");
    } catch (const std::exception&) {
    }
    return reply;
  }
  wire::control_request as_caller = request;
  if (!as_caller.args.is_object()) as_caller.args = value_object{};
  as_caller.args.set("by", caller.name);
  return run_command(n, as_caller);
}

namespace {

wire::control_reply run_command(node& n, const wire::control_request& request) {
  wire::control_reply reply;
  reply.id = request.id;
  auto it = commands().find(request.cmd);
  if (it == commands().end()) {
    reply.ok = false;
    reply.code = errc::invalid_argument;
    std::string known;
    for (const auto& [name, fn] : commands()) known += (known.empty() ? "" : ", ") + name;
    reply.message = "unknown command '" + request.cmd + "'; commands: " + known;
    return reply;
  }
  try {
    reply.result = it->second(n, args_of(request));
  } catch (const refusal& r) {
    reply.ok = false;
    reply.code = r.code;
    reply.message = r.message;
  } catch (const std::exception& e) {
    reply.ok = false;
    reply.code = errc::internal;
    reply.message = std::string{"command failed: "} + e.what();
  }
  // Every command is audited, reads of patient data included: who, what, about what, and
  // how it went. A command whose audit record cannot be written still answers, and the
  // failure is logged.
  const auto& args = args_of(request);
  try {
    (void)n.audit(by_of(args), request.cmd, subject_of(args), reply.ok ? "ok" : std::string{to_string(reply.code)});
  } catch (const std::exception&) {
  }
  return reply;
}

}  // namespace

}  // namespace alert::actors
