#pragma once
// The rules file: a YAML document (docs/rules.md, "The rules file") that defines the rules a
// node evaluates, the NEWS2/qSOFA staleness limits and per-patient overrides. Loading never
// throws and checks the whole file, so a person fixing it sees every problem at once.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/rules.hpp"

namespace alert::config {

/// One thing wrong with a rules file, where it is and what to do about it.
struct rules_problem {
  int line = 0;    ///< 1-based line in the file; 0 when unknown (e.g. the file is unreadable)
  int column = 0;  ///< 1-based column; 0 when unknown
  std::string message;
};

/// The outcome of loading a rules file: the rules when the file is valid, else the problems.
struct rules_load {
  std::optional<rule_set> rules;        ///< empty when there is any problem
  std::vector<rules_problem> problems;  ///< every problem found, ordered by line and column
};

/// Parses and validates the text of a rules file. Never throws; reports every problem it
/// finds (YAML syntax, unknown or misspelt keys, wrong types, values a rule cannot use);
/// `rules` is filled only when there is none.
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
