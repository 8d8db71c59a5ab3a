#include "config/rules_file.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <tuple>
#include <utility>

#include "engine/ids.hpp"

namespace alert::config {
namespace {

// A rules file is a few kilobytes; anything this large is the wrong file.
constexpr std::size_t max_file_bytes = 1 << 20;
// Longer than any clinical delay, window or staleness limit, and far from overflow.
constexpr epoch_ms max_duration_ms = 7LL * 24 * 60 * 60 * 1000;
constexpr std::size_t max_rule_id_length = 64;

using words = std::vector<std::string_view>;

const words rule_kind_words{"threshold", "rate", "no_data", "news2", "qsofa"};
const words priority_words{"high", "medium", "low"};
const words alert_kind_words{"physiological", "technical", "advisory"};
// Bands a rule may start at: none and low call for routine or ward-based monitoring, not an alert.
const words band_words{"low_medium", "medium", "high"};
const words top_level_words{"version", "staleness", "rules", "overrides", "policies", "routes"};
const words override_words{"patient", "spo2_scale2", "rules"};
const words policy_words{"id", "levels", "repeat", "ack_timeout", "redeliver", "redeliver_max"};
const words level_words{"targets", "timeout"};
const words route_words{"match", "policy"};
const words match_words{"priority", "kind", "rule", "patient_prefix"};
// More passes than any ward would want; beyond it the number is a typo.
constexpr unsigned max_repeat = 100;
constexpr std::size_t max_pager_name_length = 64;

const words& rule_words(std::optional<rule_kind> k) {
  static const words threshold{"id", "kind", "metric", "below", "above", "clear", "for", "clear_for", "immediate",
                               "priority", "alert", "latching", "description"};
  static const words rate{"id", "kind", "metric", "falls_by", "rises_by", "within", "for", "clear_for",
                          "priority", "alert", "latching", "description"};
  static const words no_data{"id", "kind", "after", "devices", "priority", "alert", "latching", "description"};
  // No priority: a NEWS2 alert takes its band's (engine/rules.hpp).
  static const words news2{"id", "kind", "min_band", "for", "clear_for", "alert", "latching", "description"};
  static const words qsofa{"id", "kind", "for", "clear_for", "priority", "alert", "latching", "description"};
  static const words any{"id", "kind", "metric", "below", "above", "clear", "for", "clear_for", "immediate",
                         "falls_by", "rises_by", "within", "after", "min_band", "priority", "alert", "latching",
                         "description"};
  if (!k) return any;
  switch (*k) {
    case rule_kind::threshold: return threshold;
    case rule_kind::rate: return rate;
    case rule_kind::no_data: return no_data;
    case rule_kind::news2: return news2;
    case rule_kind::qsofa: return qsofa;
  }
  return any;
}

struct staleness_field {
  std::string_view name;
  epoch_ms news2_policy::*member;
};
// Chart order (RCP NEWS2 Chart 1).
constexpr std::array<staleness_field, 7> staleness_fields{{
    {"resp_rate", &news2_policy::resp_rate_ms},
    {"spo2", &news2_policy::spo2_ms},
    {"o2_supplement", &news2_policy::o2_supplement_ms},
    {"systolic_bp", &news2_policy::systolic_bp_ms},
    {"heart_rate", &news2_policy::heart_rate_ms},
    {"consciousness", &news2_policy::consciousness_ms},
    {"temperature", &news2_policy::temperature_ms},
}};

bool contains(const words& ws, std::string_view w) { return std::find(ws.begin(), ws.end(), w) != ws.end(); }

// "a, b or c" (choices) or "a, b and c" (keys a map takes).
std::string join(const words& ws, std::string_view last = " or ") {
  std::string out;
  for (std::size_t i = 0; i < ws.size(); ++i) {
    if (i > 0) out += i + 1 == ws.size() ? last : ", ";
    out += ws[i];
  }
  return out;
}

std::string quoted(std::string_view s) { return "'" + std::string{s} + "'"; }

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0u : 1u)});
      diag = up;
    }
  }
  return row[b.size()];
}

// " (did you mean 'x'?)" for a near miss, else nothing.
std::string suggestion(std::string_view got, const words& candidates) {
  std::string_view best;
  std::size_t best_d = 3;
  for (auto c : candidates) {
    const auto d = edit_distance(got, c);
    if (d < best_d && d < std::max<std::size_t>(got.size(), 2)) {
      best = c;
      best_d = d;
    }
  }
  return best.empty() ? std::string{} : " (did you mean " + quoted(best) + "?)";
}

std::string number_text(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.10g", v);
  return buf;
}

std::string describe(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Map: return "a map";
    // A long text is not repeated: a file that is not a rules file (a key file, say) must
    // not come back in a problem message.
    case YAML::NodeType::Scalar:
      return n.Scalar().size() <= 40 ? quoted(n.Scalar()) : "a text of " + std::to_string(n.Scalar().size()) + " characters";
    default: return "nothing";
  }
}

// describe, telling an empty list or map apart.
std::string describe_sized(const YAML::Node& n) {
  if (n.IsSequence() && n.size() == 0) return "an empty list";
  if (n.IsMap() && n.size() == 0) return "an empty map";
  return describe(n);
}

// 60000 -> "1m", 1500 -> "1500ms": as a rules file would write it.
std::string duration_text(epoch_ms ms) {
  if (ms != 0 && ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
  if (ms != 0 && ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

std::optional<double> parse_number(std::string_view s) {
  if (!s.empty() && s.front() == '+') {
    s.remove_prefix(1);
    if (!s.empty() && s.front() == '-') return std::nullopt;
  }
  if (s.empty()) return std::nullopt;
  double v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

struct parsed_duration {
  epoch_ms ms = 0;
  std::string error;  // empty when ms is valid
};

// Whole numbers each followed by a unit (ms, s, m, h): 500ms, 20s, 15m, 1h, 1h30m.
parsed_duration parse_duration(std::string_view s) {
  const std::string how = "write a whole number and a unit (ms, s, m or h), e.g. 500ms, 20s, 15m, 1h30m";
  if (s.empty()) return {0, "is empty: " + how};
  if (s.front() == '-') return {0, quoted(s) + " is negative: a duration is 0 or more"};
  if (parse_number(s)) return {0, quoted(s) + " has no unit: " + how};
  epoch_ms total = 0;
  std::size_t i = 0;
  while (i < s.size()) {
    const std::size_t digits_at = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    if (i == digits_at) return {0, quoted(s) + " is not a duration: " + how};
    if (i < s.size() && (s[i] == '.' || s[i] == ',')) return {0, quoted(s) + " is not a whole number: " + how};
    if (i - digits_at > 12) return {0, quoted(s) + " is too long (at most 7 days)"};
    epoch_ms n = 0;
    for (std::size_t k = digits_at; k < i; ++k) n = n * 10 + (s[k] - '0');
    const std::size_t unit_at = i;
    while (i < s.size() && s[i] >= 'a' && s[i] <= 'z') ++i;
    const auto unit = s.substr(unit_at, i - unit_at);
    epoch_ms scale = 0;
    if (unit == "ms") scale = 1;
    else if (unit == "s") scale = 1000;
    else if (unit == "m") scale = 60'000;
    else if (unit == "h") scale = 3'600'000;
    else if (unit.empty()) return {0, quoted(s) + " is not a duration: " + how};
    else return {0, quoted(s) + ": unknown unit " + quoted(unit) + "; " + how};
    total += n * scale;
    if (total > max_duration_ms) return {0, quoted(s) + " is too long (at most 7 days)"};
  }
  return {total, {}};
}

// yaml-cpp's messages name the parser's state; say what usually causes it.
std::string syntax_hint(const std::string& msg) {
  if (msg == "end of sequence flow not found") return " (a '[' has no matching ']')";
  if (msg == "end of map flow not found") return " (a '{' has no matching '}')";
  if (msg == "end of sequence not found" || msg == "end of map not found" || msg == "illegal map value" ||
      msg == "block sequence entries are not allowed in this context")
    return " (check the indentation here and on the line above, and that each key is followed by ': ')";
  return {};
}

bool valid_rule_id(std::string_view id) {
  if (id.empty() || id.size() > max_rule_id_length) return false;
  return std::all_of(id.begin(), id.end(),
                     [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; });
}

// A pager target: what a gateway's hello names (cluster/pager_wire's validate_pager_name,
// kept in step by hand: config does not link the cluster library). Why not, or nothing.
std::optional<std::string> pager_name_problem(std::string_view name) {
  if (name.empty()) return "is empty";
  if (name.size() > max_pager_name_length)
    return "is " + std::to_string(name.size()) + " characters, longer than " + std::to_string(max_pager_name_length);
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                    c == '_' || c == '.' || c == ':' || c == '@';
    if (!ok) return "has a character a pager target cannot have (allowed: letters, digits, - _ . : @)";
  }
  return std::nullopt;
}

words metric_words() {
  words out;
  for (const auto& mi : metrics()) out.push_back(mi.name);
  return out;
}

std::string range_text(metric m) {
  const auto& mi = info(m);
  return number_text(mi.min) + " to " + number_text(mi.max) + " " + std::string{mi.unit};
}

// Why a clear value does not fit a limit, or nothing.
std::optional<std::string> clear_problem(direction dir, double limit, double clear) {
  if (dir == direction::below && clear < limit)
    return "clear (" + number_text(clear) + ") must be at or above the limit (below " + number_text(limit) +
           ") for a 'below' rule, so the alert can clear: a value from " + number_text(clear) + " to " +
           number_text(limit) + " would both raise and clear it";
  if (dir == direction::above && clear > limit)
    return "clear (" + number_text(clear) + ") must be at or below the limit (above " + number_text(limit) +
           ") for an 'above' rule, so the alert can clear: a value from " + number_text(limit) + " to " +
           number_text(clear) + " would both raise and clear it";
  return std::nullopt;
}

// Why an immediate (second-tier) limit does not fit the first, or nothing.
std::optional<std::string> immediate_problem(direction dir, double limit, double immediate) {
  if (dir == direction::below && immediate >= limit)
    return "immediate (" + number_text(immediate) + ") must be below the limit (below " + number_text(limit) +
           "): it is the tighter tier that fires with no delay";
  if (dir == direction::above && immediate <= limit)
    return "immediate (" + number_text(immediate) + ") must be above the limit (above " + number_text(limit) +
           "): it is the tighter tier that fires with no delay";
  return std::nullopt;
}

// A key and its value in a YAML map.
struct entry {
  std::string key;
  YAML::Node key_node;
  YAML::Node value;
};

const entry* find(const std::vector<entry>& es, std::string_view key) {
  for (const auto& e : es)
    if (e.key == key) return &e;
  return nullptr;
}

class rules_parser {
public:
  rules_load run(std::string_view text);

private:
  void problem(const YAML::Mark& at, std::string message) {
    problems_.push_back({at.line >= 0 ? at.line + 1 : 0, at.column >= 0 ? at.column + 1 : 0, std::move(message)});
  }
  static std::string in(const std::string& ctx, const std::string& message) {
    return ctx.empty() ? message : ctx + ": " + message;
  }
  // Where a value is: its own mark, or its key's when there is no value to point at.
  static YAML::Mark value_mark(const entry& e) {
    return e.value.IsDefined() && !e.value.IsNull() ? e.value.Mark() : e.key_node.Mark();
  }

  std::vector<entry> entries(const YAML::Node& map, const std::string& ctx);
  void check_duplicates(const std::vector<entry>& es, const std::string& ctx);
  void check_keys(const std::vector<entry>& es, const words& allowed, const std::string& ctx,
                  const std::string& takes);

  const YAML::Node* scalar(const entry& e, const std::string& ctx, std::string_view expected);
  std::optional<std::string> text(const entry& e, const std::string& ctx);
  std::optional<double> number(const entry& e, const std::string& ctx, std::string_view unit_hint = {});
  std::optional<bool> boolean(const entry& e, const std::string& ctx);
  std::optional<epoch_ms> duration(const entry& e, const std::string& ctx, bool zero_ok);
  std::optional<metric> metric_of(const entry& e, const std::string& ctx);
  template <class T>
  std::optional<T> word(const entry& e, const std::string& ctx, const words& allowed,
                        std::optional<T> (*from)(std::string_view) noexcept, std::string_view what);
  bool in_range(metric m, double v, const entry& e, const std::string& ctx, const std::string& what);
  void check_limit(metric m, direction dir, double limit, const entry& e, const std::string& ctx);

  bool version(const entry& e);
  void staleness(const entry& e);
  void rules(const entry& e);
  std::optional<rule> one_rule(const YAML::Node& n, std::size_t index);
  void threshold_fields(rule& r, const std::vector<entry>& es, const YAML::Node& n, const std::string& ctx);
  void device_kinds(rule& r, const entry& e, const std::string& ctx);
  void rate_fields(rule& r, const std::vector<entry>& es, const YAML::Node& n, const std::string& ctx);
  void overrides(const entry& e);
  std::optional<patient_override> one_override(const YAML::Node& n, std::size_t index);
  void override_limits(patient_override& o, const entry& rule_entry, const std::string& ctx);
  void policies(const entry& e);
  std::optional<escalation_policy> one_policy(const YAML::Node& n, std::size_t index);
  std::optional<escalation_level> one_level(const YAML::Node& n, std::size_t index, const std::string& ctx);
  std::optional<unsigned> count(const entry& e, const std::string& ctx, unsigned max);
  void routes(const entry& e);
  struct parsed_route {
    escalation_route route;
    YAML::Mark at;
    bool is_map = false;
    bool has_match = false;
    bool ok = false;  // no problems of its own
  };
  parsed_route one_route(const YAML::Node& n, std::size_t index);

  std::vector<rules_problem> problems_;
  rule_set set_;
  struct seen_rule {
    int line = 0;
    std::optional<rule> parsed;  // empty when the rule has problems of its own
  };
  std::map<std::string, seen_rule, std::less<>> rules_seen_;
  std::map<std::string, int, std::less<>> patients_seen_;
  escalation_config escalation_;
  std::map<std::string, int, std::less<>> policies_seen_;  // id -> line, also of policies with problems
};

std::vector<entry> rules_parser::entries(const YAML::Node& map, const std::string& ctx) {
  std::vector<entry> out;
  for (auto it = map.begin(); it != map.end(); ++it) {
    if (!it->first.IsScalar()) {
      problem(it->first.Mark(), in(ctx, "a key must be a plain name, not " + describe(it->first)));
      continue;
    }
    out.push_back({it->first.Scalar(), it->first, it->second});
  }
  return out;
}

void rules_parser::check_duplicates(const std::vector<entry>& es, const std::string& ctx) {
  std::map<std::string_view, const entry*> first;
  for (const auto& e : es) {
    auto [it, fresh] = first.try_emplace(e.key, &e);
    if (!fresh)
      problem(e.key_node.Mark(), in(ctx, quoted(e.key) + " appears twice (first at line " +
                                             std::to_string(it->second->key_node.Mark().line + 1) + "): keep one"));
  }
}

void rules_parser::check_keys(const std::vector<entry>& es, const words& allowed, const std::string& ctx,
                              const std::string& takes) {
  for (const auto& e : es) {
    if (contains(allowed, e.key)) continue;
    problem(e.key_node.Mark(),
            in(ctx, "unknown key " + quoted(e.key) + suggestion(e.key, allowed) + "; " + takes + " " +
                        join(allowed, " and ")));
  }
}

const YAML::Node* rules_parser::scalar(const entry& e, const std::string& ctx, std::string_view expected) {
  if (e.value.IsScalar()) return &e.value;
  const std::string got = e.value.IsDefined() && !e.value.IsNull() ? "got " + describe(e.value) : "it has no value";
  problem(value_mark(e), in(ctx, e.key + " must be " + std::string{expected} + ", " + got));
  return nullptr;
}

std::optional<std::string> rules_parser::text(const entry& e, const std::string& ctx) {
  if (auto* v = scalar(e, ctx, "text")) return v->Scalar();
  return std::nullopt;
}

std::optional<double> rules_parser::number(const entry& e, const std::string& ctx, std::string_view unit_hint) {
  const std::string expected = unit_hint.empty() ? "a number" : "a number (" + std::string{unit_hint} + ")";
  auto* v = scalar(e, ctx, expected);
  if (!v) return std::nullopt;
  auto n = parse_number(v->Scalar());
  if (!n) problem(v->Mark(), in(ctx, e.key + " must be " + expected + ", got " + quoted(v->Scalar())));
  return n;
}

std::optional<bool> rules_parser::boolean(const entry& e, const std::string& ctx) {
  auto* v = scalar(e, ctx, "true or false");
  if (!v) return std::nullopt;
  // Only true/false: YAML 1.1's yes/no/on/off are easy to misread in a clinical file.
  if (v->Scalar() == "true") return true;
  if (v->Scalar() == "false") return false;
  problem(v->Mark(), in(ctx, e.key + " must be true or false, got " + quoted(v->Scalar())));
  return std::nullopt;
}

std::optional<epoch_ms> rules_parser::duration(const entry& e, const std::string& ctx, bool zero_ok) {
  auto* v = scalar(e, ctx, "a duration such as 20s, 15m or 1h");
  if (!v) return std::nullopt;
  auto d = parse_duration(v->Scalar());
  if (!d.error.empty()) {
    problem(v->Mark(), in(ctx, e.key + " " + d.error));
    return std::nullopt;
  }
  if (d.ms == 0 && !zero_ok) {
    problem(v->Mark(), in(ctx, e.key + " must be longer than 0"));
    return std::nullopt;
  }
  return d.ms;
}

std::optional<metric> rules_parser::metric_of(const entry& e, const std::string& ctx) {
  auto s = text(e, ctx);
  if (!s) return std::nullopt;
  if (auto m = metric_from_name(*s)) return m;
  const auto all = metric_words();
  problem(value_mark(e), in(ctx, "unknown metric " + quoted(*s) + suggestion(*s, all) + "; the metrics are " + join(all, " and ")));
  return std::nullopt;
}

template <class T>
std::optional<T> rules_parser::word(const entry& e, const std::string& ctx, const words& allowed,
                                    std::optional<T> (*from)(std::string_view) noexcept, std::string_view what) {
  auto s = text(e, ctx);
  if (!s) return std::nullopt;
  if (contains(allowed, *s))
    if (auto v = from(*s)) return v;
  problem(value_mark(e), in(ctx, "unknown " + std::string{what} + " " + quoted(*s) + suggestion(*s, allowed) +
                                     "; it is one of " + join(allowed)));
  return std::nullopt;
}

bool rules_parser::in_range(metric m, double v, const entry& e, const std::string& ctx, const std::string& what) {
  const auto& mi = info(m);
  if (v >= mi.min && v <= mi.max) return true;
  problem(value_mark(e), in(ctx, what + " (" + number_text(v) + ") is outside what " + std::string{mi.name} +
                                     " can measure (" + range_text(m) + ")"));
  return false;
}

// A limit must be measurable and reachable: "below 0" on a metric that cannot go under 0
// would never fire.
void rules_parser::check_limit(metric m, direction dir, double limit, const entry& e, const std::string& ctx) {
  const auto& mi = info(m);
  if (!in_range(m, limit, e, ctx, e.key)) return;
  if (dir == direction::below && limit <= mi.min)
    problem(value_mark(e), in(ctx, "below " + number_text(limit) + " can never fire: " + std::string{mi.name} +
                                       " is never below " + number_text(mi.min) + " " + std::string{mi.unit}));
  if (dir == direction::above && limit >= mi.max)
    problem(value_mark(e), in(ctx, "above " + number_text(limit) + " can never fire: " + std::string{mi.name} +
                                       " is never above " + number_text(mi.max) + " " + std::string{mi.unit}));
}

bool rules_parser::version(const entry& e) {
  auto* v = scalar(e, "", "1");
  if (!v) return true;
  auto n = parse_number(v->Scalar());
  if (!n) {
    problem(v->Mark(), "version must be 1, got " + quoted(v->Scalar()));
    return true;
  }
  if (*n == 1) return true;
  // A file written for another format version would only produce noise: stop here.
  problem(v->Mark(), "version " + v->Scalar() + " is not supported: this alertd reads version 1 (the rest of the file "
                     "was not checked)");
  return false;
}

void rules_parser::staleness(const entry& e) {
  const std::string ctx = "staleness";
  if (!e.value.IsMap()) {
    problem(value_mark(e), "staleness must be a map of parameter: duration (e.g. spo2: 15m), got " +
                               (e.value.IsNull() ? std::string{"nothing"} : describe(e.value)));
    return;
  }
  auto es = entries(e.value, ctx);
  check_duplicates(es, ctx);
  words names;
  for (const auto& f : staleness_fields) names.push_back(f.name);
  check_keys(es, names, ctx, "the NEWS2 and qSOFA parameters are");
  for (const auto& f : staleness_fields)
    if (auto* s = find(es, f.name))
      if (auto d = duration(*s, ctx, false)) set_.staleness.*f.member = *d;
}

void rules_parser::rules(const entry& e) {
  if (!e.value.IsSequence()) {
    problem(value_mark(e), "rules must be a list of rules, each starting with '- id:', got " +
                               (e.value.IsNull() ? std::string{"nothing"} : describe(e.value)));
    return;
  }
  std::size_t index = 0;
  for (const auto& n : e.value)
    if (auto r = one_rule(n, index++)) set_.rules.push_back(std::move(*r));
}

std::optional<rule> rules_parser::one_rule(const YAML::Node& n, std::size_t index) {
  std::string ctx = "rule #" + std::to_string(index + 1);
  if (!n.IsMap()) {
    problem(n.Mark(), ctx + " must be a map of keys (id: ..., kind: ...), got " + describe(n));
    return std::nullopt;
  }
  const auto problems_before = problems_.size();
  const auto es = entries(n, ctx);
  rule r;
  seen_rule* registered = nullptr;
  if (auto* e = find(es, "id")) {
    if (auto id = text(*e, ctx)) {
      if (!valid_rule_id(*id)) {
        problem(value_mark(*e), ctx + ": id " + quoted(*id) +
                                    " must be 1 to 64 lowercase letters, digits or underscores, e.g. spo2_low");
      } else {
        ctx = "rule " + quoted(*id);
        r.id = *id;
        const int line = e->value.Mark().line + 1;
        auto [it, fresh] = rules_seen_.try_emplace(*id, seen_rule{line, std::nullopt});
        if (fresh)
          registered = &it->second;
        else
          problem(value_mark(*e), ctx + ": the id is already used by the rule at line " +
                                      std::to_string(it->second.line) + "; rule ids must be unique");
      }
    }
  } else {
    problem(n.Mark(), ctx + " has no id: add one, e.g. id: spo2_low");
  }
  check_duplicates(es, ctx);

  std::optional<rule_kind> kind;
  if (auto* e = find(es, "kind")) {
    kind = word<rule_kind>(*e, ctx, rule_kind_words, &rule_kind_from_string, "kind");
  } else {
    problem(n.Mark(), ctx + " has no kind: add kind: with one of " + join(rule_kind_words));
  }
  const auto& allowed = rule_words(kind);
  for (const auto& e : es) {
    if (contains(allowed, e.key)) continue;
    if (kind == rule_kind::news2 && e.key == "priority") {
      problem(e.key_node.Mark(), ctx + ": a news2 alert takes the priority of the band the score is in (low_medium: "
                                       "low, medium: medium, high: high), raised as the score rises; remove priority");
      continue;
    }
    if (kind && contains(rule_words(std::nullopt), e.key)) {
      problem(e.key_node.Mark(), ctx + ": " + quoted(e.key) + " does not apply to a " +
                                     std::string{to_string(*kind)} + " rule, which takes " + join(allowed, " and "));
      continue;
    }
    std::string hint;
    if ((!kind || *kind == rule_kind::threshold) && (edit_distance(e.key, "threshold") <= 2 || e.key == "limit"))
      hint = " (a threshold rule gives its limit as below: N or above: N)";
    else
      hint = suggestion(e.key, allowed);
    problem(e.key_node.Mark(), ctx + ": unknown key " + quoted(e.key) + hint + "; " +
                                   (kind ? "a " + std::string{to_string(*kind)} + " rule" : std::string{"a rule"}) +
                                   " takes " + join(allowed, " and "));
  }

  if (auto* e = find(es, "priority"); e && contains(allowed, "priority"))
    if (auto p = word<alert_priority>(*e, ctx, priority_words, &priority_from_string, "priority")) r.priority = *p;
  std::optional<alert_kind> kind_of_alert;
  if (auto* e = find(es, "alert"))
    kind_of_alert = word<alert_kind>(*e, ctx, alert_kind_words, &alert_kind_from_string, "alert kind");
  if (auto* e = find(es, "latching"))
    if (auto b = boolean(*e, ctx)) r.latching = *b;
  if (auto* e = find(es, "description"))
    if (auto s = text(*e, ctx)) r.description = *s;
  if (auto* e = find(es, "for"); e && contains(allowed, "for"))
    if (auto d = duration(*e, ctx, true)) r.for_ms = *d;
  if (auto* e = find(es, "clear_for"); e && contains(allowed, "clear_for"))
    if (auto d = duration(*e, ctx, true)) r.clear_for_ms = *d;

  if (kind) {
    r.kind = *kind;
    switch (*kind) {
      case rule_kind::threshold: threshold_fields(r, es, n, ctx); break;
      case rule_kind::rate: rate_fields(r, es, n, ctx); break;
      case rule_kind::no_data:
        if (auto* e = find(es, "after")) {
          if (auto d = duration(*e, ctx, false)) r.ttl_ms = *d;
        } else {
          problem(n.Mark(), ctx + ": a no_data rule needs after: the silence that raises it, e.g. after: 2m");
        }
        if (auto* e = find(es, "devices")) device_kinds(r, *e, ctx);
        break;
      case rule_kind::news2:
        if (auto* e = find(es, "min_band")) {
          if (auto b = word<news2_band>(*e, ctx, band_words, &news2_band_from_string, "NEWS2 band")) {
            r.min_band = *b;
            // What the alert opens with; the engine raises it with the band.
            r.priority = *b == news2_band::high     ? alert_priority::high
                         : *b == news2_band::medium ? alert_priority::medium
                                                    : alert_priority::low;
          }
        } else {
          problem(n.Mark(), ctx + ": a news2 rule needs min_band: " + join(band_words));
        }
        break;
      case rule_kind::qsofa: break;
    }
  }
  // Technical metrics and silent devices concern equipment (IEC 60601-1-8 technical alarms).
  const bool technical =
      r.kind == rule_kind::no_data ||
      ((r.kind == rule_kind::threshold || r.kind == rule_kind::rate) && info(r.what).kind == metric_kind::technical);
  r.kind_of_alert = kind_of_alert ? *kind_of_alert : technical ? alert_kind::technical : alert_kind::physiological;

  if (problems_.size() != problems_before) return std::nullopt;
  if (registered) registered->parsed = r;
  return r;
}

void rules_parser::device_kinds(rule& r, const entry& e, const std::string& ctx) {
  static const words kinds{"oximeter", "bp_cuff", "monitor", "oxygen", "unknown"};
  if (!e.value.IsSequence() || e.value.size() == 0) {
    problem(value_mark(e), ctx + ": devices must be a list of device kinds: " + join(kinds));
    return;
  }
  for (const auto& item : e.value) {
    auto k = item.IsScalar() ? device_kind_from_string(item.Scalar()) : std::nullopt;
    if (!k) {
      problem(item.Mark(), ctx + ": " + (item.IsScalar() ? quoted(item.Scalar()) : std::string{"this"}) +
                               " is not a device kind; devices takes " + join(kinds));
      continue;
    }
    r.device_kinds.push_back(*k);
  }
}

void rules_parser::threshold_fields(rule& r, const std::vector<entry>& es, const YAML::Node& n,
                                    const std::string& ctx) {
  std::optional<metric> m;
  if (auto* e = find(es, "metric"))
    m = metric_of(*e, ctx);
  else
    problem(n.Mark(), ctx + ": a threshold rule needs metric: the vital sign or device value it watches");
  if (m) r.what = *m;
  const std::string hint = m ? std::string{info(*m).name} + " in " + std::string{info(*m).unit} : std::string{};

  const entry* below = find(es, "below");
  const entry* above = find(es, "above");
  std::optional<double> value;
  if (below && above) {
    const entry* second = below->key_node.Mark().pos > above->key_node.Mark().pos ? below : above;
    problem(second->key_node.Mark(), ctx + ": a threshold rule has one limit, below or above, not both: make a "
                                           "second rule for the other side");
  } else if (!below && !above) {
    problem(n.Mark(), ctx + ": a threshold rule needs its limit: below: N or above: N");
  } else {
    const entry* limit = below ? below : above;
    r.dir = below ? direction::below : direction::above;
    value = number(*limit, ctx, hint);
    if (value) {
      r.threshold = *value;
      if (m) check_limit(*m, r.dir, *value, *limit, ctx);
    }
  }
  if (auto* e = find(es, "clear"))
    if (auto c = number(*e, ctx, hint)) {
      r.clear = *c;
      if (m && in_range(*m, *c, *e, ctx, "clear") && value)
        if (auto why = clear_problem(r.dir, *value, *c)) problem(value_mark(*e), ctx + ": " + *why);
    }
  if (auto* e = find(es, "immediate"))
    if (auto i = number(*e, ctx, hint)) {
      r.immediate = *i;
      if (m && in_range(*m, *i, *e, ctx, "immediate") && value)
        if (auto why = immediate_problem(r.dir, *value, *i)) problem(value_mark(*e), ctx + ": " + *why);
    }
}

void rules_parser::rate_fields(rule& r, const std::vector<entry>& es, const YAML::Node& n, const std::string& ctx) {
  std::optional<metric> m;
  if (auto* e = find(es, "metric"))
    m = metric_of(*e, ctx);
  else
    problem(n.Mark(), ctx + ": a rate rule needs metric: the vital sign or device value it watches");
  if (m) r.what = *m;

  const entry* falls = find(es, "falls_by");
  const entry* rises = find(es, "rises_by");
  if (falls && rises) {
    const entry* second = falls->key_node.Mark().pos > rises->key_node.Mark().pos ? falls : rises;
    problem(second->key_node.Mark(), ctx + ": a rate rule watches one direction, falls_by or rises_by, not both: "
                                           "make a second rule for the other");
  } else if (!falls && !rises) {
    problem(n.Mark(), ctx + ": a rate rule needs the change: falls_by: N or rises_by: N");
  } else {
    const entry* change = falls ? falls : rises;
    r.dir = falls ? direction::below : direction::above;
    const std::string hint = m ? std::string{info(*m).unit} + " of " + std::string{info(*m).name} : std::string{};
    if (auto c = number(*change, ctx, hint)) {
      r.change = *c;
      if (*c <= 0) {
        problem(value_mark(*change), ctx + ": " + change->key + " must be more than 0 (" +
                                         (falls ? "falls_by: 30 means a fall of more than 30" : "rises_by: 30 means a rise of more than 30") + ")");
      } else if (m && *c >= info(*m).max - info(*m).min) {
        problem(value_mark(*change), ctx + ": " + change->key + " (" + number_text(*c) + ") can never happen: " +
                                         std::string{info(*m).name} + " can only be measured from " + range_text(*m));
      }
    }
  }
  if (auto* e = find(es, "within")) {
    if (auto d = duration(*e, ctx, false)) r.window_ms = *d;
  } else {
    problem(n.Mark(), ctx + ": a rate rule needs within: the window the change happens in, e.g. within: 10m");
  }
}

void rules_parser::overrides(const entry& e) {
  if (!e.value.IsSequence()) {
    problem(value_mark(e), "overrides must be a list, each item starting with '- patient:', got " +
                               (e.value.IsNull() ? std::string{"nothing"} : describe(e.value)));
    return;
  }
  std::size_t index = 0;
  for (const auto& n : e.value)
    if (auto o = one_override(n, index++)) set_.overrides.push_back(std::move(*o));
}

std::optional<patient_override> rules_parser::one_override(const YAML::Node& n, std::size_t index) {
  std::string ctx = "override #" + std::to_string(index + 1);
  if (!n.IsMap()) {
    problem(n.Mark(), ctx + " must be a map (patient: ..., rules: ...), got " + describe(n));
    return std::nullopt;
  }
  const auto problems_before = problems_.size();
  const auto es = entries(n, ctx);
  patient_override o;
  if (auto* e = find(es, "patient")) {
    if (auto p = text(*e, ctx)) {
      if (auto st = validate_id(*p, "patient id"); !st) {
        problem(value_mark(*e), ctx + ": " + st.message());
      } else {
        ctx = "override for patient " + quoted(*p);
        o.patient = *p;
        auto [it, fresh] = patients_seen_.try_emplace(*p, e->value.Mark().line + 1);
        if (!fresh)
          problem(value_mark(*e), ctx + ": the patient already has overrides at line " + std::to_string(it->second) +
                                      "; put them in one entry");
      }
    }
  } else {
    problem(n.Mark(), ctx + " has no patient: add patient: with the patient's id");
  }
  check_duplicates(es, ctx);
  check_keys(es, override_words, ctx, "an override takes");
  if (auto* e = find(es, "spo2_scale2"))
    if (auto b = boolean(*e, ctx)) o.spo2_scale2 = *b;
  if (auto* e = find(es, "rules")) {
    if (!e->value.IsMap()) {
      problem(value_mark(*e), ctx + ": rules must be a map of rule id: limits, e.g. spo2_low: {below: 85, clear: 87}, "
                                    "got " + (e->value.IsNull() ? std::string{"nothing"} : describe(e->value)));
    } else {
      auto limits = entries(e->value, ctx);
      check_duplicates(limits, ctx);
      for (const auto& l : limits) override_limits(o, l, ctx);
    }
  }
  if (problems_.size() != problems_before) return std::nullopt;
  return o;
}

void rules_parser::override_limits(patient_override& o, const entry& rule_entry, const std::string& ctx) {
  const auto& id = rule_entry.key;
  auto seen = rules_seen_.find(id);
  if (seen == rules_seen_.end()) {
    words ids;
    for (const auto& kv : rules_seen_) ids.push_back(kv.first);
    problem(rule_entry.key_node.Mark(), ctx + ": unknown rule " + quoted(id) + suggestion(id, ids) +
                                            "; an override names a rule defined under rules");
    return;
  }
  const std::string rctx = ctx + ", rule " + quoted(id);
  if (!rule_entry.value.IsMap()) {
    problem(value_mark(rule_entry), rctx + " must be a map such as {below: 85, clear: 87}, got " +
                                        (rule_entry.value.IsNull() ? std::string{"nothing"} : describe(rule_entry.value)));
    return;
  }
  const auto es = entries(rule_entry.value, rctx);
  check_duplicates(es, rctx);
  // The rule's own problems are reported where it is defined.
  if (!seen->second.parsed) return;
  const rule& base = *seen->second.parsed;
  if (base.kind != rule_kind::threshold) {
    problem(rule_entry.key_node.Mark(), ctx + ": rule " + quoted(id) + " is a " + std::string{to_string(base.kind)} +
                                            " rule; only threshold rules have limits a patient override can change");
    return;
  }
  const std::string side{to_string(base.dir)};
  const words allowed{side, "clear"};
  check_keys(es, allowed, rctx, "an override of a '" + side + "' rule takes");
  const std::string hint = std::string{info(base.what).name} + " in " + std::string{info(base.what).unit};
  rule eff = base;
  const entry* limit_entry = find(es, side);
  const entry* clear_entry = find(es, "clear");
  if (!limit_entry && !clear_entry) {
    problem(value_mark(rule_entry), rctx + ": the override changes nothing: give " + side + ": N, clear: N or both");
    return;
  }
  if (limit_entry)
    if (auto v = number(*limit_entry, rctx, hint)) {
      eff.threshold = *v;
      o.thresholds[id] = *v;
      check_limit(base.what, base.dir, *v, *limit_entry, rctx);
    }
  if (clear_entry)
    if (auto v = number(*clear_entry, rctx, hint)) {
      eff.clear = *v;
      o.clears[id] = *v;
      in_range(base.what, *v, *clear_entry, rctx, "clear");
    }
  // The patient's rule as evaluated: the rule's clear and immediate tier with the new limit.
  const entry& at = clear_entry ? *clear_entry : *limit_entry;
  if (eff.clear)
    if (auto why = clear_problem(eff.dir, eff.threshold, *eff.clear))
      problem(value_mark(at), rctx + ": " + *why + (clear_entry ? "" : " (the rule's clear; override clear too)"));
  if (eff.immediate && limit_entry)
    if (auto why = immediate_problem(eff.dir, eff.threshold, *eff.immediate))
      problem(value_mark(*limit_entry), rctx + ": the rule's " + *why + "; choose a limit less tight than it");
}

void rules_parser::policies(const entry& e) {
  if (!e.value.IsSequence()) {
    problem(value_mark(e), "policies must be a list of escalation policies, each starting with '- id:', got " +
                               describe_sized(e.value));
    return;
  }
  std::size_t index = 0;
  for (const auto& n : e.value)
    if (auto p = one_policy(n, index++)) escalation_.policies.push_back(std::move(*p));
}

std::optional<escalation_policy> rules_parser::one_policy(const YAML::Node& n, std::size_t index) {
  std::string ctx = "policy #" + std::to_string(index + 1);
  if (!n.IsMap()) {
    problem(n.Mark(), ctx + " must be a map of keys (id: ..., levels: ...), got " + describe(n));
    return std::nullopt;
  }
  const auto problems_before = problems_.size();
  const auto es = entries(n, ctx);
  escalation_policy p;
  if (auto* e = find(es, "id")) {
    if (auto id = text(*e, ctx)) {
      if (!valid_rule_id(*id)) {
        problem(value_mark(*e), ctx + ": id " + quoted(*id) +
                                    " must be 1 to 64 lowercase letters, digits or underscores, e.g. ward");
      } else {
        ctx = "policy " + quoted(*id);
        p.id = *id;
        auto [it, fresh] = policies_seen_.try_emplace(*id, e->value.Mark().line + 1);
        if (!fresh)
          problem(value_mark(*e), ctx + ": the id is already used by the policy at line " +
                                      std::to_string(it->second) + "; policy ids must be unique");
      }
    }
  } else {
    problem(n.Mark(), ctx + " has no id: add one, e.g. id: ward");
  }
  check_duplicates(es, ctx);
  check_keys(es, policy_words, ctx, "a policy takes");

  if (auto* e = find(es, "levels")) {
    if (!e->value.IsSequence() || e->value.size() == 0) {
      problem(value_mark(*e), ctx + ": levels must be a list of at least one level, each starting with '- targets:', "
                                    "got " + describe_sized(e->value));
    } else {
      std::size_t i = 0;
      for (const auto& l : e->value)
        if (auto lv = one_level(l, i++, ctx)) p.levels.push_back(std::move(*lv));
    }
  } else {
    problem(n.Mark(), ctx + " has no levels: add levels: with at least one level (targets and timeout); the last "
                            "level is paged again until someone answers");
  }
  if (auto* e = find(es, "repeat"))
    if (auto r = count(*e, ctx, max_repeat)) p.repeat = *r;
  if (auto* e = find(es, "ack_timeout"))
    if (auto d = duration(*e, ctx, true)) {
      if (*d == 0)
        problem(value_mark(*e), ctx + ": ack_timeout must be longer than 0; leave it out when an acknowledgement "
                                      "ends paging for good");
      else
        p.ack_timeout_ms = *d;
    }
  const entry* redeliver = find(es, "redeliver");
  const entry* redeliver_max = find(es, "redeliver_max");
  std::optional<epoch_ms> first, most;
  if (redeliver)
    if ((first = duration(*redeliver, ctx, false))) p.redeliver_ms = *first;
  if (redeliver_max)
    if ((most = duration(*redeliver_max, ctx, false))) p.redeliver_max_ms = *most;
  if ((!redeliver || first) && (!redeliver_max || most) && p.redeliver_max_ms < p.redeliver_ms) {
    const entry& at = redeliver_max ? *redeliver_max : *redeliver;
    problem(value_mark(at), ctx + ": redeliver_max (" + duration_text(p.redeliver_max_ms) +
                                (redeliver_max ? "" : ", the default") + ") is shorter than redeliver (" +
                                duration_text(p.redeliver_ms) + "): the wait for a receipt starts at redeliver and "
                                "doubles up to redeliver_max" + (redeliver_max ? "" : "; set redeliver_max too"));
  }
  if (problems_.size() != problems_before) return std::nullopt;
  return p;
}

std::optional<escalation_level> rules_parser::one_level(const YAML::Node& n, std::size_t index,
                                                        const std::string& policy_ctx) {
  const std::string ctx = policy_ctx + ", level " + std::to_string(index + 1);
  if (!n.IsMap()) {
    problem(n.Mark(), ctx + " must be a map (targets: [...], timeout: ...), got " + describe(n));
    return std::nullopt;
  }
  const auto problems_before = problems_.size();
  const auto es = entries(n, ctx);
  check_duplicates(es, ctx);
  check_keys(es, level_words, ctx, "a level takes");
  escalation_level lv;
  if (auto* e = find(es, "targets")) {
    if (!e->value.IsSequence() || e->value.size() == 0) {
      problem(value_mark(*e), ctx + ": targets must be a list of at least one pager target, e.g. targets: "
                                    "[ward3-nurse], got " + describe_sized(e->value));
    } else {
      for (const auto& t : e->value) {
        if (!t.IsScalar()) {
          problem(t.Mark(), ctx + ": a target must be a name such as ward3-nurse, got " + describe(t));
          continue;
        }
        const auto& name = t.Scalar();
        if (auto why = pager_name_problem(name)) {
          problem(t.Mark(), ctx + ": target " + quoted(name) + " " + *why);
          continue;
        }
        if (std::find(lv.targets.begin(), lv.targets.end(), name) != lv.targets.end()) {
          problem(t.Mark(), ctx + ": target " + quoted(name) + " is listed twice; a level pages each target once");
          continue;
        }
        lv.targets.push_back(name);
      }
    }
  } else {
    problem(n.Mark(), ctx + " has no targets: add targets: with the pager targets this level pages, e.g. targets: "
                            "[ward3-nurse]");
  }
  if (auto* e = find(es, "timeout")) {
    if (auto d = duration(*e, ctx, false)) lv.timeout_ms = *d;
  } else {
    problem(n.Mark(), ctx + " has no timeout: add timeout: how long its targets have to accept before the next "
                            "level is paged, e.g. timeout: 2m");
  }
  if (problems_.size() != problems_before) return std::nullopt;
  return lv;
}

std::optional<unsigned> rules_parser::count(const entry& e, const std::string& ctx, unsigned max) {
  auto* v = scalar(e, ctx, "a whole number");
  if (!v) return std::nullopt;
  auto n = parse_number(v->Scalar());
  if (!n || *n < 0 || *n != std::floor(*n)) {
    problem(v->Mark(), in(ctx, e.key + " must be a whole number, 0 or more, got " + quoted(v->Scalar())));
    return std::nullopt;
  }
  if (*n > max) {
    problem(v->Mark(), in(ctx, e.key + " (" + v->Scalar() + ") is more than " + std::to_string(max)));
    return std::nullopt;
  }
  return static_cast<unsigned>(*n);
}

void rules_parser::routes(const entry& e) {
  if (!e.value.IsSequence()) {
    problem(value_mark(e), "routes must be a list of routes, each with policy: and all but the last with match:, "
                           "got " + describe_sized(e.value));
    return;
  }
  std::vector<parsed_route> all;
  std::size_t index = 0;
  for (const auto& n : e.value) all.push_back(one_route(n, index++));
  // The routes are tried in order: one with no match takes every alert that gets to it.
  for (std::size_t i = 0; i + 1 < all.size(); ++i)
    if (all[i].is_map && !all[i].has_match)
      problem(all[i].at, "route #" + std::to_string(i + 1) + " has no match, so it takes every alert and the routes "
                         "after it (from line " + std::to_string(all[i + 1].at.line + 1) + ") are never used: give "
                         "it a match, or make it the last route");
  if (!all.empty() && all.back().is_map && all.back().has_match)
    problem(all.back().at, "route #" + std::to_string(all.size()) + " is the last route and has a match: the last "
                           "route must have none, so that every alert reaches a policy; add a catch-all such as "
                           "'- policy: ward' at the end");
  for (auto& r : all)
    if (r.ok) escalation_.routes.push_back(std::move(r.route));
}

rules_parser::parsed_route rules_parser::one_route(const YAML::Node& n, std::size_t index) {
  parsed_route out;
  out.at = n.Mark();
  const std::string ctx = "route #" + std::to_string(index + 1);
  if (!n.IsMap()) {
    problem(n.Mark(), ctx + " must be a map (match: {...}, policy: ...), got " + describe(n));
    return out;
  }
  out.is_map = true;
  const auto problems_before = problems_.size();
  const auto es = entries(n, ctx);
  check_duplicates(es, ctx);
  check_keys(es, route_words, ctx, "a route takes");
  if (auto* e = find(es, "policy")) {
    if (auto id = text(*e, ctx)) {
      if (policies_seen_.count(*id) == 0) {
        words ids;
        for (const auto& kv : policies_seen_) ids.push_back(kv.first);
        problem(value_mark(*e), ctx + ": unknown policy " + quoted(*id) + suggestion(*id, ids) +
                                    "; a route names a policy defined under policies" +
                                    (ids.empty() ? std::string{" (there are none)"} : " (" + join(ids, ", ") + ")"));
      } else {
        out.route.policy = *id;
      }
    }
  } else {
    problem(n.Mark(), ctx + " has no policy: add policy: with the id of the policy that pages for its alerts");
  }
  if (auto* e = find(es, "match")) {
    out.has_match = true;
    if (!e->value.IsMap() || e->value.size() == 0) {
      problem(value_mark(*e), ctx + ": match must be a map of one or more of priority, kind, rule and "
                                    "patient_prefix, e.g. match: {priority: high}, got " + describe_sized(e->value) +
                                    (e->value.IsMap() ? "; leave match out for the catch-all" : ""));
    } else {
      const std::string mctx = ctx + ", match";
      const auto ms = entries(e->value, mctx);
      check_duplicates(ms, mctx);
      check_keys(ms, match_words, mctx, "match takes");
      if (auto* m = find(ms, "priority"))
        out.route.priority = word<alert_priority>(*m, mctx, priority_words, &priority_from_string, "priority");
      if (auto* m = find(ms, "kind"))
        out.route.kind = word<alert_kind>(*m, mctx, alert_kind_words, &alert_kind_from_string, "alert kind");
      if (auto* m = find(ms, "rule"))
        if (auto id = text(*m, mctx)) {
          if (rules_seen_.count(*id) == 0) {
            words ids;
            for (const auto& kv : rules_seen_) ids.push_back(kv.first);
            problem(value_mark(*m), mctx + ": unknown rule " + quoted(*id) + suggestion(*id, ids) +
                                        "; match: rule names a rule defined under rules");
          } else {
            out.route.rule = *id;
          }
        }
      if (auto* m = find(ms, "patient_prefix"))
        if (auto prefix = text(*m, mctx)) {
          if (auto st = validate_id(*prefix, "patient_prefix"); !st)
            problem(value_mark(*m), mctx + ": " + st.message() + "; it is the start of the patient ids it matches, "
                                           "e.g. W3-");
          else
            out.route.patient_prefix = *prefix;
        }
    }
  }
  out.ok = problems_.size() == problems_before;
  return out;
}

rules_load rules_parser::run(std::string_view text) {
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(std::string{text});
  } catch (const YAML::Exception& e) {
    problem(e.mark, "YAML syntax: " + e.msg + syntax_hint(e.msg));
  }
  if (problems_.empty()) {
    if (docs.empty() || docs[0].IsNull()) {
      problem(YAML::Mark::null_mark(), "the rules file is empty: it needs at least 'version: 1' and a 'rules:' list");
    } else if (!docs[0].IsMap()) {
      problem(docs[0].Mark(), "the rules file must be a map with version, rules and optionally staleness, "
                              "overrides, policies and routes, got " + describe(docs[0]));
    } else {
      if (docs.size() > 1)
        problem(docs[1].Mark(), "the file holds more than one YAML document (a second '---'): put everything in one");
      const auto& root = docs[0];
      const auto es = entries(root, "");
      check_duplicates(es, "");
      for (const auto& e : es) {
        if (contains(top_level_words, e.key)) continue;
        problem(e.key_node.Mark(), "unknown top-level key " + quoted(e.key) + suggestion(e.key, top_level_words) +
                                       "; a rules file has " + join(top_level_words, " and "));
      }
      bool go_on = true;
      if (auto* e = find(es, "version"))
        go_on = version(*e);
      else
        problem(root.Mark(), "the file has no version: add 'version: 1' at the top");
      if (go_on) {
        if (auto* e = find(es, "staleness")) staleness(*e);
        if (auto* e = find(es, "rules"))
          rules(*e);
        else
          problem(root.Mark(), "the file has no rules: add a 'rules:' list");
        // After the rules: overrides name them, wherever they are in the file.
        if (auto* e = find(es, "overrides")) overrides(*e);
        // Policies before routes, which name them (and rules).
        const entry* pol = find(es, "policies");
        const entry* rts = find(es, "routes");
        if (pol) policies(*pol);
        if (rts) routes(*rts);
        const bool any_policy = pol && pol->value.IsSequence() && pol->value.size() > 0;
        const bool no_route = !rts || (rts->value.IsSequence() && rts->value.size() == 0);
        if (any_policy && no_route)
          problem(rts ? value_mark(*rts) : pol->key_node.Mark(),
                  std::string{rts ? "routes is empty" : "there are policies but no routes"} +
                      ": without routes no alert reaches a policy; add routes: ending in a catch-all such as "
                      "'- policy: " + (escalation_.policies.empty() ? std::string{"ward"} : escalation_.policies[0].id) +
                      "'");
      }
    }
  }
  rules_load out;
  std::stable_sort(problems_.begin(), problems_.end(), [](const rules_problem& a, const rules_problem& b) {
    return std::tie(a.line, a.column) < std::tie(b.line, b.column);
  });
  out.problems = std::move(problems_);
  if (out.problems.empty()) {
    out.rules = std::move(set_);
    out.escalation = std::move(escalation_);
  }
  return out;
}

}  // namespace

rules_load parse_rules(std::string_view yaml_text) {
  try {
    return rules_parser{}.run(yaml_text);
  } catch (const YAML::Exception& e) {
    rules_load out;
    out.problems.push_back({e.mark.line >= 0 ? e.mark.line + 1 : 0, e.mark.column >= 0 ? e.mark.column + 1 : 0,
                            "could not read the rules: " + e.msg});
    return out;
  } catch (const std::exception& e) {
    rules_load out;
    out.problems.push_back({0, 0, std::string{"could not read the rules: "} + e.what()});
    return out;
  }
}

rules_load load_rules_file(const std::string& path) {
  auto fail = [&](const std::string& why) {
    rules_load out;
    out.problems.push_back({0, 0, "cannot read rules file " + quoted(path) + ": " + why});
    return out;
  };
  std::ifstream in{path, std::ios::binary};
  if (!in) return fail(std::strerror(errno));
  std::string text;
  char buf[8192];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    text.append(buf, static_cast<std::size_t>(in.gcount()));
    if (text.size() > max_file_bytes) return fail("larger than 1 MiB; a rules file is a few kilobytes");
  }
  if (in.bad()) return fail("read error");
  return parse_rules(text);
}

std::string format_problems(const std::string& source_name, const std::vector<rules_problem>& problems) {
  std::string out;
  for (const auto& p : problems) {
    out += source_name;
    if (p.line > 0) {
      out += ":" + std::to_string(p.line);
      if (p.column > 0) out += ":" + std::to_string(p.column);
    }
    out += ": " + p.message + "\n";
  }
  return out;
}

}  // namespace alert::config
