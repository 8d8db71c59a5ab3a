#include "engine/ids.hpp"

#include <catch2/catch.hpp>
#include <string>
#include <unordered_set>

using namespace alert;

TEST_CASE("ids of letters, digits and - _ . : @ are valid") {
  for (const char* id : {"oxi-0042", "P100234", "ward3.bed7", "gw:oxi_1", "dev@site", "a", "9"}) {
    INFO(id);
    CHECK(validate_id(id).is_ok());
    CHECK(device_id::make(id).has_value());
    CHECK(patient_id::make(id).has_value());
  }
}

TEST_CASE("an empty id is invalid") {
  auto st = validate_id("");
  CHECK(st.code() == errc::invalid_id);
  CHECK(st.message().find("empty") != std::string::npos);
}

TEST_CASE("an id of 64 bytes is valid and one of 65 is not") {
  CHECK(validate_id(std::string(64, 'a')).is_ok());
  auto st = validate_id(std::string(65, 'a'));
  CHECK(st.code() == errc::invalid_id);
  CHECK(st.message().find("65") != std::string::npos);
}

TEST_CASE("control characters, spaces, slashes and non-ASCII bytes are refused with their offset") {
  CHECK(validate_id(std::string("ab\ncd")).code() == errc::invalid_id);
  CHECK(validate_id(std::string("ab\0cd", 5)).code() == errc::invalid_id);
  CHECK(validate_id("a b").code() == errc::invalid_id);
  CHECK(validate_id("a/b").code() == errc::invalid_id);
  CHECK(validate_id("a\x7f").code() == errc::invalid_id);
  CHECK(validate_id("caf\xc3\xa9").code() == errc::invalid_id);
  auto st = validate_id("ab\x1b[31m");
  CHECK(st.message().find("0x1b") != std::string::npos);
  CHECK(st.message().find("offset 2") != std::string::npos);
}

TEST_CASE("an id must start with a letter or digit") {
  CHECK(validate_id("-x").code() == errc::invalid_id);
  CHECK(validate_id(".hidden").code() == errc::invalid_id);
  CHECK(validate_id("@x").code() == errc::invalid_id);
}

TEST_CASE("device and patient ids name what was wrong") {
  auto d = device_id::make("");
  REQUIRE_FALSE(d.has_value());
  CHECK(d.error().message().find("device id") != std::string::npos);
  auto p = patient_id::make("x y");
  REQUIRE_FALSE(p.has_value());
  CHECK(p.error().message().find("patient id") != std::string::npos);
}

TEST_CASE("ids compare and hash by their text") {
  auto a = *device_id::make("oxi-1");
  auto b = *device_id::make("oxi-1");
  auto c = *device_id::make("oxi-2");
  CHECK(a == b);
  CHECK(a != c);
  CHECK(a < c);
  std::unordered_set<device_id> set{a, b, c};
  CHECK(set.size() == 2);
  CHECK(a.str() == "oxi-1");
}
