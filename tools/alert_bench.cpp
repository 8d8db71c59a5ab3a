// alert-bench: the engine against the physical limit, in one run on one machine.
//
//  1. Bare pipeline (the limit): ZeroMQ DEALER -> ROUTER (cluster::ingest_server: decode,
//     validation) -> storage::journal (RocksDB WriteBatch, group commit, same WAL sync).
//     No actors, no rules. In-process, fresh scratch directory per run.
//  2. Full engine: a real alertd process with the default rules and a pager gateway (a
//     thread of this program) connected. Same load generator, batch sizes, devices and sync.
//  3. Arrival-to-page latency at 20% of the engine's batch-100 maximum: background batches of
//     normal readings, paced, with probe readings (SpO2 80 from a new device bound to a new
//     patient: spo2_low fires at once) whose pages the gateway times.
//  4. Resident memory per active device actor at 100 000 devices (--entities, in a child
//     process of this program so that earlier parts leave nothing on its heap).
//  5. Recovery: alertd started on a data dir holding 1 000 000 journaled readings; time to
//     its ready line and to the answer of a device query.
//  6. Three-node cluster: three alertd processes on this machine as one cluster (readings
//     routed by shard, each replicated to its follower before the ack), the load spread over
//     the three ingest endpoints; against one node under the same load.
//
// The load generator: pipelined DEALER clients (--threads, --window requests in flight each)
// sending batches of N heart_rate readings (60-99/min: fires nothing) over --devices devices.
// Benchmarks report; they never assert on speed. docs/benchmarks.md records the figures.
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/program_options.hpp>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <random>
#include <thread>
#include <unordered_set>
#include <vector>
#include <zmq.hpp>

#include "actors/node.hpp"
#include "config/rules_file.hpp"
#include "actors/shard_host.hpp"
#include "actors/wall_clock.hpp"
#include "cluster/control_wire.hpp"
#include "cluster/curve.hpp"
#include "cluster/ingest_server.hpp"
#include "cluster/ingest_wire.hpp"
#include "cluster/pager_wire.hpp"
#include "config/node_options.hpp"
#include "storage/data_keys.hpp"
#include "storage/journal.hpp"

extern char** environ;

namespace po = boost::program_options;
namespace fs = std::filesystem;
using namespace alert;
using clk = std::chrono::steady_clock;

namespace {

// ---- child processes: killed on every exit path ---------------------------------------------

// Children alive now (0: a free slot). Read by the signal handler and at exit.
constexpr std::size_t max_children = 8;
std::atomic<pid_t> live_children[max_children];

void register_child(pid_t pid) noexcept {
  for (auto& slot : live_children) {
    pid_t expected = 0;
    if (slot.compare_exchange_strong(expected, pid)) return;
  }
}

void unregister_child(pid_t pid) noexcept {
  for (auto& slot : live_children) {
    pid_t expected = pid;
    if (slot.compare_exchange_strong(expected, 0)) return;
  }
}

void kill_children() noexcept {
  for (auto& slot : live_children)
    if (pid_t pid = slot.load(); pid > 0) ::kill(pid, SIGKILL);
}

// SIGINT, SIGTERM, a crash: no child outlives this program. Async-signal-safe only.
void on_fatal_signal(int sig) {
  kill_children();
  ::_exit(128 + sig);
}

std::string tail_of_file(const fs::path& path, std::size_t lines) {
  std::ifstream in{path};
  std::vector<std::string> all;
  for (std::string line; std::getline(in, line);) all.push_back(line);
  std::string out;
  for (std::size_t i = all.size() > lines ? all.size() - lines : 0; i < all.size(); ++i) out += "    " + all[i] + "\n";
  return out;
}

// A program started with posix_spawn: stdout on a pipe, stderr to a file (or inherited).
class child_process {
public:
  child_process(const std::string& path, const std::vector<std::string>& args, const std::string& stderr_path) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
    if (!stderr_path.empty())
      posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    std::vector<std::string> all{path};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    const int rc = ::posix_spawn(&pid_, path.c_str(), &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    ::close(fds[1]);
    out_ = fds[0];
    if (rc != 0) {
      ::close(out_);
      out_ = -1;
      pid_ = -1;
      throw std::runtime_error("cannot start " + path + ": " + std::strerror(rc));
    }
    register_child(pid_);
    spawned_ = clk::now();
  }
  ~child_process() {
    if (pid_ > 0 && !exited_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (pid_ > 0) unregister_child(pid_);
    if (out_ >= 0) ::close(out_);
  }
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;

  clk::time_point spawned() const { return spawned_; }

  /// The first stdout line starting with `prefix`; nothing at the deadline or at EOF.
  /// Lines before it go to `skipped` when given.
  std::optional<std::string> wait_for_line(const std::string& prefix, std::chrono::milliseconds timeout,
                                           std::vector<std::string>* skipped = nullptr) {
    const auto deadline = clk::now() + timeout;
    for (;;) {
      for (auto nl = buf_.find('\n'); nl != std::string::npos; nl = buf_.find('\n')) {
        std::string line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        if (line.rfind(prefix, 0) == 0) return line;
        if (skipped) skipped->push_back(std::move(line));
      }
      if (!read_some(deadline)) return std::nullopt;
    }
  }

  /// Waits for the exit; the exit code or 128+signal, nothing at the deadline.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout) {
    if (exited_) return code_;
    const auto deadline = clk::now() + timeout;
    for (;;) {
      int st = 0;
      if (::waitpid(pid_, &st, WNOHANG) == pid_) {
        exited_ = true;
        unregister_child(pid_);
        code_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        return code_;
      }
      if (clk::now() >= deadline) return std::nullopt;
      std::this_thread::sleep_for(std::chrono::milliseconds{5});
    }
  }

  /// SIGTERM, then SIGKILL if it has not exited within `timeout`. The exit code.
  int terminate(std::chrono::milliseconds timeout) {
    if (exited_) return code_;
    ::kill(pid_, SIGTERM);
    if (auto c = wait_exit(timeout)) return *c;
    ::kill(pid_, SIGKILL);
    if (auto c = wait_exit(std::chrono::seconds{10})) return *c;
    return -1;
  }

private:
  bool read_some(clk::time_point deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clk::now());
    if (left.count() <= 0) return false;
    pollfd p{out_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return true;  // the loop checks the deadline
    char chunk[4096];
    const auto n = ::read(out_, chunk, sizeof chunk);
    if (n <= 0) return false;
    buf_.append(chunk, static_cast<std::size_t>(n));
    return true;
  }

  pid_t pid_ = -1;
  int out_ = -1;
  bool exited_ = false;
  int code_ = -1;
  std::string buf_;
  clk::time_point spawned_;
};

// ---- small helpers ------------------------------------------------------------------------

double seconds_since(clk::time_point t) { return std::chrono::duration<double>(clk::now() - t).count(); }

double ms_between(clk::time_point a, clk::time_point b) { return std::chrono::duration<double, std::milli>(b - a).count(); }

/// Nearest-rank percentile of sorted values; NaN when empty.
double percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return std::nan("");
  auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size())));
  rank = std::clamp<std::size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

std::string fixed(double v, int decimals) {
  if (std::isnan(v)) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

/// "1 234 567": figures as docs/benchmarks.md writes them.
std::string grouped(double v) {
  if (std::isnan(v)) return "-";
  auto n = static_cast<long long>(std::llround(v));
  const bool neg = n < 0;
  std::string digits = std::to_string(neg ? -n : n);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ' ';
    out += digits[i];
  }
  return neg ? "-" + out : out;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  for (;;) {
    auto at = s.find(sep, pos);
    out.push_back(s.substr(pos, at == std::string::npos ? std::string::npos : at - pos));
    if (at == std::string::npos) break;
    pos = at + 1;
  }
  return out;
}

std::string run_command(const std::string& cmd) {
  std::string out;
  if (FILE* p = ::popen(cmd.c_str(), "r")) {
    char buf[256];
    while (std::fgets(buf, sizeof buf, p)) out += buf;
    ::pclose(p);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

// ---- the load generator ---------------------------------------------------------------------

struct settings {
  std::size_t threads = 4;
  std::size_t window = 8;
  std::size_t devices = 10000;
  double seconds = 5;
  bool sync = true;
};

// Normal heart_rate readings (60-99/min, fire nothing) over `devices` devices named
// prefix + index; each device's seq strictly increases.
struct batch_maker {
  std::string prefix;
  std::size_t devices = 1;
  epoch_ms ts = 0;
  std::uint64_t seq = 0;
  std::vector<reading_input> make(std::size_t n) {
    std::vector<reading_input> rs(n);
    for (auto& r : rs) {
      ++seq;
      r.device = prefix + std::to_string(seq % devices);
      r.metric = "heart_rate";
      r.value = static_cast<double>(60 + seq % 40);
      r.ts = ts;
      r.seq = seq;
    }
    return rs;
  }
};

struct load_result {
  double elapsed_s = 0;
  std::uint64_t readings = 0, batches = 0, errors = 0;
  std::vector<double> latencies_ms;  ///< batch round trips, sorted
};

// Pipelined DEALER clients against `endpoint` for s.seconds.
// ---- security modes --------------------------------------------------------------------------

/// How the alertd under test is secured: plaintext (the old figures), CURVE on its endpoints,
/// or CURVE and encryption at rest (what production runs).
struct security_mode {
  std::string name;
  bool curve = false;
  bool at_rest = false;
};

/// Keys for one bench run: the node's, one per client role, the access file, the data keys.
struct bench_keys {
  fs::path dir;
  cluster::client_security integrator, gateway, operator_;
  std::string node_key, access, data_keys;
};

bench_keys make_bench_keys(const fs::path& dir) {
  fs::create_directories(dir);
  bench_keys k;
  k.dir = dir;
  auto pair = [&](const std::string& name) {
    auto kp = cluster::generate_keypair();
    if (!kp) throw std::runtime_error(kp.error().message());
    if (auto st = cluster::write_key_files(dir.string(), name, *kp); !st) throw std::runtime_error(st.message());
    return *kp;
  };
  const auto node = pair("node");
  std::string access = "version: 1\nkeys:\n";
  auto client = [&](const std::string& name, const std::string& role, const std::string& extra) {
    const auto kp = pair(name);
    access += "  - name: " + name + "\n    role: " + role + "\n    public-key: \"" + kp.public_key + "\"\n" + extra;
    return cluster::client_security{node.public_key, kp};
  };
  k.integrator = client("bench-integrator", "integrator", "    devices: [\"*\"]\n");
  k.gateway = client("bench-gateway", "gateway", "    targets: [\"*\"]\n");
  k.operator_ = client("bench-operator", "operator", "");
  k.node_key = (dir / "node.key").string();
  k.access = (dir / "access.yaml").string();
  std::ofstream{k.access} << access;
  k.data_keys = (dir / "data.keys").string();
  if (auto st = storage::create_data_key_file(k.data_keys); !st) throw std::runtime_error(st.message());
  return k;
}

// The mode of the alertd being driven, and the keys its clients use. Set by main before each run.
security_mode current_mode{"plaintext"};
const bench_keys* current_keys = nullptr;

/// Sets a client socket up for the current mode (before it connects).
void as_client(zmq::socket_t& sock, cluster::client_security bench_keys::*who) {
  if (current_mode.curve && current_keys) cluster::apply_client(sock, current_keys->*who);
}

load_result drive(const std::vector<std::string>& endpoints, const settings& s, std::size_t batch);

load_result drive(const std::string& endpoint, const settings& s, std::size_t batch) {
  return drive(std::vector<std::string>{endpoint}, s, batch);
}

/// Client thread t sends to endpoints[t % endpoints.size()].
load_result drive(const std::vector<std::string>& endpoints, const settings& s, std::size_t batch) {
  const epoch_ms ts = wall_clock{}.now() - 1000;
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> readings{0}, batches{0}, errors{0};
  std::vector<std::vector<double>> latencies(s.threads);
  std::vector<std::thread> workers;
  zmq::context_t ctx{1};
  const auto start = clk::now();
  for (std::size_t t = 0; t < s.threads; ++t)
    workers.emplace_back([&, t] {
      zmq::socket_t sock{ctx, zmq::socket_type::dealer};
      sock.set(zmq::sockopt::linger, 0);
      as_client(sock, &bench_keys::integrator);
      sock.connect(endpoints[t % endpoints.size()]);
      batch_maker mk{"bench-" + std::to_string(t) + "-", std::max<std::size_t>(1, s.devices / s.threads), ts};
      std::int64_t next_batch = 0;
      std::map<std::int64_t, clk::time_point> outstanding;
      while (!stop) {
        while (outstanding.size() < s.window) {
          const auto id = next_batch++;
          sock.send(zmq::buffer(wire::encode_request(id, mk.make(batch))), zmq::send_flags::none);
          outstanding[id] = clk::now();
        }
        zmq::pollitem_t item{sock.handle(), 0, ZMQ_POLLIN, 0};
        if (zmq::poll(&item, 1, std::chrono::milliseconds{100}) == 0) continue;
        zmq::message_t msg;
        while (sock.recv(msg, zmq::recv_flags::dontwait)) {
          auto reply = wire::decode_reply(static_cast<const char*>(msg.data()), msg.size());
          if (!reply) continue;
          if (auto* err = std::get_if<wire::ingest_error>(&*reply)) {
            if (errors++ == 0)
              std::fprintf(stderr, "alert-bench: first error reply: %s: %s\n", std::string{to_string(err->code)}.c_str(),
                           err->message.c_str());
            auto* id = std::get_if<std::int64_t>(&err->batch);
            auto it = id ? outstanding.find(*id) : outstanding.end();
            outstanding.erase(it != outstanding.end() ? it : outstanding.begin());
            continue;
          }
          const auto& ack = std::get<wire::ingest_ack>(*reply);
          auto* id = std::get_if<std::int64_t>(&ack.batch);
          if (!id) continue;
          auto it = outstanding.find(*id);
          if (it == outstanding.end()) continue;
          latencies[t].push_back(ms_between(it->second, clk::now()));
          outstanding.erase(it);
          readings += ack.accepted;
          ++batches;
        }
      }
    });
  std::this_thread::sleep_for(std::chrono::duration<double>(s.seconds));  // the measuring window
  stop = true;
  for (auto& w : workers) w.join();
  load_result r;
  r.elapsed_s = seconds_since(start);
  r.readings = readings.load();
  r.batches = batches.load();
  r.errors = errors.load();
  for (auto& l : latencies) r.latencies_ms.insert(r.latencies_ms.end(), l.begin(), l.end());
  std::sort(r.latencies_ms.begin(), r.latencies_ms.end());
  return r;
}

struct run_result {
  double readings_per_s = 0;
  double batches_per_s = 0;
  double p50_ms = 0, p99_ms = 0;
  double readings_per_commit = std::nan("");
  std::uint64_t errors = 0;
  std::uint64_t pages = 0;
  double stop_s = std::nan("");  ///< alertd: SIGTERM to exit
};

run_result summarize(const load_result& l) {
  run_result r;
  r.readings_per_s = static_cast<double>(l.readings) / l.elapsed_s;
  r.batches_per_s = static_cast<double>(l.batches) / l.elapsed_s;
  r.p50_ms = percentile(l.latencies_ms, 50);
  r.p99_ms = percentile(l.latencies_ms, 99);
  r.errors = l.errors;
  return r;
}

void print_table_header(bool engine) {
  std::printf("%-6s %-5s %12s %11s %9s %9s %16s %7s", "batch", "sync", "readings/s", "batches/s", "p50 ms", "p99 ms",
              "readings/commit", "errors");
  if (engine) std::printf(" %6s %7s", "pages", "stop s");
  std::printf("\n");
}

void print_row(std::size_t batch, bool sync, const run_result& r, bool engine) {
  std::printf("%-6zu %-5s %12s %11s %9s %9s %16s %7llu", batch, sync ? "on" : "off", grouped(r.readings_per_s).c_str(),
              grouped(r.batches_per_s).c_str(), fixed(r.p50_ms, 2).c_str(), fixed(r.p99_ms, 2).c_str(),
              fixed(r.readings_per_commit, 1).c_str(), static_cast<unsigned long long>(r.errors));
  if (engine) std::printf(" %6llu %7s", static_cast<unsigned long long>(r.pages), fixed(r.stop_s, 1).c_str());
  std::printf("\n");
  std::fflush(stdout);
}

// ---- 1. the bare pipeline -----------------------------------------------------------------

// What the node's journal_backend does, minus the host: append, answer from the completion.
class journal_only_backend final : public cluster::ingest_backend {
public:
  explicit journal_only_backend(storage::journal& j) : journal_(j) {}
  status submit(std::vector<reading> readings, epoch_ms received, done_fn done, origin /*from*/) override {
    return journal_.append(std::move(readings), received,
                           [done = std::move(done)](storage::append_result&& r, std::vector<reading>&&) {
                             done(r.error, r.accepted, r.duplicates);
                           });
  }

private:
  storage::journal& journal_;
};

run_result run_bare(const settings& s, std::size_t batch, const fs::path& dir) {
  fs::remove_all(dir);
  const config::node_options d;  // the node's defaults for what the node would configure
  storage::journal_options jo;
  jo.sync = s.sync;
  jo.max_pending_readings = d.ingest_max_pending_readings;
  auto j = storage::journal::open(dir.string(), jo);
  if (!j) throw std::runtime_error("journal: " + j.error().to_string());
  journal_only_backend backend{**j};
  wall_clock clock;
  zmq::context_t ctx{1};
  cluster::ingest_options io;
  io.endpoint = "tcp://127.0.0.1:*";
  io.max_message_bytes = d.ingest_max_message_bytes;
  io.limits.max_readings = d.ingest_max_batch_readings;
  io.max_future_ms = d.ingest_max_future_ms;
  auto server = cluster::ingest_server::start(ctx, io, backend, clock);
  if (!server) throw std::runtime_error("ingest server: " + server.error().to_string());
  auto load = drive((*server)->endpoint(), s, batch);
  (*server)->stop();
  auto st = (*j)->stats();
  (*j)->close();
  server->reset();
  j->reset();
  fs::remove_all(dir);
  auto r = summarize(load);
  if (st.commits) r.readings_per_commit = static_cast<double>(st.readings) / static_cast<double>(st.commits);
  return r;
}

// ---- alertd, a gateway, a control client ----------------------------------------------------

struct alertd_instance {
  std::unique_ptr<child_process> proc;
  std::string ingest, pager, control;
  fs::path log;
  double ready_s = 0;  ///< spawn to ready line
};

alertd_instance start_alertd(const std::string& exe, const fs::path& scratch, bool sync, std::chrono::seconds timeout,
                             bool fresh = true, const std::vector<std::string>& extra = {}) {
  const fs::path data = scratch / "data";
  if (fresh) fs::remove_all(data);
  fs::create_directories(scratch);
  alertd_instance a;
  a.log = scratch / "alertd.log";
  std::vector<std::string> args{"--data-dir", data.string(), "--ingest.endpoint", "tcp://127.0.0.1:*", "--pager.endpoint",
                                "tcp://127.0.0.1:*", "--control.endpoint", "tcp://127.0.0.1:*", "--stats-interval", "0",
                                "--metrics.endpoint", "off", "--journal.sync", sync ? "true" : "false", "--log-level", "warn"};
  if (current_mode.curve && current_keys)
    args.insert(args.end(), {"--security.node-key", current_keys->node_key, "--security.access", current_keys->access});
  else
    args.emplace_back("--security.plaintext");
  if (current_mode.at_rest && current_keys)
    args.insert(args.end(), {"--security.data-key-file", current_keys->data_keys});
  else
    args.emplace_back("--security.plaintext-storage");
  args.insert(args.end(), extra.begin(), extra.end());
  a.proc = std::make_unique<child_process>(exe, args, a.log.string());
  auto line = a.proc->wait_for_line("alertd ready", timeout);
  if (!line)
    throw std::runtime_error("alertd gave no ready line within " + std::to_string(timeout.count()) + " s; its log " +
                             a.log.string() + " ends:\n" + tail_of_file(a.log, 10));
  a.ready_s = seconds_since(a.proc->spawned());
  std::istringstream in{*line};
  for (std::string tok; in >> tok;) {
    auto eq = tok.find('=');
    if (eq == std::string::npos) continue;
    auto name = tok.substr(0, eq), value = tok.substr(eq + 1);
    if (name == "ingest") a.ingest = value;
    if (name == "pager") a.pager = value;
    if (name == "control") a.control = value;
  }
  if (a.ingest.empty() || a.pager.empty() || a.control.empty())
    throw std::runtime_error("alertd's ready line lacks an endpoint: " + *line);
  return a;
}

/// SIGTERM and wait; seconds to exit. A non-zero exit is reported on stderr.
double stop_alertd(alertd_instance& a) {
  const auto t = clk::now();
  const int code = a.proc->terminate(std::chrono::seconds{30});
  const double secs = seconds_since(t);
  if (code != 0)
    std::fprintf(stderr, "alert-bench: alertd exited with %d; its log ends:\n%s", code, tail_of_file(a.log, 10).c_str());
  return secs;
}

// Probe bookkeeping shared by the probe sender and the gateway.
struct probe_book {
  std::mutex m;
  std::vector<std::optional<clk::time_point>> sent, paged;
  explicit probe_book(std::size_t n) : sent(n), paged(n) {}
};

constexpr std::string_view probe_prefix = "probe-";

// A pager gateway on its own thread: hello for every target, `received` for every page,
// counts the first page (level 0) of each alert and times probes' pages.
class gateway {
public:
  explicit gateway(const std::string& endpoint, probe_book* probes = nullptr)
      : probes_(probes), thread_([this, endpoint] { loop(endpoint); }) {}
  ~gateway() {
    stop_ = true;
    thread_.join();
  }
  gateway(const gateway&) = delete;
  gateway& operator=(const gateway&) = delete;

  bool wait_connected(std::chrono::milliseconds timeout) const {
    const auto deadline = clk::now() + timeout;
    while (!connected_ && clk::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds{5});
    return connected_;
  }
  std::uint64_t first_pages() const { return first_pages_; }
  std::uint64_t page_messages() const { return page_messages_; }

private:
  void loop(const std::string& endpoint) {
    zmq::context_t ctx{1};
    zmq::socket_t sock{ctx, zmq::socket_type::dealer};
    sock.set(zmq::sockopt::linger, 0);
    as_client(sock, &bench_keys::gateway);
    sock.connect(endpoint);
    const std::string hello = wire::encode_hello({"alert-bench", {std::string{wire::any_target}}});
    sock.send(zmq::buffer(hello), zmq::send_flags::none);
    std::unordered_set<std::string> alerts_seen;
    while (!stop_) {
      zmq::pollitem_t item{sock.handle(), 0, ZMQ_POLLIN, 0};
      if (zmq::poll(&item, 1, std::chrono::milliseconds{50}) == 0) continue;
      zmq::message_t m;
      while (sock.recv(m, zmq::recv_flags::dontwait)) {
        const auto at = clk::now();
        auto msg = wire::decode_from_node(static_cast<const char*>(m.data()), m.size());
        if (!msg) continue;
        if (std::holds_alternative<wire::pager_welcome>(*msg)) {
          connected_ = true;
        } else if (auto* p = std::get_if<wire::pager_page>(&*msg)) {
          ++page_messages_;
          sock.send(zmq::buffer(wire::encode_status({p->page_id, page_status::received, "", wall_clock{}.now()})),
                    zmq::send_flags::none);
          if (p->level != 0 || p->repeat != 0 || !alerts_seen.insert(p->alert_id).second) continue;
          ++first_pages_;
          if (probes_ && p->device.rfind(probe_prefix, 0) == 0) {
            const auto digits = p->device.substr(probe_prefix.size());
            char* end = nullptr;
            const auto n = std::strtoull(digits.c_str(), &end, 10);
            std::lock_guard lock{probes_->m};
            if (!digits.empty() && end && *end == '\0' && n < probes_->paged.size() && !probes_->paged[n])
              probes_->paged[n] = at;
          }
        } else if (auto* e = std::get_if<wire::pager_error>(&*msg)) {
          if (e->code == errc::unauthorized) sock.send(zmq::buffer(hello), zmq::send_flags::none);
        }
      }
    }
  }

  std::atomic<bool> stop_{false}, connected_{false};
  std::atomic<std::uint64_t> first_pages_{0}, page_messages_{0};
  probe_book* probes_;
  std::thread thread_;  // last: starts once the members above exist
};

/// One control request; nothing when no reply came within `timeout`.
std::optional<wire::control_reply> control_call(const std::string& endpoint, const std::string& cmd, wire::value args,
                                                std::chrono::milliseconds timeout) {
  zmq::context_t ctx{1};
  zmq::socket_t sock{ctx, zmq::socket_type::dealer};
  sock.set(zmq::sockopt::linger, 0);
  as_client(sock, &bench_keys::operator_);
  sock.connect(endpoint);
  wire::control_request req;
  req.id = 1;
  req.cmd = cmd;
  req.args = std::move(args);
  sock.send(zmq::buffer(wire::encode_control_request(req)), zmq::send_flags::none);
  const auto deadline = clk::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clk::now());
    if (left.count() <= 0) return std::nullopt;
    zmq::pollitem_t item{sock.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, left) == 0) continue;
    zmq::message_t m;
    if (!sock.recv(m, zmq::recv_flags::dontwait)) continue;
    auto reply = wire::decode_control_reply(static_cast<const char*>(m.data()), m.size());
    if (reply && reply->id == req.id) return std::move(*reply);
  }
}

// ---- 2. the full engine -----------------------------------------------------------------------

run_result run_engine(const std::string& exe, const settings& s, std::size_t batch, const fs::path& scratch) {
  auto d = start_alertd(exe, scratch, s.sync, std::chrono::seconds{60});
  run_result r;
  {
    gateway gw{d.pager};
    if (!gw.wait_connected(std::chrono::seconds{10})) throw std::runtime_error("the gateway got no welcome from alertd");
    r = summarize(drive(d.ingest, s, batch));
    if (auto st = control_call(d.control, "status", wire::value_object{}, std::chrono::seconds{30}); st && st->ok) {
      if (const auto* stats = st->result.get("stats")) {
        auto accepted = stats->integer("accepted"), commits = stats->integer("journal_commits");
        if (accepted && commits && *commits > 0)
          r.readings_per_commit = static_cast<double>(*accepted) / static_cast<double>(*commits);
      }
    }
    r.pages = gw.first_pages();
  }
  r.stop_s = stop_alertd(d);
  fs::remove_all(scratch);
  return r;
}

// ---- 6. three-node cluster ----------------------------------------------------------------------

// A loopback port free now for a member's peer endpoint, below Linux's ephemeral range
// (32768 and up): the bench's own connections and `:*` binds cannot take it before the
// member binds it.
int free_loopback_port() {
  static std::mt19937 pick{static_cast<std::uint32_t>(::getpid())};
  for (int attempt = 0; attempt < 1000; ++attempt) {
    const int port = 20000 + static_cast<int>(pick() % 12000);
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) throw std::runtime_error("socket failed");
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    const bool free = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    if (free) return port;
  }
  throw std::runtime_error("cannot find a free loopback port between 20000 and 32000");
}

/// Three alertd processes as one cluster (plaintext: the keys of one node do not make a
/// cluster), the load spread over their ingest endpoints.
run_result run_cluster(const std::string& exe, const settings& s, std::size_t batch, const fs::path& scratch) {
  std::string members;
  for (int i = 1; i <= 3; ++i)
    members += (i > 1 ? "," : "") + ("node-" + std::to_string(i)) + "=tcp://127.0.0.1:" + std::to_string(free_loopback_port());
  const auto saved = current_mode;
  current_mode = security_mode{"plaintext"};
  std::vector<alertd_instance> nodes;
  for (int i = 1; i <= 3; ++i)
    nodes.push_back(start_alertd(exe, scratch / ("node-" + std::to_string(i)), s.sync, std::chrono::seconds{60}, true,
                                 {"--node-id", "node-" + std::to_string(i), "--cluster.members", members}));
  current_mode = saved;
  // Every member in quorum, routing every shard to an owner, the shards spread over all three.
  const auto deadline = clk::now() + std::chrono::seconds{30};
  for (const auto& n : nodes)
    for (;;) {
      auto st = control_call(n.control, "status", wire::value_object{}, std::chrono::seconds{10});
      const auto* c = st && st->ok ? st->result.get("cluster") : nullptr;
      const auto* owned = c ? c->get("owned") : nullptr;
      std::int64_t routed = 0;
      if (owned && owned->is_object())
        for (const auto& [id, count] : std::get<wire::value_object>(owned->v))
          if (count.is_int()) routed += std::get<std::int64_t>(count.v);
      if (c && c->boolean("quorum").value_or(false) && owned && owned->is_object() &&
          std::get<wire::value_object>(owned->v).size() == 3 && routed == c->integer("shards").value_or(-1))
        break;
      if (clk::now() > deadline) throw std::runtime_error("the three nodes did not form a cluster within 30 s");
      std::this_thread::sleep_for(std::chrono::milliseconds{50});
    }
  std::vector<std::string> endpoints;
  for (const auto& n : nodes) endpoints.push_back(n.ingest);
  run_result r = summarize(drive(endpoints, s, batch));
  for (auto& n : nodes) r.stop_s = std::max(r.stop_s, stop_alertd(n));
  fs::remove_all(scratch);
  return r;
}

// ---- 3. arrival-to-page latency ---------------------------------------------------------------

constexpr double probes_per_second = 20;
constexpr auto probe_deadline = std::chrono::seconds{5};

void run_latency(const std::string& exe, const settings& s, double engine_max_b100, double latency_seconds,
                 const fs::path& scratch) {
  constexpr std::size_t bg_batch = 100;
  const double rate = 0.2 * engine_max_b100;  // readings/s offered in the background
  const auto probes = static_cast<std::size_t>(std::llround(probes_per_second * latency_seconds));
  auto d = start_alertd(exe, scratch, s.sync, std::chrono::seconds{60});
  probe_book book{probes};
  std::atomic<bool> stop_bg{false};
  std::atomic<std::uint64_t> bg_sent{0}, bg_acked{0}, bg_errors{0}, bg_skipped{0}, probe_acks{0}, probe_errors{0};
  double bg_elapsed = 0;
  {
    gateway gw{d.pager, &book};
    if (!gw.wait_connected(std::chrono::seconds{10})) throw std::runtime_error("the gateway got no welcome from alertd");
    zmq::context_t ctx{1};
    const epoch_ms ts = wall_clock{}.now() - 1000;
    const auto bg_start = clk::now();
    // Background: batches of 100 normal readings on a fixed schedule (open loop).
    std::thread bg([&] {
      zmq::socket_t sock{ctx, zmq::socket_type::dealer};
      sock.set(zmq::sockopt::linger, 0);
      as_client(sock, &bench_keys::integrator);
      sock.connect(d.ingest);
      batch_maker mk{"bench-bg-", std::max<std::size_t>(1, s.devices), ts};
      const auto interval = std::chrono::duration_cast<clk::duration>(
          std::chrono::duration<double>(static_cast<double>(bg_batch) / std::max(rate, 1.0)));
      auto next = clk::now();
      std::int64_t id = 0;
      std::uint64_t outstanding = 0;
      while (!stop_bg) {
        auto now = clk::now();
        if (now >= next) {
          if (outstanding < 1000) {  // the engine is far behind: do not queue without bound
            sock.send(zmq::buffer(wire::encode_request(id++, mk.make(bg_batch))), zmq::send_flags::none);
            ++outstanding;
            bg_sent += bg_batch;
          } else {
            ++bg_skipped;
          }
          next += interval;
          if (now - next > std::chrono::seconds{1}) next = now;  // fell far behind: no burst to catch up
          continue;
        }
        const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next - now) + std::chrono::milliseconds{1};
        zmq::pollitem_t item{sock.handle(), 0, ZMQ_POLLIN, 0};
        if (zmq::poll(&item, 1, wait) == 0) continue;
        zmq::message_t m;
        while (sock.recv(m, zmq::recv_flags::dontwait)) {
          auto reply = wire::decode_reply(static_cast<const char*>(m.data()), m.size());
          if (!reply) continue;
          if (outstanding > 0) --outstanding;
          if (auto* ack = std::get_if<wire::ingest_ack>(&*reply))
            bg_acked += ack->accepted;
          else
            ++bg_errors;
        }
      }
    });
    std::this_thread::sleep_for(std::chrono::seconds{1});  // warm-up: the background load settles
    // Probes: one reading per batch, each from a new device bound to a new patient.
    std::atomic<bool> probes_sent{false};
    clk::time_point last_probe;
    std::thread pr([&] {
      zmq::socket_t sock{ctx, zmq::socket_type::dealer};
      sock.set(zmq::sockopt::linger, 0);
      as_client(sock, &bench_keys::integrator);
      sock.connect(d.ingest);
      const auto interval =
          std::chrono::duration_cast<clk::duration>(std::chrono::duration<double>(1.0 / probes_per_second));
      auto next = clk::now();
      std::size_t n = 0;
      auto drain = [&] {
        zmq::message_t m;
        while (sock.recv(m, zmq::recv_flags::dontwait)) {
          auto reply = wire::decode_reply(static_cast<const char*>(m.data()), m.size());
          auto* ack = reply ? std::get_if<wire::ingest_ack>(&*reply) : nullptr;
          if (ack && ack->accepted == 1)
            ++probe_acks;
          else
            ++probe_errors;
        }
      };
      while (!stop_bg) {
        if (n < probes && clk::now() >= next) {
          reading_input r;
          r.device = std::string{probe_prefix} + std::to_string(n);
          r.patient = "probe-patient-" + std::to_string(n);
          r.metric = "spo2";
          r.value = 80;  // below spo2_low's `immediate: 85`: fires with no delay
          r.ts = wall_clock{}.now();
          r.seq = 1;
          const auto frame = wire::encode_request(static_cast<std::int64_t>(n), {r});
          {
            std::lock_guard lock{book.m};
            book.sent[n] = clk::now();
            last_probe = *book.sent[n];
          }
          sock.send(zmq::buffer(frame), zmq::send_flags::none);
          ++n;
          next += interval;
          if (n == probes) probes_sent = true;
          continue;
        }
        const auto wait = n < probes ? std::chrono::duration_cast<std::chrono::milliseconds>(next - clk::now()) +
                                           std::chrono::milliseconds{1}
                                     : std::chrono::milliseconds{50};
        zmq::pollitem_t item{sock.handle(), 0, ZMQ_POLLIN, 0};
        if (zmq::poll(&item, 1, std::max(wait, std::chrono::milliseconds{0})) > 0) drain();
      }
      drain();
    });
    // Until every probe is paged, or 5 s after the last probe left.
    if (probes == 0) probes_sent = true;
    while (!probes_sent) std::this_thread::sleep_for(std::chrono::milliseconds{20});
    clk::time_point last;
    {
      std::lock_guard lock{book.m};
      last = probes ? last_probe : clk::now();
    }
    for (;;) {
      {
        std::lock_guard lock{book.m};
        if (std::all_of(book.paged.begin(), book.paged.end(), [](const auto& p) { return p.has_value(); })) break;
      }
      if (clk::now() >= last + probe_deadline) break;
      std::this_thread::sleep_for(std::chrono::milliseconds{10});
    }
    stop_bg = true;
    bg_elapsed = seconds_since(bg_start);
    bg.join();
    pr.join();
  }
  stop_alertd(d);
  fs::remove_all(scratch);

  std::vector<double> lat;
  std::size_t late = 0, missing = 0;
  {
    std::lock_guard lock{book.m};
    for (std::size_t i = 0; i < probes; ++i) {
      if (!book.sent[i] || !book.paged[i]) {
        ++missing;
        continue;
      }
      const double ms = ms_between(*book.sent[i], *book.paged[i]);
      if (ms > std::chrono::duration<double, std::milli>(probe_deadline).count()) ++late;
      lat.push_back(ms);
    }
  }
  std::sort(lat.begin(), lat.end());
  std::printf("background   %s readings/s offered (20%% of %s) in batches of 100 over %zu devices; %s readings/s "
              "acked, %llu error replies, %llu sends skipped (1000 batches in flight)\n",
              grouped(rate).c_str(), grouped(engine_max_b100).c_str(), s.devices,
              grouped(static_cast<double>(bg_acked.load()) / bg_elapsed).c_str(),
              static_cast<unsigned long long>(bg_errors.load()), static_cast<unsigned long long>(bg_skipped.load()));
  std::printf("probes       %zu sent (%.0f/s for %.0f s), %llu acked, %llu refused or failed; %zu paged\n", probes,
              probes_per_second, latency_seconds, static_cast<unsigned long long>(probe_acks.load()),
              static_cast<unsigned long long>(probe_errors.load()), lat.size());
  std::printf("latency ms   p50 %s   p99 %s   p99.9 %s   max %s   (n = %zu; reading sent -> page at the gateway)\n",
              fixed(percentile(lat, 50), 2).c_str(), fixed(percentile(lat, 99), 2).c_str(),
              fixed(percentile(lat, 99.9), 2).c_str(), fixed(lat.empty() ? std::nan("") : lat.back(), 2).c_str(),
              lat.size());
  std::printf("no page      %zu probes got no page within 5 s (%zu none at all, %zu later)\n", missing + late, missing,
              late);
  if (probes < 1000)
    std::printf("             (with %zu probes, p99.9 is the largest or near it: raise --latency-seconds for more)\n",
                probes);
  std::fflush(stdout);
}

// ---- 4. memory per device actor -------------------------------------------------------------

long rss_kb() {
  std::ifstream statm{"/proc/self/statm"};
  long pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * (::sysconf(_SC_PAGESIZE) / 1024);
}

// Activates `count` device actors (each rebuilding from RocksDB) and reports the resident
// memory they add and the activation cost.
void run_entities(std::size_t count, const std::string& dir, unsigned threads) {
  // Sync off: durability is not measured here, and at shutdown every actor writes a snapshot
  // that would otherwise be synced one by one (100 000 fsyncs, minutes on a virtio disk).
  storage::journal_options jo;
  jo.sync = false;
  auto j = storage::journal::open(dir, jo);
  if (!j) throw std::runtime_error("journal: " + j.error().to_string());
  caf::actor_system_config cfg;
  cfg.set("scheduler.max-threads", static_cast<std::size_t>(threads));
  // As the node runs CAF (actors/node.cpp): a shared queue, no busy work stealing.
  cfg.set("scheduler.policy", caf::atom("sharing"));
  cfg.set("logger.verbosity", caf::atom("quiet"));
  caf::actor_system sys{cfg};
  wall_clock clock;
  actors::host_config hc;
  hc.journal = j->get();
  hc.clock = &clock;
  hc.idle_timeout = std::chrono::hours{24};
  // The default rules, as a node runs them: each device keeps the states of the rules on
  // its metrics.
  auto loaded = config::parse_rules(config::default_rules_yaml());
  if (loaded.rules) hc.rules = std::make_shared<const rule_set>(std::move(*loaded.rules));
  auto host = actors::spawn_shard_host(sys, hc);
  const epoch_ms ts = clock.now() - 1000;
  // One reading per device, handed to the host as the journal would after an append.
  std::vector<reading> rs;
  rs.reserve(count);
  for (std::size_t i = 0; i < count; ++i)
    rs.push_back(reading{*device_id::make("dev-" + std::to_string(i)), std::nullopt, metric::heart_rate, 70, ts, 1});
  // Journal them first, so that each activation rebuilds a device from real RocksDB data.
  std::atomic<std::size_t> journaled{0};
  for (std::size_t off = 0; off < count; off += 10000) {
    std::vector<reading> chunk(rs.begin() + static_cast<std::ptrdiff_t>(off),
                               rs.begin() + static_cast<std::ptrdiff_t>(std::min(count, off + 10000)));
    // Passed by copy: a refused (overloaded) append consumes its argument.
    while ((*j)->append(chunk, ts, [&](storage::append_result&& r, std::vector<reading>&&) {
             journaled += r.accepted;
           }).code() == errc::overloaded)
      std::this_thread::sleep_for(std::chrono::milliseconds{10});
  }
  while (journaled < count) std::this_thread::sleep_for(std::chrono::milliseconds{10});
  caf::scoped_actor self{sys};
  auto stats = [&] {
    actors::host_stats out;
    self->request(host, std::chrono::seconds{60}, actors::stats_atom::value)
        .receive([&](actors::host_stats& s) { out = s; }, [](caf::error&) {});
    return out;
  };
  stats();  // warm up the scheduler before measuring
  const long before = rss_kb();  // after building the readings: they are not the actors' cost
  const auto start = clk::now();
  caf::anon_send(host, actors::reading_batch{std::move(rs), ts});
  while (stats().active_devices < count) std::this_thread::sleep_for(std::chrono::milliseconds{20});
  const double secs = seconds_since(start);
  const long after = rss_kb();
  std::printf("active device actors      %zu\n", count);
  std::printf("resident memory added     %ld KiB\n", after - before);
  std::printf("per active device actor   %.0f bytes (includes its RocksDB reads' cache growth)\n",
              static_cast<double>(after - before) * 1024.0 / static_cast<double>(count));
  std::printf("activation                %.2f s in all, %.1f us per actor (rebuild from RocksDB included)\n", secs,
              secs * 1e6 / static_cast<double>(count));
  std::fflush(stdout);
  self->send(host, actors::shutdown_atom::value);
}

constexpr std::size_t memory_entities = 100000;

// --entities in a child process: a fresh heap, nothing left over from the earlier parts.
// Once it has printed its last line the measure is complete: the child is killed rather
// than waited for (stopping 100 000 actors is not what this measures).
void run_memory(const std::string& self_exe, const fs::path& scratch) {
  std::vector<std::string> lines;
  std::optional<std::string> last;
  {
    child_process child{self_exe, {"--entities", std::to_string(memory_entities), "--dir", scratch.string()}, ""};
    last = child.wait_for_line("activation", std::chrono::minutes{10}, &lines);
    if (last) lines.push_back(*last);
  }  // killed here
  fs::remove_all(scratch);
  for (const auto& line : lines)
    if (!line.empty()) std::printf("%s\n", line.c_str());
  std::fflush(stdout);
  if (!last) throw std::runtime_error("alert-bench --entities failed or did not finish within 10 min");
}

// ---- 5. recovery --------------------------------------------------------------------------------

constexpr std::size_t recovery_per_device = 100;

void run_recovery(const std::string& exe, bool sync, std::size_t count, const fs::path& scratch) {
  fs::remove_all(scratch);
  fs::create_directories(scratch);
  const fs::path data = scratch / "data";
  const std::size_t devices = (count + recovery_per_device - 1) / recovery_per_device;
  // Fill: devices x 100 heart_rate readings, an hour ago, one second apart; sync off.
  const auto fill_start = clk::now();
  {
    storage::journal_options jo;
    jo.sync = false;
    if (current_mode.at_rest && current_keys) {  // the node will read it with the same keys
      auto keys = storage::load_data_keys(current_keys->data_keys);
      if (!keys) throw std::runtime_error(keys.error().message());
      jo.keys = *keys;
    }
    auto j = storage::journal::open(data.string(), jo);
    if (!j) throw std::runtime_error("journal: " + j.error().to_string());
    const epoch_ms base_ts = wall_clock{}.now() - 3'600'000;
    std::atomic<std::size_t> done{0}, failed{0};
    constexpr std::size_t chunk = 10000;
    for (std::size_t off = 0; off < count; off += chunk) {
      std::vector<reading> rs;
      rs.reserve(std::min(chunk, count - off));
      for (std::size_t i = off; i < std::min(count, off + chunk); ++i) {
        const auto seq = static_cast<std::uint64_t>(i % recovery_per_device + 1);
        rs.push_back(reading{*device_id::make("rec-" + std::to_string(i / recovery_per_device)), std::nullopt,
                             metric::heart_rate, static_cast<double>(60 + i % 40),
                             base_ts + static_cast<epoch_ms>(seq) * 1000, seq});
      }
      // Passed by copy: a refused (overloaded) append consumes its argument.
      while ((*j)->append(rs, base_ts + 100'000, [&](storage::append_result&& r, std::vector<reading>&& in) {
               if (!r.error) failed += in.size();
               done += in.size();
             }).code() == errc::overloaded)
        std::this_thread::sleep_for(std::chrono::milliseconds{2});
    }
    while (done < count) std::this_thread::sleep_for(std::chrono::milliseconds{5});
    (*j)->close();
    if (failed > 0) throw std::runtime_error("journal fill: " + std::to_string(failed.load()) + " readings not written");
  }
  const double fill_s = seconds_since(fill_start);
  std::printf("journal      %s readings (%zu devices x up to %zu) written in %.1f s with sync off (%s readings/s)\n",
              grouped(static_cast<double>(count)).c_str(), devices, recovery_per_device, fill_s,
              grouped(static_cast<double>(count) / fill_s).c_str());
  std::fflush(stdout);

  auto d = start_alertd(exe, scratch, sync, std::chrono::minutes{10}, false);
  const auto spawned = d.proc->spawned();
  std::printf("restart      %.3f s from spawn to the ready line\n", d.ready_s);
  const std::string probe = "rec-" + std::to_string(devices / 2);
  auto reply = control_call(d.control, "device", wire::value_object{{"id", probe}}, std::chrono::minutes{2});
  const double query_s = seconds_since(spawned);
  if (!reply)
    std::printf("query        no answer to `device %s` within 2 min\n", probe.c_str());
  else if (!reply->ok)
    std::printf("query        `device %s` refused after %.3f s from spawn: %s\n", probe.c_str(), query_s,
                reply->message.c_str());
  else
    std::printf("query        %.3f s from spawn to the answer of `device %s` (last_seq %lld)\n", query_s, probe.c_str(),
                static_cast<long long>(reply->result.integer("last_seq").value_or(-1)));
  const double stop_s = stop_alertd(d);
  std::printf("stop         %.3f s from SIGTERM to exit\n", stop_s);
  std::fflush(stdout);
  fs::remove_all(scratch);
}

// ---- the report -------------------------------------------------------------------------------

void print_machine() {
  std::string model = "unknown";
  {
    std::ifstream in{"/proc/cpuinfo"};
    for (std::string line; std::getline(in, line);)
      if (line.rfind("model name", 0) == 0) {
        auto colon = line.find(':');
        if (colon != std::string::npos) model = line.substr(line.find_first_not_of(" \t", colon + 1));
        break;
      }
  }
  double mem_gib = 0;
  {
    std::ifstream in{"/proc/meminfo"};
    for (std::string line; std::getline(in, line);)
      if (line.rfind("MemTotal:", 0) == 0) {
        mem_gib = std::strtod(line.c_str() + 9, nullptr) / (1024.0 * 1024.0);
        break;
      }
  }
  const long cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
  std::printf("machine   %ld CPUs, %s, %.1f GiB RAM\n", cpus, model.c_str(), mem_gib);
  // The sources' own checkout first (this file's directory when built), then the current one.
  std::string where = fs::path{__FILE__}.parent_path().string();
  std::string commit;
  if (!where.empty() && fs::path{where}.is_absolute() && fs::exists(where) && where.find('\'') == std::string::npos) {
    commit = run_command("git -C '" + where + "' rev-parse --short HEAD 2>/dev/null");
    if (!commit.empty() &&
        !run_command("git -C '" + where + "' status --porcelain --untracked-files=no 2>/dev/null").empty())
      commit += " (with uncommitted changes)";
  }
  if (commit.empty()) commit = run_command("git rev-parse --short HEAD 2>/dev/null");
  std::printf("commit    %s\n", commit.empty() ? "unknown" : commit.c_str());
#ifdef __OPTIMIZE__
  std::printf("build     optimized\n");
#else
  std::printf("build     NOT optimized (figures mean little)\n");
#endif
  char date[64] = "";
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  if (::gmtime_r(&now, &tm)) std::strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", &tm);
  std::printf("date      %s\n", date);
}

void section(const char* title) {
  std::printf("\n== %s\n", title);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL})
    std::signal(sig, on_fatal_signal);
  std::atexit(kill_children);

  settings s;
  std::string batches_arg = "1,100";
  std::string dir_arg, alertd_arg, skip_arg, security_arg = "plaintext,full";
  double latency_seconds = 10;
  std::size_t recovery_readings = 1'000'000;
  po::options_description desc{
      "alert-bench: the engine against the bare pipeline (ZeroMQ, decode, RocksDB journal) in one run,\n"
      "with arrival-to-page latency, memory per device actor and recovery time\n\nOptions"};
  desc.add_options()
      ("help,h", "show this help")
      ("batches", po::value(&batches_arg)->default_value(batches_arg), "comma-separated readings per request")
      ("threads", po::value(&s.threads)->default_value(s.threads), "client threads, one DEALER each")
      ("window", po::value(&s.window)->default_value(s.window), "requests in flight per client")
      ("devices", po::value(&s.devices)->default_value(s.devices), "distinct devices")
      ("seconds", po::value(&s.seconds)->default_value(s.seconds), "measuring time per throughput run")
      ("sync", po::value(&s.sync)->default_value(s.sync), "fsync the WAL before each ack (group commit)")
      ("entities", po::value<std::size_t>()->default_value(0),
       "only this: activate this many device actors and report memory per actor")
      ("dir", po::value(&dir_arg), "scratch directory (default: a new one under /tmp, removed after)")
      ("alertd", po::value(&alertd_arg), "the alertd binary (default: alertd beside this program)")
      ("latency-seconds", po::value(&latency_seconds)->default_value(latency_seconds),
       "seconds of probes (20/s) for the latency measure")
      ("recovery-readings", po::value(&recovery_readings)->default_value(recovery_readings),
       "readings journaled before the restart measure (0: skip it)")
      ("skip", po::value(&skip_arg), "comma-separated parts to skip: bare,engine,latency,memory,recovery,cluster")
      ("security", po::value(&security_arg)->default_value(security_arg),
       "how the alertd under test is secured, comma-separated, each measured in the engine part: plaintext, "
       "curve (CURVE on every endpoint), full (CURVE and encryption at rest); latency and recovery use the last");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, desc), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "alert-bench: " << e.what() << "\n";
    return 2;
  }
  if (vm.count("help")) {
    std::cout << desc;
    return 0;
  }
  const bool own_base = dir_arg.empty();
  const fs::path base = own_base ? fs::temp_directory_path() / ("alert-bench-" + std::to_string(::getpid()))
                                 : fs::path{dir_arg};
  if (auto n = vm["entities"].as<std::size_t>(); n > 0) {
    try {
      fs::remove_all(base / "entities");
      run_entities(n, (base / "entities").string(), 2);
      fs::remove_all(base / "entities");
      if (own_base) fs::remove_all(base);
    } catch (const std::exception& e) {
      std::cerr << "alert-bench: " << e.what() << "\n";
      return 1;
    }
    return 0;
  }

  // Options.
  std::set<std::string> skip;
  if (!skip_arg.empty())
    for (const auto& part : split(skip_arg, ',')) {
      if (part != "bare" && part != "engine" && part != "latency" && part != "memory" && part != "recovery") {
        std::cerr << "alert-bench: --skip takes bare, engine, latency, memory and recovery, not '" << part << "'\n";
        return 2;
      }
      skip.insert(part);
    }
  std::vector<std::size_t> batches;
  for (const auto& tok : split(batches_arg, ',')) {
    char* end = nullptr;
    const auto v = std::strtoull(tok.c_str(), &end, 10);
    if (tok.empty() || !end || *end != '\0' || v < 1 || v > 10000) {
      std::cerr << "alert-bench: --batches takes sizes from 1 to 10000, not '" << tok << "'\n";
      return 2;
    }
    batches.push_back(static_cast<std::size_t>(v));
  }
  if (s.threads < 1 || s.window < 1 || s.devices < 1 || !(s.seconds > 0) || latency_seconds < 0) {
    std::cerr << "alert-bench: --threads, --window, --devices and --seconds must be positive\n";
    return 2;
  }
  auto enabled = [&](const char* part) { return skip.count(part) == 0; };
  const bool need_alertd = enabled("engine") || enabled("latency") || enabled("cluster") ||
                           (enabled("recovery") && recovery_readings > 0);
  std::string self_exe;
  std::error_code ec;
  self_exe = fs::read_symlink("/proc/self/exe", ec).string();
  std::string alertd = alertd_arg;
  if (alertd.empty() && !self_exe.empty()) alertd = (fs::path{self_exe}.parent_path() / "alertd").string();
  if (need_alertd && (alertd.empty() || ::access(alertd.c_str(), X_OK) != 0)) {
    std::cerr << "alert-bench: no executable alertd at '" << alertd << "' (give --alertd PATH, or --skip engine,latency,recovery)\n";
    return 2;
  }

  int failures = 0;
  auto attempt = [&](const char* what, auto&& fn) {
    try {
      fn();
    } catch (const std::exception& e) {
      ++failures;
      std::printf("FAILED (%s): %s\n", what, e.what());
      std::fflush(stdout);
    }
  };

  std::printf("alert-bench: the engine against the physical limit\n");
  print_machine();
  std::printf("alertd    %s\n", need_alertd ? alertd.c_str() : "(not used)");
  std::printf("load      %zu client threads x %zu requests in flight, %zu devices, heart_rate 60-99/min (fires nothing),\n"
              "          %g s per throughput run, WAL sync %s\n",
              s.threads, s.window, s.devices, s.seconds, s.sync ? "on (fsync before each ack, group commit)" : "off");
  std::fflush(stdout);
  fs::create_directories(base);

  std::vector<security_mode> modes;
  {
    std::stringstream in{security_arg};
    for (std::string m; std::getline(in, m, ',');) {
      if (m == "plaintext") modes.push_back({m, false, false});
      else if (m == "curve") modes.push_back({m, true, false});
      else if (m == "full") modes.push_back({m, true, true});
      else {
        std::cerr << "alert-bench: --security takes plaintext, curve and full, not '" << m << "'\n";
        return 2;
      }
    }
    if (modes.empty()) modes.push_back({"plaintext", false, false});
  }
  const bench_keys keys = make_bench_keys(base / "keys");
  current_keys = &keys;
  std::map<std::size_t, double> bare_rate, engine_rate;
  std::map<std::string, std::map<std::size_t, double>> mode_rate;
  if (enabled("bare")) {
    section("1. Bare pipeline (the limit): DEALER -> ROUTER, MessagePack decode + validation, RocksDB journal "
            "(group commit); no actors, no rules; in-process");
    print_table_header(false);
    for (auto b : batches)
      attempt("bare pipeline", [&] {
        auto r = run_bare(s, b, base / ("bare-b" + std::to_string(b)));
        bare_rate[b] = r.readings_per_s;
        print_row(b, s.sync, r, false);
      });
  }
  if (enabled("engine")) {
    section("2. Full engine: an alertd process, default rules, a pager gateway connected\n"
            "   (pages: first pages the gateway saw, expected 0; stop s: SIGTERM to exit, with the devices active)");
    for (const auto& m : modes) {
      current_mode = m;
      std::printf("security: %s\n", m.name == "plaintext" ? "plaintext (no CURVE, no encryption at rest)"
                                     : m.name == "curve"   ? "CURVE on every endpoint, plaintext storage"
                                                           : "CURVE on every endpoint and AES-256-GCM at rest");
      print_table_header(true);
      for (auto b : batches)
        attempt("full engine", [&] {
          auto r = run_engine(alertd, s, b, base / ("engine-b" + std::to_string(b)));
          mode_rate[m.name][b] = r.readings_per_s;
          print_row(b, s.sync, r, true);
        });
    }
    engine_rate = mode_rate.count("plaintext") ? mode_rate["plaintext"] : mode_rate[modes.front().name];
  }
  if (mode_rate.size() > 1 && mode_rate.count("plaintext")) {
    section("Cost of security: engine readings/s against plaintext");
    std::printf("%-6s %-10s %18s %12s\n", "batch", "security", "engine readings/s", "of plaintext");
    for (auto b : batches)
      for (const auto& m : modes)
        if (mode_rate[m.name].count(b) && mode_rate["plaintext"][b] > 0)
          std::printf("%-6zu %-10s %18s %12s\n", b, m.name.c_str(), grouped(mode_rate[m.name][b]).c_str(),
                      fixed(mode_rate[m.name][b] / mode_rate["plaintext"][b], 2).c_str());
    std::fflush(stdout);
  }
  current_mode = modes.back();
  if (enabled("latency") || (enabled("recovery") && recovery_readings > 0))
    std::printf("\nlatency and recovery run with security: %s\n", current_mode.name.c_str());
  if (!bare_rate.empty() && !engine_rate.empty()) {
    section("Engine / bare pipeline");
    std::printf("%-6s %18s %18s %12s\n", "batch", "bare readings/s", "engine readings/s", "engine/bare");
    for (auto b : batches)
      if (bare_rate.count(b) && engine_rate.count(b))
        std::printf("%-6zu %18s %18s %12s\n", b, grouped(bare_rate[b]).c_str(), grouped(engine_rate[b]).c_str(),
                    bare_rate[b] > 0 ? fixed(engine_rate[b] / bare_rate[b], 2).c_str() : "-");
    std::fflush(stdout);
  }
  if (enabled("latency")) {
    section("3. Arrival-to-page latency at 20% of the engine's maximum at batch 100 (a fresh alertd)");
    attempt("latency", [&] {
      double max_b100 = engine_rate.count(100) ? engine_rate[100] : 0;
      if (max_b100 <= 0) {
        auto r = run_engine(alertd, s, 100, base / "engine-calibration");
        max_b100 = r.readings_per_s;
        std::printf("calibration  the engine at batch 100 (not measured above): %s readings/s\n",
                    grouped(max_b100).c_str());
      }
      run_latency(alertd, s, max_b100, latency_seconds, base / "latency");
    });
  }
  if (enabled("memory")) {
    section("4. Resident memory per active device actor (alert-bench --entities 100000, a separate process)");
    attempt("memory", [&] {
      if (self_exe.empty()) throw std::runtime_error("cannot find this program through /proc/self/exe");
      run_memory(self_exe, base / "memory");
    });
  }
  if (enabled("recovery") && recovery_readings > 0) {
    section("5. Recovery: alertd restarted on a data dir holding journaled readings");
    attempt("recovery", [&] { run_recovery(alertd, s.sync, recovery_readings, base / "recovery"); });
  }
  if (enabled("cluster")) {
    section("6. Three-node cluster on this machine (plaintext): readings routed by shard and replicated to\n"
            "   the follower before the ack, the client threads spread over the three ingest endpoints");
    std::printf("%-6s %18s %22s %10s %10s\n", "batch", "cluster readings/s", "one node (plaintext)", "ratio",
                "p50 ms");
    for (auto b : batches)
      attempt("cluster", [&] {
        auto r = run_cluster(alertd, s, b, base / ("cluster-b" + std::to_string(b)));
        const double one = mode_rate.count("plaintext") && mode_rate["plaintext"].count(b) ? mode_rate["plaintext"][b] : 0;
        std::printf("%-6zu %18s %22s %10s %10s\n", b, grouped(r.readings_per_s).c_str(),
                    one > 0 ? grouped(one).c_str() : "-", one > 0 ? fixed(r.readings_per_s / one, 2).c_str() : "-",
                    fixed(r.p50_ms, 2).c_str());
        std::fflush(stdout);
      });
  }
  std::printf("\n");
  std::fflush(stdout);
  if (own_base) fs::remove_all(base, ec);
  return failures ? 1 : 0;
}
