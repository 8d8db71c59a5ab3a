// pager-sink: a reference pager gateway. It connects to a node's pager endpoint, says hello
// for its targets, prints each page as it arrives, answers `received` at once and, if told,
// `accepted` after a delay (or `rejected`, or nothing: to watch escalation).
#include <boost/program_options.hpp>
#include <chrono>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <deque>
#include <set>
#include <iostream>
#include <zmq.hpp>

#include "cluster/curve.hpp"
#include "cluster/pager_wire.hpp"

namespace po = boost::program_options;

namespace {
std::atomic<bool> stop_requested{false};
void on_signal(int) { stop_requested = true; }

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}
}  // namespace

int main(int argc, char** argv) {
  using namespace alert;
  std::string endpoint, name, answer, responder, key_file, server_key_file;
  std::vector<std::string> targets;
  double accept_after_s = 0;
  double hello_every_s = 5;
  po::options_description desc{"pager-sink: a reference pager gateway that prints pages\n\nOptions"};
  desc.add_options()
      ("help,h", "show this help")
      ("endpoint", po::value(&endpoint)->default_value("tcp://127.0.0.1:7601"), "the node's pager endpoint")
      ("gateway", po::value(&name)->default_value("pager-sink"), "this gateway's name")
      ("target", po::value(&targets)->multitoken(), "targets served (repeatable; default: * for every target)")
      ("answer", po::value(&answer)->default_value("accept"),
       "after receiving a page: accept, reject or none (to watch escalation)")
      ("after", po::value(&accept_after_s)->default_value(0), "seconds to wait before the answer")
      ("by", po::value(&responder)->default_value("sink.responder"), "the responder named in the answer")
      ("hello-every", po::value(&hello_every_s)->default_value(5),
       "seconds between repeated hellos (a restarted node learns its gateways from them)")
      ("key", po::value(&key_file)->value_name("FILE"), "this gateway's CURVE key pair (alertctl keygen)")
      ("server-key", po::value(&server_key_file)->value_name("FILE"), "the node's public key (its .pub file)");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, desc), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "pager-sink: " << e.what() << " (see --help)\n";
    return 2;
  }
  if (vm.count("help")) {
    std::cout << desc;
    return 0;
  }
  if (answer != "accept" && answer != "reject" && answer != "none") {
    std::cerr << "pager-sink: --answer must be accept, reject or none\n";
    return 2;
  }
  if (targets.empty()) targets.push_back("*");
  auto security = cluster::load_client_security(key_file, server_key_file);
  if (!security) {
    std::cerr << "pager-sink: " << security.error().message() << "\n";
    return 2;
  }
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);

  zmq::context_t ctx{1};
  zmq::socket_t sock{ctx, zmq::socket_type::dealer};
  sock.set(zmq::sockopt::linger, 0);
  cluster::apply_client(sock, *security);
  sock.connect(endpoint);
  const std::string hello = wire::encode_hello({name, targets});
  auto say_hello = [&] { sock.send(zmq::buffer(hello), zmq::send_flags::none); };
  say_hello();
  std::int64_t next_hello = now_ms() + static_cast<std::int64_t>(hello_every_s * 1000);
  bool connected = false;

  struct pending_answer {
    std::int64_t due;
    std::string page_id;
  };
  std::deque<pending_answer> answers;
  std::set<std::string> seen;  // gateways deduplicate redeliveries by page id
  auto status = [&](const std::string& page_id, page_status s) {
    sock.send(zmq::buffer(wire::encode_status({page_id, s, s == page_status::received ? "" : responder, now_ms()})),
              zmq::send_flags::none);
  };
  while (!stop_requested) {
    zmq::pollitem_t item{sock.handle(), 0, ZMQ_POLLIN, 0};
    try {
      zmq::poll(&item, 1, std::chrono::milliseconds{100});
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;  // a signal: the loop condition decides
      std::cerr << "pager-sink: " << e.what() << std::endl;
      return 1;
    }
    if (hello_every_s > 0 && now_ms() >= next_hello) {
      say_hello();
      next_hello = now_ms() + static_cast<std::int64_t>(hello_every_s * 1000);
    }
    while (!answers.empty() && answers.front().due <= now_ms()) {
      status(answers.front().page_id, answer == "accept" ? page_status::accepted : page_status::rejected);
      std::cout << "pager-sink: " << answer << "ed " << answers.front().page_id << std::endl;
      answers.pop_front();
    }
    if (!(item.revents & ZMQ_POLLIN)) continue;
    zmq::message_t m;
    if (!sock.recv(m, zmq::recv_flags::dontwait)) continue;
    auto msg = wire::decode_from_node(static_cast<const char*>(m.data()), m.size());
    if (!msg) {
      std::cerr << "pager-sink: unreadable message: " << msg.error().to_string() << std::endl;
      continue;
    }
    if (auto* w = std::get_if<wire::pager_welcome>(&*msg)) {
      if (!connected) std::cout << "pager-sink: connected as " << w->gateway << " to " << endpoint << std::endl;
      connected = true;
    } else if (auto* p = std::get_if<wire::pager_page>(&*msg)) {
      status(p->page_id, page_status::received);
      if (!seen.insert(p->page_id).second) continue;  // a redelivery: already shown and answered
      std::cout << "PAGE " << to_string(p->priority) << " -> " << p->target << " (level " << p->level << ", repeat "
                << p->repeat << "): " << p->summary << "  [" << p->alert_id << (p->patient.empty() ? "" : ", ")
                << p->patient << "]" << std::endl;
      if (answer != "none")
        answers.push_back({now_ms() + static_cast<std::int64_t>(accept_after_s * 1000), p->page_id});
    } else if (auto* c = std::get_if<wire::pager_cancel>(&*msg)) {
      std::cout << "CANCEL " << c->page_id << " (" << c->reason << ")" << std::endl;
    } else if (auto* e = std::get_if<wire::pager_error>(&*msg)) {
      std::cerr << "pager-sink: node says " << to_string(e->code) << ": " << e->message << std::endl;
      if (e->code == errc::unauthorized) say_hello();  // the node restarted and forgot us
    }
  }
  return 0;
}
