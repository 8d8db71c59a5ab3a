#pragma once
// A pager gateway for tests: a DEALER that says hello for its targets, keeps every page and
// cancel the node sends, and reports statuses. Waits are bounded polls, never sleeps.

#include <catch2/catch.hpp>
#include <algorithm>
#include <chrono>
#include <set>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "cluster/curve.hpp"
#include "cluster/pager_wire.hpp"

namespace alert::test {

// A pager gateway: a DEALER that says hello for its targets and keeps what the node sends.
struct gateway {
  zmq::socket_t sock;
  std::vector<wire::pager_page> pages;
  std::vector<wire::pager_cancel> cancels;
  std::set<std::string> shown;  // page ids, as a gateway deduplicates them

  gateway(zmq::context_t& ctx, const std::string& endpoint, const std::string& name,
          std::vector<std::string> targets, const cluster::client_security& security = {})
      : sock(ctx, zmq::socket_type::dealer) {
    sock.set(zmq::sockopt::linger, 0);
    cluster::apply_client(sock, security);
    sock.connect(endpoint);
    sock.send(zmq::buffer(wire::encode_hello({name, std::move(targets)})), zmq::send_flags::none);
    REQUIRE(poll_until([&] { return welcomed; }));
  }
  bool welcomed = false;

  // Reads what has arrived; true when `done` holds (polls for up to 20 s). `done` is checked
  // at least every 50 ms, so it may be a deadline ("watch until ...").
  template <class F>
  bool poll_until(F&& done) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!done()) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      zmq::pollitem_t item{sock.handle(), 0, ZMQ_POLLIN, 0};
      if (zmq::poll(&item, 1, std::min(left, std::chrono::milliseconds{50})) == 0) continue;
      zmq::message_t m;
      if (!sock.recv(m, zmq::recv_flags::dontwait)) continue;
      auto msg = wire::decode_from_node(static_cast<const char*>(m.data()), m.size());
      REQUIRE(msg.has_value());
      if (std::holds_alternative<wire::pager_welcome>(*msg)) welcomed = true;
      if (auto* p = std::get_if<wire::pager_page>(&*msg)) {
        pages.push_back(*p);
        shown.insert(p->page_id);
      }
      if (auto* c = std::get_if<wire::pager_cancel>(&*msg)) cancels.push_back(*c);
      if (auto* e = std::get_if<wire::pager_error>(&*msg)) FAIL("node says " << e->message);
    }
    return true;
  }
  // Waits for the n-th page (1-based) and returns it.
  wire::pager_page page(std::size_t n) {
    INFO("waiting for page " << n);
    REQUIRE(poll_until([&] { return pages.size() >= n; }));
    return pages[n - 1];
  }
  void status(const std::string& page_id, page_status s, const std::string& by = "") {
    sock.send(zmq::buffer(wire::encode_status({page_id, s, by, 0})), zmq::send_flags::none);
  }
};


}  // namespace alert::test
