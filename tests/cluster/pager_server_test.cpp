#include "cluster/pager_server.hpp"

#include <catch2/catch.hpp>
#include <chrono>
#include <mutex>
#include <thread>
#include <zmq.hpp>

using namespace alert;
using namespace alert::cluster;

namespace {

template <class F>
bool eventually(F&& cond) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::yield();
  }
  return cond();
}

// A gateway's DEALER.
struct gateway {
  zmq::socket_t sock;
  gateway(zmq::context_t& ctx, const std::string& endpoint) : sock(ctx, zmq::socket_type::dealer) {
    sock.set(zmq::sockopt::linger, 0);
    sock.connect(endpoint);
  }
  void send(const std::string& frame) { sock.send(zmq::buffer(frame), zmq::send_flags::none); }
  std::optional<wire::node_message> receive(std::chrono::milliseconds timeout = std::chrono::seconds{20}) {
    zmq::pollitem_t item{sock.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, timeout) == 0) return std::nullopt;
    zmq::message_t m;
    if (!sock.recv(m)) return std::nullopt;
    auto decoded = wire::decode_from_node(static_cast<const char*>(m.data()), m.size());
    REQUIRE(decoded.has_value());
    return *decoded;
  }
  void hello(const std::string& name, std::vector<std::string> targets) {
    send(wire::encode_hello({name, std::move(targets)}));
    auto reply = receive();
    REQUIRE(reply.has_value());
    REQUIRE(std::holds_alternative<wire::pager_welcome>(*reply));
  }
};

wire::pager_page page_for(const std::string& target) {
  wire::pager_page p;
  p.page_id = page_id("d/oxi-1/spo2_low/1", 0, 0, target);
  p.alert_id = "d/oxi-1/spo2_low/1";
  p.target = target;
  p.priority = alert_priority::high;
  p.rule = "spo2_low";
  p.summary = "spo2 84 % below 88 % for 15 s";
  p.details = {{"value", 84}};
  p.ts = 1000;
  p.event_ts = 900;
  return p;
}

struct fixture {
  zmq::context_t ctx{1};
  std::mutex m;
  std::vector<std::pair<std::string, wire::pager_status>> statuses;
  std::vector<std::string> gone;
  std::unique_ptr<pager_server> server;
  fixture() {
    pager_options o;
    o.endpoint = "tcp://127.0.0.1:*";
    pager_events ev;
    ev.on_status = [this](const std::string& g, const wire::pager_status& s) {
      std::lock_guard<std::mutex> lock{m};
      statuses.emplace_back(g, s);
    };
    ev.on_gone = [this](const std::string& g) {
      std::lock_guard<std::mutex> lock{m};
      gone.push_back(g);
    };
    auto s = pager_server::start(ctx, o, ev);
    REQUIRE(s.has_value());
    server = std::move(*s);
  }
  ~fixture() { server->stop(); }
};

}  // namespace

TEST_CASE("a page goes to every gateway serving its target, by name or by star, and no other") {
  fixture f;
  gateway ward{f.ctx, f.server->endpoint()}, all{f.ctx, f.server->endpoint()}, other{f.ctx, f.server->endpoint()};
  ward.hello("ward-gw", {"ward3-nurse"});
  all.hello("bridge", {"*"});
  other.hello("icu-gw", {"icu-nurse"});
  CHECK(f.server->gateways() == std::vector<std::string>{"bridge", "icu-gw", "ward-gw"});
  auto p = page_for("ward3-nurse");
  CHECK(f.server->send_page(p) == 2);
  for (auto* g : {&ward, &all}) {
    auto got = g->receive();
    REQUIRE(got.has_value());
    auto* page = std::get_if<wire::pager_page>(&*got);
    REQUIRE(page != nullptr);
    CHECK(*page == p);
  }
  CHECK_FALSE(other.receive(std::chrono::milliseconds{50}).has_value());
}

TEST_CASE("a target no gateway serves is reported unreachable") {
  fixture f;
  gateway g{f.ctx, f.server->endpoint()};
  g.hello("ward-gw", {"ward3-nurse"});
  CHECK(f.server->send_page(page_for("rapid-response")) == 0);
  CHECK(f.server->send_cancel("rapid-response", {"x", "y", "resolved"}) == 0);
}

TEST_CASE("statuses reach the node with the gateway's name, and before hello they are refused") {
  fixture f;
  gateway g{f.ctx, f.server->endpoint()};
  g.send(wire::encode_status({"p-1", page_status::received, "", 5}));
  auto refused = g.receive();
  REQUIRE(refused.has_value());
  REQUIRE(std::holds_alternative<wire::pager_error>(*refused));
  CHECK(std::get<wire::pager_error>(*refused).code == errc::unauthorized);
  g.hello("ward-gw", {"*"});
  g.send(wire::encode_status({"p-1", page_status::accepted, "nurse.kim", 6}));
  REQUIRE(eventually([&] {
    std::lock_guard<std::mutex> lock{f.m};
    return f.statuses.size() == 1;
  }));
  std::lock_guard<std::mutex> lock{f.m};
  CHECK(f.statuses[0].first == "ward-gw");
  CHECK(f.statuses[0].second.status == page_status::accepted);
  CHECK(f.statuses[0].second.by == "nurse.kim");
}

TEST_CASE("a malformed message gets an error and the endpoint keeps serving") {
  fixture f;
  gateway g{f.ctx, f.server->endpoint()};
  g.send("\xc1 not msgpack");
  auto err = g.receive();
  REQUIRE(err.has_value());
  REQUIRE(std::holds_alternative<wire::pager_error>(*err));
  CHECK(std::get<wire::pager_error>(*err).code == errc::malformed);
  g.hello("ward-gw", {"ward3-nurse"});
  CHECK(f.server->send_page(page_for("ward3-nurse")) == 1);
  CHECK(g.receive().has_value());
}

TEST_CASE("a gateway that went away is forgotten when a page cannot reach it") {
  fixture f;
  {
    gateway g{f.ctx, f.server->endpoint()};
    g.hello("ward-gw", {"ward3-nurse"});
  }  // closes the connection
  REQUIRE(eventually([&] {
    f.server->send_page(page_for("ward3-nurse"));
    std::lock_guard<std::mutex> lock{f.m};
    return !f.gone.empty();
  }));
  {
    std::lock_guard<std::mutex> lock{f.m};
    CHECK(f.gone[0] == "ward-gw");
  }
  CHECK(f.server->gateways().empty());
  CHECK(f.server->send_page(page_for("ward3-nurse")) == 0);
}
