#include "cluster/pager_wire.hpp"

#include <catch2/catch.hpp>
#include <msgpack.hpp>

#include <algorithm>
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

entries hello_fields() {
  return {{"v", i64(1)}, {"type", str("hello")}, {"gateway", str("gw-1")}, {"targets", strings({"ward3-nurse"})}};
}
entries status_fields() {
  return {{"v", i64(1)},
          {"type", str("status")},
          {"page_id", str("d/oxi-1/spo2_low/3@0.0/ward3-nurse")},
          {"status", str("accepted")},
          {"by", str("nurse.anna")},
          {"ts", i64(1'767'225'630'000)}};
}
entries page_fields() {
  return {{"v", i64(1)},
          {"type", str("page")},
          {"page_id", str("d/oxi-1/spo2_low/3@0.0/ward3-nurse")},
          {"alert_id", str("d/oxi-1/spo2_low/3")},
          {"target", str("ward3-nurse")},
          {"level", i64(0)},
          {"repeat", i64(0)},
          {"priority", str("high")},
          {"kind", str("physiological")},
          {"patient", str("P-100234")},
          {"device", str("oxi-1")},
          {"rule", str("spo2_low")},
          {"summary", str("SpO2 84 % below 88 % for 20 s")},
          {"details", map_of({{"value", f64(84)}, {"threshold", f64(88)}})},
          {"ts", i64(1'767'225'620'000)},
          {"event_ts", i64(1'767'225'619'500)}};
}
entries cancel_fields() {
  return {{"v", i64(1)},
          {"type", str("cancel")},
          {"page_id", str("d/oxi-1/spo2_low/3@0.0/ward3-nurse")},
          {"alert_id", str("d/oxi-1/spo2_low/3")},
          {"reason", str("resolved")}};
}
entries welcome_fields() {
  return {{"v", i64(1)}, {"type", str("welcome")}, {"gateway", str("gw-1")}, {"targets", strings({"*"})}};
}
entries error_fields() {
  return {{"v", i64(1)}, {"type", str("error")}, {"code", str("malformed")}, {"message", str("m")}};
}

result<gateway_message> from_gateway(const std::string& s) { return decode_from_gateway(s.data(), s.size()); }
result<node_message> from_node(const std::string& s) { return decode_from_node(s.data(), s.size()); }

pager_page full_page() {
  pager_page p;
  p.page_id = page_id("p/P-100234/news2_high/1", 2, 1, "rapid-response");
  p.alert_id = "p/P-100234/news2_high/1";
  p.target = "rapid-response";
  p.level = 2;
  p.repeat = 1;
  p.priority = alert_priority::high;
  p.kind = alert_kind::physiological;
  p.patient = "P-100234";
  p.device = "";
  p.rule = "news2_high";
  p.summary = "NEWS2 7 (high): resp_rate 3, spo2 3, temperature 1";
  p.details = {{"score", 7}, {"resp_rate", 3}, {"spo2", 3}, {"temperature", 1}, {"fraction", 0.125}, {"neg", -2.5}};
  p.ts = 1'767'225'620'000;
  p.event_ts = 1'767'225'619'500;
  return p;
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

template <class T, class R>
T only(const R& r) {
  INFO(r.error().to_string());
  REQUIRE(r.has_value());
  REQUIRE(std::holds_alternative<T>(*r));
  return std::get<T>(*r);
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

const std::vector<page_status> gateway_statuses = {page_status::received, page_status::delivered, page_status::read,
                                                   page_status::accepted, page_status::rejected};

}  // namespace

// ---- round trips ------------------------------------------------------------------------

TEST_CASE("a hello survives encode_hello and decode_from_gateway") {
  const pager_hello hello{"gw.ward3:1@site", {"ward3-nurse", "rapid-response", "*"}};
  CHECK(only<pager_hello>(from_gateway(encode_hello(hello))) == hello);
}

TEST_CASE("a status with each gateway status value survives the round trip with and without a responder") {
  for (const auto s : gateway_statuses) {
    for (const std::string by : {"", "nurse.anna", "Dr Ünal / ICU"}) {
      INFO(to_string(s) << " by '" << by << "'");
      const pager_status st{"d/oxi-1/spo2_low/3@0.0/ward3-nurse", s, by, 1'767'225'630'000};
      CHECK(only<pager_status>(from_gateway(encode_status(st))) == st);
    }
  }
}

TEST_CASE("a status keeps any 64-bit signed ts") {
  for (const epoch_ms ts : {epoch_ms{0}, epoch_ms{-1}, std::numeric_limits<epoch_ms>::min(),
                            std::numeric_limits<epoch_ms>::max()}) {
    const pager_status st{"p", page_status::read, "", ts};
    CHECK(only<pager_status>(from_gateway(encode_status(st))).ts == ts);
  }
}

TEST_CASE("a page survives encode_page and decode_from_node with every field") {
  auto p = full_page();
  p.priority = GENERATE(alert_priority::low, alert_priority::medium, alert_priority::high);
  p.kind = GENERATE(alert_kind::physiological, alert_kind::technical, alert_kind::advisory);
  CHECK(only<pager_page>(from_node(encode_page(p))) == p);
}

TEST_CASE("a page keeps extreme levels, repeats, timestamps and detail values") {
  auto p = full_page();
  p.level = std::numeric_limits<unsigned>::max();
  p.repeat = 0;
  p.ts = std::numeric_limits<epoch_ms>::max();
  p.event_ts = std::numeric_limits<epoch_ms>::min();
  p.details = {{"zero", 0.0},
               {"tiny", std::numeric_limits<double>::denorm_min()},
               {"huge", std::numeric_limits<double>::max()},
               {"big_integer", 9007199254740993.0}};
  const auto back = only<pager_page>(from_node(encode_page(p)));
  CHECK(back == p);
}

TEST_CASE("a page with no details, no patient and no device round-trips") {
  auto p = full_page();
  p.details.clear();
  p.patient.clear();
  p.device.clear();
  CHECK(only<pager_page>(from_node(encode_page(p))) == p);
}

TEST_CASE("a negative zero detail keeps its sign through encode and decode") {
  auto p = full_page();
  p.details = {{"delta", -0.0}};
  const auto back = only<pager_page>(from_node(encode_page(p)));
  REQUIRE(back.details.count("delta") == 1);
  CHECK(std::signbit(back.details.at("delta")));
}

TEST_CASE("a cancel survives the round trip for every reason") {
  for (const auto reason : cancel_reasons) {
    const pager_cancel c{"d/oxi-1/spo2_low/3@1.0/charge-nurse", "d/oxi-1/spo2_low/3", std::string{reason}};
    CHECK(only<pager_cancel>(from_node(encode_cancel(c))) == c);
  }
}

TEST_CASE("a welcome survives encode_welcome and decode_from_node") {
  const pager_welcome w{"gw-1", {"*", "ward3-nurse"}};
  CHECK(only<pager_welcome>(from_node(encode_welcome(w))) == w);
}

TEST_CASE("an error survives the round trip for every error code") {
  for (auto c = static_cast<int>(errc::malformed); c <= static_cast<int>(errc::internal); ++c) {
    const pager_error e{static_cast<errc>(c), "message for " + std::string{to_string(static_cast<errc>(c))}};
    INFO(e.message);
    CHECK(only<pager_error>(from_node(encode_error(e))) == e);
  }
}

TEST_CASE("page ids built by the escalation engine travel unchanged") {
  const auto id = page_id("d/oxi-1/spo2_low/3", 1, 2, "ward3-nurse");
  auto p = full_page();
  p.page_id = id;
  CHECK(only<pager_page>(from_node(encode_page(p))).page_id == id);
  CHECK(only<pager_cancel>(from_node(encode_cancel({id, "d/oxi-1/spo2_low/3", "acknowledged"}))).page_id == id);
  CHECK(only<pager_status>(from_gateway(encode_status({id, page_status::received, "", 1}))).page_id == id);
}

// ---- what the encoders write --------------------------------------------------------------

TEST_CASE("encode_page writes the documented keys in order and every detail as float64") {
  auto p = full_page();
  p.details = {{"score", 7.0}};
  const auto frame = encode_page(p);
  const auto handle = msgpack::unpack(frame.data(), frame.size());
  const auto& top = handle.get();
  CHECK(keys_of(top) == std::vector<std::string>{"v", "type", "page_id", "alert_id", "target", "level", "repeat",
                                                  "priority", "kind", "patient", "device", "rule", "summary",
                                                  "details", "ts", "event_ts"});
  CHECK(value_at(top, "v").as<int>() == 1);
  CHECK(value_at(top, "type").as<std::string>() == "page");
  CHECK(value_at(top, "priority").as<std::string>() == "high");
  CHECK(value_at(top, "kind").as<std::string>() == "physiological");
  CHECK(value_at(top, "patient").as<std::string>() == "P-100234");
  CHECK(value_at(top, "device").as<std::string>().empty());
  const auto& details = value_at(top, "details");
  REQUIRE(details.type == msgpack::type::MAP);
  CHECK(value_at(details, "score").type == msgpack::type::FLOAT64);
  CHECK(contains(frame, std::string("\xa5score\xcb\x40\x1c\x00\x00\x00\x00\x00\x00", 15)));
}

TEST_CASE("encode_status leaves by out when it is empty and writes it otherwise") {
  const auto plain = encode_status({"p", page_status::received, "", 5});
  const auto without_by = msgpack::unpack(plain.data(), plain.size());
  CHECK(keys_of(without_by.get()) == std::vector<std::string>{"v", "type", "page_id", "status", "ts"});
  const auto frame = encode_status({"p", page_status::accepted, "nurse.anna", 5});
  const auto with_by = msgpack::unpack(frame.data(), frame.size());
  CHECK(keys_of(with_by.get()) == std::vector<std::string>{"v", "type", "page_id", "status", "by", "ts"});
  CHECK(value_at(with_by.get(), "status").as<std::string>() == "accepted");
  CHECK(value_at(with_by.get(), "by").as<std::string>() == "nurse.anna");
}

TEST_CASE("the other encoders write the documented keys and type") {
  const auto keys = [](const std::string& frame) {
    const auto h = msgpack::unpack(frame.data(), frame.size());
    return keys_of(h.get());
  };
  const auto type = [](const std::string& frame) {
    const auto h = msgpack::unpack(frame.data(), frame.size());
    return value_at(h.get(), "type").as<std::string>();
  };
  const auto hello = encode_hello({"gw", {"*"}});
  const auto cancel = encode_cancel({"p", "a", "silenced"});
  const auto welcome = encode_welcome({"gw", {"t"}});
  const auto error = encode_error(pager_error{errc::too_large, "m"});
  CHECK(keys(hello) == std::vector<std::string>{"v", "type", "gateway", "targets"});
  CHECK(type(hello) == "hello");
  CHECK(keys(cancel) == std::vector<std::string>{"v", "type", "page_id", "alert_id", "reason"});
  CHECK(type(cancel) == "cancel");
  CHECK(keys(welcome) == std::vector<std::string>{"v", "type", "gateway", "targets"});
  CHECK(type(welcome) == "welcome");
  CHECK(keys(error) == std::vector<std::string>{"v", "type", "code", "message"});
  CHECK(type(error) == "error");
  const auto h = msgpack::unpack(error.data(), error.size());
  CHECK(value_at(h.get(), "code").as<std::string>() == "too_large");
}

// ---- targets and names --------------------------------------------------------------------

TEST_CASE("a hello with the target \"*\" takes every target") {
  const auto hello = only<pager_hello>(from_gateway(bytes(map_of(with(hello_fields(), "targets", strings({"*"}))))));
  CHECK(hello.targets == std::vector<std::string>{std::string{any_target}});
}

TEST_CASE("a hello may list 64 targets but not 65") {
  std::vector<std::string> targets;
  for (int i = 0; i < 64; ++i) targets.push_back("t" + std::to_string(i));
  CHECK(only<pager_hello>(from_gateway(bytes(map_of(with(hello_fields(), "targets", strings(targets)))))).targets ==
        targets);
  targets.push_back("one-too-many");
  auto r = from_gateway(bytes(map_of(with(hello_fields(), "targets", strings(targets)))));
  CHECK(r.code() == errc::too_large);
  CHECK(contains(r.error().message(), "array longer than 64"));
}

TEST_CASE("a hello without targets is malformed") {
  auto r = from_gateway(bytes(map_of(with(hello_fields(), "targets", strings({})))));
  CHECK(r.code() == errc::malformed);
  CHECK(r.error().message() == "field 'targets' must list at least one target");
}

TEST_CASE("invalid target names in a hello or welcome are invalid_id naming the entry") {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"", "field 'targets' entry 1 is empty"},
      {std::string(65, 'a'), "field 'targets' entry 1 is 65 bytes, longer than 64"},
      {"ward 3", "field 'targets' entry 1 has a forbidden byte 0x20 at offset 4"},
      {"ward/3", "forbidden byte 0x2f at offset 4"},
      {"**", "forbidden byte 0x2a at offset 0"},
      {"*ward", "forbidden byte 0x2a at offset 0"},
      {"w\xc3\xa4rd", "forbidden byte 0xc3 at offset 1"},
      {std::string("ward\0", 5), "forbidden byte 0x00 at offset 4"},
      {"ward\n", "forbidden byte 0x0a at offset 4"},
  };
  for (const auto& [name, message] : bad) {
    INFO("target '" << name << "'");
    auto hello = from_gateway(bytes(map_of(with(hello_fields(), "targets", strings({"ok", name})))));
    CHECK(hello.code() == errc::invalid_id);
    CHECK(contains(hello.error().message(), message));
    auto welcome = from_node(bytes(map_of(with(welcome_fields(), "targets", strings({"ok", name})))));
    CHECK(welcome.code() == errc::invalid_id);
    CHECK(contains(welcome.error().message(), message));
  }
}

TEST_CASE("a target entry that is not a string is malformed") {
  auto r = from_gateway(bytes(map_of(with(hello_fields(), "targets", array_of({str("a"), i64(3)})))));
  CHECK(r.code() == errc::malformed);
  CHECK(r.error().message() == "field 'targets' entry 1 must be a string");
}

TEST_CASE("names of 1 to 64 allowed bytes are accepted, whatever their first byte") {
  for (const auto& name : std::vector<std::string>{"a", "-", "_ward", ".x", ":1", "@site", "Ward3-Nurse_2.a:b@c",
                                                  std::string(64, 'z')}) {
    INFO(name);
    CHECK(validate_pager_name(name).is_ok());
    CHECK(only<pager_hello>(from_gateway(encode_hello({name, {name}}))).gateway == name);
    auto p = full_page();
    p.target = name;
    CHECK(only<pager_page>(from_node(encode_page(p))).target == name);
  }
}

TEST_CASE("validate_pager_name accepts exactly letters, digits and - _ . : @") {
  for (int b = 0; b < 256; ++b) {
    const char c = static_cast<char>(b);
    const bool allowed = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                         c == '_' || c == '.' || c == ':' || c == '@';
    INFO("byte " << b);
    const auto st = validate_pager_name(std::string("x") + c, "gateway name");
    CHECK(st.is_ok() == allowed);
    if (!allowed) {
      CHECK(st.code() == errc::invalid_id);
      CHECK(contains(st.message(), "gateway name has a forbidden byte"));
    }
  }
}

TEST_CASE("a gateway name of \"*\" or an invalid one is invalid_id") {
  for (const auto& name : std::vector<std::string>{"*", "", "gw 1", std::string(65, 'g')}) {
    INFO("gateway '" << name << "'");
    auto hello = from_gateway(bytes(map_of(with(hello_fields(), "gateway", str(name)))));
    CHECK(hello.code() == errc::invalid_id);
    CHECK(contains(hello.error().message(), "field 'gateway'"));
    auto welcome = from_node(bytes(map_of(with(welcome_fields(), "gateway", str(name)))));
    CHECK(welcome.code() == errc::invalid_id);
    CHECK(contains(welcome.error().message(), "field 'gateway'"));
  }
}

TEST_CASE("a page to \"*\" or to an invalid target is invalid_id") {
  auto star = from_node(bytes(map_of(with(page_fields(), "target", str("*")))));
  CHECK(star.code() == errc::invalid_id);
  CHECK(star.error().message() == "field 'target' must name one target, not \"*\"");
  for (const auto& name : std::vector<std::string>{"", "ward 3", std::string(65, 't')}) {
    INFO("target '" << name << "'");
    auto r = from_node(bytes(map_of(with(page_fields(), "target", str(name)))));
    CHECK(r.code() == errc::invalid_id);
    CHECK(contains(r.error().message(), "field 'target'"));
  }
}

// ---- statuses -----------------------------------------------------------------------------

TEST_CASE("status values sent and cancelled are malformed from a gateway") {
  for (const std::string s : {"sent", "cancelled"}) {
    INFO(s);
    REQUIRE(page_status_from_string(s).has_value());
    auto r = from_gateway(bytes(map_of(with(status_fields(), "status", str(s)))));
    CHECK(r.code() == errc::malformed);
    CHECK(r.error().message() == "field 'status' must be one of received, delivered, read, accepted, rejected");
  }
}

TEST_CASE("an unknown or mistyped status value is malformed") {
  for (const auto& w : {str("ACCEPTED"), str(""), str("acked"), i64(4), nil()}) {
    auto r = from_gateway(bytes(map_of(with(status_fields(), "status", w))));
    CHECK(r.code() == errc::malformed);
    CHECK(contains(r.error().message(), "field 'status'"));
  }
}

TEST_CASE("a status with a nil or absent by has no responder") {
  CHECK(only<pager_status>(from_gateway(bytes(map_of(with(status_fields(), "by", nil()))))).by.empty());
  CHECK(only<pager_status>(from_gateway(bytes(map_of(without(status_fields(), "by"))))).by.empty());
  CHECK(only<pager_status>(from_gateway(bytes(map_of(status_fields())))).by == "nurse.anna");
}

// ---- malformed shapes ---------------------------------------------------------------------

TEST_CASE("bytes that are not MessagePack, empty or truncated are malformed in both directions") {
  const std::string garbage = "\xc1\xc1";
  CHECK(from_gateway(garbage).code() == errc::malformed);
  CHECK(from_node(garbage).code() == errc::malformed);
  CHECK(from_gateway(garbage).error().message() == "message is not valid MessagePack");
  CHECK(decode_from_gateway(nullptr, 0).code() == errc::malformed);
  CHECK(decode_from_node(nullptr, 0).code() == errc::malformed);
  CHECK(from_node(std::string{}).error().message() == "message is empty or truncated (incomplete MessagePack)");
  for (const auto& frame : {encode_hello({"gw", {"t"}}), encode_status({"p", page_status::read, "x", 1})}) {
    for (std::size_t n = 0; n < frame.size(); ++n) {
      INFO("truncated to " << n);
      CHECK(from_gateway(frame.substr(0, n)).code() == errc::malformed);
    }
  }
  for (const auto& frame : {encode_page(full_page()), encode_cancel({"p", "a", "resolved"}),
                            encode_welcome({"gw", {"*"}}), encode_error(pager_error{errc::internal, "m"})}) {
    for (std::size_t n = 0; n < frame.size(); ++n) {
      INFO("truncated to " << n);
      CHECK(from_node(frame.substr(0, n)).code() == errc::malformed);
    }
  }
}

TEST_CASE("trailing bytes after the message are malformed") {
  auto g = from_gateway(encode_hello({"gw", {"t"}}) + std::string(2, '\0'));
  CHECK(g.code() == errc::malformed);
  CHECK(g.error().message() == "message has 2 trailing bytes after the top-level map");
  CHECK(from_node(encode_cancel({"p", "a", "resolved"}) + "\x01").code() == errc::malformed);
}

TEST_CASE("a pager message whose top-level value is not a map is malformed") {
  for (const auto& w : {array_of({str("v"), i64(1)}), str("hello"), i64(1), nil()}) {
    auto g = from_gateway(bytes(w));
    CHECK(g.code() == errc::malformed);
    CHECK(g.error().message() == "message must be a MessagePack map");
    CHECK(from_node(bytes(w)).code() == errc::malformed);
  }
}

TEST_CASE("a missing or non-integer v is malformed and another version is unsupported_version") {
  CHECK(from_gateway(bytes(map_of(without(hello_fields(), "v")))).error().message() ==
        "field 'v' (protocol version) is missing");
  CHECK(from_node(bytes(map_of(without(page_fields(), "v")))).code() == errc::malformed);
  for (const auto& w : {str("1"), f64(1), nil(), boolean(true)}) {
    auto r = from_gateway(bytes(map_of(with(hello_fields(), "v", w))));
    CHECK(r.code() == errc::malformed);
    CHECK(r.error().message() == "field 'v' must be an integer");
    CHECK(from_node(bytes(map_of(with(page_fields(), "v", w)))).code() == errc::malformed);
  }
  for (const auto& w : {i64(2), i64(0), i64(-1), u64(std::numeric_limits<std::uint64_t>::max())}) {
    auto g = from_gateway(bytes(map_of(with(status_fields(), "v", w))));
    CHECK(g.code() == errc::unsupported_version);
    CHECK(contains(g.error().message(), "is not supported (this build speaks version 1)"));
    CHECK(from_node(bytes(map_of(with(cancel_fields(), "v", w)))).code() == errc::unsupported_version);
  }
  CHECK(from_gateway(bytes(map_of(with(hello_fields(), "v", i64(2))))).error().message() ==
        "pager protocol version 2 is not supported (this build speaks version 1)");
}

TEST_CASE("a missing, mistyped or unknown type is malformed, including a message of the other direction") {
  CHECK(from_gateway(bytes(map_of(without(hello_fields(), "type")))).error().message() == "field 'type' is missing");
  CHECK(from_gateway(bytes(map_of(with(hello_fields(), "type", i64(1))))).error().message() ==
        "field 'type' must be a string");
  for (const auto& frame : {encode_page(full_page()), encode_cancel({"p", "a", "resolved"}),
                            encode_welcome({"gw", {"*"}}), encode_error(pager_error{errc::internal, "m"}),
                            bytes(map_of(with(hello_fields(), "type", str("HELLO"))))}) {
    auto r = from_gateway(frame);
    CHECK(r.code() == errc::malformed);
    CHECK(r.error().message() == "field 'type' must be \"hello\" or \"status\"");
  }
  for (const auto& frame : {encode_hello({"gw", {"t"}}), encode_status({"p", page_status::read, "", 1}),
                            bytes(map_of(with(page_fields(), "type", str("telemetry"))))}) {
    auto r = from_node(frame);
    CHECK(r.code() == errc::malformed);
    CHECK(r.error().message() == "field 'type' must be \"page\", \"cancel\", \"welcome\" or \"error\"");
  }
}

TEST_CASE("every missing field of every message is malformed naming the field") {
  struct message {
    entries fields;
    bool from_gateway;
    std::vector<std::string> required;
  };
  const std::vector<message> messages = {
      {hello_fields(), true, {"gateway", "targets"}},
      {status_fields(), true, {"page_id", "status", "ts"}},
      {page_fields(),
       false,
       {"page_id", "alert_id", "target", "level", "repeat", "priority", "kind", "patient", "device", "rule", "summary",
        "details", "ts", "event_ts"}},
      {cancel_fields(), false, {"page_id", "alert_id", "reason"}},
      {welcome_fields(), false, {"gateway", "targets"}},
      {error_fields(), false, {"code", "message"}},
  };
  for (const auto& m : messages) {
    for (const auto& name : m.required) {
      INFO(name);
      const auto frame = bytes(map_of(without(m.fields, name)));
      const auto st = m.from_gateway ? from_gateway(frame).error() : from_node(frame).error();
      CHECK(st.code() == errc::malformed);
      CHECK(st.message() == "field '" + name + "' is missing");
    }
  }
}

TEST_CASE("every field of the wrong type is malformed naming the field") {
  struct bad_field {
    entries fields;
    bool from_gateway;
    std::string name;
    writer value;
    std::string message;
  };
  const std::string non_empty = " must be a non-empty string";
  const std::string ms = " must be a 64-bit signed integer (ms since the Unix epoch)";
  const std::string level = " must be an integer from 0 to 4294967295";
  const std::vector<bad_field> bad = {
      {hello_fields(), true, "gateway", i64(1), "field 'gateway' must be a string"},
      {hello_fields(), true, "gateway", bin(3), "field 'gateway' must be a string"},
      {hello_fields(), true, "targets", str("ward3-nurse"), "field 'targets' must be an array of strings"},
      {hello_fields(), true, "targets", map_of({}), "field 'targets' must be an array of strings"},
      {status_fields(), true, "page_id", str(""), "field 'page_id'" + non_empty},
      {status_fields(), true, "page_id", i64(5), "field 'page_id'" + non_empty},
      {status_fields(), true, "by", i64(5), "field 'by' must be a string or nil"},
      {status_fields(), true, "ts", f64(1.0), "field 'ts'" + ms},
      {status_fields(), true, "ts", str("1767225630000"), "field 'ts'" + ms},
      {status_fields(), true, "ts", u64(std::numeric_limits<std::uint64_t>::max()), "field 'ts'" + ms},
      {page_fields(), false, "page_id", nil(), "field 'page_id'" + non_empty},
      {page_fields(), false, "alert_id", str(""), "field 'alert_id'" + non_empty},
      {page_fields(), false, "target", i64(1), "field 'target' must be a string"},
      {page_fields(), false, "level", i64(-1), "field 'level'" + level},
      {page_fields(), false, "level", u64(4294967296u), "field 'level'" + level},
      {page_fields(), false, "level", f64(1), "field 'level'" + level},
      {page_fields(), false, "repeat", str("0"), "field 'repeat'" + level},
      {page_fields(), false, "priority", str("critical"), "field 'priority' must be one of high, medium, low"},
      {page_fields(), false, "priority", i64(2), "field 'priority' must be one of high, medium, low"},
      {page_fields(), false, "kind", str("clinical"), "field 'kind' must be one of physiological, technical, advisory"},
      {page_fields(), false, "patient", nil(), "field 'patient' must be a string"},
      {page_fields(), false, "device", i64(1), "field 'device' must be a string"},
      {page_fields(), false, "rule", str(""), "field 'rule'" + non_empty},
      {page_fields(), false, "summary", array_of({}), "field 'summary' must be a string"},
      {page_fields(), false, "details", array_of({}), "field 'details' must be a map of strings to numbers"},
      {page_fields(), false, "details", map_of({{"score", str("7")}}), "field 'details' entry 0 has a value that is not a number"},
      {page_fields(), false, "details", map_of({{"a", f64(1)}, {"b", nil()}}), "field 'details' entry 1 has a value that is not a number"},
      {page_fields(), false, "details", map_of({{"a", boolean(true)}}), "field 'details' entry 0 has a value that is not a number"},
      {page_fields(), false, "details", int_keyed_map(f64(1)), "field 'details' entry 0 has a key that is not a string"},
      {page_fields(), false, "ts", f64(1), "field 'ts'" + ms},
      {page_fields(), false, "event_ts", nil(), "field 'event_ts'" + ms},
      {cancel_fields(), false, "page_id", str(""), "field 'page_id'" + non_empty},
      {cancel_fields(), false, "alert_id", i64(1), "field 'alert_id'" + non_empty},
      {cancel_fields(), false, "reason", str("expired"), "field 'reason' must be one of acknowledged, resolved, silenced"},
      {cancel_fields(), false, "reason", str(""), "field 'reason' must be one of acknowledged, resolved, silenced"},
      {cancel_fields(), false, "reason", i64(0), "field 'reason' must be a string"},
      {welcome_fields(), false, "gateway", nil(), "field 'gateway' must be a string"},
      {welcome_fields(), false, "targets", strings({}), "field 'targets' must list at least one target"},
      {error_fields(), false, "code", i64(1), "field 'code' must be a string"},
      {error_fields(), false, "message", nil(), "field 'message' must be a string"},
  };
  for (const auto& b : bad) {
    INFO(b.name << ": " << b.message);
    const auto frame = bytes(map_of(with(b.fields, b.name, b.value)));
    const auto st = b.from_gateway ? from_gateway(frame).error() : from_node(frame).error();
    CHECK(st.code() == errc::malformed);
    CHECK(st.message() == b.message);
  }
}

TEST_CASE("details accept integers and float32 as numbers") {
  const auto p = only<pager_page>(from_node(bytes(map_of(with(
      page_fields(), "details", map_of({{"a", i64(-3)}, {"b", u64(7)}, {"c", f32(0.5f)}, {"d", f64(2.25)}}))))));
  CHECK(p.details == std::map<std::string, double>{{"a", -3.0}, {"b", 7.0}, {"c", 0.5}, {"d", 2.25}});
}

TEST_CASE("unknown keys are ignored and a repeated key uses its first occurrence") {
  auto fields = page_fields();
  fields.emplace_back("future_field", map_of({{"x", array_of({i64(1)})}}));
  fields.emplace_back("target", str("other-target"));
  fields.emplace_back("summary", i64(3));
  auto p = only<pager_page>(from_node(bytes(map_of(fields))));
  CHECK(p.target == "ward3-nurse");
  CHECK(p.summary == "SpO2 84 % below 88 % for 20 s");
  const auto d = only<pager_page>(
      from_node(bytes(map_of(with(page_fields(), "details", map_of({{"score", f64(5)}, {"score", f64(9)}}))))));
  CHECK(d.details.at("score") == 5.0);
  auto s = status_fields();
  s.emplace_back("status", str("sent"));
  s.emplace(s.begin(), "note", nil());
  CHECK(only<pager_status>(from_gateway(bytes(map_of(s)))).status == page_status::accepted);
}

TEST_CASE("an unknown error code from the node becomes internal and keeps the message") {
  for (const std::string code : {"no_such_code", "ok", ""}) {
    INFO(code);
    const auto e = only<pager_error>(from_node(bytes(map_of(with(error_fields(), "code", str(code))))));
    CHECK(e.code == errc::internal);
    CHECK(e.message == "m");
  }
}

// ---- limits -------------------------------------------------------------------------------

TEST_CASE("a string of 4096 bytes is accepted and a longer one is too_large") {
  auto p = full_page();
  p.summary = std::string(pager_max_string_bytes, 's');
  CHECK(only<pager_page>(from_node(encode_page(p))).summary == p.summary);
  p.summary.push_back('s');
  auto r = from_node(encode_page(p));
  CHECK(r.code() == errc::too_large);
  CHECK(r.error().message() == "message has a string longer than 4096 bytes");
  auto g = from_gateway(encode_status({"p", page_status::accepted, std::string(4097, 'b'), 1}));
  CHECK(g.code() == errc::too_large);
}

TEST_CASE("a details map of 64 entries is accepted and a bigger map is too_large") {
  auto p = full_page();
  p.details.clear();
  for (int i = 0; i < 64; ++i) p.details["sub" + std::to_string(i)] = i;
  CHECK(only<pager_page>(from_node(encode_page(p))).details.size() == 64);
  p.details["one_more"] = 1;
  auto r = from_node(encode_page(p));
  CHECK(r.code() == errc::too_large);
  CHECK(r.error().message() == "message has a map with more than 64 entries");
}

TEST_CASE("containers nested 4 deep are accepted and deeper ones are too_large") {
  // The top-level map is the first level.
  CHECK(from_gateway(bytes(map_of(with(hello_fields(), "extra", nested(3))))).has_value());
  auto r = from_gateway(bytes(map_of(with(hello_fields(), "extra", nested(4)))));
  CHECK(r.code() == errc::too_large);
  CHECK(r.error().message() == "message nests maps and arrays deeper than 4 levels");
  CHECK(from_node(bytes(map_of(with(page_fields(), "extra", nested(1000))))).code() == errc::too_large);
}

TEST_CASE("container headers claiming billions of entries are too_large without allocating them") {
  const std::string huge_array = "\xdd\xff\xff\xff\xff";
  const std::string huge_map = "\xdf\xff\xff\xff\xff";
  const std::string huge_str = "\xdb\xff\xff\xff\xff";
  CHECK(from_gateway(huge_array).code() == errc::too_large);
  CHECK(from_node(huge_map).code() == errc::too_large);
  // A string's length is checked once its bytes are there: without them it is truncated.
  CHECK(from_node(huge_str).code() == errc::malformed);
  CHECK(from_node(huge_str + std::string(4097, 'x')).code() == errc::malformed);
}

TEST_CASE("short binary data in a string field is malformed and long binary data is too_large") {
  CHECK(from_gateway(bytes(map_of(with(hello_fields(), "gateway", bin(64))))).code() == errc::malformed);
  auto r = from_gateway(bytes(map_of(with(hello_fields(), "gateway", bin(65)))));
  CHECK(r.code() == errc::too_large);
  CHECK(contains(r.error().message(), "binary or extension data longer than 64 bytes"));
}

// ---- robustness ---------------------------------------------------------------------------

TEST_CASE("decoding never throws on random corruptions of any message") {
  const std::vector<std::string> frames = {
      encode_hello({"gw-1", {"ward3-nurse", "*"}}),
      encode_status({"d/oxi-1/spo2_low/3@0.0/ward3-nurse", page_status::accepted, "nurse.anna", 1'767'225'630'000}),
      encode_page(full_page()),
      encode_cancel({"d/oxi-1/spo2_low/3@0.0/ward3-nurse", "d/oxi-1/spo2_low/3", "acknowledged"}),
      encode_welcome({"gw-1", {"*"}}),
      encode_error(pager_error{errc::unsupported_version, "pager protocol version 2 is not supported"}),
  };
  std::uint64_t state = 0x9e3779b97f4a7c15u;
  auto next = [&] {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  std::size_t decoded = 0, refused = 0;
  for (int round = 0; round < 10'000; ++round) {
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
          REQUIRE_NOTHROW(ok = from_gateway(mutated).has_value());
          st = from_gateway(mutated).error();
        } else {
          REQUIRE_NOTHROW(ok = from_node(mutated).has_value());
          st = from_node(mutated).error();
        }
        if (ok) {
          ++decoded;
        } else {
          ++refused;
          CHECK(st.code() != errc::ok);
          CHECK_FALSE(st.message().empty());
        }
      }
    }
  }
  // The corruptions must exercise both outcomes, or the loop tests nothing.
  CHECK(decoded > 0);
  CHECK(refused > 0);
}
