// pager-sink as a process against the real pager endpoint: it says hello, reports each
// page received, answers as told, and answers a redelivered page only once.
#include <catch2/catch.hpp>
#include <mutex>
#include <thread>
#include <zmq.hpp>

#include "cluster/pager_server.hpp"
#include "tests/support/process.hpp"

using namespace alert;

namespace {

struct fixture {
  zmq::context_t ctx{1};
  std::mutex m;
  std::vector<wire::pager_status> statuses;
  std::vector<std::string> hellos;
  std::unique_ptr<cluster::pager_server> server;
  fixture() {
    cluster::pager_options o;
    o.endpoint = "tcp://127.0.0.1:*";
    cluster::pager_events ev;
    ev.on_status = [this](const std::string&, const wire::pager_status& s) {
      std::lock_guard<std::mutex> lock{m};
      statuses.push_back(s);
    };
    ev.on_hello = [this](const wire::pager_hello& h) {
      std::lock_guard<std::mutex> lock{m};
      hellos.push_back(h.gateway);
    };
    server = std::move(*cluster::pager_server::start(ctx, o, ev));
  }
  ~fixture() { server->stop(); }
  template <class F>
  bool eventually(F&& cond) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      {
        std::lock_guard<std::mutex> lock{m};
        if (cond()) return true;
      }
      std::this_thread::yield();
    }
    std::lock_guard<std::mutex> lock{m};
    return cond();
  }
};

wire::pager_page page_to(const std::string& target) {
  wire::pager_page p;
  p.alert_id = "d/oxi-1/spo2_low/1";
  p.page_id = page_id(p.alert_id, 0, 0, target);
  p.target = target;
  p.rule = "spo2_low";
  p.summary = "spo2 84 % below 88 % for 15 s";
  return p;
}

}  // namespace

TEST_CASE("pager-sink reports a page received, accepts it, and answers a redelivery only with received") {
  fixture f;
  test::process sink{ALERT_PAGER_SINK_PATH,
                     {"--endpoint", f.server->endpoint(), "--gateway", "ward-gw", "--target", "ward3-nurse"}};
  REQUIRE(f.eventually([&] { return f.hellos == std::vector<std::string>{"ward-gw"}; }));
  auto p = page_to("ward3-nurse");
  REQUIRE(f.server->send_page(p) == 1);
  REQUIRE(f.eventually([&] { return f.statuses.size() == 2; }));
  {
    std::lock_guard<std::mutex> lock{f.m};
    CHECK(f.statuses[0].page_id == p.page_id);
    CHECK(f.statuses[0].status == page_status::received);
    CHECK(f.statuses[1].status == page_status::accepted);
    CHECK(f.statuses[1].by == "sink.responder");
  }
  REQUIRE(f.server->send_page(p) == 1);  // redelivered under the same id
  REQUIRE(f.eventually([&] { return f.statuses.size() == 3; }));
  {
    std::lock_guard<std::mutex> lock{f.m};
    CHECK(f.statuses[2].status == page_status::received);
  }
  CHECK(f.server->send_page(page_to("icu-nurse")) == 0);  // not its target
  sink.signal(SIGTERM);
  CHECK(sink.wait() == 0);
}

TEST_CASE("pager-sink told to answer nothing only reports pages received") {
  fixture f;
  test::process sink{ALERT_PAGER_SINK_PATH, {"--endpoint", f.server->endpoint(), "--answer", "none"}};
  REQUIRE(f.eventually([&] { return f.hellos.size() == 1; }));
  REQUIRE(f.server->send_page(page_to("anyone")) == 1);  // it serves every target
  REQUIRE(f.eventually([&] { return f.statuses.size() == 1; }));
  auto printed = sink.wait_for_line("PAGE ");
  REQUIRE(printed.has_value());
  CHECK(printed->find("spo2 84 % below 88 % for 15 s") != std::string::npos);
  sink.signal(SIGTERM);
  CHECK(sink.wait() == 0);
  std::lock_guard<std::mutex> lock{f.m};
  CHECK(f.statuses.size() == 1);
  CHECK(f.statuses[0].status == page_status::received);
}

TEST_CASE("pager-sink repeats its hello, so a node restarted on the same endpoint knows it again") {
  std::string endpoint;
  auto f = std::make_unique<fixture>();
  endpoint = f->server->endpoint();
  test::process sink{ALERT_PAGER_SINK_PATH, {"--endpoint", endpoint, "--hello-every", "0.1"}};
  REQUIRE(f->eventually([&] { return f->hellos.size() == 1; }));
  f.reset();
  // The node comes back on the same endpoint and knows no gateway.
  zmq::context_t ctx{1};
  std::mutex m;
  std::vector<std::string> hellos;
  cluster::pager_options o;
  o.endpoint = endpoint;
  cluster::pager_events ev;
  ev.on_hello = [&](const wire::pager_hello& h) {
    std::lock_guard<std::mutex> lock{m};
    hellos.push_back(h.gateway);
  };
  auto server = cluster::pager_server::start(ctx, o, ev);
  REQUIRE(server.has_value());
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (;;) {
    {
      std::lock_guard<std::mutex> lock{m};
      if (!hellos.empty() || std::chrono::steady_clock::now() > deadline) break;
    }
    std::this_thread::yield();
  }
  CHECK((*server)->gateways() == std::vector<std::string>{"pager-sink"});
  sink.signal(SIGTERM);
  CHECK(sink.wait() == 0);
  (*server)->stop();
}
