#pragma once
// The keys that protect PHI at rest: read from a key file kept outside the data directory
// (docs/security.md, "Encryption at rest").
//
// Key file, text, mode 0600:
//
//   # comments and blank lines are allowed
//   index 9f2c...   (64 hex digits) HMAC-SHA256 key for ids in RocksDB keys; never changes
//   1 04be...       (64 hex digits) AES-256 data key 1
//   2 77a1...       data key 2: the highest id seals new values, every id opens old ones

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "engine/status.hpp"

namespace alert::storage {

/// The index key and the data keys of one data directory. Wiped from memory when destroyed.
struct data_keys {
  using key_bytes = std::array<unsigned char, 32>;

  /// HMAC-SHA256 key for the ids in RocksDB keys. Fixed for the life of a data directory:
  /// another index key finds nothing of what was written before.
  key_bytes index_key{};
  /// AES-256-GCM keys by id (>= 1). The highest id seals new values.
  std::map<std::uint32_t, key_bytes> data;

  data_keys() = default;
  data_keys(const data_keys&) = default;
  data_keys& operator=(const data_keys&) = default;
  ~data_keys();

  /// The id new values are sealed with (the highest); 0 when there is no data key.
  std::uint32_t current_id() const noexcept { return data.empty() ? 0 : data.rbegin()->first; }
  /// The data key with this id, or null.
  const key_bytes* find(std::uint32_t id) const noexcept;
};

/// Reads a key file. errc::config_error, naming the file (and the line), when it cannot be
/// read, is not a regular file, can be read or written by group or others (chmod 600), has
/// a line that does not parse, has no index key or no data key, or names an id twice.
result<std::shared_ptr<const data_keys>> load_data_keys(const std::string& path);

/// Creates a new key file, mode 0600, with a random index key and data key 1. Refuses
/// (errc::config_error) when the file exists; errc::io_error when it cannot be written.
status create_data_key_file(const std::string& path);

/// Rotation: adds a random data key with the next id to an existing key file (rewritten
/// through a temporary file and a rename, so it is never half written) and returns the id.
/// New values are sealed with it once a journal is opened with the file; older keys stay
/// to open what they sealed.
result<std::uint32_t> add_data_key(const std::string& path);

/// errc::config_error when the key file lies inside the data directory: a copy or backup
/// of the directory would then carry the keys that open it.
status check_data_key_file_location(const std::string& key_file, const std::string& data_dir);

}  // namespace alert::storage
