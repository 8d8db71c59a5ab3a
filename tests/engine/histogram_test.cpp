#include "engine/histogram.hpp"

#include <catch2/catch.hpp>
#include <thread>
#include <vector>

using namespace alert;

TEST_CASE("a histogram counts each value in the first bucket whose bound holds it") {
  histogram h{{0.001, 0.01, 0.1}};
  for (double v : {0.0005, 0.001, 0.002, 0.05, 0.5, -1.0}) h.observe(v);
  auto s = h.read();
  CHECK(s.bounds == std::vector<double>{0.001, 0.01, 0.1});
  CHECK(s.buckets == std::vector<std::uint64_t>{3, 1, 1, 1});  // -1 counts as 0; 0.5 is over every bound
  CHECK(s.count == 6);
  CHECK(s.sum == Approx(0.5535));
}

TEST_CASE("a histogram loses no observation made from several threads") {
  histogram h{histogram::latency_bounds()};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) h.observe(0.002);
    });
  for (auto& t : threads) t.join();
  auto s = h.read();
  CHECK(s.count == 40000);
  CHECK(s.sum == Approx(80.0));
}
