// alertd and alertctl as processes, the way operators run them: every alertctl command
// against a live node, config errors, a bad rules reload, a clean shutdown that loses
// nothing, and a second node on the same data directory.
#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <fstream>
#include <zmq.hpp>

#include "cluster/ingest_client.hpp"
#include "tests/support/http.hpp"
#include "tests/support/process.hpp"
#include "tests/support/temp_dir.hpp"

using namespace alert;

namespace {

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// An alertd on ephemeral loopback ports; its stderr (the log) is read with its stdout.
struct running_node {
  std::unique_ptr<test::process> p;
  std::string ingest, pager, control, metrics;

  running_node(const std::string& data, std::vector<std::string> extra = {}) {
    std::vector<std::string> args{"--data-dir",         data,          "--ingest.endpoint", "tcp://127.0.0.1:*",
                                  "--pager.endpoint",   "tcp://127.0.0.1:*", "--control.endpoint",
                                  "tcp://127.0.0.1:*", "--metrics.endpoint", "127.0.0.1:0", "--security.plaintext", "--security.plaintext-storage", "--stats-interval", "0"};
    args.insert(args.end(), extra.begin(), extra.end());
    p = std::make_unique<test::process>(ALERT_ALERTD_PATH, args, true);
    auto ready = p->wait_for_line("alertd ready");
    REQUIRE(ready.has_value());
    ingest = test::ready_field(*ready, "ingest");
    pager = test::ready_field(*ready, "pager");
    control = test::ready_field(*ready, "control");
    metrics = test::ready_field(*ready, "metrics");
  }
  int stop() {
    p->signal(SIGTERM);
    auto rc = p->wait();
    REQUIRE(rc.has_value());
    return *rc;
  }
};

struct ctl_result {
  int rc;
  std::string out;
  bool has(const std::string& text) const { return out.find(text) != std::string::npos; }
};

ctl_result ctl(const running_node& n, std::vector<std::string> args) {
  args.insert(args.begin(), {"--endpoint", n.control});
  test::process p{ALERT_ALERTCTL_PATH, args};
  auto out = p.read_all();
  auto rc = p.wait();
  REQUIRE(rc.has_value());
  INFO("alertctl output:\n" << out);
  return {*rc, out};
}

reading_input rd(const std::string& device, const std::string& patient, const std::string& metric, double v,
                 std::uint64_t seq) {
  reading_input r;
  r.device = device;
  r.patient = patient;
  r.metric = metric;
  r.value = v;
  r.ts = wall_ms();
  r.seq = seq;
  return r;
}

void send(const running_node& n, std::int64_t batch, std::vector<reading_input> rs) {
  zmq::context_t ctx{1};
  cluster::client_options co;
  co.endpoint = n.ingest;
  cluster::ingest_client c{ctx, co};
  auto ack = c.send(batch, rs);
  REQUIRE(ack.has_value());
  REQUIRE(ack->accepted == rs.size());
}

// Polls alertctl until `cond` holds for its output (bounded).
template <class F>
ctl_result until(const running_node& n, const std::vector<std::string>& args, F&& cond) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  for (;;) {
    auto r = ctl(n, args);
    if (cond(r) || std::chrono::steady_clock::now() > deadline) return r;
  }
}

}  // namespace

TEST_CASE("every alertctl command works against a live node") {
  test::temp_dir dir;
  running_node n{dir.sub("data")};
  const auto before = wall_ms() - 1;
  // SpO2 84 % (below the no-delay limit) and a flat battery: two alerts at once.
  send(n, 1, {rd("oxi-7", "P-7", "spo2", 84, 1), rd("oxi-7", "P-7", "battery", 10, 2)});
  const std::string spo2 = "d/oxi-7/spo2_low/1", battery = "d/oxi-7/battery_low/1";

  auto status = ctl(n, {"status"});
  CHECK(status.rc == 0);
  CHECK(status.has("node        node-1"));
  CHECK(status.has("2 accepted"));
  CHECK(status.has("single: node-1 up"));

  auto health = ctl(n, {"health"});
  CHECK(health.rc == 1);  // no pager gateway: nobody can be paged
  CHECK(health.has("NOT HEALTHY"));
  CHECK(health.has("no pager gateway connected"));
  CHECK(health.has("escalation  ok"));

  auto alerts = until(n, {"alerts"}, [&](const ctl_result& r) { return r.has(spo2) && r.has(battery); });
  CHECK(alerts.rc == 0);
  CHECK(alerts.has("ALERT"));
  CHECK(alerts.has(spo2));
  auto high = ctl(n, {"alerts", "--priority", "high"});
  CHECK(high.has(spo2));
  CHECK_FALSE(high.has(battery));
  auto json = ctl(n, {"--json", "alerts", "--patient", "P-7", "--limit", "1"});
  CHECK(json.rc == 0);
  CHECK(json.has("\"id\": \"d/oxi-7/"));
  CHECK(json.out.find("\"id\"") == json.out.rfind("\"id\""));  // --limit 1: one alert shown
  CHECK_FALSE(json.has("\"matched\": 1\n"));                     // of more that match
  CHECK(ctl(n, {"alerts", "--state", "nonsense"}).rc == 1);

  auto one = ctl(n, {"alert", spo2});
  CHECK(one.rc == 0);
  CHECK(one.has("History"));
  CHECK(one.has("fired"));
  CHECK(one.has("Escalation: policy rapid"));
  CHECK(ctl(n, {"alert", "d/oxi-7/nope/1"}).rc == 1);

  auto acked = ctl(n, {"ack", spo2, "--by", "nurse.kim"});
  CHECK(acked.rc == 0);
  CHECK(acked.has("acknowledged by nurse.kim"));
  CHECK(ctl(n, {"ack", spo2}).rc == 1);  // already acknowledged
  auto resolved = ctl(n, {"resolve", battery, "--by", "biomed.lee"});
  CHECK(resolved.rc == 0);
  CHECK(resolved.has("resolved"));
  CHECK(ctl(n, {"alerts", "--state", "resolved"}).has(battery));
  auto by_hand = ctl(n, {"events", "--kind", "alert_resolved"});
  CHECK(by_hand.has(battery));
  CHECK(by_hand.has("by biomed.lee"));
  CHECK(ctl(n, {"alert", spo2}).has("by nurse.kim"));

  auto silenced = ctl(n, {"silence", "--patient", "P-7", "--for", "15m", "--reason", "probe off for a wash"});
  CHECK(silenced.rc == 0);
  CHECK(silenced.has("silence s-1 until"));
  auto silences = ctl(n, {"silences"});
  CHECK(silences.has("patient=P-7"));
  CHECK(silences.has("probe off for a wash"));
  CHECK(ctl(n, {"unsilence", "s-1"}).has("lifted"));
  CHECK(ctl(n, {"unsilence", "s-1"}).rc == 1);
  CHECK(ctl(n, {"silences"}).has("no silences in force"));
  CHECK(ctl(n, {"silence", "--for", "15m", "--reason", "x"}).rc == 2);  // no scope

  auto device = ctl(n, {"device", "oxi-7"});
  CHECK(device.rc == 0);
  CHECK(device.has("device oxi-7 (oximeter), patient P-7"));
  CHECK(device.has("spo2"));
  CHECK(ctl(n, {"device", "oxi-7", "--at", std::to_string(before)}).rc == 1);  // nothing yet then
  auto patient = ctl(n, {"patient", "P-7", "--at", std::to_string(wall_ms())});
  CHECK(patient.rc == 0);
  CHECK(patient.has("patient P-7, devices oxi-7"));
  CHECK(ctl(n, {"patient", "P-404"}).rc == 1);

  auto readings = ctl(n, {"readings", "oxi-7", "--limit", "5"});
  CHECK(readings.rc == 0);
  CHECK(readings.has("spo2"));
  CHECK(readings.has("battery"));

  CHECK(ctl(n, {"rules", "check"}).has("(built-in rules): ok"));
  auto bad = dir.sub("bad.yaml");
  std::ofstream{bad} << "version: 1\nrules:\n  - id: x\n    kind: thresold\n";
  auto check = ctl(n, {"rules", "check", bad});
  CHECK(check.rc == 1);
  CHECK(check.has(bad + ":4:"));
  auto reload = ctl(n, {"rules", "reload"});
  CHECK(reload.rc == 0);
  CHECK(reload.has("rules reloaded"));

  // Every command above is in the audit log, reads of a patient's data included, and the
  // chain holds.
  auto audit = ctl(n, {"audit", "--limit", "1000"});
  CHECK(audit.rc == 0);
  CHECK(audit.has("nurse.kim"));
  CHECK(audit.has(" ack "));
  CHECK(audit.has(" patient "));
  CHECK(audit.has("P-7"));
  CHECK(audit.has("not_found"));
  auto intact = ctl(n, {"audit", "verify"});
  CHECK(intact.rc == 0);
  CHECK(intact.has("audit log intact"));

  auto release = ctl(n, {"release", "d/oxi-7"});
  CHECK(release.rc == 1);  // it is not quarantined
  CHECK(ctl(n, {"frobnicate"}).rc == 2);
  CHECK(n.stop() == 0);
  // The node is gone: alertctl says so with its own exit code.
  CHECK(ctl(n, {"--timeout", "0.3", "status"}).rc == 3);
}

TEST_CASE("a bad rules file on reload is refused and the old rules stay in force") {
  test::temp_dir dir;
  auto rules = dir.sub("rules.yaml");
  std::ofstream{rules} << "version: 1\nrules:\n  - id: spo2_low\n    kind: threshold\n    metric: spo2\n    below: 88\n";
  running_node n{dir.sub("data"), {"--rules", rules}};
  std::ofstream{rules, std::ios::trunc} << "version: 1\nrules:\n  - id: spo2_low\n    kind: threshold\n    metric: spo3\n";
  n.p->signal(SIGHUP);
  auto refused = n.p->wait_for_text("event=rules_reload_rejected");
  REQUIRE(refused.has_value());
  CHECK(refused->find("spo3") != std::string::npos);
  // The same through alertctl: refused, with the problem.
  auto reload = ctl(n, {"rules", "reload"});
  CHECK(reload.rc == 1);
  // The old rule still fires.
  send(n, 1, {rd("oxi-1", "P-1", "spo2", 84, 1)});
  CHECK(until(n, {"alerts"}, [](const ctl_result& r) { return r.has("d/oxi-1/spo2_low/1"); }).has("d/oxi-1/spo2_low/1"));
  CHECK(n.stop() == 0);
}

TEST_CASE("a clean shutdown loses nothing acknowledged, and a second node on the same data is refused") {
  test::temp_dir dir;
  const auto data = dir.sub("data");
  {
    running_node n{data};
    for (std::uint64_t b = 0; b < 20; ++b) {
      std::vector<reading_input> batch;
      for (std::uint64_t i = 1; i <= 50; ++i) batch.push_back(rd("mon-1", "P-1", "heart_rate", 70, b * 50 + i));
      send(n, static_cast<std::int64_t>(b + 1), batch);
    }
    // A second node on the same data directory refuses to start, saying why.
    test::process second{ALERT_ALERTD_PATH,
                         {"--data-dir", data, "--ingest.endpoint", "tcp://127.0.0.1:*", "--pager.endpoint",
                          "tcp://127.0.0.1:*", "--control.endpoint", "tcp://127.0.0.1:*", "--metrics.endpoint", "127.0.0.1:0", "--security.plaintext", "--security.plaintext-storage"},
                         true};
    auto why = second.wait_for_text("in use");
    CHECK(why.has_value());
    CHECK(second.wait() == 3);
    auto t0 = std::chrono::steady_clock::now();
    CHECK(n.stop() == 0);
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(10));
  }
  running_node again{data};
  auto readings = ctl(again, {"--json", "readings", "mon-1", "--limit", "5000"});
  CHECK(readings.rc == 0);
  std::size_t n = 0;
  for (auto at = readings.out.find("\"seq\""); at != std::string::npos; at = readings.out.find("\"seq\"", at + 1)) ++n;
  CHECK(n == 1000);
  CHECK(ctl(again, {"status"}).has("node-1"));
  CHECK(again.stop() == 0);
}

TEST_CASE("alertd refuses bad options with the configuration exit code and a message naming the option") {
  test::process bad{ALERT_ALERTD_PATH, {"--ingest.endpoint", "localhost:7600"}, true};
  auto msg = bad.wait_for_text("ingest.endpoint");
  CHECK(msg.has_value());
  CHECK(bad.wait() == 2);
  test::process unknown{ALERT_ALERTD_PATH, {"--no-such-option"}, true};
  CHECK(unknown.wait_for_text("no-such-option").has_value());
  CHECK(unknown.wait() == 2);
  test::process clash{ALERT_ALERTD_PATH, {"--control.endpoint", "tcp://127.0.0.1:7601"}, true};
  CHECK(clash.wait_for_text("control.endpoint").has_value());
  CHECK(clash.wait() == 2);
}

TEST_CASE("the metrics endpoint of a live node serves Prometheus text with what happened") {
  test::temp_dir dir;
  running_node n{dir.sub("data")};
  auto ready_metrics = n.metrics;
  REQUIRE(ready_metrics.rfind("http://127.0.0.1:", 0) == 0);
  test::process sink{ALERT_PAGER_SINK_PATH, {"--endpoint", n.pager, "--by", "nurse.kim"}};
  REQUIRE(sink.wait_for_line("pager-sink: connected").has_value());
  // One reading fires at once and is paged (and accepted), one is out of range.
  send(n, 1, {rd("oxi-7", "P-7", "spo2", 84, 1)});
  {
    zmq::context_t ctx{1};
    cluster::client_options co;
    co.endpoint = n.ingest;
    cluster::ingest_client c{ctx, co};
    auto ack = c.send(2, {rd("oxi-7", "P-7", "spo2", 150, 2)});
    REQUIRE(ack.has_value());
    REQUIRE(ack->rejected.size() == 1);
  }
  REQUIRE(sink.wait_for_line("pager-sink: accepted").has_value());
  std::string text;
  auto has = [&](const std::string& line) { return text.find(line) != std::string::npos; };
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  do {
    auto body = test::http_get(ready_metrics);
    REQUIRE(body.has_value());
    text = *body;
    // The acceptance reaches the alert through the escalator and the device actor.
  } while (!has("alert_alerts{priority=\"high\",state=\"acknowledged\"} 1") &&
           std::chrono::steady_clock::now() < deadline);
  INFO(text);
  CHECK(has("# TYPE alert_readings_accepted_total counter"));
  CHECK(has("alert_readings_accepted_total 1\n"));
  CHECK(has("alert_readings_rejected_total{code=\"value_out_of_range\"} 1\n"));
  CHECK(has("alert_ingest_requests_total 2\n"));
  CHECK(has("# TYPE alert_ingest_request_duration_seconds histogram"));
  CHECK(has("alert_ingest_request_duration_seconds_count 1\n"));  // the refused-only request waits for nothing
  CHECK(has("alert_journal_commit_duration_seconds_bucket{le=\"+Inf\"}"));
  CHECK(has("alert_actors_active{kind=\"device\"} 1\n"));
  CHECK(has("alert_pages_sent_total 1\n"));
  CHECK(has("alert_escalation_steps_total{level=\"0\"} 1\n"));
  CHECK(has("alert_page_status_total{status=\"received\"} 1\n"));
  CHECK(has("alert_page_status_total{status=\"accepted\"} 1\n"));
  CHECK(has("alert_arrival_to_page_seconds_count 1\n"));
  CHECK(has("alert_alerts{priority=\"high\",state=\"acknowledged\"} 1\n"));
  CHECK(has("alert_pager_gateways 1\n"));
  CHECK(has("alert_cluster_members{node=\"node-1\",state=\"up\"} 1\n"));
  sink.signal(SIGTERM);
  CHECK(sink.wait() == 0);
  CHECK(n.stop() == 0);
}
