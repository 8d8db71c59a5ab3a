#pragma once
// Raw MessagePack for codec tests: values written exactly as a test needs them, including
// what a well-behaved encoder never writes (float formats for integral values, repeated or
// non-string keys, binary and extension data, deep nesting).

#include <msgpack.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace alert::test::mp {

using packer = msgpack::packer<msgpack::sbuffer>;
/// Writes one MessagePack value.
using writer = std::function<void(packer&)>;
/// Map entries in order; a key may repeat.
using entries = std::vector<std::pair<std::string, writer>>;

inline void put_str(packer& pk, const std::string& s) {
  pk.pack_str(static_cast<std::uint32_t>(s.size()));
  pk.pack_str_body(s.data(), static_cast<std::uint32_t>(s.size()));
}

inline writer str(std::string s) {
  return [s = std::move(s)](packer& pk) { put_str(pk, s); };
}
inline writer i64(std::int64_t v) {
  return [v](packer& pk) { pk.pack_int64(v); };
}
inline writer u64(std::uint64_t v) {
  return [v](packer& pk) { pk.pack_uint64(v); };
}
/// Bytes written as they are (pack_str_body writes no header).
inline writer raw(std::string bytes) {
  return [bytes = std::move(bytes)](packer& pk) {
    pk.pack_str_body(bytes.data(), static_cast<std::uint32_t>(bytes.size()));
  };
}
// packer::pack_double / pack_float write integral values (1.0, -0.0) as integers; these
// always write the float formats, so that "a float where an integer belongs" is tested.
inline writer f64(double v) {
  return [v](packer& pk) {
    std::uint64_t bits = 0;
    std::memcpy(&bits, &v, sizeof bits);
    char out[9] = {static_cast<char>(0xcb)};
    for (std::size_t i = 0; i < 8; ++i) out[1 + i] = static_cast<char>((bits >> (56 - 8 * i)) & 0xffu);
    pk.pack_str_body(out, sizeof out);
  };
}
inline writer f32(float v) {
  return [v](packer& pk) {
    std::uint32_t bits = 0;
    std::memcpy(&bits, &v, sizeof bits);
    char out[5] = {static_cast<char>(0xca)};
    for (std::size_t i = 0; i < 4; ++i) out[1 + i] = static_cast<char>((bits >> (24 - 8 * i)) & 0xffu);
    pk.pack_str_body(out, sizeof out);
  };
}
inline writer nil() {
  return [](packer& pk) { pk.pack_nil(); };
}
inline writer boolean(bool v) {
  return [v](packer& pk) {
    if (v)
      pk.pack_true();
    else
      pk.pack_false();
  };
}
inline writer bin(std::size_t n) {
  return [n](packer& pk) {
    const std::string body(n, 'x');
    pk.pack_bin(static_cast<std::uint32_t>(n));
    pk.pack_bin_body(body.data(), static_cast<std::uint32_t>(n));
  };
}
/// A MessagePack timestamp (ext type -1, 32-bit seconds).
inline writer timestamp_ext() {
  return [](packer& pk) {
    const char secs[4] = {0x65, 0x00, 0x00, 0x00};
    pk.pack_ext(4, -1);
    pk.pack_ext_body(secs, 4);
  };
}
inline writer map_of(entries e) {
  return [e = std::move(e)](packer& pk) {
    pk.pack_map(static_cast<std::uint32_t>(e.size()));
    for (const auto& [k, w] : e) {
      put_str(pk, k);
      w(pk);
    }
  };
}
inline writer array_of(std::vector<writer> items) {
  return [items = std::move(items)](packer& pk) {
    pk.pack_array(static_cast<std::uint32_t>(items.size()));
    for (const auto& w : items) w(pk);
  };
}
inline writer strings(const std::vector<std::string>& items) {
  std::vector<writer> w;
  for (const auto& s : items) w.push_back(str(s));
  return array_of(std::move(w));
}
/// A map whose only key is an integer.
inline writer int_keyed_map(writer value) {
  return [value = std::move(value)](packer& pk) {
    pk.pack_map(1);
    pk.pack_int64(7);
    value(pk);
  };
}
/// `depth` arrays, one inside the other, around an integer.
inline writer nested(std::size_t depth) {
  return [depth](packer& pk) {
    for (std::size_t i = 0; i < depth; ++i) pk.pack_array(1);
    pk.pack_int64(1);
  };
}

inline std::string bytes(const writer& w) {
  msgpack::sbuffer buf;
  packer pk(&buf);
  w(pk);
  return std::string(buf.data(), buf.size());
}

/// `e` with `key` set to `w` (replacing the first occurrence, else appended).
inline entries with(entries e, const std::string& key, writer w) {
  for (auto& kv : e)
    if (kv.first == key) {
      kv.second = std::move(w);
      return e;
    }
  e.emplace_back(key, std::move(w));
  return e;
}

inline entries without(entries e, const std::string& key) {
  e.erase(std::remove_if(e.begin(), e.end(), [&](const auto& kv) { return kv.first == key; }), e.end());
  return e;
}

}  // namespace alert::test::mp
