// Escalation end to end: a real node (RocksDB, ingest and pager endpoints on 127.0.0.1) and
// gateway clients over real DEALER sockets. Timers run on the node's injected clock: a test
// moves the clock, ticks the node and waits (bounded) for the page it expects; nothing
// sleeps for a level to pass.
#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <set>
#include <thread>
#include <zmq.hpp>

#include "actors/node.hpp"
#include "cluster/ingest_client.hpp"
#include "cluster/pager_wire.hpp"
#include "storage/journal.hpp"
#include "tests/support/gateway.hpp"
#include "tests/support/temp_dir.hpp"

using namespace alert;

namespace {

constexpr epoch_ms t0 = 1'700'000'000'000;
constexpr epoch_ms second = 1000, minute = 60 * second;
const std::string alert_id = "d/oxi-1/spo2_low/1";

// One rule that fires on the first low reading; a policy of two levels run twice.
constexpr const char* rules_yaml = R"(version: 1
rules:
  - id: spo2_low
    kind: threshold
    metric: spo2
    below: 88
    clear: 90
    priority: high
policies:
  - id: ward
    levels:
      - {targets: [nurse], timeout: 1m}
      - {targets: [charge], timeout: 2m}
    repeat: 1
    redeliver: 10s
    redeliver_max: 20s
routes:
  - policy: ward
)";

template <class F>
bool eventually(F&& cond) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::yield();
  }
  return cond();
}

using test::gateway;

std::string step(const wire::pager_page& p) {
  return p.target + "@" + std::to_string(p.level) + "." + std::to_string(p.repeat);
}

struct fixture {
  test::temp_dir dir;
  manual_clock clock{t0};
  config::node_options opts;
  std::unique_ptr<node> n;
  zmq::context_t ctx{1};
  std::int64_t batch = 0;
  std::uint64_t seq = 0;

  explicit fixture(epoch_ms grace_ms = 60 * minute, const std::string& yaml = rules_yaml) {
    opts.data_dir = dir.sub("data");
    opts.plaintext_endpoints = true;  // CURVE and encryption at rest: tests/integration/security_test.cpp
    opts.plaintext_storage = true;
    opts.ingest_endpoint = "tcp://127.0.0.1:*";
    opts.pager_endpoint = "tcp://127.0.0.1:*";
    opts.control_endpoint = "tcp://127.0.0.1:*";
    opts.metrics_endpoint = "127.0.0.1:0";
    opts.stats_interval_s = 0;
    opts.rules_file = dir.sub("rules.yaml");
    opts.rules_tick_ms = 3'600'000;  // timers fire when the test ticks
    opts.pager_grace_ms = grace_ms;
    std::ofstream{opts.rules_file} << yaml;
    start();
  }
  node_hooks hooks;
  void start() {
    auto r = node::start(opts, clock, hooks);
    INFO(r.error().to_string());
    REQUIRE(r.has_value());
    n = std::move(*r);
  }
  void spo2(double v) { send_reading("spo2", v); }
  void send_reading(const std::string& metric, double v) {
    cluster::client_options co;
    co.endpoint = n->ingest_endpoint();
    co.timeout = std::chrono::seconds{20};
    cluster::ingest_client c{ctx, co};
    reading_input r;
    r.device = "oxi-1";
    r.patient = "P-1";
    r.metric = metric;
    r.value = v;
    r.ts = clock.now();
    r.seq = ++seq;
    auto ack = c.send(++batch, {r});
    REQUIRE(ack.has_value());
    REQUIRE(ack->rejected.empty());
  }
  // Moves node time on and fires what is due.
  void pass(epoch_ms ms) {
    clock.advance(ms);
    n->tick();
  }
  escalation_state escalation() {
    auto all = n->escalations();
    REQUIRE(all.has_value());
    REQUIRE(all->size() == 1);
    return all->front();
  }
  std::vector<std::string> history(const std::string& id) {
    std::vector<std::string> out;
    auto h = n->alert_history(id);
    REQUIRE(h.has_value());
    for (const auto& e : *h) out.emplace_back(to_string(e.type));
    return out;
  }
};

}  // namespace

TEST_CASE("a firing alert is paged to its target with everything a responder needs, and accepting acknowledges it") {
  fixture f;
  gateway nurse{f.ctx, f.n->pager_endpoint(), "ward-gw", {"nurse"}};
  gateway charge{f.ctx, f.n->pager_endpoint(), "charge-gw", {"charge"}};
  const auto fired_at = f.clock.now();
  f.spo2(84);
  auto p = nurse.page(1);
  CHECK(p.page_id == alert_id + "@0.0/nurse");
  CHECK(p.alert_id == alert_id);
  CHECK(p.target == "nurse");
  CHECK(p.level == 0);
  CHECK(p.repeat == 0);
  CHECK(p.priority == alert_priority::high);
  CHECK(p.kind == alert_kind::physiological);
  CHECK(p.patient == "P-1");
  CHECK(p.device == "oxi-1");
  CHECK(p.rule == "spo2_low");
  CHECK(p.summary.find("84") != std::string::npos);
  CHECK(p.event_ts == fired_at);
  CHECK(p.ts == f.clock.now());

  nurse.status(p.page_id, page_status::received);
  nurse.status(p.page_id, page_status::accepted, "nurse.kim");
  REQUIRE(eventually([&] { return f.history(alert_id).size() == 2; }));
  CHECK(f.history(alert_id) == std::vector<std::string>{"fired", "acknowledged"});
  CHECK(f.n->alert_history(alert_id)->back().after.acked_by == "nurse.kim");
  auto st = f.escalation();
  CHECK(st.at == escalation_state::phase::acknowledged);

  // Accepted: time passing pages nobody else.
  f.pass(10 * minute);
  st = f.escalation();  // the tick is handled before this answer
  CHECK(st.level == 0);
  CHECK(st.pages.size() == 1);
  CHECK(charge.pages.empty());
  CHECK(nurse.pages.size() == 1);
}

TEST_CASE("a page not received is redelivered under the same id with backoff until the gateway has it") {
  fixture f;
  gateway nurse{f.ctx, f.n->pager_endpoint(), "ward-gw", {"nurse"}};
  f.spo2(84);
  auto first = nurse.page(1);
  f.pass(10 * second);
  CHECK(nurse.page(2).page_id == first.page_id);
  f.pass(10 * second);  // the wait doubled: 20 s now
  CHECK(f.escalation().pages.front().sends == 2);
  f.pass(10 * second);
  CHECK(nurse.page(3).page_id == first.page_id);
  nurse.status(first.page_id, page_status::received);
  REQUIRE(eventually([&] { return f.escalation().pages.front().status == page_status::received; }));
  f.pass(25 * second);  // received: no more redelivery (and the level has not timed out yet)
  CHECK(f.escalation().pages.front().sends == 3);
  // Three deliveries, one page for the person: the gateway deduplicates by page id.
  CHECK(nurse.pages.size() == 3);
  CHECK(nurse.shown.size() == 1);
}

TEST_CASE("timeouts escalate level by level, the policy repeats once, then the last level is paged at each timeout") {
  fixture f;
  gateway nurse{f.ctx, f.n->pager_endpoint(), "ward-gw", {"nurse"}};
  gateway charge{f.ctx, f.n->pager_endpoint(), "charge-gw", {"charge"}};
  f.spo2(84);
  std::vector<std::string> steps{step(nurse.page(1))};
  nurse.status(nurse.pages[0].page_id, page_status::received);
  f.pass(1 * minute);
  steps.push_back(step(charge.page(1)));
  charge.status(charge.pages[0].page_id, page_status::received);
  f.pass(2 * minute);
  steps.push_back(step(nurse.page(2)));
  f.pass(1 * minute);
  steps.push_back(step(charge.page(2)));
  f.pass(2 * minute);
  steps.push_back(step(charge.page(3)));
  f.pass(2 * minute);
  steps.push_back(step(charge.page(4)));
  CHECK(steps == std::vector<std::string>{"nurse@0.0", "charge@1.0", "nurse@0.1", "charge@1.1", "charge@1.2",
                                          "charge@1.3"});
  // Every step its own page id, never reused.
  std::set<std::string> ids;
  for (const auto& p : nurse.pages) ids.insert(p.page_id);
  for (const auto& p : charge.pages) ids.insert(p.page_id);
  CHECK(ids.size() == 6);
  // A step that times out is not redelivered: the next step goes out instead.
  CHECK(nurse.pages.size() == 2);
}

TEST_CASE("a rejection pages the next level at once") {
  fixture f;
  gateway nurse{f.ctx, f.n->pager_endpoint(), "ward-gw", {"nurse"}};
  gateway charge{f.ctx, f.n->pager_endpoint(), "charge-gw", {"charge"}};
  f.spo2(84);
  auto p = nurse.page(1);
  nurse.status(p.page_id, page_status::rejected, "nurse.busy");
  CHECK(step(charge.page(1)) == "charge@1.0");  // no clock moved
  CHECK(f.history(alert_id) == std::vector<std::string>{"fired"});
}

TEST_CASE("resolving an alert cancels its outstanding pages and ends its escalation") {
  fixture f;
  gateway nurse{f.ctx, f.n->pager_endpoint(), "ward-gw", {"nurse"}};
  f.spo2(84);
  auto p = nurse.page(1);
  nurse.status(p.page_id, page_status::received);
  auto resolved = f.n->resolve(alert_id, "dr.lee");
  REQUIRE(resolved.has_value());
  REQUIRE(resolved->size() == 1);
  REQUIRE(nurse.poll_until([&] { return !nurse.cancels.empty(); }));
  CHECK(nurse.cancels[0] == wire::pager_cancel{p.page_id, alert_id, "resolved"});
  REQUIRE(eventually([&] { return f.n->escalations()->empty(); }));
  f.pass(30 * minute);
  CHECK(f.n->escalations()->empty());
  CHECK(nurse.pages.size() == 1);
}

TEST_CASE("a silence cancels pages, and when it is lifted the alert is paged again under new ids") {
  fixture f;
  gateway nurse{f.ctx, f.n->pager_endpoint(), "ward-gw", {"nurse"}};
  f.spo2(84);
  auto p = nurse.page(1);
  nurse.status(p.page_id, page_status::received);
  silence s;
  s.patient = "P-1";
  s.until = f.clock.now() + 30 * minute;
  s.by = "nurse.kim";
  s.reason = "repositioning the probe";
  auto id = f.n->add_silence(s);
  REQUIRE(id.has_value());
  REQUIRE(nurse.poll_until([&] { return !nurse.cancels.empty(); }));
  CHECK(nurse.cancels[0].reason == "silenced");
  REQUIRE(f.n->remove_silence(*id, "nurse.kim").value());
  CHECK(step(nurse.page(2)) == "nurse@0.1");
  CHECK(nurse.pages[1].page_id != p.page_id);
}

TEST_CASE("a target no gateway serves escalates at once and raises a technical alert until one connects") {
  fixture f{0};  // no grace: the gateways of this test are all connected already
  gateway charge{f.ctx, f.n->pager_endpoint(), "charge-gw", {"charge"}};
  f.spo2(84);
  CHECK(step(charge.page(1)) == "charge@1.0");  // nobody serves the nurse: straight on
  // The communication failure is itself an alarm, paged like any other.
  auto tech = charge.page(2);
  CHECK(tech.alert_id.rfind("n/pager/target_unreachable/nurse/", 0) == 0);
  CHECK(tech.kind == alert_kind::technical);
  CHECK(tech.priority == alert_priority::high);
  CHECK(tech.summary.find("nurse") != std::string::npos);
  CHECK(f.history(tech.alert_id) == std::vector<std::string>{"fired"});
  // A gateway for the nurse connects: the technical alert resolves.
  gateway nurse{f.ctx, f.n->pager_endpoint(), "ward-gw", {"nurse"}};
  REQUIRE(eventually([&] { return f.history(tech.alert_id).size() == 2; }));
  CHECK(f.history(tech.alert_id) == std::vector<std::string>{"fired", "resolved"});
  REQUIRE(charge.poll_until([&] { return !charge.cancels.empty(); }));
  CHECK(charge.cancels[0].alert_id == tech.alert_id);
  CHECK(charge.cancels[0].reason == "resolved");
}

TEST_CASE("a node restarted in the middle of an escalation resumes at the step it reached") {
  fixture f;
  std::string charge_page;
  {
    gateway nurse{f.ctx, f.n->pager_endpoint(), "ward-gw", {"nurse"}};
    gateway charge{f.ctx, f.n->pager_endpoint(), "charge-gw", {"charge"}};
    f.spo2(84);
    nurse.status(nurse.page(1).page_id, page_status::received);
    f.pass(1 * minute);
    charge_page = charge.page(1).page_id;
    charge.status(charge_page, page_status::received);
    REQUIRE(eventually([&] { return f.escalation().pages.back().status == page_status::received; }));
    f.n->stop();
  }
  f.start();
  {
    auto st = f.escalation();
    CHECK(st.level == 1);
    CHECK(st.repeat == 0);
    gateway nurse{f.ctx, f.n->pager_endpoint(), "ward-gw", {"nurse"}};
    gateway charge{f.ctx, f.n->pager_endpoint(), "charge-gw", {"charge"}};
    // Level 1 (charge) had its page: nothing is sent again, and its timeout still counts.
    f.pass(2 * minute);
    CHECK(step(nurse.page(1)) == "nurse@0.1");
    CHECK(charge.pages.empty());
    nurse.status(nurse.pages[0].page_id, page_status::received);
    REQUIRE(eventually([&] { return f.escalation().pages.back().status == page_status::received; }));
    f.n->stop();
  }
  // Down while the next step fell due: it fires at start, late rather than never, and a
  // gateway that connects after the start gets it.
  f.clock.advance(5 * minute);
  f.start();
  gateway charge{f.ctx, f.n->pager_endpoint(), "charge-gw", {"charge"}};
  CHECK(step(charge.page(1)) == "charge@1.1");
  CHECK(f.escalation().level == 1);
  CHECK(f.escalation().repeat == 1);
}

TEST_CASE("an operator's acknowledgement cancels the pages, and still open after the ack timeout it is paged again") {
  std::string yaml = rules_yaml;
  yaml.replace(yaml.find("    repeat: 1"), 0, "    ack_timeout: 10m\n");
  fixture f{60 * minute, yaml};
  gateway nurse{f.ctx, f.n->pager_endpoint(), "ward-gw", {"nurse"}};
  f.spo2(84);
  auto p = nurse.page(1);
  nurse.status(p.page_id, page_status::received);
  auto acked = f.n->acknowledge(alert_id, "nurse.kim");
  REQUIRE(acked.has_value());
  REQUIRE(acked->size() == 1);
  CHECK(acked->front().after.acked_by == "nurse.kim");
  REQUIRE(nurse.poll_until([&] { return !nurse.cancels.empty(); }));
  CHECK(nurse.cancels[0] == wire::pager_cancel{p.page_id, alert_id, "acknowledged"});
  f.pass(10 * minute - 1);
  CHECK(f.escalation().at == escalation_state::phase::acknowledged);
  f.pass(1);  // acknowledged, not fixed: SpO2 is still 84 %
  auto again = nurse.page(2);
  CHECK(step(again) == "nurse@0.1");
  CHECK(again.page_id != p.page_id);
}

TEST_CASE("an alert journaled as firing without an escalation is paged when the node starts") {
  // The node first runs without policies (as after an upgrade, or a crash between the
  // alert's journaling and its escalation's): the alert is journaled, nobody paged.
  std::string no_policies = rules_yaml;
  no_policies.erase(no_policies.find("policies:"));
  fixture f{60 * minute, no_policies};
  f.spo2(84);
  REQUIRE(eventually([&] { return f.history(alert_id).size() == 1; }));
  CHECK(f.n->escalations()->empty());
  f.n->stop();
  std::ofstream{f.opts.rules_file} << rules_yaml;
  f.start();
  gateway nurse{f.ctx, f.n->pager_endpoint(), "ward-gw", {"nurse"}};
  CHECK(nurse.page(1).page_id == alert_id + "@0.0/nurse");
}

TEST_CASE("an acceptance the alert's entity cannot record pages again instead of silencing the alert") {
  fixture f{60 * minute};
  f.n->stop();
  // The oximeter's device actor crashes on a pulse of 66, as a buggy rule would.
  f.hooks.on_device_reading = [](const device_state&, const reading& r) {
    if (r.what == metric::heart_rate && r.value == 66) throw std::runtime_error("rule exploded on 66");
  };
  f.opts.supervision_max_restarts = 1;
  f.start();
  gateway nurse{f.ctx, f.n->pager_endpoint(), "ward-gw", {"nurse"}};
  f.spo2(84);
  auto p = nurse.page(1);
  nurse.status(p.page_id, page_status::received);
  // The device crashes twice: quarantined, its actor no longer runs. The second poison
  // waits for the restart after the first: sent sooner, it could reach the crashed actor
  // before the host restarts it, and be taken into the rebuilt state without a crash.
  const auto restarts = f.n->stats().restarts;
  f.send_reading("heart_rate", 66);
  REQUIRE(eventually([&] { return f.n->stats().restarts == restarts + 1; }));
  f.send_reading("heart_rate", 66);
  REQUIRE(eventually([&] { return f.n->quarantined() == std::vector<std::string>{"d/oxi-1"}; }));
  // The nurse accepts, but nobody can journal the acknowledgement: the alert is still
  // firing, so it is paged again rather than left acknowledged in the escalation only.
  nurse.status(p.page_id, page_status::accepted, "nurse.kim");
  // (The quarantine itself is a technical alert, paged to the nurse too.)
  CHECK(nurse.poll_until([&] { return nurse.shown.count(alert_id + "@0.1/nurse") > 0; }));
  auto all = f.n->escalations();
  REQUIRE(all.has_value());
  auto it = std::find_if(all->begin(), all->end(), [](const escalation_state& st) { return st.alert_id == alert_id; });
  REQUIRE(it != all->end());
  CHECK(it->at == escalation_state::phase::paging);
}
