// Encryption at rest of the journal: what lands in the data directory's files, key rotation,
// and which key files a data directory accepts.

#include <rocksdb/db.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <sstream>

#include "storage/data_keys.hpp"
#include "storage/entity_store.hpp"
#include "storage/journal.hpp"
#include "storage/sealer.hpp"
#include "tests/storage/keyed.hpp"
#include "tests/support/temp_dir.hpp"

using namespace alert;
using namespace alert::storage;
namespace fs = std::filesystem;

namespace {

const std::string patient = "patient-7f3a9c";
const std::string device = "mon-51c2e8";
// A mantissa without runs of zero bytes: SST blocks are compressed, and a compressor would
// split a value like 173.25 (five zero bytes) so that a plaintext scan could not find it.
constexpr double value = 173.2519;

reading rd(const std::string& dev, std::uint64_t seq, double v, std::optional<std::string> pat = std::nullopt) {
  reading r{*device_id::make(dev), std::nullopt, metric::heart_rate, v, 1'700'000'000'000 + static_cast<epoch_ms>(seq),
            seq};
  if (pat) r.patient = *patient_id::make(*pat);
  return r;
}

void append(journal& j, std::vector<reading> rs, epoch_ms received) {
  std::promise<append_result> p;
  auto f = p.get_future();
  REQUIRE(j.append(std::move(rs), received,
                   [&](append_result&& r, std::vector<reading>&&) { p.set_value(std::move(r)); })
              .is_ok());
  REQUIRE(f.wait_for(std::chrono::seconds(30)) == std::future_status::ready);
  auto r = f.get();
  REQUIRE(r.error.is_ok());
}

alert_record patient_alert() {
  alert_record a;
  a.id = "p/" + patient + "/hr_high/1";
  a.entity = "p/" + patient;
  a.rule = "hr_high";
  a.patient = patient;
  a.device = device;
  a.state = alert_state::firing;
  a.first_value = a.last_value = a.worst_value = value;
  a.summary = "heart rate 173.2519 /min above 130 for " + patient;
  a.details["value"] = value;
  a.version = 1;
  return a;
}

// Writes PHI into every column family: readings (bound, late), snapshots of the device, the
// patient and an escalation, alert transitions of a patient and a device alert, node events
// and audit records naming the patient.
void write_phi(journal& j) {
  append(j, {rd(device, 1, value, patient), rd(device, 5, value)}, 1000);
  append(j, {rd(device, 3, value, patient)}, 2000);  // late

  device_state ds;
  apply(ds, rd(device, 5, value, patient), 1000);
  REQUIRE(j.put_snapshot(device_key(*device_id::make(device)), encode_device({ds, {}}), true).is_ok());
  patient_snapshot ps;
  apply(ps.state, rd(device, 5, value, patient));
  bind_device(ps.state, *device_id::make(device));
  ps.cursors[device] = device_cursor{5, *patient_id::make(patient), 1};

  auto a = patient_alert();
  auto acked = a;
  acked.state = alert_state::acknowledged;
  acked.acked_by = "nurse.kim";
  acked.version = 2;
  REQUIRE(j.append_alert_events({alert_event{alert_event_type::fired, a, 1000, {reading_ref{device, 1}}},
                                 alert_event{alert_event_type::acknowledged, acked, 1100, {}}},
                                std::make_pair(patient_key(*patient_id::make(patient)), encode_patient(ps)))
              .is_ok());
  alert_record d = a;
  d.id = "d/" + device + "/hr_high/1";
  d.entity = "d/" + device;
  REQUIRE(j.append_alert_events({alert_event{alert_event_type::fired, d, 1000, {reading_ref{device, 1}}}}).is_ok());

  escalation_policy pol;
  pol.id = "ward";
  pol.levels = {{{"nurse-a"}, 120'000}};
  std::vector<escalation_action> acts;
  auto st = start_escalation(pol, a, 1000, acts);
  REQUIRE_FALSE(st.pages.empty());
  REQUIRE(j.write_snapshot_and_events(escalation_key(a.id), encode_escalation({st, a}),
                                      {{1000, "page_sent", st.pages[0].id, "paging nurse-a about " + patient}})
              .is_ok());
  REQUIRE(j.append_event(1100, "alert_acknowledged", a.id, "by nurse.kim").is_ok());
  REQUIRE(j.append_event(1200, "quarantine", "d/" + device, "5 restarts in 60 s").is_ok());

  REQUIRE(j.append_audit(1300, "nurse.kim", "patient", patient, "ok").is_ok());
  REQUIRE(j.append_audit(1301, "nurse.kim", "readings", device, "ok").is_ok());
  REQUIRE(j.append_audit(1302, "nurse.kim", "ack", a.id, "ok").is_ok());
}

// Checks that everything write_phi wrote reads back.
void check_phi(const journal& j) {
  auto dev = *device_id::make(device);
  auto readings = *j.read_device(dev);
  REQUIRE(readings.size() == 3);
  CHECK(readings[0].r.device.str() == device);
  CHECK(readings[0].r.patient->str() == patient);
  CHECK(readings[0].r.value == value);
  CHECK(readings[1].r.seq == 3);
  CHECK(j.late_readings(dev, 10)->size() == 1);
  CHECK(*j.patient_devices(*patient_id::make(patient)) == std::vector<std::string>{device});
  auto loaded = load_patient(j, *patient_id::make(patient));
  REQUIRE(loaded.has_value());
  CHECK(loaded->state.devices == std::vector<std::string>{device});
  REQUIRE(load_device(j, dev).has_value());
  auto history = *j.alert_history(patient_alert().id);
  REQUIRE(history.size() == 2);
  CHECK(history[1].after.acked_by == "nurse.kim");
  std::vector<std::string> open;
  REQUIRE(j.for_each_open_alert([&](const alert_event& e) {
    open.push_back(e.after.id);
    return true;
  }).is_ok());
  CHECK(open == std::vector<std::string>{"d/" + device + "/hr_high/1", patient_alert().id});
  std::vector<std::string> escalations;
  REQUIRE(j.for_each_snapshot("x/", [&](const std::string& k, const std::string&) { escalations.push_back(k); })
              .is_ok());
  CHECK(escalations == std::vector<std::string>{escalation_key(patient_alert().id)});
  CHECK(j.events_about(patient_alert().id)->size() == 2);
  auto audit = *j.verify_audit();
  CHECK(audit.ok);
  CHECK(audit.records == 3);
  CHECK(j.audit(1)->at(0).subject == patient_alert().id);
}

std::string read_all(const fs::path& p) {
  std::ifstream in{p, std::ios::binary};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string le_bytes(double d) {
  std::uint64_t bits;
  std::memcpy(&bits, &d, sizeof bits);
  std::string out;
  for (int i = 0; i < 8; ++i) out += static_cast<char>((bits >> (8 * i)) & 0xff);
  return out;
}

std::string be_bytes(double d) {
  auto le = le_bytes(d);
  return std::string(le.rbegin(), le.rend());
}

struct needle {
  std::string name, bytes;
};

const std::vector<needle>& needles() {
  static const std::vector<needle> all{{"patient id", patient},
                                       {"device id", device},
                                       {"value as text", "173.2519"},
                                       {"value, little-endian double", le_bytes(value)},
                                       {"value, big-endian double", be_bytes(value)}};
  return all;
}

// Every file of the data directory, read byte by byte: which needles are in which files.
struct scan_result {
  std::map<std::string, std::vector<std::string>> found;  // needle -> files holding it
  std::uintmax_t wal_bytes = 0, sst_bytes = 0;
  std::size_t files = 0;
};

scan_result scan(const std::string& dir) {
  scan_result out;
  for (const auto& e : fs::recursive_directory_iterator{dir}) {
    if (!e.is_regular_file()) continue;
    ++out.files;
    const auto name = e.path().filename().string();
    const auto bytes = read_all(e.path());
    if (e.path().extension() == ".log") out.wal_bytes += bytes.size();
    if (e.path().extension() == ".sst") out.sst_bytes += bytes.size();
    for (const auto& n : needles())
      if (bytes.find(n.bytes) != std::string::npos) out.found[n.name].push_back(name);
  }
  return out;
}

bool any_ends_with(const std::vector<std::string>& files, const std::string& ext) {
  for (const auto& f : files)
    if (f.size() >= ext.size() && f.compare(f.size() - ext.size(), ext.size(), ext) == 0) return true;
  return false;
}

std::string hex(const data_keys::key_bytes& k) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (auto b : k) {
    out += digits[b >> 4];
    out += digits[b & 15];
  }
  return out;
}

// Reads one raw value of a column family, as someone with the files would.
std::optional<std::string> raw_get(const std::string& dir, const std::string& cf, const std::string& key) {
  std::vector<std::string> names;
  REQUIRE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions{}, dir, &names).ok());
  std::vector<rocksdb::ColumnFamilyDescriptor> descs;
  for (const auto& n : names) descs.emplace_back(n, rocksdb::ColumnFamilyOptions{});
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  REQUIRE(rocksdb::DB::OpenForReadOnly(rocksdb::DBOptions{}, dir, descs, &handles, &raw).ok());
  std::unique_ptr<rocksdb::DB> db{raw};
  std::optional<std::string> out;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (names[i] != cf) continue;
    std::string v;
    if (db->Get(rocksdb::ReadOptions{}, handles[i], key, &v).ok()) out = std::move(v);
  }
  for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
  return out;
}

std::string stored_reading_key(const sealer& s, const std::string& dev, std::uint64_t seq) {
  std::string key = "r" + s.id(dev) + std::string(1, '\0');
  for (int shift = 56; shift >= 0; shift -= 8) key += static_cast<char>((seq >> shift) & 0xff);
  return key;
}

std::uint32_t key_id_of(const std::string& sealed) {
  REQUIRE(sealed.size() >= sealer::overhead);
  std::uint32_t id = 0;
  for (int i = 1; i <= 4; ++i) id = (id << 8) | static_cast<unsigned char>(sealed[static_cast<std::size_t>(i)]);
  return id;
}

}  // namespace

TEST_CASE("a raw scan of an encrypted data directory finds no patient id, device id or value") {
  test::temp_dir dir;
  const auto data = dir.sub("data");
  REQUIRE(create_data_key_file(dir.sub("keys")).is_ok());
  journal_options opts;
  opts.keys = *load_data_keys(dir.sub("keys"));
  {
    auto j = *journal::open(data, opts);
    write_phi(*j);
    check_phi(*j);
  }
  // Closed without a flush: everything is in the write-ahead log.
  auto wal = scan(data);
  CHECK(wal.wal_bytes > 4096);
  for (const auto& [what, files] : wal.found) {
    INFO(what << " found in " << files.front());
    CHECK(files.empty());
  }
  // Reopened: the log is replayed into SST files.
  {
    auto j = *journal::open(data, opts);
    check_phi(*j);
  }
  auto sst = scan(data);
  CHECK(sst.sst_bytes > 4096);
  for (const auto& [what, files] : sst.found) {
    INFO(what << " found in " << files.front());
    CHECK(files.empty());
  }
  CHECK(sst.found.empty());
  CHECK(wal.found.empty());
}

TEST_CASE("the same raw scan of a plaintext data directory finds the patient id in the log and the SST files") {
  // Proves the scan above can see what it looks for.
  test::temp_dir dir;
  const auto data = dir.sub("data");
  {
    auto j = *journal::open(data);
    write_phi(*j);
    check_phi(*j);
  }
  auto wal = scan(data);
  CHECK(any_ends_with(wal.found["patient id"], ".log"));
  CHECK(any_ends_with(wal.found["device id"], ".log"));
  CHECK(any_ends_with(wal.found["value, little-endian double"], ".log"));
  CHECK(any_ends_with(wal.found["value as text"], ".log"));
  {
    auto j = *journal::open(data);
    check_phi(*j);
  }
  auto sst = scan(data);
  CHECK(any_ends_with(sst.found["patient id"], ".sst"));
  CHECK(any_ends_with(sst.found["device id"], ".sst"));
  CHECK(any_ends_with(sst.found["value, little-endian double"], ".sst"));
  CHECK(any_ends_with(sst.found["value as text"], ".sst"));
}

TEST_CASE("after adding a data key new values are sealed with it and old ones stay readable") {
  test::temp_dir dir;
  const auto data = dir.sub("data"), keys = dir.sub("keys");
  REQUIRE(create_data_key_file(keys).is_ok());
  const auto dev = *device_id::make(device);
  {
    journal_options opts;
    opts.keys = *load_data_keys(keys);
    auto j = *journal::open(data, opts);
    write_phi(*j);
  }
  REQUIRE(*add_data_key(keys) == 2);
  const auto rotated = *load_data_keys(keys);
  REQUIRE(rotated->current_id() == 2);
  journal_options opts;
  opts.keys = rotated;
  {
    auto j = *journal::open(data, opts);
    check_phi(*j);  // old records, sealed with key 1
    append(*j, {rd(device, 6, 99, patient), rd(device, 7, 98)}, 3000);
    REQUIRE(j->append_audit(3000, "nurse.lee", "patient", patient, "ok").is_ok());
    REQUIRE(j->put_snapshot("x/new", "escalation").is_ok());
  }
  {
    auto j = *journal::open(data, opts);
    auto all = *j->read_device(dev);
    REQUIRE(all.size() == 5);
    CHECK(all[0].r.value == value);
    CHECK(all[3].r.seq == 6);
    CHECK(all[3].r.patient->str() == patient);
    CHECK(all[4].r.value == 98);
    auto audit = *j->verify_audit();
    CHECK(audit.ok);
    CHECK(audit.records == 4);
    CHECK(**j->get_snapshot("x/new") == "escalation");
  }
  // Old values keep key 1 (nothing is rewritten); new ones have key 2.
  const sealer s{rotated};
  CHECK(key_id_of(*raw_get(data, "journal", stored_reading_key(s, device, 1))) == 1);
  CHECK(key_id_of(*raw_get(data, "journal", stored_reading_key(s, device, 6))) == 2);

  SECTION("a key file without key 1 reads the new records and names key 1 for the old ones") {
    const auto partial = dir.sub("keys-without-1");
    {
      std::ofstream out{partial};
      out << "index " << hex(rotated->index_key) << "\n2 " << hex(rotated->data.at(2)) << "\n";
    }
    fs::permissions(partial, fs::perms::owner_read | fs::perms::owner_write);
    journal_options without_1;
    without_1.keys = *load_data_keys(partial);
    auto j = journal::open(data, without_1);
    REQUIRE(j.has_value());  // the index key matches
    auto newer = (*j)->read_device(dev, 6);
    REQUIRE(newer.has_value());
    CHECK(newer->size() == 2);
    auto old = (*j)->read_device(dev);
    REQUIRE_FALSE(old.has_value());
    CHECK(old.code() == errc::corruption);
    CHECK(old.error().message().find("data key 1") != std::string::npos);
    auto audit = *(*j)->verify_audit();
    CHECK_FALSE(audit.ok);
    CHECK(audit.first_broken == 0);
    CHECK(audit.reason.find("data key 1") != std::string::npos);
  }
}

TEST_CASE("an encrypted data directory refuses a key file with another index key") {
  test::temp_dir dir;
  const auto data = dir.sub("data");
  REQUIRE(create_data_key_file(dir.sub("keys")).is_ok());
  REQUIRE(create_data_key_file(dir.sub("other")).is_ok());
  journal_options opts;
  opts.keys = *load_data_keys(dir.sub("keys"));
  { REQUIRE(journal::open(data, opts).has_value()); }
  journal_options wrong;
  wrong.keys = *load_data_keys(dir.sub("other"));
  auto j = journal::open(data, wrong);
  REQUIRE_FALSE(j.has_value());
  CHECK(j.code() == errc::config_error);
  CHECK(j.error().message().find("the data key file does not belong to this data directory") != std::string::npos);
  // The same data keys with another index key are refused too.
  auto same_data = std::make_shared<data_keys>(*opts.keys);
  same_data->index_key[0] ^= 1;
  wrong.keys = same_data;
  CHECK(journal::open(data, wrong).code() == errc::config_error);
  CHECK(journal::open(data, opts).has_value());
}

TEST_CASE("an encrypted data directory is refused without keys") {
  test::temp_dir dir;
  {
    auto j = *test::open_journal(dir.str(), true);
    append(*j, {rd(device, 1, value, patient)}, 1);
  }
  auto j = journal::open(dir.str());
  REQUIRE_FALSE(j.has_value());
  CHECK(j.code() == errc::config_error);
  CHECK(j.error().message().find("encrypted") != std::string::npos);
  CHECK(j.error().message().find("security.data-key-file") != std::string::npos);
}

TEST_CASE("a plaintext data directory with data is refused with keys, an empty one becomes encrypted") {
  test::temp_dir dir;
  SECTION("with data") {
    {
      auto j = *journal::open(dir.str());
      REQUIRE(j->append_event(1, "restart", "d/oxi-1", "boom").is_ok());
    }
    auto j = test::open_journal(dir.str(), true);
    REQUIRE_FALSE(j.has_value());
    CHECK(j.code() == errc::config_error);
    CHECK(j.error().message().find("unencrypted") != std::string::npos);
    CHECK(j.error().message().find("no migration") != std::string::npos);
    CHECK(journal::open(dir.str()).has_value());  // still fine without keys
  }
  SECTION("empty") {
    { REQUIRE(journal::open(dir.str()).has_value()); }
    { REQUIRE(test::open_journal(dir.str(), true).has_value()); }
    CHECK(journal::open(dir.str()).code() == errc::config_error);  // encrypted from now on
  }
}

TEST_CASE("a sealed value copied to another key of the journal does not open") {
  test::temp_dir dir;
  const auto dev = *device_id::make(device);
  {
    auto j = *test::open_journal(dir.str(), true);
    append(*j, {rd(device, 1, value, patient), rd(device, 2, 50, patient)}, 1);
  }
  const sealer s{test::fixed_keys()};
  const auto first = *raw_get(dir.str(), "journal", stored_reading_key(s, device, 1));
  {
    std::vector<std::string> names;
    REQUIRE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions{}, dir.str(), &names).ok());
    std::vector<rocksdb::ColumnFamilyDescriptor> descs;
    for (const auto& n : names) descs.emplace_back(n, rocksdb::ColumnFamilyOptions{});
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* raw = nullptr;
    REQUIRE(rocksdb::DB::Open(rocksdb::DBOptions{}, dir.str(), descs, &handles, &raw).ok());
    std::unique_ptr<rocksdb::DB> db{raw};
    for (std::size_t i = 0; i < names.size(); ++i)
      if (names[i] == "journal")
        REQUIRE(db->Put(rocksdb::WriteOptions{}, handles[i], stored_reading_key(s, device, 2), first).ok());
    for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
  }
  auto j = *test::open_journal(dir.str(), true);
  auto one = j->read_device(dev, 0, 1);
  REQUIRE(one.has_value());
  CHECK(one->at(0).r.value == value);
  auto both = j->read_device(dev);
  REQUIRE_FALSE(both.has_value());
  CHECK(both.code() == errc::corruption);
}
