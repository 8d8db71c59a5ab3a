#pragma once
// A node: the journal, the ingest endpoint and (as later parts land) the actors behind them,
// assembled from node options. Start, run, stop; nothing else needs to know the wiring.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "config/node_options.hpp"
#include "engine/entity.hpp"
#include "engine/escalation.hpp"
#include "engine/histogram.hpp"
#include "engine/membership.hpp"
#include "engine/reading.hpp"
#include "engine/rules.hpp"
#include "engine/status.hpp"
#include "engine/time.hpp"
#include "storage/journal.hpp"

namespace alert {

/// A snapshot of the node's counters.
struct node_stats {
  std::uint64_t requests = 0;
  std::uint64_t request_errors = 0;
  std::uint64_t accepted = 0;
  std::uint64_t duplicates = 0;
  std::uint64_t rejected = 0;
  std::uint64_t journal_commits = 0;
  std::uint64_t journal_commit_micros = 0;
  std::uint64_t journal_pending = 0;
  std::size_t active_devices = 0;
  std::size_t active_patients = 0;
  std::uint64_t activations = 0;
  std::uint64_t passivations = 0;
  std::uint64_t restarts = 0;
  std::uint64_t quarantined = 0;
  std::vector<std::uint64_t> rejected_by_code;  ///< readings refused, indexed by errc
  std::vector<std::uint64_t> errors_by_code;    ///< requests refused whole, indexed by errc
  histogram::snapshot request_latency;          ///< ingest request arrival to reply, seconds
  histogram::snapshot journal_commit_latency;   ///< group commit, seconds
};

/// What this node knows of its cluster (docs/cluster.md).
struct cluster_view {
  bool clustered = false;  ///< false: a single node, its own majority
  bool quorum = true;      ///< this node sees a majority of the configured members
  std::vector<member_view> members;
  std::uint32_t shards = 0;
  /// Shards by the member this node routes their readings to (engine/ownership: this node
  /// while it acts as owner, else whom a majority of the votes it knows of names). Shards
  /// without one are missing from every count (they are moving, or this node is cut off).
  std::map<std::string, std::uint32_t> owned;
  /// The shards this node acts as owner of now.
  std::vector<std::uint32_t> acting;
  /// Shards this node is owner of in its view but still waits for a handoff of.
  std::uint32_t waiting = 0;
};

/// Extension points of a node, for rules (later issues) and tests.
struct node_hooks {
  /// Runs in the device actor for each reading, after the device's state took it. May
  /// throw: the device actor is then restarted from its persisted state by supervision.
  std::function<void(const device_state&, const reading&)> on_device_reading;
  /// An entity crashed too often and was quarantined.
  std::function<void(const std::string& entity, const std::string& why)> on_quarantine;
  /// Alert transitions, after they are journaled (escalation plugs in here).
  std::function<void(const std::vector<alert_event>&)> on_alert_events;
};

/// The rules file as a node uses it: rules, and escalation policies with their routes.
struct loaded_rules {
  std::shared_ptr<const rule_set> rules;
  std::shared_ptr<const escalation_config> escalation;
};

/// Loads the rules named by the options (or the built-in default); errc::config_error with
/// every problem as "FILE:LINE:COL: reason" lines.
result<loaded_rules> load_rules(const config::node_options& opts);

/// A running node.
class node {
public:
  /// Opens the data directory and binds the endpoints. errc::unavailable when the directory
  /// is held by another process or an endpoint cannot be bound.
  static result<std::unique_ptr<node>> start(const config::node_options& opts, const time_source& clock,
                                             node_hooks hooks = {});
  ~node();
  node(const node&) = delete;
  node& operator=(const node&) = delete;

  /// Stops intake, answers in-flight batches, flushes and closes the journal. Idempotent.
  void stop();

  /// The ingest endpoint as bound (port resolved).
  const std::string& ingest_endpoint() const;
  /// The pager endpoint as bound (port resolved).
  const std::string& pager_endpoint() const;
  /// The control endpoint as bound (port resolved).
  const std::string& control_endpoint() const;
  /// The metrics URL (http://HOST:PORT/metrics), or empty when metrics are off.
  std::string metrics_url() const;
  /// The options the node runs with.
  const config::node_options& options() const;
  /// Node time the node started, and node time now.
  epoch_ms started_at() const;
  epoch_ms now() const;
  /// Whether the journal answers a read (the health check); the error otherwise.
  status health() const;
  /// Names of the pager gateways connected now.
  std::vector<std::string> gateways() const;
  /// Members, their states and the quorum, as this node sees them now.
  cluster_view cluster() const;

  node_stats stats() const;

  /// A device's state now (from its actor if active, else rebuilt from storage).
  result<device_state> device(const device_id& id) const;
  /// A patient's state now.
  result<patient_state> patient(const patient_id& id) const;
  /// Entities quarantined by supervision ("d/<id>", "p/<id>").
  std::vector<std::string> quarantined() const;
  /// Serves a quarantined entity again (after its cause is fixed, e.g. a rules reload): it is
  /// rebuilt from storage on its next message. False when it was not quarantined.
  result<bool> release(const std::string& entity, const std::string& by);

  /// Checks no-data rules and due escalation timers now, on the node clock (the node does
  /// this every rules.tick-ms by itself).
  void tick();
  /// Acknowledges an open alert; the transitions (none: no such firing alert) once durable.
  /// Stops its escalation and cancels its outstanding pages.
  result<std::vector<alert_event>> acknowledge(const std::string& alert_id, const std::string& by);
  /// Resolves an open alert by hand.
  result<std::vector<alert_event>> resolve(const std::string& alert_id, const std::string& by);
  /// Reloads the rules file; on a bad file the old rules stay and the problems are returned.
  status reload_rules();
  /// Reads the access file again (SIGHUP): keys added are admitted at their next connection,
  /// keys removed are refused at their next request. A bad file keeps the old list. Nothing
  /// to do without CURVE.
  status reload_access();
  /// Adds a silence (its id is assigned and returned once it is durable). A silence needs
  /// at least one scope field and an end in the future: errc::invalid_argument otherwise.
  result<std::string> add_silence(silence s);
  /// Lifts a silence; false when there is none with that id.
  result<bool> remove_silence(const std::string& id, const std::string& by);
  /// The silences in force (expired ones leave at the next tick).
  result<std::vector<silence>> silences() const;
  /// The journaled transitions of one alert.
  result<std::vector<alert_event>> alert_history(const std::string& alert_id) const;
  /// The latest transition of every alert not resolved, by alert id.
  result<std::vector<alert_event>> open_alerts() const;
  /// The latest transition of every alert ever journaled (reads the whole alert journal).
  result<std::vector<alert_event>> latest_alerts() const;
  /// The newest `limit` node events (supervision, silences, pages), of `kind` when not
  /// empty, oldest first.
  result<std::vector<storage::journal::node_event>> recent_events(std::size_t limit, const std::string& kind) const;
  /// Node events whose entity is `subject` or starts with `subject` + "@" (an alert id: the
  /// events about the alert and its pages "<alert id>@<step>/<target>"), oldest first.
  result<std::vector<storage::journal::node_event>> events_about(const std::string& subject) const;
  /// A device's journaled readings from `from_seq`, at most `limit`.
  result<std::vector<storage::journal_entry>> readings(const device_id& id, std::uint64_t from_seq,
                                                       std::size_t limit) const;
  /// A device's or a patient's state as the node knew it at node time `at`.
  result<device_state> device_at(const device_id& id, epoch_ms at) const;
  result<patient_state> patient_at(const patient_id& id, epoch_ms at) const;
  /// Appends to the hash-chained audit log (synced).
  status audit(const std::string& actor, const std::string& action, const std::string& subject,
               const std::string& outcome);
  /// The newest `limit` audit records, oldest first.
  result<std::vector<storage::journal::audit_record>> audit_log(std::size_t limit) const;
  /// Checks the whole audit chain.
  result<storage::journal::audit_check> verify_audit() const;
  /// The escalations the node keeps (alerts being paged, acknowledged with a re-page timer,
  /// or silenced), in alert id order.
  result<std::vector<escalation_state>> escalations() const;

private:
  struct impl;
  static status start_cluster(impl& p, const config::node_options& opts, const time_source& clock);
  /// In a cluster: ok when this node acts as the owner of the alert's shard, else
  /// unavailable naming the owner.
  status check_owns_alert(const std::string& alert_id) const;
  explicit node(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

}  // namespace alert
