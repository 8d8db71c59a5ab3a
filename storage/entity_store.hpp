#pragma once
// Device and patient state in RocksDB: snapshots, and rebuilds from snapshot + journal,
// now or as the node knew it at a past time (for audit).

#include <functional>
#include <map>
#include <optional>
#include <string>

#include "engine/entity.hpp"
#include "engine/escalation.hpp"
#include "engine/rules.hpp"
#include "storage/journal.hpp"

namespace alert::storage {

/// Snapshot key of a device ("d/<id>") and of a patient ("p/<id>").
std::string device_key(const device_id& d);
std::string patient_key(const patient_id& p);

/// A device's state with the states of its rules.
struct device_snapshot {
  device_state state;
  rule_states rules;
};

/// Snapshot bytes of a device, format 1.
std::string encode_device(const device_snapshot& s);
result<device_snapshot> decode_device(std::string_view bytes);

/// A patient's state with where its fold stands on each device it ever had, and the states
/// of its rules.
struct patient_snapshot {
  patient_state state;
  std::map<std::string, device_cursor> cursors;
  rule_states rules;
  /// Equal state and cursors (rule states are compared by their own tests).
  friend bool operator==(const patient_snapshot& a, const patient_snapshot& b) {
    return a.state == b.state && a.cursors == b.cursors;
  }
};
std::string encode_patient(const patient_snapshot& s);
result<patient_snapshot> decode_patient(std::string_view bytes);

/// Called for each reading replayed on top of a snapshot, after the state took it: where
/// an activating actor re-evaluates its rules.
using device_replay = std::function<void(device_snapshot&, const journal_entry&)>;

/// The node's silences with the next silence number (snapshot key "n/silences").
std::string encode_silences(const std::vector<silence>& all, std::uint64_t next_id);
result<std::pair<std::vector<silence>, std::uint64_t>> decode_silences(std::string_view bytes);

/// An alert's escalation with the alert it pages about, as kept in RocksDB (snapshot key
/// "x/<alert id>") so that escalation resumes after a restart at the step it had reached.
struct escalation_record {
  escalation_state state;
  alert_record alert;
};
std::string escalation_key(const std::string& alert_id);
std::string encode_escalation(const escalation_record& r);
result<escalation_record> decode_escalation(std::string_view bytes);

/// A device's current state: its snapshot, then its late readings, then every reading
/// after the snapshot. Reads RocksDB; call off the hot path (activation).
result<device_snapshot> load_device(const journal& j, const device_id& d, const device_replay& on_replay = {});

/// A device's state as the node knew it at node time `at`: every reading received at or
/// before `at`, replayed from the start.
result<device_state> device_at(const journal& j, const device_id& d, epoch_ms at);

/// Called for each reading folded on top of a patient's snapshot.
using patient_replay = std::function<void(patient_snapshot&, const journal_entry&)>;

/// A patient's current state: snapshot, then each of its devices' readings after the
/// device's cursor (late readings included).
result<patient_snapshot> load_patient(const journal& j, const patient_id& p, const patient_replay& on_replay = {});

/// A patient's state as the node knew it at node time `at`.
result<patient_state> patient_at(const journal& j, const patient_id& p, epoch_ms at);

}  // namespace alert::storage
