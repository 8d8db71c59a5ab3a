// The network namespace mesh of tests/support/netns.hpp: three members and the test process
// reach one another's home addresses; cutting one member link makes exactly that link
// unreachable (at once, ENETUNREACH) and healing it restores it. Needs root; skipped
// with a warning otherwise.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/netns.hpp"
#include "tests/support/process.hpp"

using namespace alert;

namespace {

using clk = std::chrono::steady_clock;

constexpr const char* python = "/usr/bin/python3";
constexpr int port = 7070;  // each member has its own port space
constexpr int root = -1;    // the test process

// Accepts and closes connections on the home address given; says when it listens.
constexpr const char* listener_py = R"(
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(64)
print("listening", flush=True)
while True:
    s.accept()[0].close()
)";

// One connect attempt: "reached", "timeout" or the errno name.
constexpr const char* probe_py = R"(
import errno, socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1).close()
    print("reached")
except socket.timeout:
    print("timeout")
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e)))
)";

// One connect attempt from the test process: "reached", "timeout" or strerror.
std::string probe_from_root(const std::string& address) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  REQUIRE(::inet_pton(AF_INET, address.c_str(), &a.sin_addr) == 1);
  int err = 0;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    err = errno;
    if (err == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      if (::poll(&p, 1, 1000) == 1) {
        socklen_t len = sizeof err;
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      } else {
        err = ETIMEDOUT;
      }
    }
  }
  ::close(fd);
  if (err == 0) return "reached";
  return err == ETIMEDOUT ? "timeout" : std::strerror(err);
}

std::string probe(const test::mesh& m, int from, int to) {
  if (from == root) return probe_from_root(m.address(to));
  auto args = m.exec_prefix(from);
  args.insert(args.end(), {python, "-c", probe_py, m.address(to), std::to_string(port)});
  test::process p(test::mesh::ip_path(), args, true);
  auto out = p.read_all(std::chrono::seconds{5});
  p.wait(std::chrono::seconds{1});
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out.substr(out.rfind('\n') + 1);  // the last line
}

// Probes until `from` reaches `to` or 5 s have passed; the last outcome.
std::string reach(const test::mesh& m, int from, int to) {
  auto deadline = clk::now() + std::chrono::seconds{5};
  std::string outcome;
  do {
    outcome = probe(m, from, to);
  } while (outcome != "reached" && clk::now() < deadline);
  return outcome;
}

}  // namespace

TEST_CASE("a network namespace mesh cuts one link and keeps the others", "[netns]") {
  if (!test::mesh::available()) {
    WARN("network namespaces unavailable (needs root and iproute2): skipped");
    return;
  }
  const auto start = clk::now();
  test::mesh m(3);

  std::vector<std::unique_ptr<test::process>> listeners;
  for (int i = 0; i < m.size(); ++i) {
    auto args = m.exec_prefix(i);
    args.insert(args.end(), {python, "-c", listener_py, m.address(i), std::to_string(port)});
    listeners.push_back(std::make_unique<test::process>(test::mesh::ip_path(), args, true));
    REQUIRE(listeners.back()->wait_for_line("listening", std::chrono::seconds{5}));
  }

  CHECK(reach(m, 0, 1) == "reached");
  CHECK(reach(m, 0, 2) == "reached");
  CHECK(reach(m, 1, 2) == "reached");
  for (int i = 0; i < m.size(); ++i) CHECK(reach(m, root, i) == "reached");

  // Down links lose their routes: the cut side fails at once, no timeout.
  m.cut(0, 2);
  CHECK(probe(m, 0, 2) == "ENETUNREACH");
  CHECK(probe(m, 2, 0) == "ENETUNREACH");
  CHECK(reach(m, 0, 1) == "reached");
  CHECK(reach(m, 1, 2) == "reached");
  CHECK(reach(m, root, 0) == "reached");
  CHECK(reach(m, root, 2) == "reached");

  m.heal(0, 2);
  CHECK(reach(m, 0, 2) == "reached");
  CHECK(reach(m, 2, 0) == "reached");

  // Reported, not checked: the mesh waits its turn behind other processes' meshes.
  WARN("mesh test took " << std::chrono::duration_cast<std::chrono::milliseconds>(clk::now() - start).count()
                         << " ms");
}
