#include "cluster/ingest_wire.hpp"

#include <msgpack.hpp>

#include "cluster/msgpack_util.hpp"

#include <cstdio>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <utility>

namespace alert::wire {
namespace {

// The protocol carries neither bin nor ext. A small allowance (rather than zero) lets a
// short mistyped field, e.g. a MessagePack timestamp (ext -1) sent as `ts`, reach the
// per-reading checks and come back as wrong_type instead of failing the whole batch.
constexpr std::size_t max_bin_ext_bytes = 64;

// Replies come from a node we chose to talk to, but are still bounded.
constexpr std::size_t reply_max_array = 1'000'000;
constexpr std::size_t reply_max_map = 64;
constexpr std::size_t reply_max_str = 1 << 20;
constexpr std::size_t reply_max_depth = 6;

constexpr std::uint64_t int64_max = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());

// ---- encoding helpers -------------------------------------------------------------------

using namespace detail;

void pack_batch(packer& pk, const batch_id& batch) {
  if (const auto* s = std::get_if<std::string>(&batch))
    pack_str(pk, *s);
  else if (const auto* i = std::get_if<std::int64_t>(&batch))
    pk.pack_int64(*i);
  else if (const auto* u = std::get_if<std::uint64_t>(&batch))
    pk.pack_uint64(*u);
  else
    pk.pack_nil();
}

// ---- decoding helpers -------------------------------------------------------------------

// A positive integer decodes as int64 when it fits and as uint64 only above INT64_MAX, so
// that encode -> decode gives back the same number (not always the same alternative).
batch_id batch_of_integer(const msgpack::object& o) {
  if (o.type == msgpack::type::NEGATIVE_INTEGER) return o.via.i64;
  if (o.via.u64 <= int64_max) return static_cast<std::int64_t>(o.via.u64);
  return o.via.u64;
}

/// Reads a `batch` value: nothing when it is neither a string nor an integer.
std::optional<batch_id> read_batch(const msgpack::object& o) {
  if (o.type == msgpack::type::STR) return batch_id{std::string{str_of(o)}};
  if (is_integer(o)) return batch_of_integer(o);
  return std::nullopt;
}

/// Unpacks the object at the start of [data, data + size) and sets `trailing` to the number
/// of bytes after it; throws msgpack's exceptions (insufficient_bytes for empty input).
msgpack::object_handle unpack_one(const char* data, std::size_t size, const msgpack::unpack_limit& limit,
                                  std::size_t& trailing) {
  if (size == 0 || data == nullptr) throw msgpack::insufficient_bytes("empty input");
  std::size_t offset = 0;
  auto handle = msgpack::unpack(data, size, offset, nullptr, nullptr, limit);
  trailing = size - offset;
  return handle;
}

/// Why msgpack refused some bytes; recorded in catch handlers, which must not allocate.
std::string request_failure_message(unpack_failure why, const decode_limits& limits) {
  switch (why) {
    case unpack_failure::array:
      return "request has an array longer than " + std::to_string(limits.max_readings) +
             " entries (at most " + std::to_string(limits.max_readings) + " readings are allowed)";
    case unpack_failure::map:
      return "request has a map with more than " + std::to_string(limits.max_map_entries) + " entries";
    case unpack_failure::str:
      return "request has a string longer than " + std::to_string(limits.max_string_bytes) + " bytes";
    case unpack_failure::bin_ext:
      return "request has binary or extension data longer than " + std::to_string(max_bin_ext_bytes) +
             " bytes (the protocol uses neither)";
    case unpack_failure::depth:
      return "request nests maps and arrays deeper than " + std::to_string(limits.max_depth) + " levels";
    case unpack_failure::truncated: return "request is empty or truncated (incomplete MessagePack)";
    case unpack_failure::invalid: return "request is not valid MessagePack";
    case unpack_failure::other: break;
  }
  return "request could not be decoded";
}

// ---- request decoding -------------------------------------------------------------------

/// Indexes of the reading fields, in the order their problems are reported.
enum field : std::size_t { f_device, f_metric, f_value, f_ts, f_seq, f_patient, f_unit, field_count };
constexpr std::string_view field_names[field_count] = {"device", "metric", "value", "ts",
                                                        "seq",    "patient", "unit"};

std::string missing(field f) { return "field '" + std::string{field_names[f]} + "' is missing"; }

std::string must_be(field f, std::string_view what) {
  return "field '" + std::string{field_names[f]} + "' must be " + std::string{what};
}

/// Decodes one element of `readings` into `out`; an error status names the first problem.
status decode_reading(const msgpack::object& o, reading_input& out) {
  if (o.type != msgpack::type::MAP) return {errc::wrong_type, "reading must be a map"};

  const msgpack::object* fields[field_count] = {};
  for (std::uint32_t i = 0; i < o.via.map.size; ++i) {
    const auto& kv = o.via.map.ptr[i];
    if (kv.key.type != msgpack::type::STR) continue;
    const auto key = str_of(kv.key);
    for (std::size_t f = 0; f < field_count; ++f)
      if (key == field_names[f] && fields[f] == nullptr) fields[f] = &kv.val;
  }

  for (field f : {f_device, f_metric}) {
    if (fields[f] == nullptr) return {errc::missing_field, missing(f)};
    if (fields[f]->type != msgpack::type::STR) return {errc::wrong_type, must_be(f, "a string")};
  }
  out.device = std::string{str_of(*fields[f_device])};
  out.metric = std::string{str_of(*fields[f_metric])};

  const auto* value = fields[f_value];
  if (value == nullptr) return {errc::missing_field, missing(f_value)};
  switch (value->type) {
    case msgpack::type::POSITIVE_INTEGER: out.value = static_cast<double>(value->via.u64); break;
    case msgpack::type::NEGATIVE_INTEGER: out.value = static_cast<double>(value->via.i64); break;
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64: out.value = value->via.f64; break;
    default: return {errc::wrong_type, must_be(f_value, "a number")};
  }

  // A ts above INT64_MAX cannot be held by epoch_ms: it is reported as wrong_type (the
  // field's wire type is int64), keeping the decoder to missing_field / wrong_type only.
  const auto* ts = fields[f_ts];
  if (ts == nullptr) return {errc::missing_field, missing(f_ts)};
  if (ts->type == msgpack::type::NEGATIVE_INTEGER)
    out.ts = ts->via.i64;
  else if (ts->type == msgpack::type::POSITIVE_INTEGER && ts->via.u64 <= int64_max)
    out.ts = static_cast<epoch_ms>(ts->via.u64);
  else
    return {errc::wrong_type, must_be(f_ts, "a 64-bit signed integer (ms since the Unix epoch)")};

  const auto* seq = fields[f_seq];
  if (seq == nullptr) return {errc::missing_field, missing(f_seq)};
  if (seq->type != msgpack::type::POSITIVE_INTEGER)
    return {errc::wrong_type, must_be(f_seq, "a non-negative integer")};
  out.seq = seq->via.u64;

  for (field f : {f_patient, f_unit}) {
    const auto* v = fields[f];
    auto& dest = f == f_patient ? out.patient : out.unit;
    if (v == nullptr || v->type == msgpack::type::NIL) {
      dest.reset();
    } else if (v->type == msgpack::type::STR) {
      dest = std::string{str_of(*v)};
    } else {
      return {errc::wrong_type, must_be(f, "a string or nil")};
    }
  }
  return {};
}

ingest_request fail(errc code, std::string message, batch_id batch = {}) {
  ingest_request r;
  r.error = status{code, std::move(message)};
  r.batch = std::move(batch);
  return r;
}

ingest_request decode_request_unguarded(const char* data, std::size_t size, const decode_limits& limits) {
  // The array limit is one above max_readings so that a batch just over the limit still
  // parses and its id can be echoed with too_large.
  const std::size_t array_limit =
      limits.max_readings == std::numeric_limits<std::size_t>::max() ? limits.max_readings
                                                                     : limits.max_readings + 1;
  const msgpack::unpack_limit limit(array_limit, limits.max_map_entries, limits.max_string_bytes,
                                    max_bin_ext_bytes, max_bin_ext_bytes, limits.max_depth);
  std::size_t trailing = 0;
  const auto handle = unpack_one(data, size, limit, trailing);
  const msgpack::object& top = handle.get();
  if (top.type != msgpack::type::MAP) return fail(errc::malformed, "request must be a MessagePack map");

  batch_id batch;
  const auto* batch_field = find(top, "batch");
  std::optional<batch_id> read = batch_field ? read_batch(*batch_field) : std::nullopt;
  if (read) batch = *read;

  if (trailing != 0)
    return fail(errc::malformed,
                "request has " + std::to_string(trailing) + " trailing bytes after the top-level map",
                batch);

  const auto* v = find(top, "v");
  if (v == nullptr) return fail(errc::malformed, "field 'v' (protocol version) is missing", batch);
  if (!is_integer(*v))
    return fail(errc::malformed, "field 'v' (protocol version) must be an integer", batch);
  if (v->type != msgpack::type::POSITIVE_INTEGER || v->via.u64 != static_cast<std::uint64_t>(ingest_version))
    return fail(errc::unsupported_version,
                "protocol version " + integer_text(*v) + " is not supported (this node speaks version " +
                    std::to_string(ingest_version) + ")",
                batch);

  const auto* type = find(top, "type");
  if (type == nullptr) return fail(errc::malformed, "field 'type' is missing", batch);
  if (type->type != msgpack::type::STR || str_of(*type) != "telemetry")
    return fail(errc::malformed, "field 'type' must be the string \"telemetry\"", batch);

  if (batch_field == nullptr) return fail(errc::malformed, "field 'batch' is missing");
  if (!read) return fail(errc::malformed, "field 'batch' must be a string or an integer");

  const auto* readings = find(top, "readings");
  if (readings == nullptr) return fail(errc::malformed, "field 'readings' is missing", batch);
  if (readings->type != msgpack::type::ARRAY)
    return fail(errc::malformed, "field 'readings' must be an array", batch);
  const std::size_t count = readings->via.array.size;
  if (count > limits.max_readings)
    return fail(errc::too_large,
                "request has " + std::to_string(count) + " readings; at most " +
                    std::to_string(limits.max_readings) + " are allowed",
                batch);

  ingest_request out;
  out.batch = std::move(batch);
  if (const auto* fwd = find(top, "forwarded_by")) {
    if (fwd->type != msgpack::type::STR || fwd->via.str.size == 0 || fwd->via.str.size > 64)
      return fail(errc::malformed, "field 'forwarded_by' must be a member's node id", out.batch);
    out.forwarded_by = std::string{str_of(*fwd)};
    if (const auto* rep = find(top, "replica")) {
      if (rep->type != msgpack::type::BOOLEAN) return fail(errc::malformed, "field 'replica' must be a boolean", out.batch);
      out.replica = rep->via.boolean;
    }
  }
  out.readings.reserve(count);
  out.indexes.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    reading_input in;
    auto st = decode_reading(readings->via.array.ptr[i], in);
    if (st.is_ok()) {
      out.readings.push_back(std::move(in));
      out.indexes.push_back(i);
    } else {
      out.rejected.push_back(rejection{i, st.code(), st.message()});
    }
  }
  return out;
}

// ---- reply decoding ---------------------------------------------------------------------

/// Thrown inside decode_reply for a reply it cannot use; never escapes.
struct bad_reply : std::runtime_error {
  explicit bad_reply(const std::string& message, errc c = errc::malformed)
      : std::runtime_error(message), code(c) {}
  errc code;
};

const msgpack::object& need(const msgpack::object& map, std::string_view name) {
  const auto* o = find(map, name);
  if (o == nullptr) throw bad_reply("reply field '" + std::string{name} + "' is missing");
  return *o;
}

std::string need_str(const msgpack::object& map, std::string_view name) {
  const auto& o = need(map, name);
  if (o.type != msgpack::type::STR) throw bad_reply("reply field '" + std::string{name} + "' must be a string");
  return std::string{str_of(o)};
}

std::uint64_t need_uint(const msgpack::object& map, std::string_view name) {
  const auto& o = need(map, name);
  if (o.type != msgpack::type::POSITIVE_INTEGER)
    throw bad_reply("reply field '" + std::string{name} + "' must be a non-negative integer");
  return o.via.u64;
}

// An error code this build does not know (a newer node) or "ok" in an error position
// becomes internal; the message is kept as sent.
errc code_of(const std::string& name) {
  const auto code = errc_from_string(name);
  return code && *code != errc::ok ? *code : errc::internal;
}

// A reply's batch is absent (or nil) when the node could not read the request's id.
batch_id reply_batch(const msgpack::object& top) {
  const auto* b = find(top, "batch");
  if (b == nullptr || b->type == msgpack::type::NIL) return {};
  auto read = read_batch(*b);
  if (!read) throw bad_reply("reply field 'batch' must be a string or an integer");
  return *read;
}

ingest_reply decode_reply_unguarded(const char* data, std::size_t size) {
  const msgpack::unpack_limit limit(reply_max_array, reply_max_map, reply_max_str, max_bin_ext_bytes,
                                    max_bin_ext_bytes, reply_max_depth);
  std::size_t trailing = 0;
  const auto handle = unpack_one(data, size, limit, trailing);
  if (trailing != 0) throw bad_reply("reply has trailing bytes after the top-level map");
  const msgpack::object& top = handle.get();
  if (top.type != msgpack::type::MAP) throw bad_reply("reply must be a MessagePack map");

  const auto& v = need(top, "v");
  if (!is_integer(v)) throw bad_reply("reply field 'v' must be an integer");
  if (v.type != msgpack::type::POSITIVE_INTEGER || v.via.u64 != static_cast<std::uint64_t>(ingest_version))
    throw bad_reply("reply has protocol version " + integer_text(v) + ", this client speaks version " +
                        std::to_string(ingest_version),
                    errc::unsupported_version);

  const auto type = need_str(top, "type");
  if (type == "ack") {
    ingest_ack ack;
    ack.batch = reply_batch(top);
    ack.accepted = need_uint(top, "accepted");
    ack.duplicates = need_uint(top, "duplicates");
    const auto& rejected = need(top, "rejected");
    if (rejected.type != msgpack::type::ARRAY) throw bad_reply("reply field 'rejected' must be an array");
    ack.rejected.reserve(rejected.via.array.size);
    for (std::uint32_t i = 0; i < rejected.via.array.size; ++i) {
      const auto& r = rejected.via.array.ptr[i];
      if (r.type != msgpack::type::MAP) throw bad_reply("reply 'rejected' entries must be maps");
      const auto index = need_uint(r, "index");
      if constexpr (sizeof(std::size_t) < sizeof(std::uint64_t)) {
        if (index > std::numeric_limits<std::size_t>::max()) throw bad_reply("rejection index too large");
      }
      ack.rejected.push_back(
          rejection{static_cast<std::size_t>(index), code_of(need_str(r, "code")), need_str(r, "message")});
    }
    return ack;
  }
  if (type == "error") {
    ingest_error err;
    err.batch = reply_batch(top);
    err.code = code_of(need_str(top, "code"));
    err.message = need_str(top, "message");
    return err;
  }
  throw bad_reply("reply field 'type' must be \"ack\" or \"error\"");
}

}  // namespace

ingest_request decode_request(const char* data, std::size_t size, const decode_limits& limits) {
  // The handlers only record what went wrong: building a message may itself throw.
  auto why = unpack_failure::other;
  auto code = errc::malformed;
  try {
    return decode_request_unguarded(data, size, limits);
  } catch (...) {
    why = classify(std::current_exception());
  }
  if (over_limit(why)) code = errc::too_large;
  try {
    return fail(code, request_failure_message(why, limits));
  } catch (...) {
    return fail(code, {});
  }
}

result<ingest_reply> decode_reply(const char* data, std::size_t size) {
  auto code = errc::malformed;
  const char* message = "reply is not valid MessagePack";
  std::string detail;
  try {
    return decode_reply_unguarded(data, size);
  } catch (const bad_reply& e) {
    code = e.code;
    message = nullptr;
    try {
      detail = e.what();
    } catch (...) {
      message = "reply has an unexpected shape";
    }
  } catch (const msgpack::size_overflow&) {
    message = "reply exceeds the client's decode limits";
  } catch (const msgpack::insufficient_bytes&) {
    message = "reply is empty or truncated (incomplete MessagePack)";
  } catch (...) {
  }
  try {
    return status{code, message ? std::string{message} : std::move(detail)};
  } catch (...) {
    return status{code, {}};
  }
}

std::string encode_ack(const ingest_ack& ack) {
  msgpack::sbuffer buf;
  packer pk(&buf);
  const bool has_batch = !std::holds_alternative<std::monostate>(ack.batch);
  pk.pack_map(has_batch ? 6u : 5u);
  pack_str(pk, "v");
  pk.pack_int64(ingest_version);
  pack_str(pk, "type");
  pack_str(pk, "ack");
  if (has_batch) {
    pack_str(pk, "batch");
    pack_batch(pk, ack.batch);
  }
  pack_str(pk, "accepted");
  pk.pack_uint64(ack.accepted);
  pack_str(pk, "duplicates");
  pk.pack_uint64(ack.duplicates);
  pack_str(pk, "rejected");
  pk.pack_array(wire_size(ack.rejected.size()));
  for (const auto& r : ack.rejected) {
    pk.pack_map(3);
    pack_str(pk, "index");
    pk.pack_uint64(r.index);
    pack_str(pk, "code");
    pack_str(pk, to_string(r.code));
    pack_str(pk, "message");
    pack_str(pk, r.message);
  }
  return to_bytes(buf);
}

std::string encode_error(const ingest_error& err) {
  msgpack::sbuffer buf;
  packer pk(&buf);
  const bool has_batch = !std::holds_alternative<std::monostate>(err.batch);
  pk.pack_map(has_batch ? 5u : 4u);
  pack_str(pk, "v");
  pk.pack_int64(ingest_version);
  pack_str(pk, "type");
  pack_str(pk, "error");
  if (has_batch) {
    pack_str(pk, "batch");
    pack_batch(pk, err.batch);
  }
  pack_str(pk, "code");
  pack_str(pk, to_string(err.code));
  pack_str(pk, "message");
  pack_str(pk, err.message);
  return to_bytes(buf);
}

std::string encode_request(const batch_id& batch, const std::vector<reading_input>& readings,
                           const std::string& forwarded_by, bool replica) {
  msgpack::sbuffer buf;
  packer pk(&buf);
  // A monostate batch is left out; the node will refuse such a request as malformed.
  const bool has_batch = !std::holds_alternative<std::monostate>(batch);
  const bool is_replica = replica && !forwarded_by.empty();
  pk.pack_map((has_batch ? 4u : 3u) + (forwarded_by.empty() ? 0u : 1u) + (is_replica ? 1u : 0u));
  if (!forwarded_by.empty()) {
    pack_str(pk, "forwarded_by");
    pack_str(pk, forwarded_by);
  }
  if (is_replica) {
    pack_str(pk, "replica");
    pk.pack_true();
  }
  pack_str(pk, "v");
  pk.pack_int64(ingest_version);
  pack_str(pk, "type");
  pack_str(pk, "telemetry");
  if (has_batch) {
    pack_str(pk, "batch");
    pack_batch(pk, batch);
  }
  pack_str(pk, "readings");
  pk.pack_array(wire_size(readings.size()));
  for (const auto& r : readings) {
    pk.pack_map(5 + (r.patient ? 1u : 0u) + (r.unit ? 1u : 0u));
    pack_str(pk, "device");
    pack_str(pk, r.device);
    pack_str(pk, "metric");
    pack_str(pk, r.metric);
    pack_str(pk, "value");
    pack_float64(buf, r.value);
    pack_str(pk, "ts");
    pk.pack_int64(r.ts);
    pack_str(pk, "seq");
    pk.pack_uint64(r.seq);
    if (r.patient) {
      pack_str(pk, "patient");
      pack_str(pk, *r.patient);
    }
    if (r.unit) {
      pack_str(pk, "unit");
      pack_str(pk, *r.unit);
    }
  }
  return to_bytes(buf);
}

std::string to_string(const batch_id& batch) {
  if (const auto* i = std::get_if<std::int64_t>(&batch)) return std::to_string(*i);
  if (const auto* u = std::get_if<std::uint64_t>(&batch)) return std::to_string(*u);
  const auto* s = std::get_if<std::string>(&batch);
  if (s == nullptr) return "?";
  // The id comes from a client and goes into logs: quotes, backslashes and control bytes
  // are escaped so it cannot forge or break log lines.
  std::string out = "\"";
  for (const char c : *s) {
    const auto b = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (b < 0x20 || b == 0x7f) {
      char hex[5];
      std::snprintf(hex, sizeof hex, "\\x%02x", static_cast<unsigned>(b));
      out += hex;
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

}  // namespace alert::wire
