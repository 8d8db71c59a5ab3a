#include "engine/rules.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>

namespace alert {
namespace {

template <class E, std::size_t N>
std::optional<E> from_names(const std::array<std::string_view, N>& names, std::string_view s) {
  for (std::size_t i = 0; i < N; ++i)
    if (names[i] == s) return static_cast<E>(i);
  return std::nullopt;
}

constexpr std::array<std::string_view, 3> priority_names{"low", "medium", "high"};
constexpr std::array<std::string_view, 3> kind_names{"physiological", "technical", "advisory"};
constexpr std::array<std::string_view, 4> state_names{"pending", "firing", "acknowledged", "resolved"};
constexpr std::array<std::string_view, 5> rule_kind_names{"threshold", "rate", "no_data", "news2", "qsofa"};
constexpr std::array<std::string_view, 2> direction_names{"above", "below"};
constexpr std::array<std::string_view, 11> event_names{"pending",  "cancelled",    "fired",     "updated",
                                                       "cleared",  "acknowledged", "resolved",  "inhibited",
                                                       "uninhibited", "silenced",  "unsilenced"};

std::string fmt_value(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", std::round(v * 10) / 10);
  return buf;
}

std::string fmt_duration(epoch_ms ms) {
  if (ms % 3'600'000 == 0 && ms >= 3'600'000) return std::to_string(ms / 3'600'000) + " h";
  if (ms % 60'000 == 0 && ms >= 60'000) return std::to_string(ms / 60'000) + " min";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + " s";
  return std::to_string(ms) + " ms";
}

// True when `a` is clinically worse than `b` for a rule watching direction `d`.
bool worse(direction d, double a, double b) { return d == direction::below ? a < b : a > b; }

// What a step of the lifecycle needs to know besides the rule and its state.
struct observation {
  bool holding;          // the condition holds (hysteresis already applied)
  bool fire_now;         // skip the delay (second tier)
  double value;          // the value shown and tracked (worst/last)
  direction worse_dir;   // which way is worse for `value`
  bool report_worse = true;  // a worse value is an `updated` event (not for a growing silence)
  epoch_ms at;
  std::vector<reading_ref> cause;
  std::string summary;
  std::string patient, device;
  std::map<std::string, double> details;
  std::optional<alert_priority> priority;  // overrides the rule's (scores: by band)
};

alert_event make_event(alert_event_type t, alert_record& a, const observation& o) {
  ++a.version;
  return alert_event{t, a, o.at, o.cause};
}

alert_event make_event(alert_event_type t, alert_record& a, epoch_ms at) {
  ++a.version;
  return alert_event{t, a, at, {}};
}

// The lifecycle shared by every rule kind: pending -> firing -> acknowledged -> resolved.
std::vector<alert_event> step(const rule& rl, rule_state& st, const std::string& entity, const observation& o) {
  std::vector<alert_event> out;
  if (!st.open) {
    if (!o.holding) return out;
    alert_record a;
    a.id = entity + "/" + rl.id + "/" + std::to_string(++st.occurrences);
    a.entity = entity;
    a.rule = rl.id;
    a.patient = o.patient;
    a.device = o.device;
    a.priority = o.priority.value_or(rl.priority);
    a.kind = rl.kind_of_alert;
    a.latching = rl.latching;
    a.opened_at = o.at;
    a.count = 1;
    a.first_value = a.last_value = a.worst_value = o.value;
    a.summary = o.summary;
    a.details = o.details;
    st.since = o.at;
    if (o.fire_now || rl.for_ms == 0) {
      a.state = alert_state::firing;
      a.fired_at = o.at;
      out.push_back(make_event(alert_event_type::fired, a, o));
    } else {
      a.state = alert_state::pending;
      out.push_back(make_event(alert_event_type::pending, a, o));
    }
    st.open = std::move(a);
    return out;
  }
  alert_record& a = *st.open;
  if (a.state == alert_state::pending) {
    if (!o.holding) {
      a.condition = false;
      a.state = alert_state::resolved;
      a.resolved_at = o.at;
      out.push_back(make_event(alert_event_type::cancelled, a, o));
      st.open.reset();
      st.since.reset();
      return out;
    }
    ++a.count;
    a.last_value = o.value;
    if (worse(o.worse_dir, o.value, a.worst_value)) a.worst_value = o.value;
    if (o.priority && *o.priority > a.priority) a.priority = *o.priority;  // a score rising while pending
    if (o.fire_now || o.at - a.opened_at >= rl.for_ms) {
      a.state = alert_state::firing;
      a.fired_at = o.at;
      a.summary = o.summary;
      a.details = o.details;
      out.push_back(make_event(alert_event_type::fired, a, o));
    }
    return out;
  }
  // firing or acknowledged
  if (o.holding) {
    bool changed = !a.condition;
    a.condition = true;
    st.clear_since.reset();
    if (o.priority && *o.priority > a.priority) {
      a.priority = *o.priority;
      a.summary = o.summary;
      a.details = o.details;
      changed = true;
    }
    ++a.count;
    a.last_value = o.value;
    if (worse(o.worse_dir, o.value, a.worst_value)) {
      a.worst_value = o.value;
      a.summary = o.summary;
      a.details = o.details;
      changed = changed || o.report_worse;
    }
    if (changed) out.push_back(make_event(alert_event_type::updated, a, o));
    return out;
  }
  if (!a.condition) return out;  // latched, already cleared, waiting for an acknowledgement
  if (rl.clear_for_ms > 0) {
    if (!st.clear_since) st.clear_since = o.at;
    if (o.at - *st.clear_since < rl.clear_for_ms) return out;  // not clear for long enough yet
  }
  st.clear_since.reset();
  a.condition = false;
  a.last_value = o.value;
  if (a.latching && a.state == alert_state::firing) {
    out.push_back(make_event(alert_event_type::cleared, a, o));
    return out;
  }
  a.state = alert_state::resolved;
  a.resolved_at = o.at;
  out.push_back(make_event(alert_event_type::resolved, a, o));
  st.open.reset();
  st.since.reset();
  return out;
}

std::string unit_of(metric m) { return std::string{info(m).unit}; }

}  // namespace

std::string_view to_string(alert_priority p) noexcept { return priority_names[static_cast<std::size_t>(p)]; }
std::string_view to_string(alert_kind k) noexcept { return kind_names[static_cast<std::size_t>(k)]; }
std::string_view to_string(alert_state s) noexcept { return state_names[static_cast<std::size_t>(s)]; }
std::string_view to_string(rule_kind k) noexcept { return rule_kind_names[static_cast<std::size_t>(k)]; }
std::string_view to_string(direction d) noexcept { return direction_names[static_cast<std::size_t>(d)]; }
std::string_view to_string(alert_event_type t) noexcept { return event_names[static_cast<std::size_t>(t)]; }
std::optional<alert_priority> priority_from_string(std::string_view s) noexcept {
  return from_names<alert_priority>(priority_names, s);
}
std::optional<alert_kind> alert_kind_from_string(std::string_view s) noexcept {
  return from_names<alert_kind>(kind_names, s);
}
std::optional<rule_kind> rule_kind_from_string(std::string_view s) noexcept {
  return from_names<rule_kind>(rule_kind_names, s);
}
std::optional<direction> direction_from_string(std::string_view s) noexcept {
  return from_names<direction>(direction_names, s);
}
std::optional<news2_band> news2_band_from_string(std::string_view s) noexcept {
  for (auto b : {news2_band::incomplete, news2_band::none, news2_band::low, news2_band::low_medium, news2_band::medium,
                 news2_band::high})
    if (to_string(b) == s) return b;
  return std::nullopt;
}

const rule* rule_set::find(std::string_view id) const noexcept {
  for (const auto& r : rules)
    if (r.id == id) return &r;
  return nullptr;
}

rule rule_set::effective(const rule& r, const std::optional<patient_id>& patient) const {
  if (!patient) return r;
  rule out = r;
  for (const auto& o : overrides) {
    if (o.patient != patient->str()) continue;
    if (auto it = o.thresholds.find(r.id); it != o.thresholds.end()) out.threshold = it->second;
    if (auto it = o.clears.find(r.id); it != o.clears.end()) out.clear = it->second;
  }
  return out;
}

bool rule_set::spo2_scale2(const patient_id& patient, bool fallback) const {
  for (const auto& o : overrides)
    if (o.patient == patient.str() && o.spo2_scale2) return *o.spo2_scale2;
  return fallback;
}

std::vector<alert_event> evaluate_reading(const rule& rl, rule_state& st, const std::string& entity,
                                          const reading& r, const std::optional<patient_id>& patient) {
  if (r.what != rl.what || (rl.kind != rule_kind::threshold && rl.kind != rule_kind::rate)) return {};
  if (r.ts < st.latest_ts) return {};  // late: event-time decisions already taken stand
  st.latest_ts = r.ts;
  observation o;
  o.at = r.ts;
  o.cause = {reading_ref{r.device.str(), r.seq}};
  o.patient = patient ? patient->str() : std::string{};
  o.device = r.device.str();
  const auto& mi = info(rl.what);
  if (rl.kind == rule_kind::threshold) {
    const double v = r.value;
    const bool below = rl.dir == direction::below;
    const bool meets = below ? v < rl.threshold : v > rl.threshold;
    const double clear_at = rl.clear.value_or(rl.threshold);
    const bool clears = below ? v >= clear_at : v <= clear_at;
    // Hysteresis holds a condition that has fired; during the delay the limit itself applies.
    const bool condition_on = st.open && st.open->state != alert_state::pending && st.open->condition;
    o.holding = condition_on ? !clears : meets;
    // The common case on the hot path: nothing open, nothing wrong. No strings built.
    if (!o.holding && !st.open) return {};
    o.fire_now = rl.immediate && (below ? v < *rl.immediate : v > *rl.immediate);
    o.value = v;
    o.worse_dir = rl.dir;
    o.summary = std::string{mi.name} + " " + fmt_value(v) + " " + unit_of(rl.what) + (below ? " below " : " above ") +
                (o.fire_now ? fmt_value(*rl.immediate) : fmt_value(rl.threshold)) + " " + unit_of(rl.what);
    if (o.fire_now) o.summary += " (no delay)";
    else if (rl.for_ms > 0) o.summary += " for " + fmt_duration(rl.for_ms);
    o.details = {{"value", v}, {"threshold", rl.threshold}};
    return step(rl, st, entity, o);
  }
  // rate: the change from the extreme of the window to this value
  st.window.emplace_back(r.ts, r.value);
  while (!st.window.empty() && st.window.front().first < r.ts - rl.window_ms) st.window.erase(st.window.begin());
  double from = r.value;
  for (const auto& [ts, v] : st.window)
    from = rl.dir == direction::below ? std::max(from, v) : std::min(from, v);
  const double change = rl.dir == direction::below ? from - r.value : r.value - from;
  o.holding = change > rl.change;
  if (!o.holding && !st.open) return {};
  o.fire_now = false;
  o.value = change;
  o.worse_dir = direction::above;  // a bigger change is worse
  o.summary = std::string{mi.name} + (rl.dir == direction::below ? " fell " : " rose ") + fmt_value(change) + " " +
              unit_of(rl.what) + " within " + fmt_duration(rl.window_ms) + " (" + fmt_value(from) + " -> " +
              fmt_value(r.value) + ")";
  o.details = {{"change", change}, {"from", from}, {"to", r.value}};
  return step(rl, st, entity, o);
}

bool watches(const rule& rl, device_kind k) noexcept {
  return rl.device_kinds.empty() || std::find(rl.device_kinds.begin(), rl.device_kinds.end(), k) != rl.device_kinds.end();
}

std::vector<alert_event> evaluate_silence(const rule& rl, rule_state& st, const std::string& entity,
                                          const std::string& device, const std::optional<patient_id>& patient,
                                          epoch_ms last_seen, epoch_ms now) {
  if (rl.kind != rule_kind::no_data) return {};
  observation o;
  o.at = now;
  const epoch_ms silent_for = now - last_seen;
  o.holding = silent_for > rl.ttl_ms;
  o.fire_now = true;  // the ttl is the delay
  o.value = static_cast<double>(silent_for) / 1000.0;
  o.worse_dir = direction::above;
  o.report_worse = false;
  o.patient = patient ? patient->str() : std::string{};
  o.device = device;
  o.summary = device + " silent for " + fmt_duration(silent_for / 1000 * 1000) + " (limit " + fmt_duration(rl.ttl_ms) + ")";
  o.details = {{"silent_s", o.value}, {"ttl_s", static_cast<double>(rl.ttl_ms) / 1000.0}};
  return step(rl, st, entity, o);
}

std::vector<alert_event> evaluate_patient(const rule& rl, rule_state& st, const patient_id& patient,
                                          const patient_state& ps, bool spo2_scale2, const news2_policy& staleness,
                                          epoch_ms now, const reading_ref& cause) {
  if (rl.kind != rule_kind::news2 && rl.kind != rule_kind::qsofa) return {};
  // A score is a function of the patient's state, which already holds the reading. One from
  // a device whose clock runs behind another's is older than the newest evaluated, but it
  // changes the score all the same: evaluate at the newest event time (delays never run
  // backwards) rather than ignore it until another device happens to report.
  if (now < st.latest_ts) now = st.latest_ts;
  st.latest_ts = now;
  auto vital_of = [&](metric m) -> std::optional<vital> {
    const auto& v = ps.vitals[static_cast<std::size_t>(m)];
    if (!v) return std::nullopt;
    return vital{v->value, v->ts};
  };
  observation o;
  o.at = now;
  o.cause = {cause};
  o.patient = patient.str();
  o.fire_now = false;
  o.worse_dir = direction::above;
  if (rl.kind == rule_kind::news2) {
    news2_inputs in;
    in.resp_rate = vital_of(metric::resp_rate);
    in.spo2 = vital_of(metric::spo2);
    in.o2_supplement = vital_of(metric::o2_supplement);
    in.systolic_bp = vital_of(metric::systolic_bp);
    in.heart_rate = vital_of(metric::heart_rate);
    in.consciousness = vital_of(metric::consciousness);
    in.temperature = vital_of(metric::temperature);
    in.spo2_scale2 = spo2_scale2;
    auto res = compute_news2(in, now, staleness);
    o.holding = res.band != news2_band::incomplete && res.band >= rl.min_band;
    o.priority = res.band >= news2_band::high     ? alert_priority::high
                 : res.band >= news2_band::medium ? alert_priority::medium
                                                  : alert_priority::low;
    o.value = res.total;
    o.summary = "NEWS2 " + std::to_string(res.total) + (res.complete ? "" : "+") + " (" +
                std::string{to_string(res.band)} + ")";
    o.details["score"] = res.total;
    auto sub = [&](const char* name, const std::optional<int>& v) {
      if (v) o.details[std::string{"sub_"} + name] = *v;
    };
    sub("resp_rate", res.sub.resp_rate);
    sub("spo2", res.sub.spo2);
    sub("o2_supplement", res.sub.o2_supplement);
    sub("systolic_bp", res.sub.systolic_bp);
    sub("heart_rate", res.sub.heart_rate);
    sub("consciousness", res.sub.consciousness);
    sub("temperature", res.sub.temperature);
    if (!res.missing.empty()) {
      o.summary += ", missing";
      for (auto m : res.missing) o.summary += " " + std::string{info(m).name};
    }
    return step(rl, st, "p/" + patient.str(), o);
  }
  qsofa_inputs in;
  in.resp_rate = vital_of(metric::resp_rate);
  in.systolic_bp = vital_of(metric::systolic_bp);
  in.consciousness = vital_of(metric::consciousness);
  qsofa_policy qp;
  qp.resp_rate_ms = staleness.resp_rate_ms;
  qp.systolic_bp_ms = staleness.systolic_bp_ms;
  qp.consciousness_ms = staleness.consciousness_ms;
  auto res = compute_qsofa(in, now, qp);
  o.holding = res.high_risk;
  o.value = res.score;
  o.summary = "qSOFA " + std::to_string(res.score) + (res.complete ? "" : "+") + ": sepsis risk";
  o.details["score"] = res.score;
  return step(rl, st, "p/" + patient.str(), o);
}

std::vector<alert_event> acknowledge(rule_state& st, const std::string& by, epoch_ms now) {
  std::vector<alert_event> out;
  if (!st.open || st.open->state != alert_state::firing) return out;
  alert_record& a = *st.open;
  a.state = alert_state::acknowledged;
  a.acked_at = now;
  a.acked_by = by;
  out.push_back(make_event(alert_event_type::acknowledged, a, now));
  if (a.latching && !a.condition) {
    a.state = alert_state::resolved;
    a.resolved_at = now;
    out.push_back(make_event(alert_event_type::resolved, a, now));
    st.open.reset();
    st.since.reset();
  }
  return out;
}

std::vector<alert_event> resolve(rule_state& st, const std::string& by, epoch_ms now) {
  std::vector<alert_event> out;
  if (!st.open) return out;
  alert_record& a = *st.open;
  a.state = alert_state::resolved;
  a.resolved_at = now;
  if (a.acked_by.empty()) a.acked_by = by;
  out.push_back(make_event(alert_event_type::resolved, a, now));
  st.open.reset();
  st.since.reset();
  return out;
}

std::vector<alert_event> set_inhibited(rule_state& st, bool inhibited, epoch_ms now) {
  std::vector<alert_event> out;
  if (!st.open || st.open->kind != alert_kind::physiological || st.open->inhibited == inhibited) return out;
  st.open->inhibited = inhibited;
  out.push_back(make_event(inhibited ? alert_event_type::inhibited : alert_event_type::uninhibited, *st.open, now));
  return out;
}

bool silences(const silence& s, const alert_record& a, epoch_ms now) noexcept {
  if (now >= s.until) return false;
  if (!s.patient && !s.device && !s.rule && !s.priority) return false;
  if (s.patient && *s.patient != a.patient) return false;
  if (s.device && *s.device != a.device) return false;
  if (s.rule && *s.rule != a.rule) return false;
  if (s.priority && *s.priority != a.priority) return false;
  return true;
}

bool is_silenced(const std::vector<silence>& all, const alert_record& a, epoch_ms now) noexcept {
  return std::any_of(all.begin(), all.end(), [&](const silence& s) { return silences(s, a, now); });
}

}  // namespace alert

namespace alert {

void apply_silences(rule_states& states, const std::vector<silence>& all, epoch_ms now,
                    std::vector<alert_event>& events) {
  for (auto& [id, st] : states) {
    if (!st.open) continue;
    alert_record& a = *st.open;
    const bool want = is_silenced(all, a, now);
    // The newest transition of this alert in this pass, if any.
    alert_event* latest = nullptr;
    for (auto& e : events)
      if (e.after.id == a.id) latest = &e;
    if (latest) {
      a.silenced = want;
      latest->after.silenced = want;
      continue;
    }
    if (a.silenced == want) continue;
    a.silenced = want;
    ++a.version;
    events.push_back(alert_event{want ? alert_event_type::silenced : alert_event_type::unsilenced, a, now, {}});
  }
}

}  // namespace alert
