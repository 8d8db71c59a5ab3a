#pragma once
// Rules and alerts: rule definitions (what the rules file holds), per-(entity, rule)
// evaluation state, the alert lifecycle and silences. Pure: readings carry event time, the
// caller passes node time where a timer is involved (no-data), nothing reads a clock.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "engine/boxed.hpp"
#include "engine/entity.hpp"
#include "engine/metric.hpp"
#include "engine/reading.hpp"
#include "engine/scores.hpp"
#include "engine/time.hpp"

namespace alert {

enum class alert_priority : std::uint8_t { low, medium, high };
enum class alert_kind : std::uint8_t { physiological, technical, advisory };
enum class alert_state : std::uint8_t { pending, firing, acknowledged, resolved };

/// What a rule watches.
enum class rule_kind : std::uint8_t {
  threshold,  ///< a device metric above/below a limit, with hysteresis, delay, second tier
  rate,       ///< a device metric changing by more than `change` within `window_ms`
  no_data,    ///< a device silent for longer than `ttl_ms` (node time); technical
  news2,      ///< the patient's NEWS2 band at or above `min_band`
  qsofa,      ///< the patient's qSOFA at 2 or more
};

enum class direction : std::uint8_t { above, below };

std::string_view to_string(alert_priority p) noexcept;
std::string_view to_string(alert_kind k) noexcept;
std::string_view to_string(alert_state s) noexcept;
std::string_view to_string(rule_kind k) noexcept;
std::string_view to_string(direction d) noexcept;
std::optional<alert_priority> priority_from_string(std::string_view s) noexcept;
std::optional<alert_kind> alert_kind_from_string(std::string_view s) noexcept;
std::optional<rule_kind> rule_kind_from_string(std::string_view s) noexcept;
std::optional<direction> direction_from_string(std::string_view s) noexcept;
std::optional<news2_band> news2_band_from_string(std::string_view s) noexcept;

/// One rule, as the rules file defines it (docs/rules.md).
struct rule {
  std::string id;  ///< unique, [a-z0-9_]+, e.g. "spo2_low"
  rule_kind kind = rule_kind::threshold;
  alert_priority priority = alert_priority::medium;
  alert_kind kind_of_alert = alert_kind::physiological;
  bool latching = false;  ///< stays open after the condition clears until acknowledged
  std::string description;

  // threshold and rate
  metric what = metric::heart_rate;
  direction dir = direction::below;
  double threshold = 0;          ///< threshold: the limit; the condition is value < (below) or > (above)
  std::optional<double> clear;   ///< threshold: the value must pass this to clear (default: threshold)
  epoch_ms for_ms = 0;           ///< event time the condition must hold before firing
  /// Event time the condition must stay absent before an open alert resolves (0: at once).
  /// Against flapping: a score that hovers at its band's edge stays one alert.
  epoch_ms clear_for_ms = 0;
  std::optional<double> immediate;  ///< threshold: a tighter limit that fires with no delay
  epoch_ms window_ms = 0;        ///< rate: the window
  double change = 0;             ///< rate: the magnitude (dir below: a fall of more than this)

  // no_data
  epoch_ms ttl_ms = 0;
  /// no_data: the device kinds it watches (empty: every device). A cuff that measures every
  /// 30 minutes needs a longer limit than an oximeter that reports every second.
  std::vector<device_kind> device_kinds;

  // news2: fires at min_band or above; the alert's priority follows the band (low_medium:
  // low, medium: medium, high: high) and only ever rises while the alert is open: the
  // rule's `priority` is not used.
  news2_band min_band = news2_band::low_medium;
};

/// Per-patient changes to rules and settings.
struct patient_override {
  std::string patient;
  std::optional<bool> spo2_scale2;
  std::map<std::string, double> thresholds;  ///< rule id -> threshold
  std::map<std::string, double> clears;      ///< rule id -> clear value
};

/// Everything the rules file defines for evaluation.
struct rule_set {
  std::vector<rule> rules;
  std::vector<patient_override> overrides;
  news2_policy staleness;

  /// The rule with this id, or null.
  const rule* find(std::string_view id) const noexcept;
  /// `r` with the overrides of `patient` applied (the rule itself when none apply).
  rule effective(const rule& r, const std::optional<patient_id>& patient) const;
  /// Whether NEWS2 uses SpO2 scale 2 for `patient` (an override, else `fallback`).
  bool spo2_scale2(const patient_id& patient, bool fallback) const;
};

/// A reading that contributed to an alert transition.
struct reading_ref {
  std::string device;
  std::uint64_t seq = 0;
  friend bool operator==(const reading_ref& a, const reading_ref& b) { return a.device == b.device && a.seq == b.seq; }
};

/// An alert: one per (entity, rule) while open.
struct alert_record {
  std::string id;      ///< "<entity>/<rule>/<occurrence>", e.g. "d/oxi-1/spo2_low/3": deterministic
  std::string entity;  ///< "d/<device>" or "p/<patient>"
  std::string rule;
  std::string patient;  ///< the patient concerned, empty for an unbound device
  std::string device;   ///< the device concerned, empty for patient-level rules
  alert_priority priority = alert_priority::medium;
  alert_kind kind = alert_kind::physiological;
  bool latching = false;
  alert_state state = alert_state::pending;
  bool condition = true;   ///< the rule's condition holds now
  bool inhibited = false;  ///< the device is silent: no pages for its physiological alerts
  bool silenced = false;   ///< a silence covers it: no pages until the silence expires
  epoch_ms opened_at = 0;  ///< event time the condition began
  epoch_ms fired_at = 0;
  epoch_ms acked_at = 0;
  epoch_ms resolved_at = 0;
  std::uint64_t count = 0;  ///< evaluations that met the condition
  double first_value = 0, last_value = 0, worst_value = 0;
  std::string summary;  ///< one line a person can act on
  std::string acked_by;
  std::map<std::string, double> details;  ///< values behind it (scores: score, subscores)
  std::uint32_t version = 0;  ///< transitions so far; (id, version) names each alert event
};

/// What happened to an alert.
enum class alert_event_type : std::uint8_t {
  pending,       ///< condition began; delay running
  cancelled,     ///< condition ended before the delay ran out: never fired
  fired,
  updated,       ///< worse value or higher priority while open
  cleared,       ///< condition ended on a latching alert: open until acknowledged
  acknowledged,
  resolved,
  inhibited,     ///< device went silent
  uninhibited,   ///< device speaks again
  silenced,      ///< a silence now covers the open alert
  unsilenced,    ///< its silence expired or was lifted while it is still open: it resurfaces
};
std::string_view to_string(alert_event_type t) noexcept;

/// One transition, with the alert after it and the readings that caused it.
struct alert_event {
  alert_event_type type;
  alert_record after;
  epoch_ms at = 0;  ///< event time (readings) or node time (timers, people)
  std::vector<reading_ref> cause;
};

/// Evaluation state of one rule on one entity.
struct rule_state {
  boxed<alert_record> open;          ///< pending, firing or acknowledged (on the heap: usually empty)
  std::uint64_t occurrences = 0;     ///< alerts opened so far (for deterministic ids)
  std::optional<epoch_ms> since;     ///< event time the condition began (delay)
  std::optional<epoch_ms> clear_since;  ///< event time the condition was last seen absent (clear_for)
  std::vector<std::pair<epoch_ms, double>> window;  ///< rate: samples in the window
  epoch_ms latest_ts = 0;            ///< newest event time evaluated (older readings are late)
};

/// Rule states of one entity, by rule id.
using rule_states = std::map<std::string, rule_state>;

/// Evaluates a threshold or rate rule on a device reading. `r` is already in the device's
/// state; `patient` is the device's binding. Returns the transitions (possibly none).
/// Readings older (by event time) than the newest one evaluated are ignored: rule windows
/// run on event time and a late reading cannot rewrite what was decided.
std::vector<alert_event> evaluate_reading(const rule& rl, rule_state& st, const std::string& entity,
                                          const reading& r, const std::optional<patient_id>& patient);

/// Whether a no-data rule watches devices of kind `k`.
bool watches(const rule& rl, device_kind k) noexcept;

/// Evaluates a no-data rule at node time `now` for a device last seen at `last_seen` (node
/// time). Fires when silent longer than ttl; resolves when it has spoken since.
std::vector<alert_event> evaluate_silence(const rule& rl, rule_state& st, const std::string& entity,
                                          const std::string& device, const std::optional<patient_id>& patient,
                                          epoch_ms last_seen, epoch_ms now);

/// Evaluates a news2 or qsofa rule on a patient's state at event time `now` (the ts of the
/// reading that changed it), caused by `cause`. A reading older than the newest one
/// evaluated (another device's clock runs ahead) is evaluated at that newest time.
std::vector<alert_event> evaluate_patient(const rule& rl, rule_state& st, const patient_id& patient,
                                          const patient_state& ps, bool spo2_scale2, const news2_policy& staleness,
                                          epoch_ms now, const reading_ref& cause);

/// Acknowledges an open alert at node time `now`. A latching alert whose condition has
/// cleared resolves at once; others stay acknowledged until the condition clears.
/// Returns no events when there is no open alert, or it is pending or already acknowledged.
std::vector<alert_event> acknowledge(rule_state& st, const std::string& by, epoch_ms now);

/// Resolves an open alert by hand (an operator's decision) at node time `now`.
std::vector<alert_event> resolve(rule_state& st, const std::string& by, epoch_ms now);

/// Marks an open physiological alert inhibited (device silent) or not.
std::vector<alert_event> set_inhibited(rule_state& st, bool inhibited, epoch_ms now);

/// A silence: alerts matching every given field are not paged until `until` (node time).
struct silence {
  std::string id;
  std::optional<std::string> patient;
  std::optional<std::string> device;
  std::optional<std::string> rule;
  std::optional<alert_priority> priority;
  epoch_ms until = 0;
  std::string reason;
  std::string by;
};

/// Whether `s` covers `a` at node time `now`: not expired, at least one scope field set,
/// and every set field equal to the alert's. A silence never covers a different alert.
bool silences(const silence& s, const alert_record& a, epoch_ms now) noexcept;

/// Whether any silence in `all` covers `a` at `now`.
bool is_silenced(const std::vector<silence>& all, const alert_record& a, epoch_ms now) noexcept;

/// Brings the `silenced` flag of every open alert in `states` in line with `all` at `now`.
/// An alert that just had a transition in `events` gets the flag on that transition (a
/// new alert is born silenced, no extra event); any other alert whose flag changes gets a
/// `silenced` or `unsilenced` event appended to `events`.
void apply_silences(rule_states& states, const std::vector<silence>& all, epoch_ms now,
                    std::vector<alert_event>& events);

}  // namespace alert
