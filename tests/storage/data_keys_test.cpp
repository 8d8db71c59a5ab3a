#include "storage/data_keys.hpp"

#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/support/temp_dir.hpp"

using namespace alert;
using namespace alert::storage;

namespace {

const std::string hex_a(64, 'a');
const std::string hex_b = std::string(32, '0') + std::string(32, 'F');

// Writes a key file with `mode`.
std::string write_file(const test::temp_dir& dir, const std::string& text, ::mode_t mode = 0600) {
  auto path = dir.sub("keys");
  { std::ofstream{path, std::ios::trunc} << text; }
  REQUIRE(::chmod(path.c_str(), mode) == 0);
  return path;
}

std::string read_file(const std::string& path) {
  std::ifstream in{path};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The error of loading `text` as a key file (which must fail).
status load_error(const std::string& text, ::mode_t mode = 0600) {
  test::temp_dir dir;
  auto keys = load_data_keys(write_file(dir, text, mode));
  REQUIRE_FALSE(keys.has_value());
  return keys.error();
}

bool has(const status& st, const std::string& text) { return st.message().find(text) != std::string::npos; }

}  // namespace

TEST_CASE("a key file gives its index key and data keys, with comments and blank lines") {
  test::temp_dir dir;
  auto path = write_file(dir, "# keys of ward 4\n\nindex " + hex_a + "\n  1\t" + hex_b + "  # the first\n3 " +
                                  hex_a + "\r\n");
  auto keys = load_data_keys(path);
  REQUIRE(keys.has_value());
  const auto& k = **keys;
  CHECK(k.index_key[0] == 0xaa);
  CHECK(k.index_key[31] == 0xaa);
  REQUIRE(k.data.size() == 2);
  CHECK(k.current_id() == 3);
  REQUIRE(k.find(1) != nullptr);
  CHECK((*k.find(1))[0] == 0x00);
  CHECK((*k.find(1))[31] == 0xff);
  CHECK(k.find(2) == nullptr);
}

TEST_CASE("a key file that does not parse is a config error naming the line") {
  SECTION("a short key") {
    auto st = load_error("index " + hex_a + "\n1 abcd\n");
    CHECK(st.code() == errc::config_error);
    CHECK(has(st, "line 2"));
    CHECK(has(st, "64 hex digits"));
  }
  SECTION("a key that is not hex") {
    auto st = load_error("index " + std::string(63, 'a') + "g\n1 " + hex_a + "\n");
    CHECK(st.code() == errc::config_error);
    CHECK(has(st, "line 1"));
  }
  SECTION("three words") {
    auto st = load_error("index " + hex_a + "\n1 " + hex_a + " extra\n");
    CHECK(st.code() == errc::config_error);
    CHECK(has(st, "line 2"));
  }
  SECTION("a key id of 0, a negative one, one too large and a name") {
    for (const char* id : {"0", "-1", "4294967296", "first"}) {
      auto st = load_error("index " + hex_a + "\n" + id + " " + hex_a + "\n");
      CHECK(st.code() == errc::config_error);
      CHECK(has(st, "line 2"));
    }
  }
  SECTION("no index key") {
    auto st = load_error("1 " + hex_a + "\n");
    CHECK(st.code() == errc::config_error);
    CHECK(has(st, "no index key"));
  }
  SECTION("no data key") {
    auto st = load_error("index " + hex_a + "\n");
    CHECK(st.code() == errc::config_error);
    CHECK(has(st, "no data key"));
  }
  SECTION("a key id twice") {
    auto st = load_error("index " + hex_a + "\n1 " + hex_a + "\n# later\n1 " + hex_b + "\n");
    CHECK(st.code() == errc::config_error);
    CHECK(has(st, "line 4"));
    CHECK(has(st, "twice"));
  }
  SECTION("two index keys") {
    auto st = load_error("index " + hex_a + "\nindex " + hex_b + "\n1 " + hex_a + "\n");
    CHECK(st.code() == errc::config_error);
    CHECK(has(st, "line 2"));
  }
}

TEST_CASE("a key file that group or others can read is refused with the chmod to run") {
  for (::mode_t mode : {0640u, 0604u, 0620u, 0666u}) {
    auto st = load_error("index " + hex_a + "\n1 " + hex_a + "\n", mode);
    CHECK(st.code() == errc::config_error);
    CHECK(has(st, "chmod 600"));
  }
}

TEST_CASE("a key file that cannot be read is a config error naming it") {
  test::temp_dir dir;
  auto missing = load_data_keys(dir.sub("nowhere"));
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.code() == errc::config_error);
  CHECK(has(missing.error(), dir.sub("nowhere")));
  auto directory = load_data_keys(dir.str());
  REQUIRE_FALSE(directory.has_value());
  CHECK(directory.code() == errc::config_error);
}

TEST_CASE("a new key file is private, has an index key and key 1, and is never overwritten") {
  test::temp_dir dir;
  const auto path = dir.sub("keys");
  REQUIRE(create_data_key_file(path).is_ok());
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  auto keys = load_data_keys(path);
  REQUIRE(keys.has_value());
  CHECK((*keys)->current_id() == 1);
  CHECK((*keys)->data.size() == 1);
  CHECK((*keys)->index_key != (*keys)->data.at(1));
  const auto before = read_file(path);
  auto again = create_data_key_file(path);
  CHECK(again.code() == errc::config_error);
  CHECK(has(again, "exists"));
  CHECK(read_file(path) == before);

  // Two files never share keys.
  REQUIRE(create_data_key_file(dir.sub("other")).is_ok());
  auto other = *load_data_keys(dir.sub("other"));
  CHECK(other->index_key != (*keys)->index_key);
  CHECK(other->data.at(1) != (*keys)->data.at(1));
}

TEST_CASE("adding a data key appends the next id and keeps every key and comment") {
  test::temp_dir dir;
  const auto path = dir.sub("keys");
  REQUIRE(create_data_key_file(path).is_ok());
  const auto first = *load_data_keys(path);
  auto id = add_data_key(path);
  REQUIRE(id.has_value());
  CHECK(*id == 2);
  CHECK(*add_data_key(path) == 3);
  auto keys = *load_data_keys(path);
  CHECK(keys->current_id() == 3);
  CHECK(keys->index_key == first->index_key);
  CHECK(keys->data.at(1) == first->data.at(1));
  CHECK(keys->data.at(2) != keys->data.at(3));
  CHECK(read_file(path).rfind("# alertd data keys", 0) == 0);
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  // Nothing left beside it.
  std::size_t files = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator{dir.path()}) ++files;
  CHECK(files == 1);
}

TEST_CASE("adding a data key to a file without a final newline or with a gap in the ids") {
  test::temp_dir dir;
  auto path = write_file(dir, "index " + hex_a + "\n7 " + hex_b);
  CHECK(*add_data_key(path) == 8);
  auto keys = *load_data_keys(path);
  CHECK(keys->data.size() == 2);
  CHECK(keys->current_id() == 8);
}

TEST_CASE("adding a data key to a file that does not load changes nothing") {
  test::temp_dir dir;
  auto path = write_file(dir, "index " + hex_a + "\n", 0600);
  CHECK(add_data_key(path).code() == errc::config_error);
  CHECK(read_file(path) == "index " + hex_a + "\n");
  CHECK(add_data_key(dir.sub("missing")).code() == errc::config_error);
}

TEST_CASE("a key file inside the data directory is refused") {
  test::temp_dir dir;
  CHECK(check_data_key_file_location(dir.sub("data/keys"), dir.sub("data")).code() == errc::config_error);
  CHECK(check_data_key_file_location(dir.sub("data/sub/keys"), dir.sub("data") + "/").code() == errc::config_error);
  CHECK(check_data_key_file_location(dir.sub("keys"), dir.sub("data")).is_ok());
  CHECK(check_data_key_file_location(dir.sub("data-keys"), dir.sub("data")).is_ok());
}
