#include "engine/log.hpp"

#include <atomic>
#include <memory>
#include <mutex>

namespace alert {
namespace {

std::mutex sink_mutex;
std::shared_ptr<const log_sink> current_sink;
std::atomic<int> current_threshold{static_cast<int>(log_level::error) + 1};

bool needs_quotes(std::string_view s) {
  if (s.empty()) return true;
  for (char c : s)
    if (c == ' ' || c == '"' || c == '=' || c == '\\' || static_cast<unsigned char>(c) < 0x20)
      return true;
  return false;
}

void append_value(std::string& out, std::string_view s) {
  if (!needs_quotes(s)) {
    out += s;
    return;
  }
  out += '"';
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (u < 0x20 || u == 0x7f) {
      static const char hex[] = "0123456789abcdef";
      out += "\\x";
      out += hex[u >> 4];
      out += hex[u & 0xf];
    } else {
      out += c;
    }
  }
  out += '"';
}

}  // namespace

std::string_view to_string(log_level level) noexcept {
  switch (level) {
    case log_level::debug: return "debug";
    case log_level::info: return "info";
    case log_level::warn: return "warn";
    case log_level::error: return "error";
  }
  return "error";
}

void set_log_sink(log_sink sink, log_level threshold) {
  std::lock_guard<std::mutex> lock{sink_mutex};
  current_sink = sink ? std::make_shared<const log_sink>(std::move(sink)) : nullptr;
  current_threshold = current_sink ? static_cast<int>(threshold)
                                   : static_cast<int>(log_level::error) + 1;
}

bool log_enabled(log_level level) noexcept {
  return static_cast<int>(level) >= current_threshold.load(std::memory_order_relaxed);
}

void log(log_level level, std::string_view component, std::string_view event,
         std::initializer_list<std::pair<std::string_view, std::string>> fields) {
  if (!log_enabled(level)) return;
  std::shared_ptr<const log_sink> sink;
  {
    std::lock_guard<std::mutex> lock{sink_mutex};
    sink = current_sink;
  }
  if (!sink) return;
  log_record rec{level, component, event, {fields.begin(), fields.end()}};
  (*sink)(rec);
}

std::string format_logfmt(const log_record& rec) {
  std::string out = "level=";
  out += to_string(rec.level);
  out += " component=";
  append_value(out, rec.component);
  out += " event=";
  append_value(out, rec.event);
  for (const auto& [key, value] : rec.fields) {
    out += ' ';
    out += key;
    out += '=';
    append_value(out, value);
  }
  return out;
}

}  // namespace alert
