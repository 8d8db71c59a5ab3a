#pragma once
// The escalator: the actor that turns alerts into pages. It keeps one escalation per alert
// (engine/escalation.hpp decides; this actor carries the decisions out), persists each step
// in RocksDB as soon as its pages leave ("x/<alert id>"), drives the timers on the node clock,
// sends pages and cancels through the pager endpoint and hears the gateways' statuses back.
// A target no gateway serves is unreachable: the step escalates and a technical alert
// ("n/pager/target_unreachable/...") is raised, owned and journaled by this actor.
//
// Internal to actors/: includes CAF.

#include <caf/all.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "actors/shard_host.hpp"
#include "cluster/pager_server.hpp"
#include "engine/escalation.hpp"
#include "engine/histogram.hpp"
#include "engine/rules.hpp"
#include "engine/time.hpp"
#include "storage/journal.hpp"

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<const alert::escalation_config>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(alert::page_status)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<alert::escalation_state>)

namespace alert::actors {
/// The pager endpoint handed to the escalator at start (CAF messages may not hold raw
/// pointers). The node keeps the endpoint alive until the escalator has stopped.
struct pager_handle {
  cluster::pager_server* server = nullptr;
};
}  // namespace alert::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(alert::actors::pager_handle)

namespace alert::actors {

using start_atom = caf::atom_constant<caf::atom("start")>;
using hello_atom = caf::atom_constant<caf::atom("hello")>;
using page_status_atom = caf::atom_constant<caf::atom("pgstatus")>;
using escalations_atom = caf::atom_constant<caf::atom("escalats")>;


/// What the escalator counts, read by the metrics endpoint from any thread.
struct escalation_metrics {
  std::atomic<std::uint64_t> escalations_started{0};
  std::atomic<std::uint64_t> pages_sent{0};         ///< first sends
  std::atomic<std::uint64_t> pages_resent{0};       ///< redeliveries and resends to a gateway that connected
  std::atomic<std::uint64_t> pages_cancelled{0};
  std::atomic<std::uint64_t> pages_unreachable{0};  ///< sends no gateway could take (after the start grace)
  std::array<std::atomic<std::uint64_t>, 7> statuses{};        ///< gateway reports, by page_status
  std::array<std::atomic<std::uint64_t>, 8> steps_by_level{};  ///< steps paged, by level (7: 7 or more)
  /// Node seconds from the arrival of the reading that fired an alert to its first page.
  histogram arrival_to_page{histogram::latency_bounds()};
};

/// Settings of the escalator.
struct escalator_config {
  storage::journal* journal = nullptr;
  const time_source* clock = nullptr;
  /// Policies and routes (null or empty: nothing is paged, alerts are only journaled).
  std::shared_ptr<const escalation_config> policies;
  /// After start, pages that find no gateway are not unreachable for this long.
  epoch_ms grace_ms = 15'000;
  /// Period of the timer that checks due escalations against the node clock.
  std::chrono::milliseconds tick_interval{1000};
  /// Where to count (null: nowhere). Outlives the escalator.
  escalation_metrics* metrics = nullptr;
  /// In a cluster: whether this node owns an alert now (its shard's owner is this node).
  /// Escalations of alerts it does not own are kept but not acted on. Null: every alert.
  std::function<bool(const alert_record&)> owns;
  /// In a cluster: told of every escalation record written (`record` empty: removed), to
  /// copy it to the follower of the alert's shard. Runs on the escalator's thread.
  std::function<void(const alert_record&, const std::optional<std::string>& record)> on_persist;
};
/// (adopt_atom): shards moved to this node; the escalations of its newly owned alerts are
/// read again from RocksDB (their owner copied them here, or handed them over before this
/// node could own them) and what is due fires.
using adopt_atom = caf::atom_constant<caf::atom("adopt")>;

/// Spawns the escalator. It loads the escalations in progress from RocksDB at once, then
/// waits (keeping every other message) for (start_atom, host, pager_handle): from then on it
/// pages, and first fires what fell due while the node was down and starts escalating any
/// journaled alert that fired without an escalation record. Messages it takes after start:
/// - std::vector<alert_event>: transitions journaled by entities (the host's hook).
/// - (page_status_atom, gateway, page_id, page_status, by): a gateway's report.
/// - (hello_atom, std::vector<std::string> targets): a gateway serving them connected.
/// - tick_atom: fire what is due on the node clock (also on its own timer).
/// - (rules_atom, std::shared_ptr<const escalation_config>): policies after a reload.
/// - (ack_atom | resolve_atom, alert_id, by) -> std::vector<alert_event>: for the alerts it
///   owns ("n/..."); empty when there is no such open alert.
/// - escalations_atom -> std::vector<escalation_state>: every escalation it keeps.
/// - shutdown_atom: stop (everything is already persisted).
caf::actor spawn_escalator(caf::actor_system& sys, escalator_config cfg);

}  // namespace alert::actors
