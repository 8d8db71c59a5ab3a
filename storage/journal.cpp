#include "storage/journal.hpp"

#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/slice.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

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
constexpr const char* format_key = "journal_format";
constexpr const char* format_value = "1";

std::string device_prefix(const device_id& device) {
  std::string key;
  key.reserve(device.str().size() + 10);
  key += reading_tag;
  key += device.str();
  key += '\0';
  return key;
}

status from_rocks(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) return {};
  std::string msg{what};
  msg += ": ";
  msg += s.ToString();
  if (s.IsCorruption()) return {errc::corruption, msg};
  return {errc::io_error, msg};
}

rocksdb::Slice slice(const std::string& s) { return {s.data(), s.size()}; }

}  // namespace

std::string reading_key(const device_id& device, std::uint64_t seq) {
  std::string key = device_prefix(device);
  put_u64_be(key, seq);
  return key;
}

std::string encode_reading_value(const reading& r, epoch_ms received) {
  std::string out;
  const std::string* pat = r.patient ? &r.patient->str() : nullptr;
  out.reserve(27 + (pat ? pat->size() : 0));
  out += static_cast<char>(reading_format);
  out += static_cast<char>(r.what);
  bytes::put_f64(out, r.value);
  put_u64_le(out, static_cast<std::uint64_t>(r.ts));
  put_u64_le(out, static_cast<std::uint64_t>(received));
  out += static_cast<char>(pat ? pat->size() : 0);
  if (pat) out += *pat;
  return out;
}

result<journal_entry> decode_reading(std::string_view key, std::string_view value) {
  auto corrupt = [&](const char* why) {
    return status{errc::corruption, std::string{"journal entry: "} + why};
  };
  if (key.size() < 11 || key[0] != reading_tag || key[key.size() - 9] != '\0')
    return corrupt("bad key");
  auto dev = device_id::make(key.substr(1, key.size() - 10));
  if (!dev) return corrupt("bad device id in key");
  std::uint64_t seq = get_u64_be(key.data() + key.size() - 8);
  if (value.size() < 27 || static_cast<std::uint8_t>(value[0]) != reading_format)
    return corrupt("bad value header");
  auto m = static_cast<std::size_t>(static_cast<std::uint8_t>(value[1]));
  if (m >= metric_count) return corrupt("unknown metric");
  std::uint64_t bits = get_u64_le(value.data() + 2);
  double v;
  std::memcpy(&v, &bits, sizeof v);
  auto ts = static_cast<epoch_ms>(get_u64_le(value.data() + 10));
  auto received = static_cast<epoch_ms>(get_u64_le(value.data() + 18));
  auto plen = static_cast<std::size_t>(static_cast<std::uint8_t>(value[26]));
  if (value.size() != 27 + plen) return corrupt("bad value length");
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
  std::string fmt;
  s = db->Get(rocksdb::ReadOptions{}, handles[2], format_key, &fmt);
  if (s.IsNotFound()) {
    rocksdb::WriteOptions wo;
    wo.sync = true;
    s = db->Put(wo, handles[2], format_key, format_value);
    if (!s.ok()) {
      close_handles();
      return from_rocks(s, "writing journal format");
    }
  } else if (!s.ok()) {
    close_handles();
    return from_rocks(s, "reading journal format");
  } else if (fmt != format_value) {
    close_handles();
    return status{errc::corruption, "data directory " + dir + " has journal format " + fmt +
                                        ", this build reads format " + format_value};
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
      auto ps = batch.Put(open_cf_, last->after.id, encode_alert_event(*last));
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
  if (ai->Valid() && ai->key().size() == 8 && ai->value().size() >= 32) {
    audit_next_ = get_u64_be(ai->key().data()) + 1;
    audit_last_hash_.assign(ai->value().data() + ai->value().size() - 32, 32);
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
  std::string key;
  rocksdb::PinnableSlice existing;
  std::uint64_t written = 0, dups = 0;
  status failure;
  for (std::size_t g = 0; g < group.size() && failure.is_ok(); ++g) {
    auto& req = group[g];
    auto& res = results[g];
    res.duplicate.assign(req.readings.size(), false);
    for (std::size_t i = 0; i < req.readings.size(); ++i) {
      const auto& r = req.readings[i];
      key = reading_key(r.device, r.seq);
      std::string prefix = key.substr(0, key.size() - 8);
      auto& max_seq = max_seq_[prefix];
      if (max_seq == 0) max_seq = max_seq_of(prefix);
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
      auto s = batch.Put(journal_cf_, slice(key), encode_reading_value(r, req.received));
      // A reading below the device's highest journaled seq is late: index it so that a
      // rebuild from a snapshot taken before it arrived still sees it.
      if (s.ok() && r.seq < max_seq) {
        std::string late = key;
        late[0] = late_tag;
        s = batch.Put(journal_cf_, slice(late), rocksdb::Slice{});
      }
      // Stored +1 so that 0 means "unknown"; the largest seq saturates instead of wrapping.
      max_seq = std::max(max_seq, r.seq == UINT64_MAX ? UINT64_MAX : r.seq + 1);
      if (s.ok() && r.patient) {
        std::string pair;
        pair += binding_tag;
        pair += r.patient->str();
        pair += '\0';
        pair += r.device.str();
        if (indexed_pairs_.insert(pair).second) s = batch.Put(journal_cf_, slice(pair), rocksdb::Slice{});
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
  if (max_seq_.size() > max_cached_devices) max_seq_.clear();
  if (indexed_pairs_.size() > max_cached_devices) indexed_pairs_.clear();
  if (!failure.is_ok()) {
    // The batch was not written: forget what the caches learnt from it.
    max_seq_.clear();
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

result<std::vector<journal_entry>> journal::read_device(const device_id& device, std::uint64_t from_seq,
                                                        std::size_t limit) const {
  std::vector<journal_entry> out;
  std::string prefix = device_prefix(device);
  std::unique_ptr<rocksdb::Iterator> it{db_->NewIterator(rocksdb::ReadOptions{}, journal_cf_)};
  for (it->Seek(reading_key(device, from_seq)); it->Valid() && out.size() < limit; it->Next()) {
    auto k = it->key();
    if (!k.starts_with(prefix) || k.size() != prefix.size() + 8) break;
    auto e = decode_reading({k.data(), k.size()}, {it->value().data(), it->value().size()});
    if (!e) return e.error();
    out.push_back(std::move(*e));
  }
  if (auto st = from_rocks(it->status(), "reading journal"); !st) return st;
  return out;
}

result<bool> journal::contains(const device_id& device, std::uint64_t seq) const {
  rocksdb::PinnableSlice v;
  auto s = db_->Get(rocksdb::ReadOptions{}, journal_cf_, reading_key(device, seq), &v);
  if (s.IsNotFound()) return false;
  if (!s.ok()) return from_rocks(s, "reading journal");
  return true;
}

status journal::for_each(const std::function<bool(const journal_entry&)>& fn) const {
  std::unique_ptr<rocksdb::Iterator> it{db_->NewIterator(rocksdb::ReadOptions{}, journal_cf_)};
  for (it->Seek(std::string(1, reading_tag)); it->Valid(); it->Next()) {
    auto k = it->key();
    if (k.empty() || k[0] != reading_tag) break;
    auto e = decode_reading({k.data(), k.size()}, {it->value().data(), it->value().size()});
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
  std::string prefix = device_prefix(device);
  prefix[0] = late_tag;
  std::unique_ptr<rocksdb::Iterator> it{db_->NewIterator(rocksdb::ReadOptions{}, journal_cf_)};
  for (it->Seek(prefix); it->Valid(); it->Next()) {
    auto k = it->key();
    if (!k.starts_with(prefix) || k.size() != prefix.size() + 8) break;
    std::uint64_t seq = get_u64_be(k.data() + prefix.size());
    if (seq > up_to) break;
    std::string value;
    auto s = db_->Get(rocksdb::ReadOptions{}, journal_cf_, reading_key(device, seq), &value);
    if (!s.ok()) return from_rocks(s, "reading late reading");
    auto e = decode_reading(reading_key(device, seq), value);
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
  prefix += patient.str();
  prefix += '\0';
  std::unique_ptr<rocksdb::Iterator> it{db_->NewIterator(rocksdb::ReadOptions{}, journal_cf_)};
  for (it->Seek(prefix); it->Valid(); it->Next()) {
    auto k = it->key();
    if (!k.starts_with(prefix)) break;
    out.emplace_back(k.data() + prefix.size(), k.size() - prefix.size());
  }
  if (auto st = from_rocks(it->status(), "reading patient index"); !st) return st;
  return out;
}

status journal::put_snapshot(const std::string& key, const std::string& bytes, bool sync) {
  rocksdb::WriteOptions wo;
  wo.sync = sync && opts_.sync;
  return from_rocks(db_->Put(wo, snapshot_cf_, key, bytes), "writing snapshot");
}

namespace {
std::string alert_event_key(const std::string& alert_id, std::uint32_t version) {
  std::string key = alert_id;
  key += '\0';
  put_u64_be(key, version);
  return key;
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
    auto s = batch.Put(alert_cf_, alert_event_key(e.after.id, e.after.version), encode_alert_event(e));
    if (!s.ok()) return from_rocks(s, "building alert batch");
    auto it = newest.find(e.after.id);
    if (it == newest.end()) {
      auto v = latest_alert_version(e.after.id);
      if (!v) return v.error();
      it = newest.emplace(e.after.id, *v).first;
    }
    if (e.after.version < it->second) continue;  // a replay of something older
    it->second = e.after.version;
    s = is_open(e.after) && e.type != alert_event_type::cancelled
            ? batch.Put(open_cf_, e.after.id, encode_alert_event(e))
            : batch.Delete(open_cf_, e.after.id);
    if (!s.ok()) return from_rocks(s, "building alert batch");
  }
  if (snapshot) {
    auto s = batch.Put(snapshot_cf_, snapshot->first, snapshot->second);
    if (!s.ok()) return from_rocks(s, "building alert batch");
  }
  rocksdb::WriteOptions wo;
  wo.sync = opts_.sync && sync;
  return from_rocks(db_->Write(wo, &batch), "writing alert events");
}

result<std::uint32_t> journal::latest_alert_version(const std::string& alert_id) const {
  std::string upper = alert_id;
  upper += '\0';
  upper.append(8, '\xff');
  std::unique_ptr<rocksdb::Iterator> it{db_->NewIterator(rocksdb::ReadOptions{}, alert_cf_)};
  it->SeekForPrev(upper);
  std::string prefix = alert_id + '\0';
  if (it->Valid() && it->key().starts_with(prefix) && it->key().size() == prefix.size() + 8)
    return static_cast<std::uint32_t>(get_u64_be(it->key().data() + prefix.size()));
  if (auto st = from_rocks(it->status(), "reading alert events"); !st) return st;
  return std::uint32_t{0};
}

status journal::for_each_open_alert(const std::function<bool(const alert_event&)>& fn) const {
  std::unique_ptr<rocksdb::Iterator> it{db_->NewIterator(rocksdb::ReadOptions{}, open_cf_)};
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    auto e = decode_alert_event({it->value().data(), it->value().size()});
    if (!e) {
      // One bad entry must not hide every other open alert.
      log(log_level::error, "journal", "open_alert_unreadable",
          {{"alert", it->key().ToString()}, {"error", e.error().to_string()}});
      continue;
    }
    if (!fn(*e)) break;
  }
  return from_rocks(it->status(), "reading open alerts");
}

result<std::vector<alert_event>> journal::alert_history(const std::string& alert_id) const {
  std::vector<alert_event> out;
  std::string prefix = alert_id + '\0';
  std::unique_ptr<rocksdb::Iterator> it{db_->NewIterator(rocksdb::ReadOptions{}, alert_cf_)};
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    auto e = decode_alert_event({it->value().data(), it->value().size()});
    if (!e) return e.error();
    out.push_back(std::move(*e));
  }
  if (auto st = from_rocks(it->status(), "reading alert events"); !st) return st;
  return out;
}

status journal::for_each_alert_event(const std::function<bool(const alert_event&)>& fn) const {
  std::unique_ptr<rocksdb::Iterator> it{db_->NewIterator(rocksdb::ReadOptions{}, alert_cf_)};
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    auto e = decode_alert_event({it->value().data(), it->value().size()});
    if (!e) return e.error();
    if (!fn(*e)) break;
  }
  return from_rocks(it->status(), "reading alert events");
}

status journal::for_each_snapshot(const std::string& prefix,
                                  const std::function<void(const std::string&, const std::string&)>& fn) const {
  std::unique_ptr<rocksdb::Iterator> it{db_->NewIterator(rocksdb::ReadOptions{}, snapshot_cf_)};
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next())
    fn(it->key().ToString(), it->value().ToString());
  return from_rocks(it->status(), "reading snapshots");
}

status journal::delete_snapshot(const std::string& key) {
  rocksdb::WriteOptions wo;
  wo.sync = opts_.sync;
  return from_rocks(db_->Delete(wo, snapshot_cf_, key), "deleting snapshot");
}

result<std::optional<std::string>> journal::get_snapshot(const std::string& key) const {
  std::string value;
  auto s = db_->Get(rocksdb::ReadOptions{}, snapshot_cf_, key, &value);
  if (s.IsNotFound()) return std::optional<std::string>{};
  if (!s.ok()) return from_rocks(s, "reading snapshot");
  return std::optional<std::string>{std::move(value)};
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
    auto s = bytes ? batch.Put(snapshot_cf_, key, *bytes) : batch.Delete(snapshot_cf_, key);
    if (!s.ok()) return from_rocks(s, "writing snapshot");
  }
  const auto first = event_counter_.load();
  for (std::size_t i = 0; i < events.size(); ++i) {
    std::string ekey;
    put_u64_be(ekey, first + i);
    const auto& e = events[i];
    auto s = batch.Put(event_cf_, ekey, encode_node_event(e.at, e.kind, e.entity, e.detail));
    if (!s.ok()) return from_rocks(s, "writing node event");
    // Indexed by entity, so an alert's pages are found without reading every event.
    s = batch.Put(event_index_cf_, e.entity + '\0' + ekey, rocksdb::Slice{});
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
}  // namespace

result<std::vector<journal::node_event>> journal::events() const {
  std::vector<node_event> out;
  std::unique_ptr<rocksdb::Iterator> it{db_->NewIterator(rocksdb::ReadOptions{}, event_cf_)};
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    auto e = decode_node_event(it->value());
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
    auto e = decode_node_event(it->value());
    if (!e) return e.error();
    if (kind.empty() || e->kind == kind) out.push_back(std::move(*e));
  }
  if (auto st = from_rocks(it->status(), "reading node events"); !st) return st;
  std::reverse(out.begin(), out.end());
  return out;
}

result<std::vector<journal::node_event>> journal::events_about(std::string_view entity_prefix) const {
  std::vector<node_event> out;
  std::unique_ptr<rocksdb::Iterator> it{db_->NewIterator(rocksdb::ReadOptions{}, event_index_cf_)};
  rocksdb::PinnableSlice value;
  for (it->Seek(rocksdb::Slice{entity_prefix.data(), entity_prefix.size()});
       it->Valid() && it->key().starts_with(rocksdb::Slice{entity_prefix.data(), entity_prefix.size()}); it->Next()) {
    auto k = it->key();
    if (k.size() < 8) continue;
    value.Reset();
    auto s = db_->Get(rocksdb::ReadOptions{}, event_cf_, rocksdb::Slice{k.data() + k.size() - 8, 8}, &value);
    if (s.IsNotFound()) continue;
    if (!s.ok()) return from_rocks(s, "reading node event");
    auto e = decode_node_event(value);
    if (!e) return e.error();
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
  auto st = from_rocks(db_->Put(wo, audit_cf_, key, body + hash), "writing audit record");
  if (st) {
    ++audit_next_;
    audit_last_hash_ = std::move(hash);
  }
  return st;
}

result<std::vector<journal::audit_record>> journal::audit(std::size_t limit) const {
  std::vector<audit_record> out;
  std::unique_ptr<rocksdb::Iterator> it{db_->NewIterator(rocksdb::ReadOptions{}, audit_cf_)};
  for (it->SeekToLast(); it->Valid() && out.size() < limit; it->Prev()) {
    audit_record r;
    std::string prev, hash, body;
    if (!parse_audit({it->value().data(), it->value().size()}, r, prev, hash, body))
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
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (it->key().size() != 8) return broken(expected_seq, "a key in the audit log is not a record number");
    const auto key_seq = get_u64_be(it->key().data());
    if (key_seq != expected_seq)
      return broken(expected_seq, "record " + std::to_string(expected_seq) + " is missing (the next one is " +
                                      std::to_string(key_seq) + ")");
    audit_record r;
    std::string prev, hash, body;
    if (!parse_audit({it->value().data(), it->value().size()}, r, prev, hash, body))
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
