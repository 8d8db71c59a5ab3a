#pragma once
// A node: the journal, the ingest endpoint and (as later parts land) the actors behind them,
// assembled from node options. Start, run, stop; nothing else needs to know the wiring.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config/node_options.hpp"
#include "engine/reading.hpp"
#include "engine/status.hpp"
#include "engine/time.hpp"

namespace alert {

/// A snapshot of the node's counters.
struct node_stats {
  std::uint64_t requests = 0;
  std::uint64_t request_errors = 0;
  std::uint64_t accepted = 0;
  std::uint64_t duplicates = 0;
  std::uint64_t rejected = 0;
  std::uint64_t journal_commits = 0;
  std::uint64_t journal_commit_micros = 0;
  std::uint64_t journal_pending = 0;
};

/// A running node.
class node {
public:
  /// Receives readings once they are durable and new (not duplicates), on the journal's
  /// writer thread; must not block. The actors plug in here.
  using reading_sink = std::function<void(const std::vector<reading>&)>;

  /// Opens the data directory and binds the endpoints. errc::unavailable when the directory
  /// is held by another process or an endpoint cannot be bound.
  static result<std::unique_ptr<node>> start(const config::node_options& opts, const time_source& clock,
                                             reading_sink sink = nullptr);
  ~node();
  node(const node&) = delete;
  node& operator=(const node&) = delete;

  /// Stops intake, answers in-flight batches, flushes and closes the journal. Idempotent.
  void stop();

  /// The ingest endpoint as bound (port resolved).
  const std::string& ingest_endpoint() const;

  node_stats stats() const;

private:
  struct impl;
  explicit node(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

}  // namespace alert
