#pragma once
// The node's control commands (docs/protocol.md, "Control protocol v1"): what alertctl asks
// and what the node answers, as wire values. Runs on the control endpoint's worker thread
// and calls the node's blocking API.

#include "cluster/control_server.hpp"
#include "cluster/control_wire.hpp"

namespace alert {
class node;
}

namespace alert::actors {

/// Runs one control request against `n`. Never throws: every failure is a reply with a
/// stable code (invalid_argument for bad arguments, not_found for unknown ids, ...) and a
/// message that says what to do. An authenticated caller (CURVE) acts under its key's name
/// and only as its role allows (engine/access.hpp, may_run); a refusal is `unauthorized` and
/// is audited.
wire::control_reply handle_control(node& n, const wire::control_request& request,
                                   const cluster::control_caller& caller = {});

}  // namespace alert::actors
