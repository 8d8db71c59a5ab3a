#include "storage/data_keys.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string_view>

#include <openssl/crypto.h>
#include <openssl/rand.h>

namespace alert::storage {
namespace {

// Wipes a buffer that held key material when it goes away.
struct wiped {
  std::string text;
  ~wiped() {
    if (!text.empty()) OPENSSL_cleanse(text.data(), text.size());
  }
};

status config(std::string msg) { return {errc::config_error, std::move(msg)}; }

std::string sys_error() { return std::strerror(errno); }

int hex_digit(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool parse_hex_key(std::string_view text, data_keys::key_bytes& out) noexcept {
  if (text.size() != 2 * out.size()) return false;
  for (std::size_t i = 0; i < out.size(); ++i) {
    const int hi = hex_digit(text[2 * i]), lo = hex_digit(text[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<unsigned char>(hi * 16 + lo);
  }
  return true;
}

bool parse_id(std::string_view text, std::uint32_t& out) noexcept {
  if (text.empty() || text.size() > 10) return false;
  std::uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  if (v == 0 || v > std::numeric_limits<std::uint32_t>::max()) return false;
  out = static_cast<std::uint32_t>(v);
  return true;
}

// A fresh random key as 64 hex digits.
result<std::string> random_hex_key() {
  data_keys::key_bytes k{};
  if (RAND_bytes(k.data(), static_cast<int>(k.size())) != 1)
    return status{errc::internal, "OpenSSL could not produce random bytes for a data key"};
  static const char* digits = "0123456789abcdef";
  std::string hex;
  hex.reserve(2 * k.size());
  for (auto b : k) {
    hex += digits[b >> 4];
    hex += digits[b & 15];
  }
  OPENSSL_cleanse(k.data(), k.size());
  return hex;
}

// Reads the whole key file into `content` after checking what it is and who may read it.
status read_key_file(const std::string& path, std::string& content) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return config("cannot read data key file " + path + ": " + sys_error());
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    auto msg = "cannot read data key file " + path + ": " + sys_error();
    ::close(fd);
    return config(std::move(msg));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return config("data key file " + path + " is not a regular file");
  }
  if ((st.st_mode & 077) != 0) {
    ::close(fd);
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return config("data key file " + path + " can be read or written by group or others (mode " + mode +
                  "); run: chmod 600 " + path);
  }
  char buf[4096];
  for (;;) {
    const auto n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      auto msg = "cannot read data key file " + path + ": " + sys_error();
      ::close(fd);
      OPENSSL_cleanse(buf, sizeof buf);
      return config(std::move(msg));
    }
    if (n == 0) break;
    content.append(buf, static_cast<std::size_t>(n));
    if (content.size() > (1u << 20)) {
      ::close(fd);
      OPENSSL_cleanse(buf, sizeof buf);
      return config("data key file " + path + " is larger than 1 MiB: not a key file");
    }
  }
  ::close(fd);
  OPENSSL_cleanse(buf, sizeof buf);
  return {};
}

result<std::shared_ptr<const data_keys>> parse_key_file(const std::string& path, std::string_view content) {
  auto keys = std::make_shared<data_keys>();
  bool have_index = false;
  std::size_t line_no = 0, pos = 0;
  while (pos < content.size()) {
    ++line_no;
    auto end = content.find('\n', pos);
    if (end == std::string_view::npos) end = content.size();
    auto line = content.substr(pos, end - pos);
    pos = end + 1;
    if (auto hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
    // Two words, separated by blanks.
    std::string_view words[3];
    std::size_t count = 0, i = 0;
    auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\r'; };
    while (i < line.size()) {
      while (i < line.size() && blank(line[i])) ++i;
      if (i == line.size()) break;
      const auto start = i;
      while (i < line.size() && !blank(line[i])) ++i;
      if (count < 3) words[count] = line.substr(start, i - start);
      ++count;
    }
    if (count == 0) continue;
    const auto where = "data key file " + path + " line " + std::to_string(line_no) + ": ";
    if (count != 2) return config(where + "expected `index <64 hex digits>` or `<key id> <64 hex digits>`");
    data_keys::key_bytes key{};
    if (!parse_hex_key(words[1], key))
      return config(where + "the key must be 64 hex digits (32 bytes), e.g. from: alertctl keygen --data-keys FILE");
    if (words[0] == "index") {
      if (have_index) return config(where + "a second index key (there is one per data directory)");
      keys->index_key = key;
      have_index = true;
    } else {
      std::uint32_t id = 0;
      if (!parse_id(words[0], id))
        return config(where + (words[0].size() <= 12 ? "`" + std::string{words[0]} + "`" : std::string{"the first word"}) +
                      " is neither `index` nor a key id from 1 to 4294967295");
      if (!keys->data.emplace(id, key).second) return config(where + "key id " + std::to_string(id) + " appears twice");
    }
    OPENSSL_cleanse(key.data(), key.size());
  }
  if (!have_index) return config("data key file " + path + " has no index key (a line `index <64 hex digits>`)");
  if (keys->data.empty())
    return config("data key file " + path + " has no data key (a line `<key id> <64 hex digits>`)");
  return std::shared_ptr<const data_keys>{std::move(keys)};
}

status fsync_dir_of(const std::filesystem::path& file) {
  auto dir = file.parent_path();
  if (dir.empty()) dir = ".";
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return {errc::io_error, "cannot open directory " + dir.string() + ": " + sys_error()};
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return {errc::io_error, "cannot sync directory " + dir.string() + ": " + sys_error()};
  return {};
}

// Writes all of `text` to `fd`, then syncs it.
bool write_all(int fd, std::string_view text) {
  while (!text.empty()) {
    const auto n = ::write(fd, text.data(), text.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    text.remove_prefix(static_cast<std::size_t>(n));
  }
  return ::fsync(fd) == 0;
}

}  // namespace

data_keys::~data_keys() {
  OPENSSL_cleanse(index_key.data(), index_key.size());
  for (auto& [id, key] : data) OPENSSL_cleanse(key.data(), key.size());
}

const data_keys::key_bytes* data_keys::find(std::uint32_t id) const noexcept {
  auto it = data.find(id);
  return it == data.end() ? nullptr : &it->second;
}

result<std::shared_ptr<const data_keys>> load_data_keys(const std::string& path) {
  wiped content;
  if (auto st = read_key_file(path, content.text); !st) return st;
  return parse_key_file(path, content.text);
}

status create_data_key_file(const std::string& path) {
  auto index = random_hex_key();
  if (!index) return index.error();
  auto first = random_hex_key();
  if (!first) return first.error();
  wiped text;
  text.text = "# alertd data keys (docs/security.md, \"Encryption at rest\").\n"
              "# Keep this file outside the data directory, mode 0600, and back it up apart from the data:\n"
              "# without it the data directory cannot be read. The index key never changes; add data keys\n"
              "# with: alertctl keygen --data-keys FILE --rotate\n"
              "index " + *index + "\n1 " + *first + "\n";
  OPENSSL_cleanse(index->data(), index->size());
  OPENSSL_cleanse(first->data(), first->size());
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (errno == EEXIST)
      return config("data key file " + path + " exists already; to add a data key run: alertctl keygen --data-keys " +
                    path + " --rotate");
    return {errc::io_error, "cannot create data key file " + path + ": " + sys_error()};
  }
  // The umask may have taken bits away from 0600; make it exactly 0600.
  bool ok = ::fchmod(fd, 0600) == 0 && write_all(fd, text.text);
  auto err = ok ? std::string{} : sys_error();
  ok = (::close(fd) == 0) && ok;
  if (!ok) {
    ::unlink(path.c_str());
    return {errc::io_error, "cannot write data key file " + path + ": " + (err.empty() ? sys_error() : err)};
  }
  return fsync_dir_of(path);
}

result<std::uint32_t> add_data_key(const std::string& path) {
  wiped content;
  if (auto st = read_key_file(path, content.text); !st) return st;
  auto keys = parse_key_file(path, content.text);
  if (!keys) return keys.error();
  const auto newest = (*keys)->current_id();
  if (newest == std::numeric_limits<std::uint32_t>::max())
    return config("data key file " + path + " already holds the highest key id");
  const std::uint32_t id = newest + 1;
  auto fresh = random_hex_key();
  if (!fresh) return fresh.error();
  if (!content.text.empty() && content.text.back() != '\n') content.text += '\n';
  content.text += std::to_string(id) + " " + *fresh + "\n";
  OPENSSL_cleanse(fresh->data(), fresh->size());

  // Beside the file it replaces (through a symbolic link: beside its target), so that the
  // rename is atomic.
  std::error_code ec;
  auto target = std::filesystem::canonical(path, ec);
  if (ec) return status{errc::io_error, "cannot resolve data key file " + path + ": " + ec.message()};
  std::string tmp = target.string() + ".tmp-XXXXXX";
  const int fd = ::mkstemp(tmp.data());  // mode 0600
  if (fd < 0) return status{errc::io_error, "cannot write beside data key file " + path + ": " + sys_error()};
  bool ok = ::fchmod(fd, 0600) == 0 && write_all(fd, content.text);
  auto err = ok ? std::string{} : sys_error();
  ok = (::close(fd) == 0) && ok;
  if (ok && ::rename(tmp.c_str(), target.c_str()) != 0) {
    ok = false;
    err = sys_error();
  }
  if (!ok) {
    ::unlink(tmp.c_str());
    return status{errc::io_error, "cannot rewrite data key file " + path + ": " + err};
  }
  if (auto st = fsync_dir_of(target); !st) return st;
  return id;
}

status check_data_key_file_location(const std::string& key_file, const std::string& data_dir) {
  std::error_code ec;
  const auto key = std::filesystem::weakly_canonical(key_file, ec);
  if (ec) return {};  // unreadable paths are reported when the file is loaded
  const auto dir = std::filesystem::weakly_canonical(data_dir, ec);
  if (ec) return {};
  auto k = key.begin();
  for (auto d = dir.begin(); d != dir.end(); ++d, ++k) {
    if (d->empty()) continue;  // a trailing separator
    if (k == key.end() || *k != *d) return {};
  }
  return config("data key file " + key_file + " is inside the data directory " + data_dir +
                ": keep it elsewhere, so that a copy of the data directory does not carry its keys");
}

}  // namespace alert::storage
