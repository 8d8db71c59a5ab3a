// alertd as a process: rules checks and refusals that operators rely on.
#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <zmq.hpp>

#include "cluster/ingest_client.hpp"
#include "storage/journal.hpp"

#include "tests/support/process.hpp"
#include "tests/support/temp_dir.hpp"

using namespace alert;

TEST_CASE("alertd --check-rules exits 0 on a good file and 2 on a bad one") {
  test::temp_dir dir;
  auto good = dir.sub("good.yaml");
  std::ofstream{good} << "version: 1\nrules:\n  - id: spo2_low\n    kind: threshold\n    metric: spo2\n    below: 88\n";
  test::process ok{ALERT_ALERTD_PATH, {"--check-rules", good}};
  CHECK(ok.wait_for_line(good + ": ok").has_value());
  CHECK(ok.wait() == 0);
  auto bad = dir.sub("bad.yaml");
  std::ofstream{bad} << "version: 1\nrules:\n  - id: spo2_low\n    kind: threshold\n    metric: spo3\n    below: 88\n";
  test::process refused{ALERT_ALERTD_PATH, {"--check-rules", bad}};
  CHECK(refused.wait() == 2);
}

TEST_CASE("alertd refuses to start on a bad rules file with the configuration exit code") {
  test::temp_dir dir;
  auto bad = dir.sub("bad.yaml");
  std::ofstream{bad} << "version: 1\nrules:\n  - id: x\n    kind: thresold\n";
  test::process node{ALERT_ALERTD_PATH, {"--data-dir", dir.sub("data"), "--ingest.endpoint", "tcp://127.0.0.1:*", "--pager.endpoint", "tcp://127.0.0.1:*", "--control.endpoint", "tcp://127.0.0.1:*", "--metrics.endpoint", "127.0.0.1:0", "--security.plaintext", "--security.plaintext-storage",
                                         "--rules", bad}};
  CHECK_FALSE(node.wait_for_line("alertd ready").has_value());
  CHECK(node.wait() == 2);
}

TEST_CASE("alertd --check validates the built-in rules too") {
  test::process check{ALERT_ALERTD_PATH, {"--check", "--security.plaintext", "--security.plaintext-storage"}};
  auto line = check.wait_for_line("configuration ok");
  REQUIRE(line.has_value());
  CHECK(line->find("3 escalation policies from the built-in defaults") != std::string::npos);
  CHECK(check.wait() == 0);
}

TEST_CASE("alertd pages pager-sink, and the responder's acceptance acknowledges the alert") {
  test::temp_dir dir;
  const auto data = dir.sub("data");
  test::process node{ALERT_ALERTD_PATH,
                     {"--data-dir", data, "--ingest.endpoint", "tcp://127.0.0.1:*", "--pager.endpoint",
                      "tcp://127.0.0.1:*", "--control.endpoint", "tcp://127.0.0.1:*", "--metrics.endpoint", "127.0.0.1:0", "--security.plaintext", "--security.plaintext-storage", "--stats-interval", "0"},
                     true};
  auto ready = node.wait_for_line("alertd ready");
  REQUIRE(ready.has_value());
  const auto ingest = test::ready_field(*ready, "ingest");
  auto pager = ready->substr(ready->find("pager=") + 6);
  pager = pager.substr(0, pager.find(' '));
  test::process sink{ALERT_PAGER_SINK_PATH, {"--endpoint", pager, "--by", "nurse.kim"}};
  REQUIRE(sink.wait_for_line("pager-sink: connected").has_value());

  // SpO2 84 %: below the built-in rules' no-delay limit (85 %), a high-priority page at once.
  zmq::context_t ctx{1};
  cluster::client_options co;
  co.endpoint = ingest;
  cluster::ingest_client client{ctx, co};
  reading_input r;
  r.device = "oxi-7";
  r.patient = "P-7";
  r.metric = "spo2";
  r.value = 84;
  r.ts = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  r.seq = 1;
  auto ack = client.send(1, {r});
  REQUIRE(ack.has_value());
  REQUIRE(ack->accepted == 1);

  auto paged = sink.wait_for_line("PAGE ");
  REQUIRE(paged.has_value());
  CHECK(paged->find("PAGE high -> rapid-response (level 0, repeat 0)") != std::string::npos);
  CHECK(paged->find("spo2 84") != std::string::npos);
  auto accepted = sink.wait_for_line("pager-sink: accepted ");
  REQUIRE(accepted.has_value());
  const auto page_id = accepted->substr(std::string{"pager-sink: accepted "}.size());
  const auto alert_id = page_id.substr(0, page_id.rfind('@'));

  // The node journals the acknowledgement (its log says so), and it is in the alert's history.
  auto acked_log = node.wait_for_text("event=acknowledged alert=" + alert_id);
  REQUIRE(acked_log.has_value());
  sink.signal(SIGTERM);
  CHECK(sink.wait() == 0);
  node.signal(SIGTERM);
  REQUIRE(node.wait() == 0);
  auto j = storage::journal::open(data);
  REQUIRE(j.has_value());
  auto history = (*j)->alert_history(alert_id);
  REQUIRE(history.has_value());
  std::vector<std::string> types;
  for (const auto& e : *history) types.emplace_back(to_string(e.type));
  REQUIRE(types.size() >= 2);
  CHECK(types[0] == "fired");
  CHECK(std::find(types.begin(), types.end(), "acknowledged") != types.end());
  for (const auto& e : *history)
    if (e.type == alert_event_type::acknowledged) CHECK(e.after.acked_by == "nurse.kim");
}
