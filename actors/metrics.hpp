#pragma once
// The node's metrics in Prometheus text format, served over HTTP (docs/operations.md,
// "Metrics"). Counters are read from the components at each scrape: the ingest endpoint,
// the journal, the shard host, the escalator and the open-alert index.

#include <memory>
#include <string>

#include "engine/status.hpp"

namespace alert {
class node;
}

namespace alert::actors {

struct escalation_metrics;

class metrics_endpoint {
public:
  /// Serves GET /metrics at `bind` ("127.0.0.1:9464"; port 0 picks a free one).
  /// errc::unavailable when it cannot listen there. `n` and `esc` outlive the endpoint.
  static result<std::unique_ptr<metrics_endpoint>> start(const std::string& bind, node& n,
                                                         const escalation_metrics& esc);
  ~metrics_endpoint();
  metrics_endpoint(const metrics_endpoint&) = delete;
  metrics_endpoint& operator=(const metrics_endpoint&) = delete;

  /// http://HOST:PORT/metrics, port resolved.
  const std::string& url() const noexcept;

private:
  struct impl;
  explicit metrics_endpoint(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

}  // namespace alert::actors
