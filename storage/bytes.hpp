#pragma once
// Fixed-width encodings for keys (big-endian, so they sort) and values (little-endian),
// and a bounds-checked reader. Internal to storage/.

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace alert::storage::bytes {

inline void put_u64_be(std::string& out, std::uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out += static_cast<char>((v >> shift) & 0xff);
}

inline std::uint64_t get_u64_be(const char* p) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

inline void put_u64_le(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}

inline std::uint64_t get_u64_le(const char* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

inline void put_f64(std::string& out, double d) {
  std::uint64_t bits;
  std::memcpy(&bits, &d, sizeof bits);
  put_u64_le(out, bits);
}

inline void put_str(std::string& out, std::string_view s) {
  put_u64_le(out, s.size());
  out += s;
}

/// Reads what the put_* functions wrote; any read past the end sets failed() for good.
class reader {
public:
  explicit reader(std::string_view data) : data_(data) {}
  bool failed() const noexcept { return failed_; }
  bool at_end() const noexcept { return pos_ == data_.size(); }

  std::uint8_t u8() {
    if (!need(1)) return 0;
    return static_cast<std::uint8_t>(data_[pos_++]);
  }
  std::uint64_t u64() {
    if (!need(8)) return 0;
    auto v = get_u64_le(data_.data() + pos_);
    pos_ += 8;
    return v;
  }
  double f64() {
    std::uint64_t bits = u64();
    double d;
    std::memcpy(&d, &bits, sizeof d);
    return d;
  }
  std::string str() {
    auto n = u64();
    if (failed_ || n > data_.size() - pos_) {
      failed_ = true;
      return {};
    }
    std::string s{data_.substr(pos_, n)};
    pos_ += n;
    return s;
  }

private:
  bool need(std::size_t n) {
    if (failed_ || data_.size() - pos_ < n) failed_ = true;
    return !failed_;
  }
  std::string_view data_;
  std::size_t pos_ = 0;
  bool failed_ = false;
};

}  // namespace alert::storage::bytes
