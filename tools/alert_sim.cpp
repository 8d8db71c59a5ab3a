// alert-sim: a simulated ward sending telemetry to a node through the ingest client.
#include <atomic>
#include <boost/program_options.hpp>
#include <chrono>
#include <csignal>
#include <iostream>
#include <thread>
#include <zmq.hpp>

#include "actors/wall_clock.hpp"
#include "cluster/ingest_client.hpp"
#include "engine/simulation.hpp"

namespace po = boost::program_options;

namespace {
std::atomic<bool> stop_requested{false};
void on_signal(int) { stop_requested = true; }
}  // namespace

int main(int argc, char** argv) {
  using namespace alert;
  std::string endpoint, key_file, server_key_file;
  sim::ward_options wo;
  double duration_s = 0;
  std::size_t batch_max = 500;
  bool quiet = false;
  po::options_description desc{"alert-sim: a simulated ward streaming telemetry to a node\n\nOptions"};
  desc.add_options()
      ("help,h", "show this help")
      ("endpoint", po::value(&endpoint)->default_value("tcp://127.0.0.1:7600"), "the node's ingest endpoint")
      ("patients", po::value(&wo.patients)->default_value(wo.patients), "patients in the ward (3 to 4 devices each)")
      ("speed", po::value(&wo.speed)->default_value(wo.speed), "report rate multiplier (2 = every device twice as often)")
      ("seed", po::value(&wo.seed)->default_value(wo.seed), "random seed (same seed, same ward)")
      ("deteriorating", po::value(&wo.deteriorating_at_start)->default_value(wo.deteriorating_at_start),
       "patients deteriorating from the start")
      ("deterioration-minutes", po::value<double>()->default_value(10),
       "minutes a deterioration takes to reach its worst")
      ("deteriorations-per-hour", po::value(&wo.deteriorations_per_hour)->default_value(wo.deteriorations_per_hour),
       "chance per patient per hour that deterioration starts")
      ("silences-per-hour", po::value(&wo.silences_per_hour)->default_value(wo.silences_per_hour),
       "chance per device per hour that it falls silent for 3 minutes")
      ("duration", po::value(&duration_s)->default_value(0), "seconds to run (0: until Ctrl-C)")
      ("batch-max", po::value(&batch_max)->default_value(batch_max), "most readings per request")
      ("key", po::value(&key_file)->value_name("FILE"), "this integrator's CURVE key pair (alertctl keygen)")
      ("server-key", po::value(&server_key_file)->value_name("FILE"), "the node's public key (its .pub file)")
      ("quiet,q", po::bool_switch(&quiet), "print only the final summary");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, desc), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "alert-sim: " << e.what() << " (see --help)\n";
    return 2;
  }
  if (vm.count("help")) {
    std::cout << desc;
    return 0;
  }
  wo.deterioration_ms = static_cast<epoch_ms>(vm["deterioration-minutes"].as<double>() * 60'000);
  if (wo.patients == 0 || wo.speed <= 0 || batch_max == 0 || wo.deterioration_ms <= 0) {
    std::cerr << "alert-sim: --patients, --speed and --batch-max must be positive\n";
    return 2;
  }
  auto security = cluster::load_client_security(key_file, server_key_file);
  if (!security) {
    std::cerr << "alert-sim: " << security.error().message() << "\n";
    return 2;
  }
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);

  wall_clock clock;
  const epoch_ms start = clock.now();
  sim::ward ward{wo, start};
  // Seqs continue after any earlier run: the node would count restarted seqs as duplicates.
  ward.set_seq_base(static_cast<std::uint64_t>(start) * 16);
  zmq::context_t ctx{1};
  cluster::client_options co;
  co.security = *security;
  co.endpoint = endpoint;
  co.timeout = std::chrono::milliseconds{3000};
  co.attempts = 10;
  cluster::ingest_client client{ctx, co};
  std::cout << "alert-sim: " << wo.patients << " patients, " << ward.device_count() << " devices -> " << endpoint
            << std::endl;

  std::uint64_t batches = 0, sent = 0, accepted = 0, duplicates = 0, rejected = 0, failed = 0;
  auto last_report = std::chrono::steady_clock::now();
  int exit_code = 0;
  while (!stop_requested) {
    epoch_ms now = clock.now();
    if (duration_s > 0 && static_cast<double>(now - start) >= duration_s * 1000) break;
    auto readings = ward.advance(now);
    for (const auto& e : ward.take_events())
      if (!quiet) std::cout << "alert-sim: " << e.what << std::endl;
    for (std::size_t off = 0; off < readings.size() && !stop_requested; off += batch_max) {
      std::vector<reading_input> chunk(readings.begin() + static_cast<std::ptrdiff_t>(off),
                                       readings.begin() + static_cast<std::ptrdiff_t>(std::min(readings.size(), off + batch_max)));
      auto ack = client.send(static_cast<std::int64_t>(++batches), chunk);
      sent += chunk.size();
      if (!ack) {
        ++failed;
        std::cerr << "alert-sim: batch " << batches << " failed: " << ack.error().to_string() << std::endl;
        continue;
      }
      accepted += ack->accepted;
      duplicates += ack->duplicates;
      rejected += ack->rejected.size();
      for (const auto& r : ack->rejected)
        std::cerr << "alert-sim: reading refused: " << to_string(r.code) << ": " << r.message << std::endl;
    }
    auto t = std::chrono::steady_clock::now();
    if (!quiet && t - last_report >= std::chrono::seconds{5}) {
      std::cout << "alert-sim: sent " << sent << " readings in " << batches << " batches: accepted " << accepted
                << ", duplicates " << duplicates << ", rejected " << rejected << ", failed batches " << failed
                << std::endl;
      last_report = t;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{200});  // the ward's pace, not a wait for behaviour
  }
  std::cout << "alert-sim: done: sent " << sent << " readings in " << batches << " batches: accepted " << accepted
            << ", duplicates " << duplicates << ", rejected " << rejected << ", failed batches " << failed
            << std::endl;
  if (failed > 0) exit_code = 1;
  return exit_code;
}
