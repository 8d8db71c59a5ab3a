#pragma once
// A private network of Linux network namespaces for integration tests that cut links
// between cluster members. Member i is namespace alt<pid>n<i> with home address
// 198.18.7.<i+1>/32 on its lo (198.18.0.0/15 is the RFC 2544 benchmarking range). Every
// pair of members is joined by a veth pair, and every member to the test process's own
// namespace ("root") by another, which cutting member links never touches. Needs root and
// iproute2; start a program in member i with
//   process(mesh::ip_path(), exec_prefix(i) + {program, args...})
// and declare the mesh before such processes, so that they die before their namespaces.
//
// The root routes to 198.18.7.x are shared by every process on the machine, so meshes of
// different processes take turns: a mesh holds an flock on /run/lock/alert-test-netns.lock
// for its lifetime (released by the kernel if the process dies).

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "tests/support/process.hpp"

namespace alert::test {

class mesh {
public:
  /// Builds `n` members (1..254) joined pairwise and each to root; throws std::runtime_error
  /// naming the failed command and its output.
  explicit mesh(int n) : n_(n), prefix_("alt" + std::to_string(::getpid())) {
    if (n < 1 || n > 254) throw std::invalid_argument("mesh: need 1..254 members");
    lock();
    try {
      sweep_stale();
      build();
    } catch (...) {
      teardown();
      throw;
    }
  }
  ~mesh() { teardown(); }
  mesh(const mesh&) = delete;
  mesh& operator=(const mesh&) = delete;

  /// Whether meshes can be built here: running as root and a throwaway namespace can be
  /// added and deleted.
  static bool available() {
    if (::geteuid() != 0 || ::access(ip_path().c_str(), X_OK) != 0) return false;
    const std::string probe = "alt" + std::to_string(::getpid()) + "np";
    if (!try_run({"netns", "add", probe})) return false;
    return try_run({"netns", "del", probe});
  }

  /// iproute2's `ip`: /usr/sbin/ip, /sbin/ip or the first one on PATH.
  static std::string ip_path() {
    for (const char* p : {"/usr/sbin/ip", "/sbin/ip"})
      if (::access(p, X_OK) == 0) return p;
    if (const char* path = std::getenv("PATH")) {
      std::string dirs = path;
      for (std::size_t at = 0; at <= dirs.size();) {
        auto end = dirs.find(':', at);
        if (end == std::string::npos) end = dirs.size();
        auto candidate = dirs.substr(at, end - at) + "/ip";
        if (end > at && ::access(candidate.c_str(), X_OK) == 0) return candidate;
        at = end + 1;
      }
    }
    return "/usr/sbin/ip";
  }

  int size() const { return n_; }
  /// Member i's namespace name.
  std::string name(int i) const { return prefix_ + "n" + std::to_string(check(i)); }
  /// Member i's home address ("198.18.7.<i+1>"), reachable from every linked member and root.
  std::string address(int i) const { return "198.18.7." + std::to_string(check(i) + 1); }
  /// The root-side address of member i's root link: the source of test-process connections.
  std::string root_address(int i) const { return "198.18.8." + std::to_string(check(i) + 1); }
  /// Arguments for ip_path() that run a program in member i: {"netns", "exec", name(i)}
  /// (the program keeps the pid of the process started).
  std::vector<std::string> exec_prefix(int i) const { return {"netns", "exec", name(i)}; }

  /// Takes the i–j link down on both ends. Linux deletes the routes of a device set down,
  /// so each side then gets "Network is unreachable" at once.
  void cut(int i, int j) {
    check_pair(i, j);
    run({"-n", name(i), "link", "set", member_dev(j), "down"});
    run({"-n", name(j), "link", "set", member_dev(i), "down"});
  }

  /// Brings the i–j link back up and restores its routes (setting it down deleted them).
  void heal(int i, int j) {
    check_pair(i, j);
    run({"-n", name(i), "link", "set", member_dev(j), "up"});
    run({"-n", name(j), "link", "set", member_dev(i), "up"});
    route(name(i), address(j), member_dev(j), address(i));
    route(name(j), address(i), member_dev(i), address(j));
  }

  /// Cuts (heals) member i from every other member; its root link stays.
  void isolate(int i) {
    for (int j = 0; j < n_; ++j)
      if (j != check(i)) cut(i, j);
  }
  void rejoin(int i) {
    for (int j = 0; j < n_; ++j)
      if (j != check(i)) heal(i, j);
  }

private:
  int n_;
  std::string prefix_;  // "alt<pid>"
  int lock_fd_ = -1;
  int built_ = 0;  // namespaces created so far

  static constexpr const char* lock_path = "/run/lock/alert-test-netns.lock";

  // Device names inside a member: "m<j>" leads to member j, "root" to the test process.
  // Root-side ends are alt<pid>r<i> (at most 3 + 7 + 1 + 3 = 14 characters).
  static std::string member_dev(int j) { return "m" + std::to_string(j); }
  std::string root_dev(int i) const { return prefix_ + "r" + std::to_string(i); }

  int check(int i) const {
    if (i < 0 || i >= n_) throw std::out_of_range("mesh: no member " + std::to_string(i));
    return i;
  }
  void check_pair(int i, int j) const {
    if (check(i) == check(j)) throw std::invalid_argument("mesh: a member has no link to itself");
  }

  void lock() {
    std::error_code ec;
    const char* path = std::filesystem::is_directory("/run/lock", ec) ? lock_path : "/tmp/alert-test-netns.lock";
    lock_fd_ = ::open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lock_fd_ < 0) throw std::runtime_error(std::string("mesh: cannot open ") + path);
    while (::flock(lock_fd_, LOCK_EX) != 0)
      if (errno != EINTR) throw std::runtime_error(std::string("mesh: cannot lock ") + path);
  }

  // Output (stdout and stderr) and exit code of `ip args...`, bounded to 10 s.
  static std::pair<int, std::string> exec(const std::vector<std::string>& args) {
    process p(ip_path(), args, true);
    auto out = p.read_all(std::chrono::seconds{10});
    return {p.wait(std::chrono::seconds{10}).value_or(-1), out};
  }
  static bool try_run(const std::vector<std::string>& args) noexcept {
    try {
      return exec(args).first == 0;
    } catch (...) {
      return false;
    }
  }
  static void run(const std::vector<std::string>& args) {
    auto [rc, out] = exec(args);
    if (rc == 0) return;
    std::string cmd = ip_path();
    for (const auto& a : args) cmd += " " + a;
    throw std::runtime_error("mesh: `" + cmd + "` failed (exit " + std::to_string(rc) + "): " + out);
  }
  // An on-link /32 route to `to` via `dev` with source `src` in member namespace `ns`;
  // replace, so healing a link whose routes survived is harmless.
  static void route(const std::string& ns, const std::string& to, const std::string& dev, const std::string& src) {
    run({"-n", ns, "route", "replace", to + "/32", "dev", dev, "src", src});
  }

  void build() {
    for (int i = 0; i < n_; ++i) {
      run({"netns", "add", name(i)});
      built_ = i + 1;
      run({"-n", name(i), "addr", "add", address(i) + "/32", "dev", "lo"});
      run({"-n", name(i), "link", "set", "lo", "up"});
    }
    // Both ends are created in their namespaces at once: no name is ever taken in root.
    for (int i = 0; i < n_; ++i)
      for (int j = i + 1; j < n_; ++j) {
        run({"link", "add", member_dev(j), "netns", name(i), "type", "veth", "peer", "name", member_dev(i), "netns",
             name(j)});
        heal(i, j);
      }
    for (int i = 0; i < n_; ++i) {
      run({"link", "add", root_dev(i), "type", "veth", "peer", "name", "root", "netns", name(i)});
      run({"addr", "add", root_address(i) + "/32", "dev", root_dev(i)});
      run({"link", "set", root_dev(i), "up"});
      run({"-n", name(i), "link", "set", "root", "up"});
      // add, not replace: a route to 198.18.7.x already in root is another mesh's.
      run({"route", "add", address(i) + "/32", "dev", root_dev(i), "src", root_address(i)});
      route(name(i), root_address(i), "root", address(i));
    }
  }

  // The kernel destroys a deleted namespace (its veths, their peers, their routes) later,
  // in the background: the root links are deleted first, at once, so that the next mesh
  // finds root's 198.18.7.x routes and 198.18.8.x addresses free.
  void teardown() noexcept {
    for (int i = 0; i < built_; ++i) {
      try_run({"link", "del", root_dev(i)});
      try_run({"netns", "del", prefix_ + "n" + std::to_string(i)});
    }
    built_ = 0;
    if (lock_fd_ >= 0) ::close(lock_fd_);
    lock_fd_ = -1;
  }

  // Deletes namespaces alt<pid>n* left by runs whose process is gone (a crash skips the
  // destructor); their root links would hold the 198.18.7.x routes.
  static void sweep_stale() {
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator("/run/netns", ec)) {
      const std::string ns = entry.path().filename().string();
      if (ns.rfind("alt", 0) != 0) continue;
      std::size_t end = 3;
      while (end < ns.size() && ns[end] >= '0' && ns[end] <= '9') ++end;
      if (end == 3 || end > 12 || end >= ns.size() || ns[end] != 'n') continue;
      const auto pid = static_cast<pid_t>(std::stol(ns.substr(3, end - 3)));
      if (pid == ::getpid() || pid <= 0 || ::kill(pid, 0) == 0 || errno != ESRCH) continue;
      try_run({"link", "del", ns.substr(0, end) + "r" + ns.substr(end + 1)});  // its root link, if any
      run({"netns", "del", ns});
    }
  }
};

}  // namespace alert::test
