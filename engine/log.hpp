#pragma once
// Structured logging: one record per event, with a level, the component and key=value
// fields. The engine defines the record and the sink interface only; where records go
// (stderr, a file, a test's buffer) is decided at the edge by whoever installs the sink.

#include <functional>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace alert {

enum class log_level : unsigned char { debug, info, warn, error };

/// "debug", "info", "warn", "error".
std::string_view to_string(log_level level) noexcept;

/// One log event.
struct log_record {
  log_level level;
  std::string_view component;  ///< e.g. "ingest", "journal", "node"
  std::string_view event;      ///< short snake_case name, e.g. "batch_rejected"
  std::vector<std::pair<std::string_view, std::string>> fields;
};

/// Receives every record at or above the threshold. Must be thread-safe.
using log_sink = std::function<void(const log_record&)>;

/// Installs the process-wide sink and threshold. Without a sink, records are dropped.
void set_log_sink(log_sink sink, log_level threshold = log_level::info);

/// True when records of `level` would reach the sink (to skip building costly fields).
bool log_enabled(log_level level) noexcept;

/// Emits one record.
void log(log_level level, std::string_view component, std::string_view event,
         std::initializer_list<std::pair<std::string_view, std::string>> fields = {});

/// Formats a record as one logfmt line without the timestamp:
/// `level=warn component=ingest event=batch_rejected code=malformed msg="..."`.
std::string format_logfmt(const log_record& rec);

}  // namespace alert
