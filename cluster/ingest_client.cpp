#include "cluster/ingest_client.hpp"

#include <thread>
#include <zmq.hpp>

namespace alert::cluster {
namespace {

bool same_batch(const wire::batch_id& a, const wire::batch_id& b) { return a == b; }

}  // namespace

ingest_client::ingest_client(zmq::context_t& ctx, client_options opts) : ctx_(ctx), opts_(std::move(opts)) {
  reconnect();
}

ingest_client::~ingest_client() = default;

void ingest_client::reconnect() {
  socket_ = std::make_unique<zmq::socket_t>(ctx_, zmq::socket_type::dealer);
  socket_->set(zmq::sockopt::linger, 0);
  apply_client(*socket_, opts_.security);
  socket_->connect(opts_.endpoint);
}

result<std::string> ingest_client::request_raw(const std::string& frame, std::chrono::milliseconds timeout) {
  try {
    socket_->send(zmq::buffer(frame), zmq::send_flags::none);
    zmq::pollitem_t item{socket_->handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, timeout) == 0) return status{errc::unavailable, "no reply from " + opts_.endpoint};
    zmq::message_t msg;
    if (!socket_->recv(msg)) return status{errc::unavailable, "no reply from " + opts_.endpoint};
    return msg.to_string();
  } catch (const zmq::error_t& e) {
    return status{errc::unavailable, std::string{"ingest socket: "} + e.what()};
  }
}

result<wire::ingest_ack> ingest_client::send(const wire::batch_id& batch, const std::vector<reading_input>& readings) {
  const std::string frame = wire::encode_request(batch, readings);
  auto backoff = opts_.overload_backoff;
  for (int attempt = 0; attempt < opts_.attempts; ++attempt) {
    try {
      socket_->send(zmq::buffer(frame), zmq::send_flags::none);
      auto deadline = std::chrono::steady_clock::now() + opts_.timeout;
      for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) break;
        zmq::pollitem_t item{socket_->handle(), 0, ZMQ_POLLIN, 0};
        if (zmq::poll(&item, 1, left) == 0) break;
        zmq::message_t msg;
        if (!socket_->recv(msg, zmq::recv_flags::dontwait)) continue;
        auto reply = wire::decode_reply(static_cast<const char*>(msg.data()), msg.size());
        if (!reply) continue;  // not ours to judge: wait for the real one
        if (auto* ack = std::get_if<wire::ingest_ack>(&*reply)) {
          if (same_batch(ack->batch, batch)) return std::move(*ack);
          continue;  // a late reply to an earlier resend
        }
        auto& err = std::get<wire::ingest_error>(*reply);
        if (!std::holds_alternative<std::monostate>(err.batch) && !same_batch(err.batch, batch)) continue;
        if (err.code == errc::overloaded && attempt + 1 < opts_.attempts) {
          std::this_thread::sleep_for(backoff);  // the node asked us to slow down
          backoff *= 2;
          goto next_attempt;
        }
        return status{err.code, err.message};
      }
      ++resends_;
    } catch (const zmq::error_t& e) {
      reconnect();
      if (attempt + 1 == opts_.attempts) return status{errc::unavailable, std::string{"ingest socket: "} + e.what()};
    }
  next_attempt:;
  }
  // Start clean: replies still on their way belong to a batch the caller gave up on.
  reconnect();
  return status{errc::unavailable, "no reply from " + opts_.endpoint + " after " +
                                       std::to_string(opts_.attempts) + " attempts"};
}

}  // namespace alert::cluster
