#pragma once
// The log sink of the node's processes: one logfmt line per record on stderr, with the time.

#include "engine/log.hpp"

namespace alert {

/// Installs a sink writing `ts=<ISO-8601 UTC> level=... component=... event=... k=v` lines to
/// stderr, whole lines at a time, from any thread.
void install_stderr_log(log_level threshold);

}  // namespace alert
