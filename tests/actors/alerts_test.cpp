// Alerts end to end in a node: readings over real sockets into a real RocksDB produce
// exactly the expected alert transitions in the alert journal.
#include <catch2/catch.hpp>
#include <fstream>
#include <mutex>
#include <thread>
#include <zmq.hpp>

#include "actors/node.hpp"
#include "cluster/ingest_client.hpp"
#include "storage/journal.hpp"
#include "tests/support/temp_dir.hpp"

using namespace alert;

namespace {

constexpr epoch_ms t0 = 1'700'000'000'000;

constexpr const char* rules_yaml = R"(version: 1
rules:
  - id: spo2_low
    kind: threshold
    metric: spo2
    below: 88
    clear: 90
    for: 15s
    immediate: 80
    priority: high
  - id: battery_low
    kind: threshold
    metric: battery
    below: 20
  - id: device_silent
    kind: no_data
    after: 2m
  - id: news2_high
    kind: news2
    min_band: high
)";

struct fixture {
  test::temp_dir dir;
  manual_clock clock{t0};
  config::node_options opts;
  std::mutex m;
  std::vector<alert_event> seen;
  std::unique_ptr<node> n;
  zmq::context_t ctx{1};
  std::int64_t batch = 0;

  fixture() {
    opts.data_dir = dir.sub("data");
    opts.plaintext_endpoints = true;  // CURVE and encryption at rest: tests/integration/security_test.cpp
    opts.plaintext_storage = true;
    opts.ingest_endpoint = "tcp://127.0.0.1:*";
    opts.pager_endpoint = "tcp://127.0.0.1:*";
    opts.control_endpoint = "tcp://127.0.0.1:*";
    opts.metrics_endpoint = "127.0.0.1:0";
    opts.stats_interval_s = 0;
    opts.rules_file = dir.sub("rules.yaml");
    opts.rules_tick_ms = 3'600'000;  // ticks only when the test says so
    std::ofstream{opts.rules_file} << rules_yaml;
    start();
  }
  void start() {
    node_hooks hooks;
    hooks.on_alert_events = [this](const std::vector<alert_event>& evs) {
      std::lock_guard<std::mutex> lock{m};
      seen.insert(seen.end(), evs.begin(), evs.end());
    };
    auto r = node::start(opts, clock, hooks);
    INFO(r.error().to_string());
    REQUIRE(r.has_value());
    n = std::move(*r);
  }
  void send(std::vector<reading_input> rs) {
    cluster::client_options co;
    co.endpoint = n->ingest_endpoint();
    co.timeout = std::chrono::seconds{20};
    cluster::ingest_client c{ctx, co};
    auto ack = c.send(++batch, rs);
    REQUIRE(ack.has_value());
    REQUIRE(ack->rejected.empty());
  }
  std::size_t count_seen() {
    std::lock_guard<std::mutex> lock{m};
    return seen.size();
  }
  template <class F>
  bool eventually(F&& cond) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      if (cond()) return true;
      std::this_thread::yield();
    }
    return cond();
  }
  // Every journaled transition as "alert_id type", in journal order (by id, then version).
  std::vector<std::string> journaled() {
    std::vector<std::string> out;
    auto j = storage::journal::open(opts.data_dir);
    REQUIRE(j.has_value());
    REQUIRE((*j)->for_each_alert_event([&](const alert_event& e) {
      out.push_back(e.after.id + " " + std::string{to_string(e.type)});
      return true;
    }).is_ok());
    return out;
  }
};

reading_input rd(const std::string& dev, std::uint64_t seq, const std::string& metric, double v, epoch_ms ts,
                 std::optional<std::string> patient = std::nullopt) {
  reading_input r;
  r.device = dev;
  r.metric = metric;
  r.value = v;
  r.ts = ts;
  r.seq = seq;
  r.patient = std::move(patient);
  return r;
}

}  // namespace

TEST_CASE("a low SpO2 held past its delay fires, is acknowledged and resolves, all journaled") {
  fixture f;
  f.send({rd("oxi-1", 1, "spo2", 86, t0)});                  // pending
  f.send({rd("oxi-1", 2, "spo2", 87, t0 + 10'000)});         // still pending
  f.send({rd("oxi-1", 3, "spo2", 86, t0 + 15'000)});         // fired
  REQUIRE(f.eventually([&] { return f.count_seen() == 2; }));
  auto acked = f.n->acknowledge("d/oxi-1/spo2_low/1", "nurse.kim");
  REQUIRE(acked.has_value());
  REQUIRE(acked->size() == 1);
  CHECK((*acked)[0].after.state == alert_state::acknowledged);
  CHECK(f.n->acknowledge("d/oxi-1/spo2_low/1", "nurse.kim")->empty());  // only once
  CHECK(f.n->acknowledge("d/oxi-1/no_such_rule/1", "x")->empty());
  f.send({rd("oxi-1", 4, "spo2", 89, t0 + 20'000)});         // inside hysteresis: stays
  f.send({rd("oxi-1", 5, "spo2", 91, t0 + 25'000)});         // resolved
  REQUIRE(f.eventually([&] { return f.count_seen() == 4; }));
  auto history = f.n->alert_history("d/oxi-1/spo2_low/1");
  REQUIRE(history.has_value());
  REQUIRE(history->size() == 4);
  CHECK((*history)[1].type == alert_event_type::fired);
  CHECK((*history)[1].after.summary == "spo2 86 % below 88 % for 15 s");
  CHECK((*history)[1].cause == std::vector{reading_ref{"oxi-1", 3}});
  CHECK((*history)[2].after.acked_by == "nurse.kim");
  f.n->stop();
  CHECK(f.journaled() == std::vector<std::string>{"d/oxi-1/spo2_low/1 pending", "d/oxi-1/spo2_low/1 fired",
                                                  "d/oxi-1/spo2_low/1 acknowledged", "d/oxi-1/spo2_low/1 resolved"});
}

TEST_CASE("a silent device raises one technical alert and inhibits its physiological alert") {
  fixture f;
  f.send({rd("oxi-1", 1, "spo2", 78, t0)});  // below the immediate tier: fires at once
  REQUIRE(f.eventually([&] { return f.count_seen() == 1; }));
  f.clock.advance(60'000);
  f.n->tick();
  f.clock.advance(61'000);  // 121 s without a reading
  f.n->tick();
  REQUIRE(f.eventually([&] { return f.count_seen() == 3; }));
  // It speaks again: the silence alert resolves and the inhibition lifts.
  f.send({rd("oxi-1", 2, "spo2", 79, t0 + 121'000)});
  REQUIRE(f.eventually([&] { return f.count_seen() == 5; }));
  f.n->stop();
  CHECK(f.journaled() == std::vector<std::string>{
                             "d/oxi-1/device_silent/1 fired",
                             "d/oxi-1/device_silent/1 resolved",
                             "d/oxi-1/spo2_low/1 fired",
                             "d/oxi-1/spo2_low/1 inhibited",
                             "d/oxi-1/spo2_low/1 uninhibited",
                         });
}

TEST_CASE("an open alert survives a restart of the node and is neither lost nor fired twice") {
  fixture f;
  f.send({rd("oxi-1", 1, "battery", 12, t0)});
  REQUIRE(f.eventually([&] { return f.count_seen() == 1; }));
  f.n->stop();
  f.n.reset();
  f.start();
  // Still open after the restart: it can be acknowledged, and a repeat does not re-fire it.
  f.send({rd("oxi-1", 2, "battery", 11, t0 + 1000)});
  auto acked = f.n->acknowledge("d/oxi-1/battery_low/1", "tech");
  REQUIRE(acked.has_value());
  REQUIRE(acked->size() == 1);
  f.n->stop();
  auto j = f.journaled();
  CHECK(std::count(j.begin(), j.end(), "d/oxi-1/battery_low/1 fired") == 1);
  CHECK(std::count(j.begin(), j.end(), "d/oxi-1/battery_low/2 fired") == 0);
}

TEST_CASE("a patient's NEWS2 across devices fires as soon as the known values prove the band") {
  fixture f;
  const auto p1 = *patient_id::make("P-1");
  auto news2_events = [&] {
    std::lock_guard<std::mutex> lock{f.m};
    std::vector<alert_event> out;
    for (const auto& e : f.seen)
      if (e.after.rule == "news2_high") out.push_back(e);
    return out;
  };
  // Monitor: RR 26 (3), temperature 39.5 (2), alert (0): 5 so far, high not proven.
  f.send({rd("mon-1", 1, "resp_rate", 26, t0, "P-1"), rd("mon-1", 2, "temperature", 39.5, t0, "P-1"),
          rd("mon-1", 3, "consciousness", 0, t0, "P-1")});
  REQUIRE(f.eventually([&] {
    auto p = f.n->patient(p1);
    return p && p->vitals[static_cast<std::size_t>(metric::consciousness)].has_value();
  }));
  CHECK(news2_events().empty());
  // Oximeter: SpO2 93 (2) makes 7 with values still missing: a missing value can only add
  // points, so high is proven and it fires now.
  f.send({rd("oxi-1", 1, "spo2", 93, t0 + 1000, "P-1")});
  REQUIRE(f.eventually([&] { return news2_events().size() == 1; }));
  auto fired = news2_events()[0];
  CHECK(fired.type == alert_event_type::fired);
  CHECK(fired.after.id == "p/P-1/news2_high/1");
  CHECK(fired.after.details.at("score") == 7);
  CHECK(fired.after.summary == "NEWS2 7+ (high), missing o2_supplement systolic_bp heart_rate");
  CHECK(fired.cause == std::vector{reading_ref{"oxi-1", 1}});
  // More points make it worse: one update with the complete score 11.
  f.send({rd("oxi-1", 2, "heart_rate", 120, t0 + 2000, "P-1"), rd("oxi-1", 3, "o2_supplement", 0, t0 + 2000, "P-1")});
  f.send({rd("bp-1", 1, "systolic_bp", 95, t0 + 3000, "P-1")});
  REQUIRE(f.eventually([&] {
    auto evs = news2_events();
    return !evs.empty() && evs.back().after.worst_value == 11;
  }));
  auto last = news2_events().back();
  CHECK(last.type == alert_event_type::updated);
  CHECK(last.after.summary == "NEWS2 11 (high)");
  CHECK(last.after.patient == "P-1");
}

TEST_CASE("a bad rules file is refused on reload and the old rules stay") {
  fixture f;
  std::ofstream{f.opts.rules_file} << "version: 1\nrules:\n  - id: spo2_low\n    kind: threshold\n    metric: spo3\n";
  auto st = f.n->reload_rules();
  CHECK(st.code() == errc::config_error);
  CHECK(st.message().find(":5:") != std::string::npos);  // the line of the unknown metric
  f.send({rd("oxi-1", 1, "battery", 10, t0)});
  REQUIRE(f.eventually([&] { return f.count_seen() == 1; }));  // battery_low still in force
  // A good file replaces the rules: battery_low is gone, a new threshold applies.
  std::ofstream{f.opts.rules_file, std::ios::trunc}
      << "version: 1\nrules:\n  - id: hr_high\n    kind: threshold\n    metric: heart_rate\n    above: 120\n";
  REQUIRE(f.n->reload_rules().is_ok());
  f.send({rd("oxi-2", 1, "battery", 5, t0), rd("oxi-2", 2, "heart_rate", 150, t0)});
  REQUIRE(f.eventually([&] { return f.count_seen() == 2; }));
  std::lock_guard<std::mutex> lock{f.m};
  CHECK(f.seen[1].after.id == "d/oxi-2/hr_high/1");
}

TEST_CASE("a node refuses to start with a bad rules file and says where") {
  test::temp_dir dir;
  config::node_options o;
  o.data_dir = dir.sub("data");
  o.plaintext_endpoints = true;  // CURVE and encryption at rest: tests/integration/security_test.cpp
  o.plaintext_storage = true;
  o.ingest_endpoint = "tcp://127.0.0.1:*";
  o.pager_endpoint = "tcp://127.0.0.1:*";
  o.control_endpoint = "tcp://127.0.0.1:*";
  o.metrics_endpoint = "127.0.0.1:0";
  o.rules_file = dir.sub("bad.yaml");
  std::ofstream{o.rules_file} << "version: 1\nrules:\n  - id: x\n    kind: threshold\n    metric: spo2\n    below: 500\n";
  manual_clock clock{t0};
  auto n = node::start(o, clock);
  REQUIRE_FALSE(n.has_value());
  CHECK(n.code() == errc::config_error);
  CHECK(n.error().message().find("bad.yaml:6") != std::string::npos);
}

TEST_CASE("a silence keeps its patient's alert quiet, never another's, and it resurfaces at expiry") {
  fixture f;
  silence s;
  s.patient = "P-1";
  s.rule = "battery_low";
  s.until = t0 + 60'000;
  s.by = "nurse.kim";
  s.reason = "battery swap in progress";
  auto id = f.n->add_silence(s);
  REQUIRE(id.has_value());
  CHECK(*id == "s-1");
  silence unscoped;
  unscoped.until = t0 + 60'000;
  CHECK(f.n->add_silence(unscoped).code() == errc::invalid_argument);
  f.send({rd("oxi-1", 1, "battery", 10, t0, "P-1"), rd("oxi-2", 1, "battery", 10, t0, "P-2")});
  REQUIRE(f.eventually([&] { return f.count_seen() == 2; }));
  {
    std::lock_guard<std::mutex> lock{f.m};
    for (const auto& e : f.seen) {
      CHECK(e.type == alert_event_type::fired);
      CHECK(e.after.silenced == (e.after.patient == "P-1"));  // born silenced; P-2's is not
    }
  }
  // The silence survives a restart.
  f.n->stop();
  f.n.reset();
  f.start();
  REQUIRE(f.n->silences()->size() == 1);
  // It expires: the still-open alert resurfaces.
  f.send({rd("oxi-1", 2, "battery", 9, t0 + 1000, "P-1")});  // activates the device again
  REQUIRE(f.eventually([&] { return f.count_seen() >= 3; }));  // its update (worse value)
  f.clock.set(t0 + 60'000);
  f.n->tick();
  REQUIRE(f.eventually([&] {
    std::lock_guard<std::mutex> lock{f.m};
    return std::any_of(f.seen.begin(), f.seen.end(), [](const alert_event& e) {
      return e.type == alert_event_type::unsilenced && e.after.id == "d/oxi-1/battery_low/1";
    });
  }));
  REQUIRE(f.eventually([&] { return f.n->silences()->empty(); }));
  // Lifting an unknown silence says so.
  CHECK_FALSE(*f.n->remove_silence("s-9", "x"));
}
