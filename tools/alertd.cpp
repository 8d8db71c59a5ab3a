// alertd: one node of the alerting engine. See docs/operations.md.
#include <csignal>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <string>
#include <vector>

#include "actors/node.hpp"
#include "actors/stderr_log.hpp"
#include "actors/wall_clock.hpp"
#include "cluster/curve.hpp"
#include "config/access_file.hpp"
#include "config/node_options.hpp"
#include "config/rules_file.hpp"
#include "engine/log.hpp"
#include "storage/data_keys.hpp"

extern char** environ;

namespace {

// Exit codes scripts can rely on (docs/operations.md).
constexpr int exit_ok = 0;
constexpr int exit_config = 2;
constexpr int exit_unavailable = 3;
constexpr int exit_failure = 1;

std::vector<std::string> environment() {
  std::vector<std::string> out;
  for (char** e = environ; e && *e; ++e) out.emplace_back(*e);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace alert;
  auto cmd = config::parse_command_line(argc, argv, environment());
  if (!cmd) {
    std::cerr << "alertd: " << cmd.error().message() << "\n";
    return exit_config;
  }
  switch (cmd->what) {
    case config::parsed_command::action::help: std::cout << cmd->help_text; return exit_ok;
    case config::parsed_command::action::version: std::cout << "alertd 0.1.0\n"; return exit_ok;
    case config::parsed_command::action::check: {
      auto rules = load_rules(cmd->options);
      if (!rules) {
        std::cerr << rules.error().message();
        return exit_config;
      }
      const auto& o = cmd->options;
      std::string security = o.plaintext_endpoints ? "endpoints PLAINTEXT" : "";
      if (!o.plaintext_endpoints) {
        auto own = cluster::load_key_file(o.node_key_file);
        auto access = own ? config::load_access_file(o.access_file)
                          : result<std::shared_ptr<const access_list>>{own.error()};
        if (!access) {
          std::cerr << access.error().message() << "\n";
          return exit_config;
        }
        security = "CURVE with " + std::to_string((*access)->size()) + " keys";
      }
      if (o.plaintext_storage) {
        security += ", storage PLAINTEXT";
      } else {
        auto place = storage::check_data_key_file_location(o.data_key_file, o.data_dir);
        auto keys = place ? storage::load_data_keys(o.data_key_file) : result<std::shared_ptr<const storage::data_keys>>{place};
        if (!keys) {
          std::cerr << keys.error().message() << "\n";
          return exit_config;
        }
        security += ", data encrypted at rest";
      }
      std::cout << "configuration ok: " << security << "; node " << cmd->options.node_id << ", data-dir " << cmd->options.data_dir
                << ", ingest " << cmd->options.ingest_endpoint << ", pager " << cmd->options.pager_endpoint << ", "
                << rules->rules->rules.size() << " rules and " << rules->escalation->policies.size()
                << " escalation policies from "
                << (cmd->options.rules_file.empty() ? "the built-in defaults" : cmd->options.rules_file) << "\n";
      return exit_ok;
    }
    case config::parsed_command::action::check_rules: {
      auto loaded = config::load_rules_file(cmd->rules_to_check);
      if (!loaded.rules) {
        std::cerr << config::format_problems(cmd->rules_to_check, loaded.problems);
        return exit_config;
      }
      std::cout << cmd->rules_to_check << ": ok, " << loaded.rules->rules.size() << " rules, "
                << loaded.rules->overrides.size() << " patient overrides, " << loaded.escalation->policies.size()
                << " escalation policies, " << loaded.escalation->routes.size() << " routes\n";
      return exit_ok;
    }
    case config::parsed_command::action::run: break;
  }
  const auto& opts = cmd->options;
  install_stderr_log(opts.log);

  // Signals are taken synchronously by this thread only: block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  wall_clock clock;
  auto n = node::start(opts, clock);
  if (!n) {
    log(log_level::error, "node", "start_failed",
        {{"code", std::string{to_string(n.code())}}, {"msg", n.error().message()}});
    std::cerr << "alertd: " << n.error().message() << "\n";
    if (n.code() == errc::config_error) return exit_config;
    return n.code() == errc::unavailable ? exit_unavailable : exit_failure;
  }
  // Tests and scripts wait for this line on stdout before they connect.
  std::cout << "alertd ready ingest=" << (*n)->ingest_endpoint() << " pager=" << (*n)->pager_endpoint()
            << " control=" << (*n)->control_endpoint()
            << " metrics=" << ((*n)->metrics_url().empty() ? std::string{"off"} : (*n)->metrics_url()) << std::endl;

  node_stats last{};
  for (;;) {
    timespec wait{static_cast<time_t>(opts.stats_interval_s > 0 ? opts.stats_interval_s : 3600), 0};
    int sig = sigtimedwait(&signals, nullptr, &wait);
    if (sig == SIGINT || sig == SIGTERM) {
      log(log_level::info, "node", "stopping", {{"signal", sig == SIGINT ? "SIGINT" : "SIGTERM"}});
      break;
    }
    if (sig == SIGHUP) {
      // A bad file is logged and rejected inside; the old rules stay.
      auto reloaded = (*n)->reload_rules();
      (void)(*n)->audit("signal", "rules-reload", opts.rules_file.empty() ? "(built-in rules)" : opts.rules_file,
                        reloaded ? "ok" : std::string{to_string(reloaded.code())});
      if (!opts.plaintext_endpoints) {
        auto access = (*n)->reload_access();
        (void)(*n)->audit("signal", "access-reload", opts.access_file,
                          access ? "ok" : std::string{to_string(access.code())});
      }
      continue;
    }
    if (opts.stats_interval_s == 0) continue;
    auto s = (*n)->stats();
    if (s.requests != last.requests)
      log(log_level::info, "node", "node_stats",
          {{"requests", std::to_string(s.requests)},
           {"accepted", std::to_string(s.accepted)},
           {"duplicates", std::to_string(s.duplicates)},
           {"rejected", std::to_string(s.rejected)},
           {"request_errors", std::to_string(s.request_errors)},
           {"journal_commits", std::to_string(s.journal_commits)},
           {"active_devices", std::to_string(s.active_devices)},
           {"active_patients", std::to_string(s.active_patients)},
           {"restarts", std::to_string(s.restarts)},
           {"quarantined", std::to_string(s.quarantined)},
           {"avg_commit_us", std::to_string(s.journal_commits ? s.journal_commit_micros / s.journal_commits : 0)}});
    last = s;
  }
  (*n)->stop();
  return exit_ok;
}
