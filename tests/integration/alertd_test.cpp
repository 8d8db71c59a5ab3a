// alertd as a process: rules checks and refusals that operators rely on.
#include <catch2/catch.hpp>
#include <fstream>

#include "tests/support/process.hpp"
#include "tests/support/temp_dir.hpp"

using namespace alert;

TEST_CASE("alertd --check-rules exits 0 on a good file and 2 on a bad one") {
  test::temp_dir dir;
  auto good = dir.sub("good.yaml");
  std::ofstream{good} << "version: 1\nrules:\n  - id: spo2_low\n    kind: threshold\n    metric: spo2\n    below: 88\n";
  test::process ok{ALERT_ALERTD_PATH, {"--check-rules", good}};
  CHECK(ok.wait_for_line(good + ": ok").has_value());
  CHECK(ok.wait() == 0);
  auto bad = dir.sub("bad.yaml");
  std::ofstream{bad} << "version: 1\nrules:\n  - id: spo2_low\n    kind: threshold\n    metric: spo3\n    below: 88\n";
  test::process refused{ALERT_ALERTD_PATH, {"--check-rules", bad}};
  CHECK(refused.wait() == 2);
}

TEST_CASE("alertd refuses to start on a bad rules file with the configuration exit code") {
  test::temp_dir dir;
  auto bad = dir.sub("bad.yaml");
  std::ofstream{bad} << "version: 1\nrules:\n  - id: x\n    kind: thresold\n";
  test::process node{ALERT_ALERTD_PATH, {"--data-dir", dir.sub("data"), "--ingest.endpoint", "tcp://127.0.0.1:*", "--pager.endpoint", "tcp://127.0.0.1:*",
                                         "--rules", bad}};
  CHECK_FALSE(node.wait_for_line("alertd ready").has_value());
  CHECK(node.wait() == 2);
}

TEST_CASE("alertd --check validates the built-in rules too") {
  test::process check{ALERT_ALERTD_PATH, {"--check"}};
  auto line = check.wait_for_line("configuration ok");
  REQUIRE(line.has_value());
  CHECK(line->find("3 escalation policies from the built-in defaults") != std::string::npos);
  CHECK(check.wait() == 0);
}
