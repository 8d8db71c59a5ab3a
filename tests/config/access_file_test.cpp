#include "config/access_file.hpp"

#include <catch2/catch.hpp>

using namespace alert;
using namespace alert::config;

namespace {
const std::string k1 = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";
const std::string k2 = "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID";
const std::string k3 = "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6";

std::string error_of(const std::string& yaml) {
  auto r = parse_access(yaml, "access.yaml");
  REQUIRE_FALSE(r.has_value());
  CHECK(r.code() == errc::config_error);
  return r.error().message();
}
}  // namespace

TEST_CASE("an access file maps keys to names, roles and allowances") {
  auto r = parse_access("version: 1\nkeys:\n"
                        "  - name: ward3-monitors\n    role: integrator\n    public-key: \"" + k1 + "\"\n"
                        "    devices: [\"w3-*\", oxi-7]\n"
                        "  - name: ward-pagers\n    role: gateway\n    public-key: \"" + k2 + "\"\n"
                        "    targets: [ward-nurse, charge-nurse]\n"
                        "  - name: olga\n    role: operator\n    public-key: \"" + k3 + "\"\n");
  REQUIRE(r.has_value());
  CHECK(r->size() == 3);
  const auto* w = r->by_key(k1);
  REQUIRE(w != nullptr);
  CHECK(w->name == "ward3-monitors");
  CHECK(w->what == role::integrator);
  CHECK(w->devices == std::vector<std::string>{"w3-*", "oxi-7"});
  CHECK(r->by_name("ward-pagers")->targets.size() == 2);
  CHECK(r->by_name("olga")->what == role::operator_);
}

TEST_CASE("access file mistakes are refused with the entry and what is wrong") {
  const std::string head = "version: 1\nkeys:\n";
  CHECK(error_of("keys: []\n").find("'version: 1' is required") != std::string::npos);
  CHECK(error_of(head + "  - {name: a, role: admin, public-key: \"" + k1 + "\"}\n").find("'admin' is not one of") !=
        std::string::npos);
  CHECK(error_of(head + "  - {name: a, role: operator, public-key: short}\n").find("Z85 CURVE key of 40") !=
        std::string::npos);
  CHECK(error_of(head + "  - {name: a, role: integrator, public-key: \"" + k1 + "\"}\n").find("needs 'devices'") !=
        std::string::npos);
  CHECK(error_of(head + "  - {name: a, role: gateway, public-key: \"" + k1 + "\"}\n").find("needs 'targets'") !=
        std::string::npos);
  CHECK(error_of(head + "  - {name: a, role: operator, public-key: \"" + k1 + "\", devices: [x]}\n")
            .find("only integrators") != std::string::npos);
  CHECK(error_of(head + "  - {name: a, role: operator, public-key: \"" + k1 + "\", colour: red}\n")
            .find("unknown field 'colour'") != std::string::npos);
  CHECK(error_of(head + "  - {name: a, role: operator, public-key: \"" + k1 + "\"}\n" +
                 "  - {name: b, role: auditor, public-key: \"" + k1 + "\"}\n")
            .find("already the key of 'a'") != std::string::npos);
  CHECK(error_of(head + "  - {name: a, role: operator, public-key: \"" + k1 + "\"}\n" +
                 "  - {name: a, role: auditor, public-key: \"" + k2 + "\"}\n")
            .find("given twice") != std::string::npos);
  CHECK(error_of(head + "  - {role: operator, public-key: \"" + k1 + "\"}\n").find("'name' is required") !=
        std::string::npos);
  CHECK(error_of("version: 1\nkeys: [\n").find("not valid YAML") != std::string::npos);
  auto missing = load_access_file("/nonexistent/access.yaml");
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.error().message().find("/nonexistent/access.yaml") != std::string::npos);
}
