#include "cluster/ingest_wire.hpp"

#include <catch2/catch.hpp>
#include <msgpack.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "tests/support/msgpack_writer.hpp"

using namespace alert;
using namespace alert::wire;

namespace {

using namespace alert::test::mp;

entries good_reading(std::uint64_t seq = 7) {
  return {{"device", str("oxi-1")},
          {"metric", str("spo2")},
          {"value", f64(93.5)},
          {"ts", i64(1'700'000'000'000)},
          {"seq", u64(seq)}};
}

entries request_fields(std::vector<writer> readings) {
  return {{"v", i64(1)},
          {"type", str("telemetry")},
          {"batch", str("b-1")},
          {"readings", array_of(std::move(readings))}};
}

std::string request(std::vector<writer> readings) { return bytes(map_of(request_fields(std::move(readings)))); }

std::string request_with(const std::string& key, writer w) {
  return bytes(map_of(with(request_fields({map_of(good_reading())}), key, std::move(w))));
}

std::string request_without(const std::string& key) {
  return bytes(map_of(without(request_fields({map_of(good_reading())}), key)));
}

/// A request of one reading built from `reading`.
std::string one_reading(entries reading) { return request({map_of(std::move(reading))}); }

ingest_request decode(const std::string& s, const decode_limits& limits = {}) {
  return decode_request(s.data(), s.size(), limits);
}

result<ingest_reply> reply(const std::string& s) { return decode_reply(s.data(), s.size()); }

bool holds_batch(const batch_id& b, const std::string& s) {
  return std::holds_alternative<std::string>(b) && std::get<std::string>(b) == s;
}

bool unread(const batch_id& b) { return std::holds_alternative<std::monostate>(b); }

/// The single rejection of a one-reading request.
rejection only_rejection(const std::string& frame) {
  auto r = decode(frame);
  REQUIRE(r.error.is_ok());
  REQUIRE(r.readings.empty());
  REQUIRE(r.rejected.size() == 1);
  return r.rejected.front();
}

/// The single accepted reading of a one-reading request.
reading_input only_reading(const std::string& frame) {
  auto r = decode(frame);
  REQUIRE(r.error.is_ok());
  REQUIRE(r.rejected.empty());
  REQUIRE(r.readings.size() == 1);
  REQUIRE(r.indexes == std::vector<std::size_t>{0});
  return r.readings.front();
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

reading_input full_input() {
  reading_input in;
  in.device = "oxi-1";
  in.metric = "temperature";
  in.value = 98.6;
  in.ts = 1'700'000'000'123;
  in.seq = 42;
  in.patient = "P-1";
  in.unit = "[degF]";
  return in;
}

void check_same(const reading_input& a, const reading_input& b) {
  CHECK(a.device == b.device);
  CHECK(a.metric == b.metric);
  CHECK(a.value == b.value);
  CHECK(a.ts == b.ts);
  CHECK(a.seq == b.seq);
  CHECK(a.patient == b.patient);
  CHECK(a.unit == b.unit);
}

}  // namespace

// ---- whole-request errors ---------------------------------------------------------------

TEST_CASE("bytes that are not MessagePack are malformed") {
  const std::string garbage = "\xc1\xc1\xc1";  // 0xc1 is never used by MessagePack
  auto r = decode(garbage);
  CHECK(r.error.code() == errc::malformed);
  CHECK(unread(r.batch));
  CHECK(r.readings.empty());
  CHECK(r.rejected.empty());
}

TEST_CASE("an empty frame is malformed") {
  CHECK(decode_request(nullptr, 0).error.code() == errc::malformed);
  CHECK(decode(std::string{}).error.code() == errc::malformed);
}

TEST_CASE("every truncation of a valid request is malformed") {
  const auto frame = request({map_of(good_reading()), map_of(with(good_reading(8), "patient", str("P-1")))});
  REQUIRE(decode(frame).error.is_ok());
  for (std::size_t n = 1; n < frame.size(); ++n) {
    INFO("prefix of " << n << " bytes");
    auto r = decode(frame.substr(0, n));
    CHECK(r.error.code() == errc::malformed);
    CHECK(r.readings.empty());
  }
}

TEST_CASE("trailing bytes after the request are malformed and the batch id is echoed") {
  auto r = decode(request({map_of(good_reading())}) + std::string(1, '\0'));
  CHECK(r.error.code() == errc::malformed);
  CHECK(r.error.message().find("trailing") != std::string::npos);
  CHECK(holds_batch(r.batch, "b-1"));
  CHECK(r.readings.empty());
}

TEST_CASE("a top-level value that is not a map is malformed") {
  for (const auto& w : {array_of({map_of(good_reading())}), str("telemetry"), i64(1), nil()}) {
    auto r = decode(bytes(w));
    CHECK(r.error.code() == errc::malformed);
    CHECK(r.error.message().find("map") != std::string::npos);
  }
}

TEST_CASE("a request without v is malformed") {
  auto r = decode(request_without("v"));
  CHECK(r.error.code() == errc::malformed);
  CHECK(r.error.message().find("'v'") != std::string::npos);
  CHECK(holds_batch(r.batch, "b-1"));
}

TEST_CASE("a v that is not an integer is malformed") {
  for (const auto& w : {str("1"), f64(1.0), nil(), boolean(true)}) {
    auto r = decode(request_with("v", w));
    CHECK(r.error.code() == errc::malformed);
    CHECK(r.error.message().find("'v'") != std::string::npos);
    CHECK(holds_batch(r.batch, "b-1"));
  }
}

TEST_CASE("a version other than 1 is unsupported and the batch id is echoed") {
  auto r = decode(request_with("v", i64(2)));
  CHECK(r.error.code() == errc::unsupported_version);
  CHECK(r.error.message().find('2') != std::string::npos);
  CHECK(holds_batch(r.batch, "b-1"));
  CHECK(r.readings.empty());
  CHECK(decode(request_with("v", i64(0))).error.code() == errc::unsupported_version);
  CHECK(decode(request_with("v", i64(-1))).error.code() == errc::unsupported_version);
  CHECK(decode(request_with("v", u64(std::numeric_limits<std::uint64_t>::max()))).error.code() ==
        errc::unsupported_version);
}

TEST_CASE("the version is judged before the rest of the request") {
  auto frame = bytes(map_of({{"v", i64(2)}, {"batch", i64(9)}, {"type", str("whatever")}}));
  auto r = decode(frame);
  CHECK(r.error.code() == errc::unsupported_version);
  REQUIRE(std::holds_alternative<std::int64_t>(r.batch));
  CHECK(std::get<std::int64_t>(r.batch) == 9);
}

TEST_CASE("a type other than the string telemetry is malformed") {
  for (const auto& w : {str("ack"), str("Telemetry"), str(""), i64(1), nil()}) {
    auto r = decode(request_with("type", w));
    CHECK(r.error.code() == errc::malformed);
    CHECK(r.error.message().find("'type'") != std::string::npos);
    CHECK(holds_batch(r.batch, "b-1"));
  }
  auto r = decode(request_without("type"));
  CHECK(r.error.code() == errc::malformed);
  CHECK(r.error.message().find("'type'") != std::string::npos);
}

TEST_CASE("a request without a batch id is malformed") {
  auto r = decode(request_without("batch"));
  CHECK(r.error.code() == errc::malformed);
  CHECK(r.error.message().find("'batch'") != std::string::npos);
  CHECK(unread(r.batch));
}

TEST_CASE("a batch id that is neither a string nor an integer is malformed") {
  for (const auto& w : {f64(42.0), f32(1.5f), nil(), boolean(false), array_of({i64(1)}), bin(2)}) {
    auto r = decode(request_with("batch", w));
    CHECK(r.error.code() == errc::malformed);
    CHECK(r.error.message().find("'batch'") != std::string::npos);
    CHECK(unread(r.batch));
  }
}

TEST_CASE("a request without readings is malformed") {
  auto r = decode(request_without("readings"));
  CHECK(r.error.code() == errc::malformed);
  CHECK(r.error.message().find("'readings'") != std::string::npos);
  CHECK(holds_batch(r.batch, "b-1"));
}

TEST_CASE("readings that are not an array are malformed") {
  for (const auto& w : {map_of(good_reading()), str("x"), nil(), i64(3)}) {
    auto r = decode(request_with("readings", w));
    CHECK(r.error.code() == errc::malformed);
    CHECK(r.error.message().find("'readings'") != std::string::npos);
    CHECK(holds_batch(r.batch, "b-1"));
  }
}

TEST_CASE("an empty readings array is a valid request") {
  auto r = decode(request({}));
  CHECK(r.error.is_ok());
  CHECK(holds_batch(r.batch, "b-1"));
  CHECK(r.readings.empty());
  CHECK(r.rejected.empty());
}

TEST_CASE("more readings than max_readings are too_large with the batch id echoed") {
  decode_limits limits;
  limits.max_readings = 3;
  std::vector<writer> readings;
  for (std::uint64_t i = 0; i < 3; ++i) readings.push_back(map_of(good_reading(i)));
  auto at_limit = decode(request(readings), limits);
  CHECK(at_limit.error.is_ok());
  CHECK(at_limit.readings.size() == 3);

  readings.push_back(map_of(good_reading(3)));
  auto over = decode(request(readings), limits);
  CHECK(over.error.code() == errc::too_large);
  CHECK(holds_batch(over.batch, "b-1"));
  CHECK(over.readings.empty());
  CHECK(over.rejected.empty());

  for (std::uint64_t i = 4; i < 50; ++i) readings.push_back(map_of(good_reading(i)));
  CHECK(decode(request(readings), limits).error.code() == errc::too_large);
}

TEST_CASE("an array header claiming billions of entries is too_large without allocating them") {
  // {"v":1,"type":"telemetry","batch":"b","readings": array32 of 0xffffffff, no elements}
  auto head = bytes(map_of({{"v", i64(1)}, {"type", str("telemetry")}, {"batch", str("b")}}));
  head[0] = '\x84';  // four entries: the fourth is written by hand below
  head += bytes(str("readings"));
  head += std::string("\xdd\xff\xff\xff\xff", 5);
  auto r = decode(head);
  CHECK(r.error.code() == errc::too_large);
}

TEST_CASE("containers nested deeper than max_depth are too_large and never crash") {
  const decode_limits limits;  // max_depth 6; the top-level map is level 1
  auto nested = [](std::size_t levels) {
    std::string s;
    for (std::size_t i = 0; i < levels; ++i) s += '\x91';  // array of one element
    s += '\xc0';
    return s;
  };
  auto frame = [&](std::size_t levels) {
    auto fields = request_fields({map_of(good_reading())});
    auto head = bytes(map_of(fields));
    head[0] = static_cast<char>(0x80 | (fields.size() + 1));
    return head + bytes(str("extra")) + nested(levels);
  };
  CHECK(decode(frame(5), limits).error.is_ok());
  CHECK(decode(frame(6), limits).error.code() == errc::too_large);
  CHECK(decode(frame(100'000), limits).error.code() == errc::too_large);

  std::string unterminated(200'000, '\x91');
  auto r = decode(unterminated);
  CHECK((r.error.code() == errc::too_large || r.error.code() == errc::malformed));
  std::string maps;
  for (int i = 0; i < 100'000; ++i) maps += std::string("\x81\xa1k", 3);
  maps += '\xc0';
  CHECK(decode(maps).error.code() == errc::too_large);
}

TEST_CASE("a string longer than max_string_bytes is too_large") {
  const decode_limits limits;
  CHECK(only_reading(one_reading(with(good_reading(), "device", str(std::string(limits.max_string_bytes, 'd')))))
            .device.size() == limits.max_string_bytes);
  auto r = decode(one_reading(with(good_reading(), "device", str(std::string(limits.max_string_bytes + 1, 'd')))));
  CHECK(r.error.code() == errc::too_large);
  CHECK(r.readings.empty());
  CHECK(decode(request_with("batch", str(std::string(100'000, 'b')))).error.code() == errc::too_large);
  CHECK(decode(request_with(std::string(5000, 'k'), i64(1))).error.code() == errc::too_large);
}

TEST_CASE("a map with more entries than max_map_entries is too_large") {
  decode_limits limits;
  limits.max_map_entries = 8;
  auto reading = good_reading();
  for (int i = 0; i < 3; ++i) reading = with(reading, "x" + std::to_string(i), nil());
  CHECK(decode(one_reading(reading), limits).error.is_ok());  // 8 entries
  reading = with(reading, "x3", nil());
  CHECK(decode(one_reading(reading), limits).error.code() == errc::too_large);
}

TEST_CASE("short binary or extension data in a field is wrong_type and long data is too_large") {
  auto rej = only_rejection(one_reading(with(good_reading(), "device", bin(3))));
  CHECK(rej.code == errc::wrong_type);
  rej = only_rejection(one_reading(with(good_reading(), "ts", timestamp_ext())));
  CHECK(rej.code == errc::wrong_type);
  CHECK(rej.message.find("'ts'") != std::string::npos);
  CHECK(decode(one_reading(with(good_reading(), "device", bin(10'000)))).error.code() == errc::too_large);
}

// ---- per-reading checks -----------------------------------------------------------------

TEST_CASE("a reading that is not a map is rejected as wrong_type") {
  for (const auto& w : {array_of({str("oxi-1")}), i64(5), str("reading"), nil()}) {
    auto rej = only_rejection(request({w}));
    CHECK(rej.index == 0);
    CHECK(rej.code == errc::wrong_type);
    CHECK(rej.message.find("map") != std::string::npos);
  }
}

TEST_CASE("each missing required field is reported as missing_field naming it") {
  for (const std::string field : {"device", "metric", "value", "ts", "seq"}) {
    INFO("field " << field);
    auto rej = only_rejection(one_reading(without(good_reading(), field)));
    CHECK(rej.index == 0);
    CHECK(rej.code == errc::missing_field);
    CHECK(rej.message == "field '" + field + "' is missing");
  }
}

TEST_CASE("each field of the wrong type is reported as wrong_type naming it") {
  const std::vector<std::pair<std::string, writer>> cases = {
      {"device", i64(1)},
      {"device", nil()},
      {"device", array_of({})},
      {"metric", f64(1.0)},
      {"metric", boolean(true)},
      {"value", str("93")},
      {"value", boolean(true)},
      {"value", nil()},
      {"ts", f64(1.7e12)},
      {"ts", str("2024-01-01T00:00:00Z")},
      {"ts", u64(static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) + 1)},
      {"seq", f64(7.0)},
      {"seq", str("7")},
      {"seq", nil()},
      {"patient", i64(1)},
      {"patient", map_of({})},
      {"unit", boolean(false)},
      {"unit", f32(1.0f)},
  };
  for (const auto& [field, w] : cases) {
    INFO("field " << field);
    auto rej = only_rejection(one_reading(with(good_reading(), field, w)));
    CHECK(rej.code == errc::wrong_type);
    CHECK(rej.message.rfind("field '" + field + "' must be ", 0) == 0);
  }
}

TEST_CASE("the ts message says the field is an integer of milliseconds since the epoch") {
  auto rej = only_rejection(one_reading(with(good_reading(), "ts", f64(1.5))));
  CHECK(rej.message.find("integer") != std::string::npos);
  CHECK(rej.message.find("Unix epoch") != std::string::npos);
}

TEST_CASE("a negative seq is wrong_type") {
  auto rej = only_rejection(one_reading(with(good_reading(), "seq", i64(-1))));
  CHECK(rej.code == errc::wrong_type);
  CHECK(rej.message.find("'seq'") != std::string::npos);
  CHECK(rej.message.find("non-negative") != std::string::npos);
}

TEST_CASE("a seq written in a signed integer format but not negative is accepted") {
  auto frame = one_reading(with(good_reading(), "seq", [](packer& pk) { pk.pack_fix_int64(5); }));
  CHECK(only_reading(frame).seq == 5);
  CHECK(only_reading(one_reading(with(good_reading(), "seq", u64(std::numeric_limits<std::uint64_t>::max()))))
            .seq == std::numeric_limits<std::uint64_t>::max());
}

TEST_CASE("ts accepts any 64-bit signed integer and leaves range checks to make_reading") {
  CHECK(only_reading(one_reading(with(good_reading(), "ts", i64(-1)))).ts == -1);
  CHECK(only_reading(one_reading(with(good_reading(), "ts", i64(std::numeric_limits<std::int64_t>::min())))).ts ==
        std::numeric_limits<std::int64_t>::min());
  CHECK(only_reading(one_reading(with(good_reading(), "ts", i64(std::numeric_limits<std::int64_t>::max())))).ts ==
        std::numeric_limits<std::int64_t>::max());
  CHECK(only_reading(one_reading(with(good_reading(), "ts", i64(0)))).ts == 0);
}

TEST_CASE("integer and float values are both accepted as numbers") {
  CHECK(only_reading(one_reading(with(good_reading(), "value", i64(97)))).value == 97.0);
  CHECK(only_reading(one_reading(with(good_reading(), "value", i64(-5)))).value == -5.0);
  CHECK(only_reading(one_reading(with(good_reading(), "value", f32(36.5f)))).value == 36.5);
  CHECK(only_reading(one_reading(with(good_reading(), "value", f64(0.1)))).value == 0.1);
  CHECK(only_reading(one_reading(with(good_reading(), "value", f64(97.0)))).value == 97.0);
  CHECK(only_reading(one_reading(with(good_reading(), "value", f32(36.0f)))).value == 36.0);
  CHECK(only_reading(one_reading(with(good_reading(), "value", u64(std::numeric_limits<std::uint64_t>::max()))))
            .value == 18446744073709551615.0);
}

TEST_CASE("a non-finite value passes the decoder for make_reading to judge") {
  auto in = only_reading(one_reading(with(good_reading(), "value", f64(std::numeric_limits<double>::infinity()))));
  CHECK(in.value == std::numeric_limits<double>::infinity());
}

TEST_CASE("a nil patient or unit is treated as absent") {
  auto in = only_reading(one_reading(with(with(good_reading(), "patient", nil()), "unit", nil())));
  CHECK_FALSE(in.patient.has_value());
  CHECK_FALSE(in.unit.has_value());
}

TEST_CASE("a patient and unit given as strings are decoded") {
  auto in = only_reading(one_reading(with(with(good_reading(), "patient", str("P-9")), "unit", str("%"))));
  CHECK(in.patient == std::optional<std::string>{"P-9"});
  CHECK(in.unit == std::optional<std::string>{"%"});
  auto bare = only_reading(one_reading(good_reading()));
  CHECK_FALSE(bare.patient.has_value());
  CHECK_FALSE(bare.unit.has_value());
}

TEST_CASE("the first problem of a reading is reported in field order") {
  auto rej = only_rejection(one_reading(with(without(good_reading(), "device"), "value", str("x"))));
  CHECK(rej.code == errc::missing_field);
  CHECK(rej.message.find("'device'") != std::string::npos);

  rej = only_rejection(one_reading(with(without(good_reading(), "seq"), "value", str("x"))));
  CHECK(rej.code == errc::wrong_type);
  CHECK(rej.message.find("'value'") != std::string::npos);

  rej = only_rejection(one_reading(with(with(good_reading(), "unit", i64(1)), "patient", i64(1))));
  CHECK(rej.message.find("'patient'") != std::string::npos);

  // Field order, not key order on the wire: seq is written before metric here.
  rej = only_rejection(one_reading({{"seq", str("x")}, {"device", str("d")}, {"metric", i64(1)},
                                    {"value", f64(1)}, {"ts", i64(1)}}));
  CHECK(rej.message.find("'metric'") != std::string::npos);
}

TEST_CASE("unknown keys are ignored at the top level and in readings") {
  auto reading = with(with(good_reading(), "note", map_of({{"a", array_of({i64(1), str("x")})}})), "Device", i64(3));
  auto fields = with(with(request_fields({map_of(reading)}), "trace", str("t-1")), "extra", bin(4));
  auto r = decode(bytes(map_of(fields)));
  REQUIRE(r.error.is_ok());
  REQUIRE(r.readings.size() == 1);
  CHECK(r.readings[0].device == "oxi-1");

  auto keyed = [](packer& pk) {  // a reading map with a non-string key first
    pk.pack_map(6);
    pk.pack_int64(1);
    pk.pack_int64(2);
    for (const auto& [k, w] : good_reading()) {
      put_str(pk, k);
      w(pk);
    }
  };
  CHECK(only_reading(request({keyed})).seq == 7);
  CHECK(only_rejection(request({int_keyed_map(str("device"))})).code == errc::missing_field);
}

TEST_CASE("a repeated key uses its first occurrence") {
  entries reading = good_reading();
  reading.emplace_back("seq", str("not a number"));
  CHECK(only_reading(one_reading(reading)).seq == 7);
  auto fields = request_fields({map_of(good_reading())});
  fields.emplace_back("v", i64(2));
  CHECK(decode(bytes(map_of(fields))).error.is_ok());
}

TEST_CASE("a mixed batch keeps the indexes of good and bad readings") {
  auto r = decode(request({map_of(good_reading(10)), i64(0), map_of(good_reading(12)),
                           map_of(without(good_reading(13), "ts")), map_of(good_reading(14)),
                           map_of(with(good_reading(15), "seq", i64(-15)))}));
  REQUIRE(r.error.is_ok());
  CHECK(holds_batch(r.batch, "b-1"));
  REQUIRE(r.readings.size() == 3);
  CHECK(r.indexes == std::vector<std::size_t>{0, 2, 4});
  CHECK(r.readings[0].seq == 10);
  CHECK(r.readings[1].seq == 12);
  CHECK(r.readings[2].seq == 14);
  REQUIRE(r.rejected.size() == 3);
  CHECK(r.rejected[0].index == 1);
  CHECK(r.rejected[0].code == errc::wrong_type);
  CHECK(r.rejected[1].index == 3);
  CHECK(r.rejected[1].code == errc::missing_field);
  CHECK(r.rejected[1].message == "field 'ts' is missing");
  CHECK(r.rejected[2].index == 5);
  CHECK(r.rejected[2].code == errc::wrong_type);
}

TEST_CASE("decoding never throws on corrupted requests and replies") {
  const auto frame = request({map_of(with(good_reading(1), "patient", str("P-1"))), map_of(good_reading(2))});
  const auto ack = encode_ack({std::string{"b-1"}, 3, 1, {{1, errc::unknown_metric, "no such metric"}}});
  std::uint64_t state = 0x9e3779b97f4a7c15u;
  auto next = [&] {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  for (int round = 0; round < 20'000; ++round) {
    for (const auto* base : {&frame, &ack}) {
      auto mutated = *base;
      const auto flips = 1 + next() % 4;
      for (std::uint64_t f = 0; f < flips; ++f)
        mutated[next() % mutated.size()] = static_cast<char>(next() & 0xff);
      if (next() % 8 == 0) mutated.resize(next() % mutated.size());
      ingest_request r;
      REQUIRE_NOTHROW(r = decode(mutated));
      if (r.error.is_ok()) {
        CHECK(r.readings.size() == r.indexes.size());
      } else {
        CHECK(r.readings.empty());
        CHECK_FALSE(r.error.message().empty());
      }
      REQUIRE_NOTHROW(reply(mutated));
    }
  }
}

// ---- round trips ------------------------------------------------------------------------

TEST_CASE("encode_request then decode_request preserves every field") {
  const batch_id batch = GENERATE(batch_id{std::string{"b-1"}}, batch_id{std::string{}}, batch_id{std::int64_t{42}},
                                  batch_id{std::int64_t{0}}, batch_id{std::int64_t{-7}},
                                  batch_id{std::numeric_limits<std::int64_t>::min()},
                                  batch_id{std::numeric_limits<std::int64_t>::max()},
                                  batch_id{std::uint64_t{9'223'372'036'854'775'813u}},
                                  batch_id{std::numeric_limits<std::uint64_t>::max()});
  CAPTURE(to_string(batch));
  auto full = full_input();
  reading_input bare;
  bare.device = "ecg-2";
  bare.metric = "heart_rate";
  bare.value = -0.25;
  bare.ts = -5;
  bare.seq = std::numeric_limits<std::uint64_t>::max();
  auto only_patient = full_input();
  only_patient.unit.reset();
  only_patient.value = 97;
  auto only_unit = full_input();
  only_unit.patient.reset();
  only_unit.device = "";
  const std::vector<reading_input> in{full, bare, only_patient, only_unit};

  const auto frame = encode_request(batch, in);
  auto r = decode(frame);
  REQUIRE(r.error.is_ok());
  CHECK(r.batch == batch);
  CHECK(r.rejected.empty());
  REQUIRE(r.readings.size() == in.size());
  CHECK(r.indexes == std::vector<std::size_t>{0, 1, 2, 3});
  for (std::size_t i = 0; i < in.size(); ++i) {
    INFO("reading " << i);
    check_same(r.readings[i], in[i]);
  }
}

TEST_CASE("a positive integer batch id decodes as int64 when it fits") {
  auto r = decode(encode_request(batch_id{std::uint64_t{5}}, {}));
  REQUIRE(r.error.is_ok());
  REQUIRE(std::holds_alternative<std::int64_t>(r.batch));
  CHECK(std::get<std::int64_t>(r.batch) == 5);
  r = decode(encode_request(batch_id{std::uint64_t{1} << 63}, {}));
  REQUIRE(std::holds_alternative<std::uint64_t>(r.batch));
  CHECK(std::get<std::uint64_t>(r.batch) == std::uint64_t{1} << 63);
}

TEST_CASE("encode_request writes the documented keys, value as float64, optional fields only when set") {
  auto bare = full_input();
  bare.patient.reset();
  bare.unit.reset();
  bare.value = 97;
  const auto frame = encode_request(batch_id{std::string{"b-1"}}, {full_input(), bare});
  auto handle = msgpack::unpack(frame.data(), frame.size());
  const auto& top = handle.get();
  CHECK(keys_of(top) == std::vector<std::string>{"v", "type", "batch", "readings"});
  CHECK(value_at(top, "v").via.u64 == 1);
  const auto& readings = value_at(top, "readings");
  REQUIRE(readings.type == msgpack::type::ARRAY);
  REQUIRE(readings.via.array.size == 2);
  CHECK(keys_of(readings.via.array.ptr[0]) ==
        std::vector<std::string>{"device", "metric", "value", "ts", "seq", "patient", "unit"});
  CHECK(keys_of(readings.via.array.ptr[1]) == std::vector<std::string>{"device", "metric", "value", "ts", "seq"});
  CHECK(value_at(readings.via.array.ptr[1], "value").type == msgpack::type::FLOAT64);
  CHECK(value_at(readings.via.array.ptr[1], "value").via.f64 == 97.0);
}

TEST_CASE("a negative zero value keeps its sign through encode and decode") {
  auto in = full_input();
  in.value = -0.0;
  auto r = decode(encode_request(batch_id{std::string{"b"}}, {in}));
  REQUIRE(r.readings.size() == 1);
  CHECK(std::signbit(r.readings[0].value));
}

TEST_CASE("encode_ack then decode_reply preserves every field") {
  const batch_id batch = GENERATE(batch_id{std::string{"b-7"}}, batch_id{std::int64_t{-3}},
                                  batch_id{std::int64_t{12}}, batch_id{std::numeric_limits<std::uint64_t>::max()});
  ingest_ack ack;
  ack.batch = batch;
  ack.accepted = 1'000'000'000'000u;
  ack.duplicates = 2;
  ack.rejected = {{0, errc::unknown_metric, "metric 'spo3' is not known"},
                  {17, errc::wrong_type, "field 'ts' must be an integer"},
                  {9999, errc::timestamp_in_future, ""}};
  auto r = reply(encode_ack(ack));
  REQUIRE(r.has_value());
  REQUIRE(std::holds_alternative<ingest_ack>(*r));
  const auto& got = std::get<ingest_ack>(*r);
  CHECK(got.batch == batch);
  CHECK(got.accepted == ack.accepted);
  CHECK(got.duplicates == ack.duplicates);
  CHECK(got.rejected == ack.rejected);
}

TEST_CASE("an ack with nothing rejected round-trips with an empty list") {
  auto r = reply(encode_ack({std::string{"b"}, 0, 0, {}}));
  REQUIRE(r.has_value());
  REQUIRE(std::holds_alternative<ingest_ack>(*r));
  CHECK(std::get<ingest_ack>(*r).rejected.empty());
  CHECK(std::get<ingest_ack>(*r).accepted == 0);
}

TEST_CASE("encode_ack writes the documented keys") {
  const auto frame = encode_ack({std::int64_t{4}, 1, 0, {{2, errc::not_finite, "value is NaN"}}});
  auto handle = msgpack::unpack(frame.data(), frame.size());
  const auto& top = handle.get();
  CHECK(keys_of(top) == std::vector<std::string>{"v", "type", "batch", "accepted", "duplicates", "rejected"});
  const auto& type = value_at(top, "type");
  CHECK(std::string(type.via.str.ptr, type.via.str.size) == "ack");
  const auto& rejected = value_at(top, "rejected");
  REQUIRE(rejected.via.array.size == 1);
  CHECK(keys_of(rejected.via.array.ptr[0]) == std::vector<std::string>{"index", "code", "message"});
  const auto& code = value_at(rejected.via.array.ptr[0], "code");
  CHECK(std::string(code.via.str.ptr, code.via.str.size) == "not_finite");
}

TEST_CASE("encode_error then decode_reply preserves every field") {
  const batch_id batch = GENERATE(batch_id{}, batch_id{std::string{"b-9"}}, batch_id{std::int64_t{-1}},
                                  batch_id{std::uint64_t{1} << 63});
  const errc code = GENERATE(errc::malformed, errc::unsupported_version, errc::too_large, errc::overloaded);
  ingest_error err{batch, code, "field 'readings' must be an array"};
  auto r = reply(encode_error(err));
  REQUIRE(r.has_value());
  REQUIRE(std::holds_alternative<ingest_error>(*r));
  const auto& got = std::get<ingest_error>(*r);
  CHECK(got.batch == batch);
  CHECK(got.code == code);
  CHECK(got.message == err.message);
}

TEST_CASE("an error reply without a batch id has no batch key") {
  const auto frame = encode_error({{}, errc::malformed, "request is not valid MessagePack"});
  auto handle = msgpack::unpack(frame.data(), frame.size());
  CHECK(keys_of(handle.get()) == std::vector<std::string>{"v", "type", "code", "message"});
  const auto with_batch = encode_error({std::string{"b"}, errc::malformed, "x"});
  auto handle2 = msgpack::unpack(with_batch.data(), with_batch.size());
  CHECK(keys_of(handle2.get()) == std::vector<std::string>{"v", "type", "batch", "code", "message"});
}

TEST_CASE("an unknown error code in a reply becomes internal and keeps the message") {
  auto frame = bytes(map_of({{"v", i64(1)}, {"type", str("error")}, {"batch", str("b")},
                             {"code", str("quota_exceeded")}, {"message", str("try tomorrow")}}));
  auto r = reply(frame);
  REQUIRE(r.has_value());
  REQUIRE(std::holds_alternative<ingest_error>(*r));
  const auto& err = std::get<ingest_error>(*r);
  CHECK(err.code == errc::internal);
  CHECK(err.message == "try tomorrow");
  CHECK(holds_batch(err.batch, "b"));
}

TEST_CASE("an ok code in an error reply or a rejection becomes internal") {
  auto r = reply(bytes(map_of({{"v", i64(1)}, {"type", str("error")}, {"code", str("ok")}, {"message", str("m")}})));
  REQUIRE(r.has_value());
  REQUIRE(std::holds_alternative<ingest_error>(*r));
  CHECK(std::get<ingest_error>(*r).code == errc::internal);
  auto ack = reply(bytes(map_of({{"v", i64(1)}, {"type", str("ack")}, {"batch", str("b")}, {"accepted", i64(0)},
                                 {"duplicates", i64(0)},
                                 {"rejected", array_of({map_of({{"index", i64(0)}, {"code", str("ok")},
                                                                {"message", str("m")}})})}})));
  REQUIRE(ack.has_value());
  REQUIRE(std::holds_alternative<ingest_ack>(*ack));
  REQUIRE(std::get<ingest_ack>(*ack).rejected.size() == 1);
  CHECK(std::get<ingest_ack>(*ack).rejected[0].code == errc::internal);
}

TEST_CASE("a nil batch in a reply reads as an unknown batch id") {
  auto r = reply(bytes(map_of({{"v", i64(1)}, {"type", str("error")}, {"batch", nil()}, {"code", str("malformed")},
                               {"message", str("m")}})));
  REQUIRE(r.has_value());
  REQUIRE(std::holds_alternative<ingest_error>(*r));
  CHECK(unread(std::get<ingest_error>(*r).batch));
}

TEST_CASE("decode_reply refuses replies it cannot use as malformed") {
  const auto good_error = map_of({{"v", i64(1)}, {"type", str("error")}, {"code", str("malformed")},
                                  {"message", str("m")}});
  const auto good = bytes(good_error);
  REQUIRE(reply(good).has_value());
  const std::vector<std::string> bad = {
      std::string{},
      "\xc1",
      good.substr(0, good.size() - 1),
      good + std::string(1, '\0'),
      bytes(array_of({})),
      bytes(map_of({{"v", i64(1)}, {"type", str("telemetry")}, {"batch", str("b")}, {"readings", array_of({})}})),
      bytes(map_of({{"type", str("error")}, {"code", str("malformed")}, {"message", str("m")}})),
      bytes(map_of({{"v", i64(1)}, {"type", str("error")}, {"message", str("m")}})),
      bytes(map_of({{"v", i64(1)}, {"type", str("error")}, {"code", i64(1)}, {"message", str("m")}})),
      bytes(map_of({{"v", i64(1)}, {"type", str("error")}, {"batch", f64(1)}, {"code", str("malformed")},
                    {"message", str("m")}})),
      bytes(map_of({{"v", i64(1)}, {"type", str("ack")}, {"batch", str("b")}, {"accepted", i64(-1)},
                    {"duplicates", i64(0)}, {"rejected", array_of({})}})),
      bytes(map_of({{"v", i64(1)}, {"type", str("ack")}, {"batch", str("b")}, {"accepted", i64(1)},
                    {"duplicates", i64(0)}})),
      bytes(map_of({{"v", i64(1)}, {"type", str("ack")}, {"batch", str("b")}, {"accepted", i64(1)},
                    {"duplicates", i64(0)}, {"rejected", array_of({i64(3)})}})),
      bytes(map_of({{"v", i64(1)}, {"type", str("ack")}, {"batch", str("b")}, {"accepted", i64(1)},
                    {"duplicates", i64(0)}, {"rejected", array_of({map_of({{"index", i64(0)}, {"code", str("x")}})})}})),
  };
  for (std::size_t i = 0; i < bad.size(); ++i) {
    INFO("case " << i);
    auto r = reply(bad[i]);
    CHECK_FALSE(r.has_value());
    CHECK(r.code() == errc::malformed);
  }
}

TEST_CASE("a reply of another protocol version is unsupported_version") {
  auto r = reply(bytes(map_of({{"v", i64(2)}, {"type", str("error")}, {"code", str("malformed")},
                               {"message", str("m")}})));
  CHECK(r.code() == errc::unsupported_version);
}

TEST_CASE("to_string shows a batch id for logs") {
  CHECK(to_string(batch_id{std::int64_t{42}}) == "42");
  CHECK(to_string(batch_id{std::int64_t{-42}}) == "-42");
  CHECK(to_string(batch_id{std::numeric_limits<std::uint64_t>::max()}) == "18446744073709551615");
  CHECK(to_string(batch_id{std::string{"b-1"}}) == "\"b-1\"");
  CHECK(to_string(batch_id{}) == "?");
}

TEST_CASE("to_string escapes quotes and control bytes in a string batch id") {
  CHECK(to_string(batch_id{std::string{"a\"b\\c\nd"}}) == "\"a\\\"b\\\\c\\x0ad\"");
}
