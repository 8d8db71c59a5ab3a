// alert-bench: ingest throughput of a node, in one process, against a temporary data dir;
// with --entities, memory and activation cost of device actors.
// Pipelined DEALER clients send batches of N readings over 10 000 devices to a real node
// (ingest endpoint, validation, journal with group commit and WAL sync) and report
// readings/s and batch latency. docs/benchmarks.md records the figures.
#include <algorithm>
#include <atomic>
#include <boost/program_options.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <unistd.h>
#include <iostream>
#include <map>
#include <thread>
#include <zmq.hpp>

#include "actors/node.hpp"
#include "actors/shard_host.hpp"
#include "actors/wall_clock.hpp"
#include "cluster/ingest_wire.hpp"

namespace po = boost::program_options;
using namespace alert;
using clk = std::chrono::steady_clock;

namespace {

struct run_result {
  double readings_per_s = 0;
  double batches_per_s = 0;
  double p50_ms = 0, p99_ms = 0;
  double readings_per_commit = 0;
  std::uint64_t errors = 0;
};

struct settings {
  std::size_t batch = 100;
  std::size_t threads = 4;
  std::size_t window = 8;
  std::size_t devices = 10000;
  double seconds = 5;
  bool sync = true;
};

run_result run(const settings& s, const std::string& dir) {
  config::node_options o;
  o.data_dir = dir;
  o.ingest_endpoint = "tcp://127.0.0.1:*";
  o.pager_endpoint = "tcp://127.0.0.1:*";
  o.control_endpoint = "tcp://127.0.0.1:*";
  o.journal_sync = s.sync;
  o.stats_interval_s = 0;
  wall_clock clock;
  auto n = node::start(o, clock);
  if (!n) {
    std::cerr << "alert-bench: " << n.error().to_string() << "\n";
    std::exit(1);
  }
  const std::string endpoint = (*n)->ingest_endpoint();
  const epoch_ms ts = clock.now() - 1000;
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
      sock.connect(endpoint);
      std::uint64_t next_batch = 0;
      std::uint64_t seq = 0;
      std::map<std::int64_t, clk::time_point> outstanding;
      const std::size_t dev_per_thread = std::max<std::size_t>(1, s.devices / s.threads);
      auto send_one = [&] {
        std::vector<reading_input> rs(s.batch);
        for (auto& r : rs) {
          ++seq;
          r.device = "bench-" + std::to_string(t) + "-" + std::to_string(seq % dev_per_thread);
          r.metric = "heart_rate";
          r.value = static_cast<double>(60 + seq % 40);
          r.ts = ts;
          r.seq = seq;
        }
        auto id = static_cast<std::int64_t>(next_batch++);
        sock.send(zmq::buffer(wire::encode_request(id, rs)), zmq::send_flags::none);
        outstanding[id] = clk::now();
      };
      while (!stop) {
        while (outstanding.size() < s.window) send_one();
        zmq::pollitem_t item{sock.handle(), 0, ZMQ_POLLIN, 0};
        if (zmq::poll(&item, 1, std::chrono::milliseconds{100}) == 0) continue;
        zmq::message_t msg;
        while (sock.recv(msg, zmq::recv_flags::dontwait)) {
          auto reply = wire::decode_reply(static_cast<const char*>(msg.data()), msg.size());
          if (!reply) continue;
          auto* ack = std::get_if<wire::ingest_ack>(&*reply);
          if (!ack) {
            if (errors++ == 0) {
              const auto& err = std::get<wire::ingest_error>(*reply);
              std::fprintf(stderr, "alert-bench: first error reply: %s: %s\n", std::string{to_string(err.code)}.c_str(),
                           err.message.c_str());
            }
            outstanding.erase(outstanding.begin());
            continue;
          }
          auto id = std::get<std::int64_t>(ack->batch);
          auto it = outstanding.find(id);
          if (it == outstanding.end()) continue;
          latencies[t].push_back(std::chrono::duration<double, std::milli>(clk::now() - it->second).count());
          outstanding.erase(it);
          readings += ack->accepted;
          ++batches;
        }
      }
    });
  std::this_thread::sleep_for(std::chrono::duration<double>(s.seconds));  // the measuring window
  stop = true;
  for (auto& w : workers) w.join();
  const double elapsed = std::chrono::duration<double>(clk::now() - start).count();
  auto st = (*n)->stats();
  (*n)->stop();
  std::vector<double> all;
  for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  run_result r;
  r.readings_per_s = static_cast<double>(readings.load()) / elapsed;
  r.batches_per_s = static_cast<double>(batches.load()) / elapsed;
  if (!all.empty()) {
    r.p50_ms = all[all.size() / 2];
    r.p99_ms = all[std::min(all.size() - 1, all.size() * 99 / 100)];
  }
  r.readings_per_commit = st.journal_commits ? static_cast<double>(st.accepted) / static_cast<double>(st.journal_commits) : 0;
  r.errors = errors.load();
  return r;
}

long rss_kb() {
  std::ifstream statm{"/proc/self/statm"};
  long pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * (::sysconf(_SC_PAGESIZE) / 1024);
}

// Activates `count` device actors (each rebuilding from RocksDB) and reports the resident
// memory they add and the activation cost.
void run_entities(std::size_t count, const std::string& dir, unsigned threads) {
  auto j = storage::journal::open(dir);
  if (!j) {
    std::cerr << "alert-bench: " << j.error().to_string() << "\n";
    std::exit(1);
  }
  caf::actor_system_config cfg;
  cfg.set("scheduler.max-threads", static_cast<std::size_t>(threads));
  caf::actor_system sys{cfg};
  wall_clock clock;
  actors::host_config hc;
  hc.journal = j->get();
  hc.clock = &clock;
  hc.idle_timeout = std::chrono::hours{24};
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
  const double secs = std::chrono::duration<double>(clk::now() - start).count();
  const long after = rss_kb();
  std::printf("active device actors      %zu\n", count);
  std::printf("resident memory added     %ld KiB\n", after - before);
  std::printf("per active device actor   %.0f bytes (includes its RocksDB reads' cache growth)\n",
              static_cast<double>(after - before) * 1024.0 / static_cast<double>(count));
  std::printf("activation                %.2f s in all, %.1f us per actor (rebuild from RocksDB included)\n", secs,
              secs * 1e6 / static_cast<double>(count));
  self->send(host, actors::shutdown_atom::value);
}

}  // namespace

int main(int argc, char** argv) {
  settings s;
  std::string batches_arg = "1,100";
  std::string dir_arg;
  po::options_description desc{"alert-bench: ingest throughput of one node\n\nOptions"};
  desc.add_options()
      ("help,h", "show this help")
      ("batches", po::value(&batches_arg)->default_value(batches_arg), "comma-separated readings per request")
      ("threads", po::value(&s.threads)->default_value(s.threads), "client threads, one DEALER each")
      ("window", po::value(&s.window)->default_value(s.window), "requests in flight per client")
      ("devices", po::value(&s.devices)->default_value(s.devices), "distinct devices")
      ("seconds", po::value(&s.seconds)->default_value(s.seconds), "measuring time per run")
      ("sync", po::value(&s.sync)->default_value(s.sync), "fsync the WAL before each ack (group commit)")
      ("entities", po::value<std::size_t>()->default_value(0),
       "instead of ingest: activate this many device actors and report memory per actor")
      ("dir", po::value(&dir_arg), "scratch directory (default: a new one under /tmp, removed after)");
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
  std::filesystem::path base = dir_arg.empty() ? std::filesystem::temp_directory_path() / ("alert-bench-" + std::to_string(::getpid())) : std::filesystem::path{dir_arg};
  if (auto n = vm["entities"].as<std::size_t>(); n > 0) {
    std::filesystem::remove_all(base);
    run_entities(n, (base / "entities").string(), 2);
    std::filesystem::remove_all(base);
    return 0;
  }
  std::printf("%-8s %-6s %14s %12s %10s %10s %16s %7s\n", "batch", "sync", "readings/s", "batches/s", "p50 ms",
              "p99 ms", "readings/commit", "errors");
  std::size_t pos = 0;
  while (pos <= batches_arg.size()) {
    auto comma = batches_arg.find(',', pos);
    auto tok = batches_arg.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    pos = comma == std::string::npos ? batches_arg.size() + 1 : comma + 1;
    s.batch = static_cast<std::size_t>(std::stoul(tok));
    auto dir = base / ("b" + tok);
    std::filesystem::remove_all(dir);
    auto r = run(s, dir.string());
    std::filesystem::remove_all(dir);
    std::printf("%-8zu %-6s %14.0f %12.0f %10.2f %10.2f %16.1f %7llu\n", s.batch, s.sync ? "on" : "off",
                r.readings_per_s, r.batches_per_s, r.p50_ms, r.p99_ms, r.readings_per_commit,
                static_cast<unsigned long long>(r.errors));
  }
  std::filesystem::remove_all(base);
  return 0;
}
