#include "engine/simulation.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <queue>

namespace alert::sim {
namespace {

std::string numbered(const char* prefix, std::size_t n) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%s-%04zu", prefix, n);
  return buf;
}

double clamp(double v, double lo, double hi) { return std::min(hi, std::max(lo, v)); }

}  // namespace

ward::ward(const ward_options& opts, epoch_ms start) : opts_(opts), rng_(opts.seed), last_(start) {
  std::uniform_real_distribution<double> u{0, 1};
  for (std::size_t i = 0; i < opts_.patients; ++i) {
    patient p;
    p.id = numbered("P", i + 1);
    p.hr = 60 + 30 * u(rng_);
    p.rr = 12 + 6 * u(rng_);
    p.spo2 = 95 + 4 * u(rng_);
    p.sbp = 110 + 30 * u(rng_);
    p.dbp = 65 + 20 * u(rng_);
    p.temp = 36.4 + 0.8 * u(rng_);
    p.on_oxygen = u(rng_) < opts_.oxygen_fraction;
    if (i < opts_.deteriorating_at_start) {
      p.deteriorating_since = start;
      events_.push_back({start, p.id + " starts deteriorating"});
    }
    bool low_battery = u(rng_) < opts_.low_battery_fraction;
    patients_.push_back(p);
    auto add = [&](const char* prefix, device_kind k, epoch_ms period) {
      device d;
      d.id = numbered(prefix, i + 1);
      d.patient = i;
      d.kind = k;
      d.period = std::max<epoch_ms>(10, static_cast<epoch_ms>(static_cast<double>(period) / opts_.speed));
      // Spread first reports over one period so the ward does not speak in chorus.
      d.next = start + static_cast<epoch_ms>(u(rng_) * static_cast<double>(d.period));
      d.battery = low_battery ? 12 + 5 * u(rng_) : 60 + 40 * u(rng_);
      if (k == device_kind::oxygen) d.battery = 30 + 60 * u(rng_);  // cylinder fill
      devices_.push_back(d);
    };
    add("oxi", device_kind::oximeter, 1000);
    add("mon", device_kind::monitor, 5000);
    add("bp", device_kind::bp_cuff, 30000);
    if (p.on_oxygen) add("o2", device_kind::oxygen, 10000);
  }
}

void ward::set_seq_base(std::uint64_t base) {
  for (auto& d : devices_) d.seq = base;
}

double ward::severity(const patient& p, epoch_ms t) const {
  if (p.deteriorating_since < 0 || t < p.deteriorating_since) return 0;
  return clamp(static_cast<double>(t - p.deteriorating_since) / static_cast<double>(opts_.deterioration_ms), 0, 1);
}

void ward::push(std::vector<reading_input>& out, device& d, const char* metric, double value, epoch_ms t, bool bind) {
  reading_input r;
  r.device = d.id;
  r.metric = metric;
  r.value = std::round(value * 10) / 10;
  r.ts = t;
  r.seq = ++d.seq;
  if (bind) r.patient = patients_[d.patient].id;
  out.push_back(std::move(r));
}

void ward::emit(device& d, epoch_ms t, std::vector<reading_input>& out) {
  auto& p = patients_[d.patient];
  const double s = severity(p, t);
  std::normal_distribution<double> noise{0, 1};
  // Every report carries the binding, as a gateway that knows its bed would send it.
  switch (d.kind) {
    case device_kind::oximeter:
      push(out, d, "spo2", clamp(p.spo2 - 14 * s + 0.7 * noise(rng_), 50, 100), t, true);
      push(out, d, "heart_rate", clamp(p.hr + 45 * s + 2 * noise(rng_), 30, 220), t, true);
      push(out, d, "signal_quality", clamp(92 + 4 * noise(rng_), 0, 100), t, true);
      break;
    case device_kind::monitor:
      push(out, d, "resp_rate", clamp(p.rr + 12 * s + noise(rng_), 4, 60), t, true);
      push(out, d, "temperature", clamp(p.temp + 2.2 * s + 0.05 * noise(rng_), 30, 43), t, true);
      push(out, d, "consciousness", s > 0.8 ? 1 : 0, t, true);
      // Air or oxygen is charted with the observations; the oxygen device reports it when present.
      if (!p.on_oxygen) push(out, d, "o2_supplement", 0, t, true);
      break;
    case device_kind::bp_cuff:
      push(out, d, "systolic_bp", clamp(p.sbp - 45 * s + 3 * noise(rng_), 50, 250), t, true);
      push(out, d, "diastolic_bp", clamp(p.dbp - 25 * s + 2 * noise(rng_), 30, 150), t, true);
      break;
    case device_kind::oxygen:
      push(out, d, "o2_supplement", 1, t, true);
      push(out, d, "o2_flow", 2 + std::round(4 * s), t, true);
      d.battery = clamp(d.battery - 0.05, 0, 100);  // an oxygen device's "battery" is its cylinder
      push(out, d, "o2_cylinder", d.battery, t, true);
      break;
  }
  if (d.kind != device_kind::oxygen) {
    d.battery = clamp(d.battery - 0.002 * static_cast<double>(d.period) / 1000.0, 0, 100);
    push(out, d, "battery", d.battery, t, true);
  }
}

std::vector<reading_input> ward::advance(epoch_ms now) {
  std::vector<reading_input> out;
  if (now <= last_) return out;
  const double hours = static_cast<double>(now - last_) / 3'600'000.0;
  std::uniform_real_distribution<double> u{0, 1};
  for (auto& p : patients_)
    if (p.deteriorating_since < 0 && u(rng_) < opts_.deteriorations_per_hour * hours) {
      p.deteriorating_since = now;
      events_.push_back({now, p.id + " starts deteriorating"});
    }
  for (auto& d : devices_) {
    if (d.silent_until < 0 && u(rng_) < opts_.silences_per_hour * hours) {
      d.silent_until = now + opts_.silence_ms;
      events_.push_back({now, d.id + " falls silent"});
    }
  }
  // Emit in time order across devices (a min-heap on the next report time).
  using due_t = std::pair<epoch_ms, std::size_t>;
  std::priority_queue<due_t, std::vector<due_t>, std::greater<>> heap;
  for (std::size_t i = 0; i < devices_.size(); ++i)
    if (devices_[i].next <= now) heap.push({devices_[i].next, i});
  while (!heap.empty()) {
    auto [t, i] = heap.top();
    heap.pop();
    auto& d = devices_[i];
    d.next += d.period;
    if (d.next <= now) heap.push({d.next, i});
    if (d.silent_until >= 0) {
      if (t < d.silent_until) continue;
      d.silent_until = -1;
      events_.push_back({t, d.id + " speaks again"});
    }
    emit(d, t, out);
  }
  last_ = now;
  return out;
}

std::vector<ward_event> ward::take_events() {
  std::vector<ward_event> out;
  out.swap(events_);
  return out;
}

}  // namespace alert::sim
