#include "engine/access.hpp"

#include <catch2/catch.hpp>

using namespace alert;

TEST_CASE("device and target patterns: exact ids, prefixes ending in '*', and '*'") {
  const std::vector<std::string> p{"oxi-7", "w3-*"};
  CHECK(matches_any(p, "oxi-7"));
  CHECK_FALSE(matches_any(p, "oxi-70"));
  CHECK_FALSE(matches_any(p, "oxi-"));
  CHECK(matches_any(p, "w3-bp-1"));
  CHECK(matches_any(p, "w3-"));
  CHECK_FALSE(matches_any(p, "w4-bp-1"));
  CHECK_FALSE(matches_any(p, "W3-bp-1"));
  CHECK(matches_any({"*"}, "anything"));
  CHECK_FALSE(matches_any({}, "oxi-7"));
}

TEST_CASE("each endpoint admits only the roles that use it") {
  CHECK(may_connect(role::integrator, endpoint_kind::ingest));
  CHECK_FALSE(may_connect(role::integrator, endpoint_kind::pager));
  CHECK_FALSE(may_connect(role::integrator, endpoint_kind::control));
  CHECK(may_connect(role::gateway, endpoint_kind::pager));
  CHECK_FALSE(may_connect(role::gateway, endpoint_kind::ingest));
  CHECK_FALSE(may_connect(role::gateway, endpoint_kind::control));
  for (auto r : {role::operator_, role::clinician, role::auditor}) {
    CHECK(may_connect(r, endpoint_kind::control));
    CHECK_FALSE(may_connect(r, endpoint_kind::ingest));
    CHECK_FALSE(may_connect(r, endpoint_kind::pager));
    CHECK_FALSE(may_connect(r, endpoint_kind::peer));
  }
  CHECK(may_connect(role::node, endpoint_kind::peer));
  CHECK_FALSE(may_connect(role::operator_, endpoint_kind::peer));
}

TEST_CASE("roles and names round-trip, and unknown ones are refused") {
  for (auto r : {role::integrator, role::gateway, role::operator_, role::clinician, role::auditor, role::node})
    CHECK(role_from_string(to_string(r)) == r);
  CHECK(to_string(role::operator_) == "operator");
  CHECK_FALSE(role_from_string("admin").has_value());
  CHECK(endpoint_from_string("control") == endpoint_kind::control);
  CHECK_FALSE(endpoint_from_string("metrics").has_value());
}

TEST_CASE("an unknown command is refused for every role") {
  for (auto r : {role::integrator, role::gateway, role::operator_, role::clinician, role::auditor, role::node})
    CHECK_FALSE(may_run(r, "drop-database"));
}

TEST_CASE("the access list finds parties by key and by name and refuses duplicates") {
  access_list l;
  principal a{"ward3", role::integrator, std::string(40, 'a'), {"w3-*"}, {}};
  REQUIRE(l.add(a));
  CHECK(l.by_key(std::string(40, 'a'))->name == "ward3");
  CHECK(l.by_name("ward3")->what == role::integrator);
  CHECK(l.by_key(std::string(40, 'b')) == nullptr);
  CHECK(l.by_name("nobody") == nullptr);
  principal same_name{"ward3", role::gateway, std::string(40, 'c'), {}, {"x"}};
  CHECK(l.add(same_name).code() == errc::invalid_argument);
  principal same_key{"other", role::gateway, std::string(40, 'a'), {}, {"x"}};
  auto s = l.add(same_key);
  CHECK(s.code() == errc::invalid_argument);
  CHECK(s.message().find("ward3") != std::string::npos);
  CHECK(l.size() == 1);
}
