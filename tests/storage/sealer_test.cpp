#include "storage/sealer.hpp"

#include <atomic>
#include <catch2/catch.hpp>
#include <set>
#include <thread>
#include <vector>

#include "tests/storage/keyed.hpp"

using namespace alert;
using namespace alert::storage;

TEST_CASE("a sealed value opens to its plaintext with the same aad") {
  sealer s{test::fixed_keys()};
  REQUIRE(s.check().is_ok());
  for (std::string plain : {std::string{}, std::string{"x"}, std::string(1000, 'v'), std::string("\0\1\2", 3)}) {
    auto sealed = s.seal(plain, "j-key");
    CHECK(sealed.size() == plain.size() + sealer::overhead);
    CHECK(static_cast<std::uint8_t>(sealed[0]) == sealer::format);
    CHECK(sealed.substr(1, 4) == std::string("\0\0\0\1", 4));  // key id 1, big-endian
    // Only a long plaintext can be looked for: a byte or three turn up in random ciphertext.
    if (plain.size() >= 16) CHECK(sealed.find(plain) == std::string::npos);
    auto opened = s.open(sealed, "j-key");
    REQUIRE(opened.has_value());
    CHECK(*opened == plain);
  }
}

TEST_CASE("an aad given in two parts is the same aad as their concatenation") {
  sealer s{test::fixed_keys()};
  std::string sealed;
  s.seal_to(sealed, "value", "j", "key");
  CHECK(*s.open(sealed, "jkey") == "value");
  std::string out;
  CHECK(s.open_to(out, s.seal("value", "jkey"), "j", "key").is_ok());
  CHECK(out == "value");
}

TEST_CASE("a sealed value that was changed, moved or truncated does not open") {
  sealer s{test::fixed_keys()};
  const auto sealed = s.seal("spo2 84", "j-key-1");
  SECTION("every byte flipped in turn") {
    for (std::size_t i = 0; i < sealed.size(); ++i) {
      auto bad = sealed;
      bad[i] = static_cast<char>(bad[i] ^ 0x01);
      auto opened = s.open(bad, "j-key-1");
      REQUIRE_FALSE(opened.has_value());
      CHECK(opened.code() == errc::corruption);
    }
  }
  SECTION("another aad: the value moved to another key or column family") {
    CHECK(s.open(sealed, "j-key-2").code() == errc::corruption);
    CHECK(s.open(sealed, "s-key-1").code() == errc::corruption);
    CHECK(s.open(sealed, "").code() == errc::corruption);
  }
  SECTION("truncated or not sealed at all") {
    CHECK(s.open(sealed.substr(0, sealed.size() - 1), "j-key-1").code() == errc::corruption);
    CHECK(s.open(sealed.substr(0, 10), "j-key-1").code() == errc::corruption);
    CHECK(s.open(std::string(40, '\1'), "j-key-1").code() == errc::corruption);
  }
  SECTION("other keys with the same key id") {
    sealer other{test::fixed_keys(2)};
    auto opened = other.open(sealed, "j-key-1");
    CHECK(opened.code() == errc::corruption);
    CHECK(opened.error().message().find("does not authenticate") != std::string::npos);
  }
}

TEST_CASE("a value sealed with a data key the keys do not hold names the missing key") {
  auto newer = test::fixed_keys(1, 3);
  auto without_3 = std::make_shared<data_keys>(*newer);
  without_3->data.erase(3);
  const auto sealed = sealer{newer}.seal("value", "aad");
  CHECK(sealed.substr(1, 4) == std::string("\0\0\0\3", 4));  // the newest key seals
  auto opened = sealer{without_3}.open(sealed, "aad");
  REQUIRE_FALSE(opened.has_value());
  CHECK(opened.code() == errc::corruption);
  CHECK(opened.error().message().find("data key 3") != std::string::npos);
  // Older keys stay usable: what key 1 sealed opens with keys 1 to 3.
  CHECK(*sealer{newer}.open(sealer{test::fixed_keys(1, 1)}.seal("old", "aad"), "aad") == "old");
}

TEST_CASE("sealing the same value twice gives different bytes") {
  sealer s{test::fixed_keys()};
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) seen.insert(s.seal("same", "aad"));
  CHECK(seen.size() == 1000);
  std::set<std::string> nonces;
  for (const auto& v : seen) nonces.insert(v.substr(5, 12));
  CHECK(nonces.size() == 1000);
}

TEST_CASE("ids hash to 16 bytes under the index key, and pass through without keys") {
  sealer s{test::fixed_keys()};
  auto h = s.id("patient-7f3a9c");
  CHECK(h.size() == sealer::id_size);
  CHECK(h == s.id("patient-7f3a9c"));
  CHECK(h != s.id("patient-7f3a9d"));
  CHECK(h != sealer{test::fixed_keys(2)}.id("patient-7f3a9c"));
  CHECK(h == sealer{test::fixed_keys(1, 5)}.id("patient-7f3a9c"));  // data keys do not matter
  CHECK(s.key_check().size() == 32);
  CHECK(s.key_check() != sealer{test::fixed_keys(2)}.key_check());

  sealer none;
  CHECK_FALSE(none.enabled());
  CHECK(none.check().is_ok());
  CHECK(none.id("oxi-1") == "oxi-1");
  CHECK(none.seal("plain", "aad") == "plain");
  CHECK(*none.open("plain", "aad") == "plain");
  CHECK(none.key_check().empty());
}

TEST_CASE("data keys without a data key fail the check") {
  auto keys = std::make_shared<data_keys>();
  CHECK(sealer{keys}.check().code() == errc::config_error);
}

TEST_CASE("sealers on many threads, with different keys, each open what they sealed") {
  sealer a{test::fixed_keys(1)}, b{test::fixed_keys(2, 2)};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) {
        const auto& s = (i + t) % 2 ? a : b;
        const auto& other = (i + t) % 2 ? b : a;
        auto plain = std::to_string(t) + "/" + std::to_string(i);
        auto aad = "aad" + plain;
        auto sealed = s.seal(plain, aad);
        auto opened = s.open(sealed, aad);
        if (!opened || *opened != plain) ++failures;
        if (other.open(sealed, aad)) ++failures;
        if (s.id(plain) == other.id(plain)) ++failures;
      }
    });
  for (auto& t : threads) t.join();
  CHECK(failures == 0);
}
