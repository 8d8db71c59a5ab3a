#pragma once
// Runs a real program for integration tests: spawn with arguments, read its stdout lines
// with a deadline, signal it, wait for its exit.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

extern char** environ;

namespace alert::test {

/// Where a process's stderr goes: appended to this file.
struct stderr_to {
  std::string path;
};

class process {
public:
  /// Starts `path` with `args`; its stdout is read by wait_for_line. stderr is inherited,
  /// or read with stdout when `with_stderr` (to wait for a log line).
  process(const std::string& path, const std::vector<std::string>& args, bool with_stderr = false) {
    start(path, args, with_stderr, nullptr);
  }
  /// The same, with stderr appended to a file: a program that logs much cannot fill a pipe
  /// nobody reads and stall.
  process(const std::string& path, const std::vector<std::string>& args, const stderr_to& log) {
    start(path, args, false, &log.path);
  }

private:
  void start(const std::string& path, const std::vector<std::string>& args, bool with_stderr,
             const std::string* log_file) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
    if (with_stderr) posix_spawn_file_actions_adddup2(&fa, fds[1], STDERR_FILENO);
    if (log_file)
      posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, log_file->c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    std::vector<std::string> all{path};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    int rc = ::posix_spawn(&pid_, path.c_str(), &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    ::close(fds[1]);
    out_ = fds[0];
    if (rc != 0) {
      ::close(out_);
      throw std::runtime_error("cannot start " + path);
    }
  }

public:
  ~process() {
    if (pid_ > 0 && !exited_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (out_ >= 0) ::close(out_);
  }
  process(const process&) = delete;
  process& operator=(const process&) = delete;

  /// The first stdout line starting with `prefix`, or nothing at the deadline or at EOF.
  std::optional<std::string> wait_for_line(const std::string& prefix,
                                           std::chrono::milliseconds timeout = std::chrono::seconds{30}) {
    return wait_for([&](const std::string& line) { return line.rfind(prefix, 0) == 0; }, timeout);
  }

  /// The first line holding `text` anywhere, or nothing at the deadline or at EOF.
  std::optional<std::string> wait_for_text(const std::string& text,
                                           std::chrono::milliseconds timeout = std::chrono::seconds{30}) {
    return wait_for([&](const std::string& line) { return line.find(text) != std::string::npos; }, timeout);
  }

  /// The first line for which `match` holds; lines before it are consumed.
  template <class Match>
  std::optional<std::string> wait_for(Match&& match, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      for (auto nl = buf_.find('\n'); nl != std::string::npos; nl = buf_.find('\n')) {
        std::string line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        if (match(line)) return line;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      pollfd p{out_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char chunk[4096];
      auto n = ::read(out_, chunk, sizeof chunk);
      if (n <= 0) return std::nullopt;
      buf_.append(chunk, static_cast<std::size_t>(n));
    }
  }

  /// Everything the program writes until it closes its output (or the deadline), with what
  /// earlier waits left unread.
  std::string read_all(std::chrono::milliseconds timeout = std::chrono::seconds{30}) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      pollfd p{out_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char chunk[4096];
      auto n = ::read(out_, chunk, sizeof chunk);
      if (n <= 0) break;
      buf_.append(chunk, static_cast<std::size_t>(n));
    }
    std::string out;
    out.swap(buf_);
    return out;
  }

  void signal(int sig) { ::kill(pid_, sig); }

  /// Waits for the exit (bounded); the exit code, 128+signal, or nothing at the deadline.
  std::optional<int> wait(std::chrono::milliseconds timeout = std::chrono::seconds{30}) {
    // A pidfd becomes readable when the child exits: wait on it, no polling loop.
    int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
    if (pidfd >= 0) {
      pollfd p{pidfd, POLLIN, 0};
      ::poll(&p, 1, static_cast<int>(timeout.count()));
      ::close(pidfd);
    }
    int st = 0;
    if (::waitpid(pid_, &st, WNOHANG) == pid_) {
      exited_ = true;
      return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
    return std::nullopt;
  }

private:
  pid_t pid_ = -1;
  int out_ = -1;
  bool exited_ = false;
  std::string buf_;
};

/// The value of `name=` in alertd's ready line ("alertd ready ingest=... pager=... control=...
/// metrics=..."), e.g. ready_field(line, "ingest"); empty when the line has none.
inline std::string ready_field(const std::string& line, const std::string& name) {
  const auto key = name + "=";
  auto at = line.find(key);
  if (at == std::string::npos) return {};
  at += key.size();
  return line.substr(at, line.find(' ', at) - at);
}

}  // namespace alert::test
