// The integration tests' process runner (tests/support/process.hpp): stdout is read line by
// line, stderr goes where asked. The cluster tests depend on a node's log going to a file.
#include <catch2/catch.hpp>
#include <fstream>
#include <string>

#include "tests/support/process.hpp"
#include "tests/support/temp_dir.hpp"

using namespace alert;

TEST_CASE("a process's stdout is read by line and its stderr goes to the file asked for") {
  test::temp_dir dir;
  const auto log = dir.sub("err.log");
  {
    test::process p{"/bin/sh", {"-c", "echo ready; echo first >&2; echo second >&2"}, test::stderr_to{log}};
    auto line = p.wait_for_line("ready");
    REQUIRE(line.has_value());
    CHECK(*line == "ready");
    CHECK(p.wait() == 0);
    CHECK_FALSE(p.wait_for_line("first").has_value());  // not on stdout
  }
  std::ifstream in{log};
  std::string text, line;
  while (std::getline(in, line)) text += line + "\n";
  CHECK(text == "first\nsecond\n");
  // Appended to, not replaced: a restarted node keeps its earlier log.
  {
    test::process p{"/bin/sh", {"-c", "echo third >&2"}, test::stderr_to{log}};
    CHECK(p.wait() == 0);
  }
  std::ifstream again{log};
  text.clear();
  while (std::getline(again, line)) text += line + "\n";
  CHECK(text == "first\nsecond\nthird\n");
}

TEST_CASE("with_stderr reads a process's stderr with its stdout") {
  test::process p{"/bin/sh", {"-c", "echo to-err >&2; exit 3"}, true};
  CHECK(p.wait_for_line("to-err").has_value());
  CHECK(p.wait() == 3);
}
