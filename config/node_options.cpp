#include "config/node_options.hpp"

#include <boost/program_options.hpp>
#include <fstream>
#include <map>
#include <sstream>

#include "engine/ownership.hpp"

namespace alert::config {
namespace po = boost::program_options;
namespace {

std::string env_name(const std::string& option) {
  std::string out = "ALERT_";
  for (char c : option) out += (c == '.' || c == '-') ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

result<log_level> parse_level(const std::string& s) {
  for (auto l : {log_level::debug, log_level::info, log_level::warn, log_level::error})
    if (to_string(l) == s) return l;
  return status{errc::config_error, "log-level '" + s + "' is not one of debug, info, warn, error"};
}

}  // namespace

result<parsed_command> parse_command_line(int argc, const char* const argv[],
                                          const std::vector<std::string>& environ_vars) {
  parsed_command cmd;
  auto& o = cmd.options;
  const node_options d;
  std::string level = std::string{to_string(d.log)};
  std::string config_file;

  po::options_description general{"General"};
  general.add_options()
      ("help,h", "show this help and exit")
      ("version", "print the version and exit")
      ("check", "validate the configuration and the rules file, print a summary and exit (0 when valid)")
      ("check-rules", po::value(&cmd.rules_to_check)->value_name("FILE"),
       "check a rules file, print every problem as FILE:LINE:COL: reason, exit 0 when valid, 2 otherwise")
      ("config,c", po::value(&config_file)->value_name("FILE"),
       "read options from an INI file (sections map to prefixes: [ingest] endpoint = ...)")
      ("node-id", po::value(&o.node_id)->default_value(d.node_id), "this node's id in logs and the cluster")
      ("data-dir", po::value(&o.data_dir)->default_value(d.data_dir),
       "directory of the node's RocksDB (journal); created if missing; one node per directory")
      ("log-level", po::value(&level)->default_value(level), "debug, info, warn or error")
      ("scheduler-threads", po::value(&o.scheduler_threads)->default_value(d.scheduler_threads),
       "actor scheduler threads")
      ("stats-interval", po::value(&o.stats_interval_s)->default_value(d.stats_interval_s),
       "seconds between node_stats log lines (0: never)");
  po::options_description ingest{"Ingest (telemetry from integrators, docs/protocol.md)"};
  ingest.add_options()
      ("ingest.endpoint", po::value(&o.ingest_endpoint)->default_value(d.ingest_endpoint),
       "ZeroMQ endpoint the ingest ROUTER binds")
      ("ingest.max-message-bytes", po::value(&o.ingest_max_message_bytes)->default_value(d.ingest_max_message_bytes),
       "largest request frame; larger ones are answered too_large (frames over 4x this drop the peer)")
      ("ingest.max-batch-readings", po::value(&o.ingest_max_batch_readings)->default_value(d.ingest_max_batch_readings),
       "most readings in one request; more is too_large")
      ("ingest.max-future-ms", po::value(&o.ingest_max_future_ms)->default_value(d.ingest_max_future_ms),
       "how far a device timestamp may run ahead of the node clock before timestamp_in_future")
      ("ingest.max-pending-readings", po::value(&o.ingest_max_pending_readings)->default_value(d.ingest_max_pending_readings),
       "readings waiting for the disk before new requests are answered overloaded");
  po::options_description pager{"Pager (escalation to pager gateways, docs/protocol.md)"};
  pager.add_options()
      ("pager.endpoint", po::value(&o.pager_endpoint)->default_value(d.pager_endpoint),
       "ZeroMQ endpoint the pager ROUTER binds; gateways connect here and say hello")
      ("pager.max-message-bytes", po::value(&o.pager_max_message_bytes)->default_value(d.pager_max_message_bytes),
       "largest gateway message; larger ones are answered too_large")
      ("pager.grace-ms", po::value(&o.pager_grace_ms)->default_value(d.pager_grace_ms),
       "after start, how long a target may have no gateway before its pages count as unreachable "
       "(escalate and raise a technical alert); lets gateways reconnect to a restarted node");
  po::options_description control{"Control (alertctl, docs/protocol.md)"};
  control.add_options()
      ("control.endpoint", po::value(&o.control_endpoint)->default_value(d.control_endpoint),
       "ZeroMQ endpoint the control ROUTER binds (alertctl); keep it on loopback or a trusted network")
      ("metrics.endpoint", po::value(&o.metrics_endpoint)->default_value(d.metrics_endpoint),
       "HOST:PORT of the Prometheus metrics endpoint (GET /metrics over HTTP; port 0 picks a free one; off: none)");
  po::options_description journal{"Journal"};
  journal.add_options()
      ("journal.sync", po::value(&o.journal_sync)->default_value(d.journal_sync),
       "fsync the write-ahead log before acknowledging (false loses acked readings on power loss)");
  po::options_description security{"Security (docs/security.md)"};
  security.add_options()
      ("security.node-key", po::value(&o.node_key_file)->value_name("FILE"),
       "this node's CURVE key pair (alertctl keygen); required unless security.plaintext")
      ("security.access", po::value(&o.access_file)->value_name("FILE"),
       "the access file: every key admitted, with its role and allowances; SIGHUP reloads it")
      ("security.plaintext", po::value(&o.plaintext_endpoints)->default_value(d.plaintext_endpoints)->implicit_value(true),
       "serve ingest, pager and control WITHOUT CURVE: anyone who reaches a port may send, page or command "
       "(test benches only; logged as a warning)")
      ("security.data-key-file", po::value(&o.data_key_file)->value_name("FILE"),
       "AES-256-GCM keys for the data at rest (alertctl keygen --data-keys); keep it outside the data "
       "directory; required unless security.plaintext-storage")
      ("security.plaintext-storage",
       po::value(&o.plaintext_storage)->default_value(d.plaintext_storage)->implicit_value(true),
       "store patient data UNENCRYPTED (test benches only; logged as a warning)");
  po::options_description cluster{"Cluster (docs/cluster.md)"};
  cluster.add_options()
      ("cluster.members", po::value(&o.cluster_members)->value_name("ID=ENDPOINT,..."),
       "every member's node-id and node-to-node endpoint, this node's included; empty: a single node")
      ("cluster.shards", po::value(&o.cluster_shards)->default_value(d.cluster_shards),
       "shards the routing keys are hashed into (the same on every member)")
      ("cluster.heartbeat-ms", po::value(&o.cluster_heartbeat_ms)->default_value(d.cluster_heartbeat_ms),
       "interval of the heartbeats every member sends every other")
      ("cluster.phi-threshold", po::value(&o.cluster_phi_threshold)->default_value(d.cluster_phi_threshold),
       "phi-accrual suspicion at which a silent member counts as unreachable")
      ("cluster.acceptable-pause-ms",
       po::value(&o.cluster_acceptable_pause_ms)->default_value(d.cluster_acceptable_pause_ms),
       "a silence this much longer than usual is tolerated before suspicion grows (GC, disk stalls)")
      ("cluster.lease-ms", po::value(&o.cluster_lease_ms)->default_value(d.cluster_lease_ms),
       "how long a member's vote lets another act as a shard's owner, from the heartbeat it answers")
      ("cluster.promise-ms", po::value(&o.cluster_promise_ms)->default_value(d.cluster_promise_ms),
       "how long a member votes for no other owner of a shard after it last heard the one it voted for "
       "(at least lease-ms + heartbeat-ms)");
  po::options_description entities{"Entities (device and patient actors)"};
  entities.add_options()
      ("entity.idle-timeout-ms", po::value(&o.entity_idle_timeout_ms)->default_value(d.entity_idle_timeout_ms),
       "an entity actor idle this long passivates (its state stays in RocksDB)")
      ("entity.snapshot-every", po::value(&o.entity_snapshot_every)->default_value(d.entity_snapshot_every),
       "readings between snapshots of an entity's state")
      ("supervision.max-restarts", po::value(&o.supervision_max_restarts)->default_value(d.supervision_max_restarts),
       "crashes of one entity tolerated within supervision.window-ms; one more quarantines it")
      ("supervision.window-ms", po::value(&o.supervision_window_ms)->default_value(d.supervision_window_ms),
       "the restart intensity window");
  po::options_description rules{"Rules (docs/rules.md)"};
  rules.add_options()
      ("rules", po::value(&o.rules_file)->value_name("FILE"),
       "the rules file; without it the built-in default rules apply; SIGHUP reloads it")
      ("rules.tick-ms", po::value(&o.rules_tick_ms)->default_value(d.rules_tick_ms),
       "how often no-data (device silent) rules are checked");
  po::options_description all{"alertd options (command line > environment ALERT_* > config file > defaults)"};
  all.add(general).add(ingest).add(pager).add(control).add(journal).add(security).add(cluster).add(entities).add(rules);

  std::map<std::string, std::string> env_to_option;
  for (const auto& opt : all.options()) env_to_option[env_name(opt->long_name())] = opt->long_name();

  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(all).run(), vm);
    std::vector<std::string> env_args;
    for (const auto& kv : environ_vars) {
      auto eq = kv.find('=');
      if (eq == std::string::npos) continue;
      auto it = env_to_option.find(kv.substr(0, eq));
      if (it == env_to_option.end() || it->second == "config" || it->second == "help" ||
          it->second == "check" || it->second == "version" || it->second == "check-rules")
        continue;
      env_args.push_back("--" + it->second + "=" + kv.substr(eq + 1));
    }
    po::store(po::command_line_parser(env_args).options(all).run(), vm);
    if (vm.count("config")) {
      auto file = vm["config"].as<std::string>();
      std::ifstream in{file};
      if (!in) return status{errc::config_error, "cannot read config file " + file};
      po::store(po::parse_config_file(in, all, false), vm);
    }
    po::notify(vm);
  } catch (const po::error& e) {
    return status{errc::config_error, std::string{e.what()} + " (see --help)"};
  }
  if (vm.count("help")) {
    std::ostringstream out;
    out << "alertd: clinical alerting node\n\nUsage: alertd [options]\n\n" << all;
    cmd.what = parsed_command::action::help;
    cmd.help_text = out.str();
    return cmd;
  }
  if (vm.count("version")) {
    cmd.what = parsed_command::action::version;
    return cmd;
  }
  auto lvl = parse_level(level);
  if (!lvl) return lvl.error();
  o.log = *lvl;
  if (vm.count("check")) cmd.what = parsed_command::action::check;
  if (vm.count("check-rules")) {
    cmd.what = parsed_command::action::check_rules;
    return cmd;
  }
  if (auto st = validate(o); !st) return st;
  return cmd;
}

result<std::vector<member_entry>> parse_members(const std::string& text) {
  std::vector<member_entry> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    auto end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    auto item = text.substr(start, end - start);
    auto b = item.find_first_not_of(" \t");
    auto e = item.find_last_not_of(" \t");
    item = b == std::string::npos ? std::string{} : item.substr(b, e - b + 1);
    auto eq = item.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == item.size())
      return status{errc::config_error, "cluster.members entry '" + item + "' must be ID=ENDPOINT (e.g. node-1=tcp://10.0.0.1:7610)"};
    out.push_back({item.substr(0, eq), item.substr(eq + 1)});
    start = end + 1;
  }
  return out;
}

status validate(const node_options& o) {
  auto bad = [](const std::string& msg) { return status{errc::config_error, msg}; };
  auto endpoint_ok = [](const std::string& e) {
    return e.rfind("tcp://", 0) == 0 || e.rfind("ipc://", 0) == 0 || e.rfind("inproc://", 0) == 0;
  };
  if (o.node_id.empty()) return bad("node-id must not be empty");
  if (o.data_dir.empty()) return bad("data-dir must not be empty");
  if (o.scheduler_threads < 1 || o.scheduler_threads > 64)
    return bad("scheduler-threads must be between 1 and 64");
  if (!endpoint_ok(o.ingest_endpoint))
    return bad("ingest.endpoint '" + o.ingest_endpoint + "' must start with tcp://, ipc:// or inproc://");
  if (o.ingest_max_message_bytes < 1024 || o.ingest_max_message_bytes > (64u << 20))
    return bad("ingest.max-message-bytes must be between 1024 and 67108864");
  if (o.ingest_max_batch_readings < 1 || o.ingest_max_batch_readings > 100000)
    return bad("ingest.max-batch-readings must be between 1 and 100000");
  if (o.ingest_max_future_ms < 0 || o.ingest_max_future_ms > 7LL * 24 * 3600 * 1000)
    return bad("ingest.max-future-ms must be between 0 and 604800000 (7 days)");
  if (o.ingest_max_pending_readings < o.ingest_max_batch_readings)
    return bad("ingest.max-pending-readings must be at least ingest.max-batch-readings");
  if (o.entity_idle_timeout_ms < 1) return bad("entity.idle-timeout-ms must be positive");
  if (o.entity_snapshot_every < 1) return bad("entity.snapshot-every must be positive");
  if (o.supervision_window_ms < 1) return bad("supervision.window-ms must be positive");
  if (!endpoint_ok(o.pager_endpoint))
    return bad("pager.endpoint '" + o.pager_endpoint + "' must start with tcp://, ipc:// or inproc://");
  if (o.pager_endpoint == o.ingest_endpoint && o.pager_endpoint.find(":*") == std::string::npos)
    return bad("pager.endpoint and ingest.endpoint must differ");
  if (!endpoint_ok(o.control_endpoint))
    return bad("control.endpoint '" + o.control_endpoint + "' must start with tcp://, ipc:// or inproc://");
  for (const auto* other : {&o.ingest_endpoint, &o.pager_endpoint})
    if (o.control_endpoint == *other && other->find(":*") == std::string::npos)
      return bad("control.endpoint must differ from ingest.endpoint and pager.endpoint");
  if (o.metrics_endpoint != "off") {
    auto colon = o.metrics_endpoint.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == o.metrics_endpoint.size() ||
        o.metrics_endpoint.find_first_not_of("0123456789", colon + 1) != std::string::npos)
      return bad("metrics.endpoint '" + o.metrics_endpoint + "' must be HOST:PORT (e.g. 127.0.0.1:9464) or off");
  }
  if (o.pager_max_message_bytes < 1024 || o.pager_max_message_bytes > (1 << 20))
    return bad("pager.max-message-bytes must be between 1024 and 1048576");
  if (o.pager_grace_ms < 0 || o.pager_grace_ms > 3'600'000) return bad("pager.grace-ms must be between 0 and 3600000");
  if (o.rules_tick_ms < 10) return bad("rules.tick-ms must be at least 10");
  if (!o.cluster_members.empty()) {
    auto members = parse_members(o.cluster_members);
    if (!members) return members.error();
    bool self = false;
    for (const auto& m : *members) {
      if (!endpoint_ok(m.endpoint) || m.endpoint.find(":*") != std::string::npos)
        return bad("cluster.members endpoint '" + m.endpoint + "' of " + m.id +
                   " must be tcp://, ipc:// or inproc:// with a fixed port (the other members connect to it)");
      self = self || m.id == o.node_id;
    }
    if (!self) return bad("cluster.members must include this node (node-id " + o.node_id + ")");
    ownership_options own;
    own.lease_ms = o.cluster_lease_ms;
    own.promise_ms = o.cluster_promise_ms;
    if (auto st = validate(own, o.cluster_heartbeat_ms); !st) return st;
    // Members forward readings to the ingest endpoint a node binds, as it binds it.
    if (o.ingest_endpoint.find("://*") != std::string::npos || o.ingest_endpoint.find("0.0.0.0") != std::string::npos ||
        o.ingest_endpoint.rfind("inproc://", 0) == 0)
      return bad("in a cluster, ingest.endpoint must name the address the other members reach (not *, 0.0.0.0 "
                 "or inproc://): they forward readings to it");
  }
  if (!o.plaintext_endpoints && (o.node_key_file.empty() || o.access_file.empty()))
    return bad("security.node-key and security.access are required: every endpoint is CURVE-authenticated "
               "(make keys with alertctl keygen, docs/security.md); --security.plaintext serves without "
               "authentication, for test benches only");
  if (!o.plaintext_storage) {
    if (o.data_key_file.empty())
      return bad("security.data-key-file is required: patient data is encrypted at rest (make one with "
                 "alertctl keygen --data-keys FILE, docs/security.md); --security.plaintext-storage stores it "
                 "unencrypted, for test benches only");
  }
  return {};
}

}  // namespace alert::config
