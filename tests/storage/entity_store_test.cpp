#include "storage/entity_store.hpp"

#include <catch2/catch.hpp>
#include <future>

#include "tests/storage/keyed.hpp"
#include "tests/support/temp_dir.hpp"

using namespace alert;
using namespace alert::storage;

namespace {

reading rd(const std::string& dev, std::uint64_t seq, metric m, double v, epoch_ms ts,
           std::optional<std::string> patient = std::nullopt) {
  reading r{*device_id::make(dev), std::nullopt, m, v, ts, seq};
  if (patient) r.patient = *patient_id::make(*patient);
  return r;
}

void append(journal& j, std::vector<reading> rs, epoch_ms received) {
  std::promise<append_result> p;
  auto f = p.get_future();
  REQUIRE(j.append(std::move(rs), received, [&](append_result&& r, std::vector<reading>&&) { p.set_value(std::move(r)); })
              .is_ok());
  REQUIRE(f.wait_for(std::chrono::seconds(30)) == std::future_status::ready);
  REQUIRE(f.get().error.is_ok());
}

const device_id oxi = *device_id::make("oxi-1");
const patient_id p1 = *patient_id::make("P-1");
const patient_id p2 = *patient_id::make("P-2");

double vital_of(const patient_state& s, metric m) {
  const auto& v = s.vitals[static_cast<std::size_t>(m)];
  REQUIRE(v.has_value());
  return v->value;
}

}  // namespace

TEST_CASE("a device rebuilt from the journal equals the device built live") {
  ALERT_BOTH_LAYOUTS();
  test::temp_dir dir;
  auto j = *test::open_journal(dir.str(), keyed);
  device_state live;
  std::vector<reading> rs;
  for (std::uint64_t seq = 1; seq <= 50; ++seq) {
    auto r = rd("oxi-1", seq, seq % 2 ? metric::spo2 : metric::heart_rate, 90 + static_cast<double>(seq % 7),
                static_cast<epoch_ms>(seq * 1000), seq == 10 ? std::optional<std::string>{"P-1"} : std::nullopt);
    apply(live, r, static_cast<epoch_ms>(seq));
    append(*j, {r}, static_cast<epoch_ms>(seq));
  }
  auto rebuilt = load_device(*j, oxi);
  REQUIRE(rebuilt.has_value());
  CHECK(rebuilt->state == live);
}

TEST_CASE("a device rebuilt from a snapshot sees readings after it and late readings below it") {
  ALERT_BOTH_LAYOUTS();
  test::temp_dir dir;
  auto j = *test::open_journal(dir.str(), keyed);
  device_state live;
  auto feed = [&](reading r, epoch_ms received) {
    apply(live, r, received);
    append(*j, {r}, received);
  };
  feed(rd("oxi-1", 1, metric::spo2, 95, 1000, "P-1"), 1);
  feed(rd("oxi-1", 5, metric::heart_rate, 70, 5000), 2);
  REQUIRE(j->put_snapshot(device_key(oxi), encode_device({live, {}})).is_ok());
  // Seq 3 arrives after the snapshot (watermark 5): a late reading of a metric whose newest
  // value it becomes.
  feed(rd("oxi-1", 3, metric::battery, 40, 3000), 3);
  feed(rd("oxi-1", 6, metric::spo2, 91, 6000), 4);
  std::vector<std::uint64_t> replayed;
  auto rebuilt = load_device(*j, oxi, [&](device_snapshot&, const journal_entry& e) { replayed.push_back(e.r.seq); });
  REQUIRE(rebuilt.has_value());
  CHECK(rebuilt->state == live);
  REQUIRE(rebuilt->state.battery().has_value());
  CHECK(*rebuilt->state.battery() == 40);
  CHECK(replayed == std::vector<std::uint64_t>{3, 6});  // the late reading, then the newer one
}

TEST_CASE("a late reading is indexed as late even after the journal is reopened") {
  ALERT_BOTH_LAYOUTS();
  test::temp_dir dir;
  {
    auto j = *test::open_journal(dir.str(), keyed);
    append(*j, {rd("oxi-1", 10, metric::spo2, 95, 1)}, 1);
  }
  auto j = *test::open_journal(dir.str(), keyed);
  append(*j, {rd("oxi-1", 4, metric::spo2, 95, 1), rd("oxi-1", 11, metric::spo2, 95, 1)}, 2);
  auto late = *j->late_readings(oxi, 100);
  REQUIRE(late.size() == 1);
  CHECK(late[0].r.seq == 4);
}

TEST_CASE("a device's state at a past time counts only what had been received by then") {
  ALERT_BOTH_LAYOUTS();
  test::temp_dir dir;
  auto j = *test::open_journal(dir.str(), keyed);
  append(*j, {rd("oxi-1", 1, metric::spo2, 97, 100, "P-1")}, 1000);
  append(*j, {rd("oxi-1", 2, metric::spo2, 92, 200)}, 2000);
  append(*j, {rd("oxi-1", 3, metric::spo2, 85, 300, "P-2")}, 3000);
  // Hand-computed history: at 2500 the node knew readings 1 and 2, bound to P-1.
  auto at = device_at(*j, oxi, 2500);
  REQUIRE(at.has_value());
  const auto* spo2 = at->last(metric::spo2);
  REQUIRE(spo2 != nullptr);
  CHECK(spo2->value == 92);
  CHECK(spo2->seq == 2);
  CHECK(at->patient == p1);
  CHECK(at->last_seen == 2000);
  auto before = *device_at(*j, oxi, 999);
  CHECK(before == device_state{});
  auto now = *device_at(*j, oxi, 3000);
  CHECK(now.patient == p2);
}

TEST_CASE("a patient rebuilt from the journal has the vitals and devices of its bindings") {
  ALERT_BOTH_LAYOUTS();
  test::temp_dir dir;
  auto j = *test::open_journal(dir.str(), keyed);
  append(*j, {rd("oxi-1", 1, metric::spo2, 95, 1000, "P-1"), rd("bp-1", 1, metric::systolic_bp, 120, 1000, "P-1")}, 10);
  append(*j, {rd("oxi-1", 2, metric::spo2, 93, 2000)}, 20);              // no patient: bound to P-1
  append(*j, {rd("oxi-1", 3, metric::spo2, 80, 3000, "P-2")}, 30);       // moves to P-2
  append(*j, {rd("oxi-1", 4, metric::spo2, 81, 4000)}, 40);              // P-2's
  auto a = load_patient(*j, p1);
  REQUIRE(a.has_value());
  CHECK(vital_of(a->state, metric::spo2) == 93);
  CHECK(vital_of(a->state, metric::systolic_bp) == 120);
  CHECK(a->state.devices == std::vector<std::string>{"bp-1"});
  auto b = load_patient(*j, p2);
  REQUIRE(b.has_value());
  CHECK(vital_of(b->state, metric::spo2) == 81);
  CHECK(b->state.devices == std::vector<std::string>{"oxi-1"});
  CHECK(*j->patient_devices(p1) == std::vector<std::string>{"bp-1", "oxi-1"});
}

TEST_CASE("a patient's state at a past time matches the hand-computed history") {
  ALERT_BOTH_LAYOUTS();
  test::temp_dir dir;
  auto j = *test::open_journal(dir.str(), keyed);
  append(*j, {rd("oxi-1", 1, metric::spo2, 95, 1000, "P-1")}, 10);
  append(*j, {rd("oxi-1", 2, metric::spo2, 93, 2000)}, 20);
  append(*j, {rd("oxi-1", 3, metric::spo2, 80, 3000, "P-2")}, 30);
  auto at15 = *patient_at(*j, p1, 15);
  CHECK(vital_of(at15, metric::spo2) == 95);
  CHECK(at15.devices == std::vector<std::string>{"oxi-1"});
  auto at25 = *patient_at(*j, p1, 25);
  CHECK(vital_of(at25, metric::spo2) == 93);
  auto at35 = *patient_at(*j, p1, 35);
  CHECK(vital_of(at35, metric::spo2) == 93);
  CHECK(at35.devices.empty());
  auto p2_at25 = *patient_at(*j, p2, 25);
  CHECK_FALSE(p2_at25.vitals[static_cast<std::size_t>(metric::spo2)].has_value());
}

TEST_CASE("a patient rebuilt from its snapshot equals one rebuilt from scratch") {
  ALERT_BOTH_LAYOUTS();
  test::temp_dir dir;
  auto j = *test::open_journal(dir.str(), keyed);
  append(*j, {rd("oxi-1", 1, metric::spo2, 95, 1000, "P-1"), rd("mon-1", 1, metric::resp_rate, 18, 1000, "P-1")}, 10);
  auto mid = *load_patient(*j, p1);
  REQUIRE(j->put_snapshot(patient_key(p1), encode_patient(mid)).is_ok());
  append(*j, {rd("oxi-1", 2, metric::spo2, 90, 2000), rd("mon-1", 2, metric::resp_rate, 26, 2000)}, 20);
  append(*j, {rd("mon-1", 3, metric::resp_rate, 27, 3000, "P-2")}, 30);
  auto from_snapshot = *load_patient(*j, p1);
  REQUIRE(j->put_snapshot(patient_key(p1), "").is_ok());  // an unreadable snapshot...
  CHECK(load_patient(*j, p1).code() == errc::corruption);  // ...is reported, not ignored
  test::temp_dir dir2;
  auto j2 = *test::open_journal(dir2.str(), keyed);
  append(*j2, {rd("oxi-1", 1, metric::spo2, 95, 1000, "P-1"), rd("mon-1", 1, metric::resp_rate, 18, 1000, "P-1")}, 10);
  append(*j2, {rd("oxi-1", 2, metric::spo2, 90, 2000), rd("mon-1", 2, metric::resp_rate, 26, 2000)}, 20);
  append(*j2, {rd("mon-1", 3, metric::resp_rate, 27, 3000, "P-2")}, 30);
  auto scratch = *load_patient(*j2, p1);
  CHECK(from_snapshot == scratch);
  CHECK(vital_of(scratch.state, metric::resp_rate) == 26);
  CHECK(scratch.state.devices == std::vector<std::string>{"oxi-1"});
}

TEST_CASE("snapshots round-trip and truncated ones are corruption") {
  device_state d;
  apply(d, rd("oxi-1", 7, metric::spo2, 91.25, 123, "P-1"), 456);
  apply(d, rd("oxi-1", 8, metric::battery, 12, 124), 457);
  rule_states rs;
  rs["spo2_low"].occurrences = 3;
  rs["spo2_low"].window = {{1, 2.5}};
  alert_record a;
  a.id = "d/oxi-1/spo2_low/3";
  a.state = alert_state::acknowledged;
  a.inhibited = true;
  a.details["value"] = 84;
  a.version = 4;
  rs["spo2_low"].open = a;
  auto bytes_d = encode_device({d, rs});
  auto back = decode_device(bytes_d);
  REQUIRE(back.has_value());
  CHECK(back->state == d);
  REQUIRE(back->rules.count("spo2_low") == 1);
  const auto& st = back->rules.at("spo2_low");
  CHECK(st.occurrences == 3);
  CHECK(st.window == rs["spo2_low"].window);
  REQUIRE(st.open.has_value());
  CHECK(st.open->id == a.id);
  CHECK(st.open->state == alert_state::acknowledged);
  CHECK(st.open->inhibited);
  CHECK(st.open->details.at("value") == 84);
  CHECK(st.open->version == 4);
  CHECK(decode_device(bytes_d.substr(0, bytes_d.size() - 1)).code() == errc::corruption);
  CHECK(decode_device(bytes_d + "x").code() == errc::corruption);

  patient_snapshot p;
  apply(p.state, rd("oxi-1", 7, metric::spo2, 91.25, 123, "P-1"));
  bind_device(p.state, oxi);
  p.state.settings.spo2_scale2 = true;
  p.cursors["oxi-1"] = device_cursor{7, p1, 7};
  auto bytes_p = encode_patient(p);
  auto pback = decode_patient(bytes_p);
  REQUIRE(pback.has_value());
  CHECK(*pback == p);
  CHECK(decode_patient(bytes_p.substr(0, 5)).code() == errc::corruption);
}

TEST_CASE("node events are kept in order across reopening") {
  ALERT_BOTH_LAYOUTS();
  test::temp_dir dir;
  {
    auto j = *test::open_journal(dir.str(), keyed);
    REQUIRE(j->append_event(1, "restart", "d/oxi-1", "runtime_error: boom").is_ok());
    REQUIRE(j->append_event(2, "quarantine", "d/oxi-1", "5 restarts in 60 s").is_ok());
  }
  auto j = *test::open_journal(dir.str(), keyed);
  REQUIRE(j->append_event(3, "release", "d/oxi-1", "by operator").is_ok());
  auto ev = *j->events();
  REQUIRE(ev.size() == 3);
  CHECK(ev[0].kind == "restart");
  CHECK(ev[1].kind == "quarantine");
  CHECK(ev[1].detail == "5 restarts in 60 s");
  CHECK(ev[2].kind == "release");
  CHECK(ev[2].at == 3);
}

TEST_CASE("alert transitions are journaled once per (alert, version) and read back in order") {
  ALERT_BOTH_LAYOUTS();
  test::temp_dir dir;
  auto j = *test::open_journal(dir.str(), keyed);
  alert_record a;
  a.id = "d/oxi-1/spo2_low/1";
  a.summary = "spo2 84 % below 88 %";
  a.version = 1;
  alert_event fired{alert_event_type::fired, a, 100, {reading_ref{"oxi-1", 7}}};
  a.version = 2;
  a.state = alert_state::acknowledged;
  alert_event acked{alert_event_type::acknowledged, a, 200, {}};
  REQUIRE(j->append_alert_events({fired, acked}).is_ok());
  REQUIRE(j->append_alert_events({fired}).is_ok());  // a replay journals the same transition again
  alert_record other;
  other.id = "d/oxi-1/spo2_low/10";
  other.version = 1;
  REQUIRE(j->append_alert_events({alert_event{alert_event_type::pending, other, 300, {}}}).is_ok());
  auto h = *j->alert_history("d/oxi-1/spo2_low/1");
  REQUIRE(h.size() == 2);
  CHECK(h[0].type == alert_event_type::fired);
  CHECK(h[0].after.summary == "spo2 84 % below 88 %");
  CHECK(h[0].cause == std::vector{reading_ref{"oxi-1", 7}});
  CHECK(h[1].type == alert_event_type::acknowledged);
  CHECK(h[1].at == 200);
  std::size_t n = 0;
  REQUIRE(j->for_each_alert_event([&](const alert_event&) { ++n; return true; }).is_ok());
  CHECK(n == 3);
}

TEST_CASE("open alerts are indexed with their latest transition, and a replay never reopens one") {
  ALERT_BOTH_LAYOUTS();
  test::temp_dir dir;
  auto open_ids = [](journal& j) {
    std::vector<std::string> out;
    REQUIRE(j.for_each_open_alert([&](const alert_event& e) {
      out.push_back(e.after.id + " " + std::string{to_string(e.type)});
      return true;
    }).is_ok());
    return out;
  };
  alert_record a;
  a.id = "d/oxi-1/spo2_low/1";
  a.state = alert_state::firing;
  a.version = 1;
  alert_event fired{alert_event_type::fired, a, 100, {}};
  a.state = alert_state::acknowledged;
  a.version = 2;
  alert_event acked{alert_event_type::acknowledged, a, 200, {}};
  a.state = alert_state::resolved;
  a.version = 3;
  alert_event resolved{alert_event_type::resolved, a, 300, {}};
  alert_record b;
  b.id = "p/P-1/news2/1";
  b.state = alert_state::pending;
  b.version = 1;
  alert_event pending{alert_event_type::pending, b, 100, {}};
  b.version = 2;
  alert_event cancelled{alert_event_type::cancelled, b, 150, {}};
  {
    auto j = *test::open_journal(dir.str(), keyed);
    REQUIRE(j->append_alert_events({fired, pending}).is_ok());
    CHECK(open_ids(*j) == std::vector<std::string>{"d/oxi-1/spo2_low/1 fired", "p/P-1/news2/1 pending"});
    REQUIRE(j->append_alert_events({acked}).is_ok());
    REQUIRE(j->append_alert_events({cancelled}).is_ok());
    CHECK(open_ids(*j) == std::vector<std::string>{"d/oxi-1/spo2_low/1 acknowledged"});
    REQUIRE(j->append_alert_events({fired}).is_ok());  // a rebuild replays an older transition
    CHECK(open_ids(*j) == std::vector<std::string>{"d/oxi-1/spo2_low/1 acknowledged"});
    REQUIRE(j->append_alert_events({resolved}).is_ok());
    REQUIRE(j->append_alert_events({fired, acked}).is_ok());
    CHECK(open_ids(*j).empty());
  }
  auto j = *test::open_journal(dir.str(), keyed);  // the index is durable
  CHECK(open_ids(*j).empty());
  CHECK(j->alert_history(a.id)->size() == 3);
}

TEST_CASE("an entity's snapshot can be written in the same batch as its transitions") {
  ALERT_BOTH_LAYOUTS();
  test::temp_dir dir;
  auto j = *test::open_journal(dir.str(), keyed);
  alert_record a;
  a.id = "d/oxi-1/battery_low/1";
  a.version = 1;
  device_state d;
  apply(d, rd("oxi-1", 1, metric::battery, 10, 1), 1);
  REQUIRE(j->append_alert_events({alert_event{alert_event_type::fired, a, 1, {}}},
                                 std::make_pair(device_key(oxi), encode_device({d, {}})))
              .is_ok());
  CHECK(j->alert_history(a.id)->size() == 1);
  auto stored = *j->get_snapshot(device_key(oxi));
  REQUIRE(stored.has_value());
  CHECK(decode_device(*stored)->state == d);
}

TEST_CASE("an escalation in progress survives storage at the step it reached") {
  ALERT_BOTH_LAYOUTS();
  test::temp_dir dir;
  auto j = *test::open_journal(dir.str(), keyed);
  escalation_policy pol;
  pol.id = "ward";
  pol.levels = {{{"nurse-a", "nurse-b"}, 120'000}, {{"charge-nurse"}, 300'000}};
  alert_record a;
  a.id = "d/oxi-1/spo2_low/1";
  a.summary = "spo2 84 % below 88 %";
  a.version = 2;
  std::vector<escalation_action> acts;
  auto st = start_escalation(pol, a, 1000, acts);
  on_page_status(pol, st, st.pages[0].id, page_status::rejected, "nurse.a", 2000, acts);
  on_escalation_timer(pol, st, 121'000, acts);  // level 1 now
  REQUIRE(st.level == 1);
  on_page_unreachable(pol, st, st.pages.back().id, 121'000, acts);
  st.pages[0].by = "nurse.b";  // the codec keeps who answered
  st.base = 7;  // as after restarts of the policy
  REQUIRE(j->put_snapshot(escalation_key(a.id), encode_escalation({st, a}), true).is_ok());
  REQUIRE(j->put_snapshot(escalation_key("d/oxi-2/spo2_low/1"), encode_escalation({st, a}), true).is_ok());
  REQUIRE(j->put_snapshot("d/oxi-1", "not an escalation").is_ok());
  std::vector<escalation_record> found;
  REQUIRE(j->for_each_snapshot("x/", [&](const std::string&, const std::string& bytes) {
    auto r = decode_escalation(bytes);
    REQUIRE(r.has_value());
    found.push_back(std::move(*r));
  }).is_ok());
  REQUIRE(found.size() == 2);
  const auto& back = found[0].state;
  CHECK(back.alert_id == st.alert_id);
  CHECK(back.policy == "ward");
  CHECK(back.level == 1);
  CHECK(back.level_deadline == st.level_deadline);
  // The rejected page of level 0 is settled and forgotten; nurse-b's is still open.
  REQUIRE(back.pages.size() == 2);
  CHECK(back.pages[0].id == st.pages[0].id);
  CHECK(back.pages[0].target == "nurse-b");
  CHECK(back.pages[0].status == page_status::sent);
  CHECK(back.pages[0].by == "nurse.b");
  CHECK(back.pages[1].id == st.pages[1].id);
  CHECK(back.pages[1].unreachable);
  CHECK_FALSE(back.pages[0].unreachable);
  CHECK(back.base == 7);
  CHECK(found[0].alert.summary == a.summary);
  CHECK(next_due(back) == next_due(st));
  REQUIRE(j->delete_snapshot(escalation_key("d/oxi-2/spo2_low/1")).is_ok());
  std::size_t left = 0;
  REQUIRE(j->for_each_snapshot("x/", [&](const std::string&, const std::string&) { ++left; }).is_ok());
  CHECK(left == 1);
  CHECK(decode_escalation("x").code() == errc::corruption);
}
