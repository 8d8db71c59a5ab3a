#include "engine/time.hpp"

#include <catch2/catch.hpp>

using namespace alert;

TEST_CASE("a manual clock moves only when told to") {
  manual_clock c{1000};
  CHECK(c.now() == 1000);
  CHECK(c.now() == 1000);
  c.advance(250);
  CHECK(c.now() == 1250);
  c.advance(-5);  // never backwards
  CHECK(c.now() == 1250);
  c.set(5);
  CHECK(c.now() == 5);
  const time_source& as_interface = c;
  CHECK(as_interface.now() == 5);
}
