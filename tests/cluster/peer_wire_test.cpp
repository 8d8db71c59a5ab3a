// Node-to-node messages (docs/protocol.md, "Between members"): every kind round-trips, and
// what a peer cannot have sent is refused with malformed, never thrown.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "cluster/peer_link.hpp"
#include "tests/support/msgpack_writer.hpp"

using namespace alert;
using namespace alert::cluster::wire;
using namespace alert::test::mp;

namespace {
result<peer_message> decode(const std::string& bytes) { return decode_peer_message(bytes.data(), bytes.size()); }
}  // namespace

TEST_CASE("a heartbeat carries its votes, its monotonic time and the echo of the receiver's") {
  heartbeat h;
  h.from = "node-1";
  h.at = 1'700'000'000'000;
  h.ingest = "tcp://10.0.0.1:7601";
  h.mono = 123'456;
  h.echo = 99'000;
  h.votes = std::string("\x01\x00\x02\x03", 4);
  h.config = 0xfeedfacecafebeefULL;
  auto m = decode(encode_heartbeat(h));
  REQUIRE(m.has_value());
  const auto& got = std::get<heartbeat>(*m);
  CHECK(got.from == h.from);
  CHECK(got.at == h.at);
  CHECK(got.ingest == h.ingest);
  CHECK(got.mono == h.mono);
  CHECK(got.echo == h.echo);
  CHECK(got.votes == h.votes);
  CHECK(got.config == h.config);
  // Before the receiver was heard from, no echo; a member without quorum votes all zeros.
  h.echo.reset();
  auto without = decode(encode_heartbeat(h));
  REQUIRE(without.has_value());
  CHECK_FALSE(std::get<heartbeat>(*without).echo.has_value());
}

TEST_CASE("handoff requests and answers round-trip with their id and shards") {
  auto r = decode(encode_handoff_request({"node-3", 42, {0, 7, 63}}));
  REQUIRE(r.has_value());
  const auto& req = std::get<handoff_request>(*r);
  CHECK(req.from == "node-3");
  CHECK(req.id == 42);
  CHECK(req.shards == std::vector<std::uint32_t>{0, 7, 63});
  auto d = decode(encode_handoff_done({"node-1", 42, {7}}));
  REQUIRE(d.has_value());
  const auto& done = std::get<handoff_done>(*d);
  CHECK(done.from == "node-1");
  CHECK(done.id == 42);
  CHECK(done.shards == std::vector<std::uint32_t>{7});
}

TEST_CASE("peer messages a member cannot have sent are refused as malformed") {
  const entries base{{"v", i64(1)}, {"type", str("handoff_request")}, {"from", str("node-2")}, {"id", u64(1)}};
  auto with = [&](const std::string& key, writer w) {
    auto e = base;
    e.emplace_back(key, std::move(w));
    return bytes(map_of(e));
  };
  CHECK(decode(with("shards", array_of({u64(1), u64(2)}))).has_value());
  // Shard numbers past the largest shard count, negative, or not numbers.
  CHECK(decode(with("shards", array_of({u64(max_shards)}))).code() == errc::malformed);
  CHECK(decode(with("shards", array_of({i64(-1)}))).code() == errc::malformed);
  CHECK(decode(with("shards", str("1,2"))).code() == errc::malformed);
  CHECK(decode(bytes(map_of(base))).code() == errc::malformed);  // no shards
  // A heartbeat whose votes are not bytes, or whose echo is not a number.
  const entries hb{{"v", i64(1)}, {"type", str("heartbeat")}, {"from", str("node-2")}, {"at", i64(5)}};
  auto hb_with = [&](const std::string& key, writer w) {
    auto e = hb;
    e.emplace_back(key, std::move(w));
    return bytes(map_of(e));
  };
  CHECK(decode(hb_with("votes", bin(64))).has_value());
  CHECK(decode(hb_with("votes", str("abc"))).code() == errc::malformed);
  CHECK(decode(hb_with("echo", str("now"))).code() == errc::malformed);
  CHECK(decode(hb_with("mono", nil())).code() == errc::malformed);
  CHECK(decode(hb_with("config", i64(-1))).code() == errc::malformed);
  // Unknown kinds.
  CHECK(decode(bytes(map_of({{"v", i64(1)}, {"type", str("vote")}, {"from", str("x")}}))).code() == errc::malformed);
  // More shards than a cluster may have is refused before it is built.
  std::vector<writer> many(max_shards + 1, u64(0));
  CHECK_FALSE(decode(with("shards", array_of(many))).has_value());
}
