#pragma once
// Fixed data keys, and journals opened plaintext or encrypted, so that the journal's
// behaviour tests run on both on-disk layouts.

#include <catch2/catch.hpp>
#include <memory>
#include <string>

#include "storage/journal.hpp"

namespace alert::test {

/// Data keys built in memory: an index key and data keys 1..`newest`, all derived from
/// `seed` (the same seed gives the same keys, as one key file would).
inline std::shared_ptr<const storage::data_keys> fixed_keys(unsigned seed = 1, std::uint32_t newest = 1) {
  auto keys = std::make_shared<storage::data_keys>();
  for (std::size_t i = 0; i < keys->index_key.size(); ++i)
    keys->index_key[i] = static_cast<unsigned char>(seed * 31 + i);
  for (std::uint32_t id = 1; id <= newest; ++id) {
    auto& k = keys->data[id];
    for (std::size_t i = 0; i < k.size(); ++i) k[i] = static_cast<unsigned char>(seed * 17 + id * 101 + i * 7);
  }
  return keys;
}

/// Opens a journal in `dir`: encrypted with fixed_keys() when `keyed`.
inline result<std::unique_ptr<storage::journal>> open_journal(const std::string& dir, bool keyed,
                                                             storage::journal_options opts = {}) {
  if (keyed) opts.keys = fixed_keys();
  return storage::journal::open(dir, opts);
}

}  // namespace alert::test

/// Runs the rest of the test case twice: plaintext (`keyed` false), then encrypted.
#define ALERT_BOTH_LAYOUTS()                     \
  const bool keyed = GENERATE(false, true);      \
  INFO((keyed ? "encrypted layout" : "plaintext layout"))
