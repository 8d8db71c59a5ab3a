#include "engine/escalation.hpp"

#include <algorithm>
#include <array>

namespace alert {
namespace {

constexpr std::array<std::string_view, 7> status_names{"sent",     "received", "delivered", "read",
                                                       "accepted", "rejected", "cancelled"};

bool settled(page_status s) {
  return s == page_status::accepted || s == page_status::rejected || s == page_status::cancelled;
}

bool in_step(const page& p, const escalation_state& st) { return p.level == st.level && p.repeat == st.repeat; }

// Nobody of the current step can take the alert: each page was rejected or could not be sent.
bool step_exhausted(const escalation_state& st) {
  return std::all_of(st.pages.begin(), st.pages.end(), [&](const page& q) {
    return !in_step(q, st) || q.status == page_status::rejected || (q.status == page_status::sent && q.unreachable);
  });
}

bool last_step(const escalation_policy& policy, const escalation_state& st) {
  return st.level + 1 >= policy.levels.size() && st.repeat - st.base >= policy.repeat;
}

// Pages every target of the current step. Pages of earlier steps that are still open stay:
// a late accept still counts, and closing the alert cancels them. Settled pages of earlier
// steps are forgotten, and past max_kept_pages the oldest pages go, so a record stays small.
void page_step(const escalation_policy& policy, escalation_state& st, epoch_ms now,
               std::vector<escalation_action>& out) {
  if (st.level >= policy.levels.size()) st.level = static_cast<unsigned>(policy.levels.size() - 1);
  std::vector<page> kept;
  for (auto& p : st.pages)
    if (!settled(p.status)) kept.push_back(std::move(p));
  const std::size_t room = max_kept_pages - std::min(max_kept_pages, policy.levels[st.level].targets.size());
  if (kept.size() > room) kept.erase(kept.begin(), kept.end() - static_cast<std::ptrdiff_t>(room));
  st.pages.swap(kept);
  const auto& lvl = policy.levels[st.level];
  for (const auto& target : lvl.targets) {
    page p;
    p.id = page_id(st.alert_id, st.level, st.repeat, target);
    p.target = target;
    p.level = st.level;
    p.repeat = st.repeat;
    p.sends = 1;
    p.first_sent = now;
    p.next_redeliver = now + policy.redeliver_ms;
    st.pages.push_back(p);
    out.push_back({escalation_action::type::send, p, {}});
  }
  st.level_deadline = now + lvl.timeout_ms;
}

// Moves to the next step: the next level, the next repeat, or the last level once more.
void advance(const escalation_policy& policy, escalation_state& st, epoch_ms now,
             std::vector<escalation_action>& out) {
  const auto last = static_cast<unsigned>(policy.levels.size() - 1);
  if (st.level < last) {
    ++st.level;
  } else if (st.repeat - st.base < policy.repeat) {
    ++st.repeat;
    st.level = 0;
  } else {
    ++st.repeat;  // beyond the policy's repeats: keep paging the last level
  }
  page_step(policy, st, now, out);
}

void cancel_outstanding(escalation_state& st, const std::string& reason, std::vector<escalation_action>& out) {
  for (auto& p : st.pages) {
    if (settled(p.status)) continue;
    p.status = page_status::cancelled;
    p.next_redeliver = 0;
    out.push_back({escalation_action::type::cancel, p, reason});
  }
}

}  // namespace

std::string_view to_string(page_status s) noexcept { return status_names[static_cast<std::size_t>(s)]; }

std::optional<page_status> page_status_from_string(std::string_view s) noexcept {
  for (std::size_t i = 0; i < status_names.size(); ++i)
    if (status_names[i] == s) return static_cast<page_status>(i);
  return std::nullopt;
}

const escalation_policy* escalation_config::route(const alert_record& a) const noexcept {
  for (const auto& r : routes) {
    if (r.priority && *r.priority != a.priority) continue;
    if (r.kind && *r.kind != a.kind) continue;
    if (r.rule && *r.rule != a.rule) continue;
    if (r.patient_prefix && a.patient.compare(0, r.patient_prefix->size(), *r.patient_prefix) != 0) continue;
    return find(r.policy);
  }
  return nullptr;
}

const escalation_policy* escalation_config::find(std::string_view id) const noexcept {
  for (const auto& p : policies)
    if (p.id == id) return &p;
  return nullptr;
}

std::string page_id(const std::string& alert_id, unsigned level, unsigned repeat, const std::string& target) {
  return alert_id + "@" + std::to_string(level) + "." + std::to_string(repeat) + "/" + target;
}

std::string_view page_target(std::string_view id) noexcept {
  const auto at = id.rfind('@');
  const auto slash = id.rfind('/');
  if (at == std::string_view::npos || slash == std::string_view::npos || slash < at) return {};
  return id.substr(slash + 1);
}

escalation_state start_escalation(const escalation_policy& policy, const alert_record& a, epoch_ms now,
                                  std::vector<escalation_action>& out) {
  escalation_state st;
  st.alert_id = a.id;
  st.policy = policy.id;
  if (policy.levels.empty()) {
    st.at = escalation_state::phase::done;
    return st;
  }
  page_step(policy, st, now, out);
  return st;
}

void on_page_status(const escalation_policy& policy, escalation_state& st, const std::string& id,
                    page_status status, const std::string& by, epoch_ms now, std::vector<escalation_action>& out) {
  auto it = std::find_if(st.pages.begin(), st.pages.end(), [&](const page& p) { return p.id == id; });
  if (it == st.pages.end() || settled(it->status)) return;
  page& p = *it;
  switch (status) {
    case page_status::received:
    case page_status::delivered:
    case page_status::read:
      if (status > p.status) p.status = status;
      p.next_redeliver = 0;  // the gateway has it
      return;
    case page_status::accepted:
      p.status = page_status::accepted;
      p.by = by;
      p.next_redeliver = 0;
      if (st.at != escalation_state::phase::paging) return;
      out.push_back({escalation_action::type::acknowledge, p, {}});
      on_alert_acknowledged(policy, st, now, out);
      return;
    case page_status::rejected: {
      p.status = page_status::rejected;
      p.by = by;
      p.next_redeliver = 0;
      if (st.at != escalation_state::phase::paging || !in_step(p, st) || last_step(policy, st)) return;
      if (step_exhausted(st)) advance(policy, st, now, out);
      return;
    }
    case page_status::sent:
    case page_status::cancelled:
      return;  // not a gateway's to say
  }
}

void on_escalation_timer(const escalation_policy& policy, escalation_state& st, epoch_ms now,
                         std::vector<escalation_action>& out) {
  if (st.at == escalation_state::phase::acknowledged) {
    if (st.ack_deadline == 0 || now < st.ack_deadline) return;
    // Acknowledged but still open too long: page again from the first level.
    restart_escalation(policy, st, now, out);
    return;
  }
  if (st.at != escalation_state::phase::paging) return;
  // A step that times out is not redelivered: the next step's pages go out instead.
  if (now >= st.level_deadline) {
    advance(policy, st, now, out);
    return;
  }
  for (auto& p : st.pages) {
    if (!in_step(p, st) || p.status != page_status::sent || p.next_redeliver == 0 || now < p.next_redeliver) continue;
    ++p.sends;
    epoch_ms wait = policy.redeliver_ms;
    for (unsigned i = 1; i < p.sends && wait < policy.redeliver_max_ms; ++i) wait *= 2;
    p.next_redeliver = now + std::min(wait, policy.redeliver_max_ms);
    out.push_back({escalation_action::type::send, p, {}});
  }
}

void on_page_unreachable(const escalation_policy& policy, escalation_state& st, const std::string& id,
                         epoch_ms now, std::vector<escalation_action>& out) {
  auto it = std::find_if(st.pages.begin(), st.pages.end(), [&](const page& p) { return p.id == id; });
  if (it == st.pages.end() || it->status != page_status::sent) return;
  it->unreachable = true;
  if (st.at != escalation_state::phase::paging || !in_step(*it, st) || last_step(policy, st)) return;
  if (step_exhausted(st)) advance(policy, st, now, out);
}

void on_gateway_available(const escalation_policy& policy, escalation_state& st,
                          const std::vector<std::string>& targets, epoch_ms now,
                          std::vector<escalation_action>& out) {
  if (st.at != escalation_state::phase::paging) return;
  auto served = [&](const std::string& t) {
    return std::any_of(targets.begin(), targets.end(), [&](const std::string& x) { return x == t || x == "*"; });
  };
  for (auto& p : st.pages) {
    if (!in_step(p, st) || p.status != page_status::sent || !served(p.target)) continue;
    ++p.sends;
    p.unreachable = false;
    p.next_redeliver = now + policy.redeliver_ms;
    out.push_back({escalation_action::type::send, p, {}});
  }
}

void restart_escalation(const escalation_policy& policy, escalation_state& st, epoch_ms now,
                        std::vector<escalation_action>& out) {
  st.policy = policy.id;
  if (policy.levels.empty()) {
    st.at = escalation_state::phase::done;
    return;
  }
  st.at = escalation_state::phase::paging;
  st.ack_deadline = 0;
  st.level = 0;
  ++st.repeat;
  st.base = st.repeat;
  page_step(policy, st, now, out);
}

void on_alert_acknowledged(const escalation_policy& policy, escalation_state& st, epoch_ms now,
                           std::vector<escalation_action>& out) {
  if (st.at != escalation_state::phase::paging) return;
  st.at = escalation_state::phase::acknowledged;
  cancel_outstanding(st, "acknowledged", out);
  st.ack_deadline = policy.ack_timeout_ms > 0 ? now + policy.ack_timeout_ms : 0;
}

void on_alert_closed(escalation_state& st, const std::string& reason, std::vector<escalation_action>& out) {
  if (st.at == escalation_state::phase::done) return;
  st.at = escalation_state::phase::done;
  cancel_outstanding(st, reason, out);
}

std::optional<epoch_ms> next_due(const escalation_state& st) noexcept {
  switch (st.at) {
    case escalation_state::phase::done: return std::nullopt;
    case escalation_state::phase::acknowledged:
      return st.ack_deadline > 0 ? std::optional<epoch_ms>{st.ack_deadline} : std::nullopt;
    case escalation_state::phase::paging: break;
  }
  epoch_ms due = st.level_deadline;
  for (const auto& p : st.pages)
    if (in_step(p, st) && p.status == page_status::sent && p.next_redeliver > 0) due = std::min(due, p.next_redeliver);
  return due;
}

}  // namespace alert
