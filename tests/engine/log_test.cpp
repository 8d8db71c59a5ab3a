#include "engine/log.hpp"

#include <catch2/catch.hpp>
#include <vector>

using namespace alert;

TEST_CASE("records below the threshold are dropped and the rest reach the sink") {
  std::vector<std::string> lines;
  set_log_sink([&](const log_record& r) { lines.push_back(format_logfmt(r)); }, log_level::info);
  log(log_level::debug, "ingest", "noise");
  log(log_level::warn, "ingest", "batch_rejected", {{"code", "malformed"}});
  CHECK_FALSE(log_enabled(log_level::debug));
  CHECK(log_enabled(log_level::error));
  set_log_sink(nullptr);
  log(log_level::error, "ingest", "after_removal");
  REQUIRE(lines.size() == 1);
  CHECK(lines[0] == "level=warn component=ingest event=batch_rejected code=malformed");
}

TEST_CASE("logfmt quotes values with spaces and escapes control characters") {
  log_record r{log_level::error, "journal", "commit_failed",
               {{"msg", "disk \"full\""}, {"id", "a\nb\x1b"}, {"empty", ""}}};
  CHECK(format_logfmt(r) ==
        "level=error component=journal event=commit_failed msg=\"disk \\\"full\\\"\" id=\"a\\nb\\x1b\" empty=\"\"");
}
