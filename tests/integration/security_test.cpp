// Security of a real alertd, the way it runs by default: CURVE with a ZAP handler on every
// endpoint, keys mapped to roles and allowances by the access file, and the data encrypted
// at rest. Unknown keys get nothing; integrators send only for their devices; gateways take
// only their targets; each control command is checked per role; and a raw scan of the
// RocksDB files finds no patient id or value.
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <zmq.hpp>

#include "cluster/control_wire.hpp"
#include "cluster/curve.hpp"
#include "cluster/ingest_client.hpp"
#include "cluster/pager_wire.hpp"
#include "tests/support/gateway.hpp"
#include "tests/support/process.hpp"
#include "tests/support/temp_dir.hpp"

using namespace alert;

namespace {

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Keys for every party, an access file naming all but `stranger`, and a data key file.
struct keyring {
  test::temp_dir& dir;
  std::string keys_dir;
  explicit keyring(test::temp_dir& d) : dir(d), keys_dir(d.sub("keys")) {
    std::filesystem::create_directories(keys_dir);
    for (const char* name : {"node-1", "ward3", "ward-pagers", "icu-pagers", "olga", "cara", "aud", "stranger"}) {
      auto kp = cluster::generate_keypair();
      REQUIRE(kp.has_value());
      REQUIRE(cluster::write_key_files(keys_dir, name, *kp));
    }
    write_access(true);
  }
  // The access file; without `with_ward3`, the integrator's entry is gone and the ward's
  // gateway may serve only ward-nurse.
  void write_access(bool with_ward3) const {
    std::ofstream out{access_file() + ".new"};
    out << "version: 1\nkeys:\n";
    if (with_ward3) out << entry("ward3", "integrator", "    devices: [\"w3-*\"]\n");
    out << entry("ward-pagers", "gateway",
                 with_ward3 ? "    targets: [ward-nurse, charge-nurse]\n" : "    targets: [ward-nurse]\n")
        << entry("icu-pagers", "gateway", "    targets: [rapid-response]\n") << entry("olga", "operator")
        << entry("cara", "clinician") << entry("aud", "auditor");
    out.close();
    std::filesystem::rename(access_file() + ".new", access_file());
  }
  std::string key(const std::string& name) const { return keys_dir + "/" + name + ".key"; }
  std::string pub(const std::string& name) const { return keys_dir + "/" + name + ".pub"; }
  std::string access_file() const { return keys_dir + "/access.yaml"; }
  std::string entry(const std::string& name, const std::string& role, const std::string& extra = "") const {
    auto k = cluster::load_public_key(pub(name));
    REQUIRE(k.has_value());
    return "  - name: " + name + "\n    role: " + role + "\n    public-key: \"" + *k + "\"\n" + extra;
  }
  cluster::client_security client(const std::string& name) const {
    auto s = cluster::load_client_security(key(name), pub("node-1"));
    REQUIRE(s.has_value());
    return *s;
  }
};

// An alertd with CURVE and encryption at rest on ephemeral loopback ports.
struct secure_node {
  std::unique_ptr<test::process> p;
  std::string ingest, pager, control;

  secure_node(const keyring& k, const std::string& data, const std::string& data_keys) {
    std::vector<std::string> args{"--data-dir", data, "--ingest.endpoint", "tcp://127.0.0.1:*", "--pager.endpoint",
                                  "tcp://127.0.0.1:*", "--control.endpoint", "tcp://127.0.0.1:*",
                                  "--metrics.endpoint", "off", "--stats-interval", "0",
                                  "--security.node-key", k.key("node-1"), "--security.access", k.access_file(),
                                  "--security.data-key-file", data_keys};
    p = std::make_unique<test::process>(ALERT_ALERTD_PATH, args, true);
    auto ready = p->wait_for_line("alertd ready");
    REQUIRE(ready.has_value());
    ingest = test::ready_field(*ready, "ingest");
    pager = test::ready_field(*ready, "pager");
    control = test::ready_field(*ready, "control");
  }
  void stop() {
    p->signal(SIGTERM);
    auto rc = p->wait();
    REQUIRE(rc.has_value());
    CHECK(*rc == 0);
  }
};

std::string make_data_keys(test::temp_dir& dir) {
  const auto path = dir.sub("data.keys");
  test::process gen{ALERT_ALERTCTL_PATH, {"keygen", "--data-keys", path}};
  gen.read_all();
  REQUIRE(gen.wait() == 0);
  return path;
}

// One control request under a key; nothing when no reply came within `wait`.
std::optional<wire::control_reply> ask(const std::string& endpoint, const cluster::client_security& sec,
                                       const std::string& cmd, wire::value args,
                                       std::chrono::milliseconds wait = std::chrono::seconds(20)) {
  static std::uint64_t next_id = 1;
  zmq::context_t ctx{1};
  zmq::socket_t sock{ctx, zmq::socket_type::dealer};
  sock.set(zmq::sockopt::linger, 0);
  cluster::apply_client(sock, sec);
  sock.connect(endpoint);
  wire::control_request req;
  req.id = next_id++;
  req.cmd = cmd;
  req.args = std::move(args);
  sock.send(zmq::buffer(wire::encode_control_request(req)), zmq::send_flags::none);
  zmq::pollitem_t item{sock.handle(), 0, ZMQ_POLLIN, 0};
  if (zmq::poll(&item, 1, wait) == 0) return std::nullopt;
  zmq::message_t m;
  REQUIRE(sock.recv(m));
  auto reply = wire::decode_control_reply(static_cast<const char*>(m.data()), m.size());
  REQUIRE(reply.has_value());
  return *reply;
}

reading_input rd(const std::string& device, const std::string& patient, const std::string& metric, double v,
                 std::uint64_t seq) {
  reading_input r;
  r.device = device;
  r.patient = patient;
  r.metric = metric;
  r.value = v;
  r.ts = wall_ms();
  r.seq = seq;
  return r;
}

cluster::client_options ingest_opts(const secure_node& n, const cluster::client_security& sec,
                                    std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  cluster::client_options co;
  co.endpoint = n.ingest;
  co.security = sec;
  co.timeout = timeout;
  co.attempts = 1;
  return co;
}

// The audit records (who, action, outcome, subject), newest last, read as the auditor.
std::vector<std::map<std::string, std::string>> audit(const secure_node& n, const keyring& k) {
  auto r = ask(n.control, k.client("aud"), "audit", wire::value_object{{"limit", 1000}});
  REQUIRE(r.has_value());
  REQUIRE(r->ok);
  std::vector<std::map<std::string, std::string>> out;
  for (const auto& rec : std::get<wire::value_array>(r->result.get("records")->v)) {
    std::map<std::string, std::string> m;
    for (const char* f : {"actor", "action", "subject", "outcome"}) m[f] = rec.str(f).value_or("");
    out.push_back(std::move(m));
  }
  return out;
}

bool audited(const secure_node& n, const keyring& k, const std::string& actor, const std::string& action,
             const std::string& outcome) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  do {
    for (const auto& r : audit(n, k))
      if (r.at("actor").rfind(actor, 0) == 0 && r.at("action") == action && r.at("outcome") == outcome) return true;
  } while (std::chrono::steady_clock::now() < deadline);
  return false;
}

// Whether `needle` occurs in any file under `dir`.
std::vector<std::string> files_containing(const std::string& dir, const std::string& needle) {
  std::vector<std::string> hits;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    std::ifstream in{e.path(), std::ios::binary};
    std::ostringstream all;
    all << in.rdbuf();
    const std::string bytes = all.str();
    if (bytes.find(needle) != std::string::npos) hits.push_back(e.path().filename().string());
  }
  return hits;
}

std::string le_bytes(double v) {
  std::string s(sizeof v, '\0');
  std::memcpy(s.data(), &v, sizeof v);
  return s;
}

}  // namespace

TEST_CASE("with CURVE an unknown key, or no key at all, gets nothing, and the refusal is audited") {
  test::temp_dir dir;
  keyring k{dir};
  secure_node n{k, dir.sub("data"), make_data_keys(dir)};

  // A stranger's key: the handshake fails, so no reply ever comes.
  zmq::context_t ctx{1};
  cluster::ingest_client stranger{ctx, ingest_opts(n, k.client("stranger"), std::chrono::milliseconds{1500})};
  auto sent = stranger.send(1, {rd("w3-oxi-1", "P-1", "spo2", 97, 1)});
  REQUIRE_FALSE(sent.has_value());
  CHECK(sent.code() == errc::unavailable);
  CHECK_FALSE(ask(n.control, k.client("stranger"), "status", nullptr, std::chrono::milliseconds{1500}).has_value());
  // No key at all (a plaintext client): nothing either.
  CHECK_FALSE(ask(n.control, {}, "status", nullptr, std::chrono::milliseconds{1500}).has_value());
  // A known key on an endpoint its role may not use: a gateway at control, an operator at ingest.
  CHECK_FALSE(ask(n.control, k.client("ward-pagers"), "status", nullptr, std::chrono::milliseconds{1500}).has_value());
  cluster::ingest_client operator_at_ingest{ctx, ingest_opts(n, k.client("olga"), std::chrono::milliseconds{1500})};
  CHECK_FALSE(operator_at_ingest.send(2, {rd("w3-oxi-1", "P-1", "spo2", 97, 1)}).has_value());

  // alertctl says the key was refused instead of waiting out its timeout.
  test::process ctl{ALERT_ALERTCTL_PATH,
                    {"--endpoint", n.control, "--key", k.key("stranger"), "--server-key", k.pub("node-1"), "status"},
                    true};
  auto out = ctl.read_all();
  CHECK(ctl.wait() == 1);
  CHECK(out.find("refused this key") != std::string::npos);
  // The wrong server key: the node cannot read the hello, and alertctl says so at once.
  test::process wrong{ALERT_ALERTCTL_PATH,
                      {"--endpoint", n.control, "--key", k.key("olga"), "--server-key", k.pub("stranger"), "status"},
                      true};
  auto wrong_out = wrong.read_all();
  CHECK(wrong.wait() == 1);
  CHECK(wrong_out.find("is --server-key the node's own public key") != std::string::npos);

  // The known keys are let in, and every decision is in the audit log.
  auto status = ask(n.control, k.client("olga"), "status", nullptr);
  REQUIRE(status.has_value());
  CHECK(status->ok);
  CHECK(audited(n, k, "key:", "authenticate", "unauthorized"));
  CHECK(audited(n, k, "ward-pagers", "authenticate", "unauthorized"));
  CHECK(audited(n, k, "olga", "authenticate", "ok"));
  n.stop();
}

TEST_CASE("an integrator is refused, reading by reading, for devices outside its allowance") {
  test::temp_dir dir;
  keyring k{dir};
  secure_node n{k, dir.sub("data"), make_data_keys(dir)};
  zmq::context_t ctx{1};
  cluster::ingest_client ward3{ctx, ingest_opts(n, k.client("ward3"))};
  auto ack = ward3.send(1, {rd("w3-oxi-1", "P-1", "spo2", 97, 1), rd("w4-oxi-1", "P-2", "spo2", 97, 1),
                            rd("w3-bp-1", "P-1", "heart_rate", 70, 1)});
  REQUIRE(ack.has_value());
  CHECK(ack->accepted == 2);
  REQUIRE(ack->rejected.size() == 1);
  CHECK(ack->rejected[0].index == 1);
  CHECK(ack->rejected[0].code == errc::unauthorized);
  CHECK(ack->rejected[0].message.find("w4-oxi-1") != std::string::npos);
  // Nothing of the refused reading was stored; the allowed ones were.
  auto refused = ask(n.control, k.client("olga"), "readings", wire::value_object{{"device", "w4-oxi-1"}});
  REQUIRE(refused.has_value());
  CHECK(std::get<wire::value_array>(refused->result.get("readings")->v).empty());
  auto kept = ask(n.control, k.client("olga"), "readings", wire::value_object{{"device", "w3-oxi-1"}});
  REQUIRE(kept.has_value());
  CHECK(std::get<wire::value_array>(kept->result.get("readings")->v).size() == 1);
  CHECK(audited(n, k, "ward3", "ingest", "unauthorized"));
  n.stop();
}

TEST_CASE("each control command is allowed or refused by the caller's role, and the key names who acted") {
  test::temp_dir dir;
  keyring k{dir};
  secure_node n{k, dir.sub("data"), make_data_keys(dir)};
  zmq::context_t ctx{1};
  cluster::ingest_client ward3{ctx, ingest_opts(n, k.client("ward3"))};
  // SpO2 84 %: an alert to act on.
  REQUIRE(ward3.send(1, {rd("w3-oxi-1", "P-1", "spo2", 84, 1)}).has_value());
  const std::string alert_id = "d/w3-oxi-1/spo2_low/1";
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  for (;;) {
    auto a = ask(n.control, k.client("olga"), "alert", wire::value_object{{"id", alert_id}});
    REQUIRE(a.has_value());
    if (a->ok && a->result.get("alert")->str("state") == std::string{"firing"}) break;
    REQUIRE(std::chrono::steady_clock::now() < deadline);
  }

  // Every command, with arguments that make it do something; refused ones must say
  // unauthorized, allowed ones anything else (not_found for a missing silence is fine).
  const std::vector<std::pair<std::string, wire::value>> commands{
      {"status", nullptr},
      {"health", nullptr},
      {"alerts", nullptr},
      {"alert", wire::value_object{{"id", alert_id}}},
      {"silences", nullptr},
      {"device", wire::value_object{{"id", "w3-oxi-1"}}},
      {"patient", wire::value_object{{"id", "P-1"}}},
      {"events", nullptr},
      {"readings", wire::value_object{{"device", "w3-oxi-1"}}},
      {"rules-check", nullptr},
      {"ack", wire::value_object{{"id", "d/nope/spo2_low/1"}}},
      {"resolve", wire::value_object{{"id", "d/nope/spo2_low/1"}}},
      {"silence", wire::value_object{{"device", "w3-nothing"}, {"duration_s", 60}, {"reason", "role test"}}},
      {"unsilence", wire::value_object{{"id", "999"}}},
      {"audit", nullptr},
      {"audit-verify", nullptr},
      {"rules-reload", nullptr},
      {"release", wire::value_object{{"id", "d/w3-nothing"}}},
  };
  const std::set<std::string> reads{"status", "health", "alerts", "alert", "silences", "device",
                                    "patient", "events", "readings"};
  const std::set<std::string> clinical{"ack", "resolve", "silence", "unsilence"};
  const std::set<std::string> audit_log{"audit", "audit-verify"};
  const std::map<std::string, std::set<std::string>> allowed{
      {"olga", {}},  // operators: everything (filled below)
      {"cara", {}},
      {"aud", {}},
  };
  for (const auto& [name, ignored] : allowed) {
    for (const auto& [cmd, args] : commands) {
      bool may = name == "olga" || reads.count(cmd) > 0 || (name == "cara" && clinical.count(cmd) > 0) ||
                 (name == "aud" && audit_log.count(cmd) > 0);
      auto r = ask(n.control, k.client(name), cmd, args);
      INFO(name << " runs " << cmd);
      REQUIRE(r.has_value());
      if (may) {
        CHECK((r->ok || r->code != errc::unauthorized));
      } else {
        CHECK_FALSE(r->ok);
        CHECK(r->code == errc::unauthorized);
      }
    }
  }
  // A clinician acknowledges under her key's name, whatever `by` she claims.
  auto ack = ask(n.control, k.client("cara"), "ack", wire::value_object{{"id", alert_id}, {"by", "someone-else"}});
  REQUIRE(ack.has_value());
  REQUIRE(ack->ok);
  auto a = ask(n.control, k.client("aud"), "alert", wire::value_object{{"id", alert_id}});
  REQUIRE(a.has_value());
  CHECK(a->result.get("alert")->str("acked_by") == std::string{"cara"});
  // The refusals are audited under the caller's name.
  CHECK(audited(n, k, "aud", "ack", "unauthorized"));
  CHECK(audited(n, k, "cara", "rules-reload", "unauthorized"));
  CHECK(audited(n, k, "cara", "ack", "ok"));
  n.stop();
}

TEST_CASE("a gateway is paged over CURVE for its targets and refused for others") {
  test::temp_dir dir;
  keyring k{dir};
  secure_node n{k, dir.sub("data"), make_data_keys(dir)};
  zmq::context_t ctx{1};
  test::gateway icu{ctx, n.pager, "claimed-name", {"rapid-response"}, k.client("icu-pagers")};
  cluster::ingest_client ward3{ctx, ingest_opts(n, k.client("ward3"))};
  REQUIRE(ward3.send(1, {rd("w3-oxi-1", "P-1", "spo2", 84, 1)}).has_value());
  auto page = icu.page(1);
  CHECK(page.alert_id == "d/w3-oxi-1/spo2_low/1");
  CHECK(page.target == "rapid-response");
  // The node knows the gateway by its key's name, not by the name its hello claims.
  auto status = ask(n.control, k.client("olga"), "status", nullptr);
  REQUIRE(status.has_value());
  const auto& gateways = std::get<wire::value_array>(status->result.get("gateways")->v);
  REQUIRE(gateways.size() == 1);
  CHECK(std::get<std::string>(gateways[0].v) == "icu-pagers");

  // Another hello, for a target this key may not serve: refused.
  zmq::socket_t sock{ctx, zmq::socket_type::dealer};
  sock.set(zmq::sockopt::linger, 0);
  cluster::apply_client(sock, k.client("ward-pagers"));
  sock.connect(n.pager);
  sock.send(zmq::buffer(wire::encode_hello({"x", {"icu-pagers"}})), zmq::send_flags::none);
  zmq::pollitem_t item{sock.handle(), 0, ZMQ_POLLIN, 0};
  REQUIRE(zmq::poll(&item, 1, std::chrono::seconds(20)) == 1);
  zmq::message_t m;
  REQUIRE(sock.recv(m));
  auto msg = wire::decode_from_node(static_cast<const char*>(m.data()), m.size());
  REQUIRE(msg.has_value());
  auto* err = std::get_if<wire::pager_error>(&*msg);
  REQUIRE(err != nullptr);
  CHECK(err->code == errc::unauthorized);
  CHECK(err->message.find("icu-pagers") != std::string::npos);
  CHECK(audited(n, k, "ward-pagers", "gateway-hello", "unauthorized"));

  // The ward's gateway, for its own targets, may not accept the rapid-response team's page
  // (that would stop the team's escalation).
  test::gateway ward{ctx, n.pager, "ward", {"ward-nurse"}, k.client("ward-pagers")};
  ward.sock.send(zmq::buffer(wire::encode_status({page.page_id, page_status::accepted, "intruder", wall_ms()})),
                 zmq::send_flags::none);
  zmq::pollitem_t ward_item{ward.sock.handle(), 0, ZMQ_POLLIN, 0};
  REQUIRE(zmq::poll(&ward_item, 1, std::chrono::seconds(20)) == 1);
  zmq::message_t refused;
  REQUIRE(ward.sock.recv(refused));
  auto answer = wire::decode_from_node(static_cast<const char*>(refused.data()), refused.size());
  REQUIRE(answer.has_value());
  auto* no = std::get_if<wire::pager_error>(&*answer);
  REQUIRE(no != nullptr);
  CHECK(no->code == errc::unauthorized);
  CHECK(audited(n, k, "ward-pagers", "page-status", "unauthorized"));
  auto a = ask(n.control, k.client("olga"), "alert", wire::value_object{{"id", page.alert_id}});
  REQUIRE(a.has_value());
  CHECK(a->result.get("alert")->str("state") == std::string{"firing"});  // not acknowledged
  n.stop();
}

TEST_CASE("after a reload of the access file a removed key is refused and a narrowed gateway is dropped") {
  test::temp_dir dir;
  keyring k{dir};
  secure_node n{k, dir.sub("data"), make_data_keys(dir)};
  zmq::context_t ctx{1};
  cluster::ingest_client ward3{ctx, ingest_opts(n, k.client("ward3"))};
  REQUIRE(ward3.send(1, {rd("w3-oxi-1", "P-1", "spo2", 97, 1)}).has_value());
  test::gateway ward{ctx, n.pager, "ward", {"ward-nurse", "charge-nurse"}, k.client("ward-pagers")};
  auto gateways = [&] {
    auto st = ask(n.control, k.client("olga"), "status", nullptr);
    REQUIRE(st.has_value());
    return std::get<wire::value_array>(st->result.get("gateways")->v).size();
  };
  REQUIRE(gateways() == 1);

  k.write_access(false);
  n.p->signal(SIGHUP);
  // The open connection of the removed key is answered unauthorized from now on.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  for (std::uint64_t seq = 2;; ++seq) {
    auto r = ward3.send(static_cast<std::int64_t>(seq), {rd("w3-oxi-1", "P-1", "spo2", 97, seq)});
    if (!r && r.code() == errc::unauthorized) break;
    REQUIRE(std::chrono::steady_clock::now() < deadline);
  }
  // The gateway whose key no longer allows charge-nurse is dropped: no page reaches it.
  while (gateways() != 0) REQUIRE(std::chrono::steady_clock::now() < deadline);
  CHECK(audited(n, k, "signal", "access-reload", "ok"));
  n.stop();
}

TEST_CASE("a raw scan of the data directory finds no patient id, device id or value") {
  test::temp_dir dir;
  keyring k{dir};
  const auto data = dir.sub("data");
  const std::string patient = "patient-93c1e7", device = "w3-oxi-5d21";
  const double value = 83.2519;  // not round: compression would hide 83.25's zero bytes
  {
    secure_node n{k, data, make_data_keys(dir)};
    zmq::context_t ctx{1};
    cluster::ingest_client ward3{ctx, ingest_opts(n, k.client("ward3"))};
    std::vector<reading_input> rs;
    for (std::uint64_t seq = 1; seq <= 50; ++seq) rs.push_back(rd(device, patient, "spo2", value, seq));
    REQUIRE(ward3.send(1, rs).has_value());
    // The alert, its page and an operator's read of the patient: all of it is stored.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    for (;;) {
      auto a = ask(n.control, k.client("olga"), "alerts", wire::value_object{{"patient", patient}});
      REQUIRE(a.has_value());
      if (!std::get<wire::value_array>(a->result.get("alerts")->v).empty()) break;
      REQUIRE(std::chrono::steady_clock::now() < deadline);
    }
    REQUIRE(ask(n.control, k.client("olga"), "patient", wire::value_object{{"id", patient}})->ok);
    n.stop();  // snapshots are written and the memtables flushed to SST files
  }
  CHECK(files_containing(data, patient).empty());
  CHECK(files_containing(data, device).empty());
  CHECK(files_containing(data, le_bytes(value)).empty());
  // The scan itself works: the same readings in a plaintext node are found.
  const auto plain = dir.sub("plain");
  {
    test::process node{ALERT_ALERTD_PATH,
                       {"--data-dir", plain, "--ingest.endpoint", "tcp://127.0.0.1:*", "--pager.endpoint",
                        "tcp://127.0.0.1:*", "--control.endpoint", "tcp://127.0.0.1:*", "--metrics.endpoint", "off",
                        "--security.plaintext", "--security.plaintext-storage"},
                       true};
    auto ready = node.wait_for_line("alertd ready");
    REQUIRE(ready.has_value());
    zmq::context_t ctx{1};
    cluster::client_options co;
    co.endpoint = test::ready_field(*ready, "ingest");
    cluster::ingest_client c{ctx, co};
    REQUIRE(c.send(1, {rd(device, patient, "spo2", value, 1)}).has_value());
    node.signal(SIGTERM);
    REQUIRE(node.wait() == 0);
  }
  CHECK_FALSE(files_containing(plain, patient).empty());
  CHECK_FALSE(files_containing(plain, device).empty());
  CHECK_FALSE(files_containing(plain, le_bytes(value)).empty());
}

TEST_CASE("alertctl keygen makes a key pair the node admits, and never overwrites one") {
  test::temp_dir dir;
  const auto keys = dir.sub("k");
  std::filesystem::create_directories(keys);
  test::process gen{ALERT_ALERTCTL_PATH, {"keygen", "eve", "--dir", keys}};
  auto out = gen.read_all();
  REQUIRE(gen.wait() == 0);
  CHECK(out.find("public-key: \"") != std::string::npos);
  struct stat st {};
  REQUIRE(::stat((keys + "/eve.key").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  auto kp = cluster::load_key_file(keys + "/eve.key");
  REQUIRE(kp.has_value());
  CHECK(cluster::load_public_key(keys + "/eve.pub").value() == kp->public_key);
  test::process again{ALERT_ALERTCTL_PATH, {"keygen", "eve", "--dir", keys}, true};
  auto refused = again.read_all();
  CHECK(again.wait() == 1);
  CHECK(refused.find("never overwritten") != std::string::npos);
  CHECK(cluster::load_key_file(keys + "/eve.key")->secret_key == kp->secret_key);
  // A key file others can read is refused.
  ::chmod((keys + "/eve.key").c_str(), 0644);
  auto open = cluster::load_key_file(keys + "/eve.key");
  REQUIRE_FALSE(open.has_value());
  CHECK(open.error().message().find("chmod 600") != std::string::npos);
}
