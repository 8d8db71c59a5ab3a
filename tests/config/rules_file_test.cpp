#include "config/rules_file.hpp"

#include <catch2/catch.hpp>

using namespace alert;
using namespace alert::config;

TEST_CASE("the default rules file parses with no problems") {
  auto load = parse_rules(default_rules_yaml());
  INFO(format_problems("default.yaml", load.problems));
  CHECK(load.problems.empty());
}
