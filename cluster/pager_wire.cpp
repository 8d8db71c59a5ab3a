#include "cluster/pager_wire.hpp"

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
// short mistyped field, e.g. a binary `gateway`, reach the field checks and come back as
// "field 'gateway' must be a string" instead of a decode-limit error.

constexpr std::uint64_t int64_max = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());

// ---- encoding helpers -------------------------------------------------------------------

using namespace detail;
constexpr limit_names pager_limits{pager_max_array, pager_max_map_entries, pager_max_string_bytes, pager_max_depth};

/// `v` and `type`, the first two entries of every message.
void pack_head(packer& pk, std::string_view type) {
  pack_str(pk, "v");
  pk.pack_int64(pager_version);
  pack_str(pk, "type");
  pack_str(pk, type);
}

void pack_targets(packer& pk, const std::vector<std::string>& targets) {
  pk.pack_array(wire_size(targets.size()));
  for (const auto& t : targets) pack_str(pk, t);
}

// ---- decoding helpers -------------------------------------------------------------------


std::string need_nonempty_str(const msgpack::object& map, std::string_view name) {
  const auto& o = need(map, name);
  if (o.type != msgpack::type::STR || o.via.str.size == 0)
    throw bad_message(field(name) + " must be a non-empty string");
  return std::string{str_of(o)};
}

unsigned need_unsigned(const msgpack::object& map, std::string_view name) {
  const auto& o = need(map, name);
  if (o.type != msgpack::type::POSITIVE_INTEGER || o.via.u64 > std::numeric_limits<unsigned>::max())
    throw bad_message(field(name) + " must be an integer from 0 to " +
                      std::to_string(std::numeric_limits<unsigned>::max()));
  return static_cast<unsigned>(o.via.u64);
}

epoch_ms need_ms(const msgpack::object& map, std::string_view name) {
  const auto& o = need(map, name);
  if (o.type == msgpack::type::NEGATIVE_INTEGER) return o.via.i64;
  if (o.type == msgpack::type::POSITIVE_INTEGER && o.via.u64 <= int64_max) return static_cast<epoch_ms>(o.via.u64);
  throw bad_message(field(name) + " must be a 64-bit signed integer (ms since the Unix epoch)");
}

/// A gateway name (never "*"), or invalid_id naming the field.
std::string need_gateway(const msgpack::object& map) {
  auto name = need_str(map, "gateway");
  if (auto st = validate_pager_name(name, field("gateway")); !st) throw bad_message(st.message(), st.code());
  return name;
}

/// A non-empty list of target names or "*".
std::vector<std::string> need_targets(const msgpack::object& map) {
  const auto& o = need(map, "targets");
  if (o.type != msgpack::type::ARRAY) throw bad_message(field("targets") + " must be an array of strings");
  if (o.via.array.size == 0) throw bad_message(field("targets") + " must list at least one target");
  std::vector<std::string> out;
  out.reserve(o.via.array.size);
  for (std::uint32_t i = 0; i < o.via.array.size; ++i) {
    const auto& t = o.via.array.ptr[i];
    const auto what = field("targets") + " entry " + std::to_string(i);
    if (t.type != msgpack::type::STR) throw bad_message(what + " must be a string");
    const auto name = str_of(t);
    if (name != any_target) {
      if (auto st = validate_pager_name(name, what); !st) throw bad_message(st.message(), st.code());
    }
    out.emplace_back(name);
  }
  return out;
}

/// Unpacks the single object in [data, data + size) under the pager limits; throws
/// msgpack's exceptions, and bad_message for trailing bytes or a non-map.
msgpack::object_handle unpack_message(const char* data, std::size_t size) {
  if (size == 0 || data == nullptr) throw msgpack::insufficient_bytes("empty input");
  const msgpack::unpack_limit limit(pager_max_array, pager_max_map_entries, pager_max_string_bytes,
                                    max_bin_ext_bytes, max_bin_ext_bytes, pager_max_depth);
  std::size_t offset = 0;
  auto handle = msgpack::unpack(data, size, offset, nullptr, nullptr, limit);
  if (offset != size)
    throw bad_message("message has " + std::to_string(size - offset) + " trailing bytes after the top-level map");
  if (handle.get().type != msgpack::type::MAP) throw bad_message("message must be a MessagePack map");
  return handle;
}

/// Checks `v` and returns `type`.
std::string version_and_type(const msgpack::object& top) {
  const auto* v = find(top, "v");
  if (v == nullptr) throw bad_message("field 'v' (protocol version) is missing");
  if (!is_integer(*v)) throw bad_message("field 'v' must be an integer");
  if (v->type != msgpack::type::POSITIVE_INTEGER || v->via.u64 != static_cast<std::uint64_t>(pager_version))
    throw bad_message("pager protocol version " + integer_text(*v) + " is not supported (this build speaks version " +
                          std::to_string(pager_version) + ")",
                      errc::unsupported_version);
  return need_str(top, "type");
}


// ---- gateway -> node --------------------------------------------------------------------

pager_status decode_status(const msgpack::object& top) {
  pager_status out;
  out.page_id = need_nonempty_str(top, "page_id");
  const auto& s = need(top, "status");
  const auto parsed = s.type == msgpack::type::STR ? page_status_from_string(str_of(s)) : std::nullopt;
  if (!parsed || *parsed == page_status::sent || *parsed == page_status::cancelled)
    throw bad_message(field("status") + " must be one of received, delivered, read, accepted, rejected");
  out.status = *parsed;
  const auto* by = find(top, "by");
  if (by != nullptr && by->type != msgpack::type::NIL) {
    if (by->type != msgpack::type::STR) throw bad_message(field("by") + " must be a string or nil");
    out.by = std::string{str_of(*by)};
  }
  out.ts = need_ms(top, "ts");
  return out;
}

gateway_message decode_from_gateway_unguarded(const char* data, std::size_t size) {
  const auto handle = unpack_message(data, size);
  const auto& top = handle.get();
  const auto type = version_and_type(top);
  if (type == "hello") {
    pager_hello hello;
    hello.gateway = need_gateway(top);
    hello.targets = need_targets(top);
    return hello;
  }
  if (type == "status") return decode_status(top);
  throw bad_message(field("type") + " must be \"hello\" or \"status\"");
}

// ---- node -> gateway --------------------------------------------------------------------

std::map<std::string, double> need_details(const msgpack::object& top) {
  const auto& o = need(top, "details");
  if (o.type != msgpack::type::MAP) throw bad_message(field("details") + " must be a map of strings to numbers");
  std::map<std::string, double> out;
  for (std::uint32_t i = 0; i < o.via.map.size; ++i) {
    const auto& kv = o.via.map.ptr[i];
    if (kv.key.type != msgpack::type::STR)
      throw bad_message(field("details") + " entry " + std::to_string(i) + " has a key that is not a string");
    double value = 0;
    switch (kv.val.type) {
      case msgpack::type::POSITIVE_INTEGER: value = static_cast<double>(kv.val.via.u64); break;
      case msgpack::type::NEGATIVE_INTEGER: value = static_cast<double>(kv.val.via.i64); break;
      case msgpack::type::FLOAT32:
      case msgpack::type::FLOAT64: value = kv.val.via.f64; break;
      default:
        throw bad_message(field("details") + " entry " + std::to_string(i) + " has a value that is not a number");
    }
    out.emplace(std::string{str_of(kv.key)}, value);  // a repeated key: the first counts
  }
  return out;
}

pager_page decode_page(const msgpack::object& top) {
  pager_page out;
  out.page_id = need_nonempty_str(top, "page_id");
  out.alert_id = need_nonempty_str(top, "alert_id");
  out.target = need_str(top, "target");
  if (out.target == any_target) throw bad_message(field("target") + " must name one target, not \"*\"", errc::invalid_id);
  if (auto st = validate_pager_name(out.target, field("target")); !st) throw bad_message(st.message(), st.code());
  out.level = need_unsigned(top, "level");
  out.repeat = need_unsigned(top, "repeat");
  const auto& p = need(top, "priority");
  const auto priority = p.type == msgpack::type::STR ? priority_from_string(str_of(p)) : std::nullopt;
  if (!priority) throw bad_message(field("priority") + " must be one of high, medium, low");
  out.priority = *priority;
  const auto& k = need(top, "kind");
  const auto kind = k.type == msgpack::type::STR ? alert_kind_from_string(str_of(k)) : std::nullopt;
  if (!kind) throw bad_message(field("kind") + " must be one of physiological, technical, advisory");
  out.kind = *kind;
  out.patient = need_str(top, "patient");
  out.device = need_str(top, "device");
  out.rule = need_nonempty_str(top, "rule");
  out.summary = need_str(top, "summary");
  out.details = need_details(top);
  out.ts = need_ms(top, "ts");
  out.event_ts = need_ms(top, "event_ts");
  return out;
}

pager_cancel decode_cancel(const msgpack::object& top) {
  pager_cancel out;
  out.page_id = need_nonempty_str(top, "page_id");
  out.alert_id = need_nonempty_str(top, "alert_id");
  out.reason = need_str(top, "reason");
  for (const auto r : cancel_reasons)
    if (out.reason == r) return out;
  throw bad_message(field("reason") + " must be one of acknowledged, resolved, silenced");
}

// An error code this build does not know (a newer node) or "ok" in an error position
// becomes internal; the message is kept as sent.
errc code_of(const std::string& name) {
  const auto code = errc_from_string(name);
  return code && *code != errc::ok ? *code : errc::internal;
}

node_message decode_from_node_unguarded(const char* data, std::size_t size) {
  const auto handle = unpack_message(data, size);
  const auto& top = handle.get();
  const auto type = version_and_type(top);
  if (type == "page") return decode_page(top);
  if (type == "cancel") return decode_cancel(top);
  if (type == "welcome") {
    pager_welcome welcome;
    welcome.gateway = need_gateway(top);
    welcome.targets = need_targets(top);
    return welcome;
  }
  if (type == "error") {
    pager_error err;
    err.code = code_of(need_str(top, "code"));
    err.message = need_str(top, "message");
    return err;
  }
  throw bad_message(field("type") + " must be \"page\", \"cancel\", \"welcome\" or \"error\"");
}

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
         c == '.' || c == ':' || c == '@';
}

}  // namespace

status validate_pager_name(std::string_view name, std::string_view what) {
  std::string w{what};
  if (name.empty()) return {errc::invalid_id, w + " is empty"};
  if (name.size() > max_pager_name_bytes)
    return {errc::invalid_id,
            w + " is " + std::to_string(name.size()) + " bytes, longer than " + std::to_string(max_pager_name_bytes)};
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    if (!is_name_char(c)) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02x", static_cast<unsigned>(static_cast<unsigned char>(c)));
      return {errc::invalid_id, w + " has a forbidden byte " + hex + " at offset " + std::to_string(i) +
                                    " (allowed: letters, digits, - _ . : @)"};
    }
  }
  return {};
}

result<gateway_message> decode_from_gateway(const char* data, std::size_t size) {
  return guarded<gateway_message>(decode_from_gateway_unguarded, data, size, pager_limits);
}

result<node_message> decode_from_node(const char* data, std::size_t size) {
  return guarded<node_message>(decode_from_node_unguarded, data, size, pager_limits);
}

std::string encode_hello(const pager_hello& hello) {
  msgpack::sbuffer buf;
  packer pk(&buf);
  pk.pack_map(4);
  pack_head(pk, "hello");
  pack_str(pk, "gateway");
  pack_str(pk, hello.gateway);
  pack_str(pk, "targets");
  pack_targets(pk, hello.targets);
  return to_bytes(buf);
}

std::string encode_status(const pager_status& st) {
  msgpack::sbuffer buf;
  packer pk(&buf);
  const bool has_by = !st.by.empty();
  pk.pack_map(has_by ? 6u : 5u);
  pack_head(pk, "status");
  pack_str(pk, "page_id");
  pack_str(pk, st.page_id);
  pack_str(pk, "status");
  pack_str(pk, to_string(st.status));
  if (has_by) {
    pack_str(pk, "by");
    pack_str(pk, st.by);
  }
  pack_str(pk, "ts");
  pk.pack_int64(st.ts);
  return to_bytes(buf);
}

std::string encode_page(const pager_page& page) {
  msgpack::sbuffer buf;
  packer pk(&buf);
  pk.pack_map(16);
  pack_head(pk, "page");
  pack_str(pk, "page_id");
  pack_str(pk, page.page_id);
  pack_str(pk, "alert_id");
  pack_str(pk, page.alert_id);
  pack_str(pk, "target");
  pack_str(pk, page.target);
  pack_str(pk, "level");
  pk.pack_unsigned_int(page.level);
  pack_str(pk, "repeat");
  pk.pack_unsigned_int(page.repeat);
  pack_str(pk, "priority");
  pack_str(pk, to_string(page.priority));
  pack_str(pk, "kind");
  pack_str(pk, to_string(page.kind));
  pack_str(pk, "patient");
  pack_str(pk, page.patient);
  pack_str(pk, "device");
  pack_str(pk, page.device);
  pack_str(pk, "rule");
  pack_str(pk, page.rule);
  pack_str(pk, "summary");
  pack_str(pk, page.summary);
  pack_str(pk, "details");
  pk.pack_map(wire_size(page.details.size()));
  for (const auto& [name, value] : page.details) {
    pack_str(pk, name);
    pack_float64(buf, value);
  }
  pack_str(pk, "ts");
  pk.pack_int64(page.ts);
  pack_str(pk, "event_ts");
  pk.pack_int64(page.event_ts);
  return to_bytes(buf);
}

std::string encode_cancel(const pager_cancel& cancel) {
  msgpack::sbuffer buf;
  packer pk(&buf);
  pk.pack_map(5);
  pack_head(pk, "cancel");
  pack_str(pk, "page_id");
  pack_str(pk, cancel.page_id);
  pack_str(pk, "alert_id");
  pack_str(pk, cancel.alert_id);
  pack_str(pk, "reason");
  pack_str(pk, cancel.reason);
  return to_bytes(buf);
}

std::string encode_welcome(const pager_welcome& welcome) {
  msgpack::sbuffer buf;
  packer pk(&buf);
  pk.pack_map(4);
  pack_head(pk, "welcome");
  pack_str(pk, "gateway");
  pack_str(pk, welcome.gateway);
  pack_str(pk, "targets");
  pack_targets(pk, welcome.targets);
  return to_bytes(buf);
}

std::string encode_error(const pager_error& err) {
  msgpack::sbuffer buf;
  packer pk(&buf);
  pk.pack_map(4);
  pack_head(pk, "error");
  pack_str(pk, "code");
  pack_str(pk, to_string(err.code));
  pack_str(pk, "message");
  pack_str(pk, err.message);
  return to_bytes(buf);
}

}  // namespace alert::wire
