#pragma once
// Ingest protocol v1 (docs/protocol.md): MessagePack codec for telemetry requests and their
// ack / error replies. Used by the ingest endpoint (decode requests, encode replies), by the
// client library (the reverse) and by the fuzz target. No sockets here.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "engine/reading.hpp"
#include "engine/status.hpp"

namespace alert::wire {

/// Protocol version spoken by this node.
inline constexpr std::int64_t ingest_version = 1;

/// The client's id for a batch, echoed verbatim in the reply: a string or an integer.
/// std::monostate means "could not be read" (it is then omitted from an error reply).
using batch_id = std::variant<std::monostate, std::string, std::int64_t, std::uint64_t>;

/// Bounds applied while decoding untrusted input.
struct decode_limits {
  std::size_t max_readings = 10000;     ///< readings per request; more is errc::too_large
  std::size_t max_string_bytes = 4096;  ///< any string in the request
  std::size_t max_map_entries = 64;     ///< keys in any map
  std::size_t max_depth = 6;            ///< nesting depth of containers
};

/// One reading refused, by its index in the request's `readings` array.
struct rejection {
  std::size_t index = 0;
  errc code = errc::ok;
  std::string message;
  friend bool operator==(const rejection& a, const rejection& b) {
    return a.index == b.index && a.code == b.code && a.message == b.message;
  }
};

/// A decoded telemetry request.
struct ingest_request {
  /// Whole-request outcome: ok, or malformed / unsupported_version / too_large. On error,
  /// `batch` still holds the batch id when it could be read.
  status error;
  batch_id batch;
  /// Readings whose fields have the right types, each with its index in `readings`.
  std::vector<reading_input> readings;
  std::vector<std::size_t> indexes;
  /// Readings refused while decoding (missing_field, wrong_type), by index.
  std::vector<rejection> rejected;
  /// Set by a cluster member that forwards readings to their shard's owner (the optional
  /// string field `forwarded_by`): the receiver takes them as they are, never routes them on.
  std::string forwarded_by;
  /// With `forwarded_by`: the sender owns these readings and sends them to this member, its
  /// shard's follower, to be journaled only (field `replica: true`).
  bool replica = false;
};

/// Decodes one request frame. Never throws: every problem with the bytes becomes a status
/// (malformed for bad MessagePack, a non-map, a missing or wrong `v`/`type`/`batch`/`readings`,
/// or trailing bytes; unsupported_version for v != 1; too_large when a decode limit is hit).
/// Per reading: a non-map is wrong_type; a missing device/metric/value/ts/seq is
/// missing_field; a field of the wrong MessagePack type is wrong_type (value: any number;
/// ts: integer; seq: non-negative integer; device/metric/patient/unit: string; a nil
/// patient or unit counts as absent). Unknown keys are ignored. The first problem of a
/// reading is reported, in field order device, metric, value, ts, seq, patient, unit.
ingest_request decode_request(const char* data, std::size_t size, const decode_limits& limits = {});

/// An ack reply.
struct ingest_ack {
  batch_id batch;
  std::uint64_t accepted = 0;
  std::uint64_t duplicates = 0;
  std::vector<rejection> rejected;
};

/// An error reply for a request that could not be used at all.
struct ingest_error {
  batch_id batch;  ///< monostate when the request's batch id could not be read
  errc code = errc::malformed;
  std::string message;
};

/// `{v, type: "ack", batch, accepted, duplicates, rejected: [{index, code, message}]}`.
std::string encode_ack(const ingest_ack& ack);
/// `{v, type: "error", batch (if known), code, message}`.
std::string encode_error(const ingest_error& err);

/// Encodes a telemetry request (client side). Optional fields are written only when set.
std::string encode_request(const batch_id& batch, const std::vector<reading_input>& readings,
                           const std::string& forwarded_by = {}, bool replica = false);

/// A decoded reply (client side).
using ingest_reply = std::variant<ingest_ack, ingest_error>;
/// Decodes an ack or error reply; malformed for anything else. Never throws.
result<ingest_reply> decode_reply(const char* data, std::size_t size);

/// For logs and tests: "42" or "\"b-1\"" or "?" for an unreadable id.
std::string to_string(const batch_id& batch);

}  // namespace alert::wire
