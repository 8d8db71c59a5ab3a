// libFuzzer target for the ingest wire codec (cluster/ingest_wire.cpp).
//
// Every input goes through the path the ingest endpoint takes (decode_request with the
// endpoint's default limits, then make_reading on every decoded reading at a fixed node
// time), through decode_request again with tight limits, and through decode_reply. Besides
// the sanitizers, invariants that can fail are checked (a failure is __builtin_trap()):
//
//  * the documented shape of a decoded request: on error nothing else is returned; on
//    success the accepted and rejected indexes partition 0..n-1 and per-reading codes are
//    missing_field / wrong_type only; make_reading refuses only with per-reading codes and
//    keeps what it was given;
//  * request round trip: a request that decodes without error, re-encoded with
//    encode_request(batch, readings), decodes again without error to the same batch id and
//    the same readings (device, metric, value bit-for-bit or both NaN, ts, seq, patient,
//    unit), none rejected; encoding that result gives the same bytes again;
//  * limits are monotone: a decode with tight limits that does not fail with too_large gives
//    exactly what the default limits give;
//  * reply round trip: a reply that decodes, re-encoded with encode_ack / encode_error,
//    decodes to an equal reply.
//
// Build and run: see README.md next to this file.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "cluster/ingest_wire.hpp"
#include "engine/ids.hpp"
#include "engine/metric.hpp"
#include "engine/reading.hpp"
#include "engine/status.hpp"

namespace {

using namespace alert;
using namespace alert::wire;

/// Node time used for make_reading: fixed, so a run is reproducible.
constexpr epoch_ms fixed_now = 1'700'000'000'000;

[[noreturn]] void violated(const char* what, const char* file, int line) {
  std::fprintf(stderr, "fuzz_ingest_decode: invariant violated at %s:%d: %s\n", file, line, what);
  std::fflush(stderr);
  __builtin_trap();
}

#define FUZZ_CHECK(cond)                                       \
  do {                                                         \
    if (!(cond)) violated(#cond, __FILE__, __LINE__);          \
  } while (false)

bool same_double(double a, double b) {
  if (std::isnan(a) && std::isnan(b)) return true;
  std::uint64_t x = 0;
  std::uint64_t y = 0;
  std::memcpy(&x, &a, sizeof x);
  std::memcpy(&y, &b, sizeof y);
  return x == y;
}

bool same_reading(const reading_input& a, const reading_input& b) {
  return a.device == b.device && a.metric == b.metric && same_double(a.value, b.value) && a.ts == b.ts &&
         a.seq == b.seq && a.patient == b.patient && a.unit == b.unit;
}

bool same_readings(const std::vector<reading_input>& a, const std::vector<reading_input>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (!same_reading(a[i], b[i])) return false;
  return true;
}

bool same_request(const ingest_request& a, const ingest_request& b) {
  return a.error == b.error && a.batch == b.batch && same_readings(a.readings, b.readings) &&
         a.indexes == b.indexes && a.rejected == b.rejected;
}

bool is_request_error(errc c) {
  return c == errc::malformed || c == errc::unsupported_version || c == errc::too_large;
}

bool is_reading_error(errc c) {
  switch (c) {
    case errc::invalid_id:
    case errc::unknown_metric:
    case errc::unit_mismatch:
    case errc::not_finite:
    case errc::value_out_of_range:
    case errc::timestamp_in_future: return true;
    default: return false;
  }
}

/// The contract of decode_request as documented in ingest_wire.hpp.
void check_request_shape(const ingest_request& req, const decode_limits& limits) {
  if (!req.error) {
    FUZZ_CHECK(is_request_error(req.error.code()));
    FUZZ_CHECK(req.readings.empty() && req.indexes.empty() && req.rejected.empty());
    return;
  }
  FUZZ_CHECK(!std::holds_alternative<std::monostate>(req.batch));
  FUZZ_CHECK(req.readings.size() == req.indexes.size());
  const std::size_t count = req.readings.size() + req.rejected.size();
  FUZZ_CHECK(count <= limits.max_readings);
  // The accepted and the rejected indexes, both ascending, partition 0..count-1.
  std::size_t a = 0;
  std::size_t r = 0;
  for (std::size_t i = 0; i < count; ++i) {
    if (a < req.indexes.size() && req.indexes[a] == i) {
      ++a;
    } else {
      FUZZ_CHECK(r < req.rejected.size() && req.rejected[r].index == i);
      ++r;
    }
  }
  FUZZ_CHECK(a == req.indexes.size() && r == req.rejected.size());
  for (const auto& rej : req.rejected) {
    FUZZ_CHECK(rej.code == errc::missing_field || rej.code == errc::wrong_type);
    FUZZ_CHECK(!rej.message.empty());
  }
  for (const auto& in : req.readings) {
    FUZZ_CHECK(in.device.size() <= limits.max_string_bytes);
    FUZZ_CHECK(in.metric.size() <= limits.max_string_bytes);
    FUZZ_CHECK(!in.patient || in.patient->size() <= limits.max_string_bytes);
    FUZZ_CHECK(!in.unit || in.unit->size() <= limits.max_string_bytes);
  }
  if (const auto* s = std::get_if<std::string>(&req.batch)) FUZZ_CHECK(s->size() <= limits.max_string_bytes);
  // An unsigned batch id is only used above INT64_MAX (see batch_of_integer).
  if (const auto* u = std::get_if<std::uint64_t>(&req.batch))
    FUZZ_CHECK(*u > static_cast<std::uint64_t>(INT64_MAX));
}

/// What the endpoint does next with each decoded reading.
void check_make_reading(const ingest_request& req) {
  for (const auto& in : req.readings) {
    const auto r = make_reading(in, fixed_now);
    if (!r) {
      FUZZ_CHECK(is_reading_error(r.code()));
      FUZZ_CHECK(!r.error().message().empty());
      continue;
    }
    FUZZ_CHECK(r->device.str() == in.device);
    FUZZ_CHECK(r->patient.has_value() == in.patient.has_value());
    FUZZ_CHECK(!r->patient || r->patient->str() == *in.patient);
    FUZZ_CHECK(info(r->what).name == in.metric);
    FUZZ_CHECK(std::isfinite(r->value));
    FUZZ_CHECK(r->value >= info(r->what).min && r->value <= info(r->what).max);
    FUZZ_CHECK(r->ts == in.ts && r->ts >= 0 && r->ts <= fixed_now + default_max_future_ms);
    FUZZ_CHECK(r->seq == in.seq);
  }
}

/// encode_request(decode_request(x)) decodes to the same batch and readings.
void check_request_round_trip(const ingest_request& req, const decode_limits& limits) {
  const std::string bytes = encode_request(req.batch, req.readings);
  const ingest_request again = decode_request(bytes.data(), bytes.size(), limits);
  FUZZ_CHECK(again.error.is_ok());
  FUZZ_CHECK(again.batch == req.batch);
  FUZZ_CHECK(again.rejected.empty());
  FUZZ_CHECK(again.readings.size() == req.readings.size());
  FUZZ_CHECK(again.indexes.size() == again.readings.size());
  for (std::size_t i = 0; i < again.indexes.size(); ++i) FUZZ_CHECK(again.indexes[i] == i);
  for (std::size_t i = 0; i < again.readings.size(); ++i) {
    const auto& a = req.readings[i];
    const auto& b = again.readings[i];
    FUZZ_CHECK(a.device == b.device);
    FUZZ_CHECK(a.metric == b.metric);
    FUZZ_CHECK(same_double(a.value, b.value));
    FUZZ_CHECK(a.ts == b.ts);
    FUZZ_CHECK(a.seq == b.seq);
    FUZZ_CHECK(a.patient == b.patient);
    FUZZ_CHECK(a.unit == b.unit);
  }
  // The encoding of a decoded request is a fixed point.
  FUZZ_CHECK(encode_request(again.batch, again.readings) == bytes);
}

/// encode_ack / encode_error of a decoded reply decode to an equal reply.
void check_reply_round_trip(const ingest_reply& reply) {
  if (const auto* ack = std::get_if<ingest_ack>(&reply)) {
    FUZZ_CHECK(!std::holds_alternative<std::uint64_t>(ack->batch) ||
               std::get<std::uint64_t>(ack->batch) > static_cast<std::uint64_t>(INT64_MAX));
    for (const auto& r : ack->rejected) FUZZ_CHECK(r.code != errc::ok);
    const std::string bytes = encode_ack(*ack);
    const auto again = decode_reply(bytes.data(), bytes.size());
    FUZZ_CHECK(again.has_value());
    const auto* ack2 = std::get_if<ingest_ack>(&*again);
    FUZZ_CHECK(ack2 != nullptr);
    FUZZ_CHECK(ack2->batch == ack->batch);
    FUZZ_CHECK(ack2->accepted == ack->accepted);
    FUZZ_CHECK(ack2->duplicates == ack->duplicates);
    FUZZ_CHECK(ack2->rejected == ack->rejected);
    return;
  }
  const auto& err = std::get<ingest_error>(reply);
  FUZZ_CHECK(err.code != errc::ok);
  const std::string bytes = encode_error(err);
  const auto again = decode_reply(bytes.data(), bytes.size());
  FUZZ_CHECK(again.has_value());
  const auto* err2 = std::get_if<ingest_error>(&*again);
  FUZZ_CHECK(err2 != nullptr);
  FUZZ_CHECK(err2->batch == err.batch);
  FUZZ_CHECK(err2->code == err.code);
  FUZZ_CHECK(err2->message == err.message);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const char* bytes = reinterpret_cast<const char*>(data);

  // 1. The endpoint's path: ingest_options' default limits, then make_reading per reading.
  const decode_limits limits{};
  const ingest_request req = decode_request(bytes, size, limits);
  check_request_shape(req, limits);
  check_make_reading(req);
  if (req.error.is_ok()) check_request_round_trip(req, limits);
  (void)to_string(req.batch);  // what the endpoint logs

  // 2. Tight limits reach the too_large paths with small inputs. Limits only ever refuse:
  //    unless the tight decode hit one, it must agree with the default decode exactly.
  decode_limits tight;
  tight.max_readings = 3;
  tight.max_string_bytes = 16;
  tight.max_map_entries = 8;
  tight.max_depth = 4;
  const ingest_request small = decode_request(bytes, size, tight);
  check_request_shape(small, tight);
  if (small.error.code() != errc::too_large) FUZZ_CHECK(same_request(small, req));

  // 3. The client's side: replies.
  const auto reply = decode_reply(bytes, size);
  if (reply.has_value()) {
    check_reply_round_trip(*reply);
  } else {
    const errc c = reply.code();
    FUZZ_CHECK(c == errc::malformed || c == errc::unsupported_version);
  }
  return 0;
}
