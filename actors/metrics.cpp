#include "actors/metrics.hpp"

#include <prometheus/collectable.h>
#include <prometheus/exposer.h>
#include <prometheus/metric_family.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <limits>
#include <map>
#include <thread>

#include "actors/escalator.hpp"
#include "actors/node.hpp"
#include "cluster/ingest_server.hpp"
#include "engine/log.hpp"

namespace alert::actors {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

ClientMetric::Label label(std::string name, std::string value) { return {std::move(name), std::move(value)}; }

struct family_builder {
  std::vector<MetricFamily>& out;

  MetricFamily& family(std::string name, std::string help, MetricType type) {
    out.push_back(MetricFamily{std::move(name), std::move(help), type, {}});
    return out.back();
  }
  void counter(const std::string& name, const std::string& help, double v, std::vector<ClientMetric::Label> labels = {}) {
    auto& f = out.empty() || out.back().name != name ? family(name, help, MetricType::Counter) : out.back();
    ClientMetric m;
    m.label = std::move(labels);
    m.counter.value = v;
    f.metric.push_back(std::move(m));
  }
  void gauge(const std::string& name, const std::string& help, double v, std::vector<ClientMetric::Label> labels = {}) {
    auto& f = out.empty() || out.back().name != name ? family(name, help, MetricType::Gauge) : out.back();
    ClientMetric m;
    m.label = std::move(labels);
    m.gauge.value = v;
    f.metric.push_back(std::move(m));
  }
  void hist(const std::string& name, const std::string& help, const histogram::snapshot& s) {
    auto& f = family(name, help, MetricType::Histogram);
    ClientMetric m;
    m.histogram.sample_count = s.count;
    m.histogram.sample_sum = s.sum;
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < s.buckets.size(); ++i) {
      cumulative += s.buckets[i];
      m.histogram.bucket.push_back(
          {cumulative, i < s.bounds.size() ? s.bounds[i] : std::numeric_limits<double>::infinity()});
    }
    f.metric.push_back(std::move(m));
  }
};

double d(std::uint64_t v) { return static_cast<double>(v); }

class node_collector final : public prometheus::Collectable {
public:
  node_collector(node& n, const escalation_metrics& esc) : node_(n), esc_(esc) {}

  std::vector<MetricFamily> Collect() const override {
    std::vector<MetricFamily> out;
    try {
      collect(out);
    } catch (const std::exception& e) {
      log(log_level::error, "metrics", "collect_failed", {{"error", e.what()}});
    }
    return out;
  }

private:
  void collect(std::vector<MetricFamily>& out) const {
    family_builder b{out};
    const auto s = node_.stats();

    b.counter("alert_ingest_requests_total", "Ingest requests received.", d(s.requests));
    for (std::size_t i = 1; i < cluster::errc_count; ++i)
      if (s.errors_by_code[i] > 0 || i == static_cast<std::size_t>(errc::malformed))
        b.counter("alert_ingest_request_errors_total", "Ingest requests refused whole, by error code.",
                  d(s.errors_by_code[i]), {label("code", std::string{to_string(static_cast<errc>(i))})});
    b.counter("alert_readings_accepted_total", "Readings made durable.", d(s.accepted));
    b.counter("alert_readings_duplicate_total", "Readings received again (already journaled).", d(s.duplicates));
    for (std::size_t i = 1; i < cluster::errc_count; ++i)
      if (s.rejected_by_code[i] > 0 || i == static_cast<std::size_t>(errc::value_out_of_range))
        b.counter("alert_readings_rejected_total", "Readings refused, by error code.", d(s.rejected_by_code[i]),
                  {label("code", std::string{to_string(static_cast<errc>(i))})});
    b.hist("alert_ingest_request_duration_seconds",
           "From a request's arrival to its reply; an ack waits for the journal's sync.", s.request_latency);

    b.counter("alert_journal_commits_total", "Group commits (one WriteBatch and WAL sync each).", d(s.journal_commits));
    b.hist("alert_journal_commit_duration_seconds", "Time of one group commit: WriteBatch and WAL sync.",
           s.journal_commit_latency);
    b.gauge("alert_journal_pending_readings", "Readings waiting for the disk.", d(s.journal_pending));

    b.gauge("alert_actors_active", "Entity actors active in memory.", d(s.active_devices), {label("kind", "device")});
    b.gauge("alert_actors_active", "Entity actors active in memory.", d(s.active_patients), {label("kind", "patient")});
    b.counter("alert_actor_activations_total", "Entity actors activated (rebuilt from storage).", d(s.activations));
    b.counter("alert_actor_passivations_total", "Idle entity actors passivated.", d(s.passivations));
    b.counter("alert_actor_restarts_total", "Entity actors restarted after a crash.", d(s.restarts));
    b.gauge("alert_entities_quarantined", "Entities quarantined after repeated crashes.", d(s.quarantined));

    // Open alerts by state and priority, every combination present so series do not vanish.
    std::map<std::pair<std::string, std::string>, std::uint64_t> open;
    for (const char* st : {"pending", "firing", "acknowledged"})
      for (const char* pr : {"high", "medium", "low"}) open[{st, pr}] = 0;
    if (auto alerts = node_.open_alerts())
      for (const auto& e : *alerts) ++open[{std::string{to_string(e.after.state)}, std::string{to_string(e.after.priority)}}];
    for (const auto& [key, n] : open)
      b.gauge("alert_alerts", "Open alerts (not resolved), by state and priority.", d(n),
              {label("priority", key.second), label("state", key.first)});

    b.counter("alert_escalations_started_total", "Escalations started (an alert routed to a policy).",
              d(esc_.escalations_started.load()));
    if (auto esc = node_.escalations())
      b.gauge("alert_escalations", "Escalations the node keeps (paging, acknowledged or silenced).", d(esc->size()));
    b.counter("alert_pages_sent_total", "Pages sent (first sends).", d(esc_.pages_sent.load()));
    b.counter("alert_pages_redelivered_total", "Pages sent again under the same page id.", d(esc_.pages_resent.load()));
    b.counter("alert_pages_cancelled_total", "Cancels sent to gateways.", d(esc_.pages_cancelled.load()));
    b.counter("alert_pages_unreachable_total", "Pages no connected gateway could take.", d(esc_.pages_unreachable.load()));
    for (auto st : {page_status::received, page_status::delivered, page_status::read, page_status::accepted,
                    page_status::rejected})
      b.counter("alert_page_status_total", "Page statuses reported by gateways.",
                d(esc_.statuses[static_cast<std::size_t>(st)].load()), {label("status", std::string{to_string(st)})});
    for (std::size_t lvl = 0; lvl < esc_.steps_by_level.size(); ++lvl)
      b.counter("alert_escalation_steps_total", "Escalation steps paged, by policy level (7: level 7 or more).",
                d(esc_.steps_by_level[lvl].load()), {label("level", std::to_string(lvl))});
    b.hist("alert_arrival_to_page_seconds",
           "From the arrival of the reading that fired an alert to its first page leaving the node.",
           esc_.arrival_to_page.read());
    b.gauge("alert_pager_gateways", "Pager gateways connected.", d(node_.gateways().size()));

    // A single node is its own cluster, always in quorum.
    const auto cv = node_.cluster();
    for (const auto& m : cv.members)
      b.gauge("alert_cluster_members", "Cluster members as this node sees them (1 for the state each is in).", 1,
              {label("node", m.id), label("state", std::string{to_string(m.state)})});
    b.gauge("alert_cluster_quorum", "1 while this node sees a majority of the configured members.", cv.quorum ? 1 : 0);
  }

  node& node_;
  const escalation_metrics& esc_;
};

}  // namespace

struct metrics_endpoint::impl {
  std::shared_ptr<node_collector> collector;
  std::unique_ptr<prometheus::Exposer> exposer;
  std::string url;
  std::string host;
  int port = 0;

  // civetweb's listener polls with a 2 s timeout and only then sees that it must stop:
  // connections to it while it stops wake it at once, so a node stops in milliseconds.
  ~impl() {
    if (!exposer) return;
    std::atomic<bool> done{false};
    std::thread poke{[&] {
      while (!done.load()) {
        int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0) {
          sockaddr_in addr{};
          addr.sin_family = AF_INET;
          addr.sin_port = htons(static_cast<std::uint16_t>(port));
          if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1 || addr.sin_addr.s_addr == htonl(INADDR_ANY))
            addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
          (void)::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
          ::close(fd);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds{20});
      }
    }};
    exposer.reset();
    done = true;
    poke.join();
  }
};

result<std::unique_ptr<metrics_endpoint>> metrics_endpoint::start(const std::string& bind, node& n,
                                                                  const escalation_metrics& esc) {
  auto p = std::make_unique<impl>();
  p->collector = std::make_shared<node_collector>(n, esc);
  try {
    p->exposer = std::make_unique<prometheus::Exposer>(bind, 1);
  } catch (const std::exception& e) {
    return status{errc::unavailable, "cannot serve metrics at " + bind + ": " + e.what()};
  }
  p->exposer->RegisterCollectable(p->collector);
  auto ports = p->exposer->GetListeningPorts();
  p->host = bind.substr(0, bind.rfind(':'));
  p->port = ports.empty() ? 0 : ports.front();
  p->url = "http://" + p->host + ":" + std::to_string(p->port) + "/metrics";
  return std::unique_ptr<metrics_endpoint>{new metrics_endpoint{std::move(p)}};
}

metrics_endpoint::metrics_endpoint(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
metrics_endpoint::~metrics_endpoint() = default;

const std::string& metrics_endpoint::url() const noexcept { return impl_->url; }

}  // namespace alert::actors
