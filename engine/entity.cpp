#include "engine/entity.hpp"

#include <algorithm>
#include <tuple>

namespace alert {
namespace {

device_kind kind_of(metric m) {
  switch (m) {
    case metric::spo2: return device_kind::oximeter;
    case metric::systolic_bp:
    case metric::diastolic_bp: return device_kind::bp_cuff;
    case metric::o2_flow:
    case metric::o2_cylinder:
    case metric::o2_supplement: return device_kind::oxygen;
    case metric::resp_rate:
    case metric::temperature:
    case metric::consciousness:
    case metric::lead_impedance: return device_kind::monitor;
    default: return device_kind::unknown;
  }
}

}  // namespace

std::string_view to_string(device_kind k) noexcept {
  switch (k) {
    case device_kind::oximeter: return "oximeter";
    case device_kind::bp_cuff: return "bp_cuff";
    case device_kind::monitor: return "monitor";
    case device_kind::oxygen: return "oxygen";
    case device_kind::unknown: break;
  }
  return "unknown";
}

const metric_sample* device_state::last(metric m) const noexcept {
  auto it = std::lower_bound(samples.begin(), samples.end(), m,
                             [](const metric_sample& a, metric b) { return a.what < b; });
  return it != samples.end() && it->what == m ? &*it : nullptr;
}

std::optional<device_kind> device_kind_from_string(std::string_view s) noexcept {
  for (auto k : {device_kind::unknown, device_kind::oximeter, device_kind::bp_cuff, device_kind::monitor,
                 device_kind::oxygen})
    if (to_string(k) == s) return k;
  return std::nullopt;
}

std::optional<double> device_state::battery() const {
  const auto* b = last(metric::battery);
  if (!b) return std::nullopt;
  return b->value;
}

bool operator==(const device_state& a, const device_state& b) {
  return a.patient == b.patient && a.binding_seq == b.binding_seq && a.samples == b.samples && a.last_seq == b.last_seq &&
         a.last_seen == b.last_seen && a.kinds_seen == b.kinds_seen;
}

device_kind device_state::kind() const noexcept {
  auto has = [&](device_kind k) { return (kinds_seen >> static_cast<unsigned>(k)) & 1u; };
  unsigned vitals = has(device_kind::oximeter) + has(device_kind::bp_cuff) + has(device_kind::monitor);
  if (vitals >= 2) return device_kind::monitor;
  for (auto k : {device_kind::oximeter, device_kind::bp_cuff, device_kind::monitor, device_kind::oxygen})
    if (has(k)) return k;
  return device_kind::unknown;
}

device_change apply(device_state& s, const reading& r, epoch_ms received) {
  device_change c;
  auto it = std::lower_bound(s.samples.begin(), s.samples.end(), r.what,
                             [](const metric_sample& a, metric b) { return a.what < b; });
  if (it == s.samples.end() || it->what != r.what) s.samples.insert(it, metric_sample{r.what, r.value, r.ts, r.seq});
  else if (r.seq > it->seq) *it = metric_sample{r.what, r.value, r.ts, r.seq};
  if (r.patient && (r.seq > s.binding_seq || !s.patient)) {
    if (s.patient != r.patient) {
      c.unbound_from = s.patient;
      c.bound = true;
      s.patient = r.patient;
    }
    s.binding_seq = std::max(s.binding_seq, r.seq);
  }
  s.last_seq = std::max(s.last_seq, r.seq);
  s.last_seen = std::max(s.last_seen, received);
  if (auto k = kind_of(r.what); k != device_kind::unknown) s.kinds_seen |= static_cast<std::uint8_t>(1u << static_cast<unsigned>(k));
  c.attributed_to = r.patient ? r.patient : s.patient;
  return c;
}

bool operator==(const patient_state& a, const patient_state& b) {
  return a.devices == b.devices && a.vitals == b.vitals && a.settings == b.settings;
}

void bind_device(patient_state& s, const device_id& d) {
  auto it = std::lower_bound(s.devices.begin(), s.devices.end(), d.str());
  if (it == s.devices.end() || *it != d.str()) s.devices.insert(it, d.str());
}

void unbind_device(patient_state& s, const device_id& d) {
  auto it = std::lower_bound(s.devices.begin(), s.devices.end(), d.str());
  if (it != s.devices.end() && *it == d.str()) s.devices.erase(it);
}

bool apply(patient_state& s, const reading& r) {
  auto& slot = s.vitals[static_cast<std::size_t>(r.what)];
  if (slot && std::tie(r.ts, r.seq, r.device.str()) <= std::tie(slot->ts, slot->seq, slot->device)) return false;
  slot = patient_vital{r.value, r.ts, r.seq, r.device.str()};
  return true;
}

}  // namespace alert

namespace alert {

void fold_patient_reading(patient_state& s, const patient_id& self, device_cursor& cursor, const reading& r) {
  if (r.patient && r.seq >= cursor.binding_seq) {
    cursor.binding = r.patient;
    cursor.binding_seq = r.seq;
  }
  const auto& attributed = r.patient ? r.patient : cursor.binding;
  if (attributed == self) apply(s, r);
  cursor.seq = std::max(cursor.seq, r.seq);
  if (cursor.binding == self) bind_device(s, r.device);
  else unbind_device(s, r.device);
}

}  // namespace alert
