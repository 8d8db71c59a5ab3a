#include "actors/stderr_log.hpp"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace alert {

void install_stderr_log(log_level threshold) {
  static std::mutex write_mutex;
  set_log_sink(
      [](const log_record& rec) {
        auto now = std::chrono::system_clock::now();
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
        std::time_t t = std::chrono::system_clock::to_time_t(now);
        std::tm tm{};
        ::gmtime_r(&t, &tm);
        char ts[80];
        std::snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                      tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
        std::string line = "ts=";
        line += ts;
        line += ' ';
        line += format_logfmt(rec);
        line += '\n';
        std::lock_guard<std::mutex> lock{write_mutex};
        std::fwrite(line.data(), 1, line.size(), stderr);
        std::fflush(stderr);
      },
      threshold);
}

}  // namespace alert
