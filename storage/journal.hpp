#pragma once
// The reading journal: every accepted reading, durable in RocksDB before it is acknowledged.
// One writer thread batches concurrent appends into one WriteBatch and one WAL sync
// (group commit) and answers each append through its completion.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "engine/histogram.hpp"
#include "engine/reading.hpp"
#include "engine/rules.hpp"
#include "engine/status.hpp"
#include "engine/time.hpp"
#include "storage/data_keys.hpp"
#include "storage/sealer.hpp"

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
}  // namespace rocksdb

namespace alert::storage {

/// Tuning of the journal.
struct journal_options {
  /// Sync the write-ahead log before an append completes. Off only for benchmarks and
  /// demos that accept losing the last writes on a power cut.
  bool sync = true;
  /// Readings queued but not yet durable; appends beyond it get errc::overloaded.
  std::size_t max_pending_readings = 200'000;
  /// Most readings written by one group commit.
  std::size_t max_group_readings = 20'000;
  /// Encryption at rest (docs/security.md): with keys, every value is sealed with
  /// AES-256-GCM and every id in a RocksDB key is replaced by its keyed hash. Null: plain
  /// values and ids, the format of data directories written before encryption existed.
  /// A directory is one or the other for life: open() refuses keys for a plaintext
  /// directory that holds data, no keys for an encrypted one, and keys whose index key
  /// is not the one the directory was written with.
  std::shared_ptr<const data_keys> keys;
};

/// A journaled reading with the node time at which it was received.
struct journal_entry {
  reading r;
  epoch_ms received;
};

/// What became of one append.
struct append_result {
  /// ok, or io_error when the write failed (then nothing of the append was written).
  status error;
  /// Per reading of the append: true when (device, seq) was already journaled.
  std::vector<bool> duplicate;
  std::uint64_t accepted = 0;
  std::uint64_t duplicates = 0;
};

/// Counters for operators (monotonic since open).
struct journal_stats {
  std::uint64_t appends = 0;
  std::uint64_t readings = 0;       ///< readings written
  std::uint64_t duplicates = 0;     ///< readings found already journaled
  std::uint64_t commits = 0;        ///< group commits (one WriteBatch and sync each)
  std::uint64_t commit_micros = 0;  ///< time spent in WriteBatch + sync, summed
  std::uint64_t failures = 0;       ///< group commits that failed
  std::uint64_t pending = 0;        ///< readings queued right now
  histogram::snapshot commit_latency;  ///< seconds per group commit (WriteBatch + WAL sync)
};

/// The journal of one data directory. Thread-safe.
class journal {
public:
  /// Called on the writer thread once the append is durable (or failed), with the readings
  /// handed to append(). Must not block.
  using completion = std::function<void(append_result&&, std::vector<reading>&&)>;

  /// Opens (creating if needed) the journal in `dir`. errc::unavailable when another process
  /// holds the directory; errc::config_error when the data keys do not fit the directory
  /// (see journal_options::keys); errc::io_error or errc::corruption otherwise.
  static result<std::unique_ptr<journal>> open(const std::string& dir, const journal_options& opts = {});

  ~journal();
  journal(const journal&) = delete;
  journal& operator=(const journal&) = delete;

  /// Queues `readings`, received at node time `received`, for a durable append; `done` runs
  /// once they are durable. Readings whose (device, seq) is already journaled, or repeated
  /// within the call, are duplicates and are not written again. Returns errc::overloaded
  /// (and does not call `done`) when the queue is full, errc::unavailable after close().
  status append(std::vector<reading> readings, epoch_ms received, completion done);

  /// Completes everything queued, stops the writer and closes the database. Idempotent.
  void close();

  /// Readings of `device` with seq >= from_seq, in seq order, at most `limit`.
  result<std::vector<journal_entry>> read_device(const device_id& device, std::uint64_t from_seq = 0,
                                                 std::size_t limit = SIZE_MAX) const;

  /// Whether (device, seq) is journaled.
  result<bool> contains(const device_id& device, std::uint64_t seq) const;

  /// Calls `fn` for every journaled reading, grouped by device and by seq within a device
  /// (devices in id order without keys, in the order of their hashed ids with keys). Stops
  /// early when fn returns false.
  status for_each(const std::function<bool(const journal_entry&)>& fn) const;

  journal_stats stats() const;

  /// Readings of `device` with seq <= up_to that arrived after a reading with a higher seq
  /// had been journaled (late readings), in seq order. Snapshots skip them; rebuilds add them.
  result<std::vector<journal_entry>> late_readings(const device_id& device, std::uint64_t up_to) const;

  /// Every device that ever sent a reading naming `patient`, sorted.
  result<std::vector<std::string>> patient_devices(const patient_id& patient) const;

  /// Stores the latest snapshot of an entity (no sync: a lost snapshot is rebuilt from the
  /// journal). `key` names the entity, e.g. "d/oxi-1".
  status put_snapshot(const std::string& key, const std::string& bytes, bool sync = false);
  /// Calls `fn(key, bytes)` for every snapshot whose key starts with `prefix` (e.g. "x/":
  /// every escalation in progress, scanned at start), in key order without keys, in no
  /// particular order with keys. With keys, a snapshot that does not open is logged and
  /// skipped, and the first such error is returned after the others were all visited.
  status for_each_snapshot(const std::string& prefix,
                           const std::function<void(const std::string&, const std::string&)>& fn) const;
  /// Removes a snapshot (an escalation that ended), synced.
  status delete_snapshot(const std::string& key);
  /// The latest snapshot of an entity, or nothing.
  result<std::optional<std::string>> get_snapshot(const std::string& key) const;

  /// Journals alert transitions durably (WAL synced), keyed by (alert id, version) so that
  /// journaling the same transition again (a rebuild replaying readings) changes nothing.
  /// With `snapshot` (key, bytes), the entity's snapshot is written in the same synced
  /// WriteBatch: one fsync, and the state and its transitions are durable together.
  /// `sync` false: written to the WAL without waiting for an fsync (for transitions that a
  /// replay of durable readings would produce again).
  status append_alert_events(const std::vector<alert_event>& events,
                             const std::optional<std::pair<std::string, std::string>>& snapshot = std::nullopt,
                             bool sync = true);
  /// The transitions of one alert, oldest first.
  result<std::vector<alert_event>> alert_history(const std::string& alert_id) const;
  /// Calls `fn` with the latest transition of every alert not resolved (pending, firing or
  /// acknowledged; an alert cancelled before it fired is not open), by alert id; stops when
  /// fn returns false. An index kept in the same WriteBatch as the transitions.
  status for_each_open_alert(const std::function<bool(const alert_event&)>& fn) const;
  /// Every journaled alert transition, grouped by alert and by version within an alert
  /// (alerts in id order without keys, in no particular order with keys); stops when fn
  /// returns false.
  status for_each_alert_event(const std::function<bool(const alert_event&)>& fn) const;

  /// A node event as stored.
  struct node_event {
    epoch_ms at;
    std::string kind, entity, detail;
  };
  /// Appends a node event (supervision, quarantine, ...) durably, with the node time.
  status append_event(epoch_ms at, const std::string& kind, const std::string& entity, const std::string& detail);
  /// In one synced WriteBatch: stores the snapshot `key` (removes it when `bytes` is empty;
  /// no snapshot when `key` is empty) and appends `events`. An escalation's new step and
  /// the page events that record it become durable together, with one fsync.
  status write_snapshot_and_events(const std::string& key, const std::optional<std::string>& bytes,
                                   const std::vector<node_event>& events);
  /// Node events in order of appending.
  result<std::vector<node_event>> events() const;
  /// The newest `limit` node events (of kind `kind`, when not empty), oldest first. Reads
  /// from the newest back, not the whole journal.
  result<std::vector<node_event>> recent_events(std::size_t limit, std::string_view kind = {}) const;
  /// Node events about `subject`: those whose entity is `subject` or starts with
  /// `subject` followed by '@' (an alert id: the events about the alert and its pages
  /// "<alert id>@<step>/<target>"), through an index by entity, oldest first.
  result<std::vector<node_event>> events_about(std::string_view subject) const;

  /// One record of the audit log: who did what to what, and how it went.
  struct audit_record {
    std::uint64_t seq = 0;  ///< 0, 1, 2, ... in order of appending
    epoch_ms at = 0;
    std::string actor;    ///< who (the `by` of a command, a gateway's responder, "node")
    std::string action;   ///< e.g. "ack", "silence", "patient", "rules-reload", "page_accepted"
    std::string subject;  ///< what it was about: an alert, patient, device, silence id
    std::string outcome;  ///< "ok", or the error code it was refused with
  };
  /// Appends to the audit log, synced. The log is append-only and hash-chained: each record
  /// holds the SHA-256 of the record before it and its own, so a record changed, removed
  /// or moved breaks the chain there (docs/security.md).
  status append_audit(epoch_ms at, const std::string& actor, const std::string& action, const std::string& subject,
                      const std::string& outcome);
  /// The newest `limit` audit records, oldest first.
  result<std::vector<audit_record>> audit(std::size_t limit) const;
  /// What checking the audit chain found.
  struct audit_check {
    bool ok = true;
    std::uint64_t records = 0;       ///< records read
    std::uint64_t first_broken = 0;  ///< seq of the first record that does not hold (when !ok)
    std::string reason;              ///< why, for a person
    /// SHA-256 (hex) of the last record: write it down elsewhere now and then, so that a
    /// log cut short after it, or rewritten whole, can be told from the one you saw.
    std::string head;
  };
  /// Reads the whole audit log and checks every link of the chain.
  result<audit_check> verify_audit() const;

private:
  struct request {
    std::vector<reading> readings;
    epoch_ms received;
    completion done;
  };
  journal(std::unique_ptr<rocksdb::DB> db, std::vector<rocksdb::ColumnFamilyHandle*> cfs,
          const journal_options& opts);
  void run_writer();
  void commit(std::vector<request>& group);

  journal_options opts_;
  sealer seal_;  // from opts_.keys: identity without keys
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> cfs_;  // default, journal, meta, snapshot, event, alert, open_alert, audit, event_index
  rocksdb::ColumnFamilyHandle* journal_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* snapshot_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* event_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* alert_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* open_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* audit_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* event_index_cf_ = nullptr;  // entity (with keys: id(subject)) + '\0' + seq -> (empty)
  std::mutex audit_mutex_;         // appends one at a time: each links to the one before
  std::uint64_t audit_next_ = 0;   // guarded by audit_mutex_
  std::string audit_last_hash_;    // guarded by audit_mutex_; 32 zero bytes before the first
  std::mutex alert_mutex_;  // one alert writer at a time: the open index reads before it writes
  static bool is_open(const alert_record& a) noexcept;
  result<std::uint32_t> latest_alert_version(const std::string& alert_id) const;
  status build_open_index();

  // Key prefix of a device's readings ('r') or late-reading markers ('l'): the tag, the
  // device id (with keys: its hash), a zero byte.
  std::string device_prefix(char tag, std::string_view device) const;
  // The stored key of a snapshot: with keys, the kind ("d/") in plain and the rest hashed.
  std::string snapshot_key(std::string_view key) const;
  // A snapshot's stored value: with keys, the logical key and the bytes, sealed.
  std::string snapshot_value(std::string_view stored_key, std::string_view key, std::string_view bytes) const;
  // The logical key and the bytes of a stored snapshot.
  status open_snapshot(std::string_view stored_key, std::string_view value, std::string& key,
                       std::string& bytes) const;
  // A reading as stored (key, value) back to an entry.
  result<journal_entry> decode_stored(std::string_view key, std::string_view value) const;

  // Writer thread only, caches over the journal: per device, its key prefix and its
  // highest journaled seq + 1 (0: not known yet; to spot late readings); the (patient,
  // device) pairs known to be indexed.
  struct device_cache {
    std::string prefix;
    std::uint64_t max_seq = 0;
  };
  std::uint64_t max_seq_of(const std::string& device_key_prefix);
  std::unordered_map<std::string, device_cache> devices_;  // by device id
  std::unordered_set<std::string> indexed_pairs_;
  std::atomic<std::uint64_t> event_counter_{0};
  histogram commit_latency_{histogram::latency_bounds()};
  std::mutex event_mutex_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<request> queue_;
  std::size_t queued_readings_ = 0;
  bool closing_ = false;
  bool closed_ = false;
  std::thread writer_;

  std::atomic<std::uint64_t> appends_{0}, readings_{0}, duplicates_{0}, commits_{0},
      commit_micros_{0}, failures_{0};
};

/// Journal key of (device, seq): 'r', device id, a zero byte, seq big-endian, so a device's
/// readings are contiguous and in seq order.
std::string reading_key(const device_id& device, std::uint64_t seq);

/// Journal value of a reading, format 1 (see storage/README.md).
std::string encode_reading_value(const reading& r, epoch_ms received);

/// Decodes a journal entry; errc::corruption when key or value does not parse. Reads
/// format 1 (device id from the key) and format 2, the plaintext inside a sealed value
/// (device id from the value: the key holds only its hash).
result<journal_entry> decode_reading(std::string_view key, std::string_view value);

}  // namespace alert::storage
