#pragma once
// The state of a device and of a patient, as folds over readings. Pure: the same readings
// give the same state in any order of arrival, and applying a reading twice changes
// nothing, so a state rebuilt from the journal equals the state built live.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine/ids.hpp"
#include "engine/metric.hpp"
#include "engine/reading.hpp"
#include "engine/time.hpp"

namespace alert {

/// The newest value of one metric from one device.
struct metric_sample {
  metric what = metric::heart_rate;
  double value = 0;
  epoch_ms ts = 0;         ///< device time
  std::uint64_t seq = 0;   ///< device seq of the reading
  friend bool operator==(const metric_sample& a, const metric_sample& b) {
    return a.what == b.what && a.value == b.value && a.ts == b.ts && a.seq == b.seq;
  }
};

/// What a device is, inferred from what it reports (the protocol carries no kind).
enum class device_kind : std::uint8_t { unknown, oximeter, bp_cuff, monitor, oxygen };

/// "unknown", "oximeter", "bp_cuff", "monitor", "oxygen".
std::string_view to_string(device_kind k) noexcept;
/// The kind named `s`, or nothing.
std::optional<device_kind> device_kind_from_string(std::string_view s) noexcept;

/// State of one device.
struct device_state {
  std::optional<patient_id> patient;  ///< current binding
  std::uint64_t binding_seq = 0;      ///< seq of the reading that set the binding
  /// Per metric reported, the sample with the highest seq; sorted by metric. A vector, not
  /// an array over the vocabulary: a device reports a few metrics and a node holds many
  /// devices in memory.
  std::vector<metric_sample> samples;
  std::uint64_t last_seq = 0;         ///< highest seq applied
  epoch_ms last_seen = 0;             ///< node time the newest reading was received
  std::uint8_t kinds_seen = 0;        ///< bit per device_kind whose metrics were reported

  /// Inferred from the metrics seen: one family (SpO2; blood pressure; respiration,
  /// temperature, consciousness; oxygen therapy) names the kind, several vital families
  /// make a monitor. Order-independent.
  device_kind kind() const noexcept;

  /// The newest sample of `m`, or null when the device never reported it.
  const metric_sample* last(metric m) const noexcept;
  /// Battery percentage, when the device reports one.
  std::optional<double> battery() const;
  friend bool operator==(const device_state& a, const device_state& b);
};

/// What applying a reading to a device changed.
struct device_change {
  bool bound = false;                    ///< the binding changed to reading.patient
  std::optional<patient_id> unbound_from;  ///< the patient the device left, if any
  /// The patient this reading is attributed to: its own `patient`, else the binding.
  std::optional<patient_id> attributed_to;
};

/// Applies a reading received at node time `received`. Per metric the highest seq wins;
/// the binding follows the highest seq that carried a patient. Idempotent and
/// order-independent.
device_change apply(device_state& s, const reading& r, epoch_ms received);

/// A vital of a patient with the device it came from.
struct patient_vital {
  double value = 0;
  epoch_ms ts = 0;
  std::uint64_t seq = 0;
  std::string device;
  friend bool operator==(const patient_vital& a, const patient_vital& b) {
    return a.value == b.value && a.ts == b.ts && a.seq == b.seq && a.device == b.device;
  }
};

/// Per-patient settings, changed by clinicians through the control interface.
struct patient_settings {
  bool spo2_scale2 = false;  ///< NEWS2 SpO2 scale 2 (hypercapnic respiratory failure)
  friend bool operator==(const patient_settings& a, const patient_settings& b) {
    return a.spo2_scale2 == b.spo2_scale2;
  }
};

/// State of one patient.
struct patient_state {
  std::vector<std::string> devices;  ///< bound now, sorted
  /// Per metric the newest value across devices by device time (ties: seq, then device).
  std::array<std::optional<patient_vital>, metric_count> vitals{};
  patient_settings settings;

  friend bool operator==(const patient_state& a, const patient_state& b);
};

/// A device was bound to the patient (idempotent).
void bind_device(patient_state& s, const device_id& d);
/// A device left the patient (idempotent).
void unbind_device(patient_state& s, const device_id& d);
/// Applies a reading attributed to this patient. Returns true when a vital changed.
bool apply(patient_state& s, const reading& r);

}  // namespace alert

namespace alert {

/// Where a patient's fold stands on one device: the highest device seq folded and the
/// device's binding as of that seq (needed to attribute readings that name no patient).
struct device_cursor {
  std::uint64_t seq = 0;
  std::optional<patient_id> binding;
  std::uint64_t binding_seq = 0;
  friend bool operator==(const device_cursor& a, const device_cursor& b) {
    return a.seq == b.seq && a.binding == b.binding && a.binding_seq == b.binding_seq;
  }
};

/// Folds one reading of a device, taken in seq order, into the state of patient `self`:
/// the reading counts for `self` when it names `self`, or names no patient while the device
/// is bound to `self`. Afterwards the device is in `self`'s device set iff bound to it.
void fold_patient_reading(patient_state& s, const patient_id& self, device_cursor& cursor, const reading& r);

}  // namespace alert
