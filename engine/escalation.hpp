#pragma once
// Escalation: who gets paged for an alert, when, and what happens when nobody answers.
// Pure (IHE PCD ACM: the manager, not the communicator, decides): the caller passes the
// node time and carries out the returned actions (send or cancel pages, acknowledge the
// alert); timers are "call on_timer at next_due()", which the caller makes durable.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/rules.hpp"
#include "engine/time.hpp"

namespace alert {

/// One level of a policy: who is paged, and how long they have to accept.
struct escalation_level {
  std::vector<std::string> targets;  ///< pager targets, e.g. "ward3-nurse", "rapid-response"
  epoch_ms timeout_ms = 5 * 60 * 1000;
};

/// An escalation policy (the rules file's `policies:`).
struct escalation_policy {
  std::string id;
  std::vector<escalation_level> levels;  ///< at least one
  unsigned repeat = 0;                   ///< passes over all levels after the first
  /// After an acknowledgement, page again from the first level if the alert is still open
  /// this long afterwards (0: an acknowledgement ends paging for good).
  epoch_ms ack_timeout_ms = 0;
  /// A page not `received` by the gateway within this time is sent again (same page id),
  /// the wait doubling each time up to redeliver_max_ms.
  epoch_ms redeliver_ms = 10'000;
  epoch_ms redeliver_max_ms = 60'000;
};

/// Which alerts a policy takes (the rules file's `routes:`); every set field must match.
struct escalation_route {
  std::optional<alert_priority> priority;
  std::optional<alert_kind> kind;
  std::optional<std::string> rule;
  std::optional<std::string> patient_prefix;  ///< e.g. "W3-": the ward's patients
  std::string policy;
};

/// Policies and routes; the last route must match everything (a catch-all).
struct escalation_config {
  std::vector<escalation_policy> policies;
  std::vector<escalation_route> routes;
  /// The policy of the first route matching `a`, or null (only when routes are empty).
  const escalation_policy* route(const alert_record& a) const noexcept;
  const escalation_policy* find(std::string_view id) const noexcept;
};

/// Deterministic page id of a step: "<alert_id>@<level>.<repeat>/<target>". The same step
/// always gets the same id, so a gateway can deduplicate redeliveries and a node that
/// resumes after a crash never pages the same step under a new id.
std::string page_id(const std::string& alert_id, unsigned level, unsigned repeat, const std::string& target);
/// The target a page id names (what follows its last '/'); empty when it names none.
std::string_view page_target(std::string_view page_id) noexcept;

/// What a gateway reported about a page.
enum class page_status : std::uint8_t { sent, received, delivered, read, accepted, rejected, cancelled };
std::string_view to_string(page_status s) noexcept;
std::optional<page_status> page_status_from_string(std::string_view s) noexcept;

/// Pages an escalation keeps at most (open pages of earlier steps and the current step's):
/// beyond it the oldest are forgotten. At a 10 min timeout that is more than a day of a last
/// level paged again and again without an answer.
inline constexpr std::size_t max_kept_pages = 200;

/// One page of an escalation.
struct page {
  std::string id;
  std::string target;
  unsigned level = 0;
  unsigned repeat = 0;
  page_status status = page_status::sent;
  unsigned sends = 0;             ///< times sent (redeliveries included)
  epoch_ms first_sent = 0;
  epoch_ms next_redeliver = 0;    ///< when to send again if still not received
  std::string by;                 ///< who accepted or rejected
  bool unreachable = false;       ///< no connected gateway served its target when last sent
};

/// Escalation of one alert.
struct escalation_state {
  std::string alert_id;
  std::string policy;
  enum class phase : std::uint8_t { paging, acknowledged, done } at = phase::paging;
  unsigned level = 0;
  unsigned repeat = 0;
  /// The repeat at which the current run of the policy began. A run starts at the first
  /// page, after an acknowledgement timed out, when a silenced alert resurfaces and when a
  /// rise in priority moves the alert to another policy; repeat keeps counting across runs
  /// so that no two steps ever share a page id.
  unsigned base = 0;
  epoch_ms level_deadline = 0;  ///< paging: when the current level times out
  epoch_ms ack_deadline = 0;    ///< acknowledged: when paging starts again (0: never)
  std::vector<page> pages;      ///< the current step's pages and the open ones of earlier steps
};

/// What the caller must do.
struct escalation_action {
  enum class type : std::uint8_t {
    send,         ///< send (or resend) `pg` to its target
    cancel,       ///< tell the target's gateways `pg` is void, with `reason`
    acknowledge,  ///< a responder accepted: acknowledge the alert, by `pg.by`
  };
  type what;
  page pg;
  std::string reason;  ///< cancel: "acknowledged", "resolved" or "silenced"
};

/// Starts escalating `a` under `policy` at node time `now`: pages the first level.
escalation_state start_escalation(const escalation_policy& policy, const alert_record& a, epoch_ms now,
                                  std::vector<escalation_action>& out);

/// A gateway's status for a page. `received` (and later stages) stops redelivery; `accepted`
/// acknowledges the alert and cancels the step's other pages; `rejected` escalates at once
/// when every page of the step has been rejected or is unreachable (except at the policy's
/// last step, which waits for its timeout). Unknown or stale page ids change nothing.
void on_page_status(const escalation_policy& policy, escalation_state& st, const std::string& page_id,
                    page_status status, const std::string& by, epoch_ms now, std::vector<escalation_action>& out);

/// Time passes: redeliver unreceived pages, escalate a level that timed out, repeat the
/// policy, and after an acknowledgement timeout start paging again. After the last level of
/// the last repeat, the last level is paged again at each timeout: nobody on call never
/// means no page.
void on_escalation_timer(const escalation_policy& policy, escalation_state& st, epoch_ms now,
                         std::vector<escalation_action>& out);

/// No connected gateway serves the target of page `page_id` (the caller found none when
/// sending it). When every page of the current step is unreachable or rejected, the next
/// step is paged at once, except at the policy's last step, which waits for its timeout so
/// that an unreachable last level is retried rather than paged in a loop. The page stays
/// due for redelivery, in case a gateway for its target connects.
void on_page_unreachable(const escalation_policy& policy, escalation_state& st, const std::string& page_id,
                         epoch_ms now, std::vector<escalation_action>& out);

/// A gateway serving `targets` ("*": every target) connected: the current step's pages to
/// those targets that it has not received are sent again now.
void on_gateway_available(const escalation_policy& policy, escalation_state& st,
                          const std::vector<std::string>& targets, epoch_ms now,
                          std::vector<escalation_action>& out);

/// Starts a new run of `policy` from its first level (a silenced alert resurfaced, or its
/// priority rose and it now routes to `policy`). Outstanding pages of the old run are left
/// as they are: a responder who accepts one still acknowledges the alert.
void restart_escalation(const escalation_policy& policy, escalation_state& st, epoch_ms now,
                        std::vector<escalation_action>& out);

/// The alert was acknowledged (by a person or through a page), resolved or silenced.
void on_alert_acknowledged(const escalation_policy& policy, escalation_state& st, epoch_ms now,
                           std::vector<escalation_action>& out);
void on_alert_closed(escalation_state& st, const std::string& reason, std::vector<escalation_action>& out);

/// When on_escalation_timer must run next; nothing when no timer is pending.
std::optional<epoch_ms> next_due(const escalation_state& st) noexcept;

}  // namespace alert
