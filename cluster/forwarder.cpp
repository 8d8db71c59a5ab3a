#include "cluster/forwarder.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cstring>
#include <zmq.hpp>

#include "cluster/ingest_wire.hpp"
#include "engine/log.hpp"
#include "engine/metric.hpp"

namespace alert::cluster {

reading_input to_input(const reading& r) {
  reading_input in;
  in.device = r.device.str();
  if (r.patient) in.patient = r.patient->str();
  in.metric = std::string{info(r.what).name};
  in.value = r.value;
  in.ts = r.ts;
  in.seq = r.seq;
  return in;
}

result<std::unique_ptr<forwarder>> forwarder::start(zmq::context_t& ctx, std::string self,
                                                    std::chrono::milliseconds timeout) {
  std::unique_ptr<forwarder> f{new forwarder{}};
  f->ctx_ = &ctx;
  f->self_ = std::move(self);
  f->timeout_ = timeout;
  f->wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (f->wake_fd_ < 0) return status{errc::io_error, std::string{"eventfd: "} + std::strerror(errno)};
  f->thread_ = std::thread{[p = f.get()] { p->run(); }};
  return f;
}

forwarder::~forwarder() {
  stop();
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void forwarder::forward(const forward_target& to, std::vector<reading> readings, done_fn done, bool replica) {
  std::vector<reading_input> inputs;
  inputs.reserve(readings.size());
  for (const auto& r : readings) inputs.push_back(to_input(r));
  job j;
  j.to = to;
  j.id = next_id_.fetch_add(1);
  j.bytes = wire::encode_request(static_cast<std::int64_t>(j.id), inputs, self_, replica);
  j.done = std::move(done);
  {
    std::lock_guard<std::mutex> lock{mutex_};
    if (!stopping_.load()) {
      queue_.push_back(std::move(j));
      j.done = nullptr;
    }
  }
  if (j.done) {
    j.done(status{errc::unavailable, "the node is stopping"}, 0, 0);
    return;
  }
  std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
}

void forwarder::abandon(const std::string& member) {
  {
    std::lock_guard<std::mutex> lock{mutex_};
    abandoned_.push_back(member);
  }
  std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
}

void forwarder::stop() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock{mutex_};
    stopping_.store(true);
  }
  std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
  thread_.join();
}

zmq::socket_t& forwarder::socket_for(const forward_target& to) {
  const std::string key = to.member + "|" + to.endpoint;
  auto it = sockets_.find(key);
  if (it != sockets_.end()) return *it->second;
  auto s = std::make_unique<zmq::socket_t>(*ctx_, zmq::socket_type::dealer);
  s->set(zmq::sockopt::linger, 0);
  s->set(zmq::sockopt::sndhwm, 10000);
  apply_client(*s, to.security);
  s->connect(to.endpoint);
  return *sockets_.emplace(key, std::move(s)).first->second;
}

void forwarder::run() {
  auto fail = [](waiting& w, const std::string& why) {
    try {
      w.done(status{errc::unavailable, why}, 0, 0);
    } catch (const std::exception& e) {
      log(log_level::error, "cluster", "forward_completion_failed", {{"error", e.what()}});
    }
  };
  try {
    while (!stopping_.load()) {
      std::deque<job> jobs;
      std::vector<std::string> gone;
      {
        std::lock_guard<std::mutex> lock{mutex_};
        jobs.swap(queue_);
        gone.swap(abandoned_);
      }
      for (const auto& member : gone)
        for (auto it = waiting_.begin(); it != waiting_.end();) {
          if (it->second.member != member) {
            ++it;
            continue;
          }
          fail(it->second, "member " + member + " is unreachable");
          it = waiting_.erase(it);
        }
      const auto now = std::chrono::steady_clock::now();
      for (auto& j : jobs) {
        waiting w{std::move(j.done), now + timeout_, j.to.member, j.to.endpoint};
        try {
          socket_for(j.to).send(zmq::buffer(j.bytes), zmq::send_flags::dontwait);
          waiting_.emplace(j.id, std::move(w));
        } catch (const zmq::error_t& e) {
          fail(w, "cannot forward to member " + j.to.member + ": " + e.what());
        }
      }
      // Replies, then timeouts.
      std::vector<zmq::pollitem_t> items;
      items.push_back({nullptr, wake_fd_, ZMQ_POLLIN, 0});
      for (auto& [k, s] : sockets_) items.push_back({s->handle(), 0, ZMQ_POLLIN, 0});
      auto wait = std::chrono::milliseconds{1000};
      for (const auto& [id, w] : waiting_)
        wait = std::min(wait, std::chrono::duration_cast<std::chrono::milliseconds>(w.deadline - now) +
                                  std::chrono::milliseconds{1});
      try {
        zmq::poll(items.data(), items.size(), std::max(wait, std::chrono::milliseconds{0}));
      } catch (const zmq::error_t& e) {
        if (e.num() != EINTR) throw;
      }
      if (items[0].revents & ZMQ_POLLIN) {
        std::uint64_t n;
        [[maybe_unused]] auto r = ::read(wake_fd_, &n, sizeof n);
      }
      for (auto& [k, s] : sockets_) {
        zmq::message_t m;
        while (s->recv(m, zmq::recv_flags::dontwait)) {
          auto reply = wire::decode_reply(static_cast<const char*>(m.data()), m.size());
          if (!reply) continue;
          const wire::batch_id* batch = nullptr;
          if (auto* a = std::get_if<wire::ingest_ack>(&*reply)) batch = &a->batch;
          if (auto* e = std::get_if<wire::ingest_error>(&*reply)) batch = &e->batch;
          std::uint64_t id = 0;
          if (const auto* i = batch ? std::get_if<std::int64_t>(batch) : nullptr) id = static_cast<std::uint64_t>(*i);
          if (const auto* u = batch ? std::get_if<std::uint64_t>(batch) : nullptr) id = *u;
          auto it = waiting_.find(id);
          if (it == waiting_.end()) continue;  // answered after its timeout: already failed
          auto w = std::move(it->second);
          waiting_.erase(it);
          if (auto* a = std::get_if<wire::ingest_ack>(&*reply)) {
            if (!a->rejected.empty()) {
              // Readings this node took but their owner refused (its clock, its limits):
              // never acked as stored. The integrator hears why.
              log(log_level::warn, "cluster", "forwarded_readings_refused",
                  {{"member", w.member}, {"count", std::to_string(a->rejected.size())},
                   {"first", a->rejected.front().message}});
              fail(w, "member " + w.member + " refused " + std::to_string(a->rejected.size()) + " of these readings (" +
                          std::string{to_string(a->rejected.front().code)} + ": " + a->rejected.front().message + ")");
              continue;
            }
            try {
              w.done(status{}, a->accepted, a->duplicates);
            } catch (const std::exception& e) {
              log(log_level::error, "cluster", "forward_completion_failed", {{"error", e.what()}});
            }
          } else {
            const auto& e = std::get<wire::ingest_error>(*reply);
            fail(w, "member " + w.member + " answered " + std::string{to_string(e.code)} + ": " + e.message);
          }
        }
      }
      const auto later = std::chrono::steady_clock::now();
      for (auto it = waiting_.begin(); it != waiting_.end();) {
        if (it->second.deadline > later) {
          ++it;
          continue;
        }
        fail(it->second, "no answer from member " + it->second.member + " within " +
                             std::to_string(timeout_.count()) + " ms");
        it = waiting_.erase(it);
      }
    }
  } catch (const std::exception& e) {
    log(log_level::error, "cluster", "forwarder_failed", {{"error", e.what()}});
  }
  for (auto& [id, w] : waiting_) fail(w, "the node is stopping");
  waiting_.clear();
  std::deque<job> left;
  {
    std::lock_guard<std::mutex> lock{mutex_};
    left.swap(queue_);
    stopping_.store(true);
  }
  for (auto& j : left) {
    waiting w{std::move(j.done), {}, j.to.member, j.to.endpoint};
    fail(w, "the node is stopping");
  }
  for (auto& [k, s] : sockets_) s->close();
  sockets_.clear();
}

}  // namespace alert::cluster
