#pragma once
// The real clock, for production. Everything else takes a time_source so tests inject one.

#include <chrono>

#include "engine/time.hpp"

namespace alert {

/// Reads the system clock (UTC milliseconds since the epoch).
class wall_clock final : public time_source {
public:
  epoch_ms now() const noexcept override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

}  // namespace alert
