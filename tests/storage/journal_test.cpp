#include "storage/journal.hpp"

#include <rocksdb/db.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <thread>

#include "tests/storage/keyed.hpp"
#include "tests/support/temp_dir.hpp"

using namespace alert;
using namespace alert::storage;

namespace {

reading make(const std::string& dev, std::uint64_t seq, double value = 95,
             std::optional<std::string> patient = std::nullopt) {
  reading r{*device_id::make(dev), std::nullopt, metric::spo2, value, 1'700'000'000'000 + static_cast<epoch_ms>(seq), seq};
  if (patient) r.patient = *patient_id::make(*patient);
  return r;
}

// Appends and waits for the completion (bounded).
append_result append_sync(journal& j, std::vector<reading> rs, epoch_ms received = 42) {
  std::promise<append_result> p;
  auto f = p.get_future();
  auto st = j.append(std::move(rs), received, [&p](append_result&& r, std::vector<reading>&&) {
    p.set_value(std::move(r));
  });
  REQUIRE(st.is_ok());
  REQUIRE(f.wait_for(std::chrono::seconds(30)) == std::future_status::ready);
  return f.get();
}

std::size_t count_all(const journal& j) {
  std::size_t n = 0;
  REQUIRE(j.for_each([&](const journal_entry&) { ++n; return true; }).is_ok());
  return n;
}

template <class F>
bool eventually(F&& cond) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::yield();
  }
  return cond();
}

}  // namespace

TEST_CASE("an appended reading reads back with every field and its receive time") {
  ALERT_BOTH_LAYOUTS();
  test::temp_dir dir;
  auto j = test::open_journal(dir.str(), keyed);
  REQUIRE(j.has_value());
  auto res = append_sync(**j, {make("oxi-1", 7, 91.5, "P-1")}, 1234);
  CHECK(res.error.is_ok());
  CHECK(res.accepted == 1);
  CHECK(res.duplicates == 0);
  auto back = (*j)->read_device(*device_id::make("oxi-1"));
  REQUIRE(back.has_value());
  REQUIRE(back->size() == 1);
  const auto& e = back->front();
  CHECK(e.r.device.str() == "oxi-1");
  REQUIRE(e.r.patient.has_value());
  CHECK(e.r.patient->str() == "P-1");
  CHECK(e.r.what == metric::spo2);
  CHECK(e.r.value == 91.5);
  CHECK(e.r.ts == 1'700'000'000'007);
  CHECK(e.r.seq == 7);
  CHECK(e.received == 1234);
}

TEST_CASE("a reading already journaled is a duplicate and is not written again") {
  ALERT_BOTH_LAYOUTS();
  test::temp_dir dir;
  auto j = *test::open_journal(dir.str(), keyed);
  CHECK(append_sync(*j, {make("oxi-1", 1, 90)}, 100).accepted == 1);
  auto res = append_sync(*j, {make("oxi-1", 1, 80), make("oxi-1", 2, 85)}, 200);
  CHECK(res.accepted == 1);
  CHECK(res.duplicates == 1);
  REQUIRE(res.duplicate.size() == 2);
  CHECK(res.duplicate[0]);
  CHECK_FALSE(res.duplicate[1]);
  auto back = *j->read_device(*device_id::make("oxi-1"));
  REQUIRE(back.size() == 2);
  CHECK(back[0].r.value == 90);  // the first write stands
  CHECK(back[0].received == 100);
}

TEST_CASE("a reading repeated within one append is written once") {
  ALERT_BOTH_LAYOUTS();
  test::temp_dir dir;
  auto j = *test::open_journal(dir.str(), keyed);
  auto res = append_sync(*j, {make("oxi-1", 5), make("oxi-1", 5), make("oxi-2", 5)});
  CHECK(res.accepted == 2);
  CHECK(res.duplicates == 1);
  CHECK(res.duplicate == std::vector<bool>{false, true, false});
  CHECK(count_all(*j) == 2);
}

TEST_CASE("readings of a device come back in seq order across the byte boundary") {
  ALERT_BOTH_LAYOUTS();
  test::temp_dir dir;
  auto j = *test::open_journal(dir.str(), keyed);
  append_sync(*j, {make("oxi-1", 256), make("oxi-1", 255), make("oxi-1", 1), make("oxi-10", 3)});
  auto back = *j->read_device(*device_id::make("oxi-1"));
  REQUIRE(back.size() == 3);
  CHECK(back[0].r.seq == 1);
  CHECK(back[1].r.seq == 255);
  CHECK(back[2].r.seq == 256);
  auto from = *j->read_device(*device_id::make("oxi-1"), 200, 1);
  REQUIRE(from.size() == 1);
  CHECK(from[0].r.seq == 255);
  CHECK(*j->contains(*device_id::make("oxi-10"), 3));
  CHECK_FALSE(*j->contains(*device_id::make("oxi-10"), 4));
}

TEST_CASE("journaled readings survive closing and reopening the data directory") {
  ALERT_BOTH_LAYOUTS();
  test::temp_dir dir;
  {
    auto j = *test::open_journal(dir.str(), keyed);
    append_sync(*j, {make("oxi-1", 1), make("oxi-2", 1, 88, "P-9")});
  }
  auto j = *test::open_journal(dir.str(), keyed);
  CHECK(count_all(*j) == 2);
  auto res = append_sync(*j, {make("oxi-2", 1)});
  CHECK(res.duplicates == 1);
}

TEST_CASE("a second open of the same data directory is refused as unavailable") {
  ALERT_BOTH_LAYOUTS();
  test::temp_dir dir;
  auto first = test::open_journal(dir.str(), keyed);
  REQUIRE(first.has_value());
  auto second = test::open_journal(dir.str(), keyed);
  REQUIRE_FALSE(second.has_value());
  CHECK(second.code() == errc::unavailable);
  CHECK(second.error().message().find("in use") != std::string::npos);
}

TEST_CASE("an append beyond the pending limit is refused as overloaded, not dropped") {
  ALERT_BOTH_LAYOUTS();
  test::temp_dir dir;
  journal_options opts;
  opts.max_pending_readings = 8;
  auto j = *test::open_journal(dir.str(), keyed, opts);
  std::promise<void> release;
  auto released = release.get_future().share();
  std::atomic<bool> in_completion{false};
  REQUIRE(j->append({make("a", 1), make("a", 2), make("a", 3), make("a", 4), make("a", 5)}, 1,
                    [&](append_result&&, std::vector<reading>&&) {
                      in_completion = true;
                      released.wait();
                    }).is_ok());
  REQUIRE(eventually([&] { return in_completion.load(); }));
  std::promise<append_result> second;
  REQUIRE(j->append({make("b", 1), make("b", 2), make("b", 3)}, 1,
                    [&](append_result&& r, std::vector<reading>&&) { second.set_value(std::move(r)); })
              .is_ok());
  auto refused = j->append({make("c", 1)}, 1, [](append_result&&, std::vector<reading>&&) {
    FAIL("an overloaded append must not complete");
  });
  CHECK(refused.code() == errc::overloaded);
  release.set_value();
  auto f = second.get_future();
  REQUIRE(f.wait_for(std::chrono::seconds(30)) == std::future_status::ready);
  CHECK(f.get().accepted == 3);
  CHECK_FALSE(*j->contains(*device_id::make("c"), 1));
}

TEST_CASE("close completes every queued append before it returns") {
  ALERT_BOTH_LAYOUTS();
  test::temp_dir dir;
  auto j = *test::open_journal(dir.str(), keyed);
  std::atomic<int> completed{0};
  for (std::uint64_t i = 0; i < 50; ++i)
    REQUIRE(j->append({make("oxi-1", i)}, 1, [&](append_result&& r, std::vector<reading>&&) {
      if (r.error.is_ok() && r.accepted == 1) ++completed;
    }).is_ok());
  j->close();
  CHECK(completed == 50);
  CHECK(j->append({make("oxi-1", 99)}, 1, nullptr).code() == errc::unavailable);
}

TEST_CASE("concurrent appends from many threads are all journaled exactly once") {
  ALERT_BOTH_LAYOUTS();
  test::temp_dir dir;
  auto j = *test::open_journal(dir.str(), keyed);
  constexpr int threads = 4, per_thread = 200;
  std::atomic<std::uint64_t> accepted{0};
  std::atomic<int> done{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t)
    ts.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) {
        // Every reading is sent twice, by two different threads.
        auto dev = "dev-" + std::to_string(i % 10);
        auto seq = static_cast<std::uint64_t>((t / 2) * per_thread + i);
        while (j->append({make(dev, seq)}, 1, [&](append_result&& r, std::vector<reading>&&) {
                 accepted += r.accepted;
                 ++done;
               }).code() == errc::overloaded) {
          std::this_thread::yield();
        }
      }
    });
  for (auto& t : ts) t.join();
  REQUIRE(eventually([&] { return done.load() == threads * per_thread; }));
  CHECK(accepted == threads / 2 * per_thread);
  CHECK(count_all(*j) == threads / 2 * per_thread);
  auto st = j->stats();
  CHECK(st.readings == threads / 2 * per_thread);
  CHECK(st.duplicates == threads / 2 * per_thread);
  CHECK(st.commits >= 1);
  CHECK(st.commits <= st.appends);
}

TEST_CASE("a journal value that does not parse is reported as corruption") {
  auto key = reading_key(*device_id::make("oxi-1"), 3);
  auto value = encode_reading_value(make("oxi-1", 3, 90, "P-1"), 5);
  CHECK(decode_reading(key, value).has_value());
  CHECK(decode_reading(key, value.substr(0, 10)).code() == errc::corruption);
  CHECK(decode_reading(key, value + "x").code() == errc::corruption);
  CHECK(decode_reading("x", value).code() == errc::corruption);
  auto bad_metric = value;
  bad_metric[1] = static_cast<char>(200);
  CHECK(decode_reading(key, bad_metric).code() == errc::corruption);
}

TEST_CASE("a data directory whose parents do not exist is created") {
  test::temp_dir dir;
  auto j = journal::open(dir.sub("a/b/c"));
  REQUIRE(j.has_value());
  CHECK(std::filesystem::is_directory(dir.sub("a/b/c")));
}

TEST_CASE("a data directory that cannot be created is an io error naming it") {
  test::temp_dir dir;
  { std::ofstream{dir.sub("file")} << "x"; }
  auto j = journal::open(dir.sub("file/sub"));
  REQUIRE_FALSE(j.has_value());
  CHECK(j.code() == errc::io_error);
  CHECK(j.error().message().find("file/sub") != std::string::npos);
}

TEST_CASE("readings that completions move away still leave the pending count") {
  ALERT_BOTH_LAYOUTS();
  // Regression: the pending count was taken after the completions had moved the readings
  // out, so it only grew and every append was refused as overloaded after that many.
  test::temp_dir dir;
  journal_options opts;
  opts.max_pending_readings = 10;
  auto j = *test::open_journal(dir.str(), keyed, opts);
  for (std::uint64_t i = 0; i < 50; ++i) {
    std::promise<void> done;
    auto f = done.get_future();
    std::vector<reading> taken;
    REQUIRE(j->append({make("oxi-1", 2 * i), make("oxi-1", 2 * i + 1)}, 1,
                      [&](append_result&&, std::vector<reading>&& rs) {
                        taken = std::move(rs);
                        done.set_value();
                      }).is_ok());
    REQUIRE(f.wait_for(std::chrono::seconds(30)) == std::future_status::ready);
    CHECK(taken.size() == 2);
  }
  CHECK(eventually([&] { return j->stats().pending == 0; }));
}

TEST_CASE("the largest seq does not wrap the late-reading bookkeeping") {
  ALERT_BOTH_LAYOUTS();
  test::temp_dir dir;
  auto j = *test::open_journal(dir.str(), keyed);
  append_sync(*j, {make("oxi-1", UINT64_MAX)});
  append_sync(*j, {make("oxi-1", 5)});
  auto late = *j->late_readings(*device_id::make("oxi-1"), UINT64_MAX);
  REQUIRE(late.size() == 1);
  CHECK(late[0].r.seq == 5);
}

namespace {
// Opens the data directory's RocksDB directly, to tamper with the audit log as an attacker
// with file access would.
struct raw_db {
  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> cfs;
  explicit raw_db(const std::string& dir) {
    std::vector<std::string> names;
    REQUIRE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions{}, dir, &names).ok());
    std::vector<rocksdb::ColumnFamilyDescriptor> descs;
    for (const auto& n : names) descs.emplace_back(n, rocksdb::ColumnFamilyOptions{});
    rocksdb::DB* raw = nullptr;
    REQUIRE(rocksdb::DB::Open(rocksdb::DBOptions{}, dir, descs, &cfs, &raw).ok());
    db.reset(raw);
    for (std::size_t i = 0; i < names.size(); ++i)
      if (names[i] == "audit") audit = cfs[i];
    REQUIRE(audit != nullptr);
  }
  ~raw_db() {
    for (auto* h : cfs) db->DestroyColumnFamilyHandle(h);
  }
  static std::string key(std::uint64_t seq) {
    std::string k;
    for (int i = 7; i >= 0; --i) k += static_cast<char>((seq >> (8 * i)) & 0xff);
    return k;
  }
  std::string get(std::uint64_t seq) {
    std::string v;
    REQUIRE(db->Get(rocksdb::ReadOptions{}, audit, key(seq), &v).ok());
    return v;
  }
  void put(std::uint64_t seq, const std::string& v) { REQUIRE(db->Put(rocksdb::WriteOptions{}, audit, key(seq), v).ok()); }
  void erase(std::uint64_t seq) { REQUIRE(db->Delete(rocksdb::WriteOptions{}, audit, key(seq)).ok()); }
  rocksdb::ColumnFamilyHandle* audit = nullptr;
};

void write_audit_log(const std::string& dir, bool keyed = false) {
  auto j = *test::open_journal(dir, keyed);
  for (int i = 0; i < 5; ++i)
    REQUIRE(j->append_audit(1000 + i, "nurse.kim", "ack", "d/oxi-1/spo2_low/" + std::to_string(i), "ok").is_ok());
}

journal::audit_check verify(const std::string& dir, bool keyed = false) {
  auto j = *test::open_journal(dir, keyed);
  auto c = j->verify_audit();
  REQUIRE(c.has_value());
  return *c;
}
}  // namespace

TEST_CASE("an untouched audit log verifies, continues after a restart, and lists its records") {
  ALERT_BOTH_LAYOUTS();
  test::temp_dir dir;
  write_audit_log(dir.str(), keyed);
  {
    auto j = *test::open_journal(dir.str(), keyed);
    REQUIRE(j->append_audit(2000, "node", "rules-reload", "rules.yaml", "ok").is_ok());  // after a reopen
    auto last = *j->audit(2);
    REQUIRE(last.size() == 2);
    CHECK(last[0].seq == 4);
    CHECK(last[1].seq == 5);
    CHECK(last[1].action == "rules-reload");
    CHECK(last[1].actor == "node");
  }
  auto c = verify(dir.str(), keyed);
  CHECK(c.ok);
  CHECK(c.records == 6);
  CHECK(c.head.size() == 64);
}

TEST_CASE("changing, deleting or reordering one audit record makes verify fail at that record") {
  test::temp_dir dir;
  write_audit_log(dir.str());
  SECTION("changed") {
    {
      raw_db raw{dir.str()};
      auto v = raw.get(2);
      auto at = v.find("nurse.kim");
      REQUIRE(at != std::string::npos);
      v.replace(at, 9, "nurse.bob");  // same length: only the hash can tell
      raw.put(2, v);
    }
    auto c = verify(dir.str());
    CHECK_FALSE(c.ok);
    CHECK(c.first_broken == 2);
    CHECK(c.reason.find("changed") != std::string::npos);
  }
  SECTION("deleted") {
    { raw_db{dir.str()}.erase(1); }
    auto c = verify(dir.str());
    CHECK_FALSE(c.ok);
    CHECK(c.first_broken == 1);
    CHECK(c.reason.find("missing") != std::string::npos);
  }
  SECTION("reordered") {
    {
      raw_db raw{dir.str()};
      auto a = raw.get(3), b = raw.get(4);
      raw.put(3, b);
      raw.put(4, a);
    }
    auto c = verify(dir.str());
    CHECK_FALSE(c.ok);
    CHECK(c.first_broken == 3);
  }
  SECTION("rewritten with a recomputed hash but not relinked") {
    {
      raw_db raw{dir.str()};
      auto v = raw.get(1);
      v[v.size() - 33] ^= 1;  // the last byte of the previous-hash field
      raw.put(1, v);
    }
    auto c = verify(dir.str());
    CHECK_FALSE(c.ok);
    CHECK(c.first_broken == 1);
  }
}

TEST_CASE("with data keys, changing, deleting or reordering one sealed audit record fails verify there") {
  test::temp_dir dir;
  write_audit_log(dir.str(), true);
  SECTION("untouched") {
    auto c = verify(dir.str(), true);
    CHECK(c.ok);
    CHECK(c.records == 5);
  }
  SECTION("changed") {
    {
      raw_db raw{dir.str()};
      auto v = raw.get(2);
      CHECK(v.find("nurse.kim") == std::string::npos);  // sealed
      v[v.size() / 2] ^= 1;
      raw.put(2, v);
    }
    auto c = verify(dir.str(), true);
    CHECK_FALSE(c.ok);
    CHECK(c.first_broken == 2);
    CHECK(c.reason.find("changed") != std::string::npos);
    // Listing the log reports it too.
    auto j = *test::open_journal(dir.str(), true);
    CHECK(j->audit(10).code() == errc::corruption);
  }
  SECTION("deleted") {
    { raw_db{dir.str()}.erase(1); }
    auto c = verify(dir.str(), true);
    CHECK_FALSE(c.ok);
    CHECK(c.first_broken == 1);
    CHECK(c.reason.find("missing") != std::string::npos);
  }
  SECTION("reordered") {
    {
      raw_db raw{dir.str()};
      auto a = raw.get(3), b = raw.get(4);
      raw.put(3, b);
      raw.put(4, a);
    }
    auto c = verify(dir.str(), true);
    CHECK_FALSE(c.ok);
    CHECK(c.first_broken == 3);
  }
  SECTION("copied over another record") {
    {
      raw_db raw{dir.str()};
      raw.put(1, raw.get(0));
    }
    auto c = verify(dir.str(), true);
    CHECK_FALSE(c.ok);
    CHECK(c.first_broken == 1);
  }
}

TEST_CASE("node events about an alert are its own and its pages' through the entity index") {
  ALERT_BOTH_LAYOUTS();
  test::temp_dir dir;
  auto j = *test::open_journal(dir.str(), keyed);
  const std::string a = "d/oxi-1/spo2_low/1", b = "d/oxi-1/spo2_low/10";
  REQUIRE(j->write_snapshot_and_events("", std::nullopt,
                                       {{1, "page_sent", a + "@0.0/nurse", "send 1"},
                                        {2, "page_sent", b + "@0.0/nurse", "send 1"},
                                        {3, "page_status", a + "@0.0/nurse", "received"},
                                        {4, "alert_acknowledged", a, "by nurse.kim"}})
              .is_ok());
  REQUIRE(j->append_event(5, "restart", "d/oxi-2", "crash").is_ok());
  auto about_a = *j->events_about(a);  // not alert 10's, whose id a is a prefix of
  REQUIRE(about_a.size() == 3);
  CHECK(about_a[0].kind == "page_sent");
  CHECK(about_a[0].entity == a + "@0.0/nurse");
  CHECK(about_a[1].kind == "page_status");
  CHECK(about_a[2].kind == "alert_acknowledged");
  CHECK(about_a[2].entity == a);
  auto about_b = *j->events_about(b);
  REQUIRE(about_b.size() == 1);
  CHECK(about_b[0].at == 2);
  CHECK(j->events_about("d/oxi-1/spo2_low")->empty());  // a prefix only: not an exact subject
  CHECK(j->events_about("d/oxi-2")->size() == 1);
  auto recent = *j->recent_events(2, "");
  REQUIRE(recent.size() == 2);
  CHECK(recent[0].at == 4);
  CHECK(recent[1].kind == "restart");
  auto sent = *j->recent_events(10, "page_sent");
  REQUIRE(sent.size() == 2);
  CHECK(sent[0].at == 1);
  CHECK(sent[1].at == 2);
}

TEST_CASE("events about an alert whose device id holds an at sign are found by the whole alert id") {
  ALERT_BOTH_LAYOUTS();
  test::temp_dir dir;
  auto j = *test::open_journal(dir.str(), keyed);
  const std::string a = "d/bed@4/spo2_low/1";
  REQUIRE(j->append_event(1, "page_sent", a + "@0.0/nurse@ward", "send 1").is_ok());
  REQUIRE(j->append_event(2, "alert_acknowledged", a, "by nurse.kim").is_ok());
  REQUIRE(j->append_event(3, "page_sent", "d/bed@40/spo2_low/1@0.0/nurse", "send 1").is_ok());
  auto about = *j->events_about(a);
  REQUIRE(about.size() == 2);
  CHECK(about[0].at == 1);
  CHECK(about[1].at == 2);
  CHECK(j->events_about(a + "@0.0/nurse@ward")->size() == 1);
  CHECK(j->events_about("d/bed")->size() == 3);  // "d/bed" + "@4/..." and "@40/...": about it as well
}

TEST_CASE("snapshots are found by kind and by longer prefixes under their own keys") {
  ALERT_BOTH_LAYOUTS();
  test::temp_dir dir;
  auto j = *test::open_journal(dir.str(), keyed);
  REQUIRE(j->put_snapshot("x/d/oxi-1/spo2_low/1", "one").is_ok());
  REQUIRE(j->put_snapshot("x/d/oxi-2/spo2_low/1", "two").is_ok());
  REQUIRE(j->put_snapshot("x/p/P-1/news2/1", "three").is_ok());
  REQUIRE(j->put_snapshot("d/oxi-1", "device").is_ok());
  REQUIRE(j->put_snapshot("n/silences", "silences").is_ok());
  REQUIRE(j->write_snapshot_and_events("xy/1", std::string{"other kind"}, {}).is_ok());
  auto scan = [&](const std::string& prefix) {
    std::map<std::string, std::string> found;
    REQUIRE(j->for_each_snapshot(prefix, [&](const std::string& k, const std::string& v) { found[k] = v; }).is_ok());
    return found;
  };
  CHECK(scan("x/") == std::map<std::string, std::string>{{"x/d/oxi-1/spo2_low/1", "one"},
                                                         {"x/d/oxi-2/spo2_low/1", "two"},
                                                         {"x/p/P-1/news2/1", "three"}});
  CHECK(scan("x/d/") == std::map<std::string, std::string>{{"x/d/oxi-1/spo2_low/1", "one"},
                                                           {"x/d/oxi-2/spo2_low/1", "two"}});
  CHECK(scan("x").size() == 4);
  CHECK(scan("").size() == 6);
  CHECK(**j->get_snapshot("d/oxi-1") == "device");
  CHECK(**j->get_snapshot("n/silences") == "silences");
  CHECK_FALSE(j->get_snapshot("d/oxi-2")->has_value());
  REQUIRE(j->delete_snapshot("x/d/oxi-2/spo2_low/1").is_ok());
  REQUIRE(j->write_snapshot_and_events("x/p/P-1/news2/1", std::nullopt, {}).is_ok());
  CHECK(scan("x/").size() == 1);
}
