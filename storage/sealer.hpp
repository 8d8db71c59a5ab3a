#pragma once
// Sealing of values and hashing of ids for the journal (docs/security.md, "Encryption at
// rest"). Without keys both are the identity, so a plaintext data directory is written as
// it always was.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "engine/status.hpp"
#include "storage/data_keys.hpp"

namespace alert::storage {

/// Seals values with AES-256-GCM and turns ids into keyed hashes (HMAC-SHA256), with the
/// keys of a data_keys; passes both through unchanged without keys. Thread-safe: every
/// method is const; OpenSSL contexts are kept per thread and reused.
///
/// A sealed value: format byte 0xE1, the data key id (4 bytes, big-endian), a 12-byte nonce,
/// the ciphertext (as long as the plaintext), the 16-byte GCM tag. Nonces: a random 96-bit
/// value drawn once per process, its low 64 bits counting up by one per seal, so no nonce
/// repeats within a process and a repeat across processes is as likely as a 96-bit guess.
class sealer {
public:
  /// First byte of a sealed value.
  static constexpr std::uint8_t format = 0xE1;
  /// Bytes a sealed value has beyond its plaintext.
  static constexpr std::size_t overhead = 1 + 4 + 12 + 16;
  /// Bytes of a hashed id.
  static constexpr std::size_t id_size = 16;

  /// Seals and hashes with `keys`; null: passes everything through.
  explicit sealer(std::shared_ptr<const data_keys> keys = nullptr);

  /// Whether there are keys.
  bool enabled() const noexcept { return keys_ != nullptr; }
  /// The keys, or null.
  const std::shared_ptr<const data_keys>& keys() const noexcept { return keys_; }

  /// ok, or errc::config_error when this OpenSSL cannot seal (no AES-256-GCM, HMAC-SHA256 or
  /// random numbers) or the keys hold no data key. Call once before relying on seal().
  status check() const;

  /// With keys: the first 16 bytes of HMAC-SHA256(index key, plain). Without: plain.
  std::string id(std::string_view plain) const;
  /// Appends id(plain) to `out`.
  void append_id(std::string& out, std::string_view plain) const;

  /// With keys: `plain` sealed with the newest data key, authenticating `aad` too (a value
  /// opens only with the same aad). Without: plain.
  std::string seal(std::string_view plain, std::string_view aad) const;
  /// Appends the sealed value to `out`; the aad is aad_head followed by aad_tail.
  void seal_to(std::string& out, std::string_view plain, std::string_view aad_head,
               std::string_view aad_tail = {}) const;

  /// The plaintext of a sealed value (without keys: `sealed` itself). errc::corruption when
  /// it is not a sealed value, names a data key id the keys do not hold (the message names
  /// it), or does not authenticate (changed, or sealed with another aad or key).
  result<std::string> open(std::string_view sealed, std::string_view aad) const;
  /// Replaces `out` with the plaintext; the aad is aad_head followed by aad_tail.
  status open_to(std::string& out, std::string_view sealed, std::string_view aad_head,
                 std::string_view aad_tail = {}) const;

  /// HMAC-SHA256(index key, "alertd data key check"): stored with an encrypted data
  /// directory, so that a key file with another index key is refused at open. Empty
  /// without keys. (Ids cannot hold spaces, so no id hashes the same input.)
  std::string key_check() const;

private:
  std::shared_ptr<const data_keys> keys_;
  std::uint64_t serial_ = 0;  // tells this sealer's keys apart in per-thread OpenSSL contexts
};

}  // namespace alert::storage
