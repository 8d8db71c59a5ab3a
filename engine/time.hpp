#pragma once
// Time as the engine sees it: milliseconds since the Unix epoch, read from an injected clock.

#include <atomic>
#include <cstdint>

namespace alert {

/// Milliseconds since the Unix epoch (UTC). Device time for readings, node time for timers.
using epoch_ms = std::int64_t;

/// A source of the current time. The engine never reads a clock itself: whoever needs the
/// time is given a clock, so tests drive time by hand.
class time_source {
public:
  virtual ~time_source() = default;
  /// The current time; safe to call from any thread.
  virtual epoch_ms now() const noexcept = 0;
};

/// A clock that moves only when told to. Thread-safe.
class manual_clock final : public time_source {
public:
  explicit manual_clock(epoch_ms start = 0) noexcept : now_(start) {}
  epoch_ms now() const noexcept override { return now_.load(std::memory_order_acquire); }
  /// Moves the clock forward by `ms` (which may be zero, never negative).
  void advance(epoch_ms ms) noexcept { now_.fetch_add(ms < 0 ? 0 : ms, std::memory_order_acq_rel); }
  /// Sets the clock to `t`.
  void set(epoch_ms t) noexcept { now_.store(t, std::memory_order_release); }

private:
  std::atomic<epoch_ms> now_;
};

}  // namespace alert
