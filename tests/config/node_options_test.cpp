#include "config/node_options.hpp"

#include <catch2/catch.hpp>
#include <fstream>

#include "tests/support/temp_dir.hpp"

using namespace alert;
using namespace alert::config;

namespace {
// As given, with no security options added.
result<parsed_command> parse_as_is(std::vector<const char*> args, std::vector<std::string> env = {}) {
  args.insert(args.begin(), "alertd");
  return parse_command_line(static_cast<int>(args.size()), args.data(), env);
}
// On a test bench: no keys (what the security options require is tested below).
result<parsed_command> parse(std::vector<const char*> args, std::vector<std::string> env = {}) {
  args.push_back("--security.plaintext");
  args.push_back("--security.plaintext-storage");
  return parse_as_is(std::move(args), std::move(env));
}
}  // namespace

TEST_CASE("a node needs its keys unless plaintext is asked for by name") {
  auto none = parse_as_is({});
  REQUIRE_FALSE(none.has_value());
  CHECK(none.error().message().find("security.node-key and security.access are required") != std::string::npos);
  CHECK(none.error().message().find("alertctl keygen") != std::string::npos);
  auto no_data_key = parse_as_is({"--security.node-key", "n.key", "--security.access", "access.yaml"});
  REQUIRE_FALSE(no_data_key.has_value());
  CHECK(no_data_key.error().message().find("security.data-key-file is required") != std::string::npos);
  auto keyed = parse_as_is({"--security.node-key", "n.key", "--security.access", "access.yaml",
                            "--security.data-key-file", "/etc/alertd/data.keys", "--data-dir", "/var/lib/alertd"});
  REQUIRE(keyed.has_value());
  CHECK_FALSE(keyed->options.plaintext_endpoints);
  CHECK_FALSE(keyed->options.plaintext_storage);
  CHECK(keyed->options.data_key_file == "/etc/alertd/data.keys");
  auto plain = parse_as_is({"--security.plaintext", "--security.plaintext-storage"});
  REQUIRE(plain.has_value());
  CHECK(plain->options.plaintext_endpoints);
  CHECK(plain->options.plaintext_storage);
  auto from_env = parse_as_is({}, {"ALERT_SECURITY_PLAINTEXT=true", "ALERT_SECURITY_PLAINTEXT_STORAGE=true"});
  CHECK(from_env.has_value());
}

TEST_CASE("with no options a node gets working loopback defaults") {
  auto cmd = parse({});
  REQUIRE(cmd.has_value());
  CHECK(cmd->what == parsed_command::action::run);
  CHECK(cmd->options.ingest_endpoint == "tcp://127.0.0.1:7600");
  CHECK(cmd->options.pager_endpoint == "tcp://127.0.0.1:7601");
  CHECK(cmd->options.pager_grace_ms == 15'000);
  CHECK(cmd->options.data_dir == "./var/alertd");
  CHECK(cmd->options.journal_sync);
  CHECK(cmd->options.log == log_level::info);
}

TEST_CASE("help lists every option with its default") {
  auto cmd = parse({"--help"});
  REQUIRE(cmd.has_value());
  CHECK(cmd->what == parsed_command::action::help);
  for (const char* s : {"--data-dir", "--ingest.endpoint", "tcp://127.0.0.1:7600", "--journal.sync",
                        "--ingest.max-message-bytes", "--check", "--config"})
    CHECK(cmd->help_text.find(s) != std::string::npos);
}

TEST_CASE("the command line overrides the environment which overrides the config file") {
  test::temp_dir dir;
  auto file = dir.sub("alertd.ini");
  std::ofstream{file} << "data-dir = /from/file\nnode-id = file-node\n[ingest]\nendpoint = tcp://127.0.0.1:9001\nmax-batch-readings = 500\n";
  auto cmd = parse({"--config", file.c_str(), "--data-dir", "/from/cli"},
                   {"ALERT_DATA_DIR=/from/env", "ALERT_INGEST_ENDPOINT=tcp://127.0.0.1:9002", "PATH=/bin"});
  REQUIRE(cmd.has_value());
  CHECK(cmd->options.data_dir == "/from/cli");
  CHECK(cmd->options.ingest_endpoint == "tcp://127.0.0.1:9002");
  CHECK(cmd->options.node_id == "file-node");
  CHECK(cmd->options.ingest_max_batch_readings == 500);
}

TEST_CASE("an unknown option is a config error that says which") {
  auto cmd = parse({"--no-such-option"});
  REQUIRE_FALSE(cmd.has_value());
  CHECK(cmd.code() == errc::config_error);
  CHECK(cmd.error().message().find("no-such-option") != std::string::npos);
}

TEST_CASE("a value of the wrong type is a config error") {
  auto cmd = parse({"--ingest.max-batch-readings", "many"});
  REQUIRE_FALSE(cmd.has_value());
  CHECK(cmd.code() == errc::config_error);
}

TEST_CASE("an unreadable config file is a config error naming it") {
  auto cmd = parse({"--config", "/nonexistent/alertd.ini"});
  REQUIRE_FALSE(cmd.has_value());
  CHECK(cmd.code() == errc::config_error);
  CHECK(cmd.error().message().find("/nonexistent/alertd.ini") != std::string::npos);
}

TEST_CASE("bad values are refused with the option's name") {
  auto bad_endpoint = parse({"--ingest.endpoint", "127.0.0.1:7600"});
  REQUIRE_FALSE(bad_endpoint.has_value());
  CHECK(bad_endpoint.error().message().find("ingest.endpoint") != std::string::npos);
  auto bad_level = parse({"--log-level", "loud"});
  REQUIRE_FALSE(bad_level.has_value());
  CHECK(bad_level.error().message().find("log-level") != std::string::npos);
  CHECK_FALSE(parse({"--scheduler-threads", "0"}).has_value());
  CHECK_FALSE(parse({"--ingest.max-message-bytes", "10"}).has_value());
  auto bad_pager = parse({"--pager.endpoint", "localhost:7601"});
  REQUIRE_FALSE(bad_pager.has_value());
  CHECK(bad_pager.error().message().find("pager.endpoint") != std::string::npos);
  auto same = parse({"--pager.endpoint", "tcp://127.0.0.1:7600"});
  REQUIRE_FALSE(same.has_value());
  CHECK(same.error().message().find("must differ") != std::string::npos);
  CHECK_FALSE(parse({"--pager.grace-ms", "-1"}).has_value());
  auto grace = parse({"--pager.grace-ms", "0"});
  REQUIRE(grace.has_value());
  CHECK(grace->options.pager_grace_ms == 0);
}

TEST_CASE("check mode is recognised and still validates") {
  auto ok = parse({"--check"});
  REQUIRE(ok.has_value());
  CHECK(ok->what == parsed_command::action::check);
  CHECK_FALSE(parse({"--check", "--ingest.endpoint", "nope"}).has_value());
}

TEST_CASE("journal sync can be turned off explicitly") {
  auto cmd = parse({"--journal.sync", "false"});
  REQUIRE(cmd.has_value());
  CHECK_FALSE(cmd->options.journal_sync);
}

TEST_CASE("cluster members are parsed and checked") {
  auto ok = parse({"--node-id", "node-2", "--cluster.members",
                   "node-1=tcp://10.0.0.1:7610, node-2=tcp://10.0.0.2:7610,node-3=tcp://10.0.0.3:7610",
                   "--ingest.endpoint", "tcp://10.0.0.2:7600"});
  REQUIRE(ok.has_value());
  auto members = parse_members(ok->options.cluster_members);
  REQUIRE(members.has_value());
  REQUIRE(members->size() == 3);
  CHECK((*members)[1].id == "node-2");
  CHECK((*members)[1].endpoint == "tcp://10.0.0.2:7610");
  CHECK(ok->options.cluster_shards == 64);
  CHECK(ok->options.cluster_heartbeat_ms == 250);

  auto not_me = parse({"--node-id", "node-9", "--cluster.members", "node-1=tcp://10.0.0.1:7610"});
  REQUIRE_FALSE(not_me.has_value());
  CHECK(not_me.error().message().find("must include this node") != std::string::npos);
  auto bad_entry = parse({"--cluster.members", "node-1"});
  REQUIRE_FALSE(bad_entry.has_value());
  CHECK(bad_entry.error().message().find("ID=ENDPOINT") != std::string::npos);
  auto ephemeral = parse({"--cluster.members", "node-1=tcp://127.0.0.1:*"});
  REQUIRE_FALSE(ephemeral.has_value());
  CHECK(ephemeral.error().message().find("fixed port") != std::string::npos);
  auto wildcard = parse({"--cluster.members", "node-1=tcp://10.0.0.1:7610", "--ingest.endpoint", "tcp://*:7600"});
  REQUIRE_FALSE(wildcard.has_value());
  CHECK(wildcard.error().message().find("address the other members reach") != std::string::npos);
}

