#include "storage/journal.hpp"

#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/slice.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <unordered_set>

#include <openssl/sha.h>

#include "engine/log.hpp"
#include "storage/alert_codec.hpp"
#include "storage/bytes.hpp"

namespace alert::storage {
namespace {

using bytes::get_u64_be;
using bytes::get_u64_le;
using bytes::put_u64_be;
using bytes::put_u64_le;

constexpr char reading_tag = 'r';
constexpr char late_tag = 'l';
constexpr char binding_tag = 'b';
// Bounds on the writer's caches; past them they start afresh (they are only caches).
constexpr std::size_t max_cached_devices = 1'000'000;
constexpr std::uint8_t reading_format = 1;
// The plaintext of a sealed reading: format 1 followed by the device id.
constexpr std::uint8_t sealed_reading_format = 2;
constexpr const char* format_key = "journal_format";
constexpr const char* format_value = "1";
// An encrypted data directory (sealed values, hashed ids). Builds that know only format 1
// refuse it instead of misreading it.
constexpr const char* sealed_format_value = "2";
// HMAC(index key, ...) of an encrypted directory: tells a key file of another directory.
constexpr const char* key_check_key = "data_key_check";
constexpr const char* encryption_key = "encryption";
constexpr const char* encryption_value = "aes-256-gcm values, hmac-sha256 ids";

// Each sealed value authenticates its column family (this tag) and its key, so a value
// copied or moved to another key does not open.
constexpr std::string_view aad_journal = "j";
constexpr std::string_view aad_snapshot = "s";
constexpr std::string_view aad_event = "e";
constexpr std::string_view aad_alert = "a";
constexpr std::string_view aad_open_alert = "o";
constexpr std::string_view aad_audit = "u";

std::string plain_device_prefix(const device_id& device) {
  std::string key;
  key.reserve(device.str().size() + 10);
  key += reading_tag;
  key += device.str();
  key += '\0';
  return key;
}

std::string_view view(const rocksdb::Slice& s) noexcept { return {s.data(), s.size()}; }

std::string hex(std::string_view bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  out.reserve(2 * bytes.size());
  for (char ch : bytes) {
    const auto b = static_cast<unsigned char>(ch);
    out += digits[b >> 4];
    out += digits[b & 15];
  }
  return out;
}

// `plain` as stored under `key` in the column family tagged `cf`: sealed with keys.
std::string stored_value(const sealer& seal, std::string_view cf, std::string_view key, std::string_view plain) {
  if (!seal.enabled()) return std::string{plain};
  std::string out;
  out.reserve(plain.size() + sealer::overhead);
  seal.seal_to(out, plain, cf, key);
  return out;
}

// Calls `decode` with the plaintext of the value stored under `key` in the column family
// tagged `cf` (without keys: the stored value itself, not copied).
template <class F>
auto with_plain(const sealer& seal, std::string_view cf, std::string_view key, std::string_view stored,
                std::string_view what, F&& decode) -> decltype(decode(std::string_view{})) {
  if (!seal.enabled()) return decode(stored);
  std::string plain;
  if (auto st = seal.open_to(plain, stored, cf, key); !st)
    return status{st.code(), std::string{what} + ": " + st.message()};
  return decode(std::string_view{plain});
}

// Whether an event's entity is about `subject`: it is the subject, or the subject and '@'.
bool about(std::string_view entity, std::string_view subject) noexcept {
  return entity.size() >= subject.size() && entity.compare(0, subject.size(), subject) == 0 &&
         (entity.size() == subject.size() || entity[subject.size()] == '@');
}

void encode_reading_to(std::string& out, const reading& r, epoch_ms received, bool with_device) {
  const std::string* pat = r.patient ? &r.patient->str() : nullptr;
  out.reserve(out.size() + 28 + (pat ? pat->size() : 0) + (with_device ? r.device.str().size() : 0));
  out += static_cast<char>(with_device ? sealed_reading_format : reading_format);
  out += static_cast<char>(r.what);
  bytes::put_f64(out, r.value);
  put_u64_le(out, static_cast<std::uint64_t>(r.ts));
  put_u64_le(out, static_cast<std::uint64_t>(received));
  out += static_cast<char>(pat ? pat->size() : 0);
  if (pat) out += *pat;
  if (with_device) {
    out += static_cast<char>(r.device.str().size());
    out += r.device.str();
  }
}

status from_rocks(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) return {};
  std::string msg{what};
  msg += ": ";
  msg += s.ToString();
  if (s.IsCorruption()) return {errc::corruption, msg};
  return {errc::io_error, msg};
}

rocksdb::Slice slice(std::string_view s) { return {s.data(), s.size()}; }

}  // namespace

std::string reading_key(const device_id& device, std::uint64_t seq) {
  std::string key = plain_device_prefix(device);
  put_u64_be(key, seq);
  return key;
}

std::string encode_reading_value(const reading& r, epoch_ms received) {
  std::string out;
  encode_reading_to(out, r, received, false);
  return out;
}

result<journal_entry> decode_reading(std::string_view key, std::string_view value) {
  auto corrupt = [&](const char* why) {
    return status{errc::corruption, std::string{"journal entry: "} + why};
  };
  if (key.size() < 11 || key[0] != reading_tag || key[key.size() - 9] != '\0')
    return corrupt("bad key");
  std::uint64_t seq = get_u64_be(key.data() + key.size() - 8);
  if (value.size() < 27) return corrupt("bad value header");
  const auto format = static_cast<std::uint8_t>(value[0]);
  if (format != reading_format && format != sealed_reading_format) return corrupt("bad value header");
  auto m = static_cast<std::size_t>(static_cast<std::uint8_t>(value[1]));
  if (m >= metric_count) return corrupt("unknown metric");
  std::uint64_t bits = get_u64_le(value.data() + 2);
  double v;
  std::memcpy(&v, &bits, sizeof v);
  auto ts = static_cast<epoch_ms>(get_u64_le(value.data() + 10));
  auto received = static_cast<epoch_ms>(get_u64_le(value.data() + 18));
  auto plen = static_cast<std::size_t>(static_cast<std::uint8_t>(value[26]));
  std::optional<device_id> dev;
  if (format == reading_format) {
    if (value.size() != 27 + plen) return corrupt("bad value length");
    auto d = device_id::make(key.substr(1, key.size() - 10));
    if (!d) return corrupt("bad device id in key");
    dev = std::move(*d);
  } else {
    if (value.size() < 28 + plen) return corrupt("bad value length");
    auto dlen = static_cast<std::size_t>(static_cast<std::uint8_t>(value[27 + plen]));
    if (value.size() != 28 + plen + dlen) return corrupt("bad value length");
    auto d = device_id::make(value.substr(28 + plen, dlen));
    if (!d) return corrupt("bad device id");
    dev = std::move(*d);
  }
  std::optional<patient_id> pat;
  if (plen > 0) {
    auto p = patient_id::make(value.substr(27, plen));
    if (!p) return corrupt("bad patient id");
    pat = std::move(*p);
  }
  return journal_entry{reading{std::move(*dev), std::move(pat), static_cast<metric>(m), v, ts, seq},
                       received};
}

result<std::unique_ptr<journal>> journal::open(const std::string& dir, const journal_options& opts) {
  const sealer seal{opts.keys};
  if (auto st = seal.check(); !st) return status{errc::config_error, "data keys: " + st.message()};
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return status{errc::io_error, "cannot create data directory " + dir + ": " + ec.message()};
  rocksdb::Options db_opts;
  db_opts.create_if_missing = true;
  db_opts.create_missing_column_families = true;
  db_opts.IncreaseParallelism(2);
  db_opts.max_background_jobs = 2;
  db_opts.keep_log_file_num = 4;

  rocksdb::BlockBasedTableOptions table;
  // Duplicate detection is a point lookup per reading; a bloom filter keeps misses cheap.
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  rocksdb::ColumnFamilyOptions journal_opts;
  journal_opts.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  journal_opts.write_buffer_size = 64 << 20;

  std::vector<rocksdb::ColumnFamilyDescriptor> descs{
      {rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions{}},
      {"journal", journal_opts},
      {"meta", rocksdb::ColumnFamilyOptions{}},
      {"snapshot", rocksdb::ColumnFamilyOptions{}},
      {"event", rocksdb::ColumnFamilyOptions{}},
      {"alert", rocksdb::ColumnFamilyOptions{}},
      {"open_alert", rocksdb::ColumnFamilyOptions{}},
      {"audit", rocksdb::ColumnFamilyOptions{}},
      {"event_index", rocksdb::ColumnFamilyOptions{}},
  };
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  auto s = rocksdb::DB::Open(db_opts, dir, descs, &handles, &raw);
  if (!s.ok()) {
    std::string text = s.ToString();
    if (s.IsIOError() && (text.find("lock") != std::string::npos || text.find("LOCK") != std::string::npos))
      return status{errc::unavailable, "data directory " + dir +
                                           " is in use by another process (RocksDB LOCK held): " + text};
    return from_rocks(s, "opening journal in " + dir);
  }
  std::unique_ptr<rocksdb::DB> db{raw};
  auto close_handles = [&] {
    for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
  };
  auto refuse = [&](status st) {
    close_handles();
    return st;
  };
  // An encrypted directory records it, with a check value of its index key, in meta.
  auto become_encrypted = [&]() -> status {
    rocksdb::WriteBatch batch;
    auto ps = batch.Put(handles[2], format_key, sealed_format_value);
    if (ps.ok()) ps = batch.Put(handles[2], key_check_key, seal.key_check());
    if (ps.ok()) ps = batch.Put(handles[2], encryption_key, encryption_value);
    if (!ps.ok()) return from_rocks(ps, "writing journal format");
    rocksdb::WriteOptions wo;
    wo.sync = true;
    return from_rocks(db->Write(wo, &batch), "writing journal format");
  };
  std::string fmt;
  s = db->Get(rocksdb::ReadOptions{}, handles[2], format_key, &fmt);
  if (s.IsNotFound()) {
    if (seal.enabled()) {
      if (auto st = become_encrypted(); !st) return refuse(st);
    } else {
      rocksdb::WriteOptions wo;
      wo.sync = true;
      s = db->Put(wo, handles[2], format_key, format_value);
      if (!s.ok()) return refuse(from_rocks(s, "writing journal format"));
    }
  } else if (!s.ok()) {
    return refuse(from_rocks(s, "reading journal format"));
  } else if (fmt == format_value) {
    if (seal.enabled()) {
      // A plaintext directory that never held data (a node started once without keys) may
      // still become encrypted; one with data may not: there is no migration.
      for (std::size_t i = 0; i < handles.size(); ++i) {
        if (i == 2) continue;  // meta
        std::unique_ptr<rocksdb::Iterator> it{db->NewIterator(rocksdb::ReadOptions{}, handles[i])};
        it->SeekToFirst();
        if (auto st = from_rocks(it->status(), "reading journal"); !st) return refuse(st);
        if (it->Valid())
          return refuse({errc::config_error,
                         "data directory " + dir +
                             " holds unencrypted data and cannot be opened with a data key file: there is no "
                             "migration; start without security.data-key-file, or with an empty data directory"});
      }
      if (auto st = become_encrypted(); !st) return refuse(st);
    }
  } else if (fmt == sealed_format_value) {
    if (!seal.enabled())
      return refuse({errc::config_error, "data directory " + dir +
                                             " is encrypted at rest: start it with its data key file "
                                             "(security.data-key-file)"});
    std::string check;
    s = db->Get(rocksdb::ReadOptions{}, handles[2], key_check_key, &check);
    if (s.IsNotFound())
      return refuse({errc::corruption, "encrypted data directory " + dir + " has no data key check in meta"});
    if (!s.ok()) return refuse(from_rocks(s, "reading data key check"));
    if (check != seal.key_check())
      return refuse({errc::config_error, "the data key file does not belong to this data directory (" + dir +
                                             "): its index key is not the one the directory was written with"});
  } else {
    return refuse({errc::corruption, "data directory " + dir + " has journal format " + fmt +
                                         ", this build reads formats " + format_value + " and " +
                                         sealed_format_value});
  }
  std::unique_ptr<journal> j{new journal{std::move(db), std::move(handles), opts}};
  if (auto st = j->build_open_index(); !st) return st;
  return j;
}

// Data directories written before the open-alert index existed get it built once, from the
// alert journal, at their first start with this build.
status journal::build_open_index() {
  static const std::string built_key = "open_alert_index";
  std::string flag;
  auto s = db_->Get(rocksdb::ReadOptions{}, cfs_[2], built_key, &flag);
  if (s.ok()) return {};
  if (!s.IsNotFound()) return from_rocks(s, "reading meta");
  rocksdb::WriteBatch batch;
  std::optional<alert_event> last;
  auto flush = [&]() -> status {
    if (!last) return {};
    if (is_open(last->after)) {
      const auto key = seal_.id(last->after.id);
      auto ps = batch.Put(open_cf_, key, stored_value(seal_, aad_open_alert, key, encode_alert_event(*last)));
      if (!ps.ok()) return from_rocks(ps, "building open-alert index");
    }
    return {};
  };
  status flushed;
  auto st = for_each_alert_event([&](const alert_event& e) {
    if (last && last->after.id != e.after.id) {
      flushed = flush();
      if (!flushed) return false;
    }
    last = e;
    return true;
  });
  if (!st) return st;
  if (!flushed) return flushed;
  if (auto f = flush(); !f) return f;
  auto ps = batch.Put(cfs_[2], built_key, "1");
  if (!ps.ok()) return from_rocks(ps, "building open-alert index");
  rocksdb::WriteOptions wo;
  wo.sync = true;
  return from_rocks(db_->Write(wo, &batch), "writing open-alert index");
}

journal::journal(std::unique_ptr<rocksdb::DB> db, std::vector<rocksdb::ColumnFamilyHandle*> cfs,
                 const journal_options& opts)
    : opts_(opts),
      seal_(opts.keys),
      db_(std::move(db)),
      cfs_(std::move(cfs)),
      journal_cf_(cfs_[1]),
      snapshot_cf_(cfs_[3]),
      event_cf_(cfs_[4]),
      alert_cf_(cfs_[5]),
      open_cf_(cfs_[6]),
      audit_cf_(cfs_[7]),
      event_index_cf_(cfs_[8]) {
  // Continue the event sequence after the last stored event.
  std::unique_ptr<rocksdb::Iterator> it{db_->NewIterator(rocksdb::ReadOptions{}, event_cf_)};
  it->SeekToLast();
  if (it->Valid() && it->key().size() == 8) event_counter_ = get_u64_be(it->key().data()) + 1;
  // The audit chain continues after its last record.
  audit_last_hash_.assign(32, '\0');
  std::unique_ptr<rocksdb::Iterator> ai{db_->NewIterator(rocksdb::ReadOptions{}, audit_cf_)};
  ai->SeekToLast();
  if (!seal_.enabled()) {
    if (ai->Valid() && ai->key().size() == 8 && ai->value().size() >= 32) {
      audit_next_ = get_u64_be(ai->key().data()) + 1;
      audit_last_hash_.assign(ai->value().data() + ai->value().size() - 32, 32);
    }
  } else if (ai->Valid() && ai->key().size() == 8) {
    audit_next_ = get_u64_be(ai->key().data()) + 1;
    std::string plain;
    auto st = seal_.open_to(plain, view(ai->value()), aad_audit, view(ai->key()));
    if (st && plain.size() >= 32) {
      audit_last_hash_.assign(plain.data() + plain.size() - 32, 32);
    } else {
      // The chain continues from zeros: verify reports the unreadable record, then this link.
      log(log_level::error, "journal", "audit_tail_unreadable",
          {{"seq", std::to_string(audit_next_ - 1)}, {"error", st ? "too short" : st.to_string()}});
    }
  }
  writer_ = std::thread{[this] { run_writer(); }};
}

journal::~journal() { close(); }

void journal::close() {
  {
    std::lock_guard<std::mutex> lock{mutex_};
    if (closed_) return;
    closing_ = true;
  }
  wake_.notify_all();
  if (writer_.joinable()) writer_.join();
  std::lock_guard<std::mutex> lock{mutex_};
  if (closed_) return;
  for (auto* h : cfs_) db_->DestroyColumnFamilyHandle(h);
  cfs_.clear();
  auto s = db_->Close();
  if (!s.ok()) log(log_level::error, "journal", "close_failed", {{"error", s.ToString()}});
  db_.reset();
  closed_ = true;
}

status journal::append(std::vector<reading> readings, epoch_ms received, completion done) {
  std::size_t n = readings.size();
  {
    std::lock_guard<std::mutex> lock{mutex_};
    if (closing_) return {errc::unavailable, "journal is closing"};
    if (queued_readings_ + n > opts_.max_pending_readings && queued_readings_ > 0)
      return {errc::overloaded, std::to_string(queued_readings_) +
                                    " readings are waiting for the disk; retry later"};
    queued_readings_ += n;
    queue_.push_back(request{std::move(readings), received, std::move(done)});
  }
  appends_.fetch_add(1, std::memory_order_relaxed);
  wake_.notify_one();
  return {};
}

void journal::run_writer() {
  std::vector<request> group;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock{mutex_};
      wake_.wait(lock, [this] { return closing_ || !queue_.empty(); });
      if (queue_.empty()) return;  // closing and drained
      std::size_t taken = 0;
      while (!queue_.empty() && (group.empty() || taken + queue_.front().readings.size() <= opts_.max_group_readings)) {
        taken += queue_.front().readings.size();
        group.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    // Counted before commit(): the completions may move the readings away.
    std::size_t done_readings = 0;
    for (auto& req : group) done_readings += req.readings.size();
    commit(group);
    {
      std::lock_guard<std::mutex> lock{mutex_};
      queued_readings_ -= done_readings;
    }
    group.clear();
  }
}

void journal::commit(std::vector<request>& group) {
  rocksdb::WriteBatch batch;
  std::unordered_set<std::string> in_group;
  std::vector<append_result> results(group.size());
  rocksdb::ReadOptions ro;
  // Reused across readings: encoding and sealing a value allocate nothing per reading.
  std::string key, value, sealed, extra, pair;
  rocksdb::PinnableSlice existing;
  std::uint64_t written = 0, dups = 0;
  status failure;
  for (std::size_t g = 0; g < group.size() && failure.is_ok(); ++g) {
    auto& req = group[g];
    auto& res = results[g];
    res.duplicate.assign(req.readings.size(), false);
    for (std::size_t i = 0; i < req.readings.size(); ++i) {
      const auto& r = req.readings[i];
      auto& dev = devices_[r.device.str()];
      if (dev.prefix.empty()) dev.prefix = device_prefix(reading_tag, r.device.str());
      auto& max_seq = dev.max_seq;
      if (max_seq == 0) max_seq = max_seq_of(dev.prefix);
      key.assign(dev.prefix);
      put_u64_be(key, r.seq);
      bool dup = in_group.count(key) > 0;
      // Above every seq journaled for its device, a reading cannot be in the database: the
      // point lookup (most of the writer's time in a profile) is only for late or resent ones.
      const bool newest = max_seq != UINT64_MAX && r.seq >= max_seq;
      if (!dup && !newest) {
        existing.Reset();
        auto s = db_->Get(ro, journal_cf_, key, &existing);
        if (s.ok()) {
          dup = true;
        } else if (!s.IsNotFound()) {
          failure = from_rocks(s, "duplicate lookup");
          break;
        }
      }
      if (dup) {
        res.duplicate[i] = true;
        ++res.duplicates;
        continue;
      }
      value.clear();
      encode_reading_to(value, r, req.received, seal_.enabled());
      rocksdb::Status s;
      if (seal_.enabled()) {
        sealed.clear();
        seal_.seal_to(sealed, value, aad_journal, key);
        s = batch.Put(journal_cf_, slice(key), slice(sealed));
      } else {
        s = batch.Put(journal_cf_, slice(key), slice(value));
      }
      // A reading below the device's highest journaled seq is late: index it so that a
      // rebuild from a snapshot taken before it arrived still sees it.
      if (s.ok() && r.seq < max_seq) {
        extra.assign(key);
        extra[0] = late_tag;
        s = batch.Put(journal_cf_, slice(extra), rocksdb::Slice{});
      }
      // Stored +1 so that 0 means "unknown"; the largest seq saturates instead of wrapping.
      max_seq = std::max(max_seq, r.seq == UINT64_MAX ? UINT64_MAX : r.seq + 1);
      if (s.ok() && r.patient) {
        pair.clear();
        pair += binding_tag;
        pair += r.patient->str();
        pair += '\0';
        pair += r.device.str();
        if (indexed_pairs_.insert(pair).second) {
          if (!seal_.enabled()) {
            s = batch.Put(journal_cf_, slice(pair), rocksdb::Slice{});
          } else {
            // 'b', id(patient), 0, id(device) -> the device id, sealed: the key cannot give
            // the device back.
            extra.clear();
            extra += binding_tag;
            seal_.append_id(extra, r.patient->str());
            extra += '\0';
            extra.append(dev.prefix, 1, sealer::id_size);
            sealed.clear();
            seal_.seal_to(sealed, r.device.str(), aad_journal, extra);
            s = batch.Put(journal_cf_, slice(extra), slice(sealed));
          }
        }
      }
      if (!s.ok()) {
        failure = from_rocks(s, "building write batch");
        break;
      }
      in_group.insert(key);
      ++res.accepted;
    }
    written += res.accepted;
    dups += res.duplicates;
  }
  if (failure.is_ok() && batch.Count() > 0) {
    auto start = std::chrono::steady_clock::now();
    rocksdb::WriteOptions wo;
    wo.sync = opts_.sync;
    failure = from_rocks(db_->Write(wo, &batch), "journal write");
    auto micros = std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::steady_clock::now() - start);
    commit_micros_.fetch_add(static_cast<std::uint64_t>(micros.count()), std::memory_order_relaxed);
    commit_latency_.observe(static_cast<double>(micros.count()) / 1e6);
    commits_.fetch_add(1, std::memory_order_relaxed);
  }
  if (devices_.size() > max_cached_devices) devices_.clear();
  if (indexed_pairs_.size() > max_cached_devices) indexed_pairs_.clear();
  if (!failure.is_ok()) {
    // The batch was not written: forget what the caches learnt from it.
    devices_.clear();
    indexed_pairs_.clear();
    failures_.fetch_add(1, std::memory_order_relaxed);
    log(log_level::error, "journal", "commit_failed",
        {{"code", std::string{to_string(failure.code())}}, {"error", failure.message()}});
    for (auto& res : results) res = append_result{failure, {}, 0, 0};
  } else {
    readings_.fetch_add(written, std::memory_order_relaxed);
    duplicates_.fetch_add(dups, std::memory_order_relaxed);
  }
  for (std::size_t g = 0; g < group.size(); ++g) {
    if (!group[g].done) continue;
    try {
      group[g].done(std::move(results[g]), std::move(group[g].readings));
    } catch (const std::exception& e) {
      log(log_level::error, "journal", "completion_threw", {{"error", e.what()}});
    }
  }
}

std::string journal::device_prefix(char tag, std::string_view device) const {
  std::string key;
  key.reserve((seal_.enabled() ? sealer::id_size : device.size()) + 10);
  key += tag;
  seal_.append_id(key, device);
  key += '\0';
  return key;
}

result<journal_entry> journal::decode_stored(std::string_view key, std::string_view value) const {
  return with_plain(seal_, aad_journal, key, value, "journal entry",
                    [&](std::string_view plain) { return decode_reading(key, plain); });
}

result<std::vector<journal_entry>> journal::read_device(const device_id& device, std::uint64_t from_seq,
                                                        std::size_t limit) const {
  std::vector<journal_entry> out;
  std::string prefix = device_prefix(reading_tag, device.str());
  std::string start = prefix;
  put_u64_be(start, from_seq);
  std::unique_ptr<rocksdb::Iterator> it{db_->NewIterator(rocksdb::ReadOptions{}, journal_cf_)};
  for (it->Seek(start); it->Valid() && out.size() < limit; it->Next()) {
    auto k = it->key();
    if (!k.starts_with(prefix) || k.size() != prefix.size() + 8) break;
    auto e = decode_stored(view(k), view(it->value()));
    if (!e) return e.error();
    out.push_back(std::move(*e));
  }
  if (auto st = from_rocks(it->status(), "reading journal"); !st) return st;
  return out;
}

result<bool> journal::contains(const device_id& device, std::uint64_t seq) const {
  rocksdb::PinnableSlice v;
  std::string key = device_prefix(reading_tag, device.str());
  put_u64_be(key, seq);
  auto s = db_->Get(rocksdb::ReadOptions{}, journal_cf_, key, &v);
  if (s.IsNotFound()) return false;
  if (!s.ok()) return from_rocks(s, "reading journal");
  return true;
}

status journal::for_each(const std::function<bool(const journal_entry&)>& fn) const {
  std::unique_ptr<rocksdb::Iterator> it{db_->NewIterator(rocksdb::ReadOptions{}, journal_cf_)};
  for (it->Seek(std::string(1, reading_tag)); it->Valid(); it->Next()) {
    auto k = it->key();
    if (k.empty() || k[0] != reading_tag) break;
    auto e = decode_stored(view(k), view(it->value()));
    if (!e) return e.error();
    if (!fn(*e)) break;
  }
  return from_rocks(it->status(), "reading journal");
}

std::uint64_t journal::max_seq_of(const std::string& prefix) {
  // The last key with this prefix holds the device's highest seq (keys sort by seq).
  std::string upper = prefix;
  put_u64_be(upper, UINT64_MAX);
  std::unique_ptr<rocksdb::Iterator> it{db_->NewIterator(rocksdb::ReadOptions{}, journal_cf_)};
  it->SeekForPrev(upper);
  if (!it->Valid()) return 0;
  auto k = it->key();
  if (k.size() != prefix.size() + 8 || !k.starts_with(prefix)) return 0;
  auto seq = get_u64_be(k.data() + prefix.size());
  return seq == UINT64_MAX ? UINT64_MAX : seq + 1;
}

result<std::vector<journal_entry>> journal::late_readings(const device_id& device, std::uint64_t up_to) const {
  std::vector<journal_entry> out;
  std::string prefix = device_prefix(late_tag, device.str());
  std::string key;
  std::unique_ptr<rocksdb::Iterator> it{db_->NewIterator(rocksdb::ReadOptions{}, journal_cf_)};
  for (it->Seek(prefix); it->Valid(); it->Next()) {
    auto k = it->key();
    if (!k.starts_with(prefix) || k.size() != prefix.size() + 8) break;
    std::uint64_t seq = get_u64_be(k.data() + prefix.size());
    if (seq > up_to) break;
    key.assign(k.data(), k.size());
    key[0] = reading_tag;
    std::string value;
    auto s = db_->Get(rocksdb::ReadOptions{}, journal_cf_, key, &value);
    if (!s.ok()) return from_rocks(s, "reading late reading");
    auto e = decode_stored(key, value);
    if (!e) return e.error();
    out.push_back(std::move(*e));
  }
  if (auto st = from_rocks(it->status(), "reading late index"); !st) return st;
  return out;
}

result<std::vector<std::string>> journal::patient_devices(const patient_id& patient) const {
  std::vector<std::string> out;
  std::string prefix;
  prefix += binding_tag;
  seal_.append_id(prefix, patient.str());
  prefix += '\0';
  std::unique_ptr<rocksdb::Iterator> it{db_->NewIterator(rocksdb::ReadOptions{}, journal_cf_)};
  for (it->Seek(prefix); it->Valid(); it->Next()) {
    auto k = it->key();
    if (!k.starts_with(prefix)) break;
    if (!seal_.enabled()) {
      out.emplace_back(k.data() + prefix.size(), k.size() - prefix.size());
      continue;
    }
    // The key holds the device's hash; the device id is in the sealed value.
    std::string device;
    if (auto st = seal_.open_to(device, view(it->value()), aad_journal, view(k)); !st)
      return status{st.code(), "patient index: " + st.message()};
    out.push_back(std::move(device));
  }
  if (auto st = from_rocks(it->status(), "reading patient index"); !st) return st;
  if (seal_.enabled()) std::sort(out.begin(), out.end());
  return out;
}

std::string journal::snapshot_key(std::string_view key) const {
  if (!seal_.enabled()) return std::string{key};
  const auto slash = key.find('/');
  const auto kind = slash == std::string_view::npos ? 0 : slash + 1;
  std::string out;
  out.reserve(kind + sealer::id_size);
  out.append(key.substr(0, kind));
  seal_.append_id(out, key.substr(kind));
  return out;
}

std::string journal::snapshot_value(std::string_view stored_key, std::string_view key, std::string_view bytes) const {
  if (!seal_.enabled()) return std::string{bytes};
  std::string plain;
  plain.reserve(8 + key.size() + bytes.size());
  bytes::put_str(plain, key);
  plain += bytes;
  return stored_value(seal_, aad_snapshot, stored_key, plain);
}

status journal::open_snapshot(std::string_view stored_key, std::string_view value, std::string& key,
                              std::string& bytes) const {
  if (!seal_.enabled()) {
    key.assign(stored_key);
    bytes.assign(value);
    return {};
  }
  std::string plain;
  if (auto st = seal_.open_to(plain, value, aad_snapshot, stored_key); !st)
    return {st.code(), "snapshot: " + st.message()};
  if (plain.size() < 8) return {errc::corruption, "snapshot: no key in the sealed value"};
  const auto n = get_u64_le(plain.data());
  if (n > plain.size() - 8) return {errc::corruption, "snapshot: bad key length in the sealed value"};
  key.assign(plain, 8, static_cast<std::size_t>(n));
  bytes.assign(plain, static_cast<std::size_t>(8 + n), std::string::npos);
  return {};
}

status journal::put_snapshot(const std::string& key, const std::string& bytes, bool sync) {
  rocksdb::WriteOptions wo;
  wo.sync = sync && opts_.sync;
  const auto stored = snapshot_key(key);
  return from_rocks(db_->Put(wo, snapshot_cf_, stored, snapshot_value(stored, key, bytes)), "writing snapshot");
}

namespace {
std::string alert_event_key(const sealer& seal, const std::string& alert_id, std::uint32_t version) {
  std::string key = seal.id(alert_id);
  key += '\0';
  put_u64_be(key, version);
  return key;
}

result<alert_event> decode_stored_alert(const sealer& seal, std::string_view cf, const rocksdb::Slice& key,
                                        const rocksdb::Slice& value) {
  return with_plain(seal, cf, view(key), view(value), "alert event",
                    [](std::string_view plain) { return decode_alert_event(plain); });
}
}  // namespace

bool journal::is_open(const alert_record& a) noexcept { return a.state != alert_state::resolved; }

status journal::append_alert_events(const std::vector<alert_event>& events,
                                    const std::optional<std::pair<std::string, std::string>>& snapshot, bool sync) {
  if (events.empty() && !snapshot) return {};
  rocksdb::WriteBatch batch;
  // The open-alert index holds each open alert's latest transition. A rebuild may journal an
  // older transition again: it must not move the index back, so the newest version already
  // journaled decides. One writer at a time keeps that check and the write together.
  std::lock_guard<std::mutex> lock{alert_mutex_};
  std::map<std::string, std::uint32_t> newest;
  for (const auto& e : events) {
    const auto encoded = encode_alert_event(e);
    const auto key = alert_event_key(seal_, e.after.id, e.after.version);
    auto s = batch.Put(alert_cf_, key, stored_value(seal_, aad_alert, key, encoded));
    if (!s.ok()) return from_rocks(s, "building alert batch");
    auto it = newest.find(e.after.id);
    if (it == newest.end()) {
      auto v = latest_alert_version(e.after.id);
      if (!v) return v.error();
      it = newest.emplace(e.after.id, *v).first;
    }
    if (e.after.version < it->second) continue;  // a replay of something older
    it->second = e.after.version;
    const auto open_key = seal_.id(e.after.id);
    s = is_open(e.after) && e.type != alert_event_type::cancelled
            ? batch.Put(open_cf_, open_key, stored_value(seal_, aad_open_alert, open_key, encoded))
            : batch.Delete(open_cf_, open_key);
    if (!s.ok()) return from_rocks(s, "building alert batch");
  }
  if (snapshot) {
    const auto stored = snapshot_key(snapshot->first);
    auto s = batch.Put(snapshot_cf_, stored, snapshot_value(stored, snapshot->first, snapshot->second));
    if (!s.ok()) return from_rocks(s, "building alert batch");
  }
  rocksdb::WriteOptions wo;
  wo.sync = opts_.sync && sync;
  return from_rocks(db_->Write(wo, &batch), "writing alert events");
}

result<std::uint32_t> journal::latest_alert_version(const std::string& alert_id) const {
  std::string prefix = seal_.id(alert_id) + '\0';
  std::string upper = prefix;
  upper.append(8, '\xff');
  std::unique_ptr<rocksdb::Iterator> it{db_->NewIterator(rocksdb::ReadOptions{}, alert_cf_)};
  it->SeekForPrev(upper);
  if (it->Valid() && it->key().starts_with(prefix) && it->key().size() == prefix.size() + 8)
    return static_cast<std::uint32_t>(get_u64_be(it->key().data() + prefix.size()));
  if (auto st = from_rocks(it->status(), "reading alert events"); !st) return st;
  return std::uint32_t{0};
}

status journal::for_each_open_alert(const std::function<bool(const alert_event&)>& fn) const {
  std::unique_ptr<rocksdb::Iterator> it{db_->NewIterator(rocksdb::ReadOptions{}, open_cf_)};
  // With keys the index is in the order of hashed ids: gathered and sorted by alert id.
  std::vector<alert_event> sorted;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    auto e = decode_stored_alert(seal_, aad_open_alert, it->key(), it->value());
    if (!e) {
      // One bad entry must not hide every other open alert.
      log(log_level::error, "journal", "open_alert_unreadable",
          {{"alert", seal_.enabled() ? hex(view(it->key())) : it->key().ToString()}, {"error", e.error().to_string()}});
      continue;
    }
    if (seal_.enabled()) {
      sorted.push_back(std::move(*e));
      continue;
    }
    if (!fn(*e)) break;
  }
  if (auto st = from_rocks(it->status(), "reading open alerts"); !st) return st;
  std::sort(sorted.begin(), sorted.end(),
            [](const alert_event& a, const alert_event& b) { return a.after.id < b.after.id; });
  for (const auto& e : sorted)
    if (!fn(e)) break;
  return {};
}

result<std::vector<alert_event>> journal::alert_history(const std::string& alert_id) const {
  std::vector<alert_event> out;
  std::string prefix = seal_.id(alert_id) + '\0';
  std::unique_ptr<rocksdb::Iterator> it{db_->NewIterator(rocksdb::ReadOptions{}, alert_cf_)};
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    auto e = decode_stored_alert(seal_, aad_alert, it->key(), it->value());
    if (!e) return e.error();
    out.push_back(std::move(*e));
  }
  if (auto st = from_rocks(it->status(), "reading alert events"); !st) return st;
  return out;
}

status journal::for_each_alert_event(const std::function<bool(const alert_event&)>& fn) const {
  std::unique_ptr<rocksdb::Iterator> it{db_->NewIterator(rocksdb::ReadOptions{}, alert_cf_)};
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    auto e = decode_stored_alert(seal_, aad_alert, it->key(), it->value());
    if (!e) return e.error();
    if (!fn(*e)) break;
  }
  return from_rocks(it->status(), "reading alert events");
}

status journal::for_each_snapshot(const std::string& prefix,
                                  const std::function<void(const std::string&, const std::string&)>& fn) const {
  std::unique_ptr<rocksdb::Iterator> it{db_->NewIterator(rocksdb::ReadOptions{}, snapshot_cf_)};
  if (!seal_.enabled()) {
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next())
      fn(it->key().ToString(), it->value().ToString());
    return from_rocks(it->status(), "reading snapshots");
  }
  // Only the kind ("x/") is stored in plain: seek it, and match the rest of the prefix on
  // the key held inside each value.
  const auto slash = prefix.find('/');
  const std::string seek = slash == std::string::npos ? prefix : prefix.substr(0, slash + 1);
  status unreadable;
  std::string key, bytes;
  for (it->Seek(seek); it->Valid() && it->key().starts_with(seek); it->Next()) {
    if (auto st = open_snapshot(view(it->key()), view(it->value()), key, bytes); !st) {
      log(log_level::error, "journal", "snapshot_unreadable",
          {{"key", hex(view(it->key()))}, {"error", st.to_string()}});
      if (unreadable.is_ok()) unreadable = st;
      continue;
    }
    if (key.compare(0, prefix.size(), prefix) == 0) fn(key, bytes);
  }
  if (auto st = from_rocks(it->status(), "reading snapshots"); !st) return st;
  return unreadable;
}

status journal::delete_snapshot(const std::string& key) {
  rocksdb::WriteOptions wo;
  wo.sync = opts_.sync;
  return from_rocks(db_->Delete(wo, snapshot_cf_, snapshot_key(key)), "deleting snapshot");
}

result<std::optional<std::string>> journal::get_snapshot(const std::string& key) const {
  std::string value;
  const auto stored = snapshot_key(key);
  auto s = db_->Get(rocksdb::ReadOptions{}, snapshot_cf_, stored, &value);
  if (s.IsNotFound()) return std::optional<std::string>{};
  if (!s.ok()) return from_rocks(s, "reading snapshot");
  if (!seal_.enabled()) return std::optional<std::string>{std::move(value)};
  std::string held, bytes;
  if (auto st = open_snapshot(stored, value, held, bytes); !st) return st;
  if (held != key) return status{errc::corruption, "snapshot " + key + " holds the snapshot of another key"};
  return std::optional<std::string>{std::move(bytes)};
}

namespace {
std::string encode_node_event(epoch_ms at, const std::string& kind, const std::string& entity,
                              const std::string& detail) {
  std::string value;
  put_u64_le(value, static_cast<std::uint64_t>(at));
  for (const auto* part : {&kind, &entity, &detail}) {
    put_u64_le(value, part->size());
    value += *part;
  }
  return value;
}
}  // namespace

status journal::append_event(epoch_ms at, const std::string& kind, const std::string& entity,
                             const std::string& detail) {
  return write_snapshot_and_events({}, std::nullopt, {{at, kind, entity, detail}});
}

status journal::write_snapshot_and_events(const std::string& key, const std::optional<std::string>& bytes,
                                          const std::vector<node_event>& events) {
  std::lock_guard<std::mutex> lock{event_mutex_};
  rocksdb::WriteBatch batch;
  if (!key.empty()) {
    const auto stored = snapshot_key(key);
    auto s = bytes ? batch.Put(snapshot_cf_, stored, snapshot_value(stored, key, *bytes))
                   : batch.Delete(snapshot_cf_, stored);
    if (!s.ok()) return from_rocks(s, "writing snapshot");
  }
  const auto first = event_counter_.load();
  for (std::size_t i = 0; i < events.size(); ++i) {
    std::string ekey;
    put_u64_be(ekey, first + i);
    const auto& e = events[i];
    auto s = batch.Put(event_cf_, ekey,
                       stored_value(seal_, aad_event, ekey, encode_node_event(e.at, e.kind, e.entity, e.detail)));
    if (!s.ok()) return from_rocks(s, "writing node event");
    // Indexed by entity, so an alert's pages are found without reading every event.
    if (!seal_.enabled()) {
      s = batch.Put(event_index_cf_, e.entity + '\0' + ekey, rocksdb::Slice{});
    } else {
      // A hash finds only what equals it: indexed under the entity and under each part of
      // it before an '@', so that a page "<alert id>@<step>/<target>" is found by its alert
      // id (which may itself hold an '@').
      for (std::size_t end = e.entity.find('@');; end = e.entity.find('@', end + 1)) {
        const auto subject = std::string_view{e.entity}.substr(0, end);
        if (!subject.empty() || end == std::string::npos) {
          std::string ikey = seal_.id(subject);
          ikey += '\0';
          ikey += ekey;
          s = batch.Put(event_index_cf_, ikey, rocksdb::Slice{});
        }
        if (end == std::string::npos || !s.ok()) break;
      }
    }
    if (!s.ok()) return from_rocks(s, "writing node event index");
  }
  rocksdb::WriteOptions wo;
  wo.sync = opts_.sync;
  auto st = from_rocks(db_->Write(wo, &batch), "writing snapshot and node events");
  if (st) event_counter_ += events.size();
  return st;
}

namespace {
result<journal::node_event> decode_node_event(const rocksdb::Slice& v) {
  if (v.size() < 8) return status{errc::corruption, "node event too short"};
  journal::node_event e;
  e.at = static_cast<epoch_ms>(get_u64_le(v.data()));
  std::size_t off = 8;
  for (auto* part : {&e.kind, &e.entity, &e.detail}) {
    if (off + 8 > v.size()) return status{errc::corruption, "node event truncated"};
    auto n = get_u64_le(v.data() + off);
    off += 8;
    if (n > v.size() - off) return status{errc::corruption, "node event truncated"};
    part->assign(v.data() + off, n);
    off += n;
  }
  return e;
}

result<journal::node_event> decode_stored_event(const sealer& seal, const rocksdb::Slice& key,
                                                const rocksdb::Slice& value) {
  return with_plain(seal, aad_event, view(key), view(value), "node event",
                    [](std::string_view plain) { return decode_node_event(slice(plain)); });
}
}  // namespace

result<std::vector<journal::node_event>> journal::events() const {
  std::vector<node_event> out;
  std::unique_ptr<rocksdb::Iterator> it{db_->NewIterator(rocksdb::ReadOptions{}, event_cf_)};
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    auto e = decode_stored_event(seal_, it->key(), it->value());
    if (!e) return e.error();
    out.push_back(std::move(*e));
  }
  if (auto st = from_rocks(it->status(), "reading node events"); !st) return st;
  return out;
}

result<std::vector<journal::node_event>> journal::recent_events(std::size_t limit, std::string_view kind) const {
  std::vector<node_event> out;
  std::unique_ptr<rocksdb::Iterator> it{db_->NewIterator(rocksdb::ReadOptions{}, event_cf_)};
  for (it->SeekToLast(); it->Valid() && out.size() < limit; it->Prev()) {
    auto e = decode_stored_event(seal_, it->key(), it->value());
    if (!e) return e.error();
    if (kind.empty() || e->kind == kind) out.push_back(std::move(*e));
  }
  if (auto st = from_rocks(it->status(), "reading node events"); !st) return st;
  std::reverse(out.begin(), out.end());
  return out;
}

result<std::vector<journal::node_event>> journal::events_about(std::string_view subject) const {
  std::vector<node_event> out;
  std::unique_ptr<rocksdb::Iterator> it{db_->NewIterator(rocksdb::ReadOptions{}, event_index_cf_)};
  rocksdb::PinnableSlice value;
  // Without keys the index is by entity: every entity that starts with the subject is
  // near, and the ones about it are picked by their key. With keys it is by the hash of
  // the subject (see write_snapshot_and_events).
  const std::string prefix = seal_.enabled() ? seal_.id(subject) + '\0' : std::string{subject};
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    auto k = it->key();
    if (seal_.enabled() ? k.size() != prefix.size() + 8 : (k.size() < prefix.size() + 9 || k[k.size() - 9] != '\0'))
      continue;
    if (!seal_.enabled() && !about({k.data(), k.size() - 9}, subject)) continue;
    const rocksdb::Slice ekey{k.data() + k.size() - 8, 8};
    value.Reset();
    auto s = db_->Get(rocksdb::ReadOptions{}, event_cf_, ekey, &value);
    if (s.IsNotFound()) continue;
    if (!s.ok()) return from_rocks(s, "reading node event");
    auto e = decode_stored_event(seal_, ekey, value);
    if (!e) return e.error();
    if (!about(e->entity, subject)) continue;
    out.push_back(std::move(*e));
  }
  if (auto st = from_rocks(it->status(), "reading node event index"); !st) return st;
  // Keys sort by entity, then seq: order by seq (time of writing) across entities.
  std::stable_sort(out.begin(), out.end(), [](const node_event& a, const node_event& b) { return a.at < b.at; });
  return out;
}

journal_stats journal::stats() const {
  journal_stats s;
  s.appends = appends_.load(std::memory_order_relaxed);
  s.readings = readings_.load(std::memory_order_relaxed);
  s.duplicates = duplicates_.load(std::memory_order_relaxed);
  s.commits = commits_.load(std::memory_order_relaxed);
  s.commit_micros = commit_micros_.load(std::memory_order_relaxed);
  s.commit_latency = commit_latency_.read();
  s.failures = failures_.load(std::memory_order_relaxed);
  std::lock_guard<std::mutex> lock{mutex_};
  s.pending = queued_readings_;
  return s;
}

}  // namespace alert::storage

namespace alert::storage {
namespace {

// An audit record's value: seq, time, the four strings, the previous record's hash, then
// the SHA-256 of everything before it.
std::string audit_body(std::uint64_t seq, epoch_ms at, const std::string& actor, const std::string& action,
                       const std::string& subject, const std::string& outcome, const std::string& prev_hash) {
  std::string v;
  v += static_cast<char>(1);  // format
  put_u64_le(v, seq);
  put_u64_le(v, static_cast<std::uint64_t>(at));
  for (const auto* part : {&actor, &action, &subject, &outcome}) {
    put_u64_le(v, part->size());
    v += *part;
  }
  v += prev_hash;
  return v;
}

std::string sha256(const std::string& data) {
  unsigned char out[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), out);
  return std::string(reinterpret_cast<const char*>(out), sizeof out);
}

// Parses an audit value; false when it does not parse.
bool parse_audit(std::string_view v, journal::audit_record& r, std::string& prev_hash, std::string& hash,
                 std::string& body) {
  if (v.size() < 1 + 16 + 32 + 32 || v[0] != 1) return false;
  std::size_t pos = 1;
  auto u64 = [&](std::uint64_t& out) {
    if (pos + 8 > v.size()) return false;
    out = get_u64_le(v.data() + pos);
    pos += 8;
    return true;
  };
  std::uint64_t at = 0;
  if (!u64(r.seq) || !u64(at)) return false;
  r.at = static_cast<epoch_ms>(at);
  for (auto* part : {&r.actor, &r.action, &r.subject, &r.outcome}) {
    std::uint64_t n = 0;
    if (!u64(n) || n > v.size() - pos) return false;
    part->assign(v.data() + pos, n);
    pos += n;
  }
  if (v.size() - pos != 64) return false;
  prev_hash.assign(v.data() + pos, 32);
  hash.assign(v.data() + pos + 32, 32);
  body.assign(v.data(), pos + 32);
  return true;
}

}  // namespace

status journal::append_audit(epoch_ms at, const std::string& actor, const std::string& action,
                             const std::string& subject, const std::string& outcome) {
  std::lock_guard<std::mutex> lock{audit_mutex_};
  auto body = audit_body(audit_next_, at, actor, action, subject, outcome, audit_last_hash_);
  auto hash = sha256(body);
  std::string key;
  put_u64_be(key, audit_next_);
  rocksdb::WriteOptions wo;
  wo.sync = opts_.sync;
  // The chain is over the plaintext; with keys the record is stored sealed.
  auto st = from_rocks(db_->Put(wo, audit_cf_, key, stored_value(seal_, aad_audit, key, body + hash)),
                       "writing audit record");
  if (st) {
    ++audit_next_;
    audit_last_hash_ = std::move(hash);
  }
  return st;
}

result<std::vector<journal::audit_record>> journal::audit(std::size_t limit) const {
  std::vector<audit_record> out;
  std::unique_ptr<rocksdb::Iterator> it{db_->NewIterator(rocksdb::ReadOptions{}, audit_cf_)};
  std::string plain;
  for (it->SeekToLast(); it->Valid() && out.size() < limit; it->Prev()) {
    audit_record r;
    std::string prev, hash, body;
    if (auto st = seal_.open_to(plain, view(it->value()), aad_audit, view(it->key())); !st)
      return status{errc::corruption, "audit record does not open (run: alertctl audit verify): " + st.message()};
    if (!parse_audit(plain, r, prev, hash, body))
      return status{errc::corruption, "audit record does not parse (run: alertctl audit verify)"};
    out.push_back(std::move(r));
  }
  if (auto st = from_rocks(it->status(), "reading audit log"); !st) return st;
  std::reverse(out.begin(), out.end());
  return out;
}

result<journal::audit_check> journal::verify_audit() const {
  audit_check c;
  std::string expected_prev(32, '\0');
  std::uint64_t expected_seq = 0;
  std::unique_ptr<rocksdb::Iterator> it{db_->NewIterator(rocksdb::ReadOptions{}, audit_cf_)};
  auto broken = [&](std::uint64_t seq, std::string why) {
    c.ok = false;
    c.first_broken = seq;
    c.reason = std::move(why);
    return c;
  };
  std::string plain;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (it->key().size() != 8) return broken(expected_seq, "a key in the audit log is not a record number");
    const auto key_seq = get_u64_be(it->key().data());
    if (key_seq != expected_seq)
      return broken(expected_seq, "record " + std::to_string(expected_seq) + " is missing (the next one is " +
                                      std::to_string(key_seq) + ")");
    audit_record r;
    std::string prev, hash, body;
    // Sealed with its key: a record changed, or moved to another number, does not open.
    if (auto st = seal_.open_to(plain, view(it->value()), aad_audit, view(it->key())); !st)
      return broken(key_seq, "record " + std::to_string(key_seq) +
                                 " does not open: it was changed or moved, or its data key is missing (" +
                                 st.message() + ")");
    if (!parse_audit(plain, r, prev, hash, body))
      return broken(key_seq, "record " + std::to_string(key_seq) + " does not parse");
    if (r.seq != key_seq)
      return broken(key_seq, "record " + std::to_string(key_seq) + " holds record " + std::to_string(r.seq) +
                                 " (records were moved)");
    if (prev != expected_prev)
      return broken(key_seq, "record " + std::to_string(key_seq) + " does not link to the record before it");
    if (sha256(body) != hash)
      return broken(key_seq, "record " + std::to_string(key_seq) + " was changed (its hash does not match)");
    expected_prev = hash;
    ++expected_seq;
    ++c.records;
  }
  if (auto st = from_rocks(it->status(), "reading audit log"); !st) return st;
  static const char* digits = "0123456789abcdef";
  for (char ch : expected_prev) {
    const auto b = static_cast<unsigned char>(ch);
    c.head += digits[b >> 4];
    c.head += digits[b & 15];
  }
  return c;
}

}  // namespace alert::storage
