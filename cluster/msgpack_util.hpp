#pragma once
// MessagePack helpers shared by the wire codecs (ingest_wire, pager_wire, control_wire). Internal to
// cluster/: the codecs' headers do not include it.

#include <msgpack.hpp>

#include <cstdint>
#include <cstring>
#include <exception>
#include <limits>
#include <stdexcept>
#include <string>
#include <string_view>

#include "engine/status.hpp"

namespace alert::wire::detail {

using packer = msgpack::packer<msgpack::sbuffer>;

inline std::uint32_t wire_size(std::size_t n) {
  if (n > std::numeric_limits<std::uint32_t>::max())
    throw std::length_error("MessagePack container or string over 2^32-1 elements");
  return static_cast<std::uint32_t>(n);
}

inline void pack_str(packer& pk, std::string_view s) {
  const auto n = wire_size(s.size());
  pk.pack_str(n);
  pk.pack_str_body(s.data(), n);
}

/// msgpack-cxx 4.x's pack_double writes a double that holds an integer (97.0, -0.0) as a
/// MessagePack integer; the protocols promise float64, so it is written by hand.
inline void pack_float64(msgpack::sbuffer& buf, double d) {
  std::uint64_t bits = 0;
  static_assert(sizeof bits == sizeof d);
  std::memcpy(&bits, &d, sizeof bits);
  char out[9];
  out[0] = static_cast<char>(0xcb);
  for (std::size_t i = 0; i < 8; ++i) out[1 + i] = static_cast<char>((bits >> (56 - 8 * i)) & 0xffu);
  buf.write(out, sizeof out);
}

inline std::string to_bytes(const msgpack::sbuffer& buf) { return std::string(buf.data(), buf.size()); }

inline bool is_integer(const msgpack::object& o) {
  return o.type == msgpack::type::POSITIVE_INTEGER || o.type == msgpack::type::NEGATIVE_INTEGER;
}

inline std::string_view str_of(const msgpack::object& o) {
  return o.via.str.size == 0 ? std::string_view{} : std::string_view{o.via.str.ptr, o.via.str.size};
}

inline bool key_is(const msgpack::object& key, std::string_view name) {
  return key.type == msgpack::type::STR && str_of(key) == name;
}

/// The value of `name` in `map`, or null. When a key repeats, its first occurrence wins.
inline const msgpack::object* find(const msgpack::object& map, std::string_view name) {
  for (std::uint32_t i = 0; i < map.via.map.size; ++i)
    if (key_is(map.via.map.ptr[i].key, name)) return &map.via.map.ptr[i].val;
  return nullptr;
}

inline std::string integer_text(const msgpack::object& o) {
  return o.type == msgpack::type::NEGATIVE_INTEGER ? std::to_string(o.via.i64) : std::to_string(o.via.u64);
}

/// Why msgpack-cxx refused bytes, from the exception it threw.
enum class unpack_failure { array, map, str, bin_ext, depth, truncated, invalid, other };

/// Classifies the exception `e` thrown while unpacking; never throws.
inline unpack_failure classify(std::exception_ptr e) noexcept {
  try {
    std::rethrow_exception(e);
  } catch (const msgpack::array_size_overflow&) {
    return unpack_failure::array;
  } catch (const msgpack::map_size_overflow&) {
    return unpack_failure::map;
  } catch (const msgpack::str_size_overflow&) {
    return unpack_failure::str;
  } catch (const msgpack::depth_size_overflow&) {
    return unpack_failure::depth;
  } catch (const msgpack::size_overflow&) {
    return unpack_failure::bin_ext;
  } catch (const msgpack::insufficient_bytes&) {
    return unpack_failure::truncated;
  } catch (const msgpack::parse_error&) {
    return unpack_failure::invalid;
  } catch (...) {
    // Anything else, std::bad_alloc included, refuses the bytes rather than the process.
    return unpack_failure::other;
  }
}

/// A limit that was hit is too_large; anything else is malformed.
inline bool over_limit(unpack_failure why) noexcept {
  return why == unpack_failure::array || why == unpack_failure::map || why == unpack_failure::str ||
         why == unpack_failure::bin_ext || why == unpack_failure::depth;
}

/// Binary and extension data are refused beyond this (no protocol uses them).
inline constexpr std::size_t max_bin_ext_bytes = 64;

/// Thrown by a decoder for a message it refuses; `code` is what the caller is told.
struct bad_message : std::runtime_error {
  explicit bad_message(const std::string& message, errc c = errc::malformed) : std::runtime_error(message), code(c) {}
  errc code;
};

/// How a decoder's messages name a field.
inline std::string field(std::string_view name) { return "field '" + std::string{name} + "'"; }

/// The value of `name` in `map`; bad_message when it is missing.
inline const msgpack::object& need(const msgpack::object& map, std::string_view name) {
  const auto* o = find(map, name);
  if (o == nullptr) throw bad_message(field(name) + " is missing");
  return *o;
}

/// The string value of `name` in `map`; bad_message when it is missing or not a string.
inline std::string need_str(const msgpack::object& map, std::string_view name) {
  const auto& o = need(map, name);
  if (o.type != msgpack::type::STR) throw bad_message(field(name) + " must be a string");
  return std::string{str_of(o)};
}

/// A codec's decode limits, for the messages that name them.
struct limit_names {
  std::size_t max_array, max_map_entries, max_string_bytes, max_depth;
};

/// Why msgpack refused some bytes, for a person.
inline std::string failure_message(unpack_failure why, const limit_names& l) {
  switch (why) {
    case unpack_failure::array:
      return "message has an array longer than " + std::to_string(l.max_array) + " entries";
    case unpack_failure::map:
      return "message has a map with more than " + std::to_string(l.max_map_entries) + " entries";
    case unpack_failure::str:
      return "message has a string longer than " + std::to_string(l.max_string_bytes) + " bytes";
    case unpack_failure::bin_ext:
      return "message has binary or extension data longer than " + std::to_string(max_bin_ext_bytes) +
             " bytes (the protocol uses neither)";
    case unpack_failure::depth:
      return "message nests maps and arrays deeper than " + std::to_string(l.max_depth) + " levels";
    case unpack_failure::truncated: return "message is empty or truncated (incomplete MessagePack)";
    case unpack_failure::invalid: return "message is not valid MessagePack";
    case unpack_failure::other: break;
  }
  return "message could not be decoded";
}

/// Runs `decode` and turns everything it throws into a status: a decoder never throws.
template <class T, class F>
result<T> guarded(F decode, const char* data, std::size_t size, const limit_names& limits) {
  // The handlers only record what went wrong: building a message may itself throw.
  auto why = unpack_failure::other;
  auto code = errc::malformed;
  std::string detail;
  bool have_detail = false;
  try {
    return decode(data, size);
  } catch (const bad_message& e) {
    code = e.code;
    try {
      detail = e.what();
      have_detail = true;
    } catch (...) {
    }
  } catch (...) {
    why = classify(std::current_exception());
  }
  if (!have_detail && over_limit(why)) code = errc::too_large;
  try {
    return status{code, have_detail ? std::move(detail) : failure_message(why, limits)};
  } catch (...) {
    return status{code, {}};
  }
}

}  // namespace alert::wire::detail
