#pragma once
// The shard host: the only holder of entity actor handles. It activates device and patient
// actors on their first message (rebuilding their state from RocksDB), lets idle ones
// passivate, and supervises them: a crashed entity is restarted from its persisted state on
// its next message; one that crashes too often within a window is quarantined, recorded in
// the node event journal and reported as a technical problem.
//
// Internal to actors/: includes CAF.

#include <caf/all.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "engine/entity.hpp"
#include "engine/reading.hpp"
#include "engine/rules.hpp"
#include "engine/time.hpp"
#include "storage/entity_store.hpp"
#include "storage/journal.hpp"

namespace alert::actors {

/// Durable new readings for the host, as one append produced them.
struct reading_batch {
  std::vector<reading> readings;
  epoch_ms received = 0;
};

/// Readings of one device, host to device actor.
struct device_readings {
  std::vector<reading> readings;
  epoch_ms received = 0;
};

/// Readings attributed to (or leaving) one patient, device actor to host to patient actor.
struct patient_readings {
  patient_id patient;
  std::vector<reading> readings;
};

/// Counters of the host.
struct host_stats {
  std::size_t active_devices = 0;
  std::size_t active_patients = 0;
  std::uint64_t activations = 0;
  std::uint64_t passivations = 0;
  std::uint64_t restarts = 0;
  std::uint64_t quarantined = 0;
  std::uint64_t dropped = 0;  ///< messages for quarantined entities (their readings stay journaled)
};

/// Settings of the host and its entities.
struct host_config {
  storage::journal* journal = nullptr;
  const time_source* clock = nullptr;  ///< for the restart intensity window and events
  std::chrono::milliseconds idle_timeout{std::chrono::minutes{5}};
  std::uint64_t snapshot_every = 1000;  ///< readings between snapshots of an entity
  unsigned max_restarts = 5;            ///< restarts allowed within restart_window...
  epoch_ms restart_window_ms = 60'000;  ///< ...before the entity is quarantined
  /// Called by the device actor for every reading after its state is updated: where
  /// device rules plug in. May throw: that is what supervision is for.
  std::function<void(const device_state&, const reading&)> on_device_reading;
  /// Called when an entity is quarantined (the technical alert's hook).
  std::function<void(const std::string& entity, const std::string& why)> on_quarantine;
  /// The rules in force (null: none). Replaced as a whole on reload.
  std::shared_ptr<const rule_set> rules;
  /// Alert transitions after they are journaled (escalation plugs in here). Runs in the
  /// entity actor; must not block. A rebuild after a crash may repeat a transition: the
  /// pair (alert id, version) identifies it.
  std::function<void(const std::vector<alert_event>&)> on_alert_events;
  /// Silences in force at start (the node keeps them in RocksDB), and the next silence number.
  std::vector<silence> silences;
  std::uint64_t next_silence = 1;
  /// Period of the host's timer that checks no-data rules against the node clock.
  std::chrono::milliseconds tick_interval{1000};
};

}  // namespace alert::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(alert::actors::reading_batch)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(alert::actors::device_readings)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(alert::actors::patient_readings)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(alert::actors::host_stats)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(alert::device_state)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(alert::patient_state)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(alert::device_id)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(alert::patient_id)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<alert::alert_event>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<alert::alert_record>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<const alert::rule_set>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(alert::silence)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<alert::silence>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<const std::vector<alert::silence>>)

namespace alert::actors {

using passivate_atom = caf::atom_constant<caf::atom("passivate")>;
using state_atom = caf::atom_constant<caf::atom("state")>;
using stats_atom = caf::atom_constant<caf::atom("stats")>;
using shutdown_atom = caf::atom_constant<caf::atom("shutdown")>;
using quarantined_atom = caf::atom_constant<caf::atom("quarant")>;
using release_atom = caf::atom_constant<caf::atom("release")>;
using tick_atom = caf::atom_constant<caf::atom("tick")>;
using ack_atom = caf::atom_constant<caf::atom("ack")>;
using resolve_atom = caf::atom_constant<caf::atom("resolve")>;
using rules_atom = caf::atom_constant<caf::atom("rules")>;
using alerts_atom = caf::atom_constant<caf::atom("alerts")>;
using silence_atom = caf::atom_constant<caf::atom("silence")>;
using unsilence_atom = caf::atom_constant<caf::atom("unsilence")>;
using silences_atom = caf::atom_constant<caf::atom("silences")>;
/// (quorum_atom, bool): in a cluster, whether this node sees a majority. Without it the
/// escalator pages nothing (alerts and timers wait in its mailbox until the majority is
/// back, then fire what fell due) and the host stops ticking its entities (a silent device
/// is not "no data" while its readings may be going to the majority).
using quorum_atom = caf::atom_constant<caf::atom("quorum")>;
/// To the host: shards moved away from this node; every entity passivates now (with a
/// snapshot) and those still owned are rebuilt from the journal at their next reading.
using shed_atom = caf::atom_constant<caf::atom("shed")>;

/// Spawns the host. Messages it takes:
/// - reading_batch: route to device actors (activating them).
/// - patient_readings: route to patient actors (activating them).
/// - (state_atom, device_id) -> device_state; (state_atom, patient_id) -> patient_state.
/// - stats_atom -> host_stats; (quarantined_atom) -> std::vector<std::string>.
/// - (release_atom, entity key, by) -> bool: a quarantined entity is served again (rebuilt
///   from storage on its next message); false when it was not quarantined.
/// - tick_atom: every active device checks its no-data rules at the node clock's time.
/// - (ack_atom | resolve_atom, alert_id, by) -> std::vector<alert_event> (empty: no such
///   open alert); the transition is journaled before the reply.
/// - (rules_atom, std::shared_ptr<const rule_set>): new rules for entities from now on.
/// - (silence_atom, silence) -> std::string id; (unsilence_atom, id) -> bool;
///   silences_atom -> std::vector<silence>. Silences are persisted before the reply.
/// - shutdown_atom: every entity snapshots and stops, then the host stops.
caf::actor spawn_shard_host(caf::actor_system& sys, host_config cfg);

}  // namespace alert::actors
