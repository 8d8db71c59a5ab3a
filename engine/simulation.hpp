#pragma once
// A simulated ward for demos, tests and benchmarks: patients with bound devices that report
// realistic vitals with noise, some patients deteriorating, devices that go silent and
// batteries that run down. Pure and deterministic: a seed and the time go in, readings come
// out.

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "engine/reading.hpp"
#include "engine/time.hpp"

namespace alert::sim {

struct ward_options {
  std::size_t patients = 12;
  std::uint64_t seed = 42;
  /// Every device period is divided by this (2 = twice as many readings).
  double speed = 1.0;
  /// Chance per patient per simulated hour that deterioration starts.
  double deteriorations_per_hour = 0.5;
  /// How long a deterioration takes to reach its worst.
  epoch_ms deterioration_ms = 10 * 60 * 1000;
  /// Chance per device per simulated hour that it falls silent, and for how long.
  double silences_per_hour = 0.3;
  epoch_ms silence_ms = 3 * 60 * 1000;
  /// Fraction of patients whose devices start with a nearly flat battery.
  double low_battery_fraction = 0.1;
  /// Fraction of patients on supplemental oxygen.
  double oxygen_fraction = 0.25;
  /// Patients that deteriorate from the start (P-0001 ... in order): a demo sees alerts at once.
  std::size_t deteriorating_at_start = 1;
};

/// Something a person watching the demo should know happened.
struct ward_event {
  epoch_ms at;
  std::string what;  ///< e.g. "P-0003 starts deteriorating"
};

/// The simulated ward.
class ward {
public:
  ward(const ward_options& opts, epoch_ms start);

  /// Readings due in (previous call, now], in time order. Device seqs start at `seq_base`+1
  /// so a restarted simulator can continue after an earlier run's readings.
  std::vector<reading_input> advance(epoch_ms now);

  /// Events since the last call.
  std::vector<ward_event> take_events();

  /// Number of devices in the ward.
  std::size_t device_count() const noexcept { return devices_.size(); }

  /// First seq of every device (default 1); e.g. the start time in ms to be unique per run.
  void set_seq_base(std::uint64_t base);

private:
  struct patient {
    std::string id;
    double hr, rr, spo2, sbp, dbp, temp;  // baselines
    bool on_oxygen;
    epoch_ms deteriorating_since = -1;
  };
  enum class device_kind { oximeter, bp_cuff, monitor, oxygen };
  struct device {
    std::string id;
    std::size_t patient;
    device_kind kind;
    epoch_ms period;
    epoch_ms next;
    std::uint64_t seq = 0;
    double battery;
    epoch_ms silent_until = -1;
  };

  double severity(const patient& p, epoch_ms t) const;
  void emit(device& d, epoch_ms t, std::vector<reading_input>& out);
  void push(std::vector<reading_input>& out, device& d, const char* metric, double value, epoch_ms t, bool bind);

  ward_options opts_;
  std::mt19937_64 rng_;
  std::vector<patient> patients_;
  std::vector<device> devices_;
  std::vector<ward_event> events_;
  epoch_ms last_ = 0;
};

}  // namespace alert::sim
