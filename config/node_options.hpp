#pragma once
// Options of a node (alertd): embedded defaults, then a config file, then ALERT_*
// environment variables, then the command line, each overriding the one before.

#include <cstdint>
#include <string>
#include <vector>

#include "engine/log.hpp"
#include "engine/status.hpp"

namespace alert::config {

/// Everything a node needs to start. The defaults give a working single node on loopback.
struct node_options {
  std::string node_id = "node-1";
  std::string data_dir = "./var/alertd";     ///< RocksDB lives here
  log_level log = log_level::info;
  unsigned scheduler_threads = 2;            ///< CAF scheduler threads

  std::string ingest_endpoint = "tcp://127.0.0.1:7600";
  std::size_t ingest_max_message_bytes = 1 << 20;  ///< larger requests get too_large
  std::size_t ingest_max_batch_readings = 10000;   ///< more readings get too_large
  std::int64_t ingest_max_future_ms = 5 * 60 * 1000;  ///< clock skew allowed for device ts
  std::size_t ingest_max_pending_readings = 200000;   ///< beyond this: overloaded

  std::string pager_endpoint = "tcp://127.0.0.1:7601";  ///< pager gateways connect here
  std::size_t pager_max_message_bytes = 64 * 1024;      ///< larger gateway messages get too_large
  /// After start, how long pages may find no gateway for their target before they count as
  /// unreachable (gateways reconnect to a restarted node within their hello interval).
  std::int64_t pager_grace_ms = 15 * 1000;

  std::string control_endpoint = "tcp://127.0.0.1:7602";  ///< alertctl connects here
  std::string metrics_endpoint = "127.0.0.1:9464";       ///< Prometheus scrapes http://HERE/metrics; "off": none

  bool journal_sync = true;  ///< fsync the WAL before acking (never off in production)

  // Security (docs/security.md). By default every endpoint is CURVE and the data is encrypted
  // at rest; a node without its keys refuses to start.
  std::string node_key_file;      ///< this node's CURVE key pair (alertctl keygen)
  std::string access_file;        ///< the keys admitted, their roles and allowances (YAML)
  bool plaintext_endpoints = false;  ///< no CURVE, anyone who reaches a port is in: test benches only
  std::string data_key_file;      ///< AES-256-GCM keys for the data at rest, outside data_dir
  bool plaintext_storage = false;    ///< PHI stored unencrypted: test benches only

  std::int64_t entity_idle_timeout_ms = 5 * 60 * 1000;  ///< idle entities passivate after this
  std::uint64_t entity_snapshot_every = 1000;            ///< readings between entity snapshots
  unsigned supervision_max_restarts = 5;                 ///< crashes allowed within the window...
  std::int64_t supervision_window_ms = 60 * 1000;        ///< ...before quarantine

  std::string rules_file;          ///< empty: the rules built into alertd (config/rules/default.yaml)
  std::int64_t rules_tick_ms = 1000;  ///< how often no-data rules are checked

  unsigned stats_interval_s = 10;  ///< period of the node_stats log line; 0 = never

  // Cluster (docs/cluster.md). No members: a single node, always in quorum.
  std::string cluster_members;          ///< "id=endpoint,id=endpoint,..." including this node-id
  std::uint32_t cluster_shards = 64;
  std::int64_t cluster_heartbeat_ms = 250;
  double cluster_phi_threshold = 8.0;
  std::int64_t cluster_acceptable_pause_ms = 1000;
  std::int64_t cluster_lease_ms = 1200;    ///< engine/ownership.hpp: how long a vote lets its member own
  std::int64_t cluster_promise_ms = 1600;  ///< and how long its voter votes for no other
};

/// One entry of `cluster.members`.
struct member_entry {
  std::string id, endpoint;
};
/// Parses `cluster.members` ("node-1=tcp://10.0.0.1:7610,node-2=..."); config_error naming
/// the entry at fault.
result<std::vector<member_entry>> parse_members(const std::string& text);

/// What the command line asked for.
struct parsed_command {
  enum class action { run, help, version, check, check_rules };
  action what = action::run;
  node_options options;
  std::string help_text;  ///< filled for action::help
  std::string rules_to_check;  ///< the file named by --check-rules
};

/// Parses argv, the config file named by --config (if any) and ALERT_* environment
/// variables (ALERT_DATA_DIR, ALERT_INGEST_ENDPOINT, ... : the option name upper-cased with
/// '.' and '-' as '_'). Unknown options, bad values and unreadable files are
/// errc::config_error with a message that says which option and why. `environ_vars` is the
/// environment as "NAME=value" strings (injected for tests).
result<parsed_command> parse_command_line(int argc, const char* const argv[],
                                          const std::vector<std::string>& environ_vars);

/// Checks values that the parser cannot (endpoints, ranges).
status validate(const node_options& opts);

}  // namespace alert::config
