#pragma once
// The rules file: a YAML document (docs/rules.md, "The rules file") that defines the rules a
// node evaluates, the NEWS2/qSOFA staleness limits, per-patient overrides, and the escalation
// policies and routes that say who is paged. Loading never throws and checks the whole file,
// so a person fixing it sees every problem at once.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/escalation.hpp"
#include "engine/rules.hpp"

namespace alert::config {

/// One thing wrong with a rules file, where it is and what to do about it.
struct rules_problem {
  int line = 0;    ///< 1-based line in the file; 0 when unknown (e.g. the file is unreadable)
  int column = 0;  ///< 1-based column; 0 when unknown
  std::string message;
};

/// The outcome of loading a rules file: what it defines when the file is valid, else the
/// problems. `rules` and `escalation` are both set or both empty.
struct rules_load {
  std::optional<rule_set> rules;        ///< empty when there is any problem
  /// The file's `policies:` and `routes:`; empty when there is any problem. A valid file with
  /// neither gives an escalation_config with no policies and no routes; otherwise its last
  /// route is a catch-all, so escalation_config::route finds a policy for every alert.
  /// (Not a member of rule_set: engine/escalation.hpp includes engine/rules.hpp.)
  std::optional<escalation_config> escalation;
  std::vector<rules_problem> problems;  ///< every problem found, ordered by line and column
};

/// Parses and validates the text of a rules file. Never throws; reports every problem it
/// finds (YAML syntax, unknown or misspelt keys, wrong types, values a rule cannot use,
/// escalation policies and routes that do not fit together); `rules` and `escalation` are
/// filled only when there is none.
[[nodiscard]] rules_load parse_rules(std::string_view yaml_text);

/// Reads the rules file at `path` and parses it. An unreadable or oversized file is one
/// problem at line 0 naming the path.
[[nodiscard]] rules_load load_rules_file(const std::string& path);

/// The problems as "FILE:LINE:COL: message" lines, one per problem, each ending in a newline
/// ("FILE: message" when the line is unknown, "FILE:LINE: message" when only the column is).
[[nodiscard]] std::string format_problems(const std::string& source_name, const std::vector<rules_problem>& problems);

/// The text of the default rules file shipped with alertd (config/rules/default.yaml),
/// embedded at build time.
[[nodiscard]] std::string_view default_rules_yaml() noexcept;

}  // namespace alert::config
