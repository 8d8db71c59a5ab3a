#include "storage/entity_store.hpp"

#include <algorithm>

#include "storage/alert_codec.hpp"
#include "storage/bytes.hpp"

namespace alert::storage {
namespace {

constexpr std::uint8_t device_format = 1;
constexpr std::uint8_t patient_format = 1;

void put_opt_patient(std::string& out, const std::optional<patient_id>& p) { bytes::put_str(out, p ? p->str() : ""); }

bool get_opt_patient(bytes::reader& in, std::optional<patient_id>& p) {
  auto s = in.str();
  if (in.failed()) return false;
  if (s.empty()) {
    p.reset();
    return true;
  }
  auto id = patient_id::make(s);
  if (!id) return false;
  p = std::move(*id);
  return true;
}

status corrupt(const char* what) { return {errc::corruption, std::string{"snapshot: "} + what}; }

// Folds a device's readings (seq order) into a patient's fold, with an optional cut-off time.
void fold_device(patient_snapshot& snap, const patient_id& self, const std::string& device,
                 const std::vector<journal_entry>& entries, std::optional<epoch_ms> at,
                 const patient_replay& on_replay) {
  for (const auto& e : entries) {
    if (at && e.received > *at) continue;
    fold_patient_reading(snap.state, self, snap.cursors[device], e.r);
    if (on_replay) on_replay(snap, e);
  }
}

}  // namespace

std::string device_key(const device_id& d) { return "d/" + d.str(); }
std::string patient_key(const patient_id& p) { return "p/" + p.str(); }

std::string encode_device(const device_snapshot& snap) {
  const auto& s = snap.state;
  std::string out;
  out += static_cast<char>(device_format);
  put_opt_patient(out, s.patient);
  bytes::put_u64_le(out, s.binding_seq);
  bytes::put_u64_le(out, s.last_seq);
  bytes::put_u64_le(out, static_cast<std::uint64_t>(s.last_seen));
  out += static_cast<char>(s.kinds_seen);
  out += static_cast<char>(s.samples.size());
  for (const auto& m : s.samples) {
    out += static_cast<char>(m.what);
    bytes::put_f64(out, m.value);
    bytes::put_u64_le(out, static_cast<std::uint64_t>(m.ts));
    bytes::put_u64_le(out, m.seq);
  }
  put_rule_states(out, snap.rules);
  return out;
}

result<device_snapshot> decode_device(std::string_view data) {
  bytes::reader in{data};
  if (in.u8() != device_format) return corrupt("unknown device format");
  device_snapshot snap;
  device_state& s = snap.state;
  if (!get_opt_patient(in, s.patient)) return corrupt("bad patient");
  s.binding_seq = in.u64();
  s.last_seq = in.u64();
  s.last_seen = static_cast<epoch_ms>(in.u64());
  s.kinds_seen = in.u8();
  auto n = in.u8();
  for (unsigned i = 0; i < n && !in.failed(); ++i) {
    auto m = in.u8();
    if (m >= metric_count) return corrupt("bad metric");
    metric_sample ms;
    ms.what = static_cast<metric>(m);
    ms.value = in.f64();
    ms.ts = static_cast<epoch_ms>(in.u64());
    ms.seq = in.u64();
    if (!s.samples.empty() && s.samples.back().what >= ms.what) return corrupt("samples out of order");
    s.samples.push_back(ms);
  }
  if (!get_rule_states(in, snap.rules)) return corrupt("bad rule states");
  if (in.failed() || !in.at_end()) return corrupt("truncated device snapshot");
  return snap;
}

std::string encode_patient(const patient_snapshot& snap) {
  std::string out;
  out += static_cast<char>(patient_format);
  out += static_cast<char>(snap.state.settings.spo2_scale2 ? 1 : 0);
  bytes::put_u64_le(out, snap.state.devices.size());
  for (const auto& d : snap.state.devices) bytes::put_str(out, d);
  std::uint8_t present = 0;
  for (const auto& v : snap.state.vitals) present = static_cast<std::uint8_t>(present + (v ? 1 : 0));
  out += static_cast<char>(present);
  for (std::size_t i = 0; i < snap.state.vitals.size(); ++i)
    if (const auto& v = snap.state.vitals[i]) {
      out += static_cast<char>(i);
      bytes::put_f64(out, v->value);
      bytes::put_u64_le(out, static_cast<std::uint64_t>(v->ts));
      bytes::put_u64_le(out, v->seq);
      bytes::put_str(out, v->device);
    }
  bytes::put_u64_le(out, snap.cursors.size());
  for (const auto& [device, c] : snap.cursors) {
    bytes::put_str(out, device);
    bytes::put_u64_le(out, c.seq);
    put_opt_patient(out, c.binding);
    bytes::put_u64_le(out, c.binding_seq);
  }
  put_rule_states(out, snap.rules);
  return out;
}

result<patient_snapshot> decode_patient(std::string_view data) {
  bytes::reader in{data};
  if (in.u8() != patient_format) return corrupt("unknown patient format");
  patient_snapshot snap;
  snap.state.settings.spo2_scale2 = in.u8() != 0;
  auto ndev = in.u64();
  for (std::uint64_t i = 0; i < ndev && !in.failed(); ++i) snap.state.devices.push_back(in.str());
  auto nv = in.u8();
  for (unsigned i = 0; i < nv && !in.failed(); ++i) {
    auto m = in.u8();
    if (m >= metric_count) return corrupt("bad metric");
    patient_vital v;
    v.value = in.f64();
    v.ts = static_cast<epoch_ms>(in.u64());
    v.seq = in.u64();
    v.device = in.str();
    snap.state.vitals[m] = std::move(v);
  }
  auto nc = in.u64();
  for (std::uint64_t i = 0; i < nc && !in.failed(); ++i) {
    auto device = in.str();
    device_cursor c;
    c.seq = in.u64();
    if (!get_opt_patient(in, c.binding)) return corrupt("bad cursor binding");
    c.binding_seq = in.u64();
    snap.cursors.emplace(std::move(device), std::move(c));
  }
  if (!get_rule_states(in, snap.rules)) return corrupt("bad rule states");
  if (in.failed() || !in.at_end()) return corrupt("truncated patient snapshot");
  return snap;
}

result<device_snapshot> load_device(const journal& j, const device_id& d, const device_replay& on_replay) {
  device_snapshot out;
  auto snap = j.get_snapshot(device_key(d));
  if (!snap) return snap.error();
  auto replay = [&](const std::vector<journal_entry>& entries) {
    for (const auto& e : entries) {
      apply(out.state, e.r, e.received);
      if (on_replay) on_replay(out, e);
    }
  };
  if (*snap) {
    auto decoded = decode_device(**snap);
    if (!decoded) return decoded.error();
    out = std::move(*decoded);
    // Late readings below the snapshot's seq arrived after it may have been taken.
    auto late = j.late_readings(d, out.state.last_seq);
    if (!late) return late.error();
    replay(*late);
  }
  auto rest = j.read_device(d, out.state.last_seq + (*snap ? 1 : 0));
  if (!rest) return rest.error();
  replay(*rest);
  return out;
}

result<device_state> device_at(const journal& j, const device_id& d, epoch_ms at) {
  // Replays from the start: a snapshot may hold readings received after `at`.
  auto all = j.read_device(d);
  if (!all) return all.error();
  device_state s;
  for (const auto& e : *all)
    if (e.received <= at) apply(s, e.r, e.received);
  return s;
}

result<patient_snapshot> load_patient(const journal& j, const patient_id& p, const patient_replay& on_replay) {
  patient_snapshot snap;
  auto stored = j.get_snapshot(patient_key(p));
  if (!stored) return stored.error();
  if (*stored) {
    auto decoded = decode_patient(**stored);
    if (!decoded) return decoded.error();
    snap = std::move(*decoded);
  }
  auto devices = j.patient_devices(p);
  if (!devices) return devices.error();
  for (const auto& name : *devices) {
    auto d = device_id::make(name);
    if (!d) return status{errc::corruption, "patient index holds a bad device id"};
    auto it = snap.cursors.find(name);
    std::uint64_t from = 0;
    if (it != snap.cursors.end()) {
      // Late readings are re-folded: folding is idempotent.
      auto late = j.late_readings(*d, it->second.seq);
      if (!late) return late.error();
      fold_device(snap, p, name, *late, std::nullopt, on_replay);
      from = it->second.seq + 1;
    }
    auto rest = j.read_device(*d, from);
    if (!rest) return rest.error();
    fold_device(snap, p, name, *rest, std::nullopt, on_replay);
  }
  return snap;
}

result<patient_state> patient_at(const journal& j, const patient_id& p, epoch_ms at) {
  patient_snapshot snap;
  auto devices = j.patient_devices(p);
  if (!devices) return devices.error();
  for (const auto& name : *devices) {
    auto d = device_id::make(name);
    if (!d) return status{errc::corruption, "patient index holds a bad device id"};
    auto all = j.read_device(*d);
    if (!all) return all.error();
    fold_device(snap, p, name, *all, at, {});
  }
  // A device none of whose readings before `at` named the patient is not bound then.
  return snap.state;
}

}  // namespace alert::storage
