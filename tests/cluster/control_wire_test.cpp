#include "cluster/control_wire.hpp"

#include <catch2/catch.hpp>
#include <msgpack.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "tests/support/msgpack_writer.hpp"

using namespace alert;
using namespace alert::wire;

namespace {

using namespace alert::test::mp;

// ---- good messages, field by field --------------------------------------------------------

entries request_fields() {
  return {{"v", i64(1)},
          {"type", str("request")},
          {"id", i64(42)},
          {"cmd", str("patient-silence")},
          {"args", map_of({{"patient", str("P-100234")}, {"minutes", i64(30)}})}};
}
entries success_fields() {
  return {{"v", i64(1)}, {"type", str("reply")}, {"id", i64(42)}, {"ok", boolean(true)},
          {"result", map_of({{"silenced", i64(2)}})}};
}
entries failure_fields() {
  return {{"v", i64(1)},          {"type", str("reply")},          {"id", i64(42)},
          {"ok", boolean(false)}, {"code", str("not_found")}, {"message", str("no patient P-1")}};
}

result<control_request> request_of(const std::string& s) { return decode_control_request(s.data(), s.size()); }
result<control_reply> reply_of(const std::string& s) { return decode_control_reply(s.data(), s.size()); }
std::optional<std::uint64_t> peek(const std::string& s) { return peek_control_request_id(s.data(), s.size()); }

template <class R>
auto only(const R& r) {
  INFO(r.error().to_string());
  REQUIRE(r.has_value());
  return *r;
}

/// The string keys of a map, in order.
std::vector<std::string> keys_of(const msgpack::object& map) {
  REQUIRE(map.type == msgpack::type::MAP);
  std::vector<std::string> keys;
  for (std::uint32_t i = 0; i < map.via.map.size; ++i) {
    const auto& k = map.via.map.ptr[i].key;
    REQUIRE(k.type == msgpack::type::STR);
    keys.emplace_back(k.via.str.ptr, k.via.str.size);
  }
  return keys;
}

const msgpack::object& value_at(const msgpack::object& map, const std::string& key) {
  for (std::uint32_t i = 0; i < map.via.map.size; ++i) {
    const auto& kv = map.via.map.ptr[i];
    if (kv.key.type == msgpack::type::STR && std::string(kv.key.via.str.ptr, kv.key.via.str.size) == key)
      return kv.val;
  }
  FAIL("no key " << key);
  throw std::logic_error("unreachable");
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

/// A value with every kind, nested.
value sample_value() {
  return value_object{
      {"patient", "P-100234"},
      {"minutes", 30},
      {"reason", "transport to CT \"room 2\""},
      {"rules", value_array{"spo2_low", "hr_high"}},
      {"until", value_object{{"ts", std::int64_t{1'767'225'620'000}}, {"strict", true}}},
      {"ratio", 0.25},
      {"none", nullptr},
      {"neg", -5},
      {"empty_array", value_array{}},
      {"empty_object", value_object{}},
      {"matrix", value_array{value_array{1, 2.5}, value_array{}, value_array{value_object{{"deep", false}}}}},
  };
}

}  // namespace

// ---- round trips ------------------------------------------------------------------------

TEST_CASE("a request survives encode_control_request and decode_control_request with nested arguments") {
  const control_request req{7, "patient-silence", sample_value()};
  CHECK(only(request_of(encode_control_request(req))) == req);
}

TEST_CASE("a request without args, or with nil or null args, has an empty object") {
  const auto absent = only(request_of(bytes(map_of(without(request_fields(), "args")))));
  CHECK(absent.args == value{value_object{}});
  const auto nil_args = only(request_of(bytes(map_of(with(request_fields(), "args", nil())))));
  CHECK(nil_args.args == value{value_object{}});
  const control_request no_args{1, "status", value{}};
  CHECK(only(request_of(encode_control_request(no_args))).args == value{value_object{}});
}

TEST_CASE("request and reply ids cover the whole unsigned 64-bit range") {
  for (const std::uint64_t id : {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{127}, std::uint64_t{128},
                                 static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()),
                                 std::numeric_limits<std::uint64_t>::max()}) {
    INFO(id);
    CHECK(only(request_of(encode_control_request({id, "status", value_object{}}))).id == id);
    CHECK(only(reply_of(encode_control_reply({id, true, value{}, errc::ok, {}}))).id == id);
    CHECK(only(reply_of(encode_control_reply({id, false, value{}, errc::not_found, "m"}))).id == id);
  }
}

TEST_CASE("a successful reply survives the round trip with results of every kind") {
  const std::vector<value> results = {
      value{},
      true,
      false,
      0,
      std::numeric_limits<std::int64_t>::min(),
      std::numeric_limits<std::int64_t>::max(),
      0.1,
      97.0,
      std::numeric_limits<double>::denorm_min(),
      std::numeric_limits<double>::max(),
      std::numeric_limits<double>::infinity(),
      "",
      "Dr Ünal / ICU ☤",
      value_array{},
      value_object{},
      value_array{1, "two", 3.0, value_array{nullptr}},
      sample_value(),
  };
  for (const auto& r : results) {
    INFO(to_json(r));
    const control_reply reply{99, true, r, errc::ok, {}};
    CHECK(only(reply_of(encode_control_reply(reply))) == reply);
  }
}

TEST_CASE("a negative zero and a NaN result keep their sign and NaN-ness") {
  const auto zero = only(reply_of(encode_control_reply({1, true, -0.0, errc::ok, {}})));
  REQUIRE(zero.result.is_double());
  CHECK(std::signbit(std::get<double>(zero.result.v)));
  const auto nan = only(reply_of(encode_control_reply({1, true, std::nan(""), errc::ok, {}})));
  REQUIRE(nan.result.is_double());
  CHECK(std::isnan(std::get<double>(nan.result.v)));
}

TEST_CASE("a failure reply survives the round trip for every error code") {
  for (auto c = static_cast<int>(errc::malformed); c <= static_cast<int>(errc::internal); ++c) {
    const control_reply r{5, false, value{}, static_cast<errc>(c),
                          "message for " + std::string{to_string(static_cast<errc>(c))}};
    INFO(r.message);
    CHECK(only(reply_of(encode_control_reply(r))) == r);
  }
}

TEST_CASE("an unknown error code in a failure reply becomes internal and keeps the message") {
  for (const std::string code : {"no_such_code", "ok", ""}) {
    INFO(code);
    const auto r = only(reply_of(bytes(map_of(with(failure_fields(), "code", str(code))))));
    CHECK_FALSE(r.ok);
    CHECK(r.code == errc::internal);
    CHECK(r.message == "no patient P-1");
  }
}

TEST_CASE("a successful reply without result has a null result and ignores code and message") {
  const auto r = only(reply_of(bytes(map_of(without(success_fields(), "result")))));
  CHECK(r.ok);
  CHECK(r.result.is_null());
  auto fields = success_fields();
  fields.emplace_back("code", str("internal"));
  fields.emplace_back("message", str("ignored"));
  const auto s = only(reply_of(bytes(map_of(fields))));
  CHECK(s.code == errc::ok);
  CHECK(s.message.empty());
  CHECK(s.result == value{value_object{{"silenced", 2}}});
}

// ---- what goes on the wire ------------------------------------------------------------------

TEST_CASE("encode_control_request and encode_control_reply write the documented keys in order") {
  const auto req = encode_control_request({3, "list-alerts", value_object{{"ward", "3"}}});
  const auto rh = msgpack::unpack(req.data(), req.size());
  CHECK(keys_of(rh.get()) == std::vector<std::string>{"v", "type", "id", "cmd", "args"});
  CHECK(value_at(rh.get(), "v").via.u64 == 1);
  CHECK(value_at(rh.get(), "type").as<std::string>() == "request");
  CHECK(value_at(rh.get(), "cmd").as<std::string>() == "list-alerts");

  const auto ok = encode_control_reply({3, true, 1, errc::ok, {}});
  const auto oh = msgpack::unpack(ok.data(), ok.size());
  CHECK(keys_of(oh.get()) == std::vector<std::string>{"v", "type", "id", "ok", "result"});
  CHECK(value_at(oh.get(), "type").as<std::string>() == "reply");
  CHECK(value_at(oh.get(), "ok").as<bool>());

  const auto bad = encode_control_reply({3, false, 1, errc::invalid_argument, "minutes must be positive"});
  const auto bh = msgpack::unpack(bad.data(), bad.size());
  CHECK(keys_of(bh.get()) == std::vector<std::string>{"v", "type", "id", "ok", "code", "message"});
  CHECK_FALSE(value_at(bh.get(), "ok").as<bool>());
  CHECK(value_at(bh.get(), "code").as<std::string>() == "invalid_argument");
  CHECK(value_at(bh.get(), "message").as<std::string>() == "minutes must be positive");
}

TEST_CASE("values go on the wire as integers, float64 and maps in insertion order") {
  const value result = value_object{{"z", 5}, {"a", -5}, {"m", 5.0}, {"f", 0.5}, {"n", nullptr}, {"t", true}};
  const auto frame = encode_control_reply({1, true, result, errc::ok, {}});
  const auto h = msgpack::unpack(frame.data(), frame.size());
  const auto& r = value_at(h.get(), "result");
  CHECK(keys_of(r) == std::vector<std::string>{"z", "a", "m", "f", "n", "t"});
  CHECK(value_at(r, "z").type == msgpack::type::POSITIVE_INTEGER);
  CHECK(value_at(r, "a").type == msgpack::type::NEGATIVE_INTEGER);
  CHECK(value_at(r, "m").type == msgpack::type::FLOAT64);
  CHECK(value_at(r, "f").type == msgpack::type::FLOAT64);
  CHECK(value_at(r, "n").type == msgpack::type::NIL);
  CHECK(value_at(r, "t").type == msgpack::type::BOOLEAN);
  // 5.0 is written as float64 (0xcb), not as the integer 5.
  CHECK(contains(frame, std::string("\xa1m\xcb\x40\x14\x00\x00\x00\x00\x00\x00", 11)));
}

TEST_CASE("values decode from every MessagePack type") {
  const auto args = map_of({{"nil", nil()},
                            {"yes", boolean(true)},
                            {"small", u64(7)},
                            {"max", u64(static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))},
                            {"neg", i64(-3)},
                            {"min", i64(std::numeric_limits<std::int64_t>::min())},
                            {"f32", f32(0.5f)},
                            {"f64", f64(2.0)},
                            {"s", str("x")},
                            {"a", array_of({i64(1), str("b")})},
                            {"o", map_of({{"k", map_of({})}})}});
  const auto req = only(request_of(bytes(map_of(with(request_fields(), "args", args)))));
  const value expected = value_object{{"nil", nullptr},
                                      {"yes", true},
                                      {"small", 7},
                                      {"max", std::numeric_limits<std::int64_t>::max()},
                                      {"neg", -3},
                                      {"min", std::numeric_limits<std::int64_t>::min()},
                                      {"f32", 0.5},
                                      {"f64", 2.0},
                                      {"s", "x"},
                                      {"a", value_array{1, "b"}},
                                      {"o", value_object{{"k", value_object{}}}}};
  CHECK(req.args == expected);
  CHECK(req.args.get("f64")->is_double());
}

TEST_CASE("an integer above INT64_MAX in a value is malformed naming its path") {
  const auto too_big = u64(static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) + 1);
  const auto r = request_of(bytes(map_of(
      with(request_fields(), "args", map_of({{"a", array_of({i64(1), map_of({{"b", too_big}})})}})))));
  CHECK(r.code() == errc::malformed);
  CHECK(r.error().message() ==
        "field 'args.a[1].b' is an integer above 9223372036854775807, the largest the protocol carries");
  const auto p = reply_of(bytes(map_of(with(success_fields(), "result", too_big))));
  CHECK(p.code() == errc::malformed);
  CHECK(p.error().message() ==
        "field 'result' is an integer above 9223372036854775807, the largest the protocol carries");
}

TEST_CASE("a map key that is not a string inside args or a result is malformed") {
  const auto a = request_of(bytes(map_of(with(request_fields(), "args", int_keyed_map(i64(1))))));
  CHECK(a.code() == errc::malformed);
  CHECK(a.error().message() == "field 'args' entry 0 has a key that is not a string");
  const auto b = request_of(
      bytes(map_of(with(request_fields(), "args", map_of({{"x", i64(1)}, {"y", int_keyed_map(nil())}})))));
  CHECK(b.error().message() == "field 'args.y' entry 0 has a key that is not a string");
  const auto c = reply_of(bytes(map_of(with(success_fields(), "result", array_of({nil(), int_keyed_map(nil())})))));
  CHECK(c.code() == errc::malformed);
  CHECK(c.error().message() == "field 'result[1]' entry 0 has a key that is not a string");
}

TEST_CASE("binary or extension data inside a value is malformed") {
  const auto r = request_of(bytes(map_of(with(request_fields(), "args", map_of({{"blob", bin(3)}})))));
  CHECK(r.code() == errc::malformed);
  CHECK(r.error().message() == "field 'args.blob' holds binary or extension data, which the protocol does not carry");
  const auto ext = reply_of(bytes(map_of(with(success_fields(), "result", raw(std::string("\xd4\x01\x00", 3))))));  // fixext 1
  CHECK(ext.code() == errc::malformed);
  CHECK(ext.error().message() == "field 'result' holds binary or extension data, which the protocol does not carry");
}

// ---- malformed shapes ---------------------------------------------------------------------

TEST_CASE("bytes that are not MessagePack, empty or truncated are malformed") {
  const std::string garbage = "\xc1\xc1";
  CHECK(request_of(garbage).code() == errc::malformed);
  CHECK(request_of(garbage).error().message() == "message is not valid MessagePack");
  CHECK(reply_of(garbage).code() == errc::malformed);
  CHECK(decode_control_request(nullptr, 0).code() == errc::malformed);
  CHECK(decode_control_reply(nullptr, 0).code() == errc::malformed);
  CHECK(request_of(std::string{}).error().message() == "message is empty or truncated (incomplete MessagePack)");
  const auto req = encode_control_request({9, "status", sample_value()});
  for (std::size_t n = 0; n < req.size(); ++n) {
    INFO("truncated to " << n);
    CHECK(request_of(req.substr(0, n)).code() == errc::malformed);
  }
  for (const auto& frame :
       {encode_control_reply({9, true, sample_value(), errc::ok, {}}), encode_control_reply({9, false, {}, errc::internal, "m"})}) {
    for (std::size_t n = 0; n < frame.size(); ++n) {
      INFO("truncated to " << n);
      CHECK(reply_of(frame.substr(0, n)).code() == errc::malformed);
    }
  }
}

TEST_CASE("trailing bytes after a control message are malformed") {
  const auto r = request_of(encode_control_request({1, "status", {}}) + std::string(2, '\0'));
  CHECK(r.code() == errc::malformed);
  CHECK(r.error().message() == "message has 2 trailing bytes after the top-level map");
  CHECK(reply_of(encode_control_reply({1, true, {}, errc::ok, {}}) + "\x01").code() == errc::malformed);
}

TEST_CASE("a control message whose top-level value is not a map is malformed") {
  for (const auto& w : {array_of({str("v"), i64(1)}), str("request"), i64(1), nil()}) {
    const auto r = request_of(bytes(w));
    CHECK(r.code() == errc::malformed);
    CHECK(r.error().message() == "message must be a MessagePack map");
    CHECK(reply_of(bytes(w)).code() == errc::malformed);
  }
}

TEST_CASE("a control message with a missing or non-integer v is malformed and another version is unsupported_version") {
  CHECK(request_of(bytes(map_of(without(request_fields(), "v")))).error().message() ==
        "field 'v' (protocol version) is missing");
  CHECK(reply_of(bytes(map_of(without(success_fields(), "v")))).code() == errc::malformed);
  for (const auto& w : {str("1"), f64(1), nil(), boolean(true)}) {
    const auto r = request_of(bytes(map_of(with(request_fields(), "v", w))));
    CHECK(r.code() == errc::malformed);
    CHECK(r.error().message() == "field 'v' must be an integer");
    CHECK(reply_of(bytes(map_of(with(failure_fields(), "v", w)))).code() == errc::malformed);
  }
  for (const auto& w : {i64(2), i64(0), i64(-1), u64(std::numeric_limits<std::uint64_t>::max())}) {
    const auto r = request_of(bytes(map_of(with(request_fields(), "v", w))));
    CHECK(r.code() == errc::unsupported_version);
    CHECK(contains(r.error().message(), "is not supported (this build speaks version 1)"));
    CHECK(reply_of(bytes(map_of(with(success_fields(), "v", w)))).code() == errc::unsupported_version);
  }
  CHECK(request_of(bytes(map_of(with(request_fields(), "v", i64(2))))).error().message() ==
        "control protocol version 2 is not supported (this build speaks version 1)");
}

TEST_CASE("a control message with a missing, mistyped or unknown type is malformed, including one of the other direction") {
  CHECK(request_of(bytes(map_of(without(request_fields(), "type")))).error().message() == "field 'type' is missing");
  CHECK(request_of(bytes(map_of(with(request_fields(), "type", i64(1))))).error().message() ==
        "field 'type' must be a string");
  for (const auto& frame : {encode_control_reply({1, true, {}, errc::ok, {}}), bytes(map_of(with(request_fields(), "type",
                                                                                         str("REQUEST"))))}) {
    const auto r = request_of(frame);
    CHECK(r.code() == errc::malformed);
    CHECK(r.error().message() == "field 'type' must be \"request\"");
  }
  for (const auto& frame : {encode_control_request({1, "status", {}}), bytes(map_of(with(success_fields(), "type",
                                                                                    str("hello"))))}) {
    const auto r = reply_of(frame);
    CHECK(r.code() == errc::malformed);
    CHECK(r.error().message() == "field 'type' must be \"reply\"");
  }
}

TEST_CASE("a missing or mistyped id, cmd or args of a request is malformed naming the field") {
  struct bad_field {
    std::string name;
    std::optional<writer> value;  // none: the field is left out
    std::string message;
  };
  const std::string non_negative = "field 'id' must be a non-negative integer";
  const std::vector<bad_field> bad = {
      {"id", std::nullopt, "field 'id' is missing"},
      {"id", i64(-1), non_negative},
      {"id", f64(1), non_negative},
      {"id", str("42"), non_negative},
      {"id", nil(), non_negative},
      {"cmd", std::nullopt, "field 'cmd' is missing"},
      {"cmd", i64(1), "field 'cmd' must be a string"},
      {"cmd", nil(), "field 'cmd' must be a string"},
      {"cmd", array_of({str("status")}), "field 'cmd' must be a string"},
      {"args", str("x"), "field 'args' must be a map"},
      {"args", array_of({}), "field 'args' must be a map"},
      {"args", i64(0), "field 'args' must be a map"},
  };
  for (const auto& b : bad) {
    INFO(b.name << ": " << b.message);
    const auto fields = b.value ? with(request_fields(), b.name, *b.value) : without(request_fields(), b.name);
    const auto r = request_of(bytes(map_of(fields)));
    CHECK(r.code() == errc::malformed);
    CHECK(r.error().message() == b.message);
  }
}

TEST_CASE("command names are 1 to 64 bytes of a-z, 0-9, _ and -") {
  for (const std::string& good : std::vector<std::string>{"a", "0", "-", "_", "status", "patient-silence",
                                                          "list_alerts2", std::string(64, 'z')}) {
    INFO(good);
    CHECK(is_control_command(good));
    CHECK(only(request_of(bytes(map_of(with(request_fields(), "cmd", str(good)))))).cmd == good);
  }
  struct bad_name {
    std::string cmd;
    std::string message;
  };
  const std::vector<bad_name> bad = {
      {"", "field 'cmd' is empty"},
      {std::string(65, 'z'), "field 'cmd' is 65 bytes, longer than 64"},
      {"Status", "field 'cmd' has a forbidden byte 0x53 at offset 0 (allowed: a-z, 0-9, _ -)"},
      {"list alerts", "field 'cmd' has a forbidden byte 0x20 at offset 4 (allowed: a-z, 0-9, _ -)"},
      {"a.b", "field 'cmd' has a forbidden byte 0x2e at offset 1 (allowed: a-z, 0-9, _ -)"},
      {"a/b", "field 'cmd' has a forbidden byte 0x2f at offset 1 (allowed: a-z, 0-9, _ -)"},
      {"\xc3\xbc", "field 'cmd' has a forbidden byte 0xc3 at offset 0 (allowed: a-z, 0-9, _ -)"},
      {std::string("ab\0c", 4), "field 'cmd' has a forbidden byte 0x00 at offset 2 (allowed: a-z, 0-9, _ -)"},
  };
  for (const auto& b : bad) {
    INFO(b.message);
    CHECK_FALSE(is_control_command(b.cmd));
    const auto r = request_of(bytes(map_of(with(request_fields(), "cmd", str(b.cmd)))));
    CHECK(r.code() == errc::malformed);
    CHECK(r.error().message() == b.message);
  }
}

TEST_CASE("a missing or mistyped field of a reply is malformed naming the field") {
  struct bad_field {
    entries fields;
    std::string name;
    std::optional<writer> value;
    std::string message;
  };
  const std::vector<bad_field> bad = {
      {success_fields(), "id", std::nullopt, "field 'id' is missing"},
      {failure_fields(), "id", i64(-7), "field 'id' must be a non-negative integer"},
      {success_fields(), "ok", std::nullopt, "field 'ok' is missing"},
      {success_fields(), "ok", i64(1), "field 'ok' must be a boolean"},
      {failure_fields(), "ok", str("false"), "field 'ok' must be a boolean"},
      {failure_fields(), "code", std::nullopt, "field 'code' is missing"},
      {failure_fields(), "code", i64(3), "field 'code' must be a string"},
      {failure_fields(), "message", std::nullopt, "field 'message' is missing"},
      {failure_fields(), "message", nil(), "field 'message' must be a string"},
  };
  for (const auto& b : bad) {
    INFO(b.name << ": " << b.message);
    const auto fields = b.value ? with(b.fields, b.name, *b.value) : without(b.fields, b.name);
    const auto r = reply_of(bytes(map_of(fields)));
    CHECK(r.code() == errc::malformed);
    CHECK(r.error().message() == b.message);
  }
}

TEST_CASE("a control message ignores unknown keys and uses the first occurrence of a repeated key, in values too") {
  auto fields = request_fields();
  fields.emplace_back("future_field", map_of({{"x", array_of({i64(1)})}}));
  fields.emplace_back("cmd", str("other"));
  fields.emplace_back("id", str("not an id"));
  fields.emplace(fields.begin(), "note", nil());
  const auto r = only(request_of(bytes(map_of(fields))));
  CHECK(r.id == 42);
  CHECK(r.cmd == "patient-silence");

  // Inside values, the first occurrence is kept, in small and in big maps.
  const auto small = only(request_of(
      bytes(map_of(with(request_fields(), "args", map_of({{"a", i64(1)}, {"b", i64(2)}, {"a", i64(3)}}))))));
  CHECK(small.args == value{value_object{{"a", 1}, {"b", 2}}});
  entries big;
  for (int i = 0; i < 40; ++i) big.emplace_back("k" + std::to_string(i % 20), i64(i));
  const auto large = only(request_of(bytes(map_of(with(request_fields(), "args", map_of(big))))));
  REQUIRE(std::get<value_object>(large.args.v).size() == 20);
  for (int i = 0; i < 20; ++i) CHECK(large.args.integer("k" + std::to_string(i)) == i);
  // A repeated key's value must still be valid.
  const auto later_bad = request_of(bytes(
      map_of(with(request_fields(), "args", map_of({{"a", i64(1)}, {"a", u64(std::numeric_limits<std::uint64_t>::max())}})))));
  CHECK(later_bad.code() == errc::malformed);
}

// ---- limits -------------------------------------------------------------------------------

TEST_CASE("a string of 1 MiB is accepted and a longer one is too_large") {
  control_request req{1, "note", value_object{{"text", std::string(control_max_string_bytes, 's')}}};
  CHECK(only(request_of(encode_control_request(req))) == req);
  req.args.set("text", std::string(control_max_string_bytes + 1, 's'));
  const auto r = request_of(encode_control_request(req));
  CHECK(r.code() == errc::too_large);
  CHECK(r.error().message() == "message has a string longer than 1048576 bytes");
  CHECK(reply_of(encode_control_reply({1, false, {}, errc::internal, std::string(control_max_string_bytes + 1, 'm')}))
            .code() == errc::too_large);
}

TEST_CASE("an array of 1,000,000 entries is accepted and a longer one is too_large") {
  const auto with_nils = [](std::uint32_t n) {
    msgpack::sbuffer buf;
    packer pk(&buf);
    pk.pack_array(n);
    for (std::uint32_t i = 0; i < n; ++i) pk.pack_nil();
    return bytes(map_of(with(success_fields(), "result", raw(std::string(buf.data(), buf.size())))));
  };
  const auto ok = only(reply_of(with_nils(1'000'000)));
  REQUIRE(ok.result.is_array());
  CHECK(std::get<value_array>(ok.result.v).size() == 1'000'000);
  const auto r = reply_of(with_nils(1'000'001));
  CHECK(r.code() == errc::too_large);
  CHECK(r.error().message() == "message has an array longer than 1000000 entries");
}

TEST_CASE("a map of 100,000 entries is accepted and a bigger one is too_large") {
  value args = value_object{};
  for (int i = 0; i < 100'000; ++i) std::get<value_object>(args.v).emplace_back("k" + std::to_string(i), i);
  const control_request req{1, "bulk", args};
  CHECK(only(request_of(encode_control_request(req))) == req);
  args.set("one_more", 1);
  const auto r = request_of(encode_control_request({1, "bulk", args}));
  CHECK(r.code() == errc::too_large);
  CHECK(r.error().message() == "message has a map with more than 100000 entries");
}

TEST_CASE("containers nested 16 deep are accepted and deeper ones are too_large") {
  // The message's map is the first level, args the second.
  CHECK(request_of(bytes(map_of(with(request_fields(), "args", map_of({{"x", nested(14)}}))))).has_value());
  const auto r = request_of(bytes(map_of(with(request_fields(), "args", map_of({{"x", nested(15)}})))));
  CHECK(r.code() == errc::too_large);
  CHECK(r.error().message() == "message nests maps and arrays deeper than 16 levels");
  CHECK(reply_of(bytes(map_of(with(success_fields(), "result", nested(15))))).has_value());
  CHECK(reply_of(bytes(map_of(with(success_fields(), "result", nested(100'000))))).code() == errc::too_large);
}

TEST_CASE("container headers claiming more entries than the message holds are malformed, or too_large over a limit") {
  std::string headers;  // 16 nested arrays claiming a million entries each
  for (int i = 0; i < 16; ++i) headers += std::string("\xdd\x00\x0f\x42\x40", 5);
  const auto r = request_of(headers);
  CHECK(r.code() == errc::malformed);
  CHECK(r.error().message() == "message is empty or truncated (incomplete MessagePack)");
  const auto in_result =
      reply_of(bytes(map_of(with(success_fields(), "result", raw(std::string("\xdf\x00\x01\x86\xa0", 5))))));  // a map of 100000
  CHECK(in_result.code() == errc::malformed);
  // Over a limit is too_large whatever follows.
  CHECK(request_of(std::string("\xdd\xff\xff\xff\xff", 5)).code() == errc::too_large);
  CHECK(request_of(std::string("\xdf\xff\xff\xff\xff", 5)).code() == errc::too_large);
  // A string's length is checked once its bytes are there: without them it is truncated.
  CHECK(request_of(std::string("\xdb\xff\xff\xff\xff", 5)).code() == errc::malformed);
}

TEST_CASE("short binary data in a control string field is malformed and long binary data is too_large") {
  const auto r = request_of(bytes(map_of(with(request_fields(), "cmd", bin(64)))));
  CHECK(r.code() == errc::malformed);
  CHECK(r.error().message() == "field 'cmd' must be a string");
  const auto big = request_of(bytes(map_of(with(request_fields(), "cmd", bin(65)))));
  CHECK(big.code() == errc::too_large);
  CHECK(contains(big.error().message(), "binary or extension data longer than 64 bytes"));
}

// ---- peek_control_request_id ----------------------------------------------------------------------

TEST_CASE("peek_control_request_id reads the id of valid and of refused requests") {
  CHECK(peek(encode_control_request({42, "status", sample_value()})) == 42u);
  CHECK(peek(encode_control_request({std::numeric_limits<std::uint64_t>::max(), "x", {}})) ==
        std::numeric_limits<std::uint64_t>::max());
  const std::vector<std::string> refused = {
      bytes(map_of(with(request_fields(), "v", i64(2)))),
      bytes(map_of(with(request_fields(), "cmd", str("Bad Name")))),
      bytes(map_of(without(request_fields(), "type"))),
      bytes(map_of(request_fields())) + "\x01",
      bytes(map_of(with(request_fields(), "args", map_of({{"x", nested(40)}})))),
      bytes(map_of(with(request_fields(), "args", map_of({{"s", str(std::string(control_max_string_bytes + 1, 's'))}})))),
      bytes(map_of(with(request_fields(), "args", int_keyed_map(nil())))),
      // id after a too-deep value and after a key that is itself a map
      bytes(map_of({{"x", nested(100)}, {"id", i64(42)}})),
      bytes(map_of({{"x", map_of({{"id", i64(7)}})}, {"id", i64(42)}})),
      [] {
        msgpack::sbuffer buf;
        packer pk(&buf);
        pk.pack_map(2);
        pk.pack_map(1);
        put_str(pk, "id");
        pk.pack_int64(7);
        pk.pack_nil();
        put_str(pk, "id");
        pk.pack_int64(42);
        return std::string(buf.data(), buf.size());
      }(),
      // the id comes before the frame breaks
      bytes(map_of({{"id", i64(42)}, {"v", raw("\xc1")}})),
      encode_control_request({42, "status", sample_value()}).substr(0, 24),  // cut inside "cmd"
      // repeated id: the first counts
      bytes(map_of({{"id", i64(42)}, {"id", str("x")}})),
  };
  for (std::size_t i = 0; i < refused.size(); ++i) {
    INFO("frame " << i);
    CHECK(peek(refused[i]) == 42u);
  }
}

TEST_CASE("peek_control_request_id finds nothing without a non-negative integer id at the top level") {
  CHECK_FALSE(peek_control_request_id(nullptr, 0).has_value());
  CHECK_FALSE(peek(std::string{}).has_value());
  CHECK_FALSE(peek("\xc1").has_value());
  CHECK_FALSE(peek(bytes(array_of({str("id"), i64(42)}))).has_value());
  CHECK_FALSE(peek(bytes(i64(42))).has_value());
  CHECK_FALSE(peek(bytes(map_of(without(request_fields(), "id")))).has_value());
  CHECK_FALSE(peek(bytes(map_of({{"x", map_of({{"id", i64(7)}})}}))).has_value());
  CHECK_FALSE(peek(bytes(map_of({{"idx", i64(7)}, {"i", i64(8)}}))).has_value());
  for (const auto& w : {i64(-1), str("42"), f64(42), nil(), boolean(true), array_of({i64(42)}), map_of({})}) {
    CHECK_FALSE(peek(bytes(map_of(with(request_fields(), "id", w)))).has_value());
  }
  CHECK_FALSE(peek(bytes(map_of({{"id", str("x")}, {"id", i64(42)}}))).has_value());
  // The frame breaks before the id.
  CHECK_FALSE(peek(bytes(map_of({{"v", raw("\xc1")}, {"id", i64(42)}}))).has_value());
  CHECK_FALSE(peek(encode_control_request({42, "status", {}}).substr(0, 10)).has_value());
}

TEST_CASE("control decoding and peek_control_request_id never throw on random corruptions of any message") {
  const std::vector<std::string> frames = {
      encode_control_request({42, "patient-silence", sample_value()}),
      encode_control_request({0, "status", {}}),
      encode_control_reply({42, true, sample_value(), errc::ok, {}}),
      encode_control_reply({42, false, {}, errc::not_found, "no patient P-100234"}),
  };
  std::uint64_t state = 0x9e3779b97f4a7c15u;
  auto next = [&] {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  std::size_t decoded = 0, refused = 0;
  for (int round = 0; round < 5'000; ++round) {
    for (const auto& frame : frames) {
      auto mutated = frame;
      const auto flips = 1 + next() % 4;
      for (std::uint64_t f = 0; f < flips; ++f)
        mutated[next() % mutated.size()] = static_cast<char>(next() & 0xff);
      if (next() % 8 == 0) mutated.resize(next() % mutated.size());
      if (next() % 16 == 0) mutated.insert(next() % (mutated.size() + 1), 1, static_cast<char>(next() & 0xff));
      for (int direction = 0; direction < 2; ++direction) {
        status st;
        bool ok = false;
        if (direction == 0) {
          REQUIRE_NOTHROW(ok = request_of(mutated).has_value());
          st = request_of(mutated).error();
        } else {
          REQUIRE_NOTHROW(ok = reply_of(mutated).has_value());
          st = reply_of(mutated).error();
        }
        if (ok) {
          ++decoded;
        } else {
          ++refused;
          CHECK(st.code() != errc::ok);
          CHECK_FALSE(st.message().empty());
        }
      }
      REQUIRE_NOTHROW(peek(mutated));
    }
  }
  // The corruptions must exercise both outcomes, or the loop tests nothing.
  CHECK(decoded > 0);
  CHECK(refused > 0);
}

// ---- JSON ---------------------------------------------------------------------------------

TEST_CASE("to_json escapes quotes, backslashes and control characters and passes UTF-8 through") {
  CHECK(to_json("plain") == "\"plain\"");
  CHECK(to_json("a\"b\\c/d") == R"("a\"b\\c/d")");
  CHECK(to_json(std::string("\n\t\r\b\f\x01\x1f\x7f", 8)) == R"("\u000a\u0009\u000d\u0008\u000c\u0001\u001f)"
                                                                 "\x7f\"");
  CHECK(to_json(std::string("nul\0byte", 8)) == R"("nul\u0000byte")");
  CHECK(to_json("Ünal ☤ €5 😀") == "\"Ünal ☤ €5 😀\"");
  CHECK(to_json(value_object{{"k\"ey\n", "v"}}) == R"({"k\"ey\u000a":"v"})");
}

TEST_CASE("to_json replaces each byte of invalid UTF-8 with U+FFFD") {
  CHECK(to_json("\xff") == R"("\ufffd")");
  CHECK(to_json("a\x80z") == R"("a\ufffdz")");
  CHECK(to_json("\xc0\xaf") == R"("\ufffd\ufffd")");                       // overlong '/'
  CHECK(to_json("\xed\xa0\x80") == R"("\ufffd\ufffd\ufffd")");             // a surrogate
  CHECK(to_json("\xf4\x90\x80\x80") == R"("\ufffd\ufffd\ufffd\ufffd")");  // above U+10FFFF
  CHECK(to_json("\xe2\x82") == R"("\ufffd\ufffd")");                       // truncated
  CHECK(to_json("\xe2\x82" "A\xe2\x82\xac") == "\"\\ufffd\\ufffdA\xe2\x82\xac\"");
}

TEST_CASE("to_json writes integers exactly and doubles in their shortest round-trip form") {
  CHECK(to_json(0) == "0");
  CHECK(to_json(-17) == "-17");
  CHECK(to_json(std::numeric_limits<std::int64_t>::max()) == "9223372036854775807");
  CHECK(to_json(std::numeric_limits<std::int64_t>::min()) == "-9223372036854775808");
  CHECK(to_json(0.1) == "0.1");
  CHECK(to_json(5.0) == "5.0");
  CHECK(to_json(-0.0) == "-0.0");
  CHECK(to_json(0.0) == "0.0");
  CHECK(to_json(-2.5) == "-2.5");
  CHECK(to_json(1e100) == "1e+100");
  CHECK(to_json(1.5e-7) == "1.5e-07");
  CHECK(to_json(9007199254740993.0) == "9007199254740992.0");
  CHECK(to_json(std::numeric_limits<double>::max()) == "1.7976931348623157e+308");
  CHECK(to_json(std::numeric_limits<double>::denorm_min()) == "5e-324");
  for (const double d : {0.1, 1.0 / 3.0, 2.0 / 3.0, 123456.789, 1e21, 1e-300, 6.02214076e23, 97.25, -1e-5}) {
    const auto text = to_json(d);
    INFO(text);
    double back = 0;
    const auto r = std::from_chars(text.data(), text.data() + text.size(), back);
    CHECK(r.ec == std::errc{});
    CHECK(r.ptr == text.data() + text.size());
    CHECK(back == d);
  }
}

TEST_CASE("to_json writes NaN and infinities as null") {
  CHECK(to_json(std::numeric_limits<double>::quiet_NaN()) == "null");
  CHECK(to_json(std::numeric_limits<double>::infinity()) == "null");
  CHECK(to_json(-std::numeric_limits<double>::infinity()) == "null");
  CHECK(to_json(value_array{1.0, std::nan(""), 2}) == "[1.0,null,2]");
}

TEST_CASE("to_json compact output has no whitespace and keeps insertion order") {
  CHECK(to_json(value{}) == "null");
  CHECK(to_json(true) == "true");
  CHECK(to_json(false) == "false");
  CHECK(to_json(value_array{}) == "[]");
  CHECK(to_json(value_object{}) == "{}");
  const value v = value_object{{"z", 1}, {"a", value_array{true, nullptr, "s"}}, {"m", value_object{}},
                               {"e", value_array{}}};
  CHECK(to_json(v) == R"({"z":1,"a":[true,null,"s"],"m":{},"e":[]})");
}

TEST_CASE("to_json pretty output indents by two spaces, one member per line") {
  const value v = value_object{
      {"node", "alertd-1"},
      {"alerts", value_array{value_object{{"id", "d/oxi-1/spo2_low/3"}, {"priority", "high"}, {"value", 84.0}},
                             value_object{}}},
      {"silenced", value_array{}},
      {"uptime_s", 3600},
      {"degraded", false},
      {"extra", nullptr},
  };
  const std::string expected = R"({
  "node": "alertd-1",
  "alerts": [
    {
      "id": "d/oxi-1/spo2_low/3",
      "priority": "high",
      "value": 84.0
    },
    {}
  ],
  "silenced": [],
  "uptime_s": 3600,
  "degraded": false,
  "extra": null
})";
  CHECK(to_json(v, true) == expected);
  CHECK(to_json(value_array{1, value_array{2}}, true) == "[\n  1,\n  [\n    2\n  ]\n]");
  CHECK(to_json(value_array{}, true) == "[]");
  CHECK(to_json(value_object{}, true) == "{}");
  CHECK(to_json("scalar", true) == "\"scalar\"");
}

// ---- value --------------------------------------------------------------------------------

TEST_CASE("value constructors pick the matching kind") {
  CHECK(value{}.is_null());
  CHECK(value{nullptr}.is_null());
  CHECK(value{std::monostate{}}.is_null());
  CHECK(value{true}.is_bool());
  CHECK(value{5}.is_int());
  CHECK(value{5u}.is_int());
  CHECK(value{std::int8_t{-3}} == value{-3});
  CHECK(value{std::uint16_t{65535}} == value{65535});
  CHECK(value{std::uint64_t{7}} == value{7});
  CHECK(value{static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())} ==
        value{std::numeric_limits<std::int64_t>::max()});
  CHECK(value{2.5}.is_double());
  CHECK(value{2.5f} == value{2.5});
  CHECK(value{"x"}.is_string());
  CHECK(value{std::string{"x"}} == value{"x"});
  CHECK(value{std::string_view{"x"}} == value{"x"});
  CHECK(value{value_array{}}.is_array());
  CHECK(value{value_object{}}.is_object());
  // Integers and doubles are distinct, and so are an empty array and an empty object.
  CHECK(value{1} != value{1.0});
  CHECK(value{value_array{}} != value{value_object{}});
  CHECK(value{false} != value{0});
  CHECK(value{nullptr} != value{0});
}

TEST_CASE("an unsigned integer above INT64_MAX cannot become a value") {
  CHECK_THROWS_AS(value{std::numeric_limits<std::uint64_t>::max()}, std::out_of_range);
  CHECK_THROWS_AS(value{static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) + 1}, std::out_of_range);
}

TEST_CASE("value::set replaces or appends and turns null into an object") {
  value v;
  auto& minutes = v.set("minutes", 30);
  CHECK(minutes == value{30});
  REQUIRE(v.is_object());
  v.set("patient", "P-1");
  v.set("minutes", 45);  // replaced in place, order kept
  CHECK(v == value{value_object{{"minutes", 45}, {"patient", "P-1"}}});
  auto& sub = v.set("window", value_object{});
  sub.set("from", 1);
  sub.set("to", 2);
  CHECK(to_json(v) == R"({"minutes":45,"patient":"P-1","window":{"from":1,"to":2}})");
  // With a repeated key (built by hand), the first occurrence is replaced.
  value dup = value_object{{"a", 1}, {"a", 2}};
  dup.set("a", 3);
  CHECK(dup == value{value_object{{"a", 3}, {"a", 2}}});
}

TEST_CASE("value::get, str, integer and boolean read members of the right kind only") {
  const value v = value_object{{"s", "text"}, {"i", 7}, {"d", 7.0}, {"b", true}, {"n", nullptr}, {"s", "second"}};
  REQUIRE(v.get("s") != nullptr);
  CHECK(*v.get("s") == value{"text"});
  CHECK(v.get("missing") == nullptr);
  CHECK(v.get("n") != nullptr);
  CHECK(v.get("n")->is_null());
  CHECK(v.str("s") == std::optional<std::string>{"text"});
  CHECK_FALSE(v.str("i").has_value());
  CHECK_FALSE(v.str("missing").has_value());
  CHECK(v.integer("i") == std::optional<std::int64_t>{7});
  CHECK_FALSE(v.integer("d").has_value());
  CHECK_FALSE(v.integer("s").has_value());
  CHECK(v.boolean("b") == std::optional<bool>{true});
  CHECK_FALSE(v.boolean("i").has_value());
  // Not an object: nothing to find.
  CHECK(value{5}.get("s") == nullptr);
  CHECK(value{value_array{"s"}}.get("s") == nullptr);
  CHECK_FALSE(value{}.str("s").has_value());
  CHECK_FALSE(value{}.integer("i").has_value());
}

TEST_CASE("value::push appends and turns null into an array") {
  value v;
  v.push(1);
  v.push("two");
  v.push(value_array{3.0});
  CHECK(v == value{value_array{1, "two", value_array{3.0}}});
}

TEST_CASE("value::set and value::push refuse values of another kind") {
  value i = 5;
  CHECK_THROWS_AS(i.set("k", 1), std::logic_error);
  CHECK_THROWS_AS(i.push(1), std::logic_error);
  value a = value_array{};
  CHECK_THROWS_AS(a.set("k", 1), std::logic_error);
  value o = value_object{};
  CHECK_THROWS_AS(o.push(1), std::logic_error);
  CHECK(i == value{5});
}
