#include "cluster/ingest_server.hpp"

#include <catch2/catch.hpp>
#include <chrono>
#include <future>
#include <mutex>
#include <thread>
#include <zmq.hpp>

#include "cluster/ingest_client.hpp"

using namespace alert;
using namespace alert::cluster;

namespace {

constexpr epoch_ms now_ms = 1'700'000'000'000;

// A backend the test steers: answer at once, hold completions, refuse, or fail the write.
class fake_backend final : public ingest_backend {
public:
  enum class mode { ok, hold, refuse_overloaded, refuse_unavailable, fail_write };
  std::atomic<mode> how{mode::ok};

  status submit(std::vector<reading> readings, epoch_ms received, done_fn done, origin /*from*/) override {
    std::lock_guard<std::mutex> lock{mutex_};
    submitted_.insert(submitted_.end(), readings.begin(), readings.end());
    last_received_ = received;
    switch (how.load()) {
      case mode::ok: done({}, readings.size(), 0); return {};
      case mode::hold: held_.emplace_back(std::move(done), readings.size()); return {};
      case mode::refuse_overloaded: return {errc::overloaded, "queue full"};
      case mode::refuse_unavailable: return {errc::unavailable, "journal closed"};
      case mode::fail_write: done({errc::io_error, "disk on fire"}, 0, 0); return {};
    }
    return {};
  }
  std::size_t held() {
    std::lock_guard<std::mutex> lock{mutex_};
    return held_.size();
  }
  void release_all() {
    std::vector<std::pair<done_fn, std::size_t>> h;
    {
      std::lock_guard<std::mutex> lock{mutex_};
      h.swap(held_);
    }
    for (auto& [done, n] : h) done({}, n, 0);
  }
  std::size_t submitted() {
    std::lock_guard<std::mutex> lock{mutex_};
    return submitted_.size();
  }
  epoch_ms last_received() {
    std::lock_guard<std::mutex> lock{mutex_};
    return last_received_;
  }

private:
  std::mutex mutex_;
  std::vector<reading> submitted_;
  std::vector<std::pair<done_fn, std::size_t>> held_;
  epoch_ms last_received_ = 0;
};

struct fixture {
  zmq::context_t ctx{1};
  manual_clock clock{now_ms};
  fake_backend backend;
  std::unique_ptr<ingest_server> server;

  explicit fixture(ingest_options opts = {}) {
    opts.endpoint = "tcp://127.0.0.1:*";
    auto s = ingest_server::start(ctx, opts, backend, clock);
    REQUIRE(s.has_value());
    server = std::move(*s);
  }
  ~fixture() {
    backend.release_all();
    server->stop();
  }
  client_options client_opts(int attempts = 1) const {
    client_options co;
    co.endpoint = server->endpoint();
    co.timeout = std::chrono::seconds{20};
    co.attempts = attempts;
    return co;
  }
};

reading_input spo2(const std::string& device, std::uint64_t seq, double value = 95) {
  reading_input r;
  r.device = device;
  r.metric = "spo2";
  r.value = value;
  r.ts = now_ms - 1000;
  r.seq = seq;
  return r;
}

template <class F>
bool eventually(F&& cond) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::yield();
  }
  return cond();
}

}  // namespace

TEST_CASE("a batch is acked with the backend's counts and the node's receive time") {
  fixture f;
  ingest_client c{f.ctx, f.client_opts()};
  auto ack = c.send(std::string{"b-1"}, {spo2("oxi-1", 1), spo2("oxi-1", 2)});
  REQUIRE(ack.has_value());
  CHECK(std::get<std::string>(ack->batch) == "b-1");
  CHECK(ack->accepted == 2);
  CHECK(f.backend.last_received() == now_ms);
}

TEST_CASE("the ack waits until the backend says the readings are durable") {
  fixture f;
  f.backend.how = fake_backend::mode::hold;
  ingest_client c{f.ctx, f.client_opts()};
  auto reply = std::async(std::launch::async, [&] { return c.send(std::int64_t{7}, {spo2("oxi-1", 1)}); });
  REQUIRE(eventually([&] { return f.backend.held() == 1; }));
  CHECK(reply.wait_for(std::chrono::milliseconds(50)) == std::future_status::timeout);
  f.backend.release_all();
  auto ack = reply.get();
  REQUIRE(ack.has_value());
  CHECK(ack->accepted == 1);
}

TEST_CASE("a backend that cannot take readings makes the node answer overloaded or unavailable") {
  fixture f;
  ingest_client c{f.ctx, f.client_opts()};
  f.backend.how = fake_backend::mode::refuse_overloaded;
  auto over = c.send(std::int64_t{1}, {spo2("oxi-1", 1)});
  REQUIRE_FALSE(over.has_value());
  CHECK(over.code() == errc::overloaded);
  f.backend.how = fake_backend::mode::refuse_unavailable;
  auto unav = c.send(std::int64_t{2}, {spo2("oxi-1", 1)});
  REQUIRE_FALSE(unav.has_value());
  CHECK(unav.code() == errc::unavailable);
  CHECK(f.server->stats().request_errors == 2);
}

TEST_CASE("a failed journal write is answered unavailable, never acked") {
  fixture f;
  f.backend.how = fake_backend::mode::fail_write;
  ingest_client c{f.ctx, f.client_opts()};
  auto r = c.send(std::int64_t{1}, {spo2("oxi-1", 1)});
  REQUIRE_FALSE(r.has_value());
  CHECK(r.code() == errc::unavailable);
  CHECK(r.error().message().find("disk on fire") != std::string::npos);
}

TEST_CASE("the client retries an overloaded batch with backoff and gets the ack") {
  fixture f;
  f.backend.how = fake_backend::mode::refuse_overloaded;
  client_options co = f.client_opts(5);
  co.overload_backoff = std::chrono::milliseconds{1};
  ingest_client c{f.ctx, co};
  auto reply = std::async(std::launch::async, [&] { return c.send(std::int64_t{1}, {spo2("oxi-1", 1)}); });
  REQUIRE(eventually([&] { return f.server->stats().request_errors >= 1; }));
  f.backend.how = fake_backend::mode::ok;
  auto ack = reply.get();
  REQUIRE(ack.has_value());
  CHECK(ack->accepted == 1);
}

TEST_CASE("a batch of only invalid readings is answered at once without the backend") {
  fixture f;
  ingest_client c{f.ctx, f.client_opts()};
  auto ack = c.send(std::int64_t{3}, {spo2("bad id", 1), spo2("oxi-1", 2, 150)});
  REQUIRE(ack.has_value());
  CHECK(ack->accepted == 0);
  REQUIRE(ack->rejected.size() == 2);
  CHECK(ack->rejected[0].index == 0);
  CHECK(ack->rejected[0].code == errc::invalid_id);
  CHECK(ack->rejected[1].index == 1);
  CHECK(ack->rejected[1].code == errc::value_out_of_range);
  CHECK(f.backend.submitted() == 0);
}

TEST_CASE("timestamps are judged against the injected clock") {
  fixture f;
  ingest_client c{f.ctx, f.client_opts()};
  auto ahead = spo2("oxi-1", 1);
  ahead.ts = now_ms + 60 * 60 * 1000;
  auto first = c.send(std::int64_t{1}, {ahead});
  REQUIRE(first.has_value());
  REQUIRE(first->rejected.size() == 1);
  CHECK(first->rejected[0].code == errc::timestamp_in_future);
  f.clock.advance(60 * 60 * 1000);
  auto second = c.send(std::int64_t{2}, {ahead});
  REQUIRE(second.has_value());
  CHECK(second->accepted == 1);
}

TEST_CASE("a frame over the size limit is answered too_large and the peer stays connected") {
  ingest_options o;
  o.max_message_bytes = 2048;
  fixture f{o};
  ingest_client c{f.ctx, f.client_opts()};
  auto big = c.request_raw(std::string(4096, 'x'), std::chrono::seconds{20});
  REQUIRE(big.has_value());
  auto reply = wire::decode_reply(big->data(), big->size());
  REQUIRE(reply.has_value());
  auto* err = std::get_if<wire::ingest_error>(&*reply);
  REQUIRE(err != nullptr);
  CHECK(err->code == errc::too_large);
  auto ack = c.send(std::int64_t{1}, {spo2("oxi-1", 1)});
  CHECK(ack.has_value());
}

TEST_CASE("a REQ socket gets its reply through the REQ envelope") {
  fixture f;
  zmq::socket_t req{f.ctx, zmq::socket_type::req};
  req.set(zmq::sockopt::linger, 0);
  req.connect(f.server->endpoint());
  auto frame = wire::encode_request(std::string{"req-1"}, {spo2("oxi-9", 1)});
  req.send(zmq::buffer(frame));
  zmq::pollitem_t item{req.handle(), 0, ZMQ_POLLIN, 0};
  REQUIRE(zmq::poll(&item, 1, std::chrono::milliseconds{20000}) == 1);
  zmq::message_t msg;
  REQUIRE(req.recv(msg));
  auto reply = wire::decode_reply(static_cast<const char*>(msg.data()), msg.size());
  REQUIRE(reply.has_value());
  auto* ack = std::get_if<wire::ingest_ack>(&*reply);
  REQUIRE(ack != nullptr);
  CHECK(std::get<std::string>(ack->batch) == "req-1");
  CHECK(ack->accepted == 1);
}

TEST_CASE("stop answers the batches in flight before it closes") {
  fixture f;
  f.backend.how = fake_backend::mode::hold;
  ingest_client c{f.ctx, f.client_opts()};
  auto reply = std::async(std::launch::async, [&] { return c.send(std::int64_t{1}, {spo2("oxi-1", 1)}); });
  REQUIRE(eventually([&] { return f.backend.held() == 1; }));
  auto stopper = std::async(std::launch::async, [&] { f.server->stop(); });
  CHECK(stopper.wait_for(std::chrono::milliseconds(50)) == std::future_status::timeout);
  f.backend.release_all();
  stopper.get();
  auto ack = reply.get();
  REQUIRE(ack.has_value());
  CHECK(ack->accepted == 1);
}

TEST_CASE("binding an endpoint in use is refused as unavailable") {
  fixture f;
  ingest_options o;
  o.endpoint = f.server->endpoint();
  auto second = ingest_server::start(f.ctx, o, f.backend, f.clock);
  REQUIRE_FALSE(second.has_value());
  CHECK(second.code() == errc::unavailable);
}

TEST_CASE("a client with no node behind the endpoint gives up with unavailable after its attempts") {
  zmq::context_t ctx{1};
  client_options co;
  co.endpoint = "tcp://127.0.0.1:1";  // nothing listens on port 1
  co.timeout = std::chrono::milliseconds{20};
  co.attempts = 3;
  ingest_client c{ctx, co};
  auto r = c.send(std::int64_t{1}, {spo2("oxi-1", 1)});
  REQUIRE_FALSE(r.has_value());
  CHECK(r.code() == errc::unavailable);
  CHECK(c.resends() == 3);
}
