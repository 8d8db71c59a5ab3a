#pragma once
// Device and patient state in RocksDB: snapshots, and rebuilds from snapshot + journal,
// now or as the node knew it at a past time (for audit).

#include <map>
#include <optional>
#include <string>

#include "engine/entity.hpp"
#include "storage/journal.hpp"

namespace alert::storage {

/// Snapshot key of a device ("d/<id>") and of a patient ("p/<id>").
std::string device_key(const device_id& d);
std::string patient_key(const patient_id& p);

/// Snapshot bytes of a device, format 1.
std::string encode_device(const device_state& s);
result<device_state> decode_device(std::string_view bytes);

/// A patient's state with where its fold stands on each device it ever had.
struct patient_snapshot {
  patient_state state;
  std::map<std::string, device_cursor> cursors;
  friend bool operator==(const patient_snapshot& a, const patient_snapshot& b) {
    return a.state == b.state && a.cursors == b.cursors;
  }
};
std::string encode_patient(const patient_snapshot& s);
result<patient_snapshot> decode_patient(std::string_view bytes);

/// A device's current state: its snapshot, then its late readings, then every reading
/// after the snapshot. Reads RocksDB; call off the hot path (activation).
result<device_state> load_device(const journal& j, const device_id& d);

/// A device's state as the node knew it at node time `at`: every reading received at or
/// before `at`, replayed from the start.
result<device_state> device_at(const journal& j, const device_id& d, epoch_ms at);

/// A patient's current state: snapshot, then each of its devices' readings after the
/// device's cursor (late readings included).
result<patient_snapshot> load_patient(const journal& j, const patient_id& p);

/// A patient's state as the node knew it at node time `at`.
result<patient_state> patient_at(const journal& j, const patient_id& p, epoch_ms at);

}  // namespace alert::storage
