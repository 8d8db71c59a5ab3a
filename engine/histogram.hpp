#pragma once
// A fixed-bucket histogram of durations (or any non-negative values), safe to observe from
// any thread and to read while it is written: what the metrics endpoint exports as a
// Prometheus histogram. No I/O.

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

namespace alert {

class histogram {
public:
  /// `upper_bounds` ascending (e.g. seconds); values above the last go to a +Inf bucket.
  explicit histogram(std::vector<double> upper_bounds);
  histogram(const histogram&) = delete;
  histogram& operator=(const histogram&) = delete;

  /// Counts one value (negative values count as 0).
  void observe(double value) noexcept;

  struct snapshot {
    std::vector<double> bounds;          ///< the upper bounds, without +Inf
    std::vector<std::uint64_t> buckets;  ///< per bucket (bounds.size() + 1, the last +Inf), not cumulative
    std::uint64_t count = 0;
    double sum = 0;
  };
  /// The counts so far. Observations racing with the read may be counted in the buckets
  /// and not yet in the sum, never the other way round in a way that loses them.
  snapshot read() const;

  /// Bounds for latencies in seconds: 0.5 ms to 10 s, roughly x2.5 apart.
  static std::vector<double> latency_bounds();

private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;
  std::atomic<std::uint64_t> sum_micro_{0};  // sum in millionths, so it can be atomic
};

}  // namespace alert
