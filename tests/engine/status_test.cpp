#include "engine/status.hpp"

#include <catch2/catch.hpp>
#include <set>
#include <string>

using namespace alert;

TEST_CASE("every error code has a distinct stable wire name that parses back") {
  std::set<std::string> seen;
  for (int i = 0; i <= static_cast<int>(errc::internal); ++i) {
    auto code = static_cast<errc>(i);
    std::string name{to_string(code)};
    CHECK_FALSE(name.empty());
    CHECK(seen.insert(name).second);
    auto back = errc_from_string(name);
    REQUIRE(back.has_value());
    CHECK(*back == code);
  }
}

TEST_CASE("the wire names integrators depend on do not change") {
  CHECK(to_string(errc::malformed) == "malformed");
  CHECK(to_string(errc::unsupported_version) == "unsupported_version");
  CHECK(to_string(errc::too_large) == "too_large");
  CHECK(to_string(errc::overloaded) == "overloaded");
  CHECK(to_string(errc::unavailable) == "unavailable");
  CHECK(to_string(errc::missing_field) == "missing_field");
  CHECK(to_string(errc::wrong_type) == "wrong_type");
  CHECK(to_string(errc::unknown_metric) == "unknown_metric");
  CHECK(to_string(errc::unit_mismatch) == "unit_mismatch");
  CHECK(to_string(errc::not_finite) == "not_finite");
  CHECK(to_string(errc::value_out_of_range) == "value_out_of_range");
  CHECK(to_string(errc::timestamp_in_future) == "timestamp_in_future");
  CHECK(to_string(errc::invalid_id) == "invalid_id");
  CHECK(to_string(errc::unauthorized) == "unauthorized");
}

TEST_CASE("an unknown wire name parses to nothing") {
  CHECK_FALSE(errc_from_string("no_such_code").has_value());
  CHECK_FALSE(errc_from_string("").has_value());
}

TEST_CASE("a default status is ok and an error status carries code and message") {
  status ok;
  CHECK(ok.is_ok());
  CHECK(static_cast<bool>(ok));
  CHECK(ok.to_string() == "ok");
  status bad{errc::not_found, "no device oxi-1"};
  CHECK_FALSE(bad.is_ok());
  CHECK(bad.code() == errc::not_found);
  CHECK(bad.message() == "no device oxi-1");
  CHECK(bad.to_string() == "not_found: no device oxi-1");
  CHECK(bad != ok);
}

TEST_CASE("a result holds either a value or an error") {
  result<int> good = 42;
  REQUIRE(good.has_value());
  CHECK(*good == 42);
  CHECK(good.error().is_ok());
  CHECK(good.code() == errc::ok);

  result<int> bad{errc::io_error, "disk full"};
  CHECK_FALSE(bad.has_value());
  CHECK(bad.code() == errc::io_error);
  CHECK(bad.error().message() == "disk full");
}

TEST_CASE("a result built from an ok status is an internal error, never a silent value") {
  result<std::string> r{status{}};
  CHECK_FALSE(r.has_value());
  CHECK(r.code() == errc::internal);
}
