#include "cluster/control_wire.hpp"

#include <msgpack.hpp>

#include "cluster/msgpack_util.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>
#include <stdexcept>
#include <unordered_set>
#include <utility>

namespace alert::wire {

// ---- value ------------------------------------------------------------------------------

const value* value::get(std::string_view key) const noexcept {
  const auto* obj = std::get_if<value_object>(&v);
  if (obj == nullptr) return nullptr;
  for (const auto& [k, member] : *obj)
    if (k == key) return &member;
  return nullptr;
}

std::optional<std::string> value::str(std::string_view key) const {
  const auto* member = get(key);
  if (member == nullptr) return std::nullopt;
  if (const auto* s = std::get_if<std::string>(&member->v)) return *s;
  return std::nullopt;
}

std::optional<std::int64_t> value::integer(std::string_view key) const noexcept {
  const auto* member = get(key);
  if (member == nullptr) return std::nullopt;
  if (const auto* i = std::get_if<std::int64_t>(&member->v)) return *i;
  return std::nullopt;
}

std::optional<bool> value::boolean(std::string_view key) const noexcept {
  const auto* member = get(key);
  if (member == nullptr) return std::nullopt;
  if (const auto* b = std::get_if<bool>(&member->v)) return *b;
  return std::nullopt;
}

value& value::set(std::string key, value member) {
  if (is_null()) v = value_object{};
  auto* obj = std::get_if<value_object>(&v);
  if (obj == nullptr) throw std::logic_error("wire::value::set on a value that is neither an object nor null");
  for (auto& [k, existing] : *obj)
    if (k == key) {
      existing = std::move(member);
      return existing;
    }
  obj->emplace_back(std::move(key), std::move(member));
  return obj->back().second;
}

void value::push(value item) {
  if (is_null()) v = value_array{};
  auto* arr = std::get_if<value_array>(&v);
  if (arr == nullptr) throw std::logic_error("wire::value::push on a value that is neither an array nor null");
  arr->push_back(std::move(item));
}

namespace {

// The protocol carries neither bin nor ext. A small allowance (rather than zero) lets a
// short mistyped field reach the field checks and come back as "field 'cmd' must be a
// string" instead of a decode-limit error.

constexpr std::uint64_t int64_max = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());

using namespace detail;
constexpr limit_names control_limits{control_max_array, control_max_map_entries, control_max_string_bytes,
                                     control_max_depth};

// ---- encoding ---------------------------------------------------------------------------

/// `v` and `type`, the first two entries of every message.
void pack_head(packer& pk, std::string_view type) {
  pack_str(pk, "v");
  pk.pack_int64(control_version);
  pack_str(pk, "type");
  pack_str(pk, type);
}

struct value_packer {
  msgpack::sbuffer& buf;
  packer& pk;

  void operator()(std::monostate) const { pk.pack_nil(); }
  void operator()(bool b) const {
    if (b)
      pk.pack_true();
    else
      pk.pack_false();
  }
  void operator()(std::int64_t i) const { pk.pack_int64(i); }
  void operator()(double d) const { pack_float64(buf, d); }
  void operator()(const std::string& s) const { pack_str(pk, s); }
  void operator()(const value_array& a) const {
    pk.pack_array(wire_size(a.size()));
    for (const auto& item : a) std::visit(*this, item.v);
  }
  void operator()(const value_object& o) const {
    pk.pack_map(wire_size(o.size()));
    for (const auto& [key, member] : o) {
      pack_str(pk, key);
      std::visit(*this, member.v);
    }
  }
};

void pack_value(msgpack::sbuffer& buf, packer& pk, const value& v) { std::visit(value_packer{buf, pk}, v.v); }

// ---- decoding helpers -------------------------------------------------------------------


std::uint64_t need_id(const msgpack::object& map) {
  const auto& o = need(map, "id");
  if (o.type != msgpack::type::POSITIVE_INTEGER) throw bad_message(field("id") + " must be a non-negative integer");
  return o.via.u64;
}

/// Unpacks the single object in [data, data + size) under the control limits; throws
/// msgpack's exceptions, and bad_message for trailing bytes or a non-map.
msgpack::object_handle unpack_message(const char* data, std::size_t size) {
  if (size == 0 || data == nullptr) throw msgpack::insufficient_bytes("empty input");
  const msgpack::unpack_limit limit(control_max_array, control_max_map_entries, control_max_string_bytes,
                                    max_bin_ext_bytes, max_bin_ext_bytes, control_max_depth);
  std::size_t offset = 0;
  auto handle = msgpack::unpack(data, size, offset, nullptr, nullptr, limit);
  if (offset != size)
    throw bad_message("message has " + std::to_string(size - offset) + " trailing bytes after the top-level map");
  if (handle.get().type != msgpack::type::MAP) throw bad_message("message must be a MessagePack map");
  return handle;
}

/// Checks `v` and `type`.
void check_version_and_type(const msgpack::object& top, std::string_view expected) {
  const auto* v = find(top, "v");
  if (v == nullptr) throw bad_message("field 'v' (protocol version) is missing");
  if (!is_integer(*v)) throw bad_message("field 'v' must be an integer");
  if (v->type != msgpack::type::POSITIVE_INTEGER || v->via.u64 != static_cast<std::uint64_t>(control_version))
    throw bad_message("control protocol version " + integer_text(*v) +
                          " is not supported (this build speaks version " + std::to_string(control_version) + ")",
                      errc::unsupported_version);
  if (need_str(top, "type") != expected) throw bad_message(field("type") + " must be \"" + std::string{expected} + "\"");
}

/// Builds a value from a MessagePack object, naming the path to whatever it refuses.
class value_reader {
public:
  explicit value_reader(std::string_view root) : root_(root) {}

  value read(const msgpack::object& o) {
    switch (o.type) {
      case msgpack::type::NIL: return value{};
      case msgpack::type::BOOLEAN: return value{o.via.boolean};
      case msgpack::type::POSITIVE_INTEGER:
        if (o.via.u64 > int64_max)
          throw bad_message(where() + " is an integer above " + std::to_string(int64_max) +
                            ", the largest the protocol carries");
        return value{static_cast<std::int64_t>(o.via.u64)};
      case msgpack::type::NEGATIVE_INTEGER: return value{o.via.i64};
      case msgpack::type::FLOAT32:
      case msgpack::type::FLOAT64: return value{o.via.f64};
      case msgpack::type::STR: return value{std::string{str_of(o)}};
      case msgpack::type::ARRAY: return read_array(o);
      case msgpack::type::MAP: return read_map(o);
      case msgpack::type::BIN:
      case msgpack::type::EXT: break;
    }
    throw bad_message(where() + " holds binary or extension data, which the protocol does not carry");
  }

private:
  struct step {
    bool member;           ///< an object's member (else an array's element)
    std::string_view key;  ///< when member
    std::uint32_t index;   ///< when an element
  };

  value read_array(const msgpack::object& o) {
    value_array out;
    out.reserve(o.via.array.size);
    path_.push_back(step{false, {}, 0});
    for (std::uint32_t i = 0; i < o.via.array.size; ++i) {
      path_.back().index = i;
      out.push_back(read(o.via.array.ptr[i]));
    }
    path_.pop_back();
    return value{std::move(out)};
  }

  value read_map(const msgpack::object& o) {
    const auto n = o.via.map.size;
    value_object out;
    out.reserve(n);
    // A repeated key keeps its first occurrence. Big maps use a set to stay linear.
    constexpr std::uint32_t linear_below = 16;
    std::unordered_set<std::string_view> seen;
    if (n >= linear_below) seen.reserve(n);
    for (std::uint32_t i = 0; i < n; ++i) {
      const auto& kv = o.via.map.ptr[i];
      if (kv.key.type != msgpack::type::STR)
        throw bad_message(where() + " entry " + std::to_string(i) + " has a key that is not a string");
      const auto key = str_of(kv.key);
      bool repeated = false;
      if (n >= linear_below) {
        repeated = !seen.insert(key).second;
      } else {
        for (const auto& member : out)
          if (member.first == key) repeated = true;
      }
      path_.push_back(step{true, key, 0});
      auto member = read(kv.val);  // checked even when repeated: the message must be valid
      path_.pop_back();
      if (!repeated) out.emplace_back(std::string{key}, std::move(member));
    }
    return value{std::move(out)};
  }

  std::string where() const {
    std::string path{root_};
    for (const auto& s : path_) {
      if (s.member) {
        path += '.';
        path += s.key;
      } else {
        path += '[' + std::to_string(s.index) + ']';
      }
    }
    return field(path);
  }

  std::string_view root_;
  std::vector<step> path_;
};


bool is_command_char(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'; }

std::string need_command(const msgpack::object& top) {
  auto cmd = need_str(top, "cmd");
  if (cmd.empty()) throw bad_message(field("cmd") + " is empty");
  if (cmd.size() > max_control_command_bytes)
    throw bad_message(field("cmd") + " is " + std::to_string(cmd.size()) + " bytes, longer than " +
                      std::to_string(max_control_command_bytes));
  for (std::size_t i = 0; i < cmd.size(); ++i) {
    if (!is_command_char(cmd[i])) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02x", static_cast<unsigned>(static_cast<unsigned char>(cmd[i])));
      throw bad_message(field("cmd") + " has a forbidden byte " + hex + " at offset " + std::to_string(i) +
                        " (allowed: a-z, 0-9, _ -)");
    }
  }
  return cmd;
}

control_request decode_request_unguarded(const char* data, std::size_t size) {
  const auto handle = unpack_message(data, size);
  const auto& top = handle.get();
  check_version_and_type(top, "request");
  control_request out;
  out.id = need_id(top);
  out.cmd = need_command(top);
  const auto* args = find(top, "args");
  if (args == nullptr || args->type == msgpack::type::NIL) {
    out.args = value_object{};
  } else {
    if (args->type != msgpack::type::MAP) throw bad_message(field("args") + " must be a map");
    out.args = value_reader{"args"}.read(*args);
  }
  return out;
}

// An error code this build does not know (a newer node) or "ok" in an error position
// becomes internal; the message is kept as sent.
errc code_of(const std::string& name) {
  const auto code = errc_from_string(name);
  return code && *code != errc::ok ? *code : errc::internal;
}

control_reply decode_reply_unguarded(const char* data, std::size_t size) {
  const auto handle = unpack_message(data, size);
  const auto& top = handle.get();
  check_version_and_type(top, "reply");
  control_reply out;
  out.id = need_id(top);
  const auto& ok = need(top, "ok");
  if (ok.type != msgpack::type::BOOLEAN) throw bad_message(field("ok") + " must be a boolean");
  out.ok = ok.via.boolean;
  if (out.ok) {
    if (const auto* r = find(top, "result"); r != nullptr) out.result = value_reader{"result"}.read(*r);
  } else {
    out.code = code_of(need_str(top, "code"));
    out.message = need_str(top, "message");
  }
  return out;
}

/// Follows the parse of a message's top level, looking for the first `id` key's value.
/// Stops as soon as the answer is known; builds no objects.
class id_peeker : public msgpack::null_visitor {
public:
  std::optional<std::uint64_t> id;

  bool visit_nil() { return scalar(); }
  bool visit_boolean(bool /*b*/) { return scalar(); }
  bool visit_positive_integer(std::uint64_t u) {
    if (at_id_value()) {
      id = u;
      return false;
    }
    return scalar();
  }
  bool visit_negative_integer(std::int64_t /*i*/) { return scalar(); }
  bool visit_float32(float /*f*/) { return scalar(); }
  bool visit_float64(double /*d*/) { return scalar(); }
  bool visit_str(const char* p, std::uint32_t n) {
    if (level_ == 1 && in_key_) key_is_id_ = n == 2 && p[0] == 'i' && p[1] == 'd';
    return scalar();
  }
  bool visit_bin(const char* /*p*/, std::uint32_t /*n*/) { return scalar(); }
  bool visit_ext(const char* /*p*/, std::uint32_t /*n*/) { return scalar(); }
  bool start_array(std::uint32_t /*n*/) { return open(false); }
  bool end_array() {
    --level_;
    return true;
  }
  bool start_map(std::uint32_t /*n*/) { return open(true); }
  bool start_map_key() {
    if (level_ == 1) {
      in_key_ = true;
      key_is_id_ = false;
    }
    return true;
  }
  bool start_map_value() {
    if (level_ == 1) in_key_ = false;
    return true;
  }
  bool end_map() {
    --level_;
    return true;
  }

private:
  // Far beyond control_max_depth, so that an id after a too-deep value is still found,
  // yet a bound on the parser's own stack.
  static constexpr std::size_t max_level = 256;

  bool at_id_value() const { return level_ == 1 && !in_key_ && key_is_id_; }

  /// A scalar anywhere: stop at a top level that is not a map, or at an `id` whose value
  /// is not a non-negative integer (its first occurrence counts).
  bool scalar() const { return level_ != 0 && !at_id_value(); }

  bool open(bool is_map) {
    if (level_ == 0 && !is_map) return false;
    if (at_id_value() || level_ >= max_level) return false;
    ++level_;
    return true;
  }

  std::size_t level_ = 0;
  bool in_key_ = false;
  bool key_is_id_ = false;
};

// ---- JSON -------------------------------------------------------------------------------

/// Length of the well-formed UTF-8 sequence starting at s[i] (a non-ASCII byte), or 0.
std::size_t utf8_length(std::string_view s, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const auto in = [&](std::size_t k, unsigned lo, unsigned hi) { return k < s.size() && byte(k) >= lo && byte(k) <= hi; };
  const unsigned c = byte(i);
  if (c >= 0xc2 && c <= 0xdf) return in(i + 1, 0x80, 0xbf) ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    const unsigned lo = c == 0xe0 ? 0xa0 : 0x80;  // no overlong forms
    const unsigned hi = c == 0xed ? 0x9f : 0xbf;  // no surrogates
    return in(i + 1, lo, hi) && in(i + 2, 0x80, 0xbf) ? 3 : 0;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    const unsigned lo = c == 0xf0 ? 0x90 : 0x80;  // no overlong forms
    const unsigned hi = c == 0xf4 ? 0x8f : 0xbf;  // nothing above U+10FFFF
    return in(i + 1, lo, hi) && in(i + 2, 0x80, 0xbf) && in(i + 3, 0x80, 0xbf) ? 4 : 0;
  }
  return 0;
}

class json_writer {
public:
  explicit json_writer(bool pretty) : pretty_(pretty) {}

  void write(const value& v, std::size_t indent) {
    if (std::holds_alternative<std::monostate>(v.v)) {
      out_ += "null";
    } else if (const auto* b = std::get_if<bool>(&v.v)) {
      out_ += *b ? "true" : "false";
    } else if (const auto* i = std::get_if<std::int64_t>(&v.v)) {
      char buf[24];
      const auto r = std::to_chars(buf, buf + sizeof buf, *i);
      out_.append(buf, r.ptr);
    } else if (const auto* d = std::get_if<double>(&v.v)) {
      write_double(*d);
    } else if (const auto* s = std::get_if<std::string>(&v.v)) {
      write_string(*s);
    } else if (const auto* a = std::get_if<value_array>(&v.v)) {
      if (a->empty()) {
        out_ += "[]";
        return;
      }
      out_ += '[';
      for (std::size_t k = 0; k < a->size(); ++k) {
        if (k != 0) out_ += ',';
        new_line(indent + 1);
        write((*a)[k], indent + 1);
      }
      new_line(indent);
      out_ += ']';
    } else if (const auto* o = std::get_if<value_object>(&v.v)) {
      if (o->empty()) {
        out_ += "{}";
        return;
      }
      out_ += '{';
      for (std::size_t k = 0; k < o->size(); ++k) {
        if (k != 0) out_ += ',';
        new_line(indent + 1);
        write_string((*o)[k].first);
        out_ += pretty_ ? ": " : ":";
        write((*o)[k].second, indent + 1);
      }
      new_line(indent);
      out_ += '}';
    }
  }

  std::string take() { return std::move(out_); }

private:
  void new_line(std::size_t indent) {
    if (!pretty_) return;
    out_ += '\n';
    out_.append(2 * indent, ' ');
  }

  void write_double(double d) {
    if (!std::isfinite(d)) {
      out_ += "null";
      return;
    }
    char buf[32];
    const auto r = std::to_chars(buf, buf + sizeof buf, d);
    const std::string_view text(buf, static_cast<std::size_t>(r.ptr - buf));
    out_ += text;
    // "5" or "-0" would read back as an integer.
    if (text.find_first_of(".e") == std::string_view::npos) out_ += ".0";
  }

  void write_string(std::string_view s) {
    static constexpr char hex[] = "0123456789abcdef";
    out_ += '"';
    std::size_t i = 0;
    while (i < s.size()) {
      const auto c = static_cast<unsigned char>(s[i]);
      if (c < 0x80) {
        if (c == '"') {
          out_ += "\\\"";
        } else if (c == '\\') {
          out_ += "\\\\";
        } else if (c < 0x20) {
          out_ += "\\u00";
          out_ += hex[c >> 4];
          out_ += hex[c & 0xf];
        } else {
          out_ += static_cast<char>(c);
        }
        ++i;
        continue;
      }
      const auto n = utf8_length(s, i);
      if (n == 0) {
        out_ += "\\ufffd";
        ++i;
      } else {
        out_.append(s.substr(i, n));
        i += n;
      }
    }
    out_ += '"';
  }

  bool pretty_;
  std::string out_;
};

}  // namespace

bool is_control_command(std::string_view cmd) noexcept {
  if (cmd.empty() || cmd.size() > max_control_command_bytes) return false;
  for (const char c : cmd)
    if (!is_command_char(c)) return false;
  return true;
}

std::string encode_control_request(const control_request& request) {
  msgpack::sbuffer buf;
  packer pk(&buf);
  pk.pack_map(5);
  pack_head(pk, "request");
  pack_str(pk, "id");
  pk.pack_uint64(request.id);
  pack_str(pk, "cmd");
  pack_str(pk, request.cmd);
  pack_str(pk, "args");
  if (request.args.is_null())
    pk.pack_map(0);
  else
    pack_value(buf, pk, request.args);
  return to_bytes(buf);
}

result<control_request> decode_control_request(const char* data, std::size_t size) {
  return guarded<control_request>(decode_request_unguarded, data, size, control_limits);
}

std::optional<std::uint64_t> peek_control_request_id(const char* data, std::size_t size) noexcept {
  if (data == nullptr || size == 0) return std::nullopt;
  id_peeker peek;
  try {
    std::size_t offset = 0;
    (void)msgpack::parse(data, size, offset, peek);
  } catch (...) {
    // Only the parser's own small stack can throw (bad_alloc); what was found so far stands.
  }
  return peek.id;
}

std::string encode_control_reply(const control_reply& reply) {
  msgpack::sbuffer buf;
  packer pk(&buf);
  pk.pack_map(reply.ok ? 5u : 6u);
  pack_head(pk, "reply");
  pack_str(pk, "id");
  pk.pack_uint64(reply.id);
  pack_str(pk, "ok");
  if (reply.ok) {
    pk.pack_true();
    pack_str(pk, "result");
    pack_value(buf, pk, reply.result);
  } else {
    pk.pack_false();
    pack_str(pk, "code");
    pack_str(pk, to_string(reply.code));
    pack_str(pk, "message");
    pack_str(pk, reply.message);
  }
  return to_bytes(buf);
}

result<control_reply> decode_control_reply(const char* data, std::size_t size) {
  return guarded<control_reply>(decode_reply_unguarded, data, size, control_limits);
}

std::string to_json(const value& v, bool pretty) {
  json_writer w(pretty);
  w.write(v, 0);
  return w.take();
}

}  // namespace alert::wire
