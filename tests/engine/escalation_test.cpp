#include "engine/escalation.hpp"

#include <catch2/catch.hpp>

using namespace alert;

namespace {

constexpr epoch_ms t0 = 1'700'000'000'000;

escalation_policy two_levels(unsigned repeat = 0) {
  escalation_policy p;
  p.id = "ward";
  p.levels = {{{"nurse-a", "nurse-b"}, 120'000}, {{"charge-nurse"}, 300'000}};
  p.repeat = repeat;
  p.redeliver_ms = 10'000;
  p.redeliver_max_ms = 40'000;
  return p;
}

alert_record spo2_alert() {
  alert_record a;
  a.id = "d/oxi-1/spo2_low/1";
  a.rule = "spo2_low";
  a.patient = "W3-P-1";
  a.priority = alert_priority::high;
  a.kind = alert_kind::physiological;
  return a;
}

std::vector<std::string> sent_ids(const std::vector<escalation_action>& acts) {
  std::vector<std::string> out;
  for (const auto& a : acts)
    if (a.what == escalation_action::type::send) out.push_back(a.pg.id);
  return out;
}

std::vector<std::string> cancelled(const std::vector<escalation_action>& acts) {
  std::vector<std::string> out;
  for (const auto& a : acts)
    if (a.what == escalation_action::type::cancel) out.push_back(a.pg.id + " " + a.reason);
  return out;
}

const std::string L0A = "d/oxi-1/spo2_low/1@0.0/nurse-a";
const std::string L0B = "d/oxi-1/spo2_low/1@0.0/nurse-b";
const std::string L1 = "d/oxi-1/spo2_low/1@1.0/charge-nurse";

}  // namespace

TEST_CASE("escalation pages every target of the first level with deterministic page ids") {
  auto pol = two_levels();
  std::vector<escalation_action> acts;
  auto st = start_escalation(pol, spo2_alert(), t0, acts);
  CHECK(sent_ids(acts) == std::vector<std::string>{L0A, L0B});
  CHECK(page_id("d/oxi-1/spo2_low/1", 0, 0, "nurse-a") == L0A);
  CHECK(st.at == escalation_state::phase::paging);
  CHECK(next_due(st) == t0 + 10'000);  // the first redelivery comes before the level timeout
}

TEST_CASE("a page not received is sent again under the same id with a doubling wait, up to a cap") {
  auto pol = two_levels();
  std::vector<escalation_action> acts;
  auto st = start_escalation(pol, spo2_alert(), t0, acts);
  on_page_status(pol, st, L0B, page_status::received, "", t0 + 1, acts);
  acts.clear();
  on_escalation_timer(pol, st, t0 + 9'999, acts);
  CHECK(acts.empty());
  on_escalation_timer(pol, st, t0 + 10'000, acts);
  CHECK(sent_ids(acts) == std::vector<std::string>{L0A});  // nurse-b's gateway has its page
  CHECK(next_due(st) == t0 + 30'000);                       // 20 s wait now
  acts.clear();
  on_escalation_timer(pol, st, t0 + 30'000, acts);
  on_escalation_timer(pol, st, t0 + 70'000, acts);
  on_escalation_timer(pol, st, t0 + 110'000, acts);
  CHECK(sent_ids(acts) == std::vector<std::string>{L0A, L0A, L0A});
  CHECK(next_due(st) == t0 + 120'000);  // capped at 40 s, and the level times out first
  on_page_status(pol, st, L0A, page_status::delivered, "", t0 + 111'000, acts);
  acts.clear();
  on_escalation_timer(pol, st, t0 + 115'000, acts);
  CHECK(acts.empty());
}

TEST_CASE("a level that times out escalates to the next without cancelling the earlier pages") {
  auto pol = two_levels();
  std::vector<escalation_action> acts;
  auto st = start_escalation(pol, spo2_alert(), t0, acts);
  on_page_status(pol, st, L0A, page_status::received, "", t0 + 1, acts);
  on_page_status(pol, st, L0B, page_status::received, "", t0 + 1, acts);
  acts.clear();
  on_escalation_timer(pol, st, t0 + 120'000, acts);
  CHECK(sent_ids(acts) == std::vector<std::string>{L1});
  CHECK(cancelled(acts).empty());
  CHECK(st.level == 1);
  // A first-level nurse who accepts late still stops the escalation.
  acts.clear();
  on_page_status(pol, st, L0A, page_status::accepted, "nurse.kim", t0 + 130'000, acts);
  REQUIRE(!acts.empty());
  CHECK(acts[0].what == escalation_action::type::acknowledge);
  CHECK(acts[0].pg.by == "nurse.kim");
  CHECK(cancelled(acts) == std::vector<std::string>{L0B + " acknowledged", L1 + " acknowledged"});
  CHECK(st.at == escalation_state::phase::acknowledged);
  CHECK_FALSE(next_due(st).has_value());
}

TEST_CASE("when everyone of a step rejects, escalation moves on at once") {
  auto pol = two_levels();
  std::vector<escalation_action> acts;
  auto st = start_escalation(pol, spo2_alert(), t0, acts);
  acts.clear();
  on_page_status(pol, st, L0A, page_status::rejected, "nurse.a", t0 + 1000, acts);
  CHECK(acts.empty());  // nurse-b may still take it
  on_page_status(pol, st, L0B, page_status::rejected, "nurse.b", t0 + 2000, acts);
  CHECK(sent_ids(acts) == std::vector<std::string>{L1});
  CHECK(st.level_deadline == t0 + 2000 + 300'000);
}

TEST_CASE("the policy repeats its levels and then keeps paging the last level") {
  auto pol = two_levels(1);
  std::vector<escalation_action> acts;
  auto st = start_escalation(pol, spo2_alert(), t0, acts);
  std::vector<std::string> steps;
  epoch_ms now = t0;
  for (int i = 0; i < 5; ++i) {
    now = st.level_deadline;
    acts.clear();
    on_escalation_timer(pol, st, now, acts);
    steps.push_back(std::to_string(st.level) + "." + std::to_string(st.repeat));
  }
  CHECK(steps == std::vector<std::string>{"1.0", "0.1", "1.1", "1.2", "1.3"});
  CHECK(sent_ids(acts) == std::vector<std::string>{"d/oxi-1/spo2_low/1@1.3/charge-nurse"});
}

TEST_CASE("an acknowledgement timeout pages again from the first level under new ids") {
  auto pol = two_levels();
  pol.ack_timeout_ms = 600'000;
  std::vector<escalation_action> acts;
  auto st = start_escalation(pol, spo2_alert(), t0, acts);
  acts.clear();
  on_alert_acknowledged(pol, st, t0 + 5000, acts);
  CHECK(cancelled(acts) == std::vector<std::string>{L0A + " acknowledged", L0B + " acknowledged"});
  CHECK(next_due(st) == t0 + 605'000);
  acts.clear();
  on_escalation_timer(pol, st, t0 + 604'999, acts);
  CHECK(acts.empty());
  on_escalation_timer(pol, st, t0 + 605'000, acts);
  CHECK(sent_ids(acts) == std::vector<std::string>{"d/oxi-1/spo2_low/1@0.1/nurse-a", "d/oxi-1/spo2_low/1@0.1/nurse-b"});
}

TEST_CASE("resolving or silencing cancels every outstanding page and ends escalation") {
  auto pol = two_levels();
  std::vector<escalation_action> acts;
  auto st = start_escalation(pol, spo2_alert(), t0, acts);
  on_page_status(pol, st, L0A, page_status::rejected, "nurse.a", t0 + 1, acts);
  acts.clear();
  on_alert_closed(st, "resolved", acts);
  CHECK(cancelled(acts) == std::vector<std::string>{L0B + " resolved"});
  CHECK(st.at == escalation_state::phase::done);
  CHECK_FALSE(next_due(st).has_value());
  acts.clear();
  on_page_status(pol, st, L0B, page_status::accepted, "late", t0 + 2, acts);  // too late
  on_escalation_timer(pol, st, t0 + 1'000'000, acts);
  on_alert_closed(st, "silenced", acts);
  CHECK(acts.empty());
}

TEST_CASE("an unknown page id or a status no gateway may send changes nothing") {
  auto pol = two_levels();
  std::vector<escalation_action> acts;
  auto st = start_escalation(pol, spo2_alert(), t0, acts);
  acts.clear();
  auto before = next_due(st);
  on_page_status(pol, st, "d/other/x/1@0.0/nurse-a", page_status::accepted, "x", t0, acts);
  on_page_status(pol, st, L0A, page_status::cancelled, "x", t0, acts);
  on_page_status(pol, st, L0A, page_status::sent, "x", t0, acts);
  CHECK(acts.empty());
  CHECK(next_due(st) == before);
}

TEST_CASE("routes pick the first matching policy and the last one catches everything") {
  escalation_config cfg;
  cfg.policies = {two_levels(), escalation_policy{"tech", {{{"biomed"}, 600'000}}, 0, 0, 10'000, 60'000},
                  escalation_policy{"rapid", {{{"rapid-response"}, 60'000}}, 2, 0, 10'000, 60'000}};
  escalation_route tech;
  tech.kind = alert_kind::technical;
  tech.policy = "tech";
  escalation_route rapid;
  rapid.priority = alert_priority::high;
  rapid.patient_prefix = "W3-";
  rapid.policy = "rapid";
  escalation_route all;
  all.policy = "ward";
  cfg.routes = {tech, rapid, all};
  auto a = spo2_alert();
  CHECK(cfg.route(a)->id == "rapid");
  a.patient = "W4-P-9";
  CHECK(cfg.route(a)->id == "ward");
  a.kind = alert_kind::technical;
  CHECK(cfg.route(a)->id == "tech");
  CHECK(cfg.find("nope") == nullptr);
  escalation_config empty;
  CHECK(empty.route(a) == nullptr);
}

TEST_CASE("page statuses have stable names") {
  for (auto s : {page_status::sent, page_status::received, page_status::delivered, page_status::read,
                 page_status::accepted, page_status::rejected, page_status::cancelled})
    CHECK(page_status_from_string(to_string(s)) == s);
  CHECK(to_string(page_status::accepted) == "accepted");
  CHECK_FALSE(page_status_from_string("ok").has_value());
}

TEST_CASE("an unreachable step moves on at once, but the last step waits for its timeout") {
  auto pol = two_levels();
  std::vector<escalation_action> acts;
  auto st = start_escalation(pol, spo2_alert(), t0, acts);
  acts.clear();
  on_page_unreachable(pol, st, L0A, t0, acts);
  CHECK(acts.empty());  // nurse-b's gateway is there
  on_page_status(pol, st, L0B, page_status::rejected, "nurse.b", t0 + 1000, acts);
  CHECK(sent_ids(acts) == std::vector<std::string>{L1});
  acts.clear();
  // Nobody serves the charge nurse either: the last step is not paged again in a loop...
  on_page_unreachable(pol, st, L1, t0 + 1000, acts);
  CHECK(acts.empty());
  CHECK(st.level == 1);
  // ...it stays due for redelivery, and a rejection there waits for the timeout too.
  CHECK(next_due(st) == t0 + 1000 + 10'000);
  on_page_status(pol, st, L1, page_status::rejected, "charge", t0 + 2000, acts);
  CHECK(acts.empty());
  on_escalation_timer(pol, st, t0 + 1000 + 300'000, acts);
  CHECK(sent_ids(acts) == std::vector<std::string>{"d/oxi-1/spo2_low/1@1.1/charge-nurse"});
}

TEST_CASE("a gateway that connects gets the current step's pages it has not received at once") {
  auto pol = two_levels();
  std::vector<escalation_action> acts;
  auto st = start_escalation(pol, spo2_alert(), t0, acts);
  on_page_unreachable(pol, st, L0A, t0, acts);
  on_page_status(pol, st, L0B, page_status::received, "", t0 + 1, acts);
  acts.clear();
  on_gateway_available(pol, st, {"nurse-b"}, t0 + 500, acts);
  CHECK(acts.empty());  // nurse-b already has its page
  on_gateway_available(pol, st, {"*"}, t0 + 600, acts);
  CHECK(sent_ids(acts) == std::vector<std::string>{L0A});
  CHECK_FALSE(st.pages[0].unreachable);
  CHECK(st.pages[0].sends == 2);
}

TEST_CASE("a restarted escalation runs the whole policy again under page ids never used before") {
  auto pol = two_levels(1);
  std::vector<escalation_action> acts;
  auto st = start_escalation(pol, spo2_alert(), t0, acts);
  on_escalation_timer(pol, st, st.level_deadline, acts);  // level 1, repeat 0
  on_alert_closed(st, "silenced", acts);
  acts.clear();
  restart_escalation(pol, st, t0 + 900'000, acts);  // the silence expired
  CHECK(sent_ids(acts) == std::vector<std::string>{"d/oxi-1/spo2_low/1@0.1/nurse-a", "d/oxi-1/spo2_low/1@0.1/nurse-b"});
  CHECK(st.at == escalation_state::phase::paging);
  std::vector<std::string> steps;
  for (int i = 0; i < 4; ++i) {
    on_escalation_timer(pol, st, st.level_deadline, acts);
    steps.push_back(std::to_string(st.level) + "." + std::to_string(st.repeat));
  }
  // A full run (two passes) again, counted from the restart.
  CHECK(steps == std::vector<std::string>{"1.1", "0.2", "1.2", "1.3"});
}

TEST_CASE("open pages of every earlier step can still be accepted and are cancelled at the end") {
  escalation_policy pol;
  pol.id = "three";
  pol.levels = {{{"nurse"}, 60'000}, {{"charge"}, 60'000}, {{"rapid"}, 60'000}};
  std::vector<escalation_action> acts;
  auto st = start_escalation(pol, spo2_alert(), t0, acts);
  const auto nurse = st.pages[0].id;
  on_page_status(pol, st, nurse, page_status::received, "", t0 + 1, acts);
  on_escalation_timer(pol, st, st.level_deadline, acts);                       // charge
  on_page_status(pol, st, st.pages.back().id, page_status::rejected, "c", t0 + 2, acts);  // rapid at once
  on_escalation_timer(pol, st, st.level_deadline, acts);                       // rapid again
  CHECK(st.pages.size() == 3);  // the nurse's and both rapid pages; the rejected one is forgotten
  acts.clear();
  on_alert_closed(st, "resolved", acts);
  CHECK(cancelled(acts) == std::vector<std::string>{nurse + " resolved", "d/oxi-1/spo2_low/1@2.0/rapid resolved",
                                                    "d/oxi-1/spo2_low/1@2.1/rapid resolved"});
}

TEST_CASE("a nurse who accepts a page two steps old acknowledges the alert") {
  escalation_policy pol;
  pol.id = "three";
  pol.levels = {{{"nurse"}, 60'000}, {{"charge"}, 60'000}, {{"rapid"}, 60'000}};
  std::vector<escalation_action> acts;
  auto st = start_escalation(pol, spo2_alert(), t0, acts);
  const auto nurse = st.pages[0].id;
  on_escalation_timer(pol, st, st.level_deadline, acts);
  on_escalation_timer(pol, st, st.level_deadline, acts);
  acts.clear();
  on_page_status(pol, st, nurse, page_status::accepted, "nurse.kim", st.level_deadline - 1, acts);
  REQUIRE(!acts.empty());
  CHECK(acts[0].what == escalation_action::type::acknowledge);
  CHECK(st.at == escalation_state::phase::acknowledged);
}

TEST_CASE("an escalation that pages its last level for days keeps a bounded record") {
  auto pol = two_levels();
  std::vector<escalation_action> acts;
  auto st = start_escalation(pol, spo2_alert(), t0, acts);
  for (int i = 0; i < 500; ++i) on_escalation_timer(pol, st, st.level_deadline, acts);
  CHECK(st.pages.size() == max_kept_pages);
  CHECK(st.pages.back().repeat == st.repeat);  // the newest are kept
}
