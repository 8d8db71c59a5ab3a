#include "storage/alert_codec.hpp"

#include "storage/entity_store.hpp"

namespace alert::storage {

void put_alert(std::string& out, const alert_record& a) {
  for (const auto* s : {&a.id, &a.entity, &a.rule, &a.patient, &a.device, &a.summary, &a.acked_by})
    bytes::put_str(out, *s);
  out += static_cast<char>(a.priority);
  out += static_cast<char>(a.kind);
  out += static_cast<char>(a.state);
  out += static_cast<char>((a.latching ? 1 : 0) | (a.condition ? 2 : 0) | (a.inhibited ? 4 : 0) | (a.silenced ? 8 : 0));
  for (auto t : {a.opened_at, a.fired_at, a.acked_at, a.resolved_at}) bytes::put_u64_le(out, static_cast<std::uint64_t>(t));
  bytes::put_u64_le(out, a.count);
  for (auto v : {a.first_value, a.last_value, a.worst_value}) bytes::put_f64(out, v);
  bytes::put_u64_le(out, a.version);
  bytes::put_u64_le(out, a.details.size());
  for (const auto& [k, v] : a.details) {
    bytes::put_str(out, k);
    bytes::put_f64(out, v);
  }
}

bool get_alert(bytes::reader& in, alert_record& a) {
  for (auto* s : {&a.id, &a.entity, &a.rule, &a.patient, &a.device, &a.summary, &a.acked_by}) *s = in.str();
  auto prio = in.u8(), kind = in.u8(), state = in.u8(), flags = in.u8();
  if (prio > 2 || kind > 2 || state > 3) return false;
  a.priority = static_cast<alert_priority>(prio);
  a.kind = static_cast<alert_kind>(kind);
  a.state = static_cast<alert_state>(state);
  a.latching = flags & 1;
  a.condition = flags & 2;
  a.inhibited = flags & 4;
  a.silenced = flags & 8;
  for (auto* t : {&a.opened_at, &a.fired_at, &a.acked_at, &a.resolved_at}) *t = static_cast<epoch_ms>(in.u64());
  a.count = in.u64();
  for (auto* v : {&a.first_value, &a.last_value, &a.worst_value}) *v = in.f64();
  a.version = static_cast<std::uint32_t>(in.u64());
  auto n = in.u64();
  for (std::uint64_t i = 0; i < n && !in.failed(); ++i) {
    auto k = in.str();
    a.details[k] = in.f64();
  }
  return !in.failed();
}

void put_rule_states(std::string& out, const rule_states& rs) {
  bytes::put_u64_le(out, rs.size());
  for (const auto& [id, st] : rs) {
    bytes::put_str(out, id);
    out += static_cast<char>(st.open ? 1 : 0);
    if (st.open) put_alert(out, *st.open);
    bytes::put_u64_le(out, st.occurrences);
    for (const auto* t : {&st.since, &st.clear_since}) {
      out += static_cast<char>(*t ? 1 : 0);
      bytes::put_u64_le(out, static_cast<std::uint64_t>(t->value_or(0)));
    }
    bytes::put_u64_le(out, st.window.size());
    for (const auto& [ts, v] : st.window) {
      bytes::put_u64_le(out, static_cast<std::uint64_t>(ts));
      bytes::put_f64(out, v);
    }
    bytes::put_u64_le(out, static_cast<std::uint64_t>(st.latest_ts));
  }
}

bool get_rule_states(bytes::reader& in, rule_states& rs) {
  auto n = in.u64();
  for (std::uint64_t i = 0; i < n && !in.failed(); ++i) {
    auto id = in.str();
    rule_state st;
    if (in.u8()) {
      alert_record a;
      if (!get_alert(in, a)) return false;
      st.open = std::move(a);
    }
    st.occurrences = in.u64();
    for (auto* t : {&st.since, &st.clear_since}) {
      bool has = in.u8() != 0;
      auto v = static_cast<epoch_ms>(in.u64());
      if (has) *t = v;
    }
    auto w = in.u64();
    for (std::uint64_t k = 0; k < w && !in.failed(); ++k) {
      auto ts = static_cast<epoch_ms>(in.u64());
      st.window.emplace_back(ts, in.f64());
    }
    st.latest_ts = static_cast<epoch_ms>(in.u64());
    rs.emplace(std::move(id), std::move(st));
  }
  return !in.failed();
}

std::string encode_alert_event(const alert_event& e) {
  std::string out;
  out += static_cast<char>(1);  // format
  out += static_cast<char>(e.type);
  bytes::put_u64_le(out, static_cast<std::uint64_t>(e.at));
  put_alert(out, e.after);
  bytes::put_u64_le(out, e.cause.size());
  for (const auto& c : e.cause) {
    bytes::put_str(out, c.device);
    bytes::put_u64_le(out, c.seq);
  }
  return out;
}

result<alert_event> decode_alert_event(std::string_view data) {
  bytes::reader in{data};
  auto bad = [] { return status{errc::corruption, "alert event does not parse"}; };
  if (in.u8() != 1) return bad();
  auto type = in.u8();
  if (type > static_cast<std::uint8_t>(alert_event_type::unsilenced)) return bad();
  alert_event e{static_cast<alert_event_type>(type), {}, static_cast<epoch_ms>(in.u64()), {}};
  if (!get_alert(in, e.after)) return bad();
  auto n = in.u64();
  for (std::uint64_t i = 0; i < n && !in.failed(); ++i) {
    reading_ref r;
    r.device = in.str();
    r.seq = in.u64();
    e.cause.push_back(std::move(r));
  }
  if (in.failed() || !in.at_end()) return bad();
  return e;
}

}  // namespace alert::storage

namespace alert::storage {

std::string encode_silences(const std::vector<silence>& all, std::uint64_t next_id) {
  std::string out;
  out += static_cast<char>(1);
  bytes::put_u64_le(out, next_id);
  bytes::put_u64_le(out, all.size());
  for (const auto& s : all) {
    bytes::put_str(out, s.id);
    for (const auto* f : {&s.patient, &s.device, &s.rule}) {
      out += static_cast<char>(*f ? 1 : 0);
      bytes::put_str(out, f->value_or(""));
    }
    out += static_cast<char>(s.priority ? 1 + static_cast<int>(*s.priority) : 0);
    bytes::put_u64_le(out, static_cast<std::uint64_t>(s.until));
    bytes::put_str(out, s.reason);
    bytes::put_str(out, s.by);
  }
  return out;
}

result<std::pair<std::vector<silence>, std::uint64_t>> decode_silences(std::string_view data) {
  bytes::reader in{data};
  if (in.u8() != 1) return status{errc::corruption, "silences do not parse"};
  std::uint64_t next_id = in.u64();
  std::vector<silence> all;
  auto n = in.u64();
  for (std::uint64_t i = 0; i < n && !in.failed(); ++i) {
    silence s;
    s.id = in.str();
    for (auto* f : {&s.patient, &s.device, &s.rule}) {
      bool has = in.u8() != 0;
      auto v = in.str();
      if (has) *f = std::move(v);
    }
    auto p = in.u8();
    if (p > 3) return status{errc::corruption, "silence priority does not parse"};
    if (p) s.priority = static_cast<alert_priority>(p - 1);
    s.until = static_cast<epoch_ms>(in.u64());
    s.reason = in.str();
    s.by = in.str();
    all.push_back(std::move(s));
  }
  if (in.failed() || !in.at_end()) return status{errc::corruption, "silences do not parse"};
  return std::make_pair(std::move(all), next_id);
}

}  // namespace alert::storage

namespace alert::storage {

std::string escalation_key(const std::string& alert_id) { return "x/" + alert_id; }

std::string encode_escalation(const escalation_record& r) {
  const auto& st = r.state;
  std::string out;
  out += static_cast<char>(1);  // format
  bytes::put_str(out, st.alert_id);
  bytes::put_str(out, st.policy);
  out += static_cast<char>(st.at);
  bytes::put_u64_le(out, st.level);
  bytes::put_u64_le(out, st.repeat);
  bytes::put_u64_le(out, st.base);
  bytes::put_u64_le(out, static_cast<std::uint64_t>(st.level_deadline));
  bytes::put_u64_le(out, static_cast<std::uint64_t>(st.ack_deadline));
  bytes::put_u64_le(out, st.pages.size());
  for (const auto& p : st.pages) {
    bytes::put_str(out, p.id);
    bytes::put_str(out, p.target);
    bytes::put_u64_le(out, p.level);
    bytes::put_u64_le(out, p.repeat);
    out += static_cast<char>(p.status);
    bytes::put_u64_le(out, p.sends);
    bytes::put_u64_le(out, static_cast<std::uint64_t>(p.first_sent));
    bytes::put_u64_le(out, static_cast<std::uint64_t>(p.next_redeliver));
    bytes::put_str(out, p.by);
    out += static_cast<char>(p.unreachable ? 1 : 0);
  }
  put_alert(out, r.alert);
  return out;
}

result<escalation_record> decode_escalation(std::string_view data) {
  bytes::reader in{data};
  auto bad = [] { return status{errc::corruption, "escalation record does not parse"}; };
  if (in.u8() != 1) return bad();
  escalation_record r;
  auto& st = r.state;
  st.alert_id = in.str();
  st.policy = in.str();
  auto phase = in.u8();
  if (phase > 2) return bad();
  st.at = static_cast<escalation_state::phase>(phase);
  st.level = static_cast<unsigned>(in.u64());
  st.repeat = static_cast<unsigned>(in.u64());
  st.base = static_cast<unsigned>(in.u64());
  st.level_deadline = static_cast<epoch_ms>(in.u64());
  st.ack_deadline = static_cast<epoch_ms>(in.u64());
  auto n = in.u64();
  for (std::uint64_t i = 0; i < n && !in.failed(); ++i) {
    page p;
    p.id = in.str();
    p.target = in.str();
    p.level = static_cast<unsigned>(in.u64());
    p.repeat = static_cast<unsigned>(in.u64());
    auto s = in.u8();
    if (s > static_cast<std::uint8_t>(page_status::cancelled)) return bad();
    p.status = static_cast<page_status>(s);
    p.sends = static_cast<unsigned>(in.u64());
    p.first_sent = static_cast<epoch_ms>(in.u64());
    p.next_redeliver = static_cast<epoch_ms>(in.u64());
    p.by = in.str();
    p.unreachable = in.u8() != 0;
    st.pages.push_back(std::move(p));
  }
  if (!get_alert(in, r.alert) || in.failed() || !in.at_end()) return bad();
  return r;
}

}  // namespace alert::storage
