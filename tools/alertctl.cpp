// alertctl: operate a node through its control endpoint (docs/operations.md, "alertctl").
// Output for people by default (aligned tables), JSON for scripts with --json.
#include <boost/program_options.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "cluster/control_wire.hpp"
#include "cluster/curve.hpp"
#include "storage/data_keys.hpp"

namespace po = boost::program_options;
using alert::wire::value;

namespace {

// Exit codes scripts can rely on.
constexpr int exit_ok = 0;
constexpr int exit_refused = 1;      // the node answered with an error, or a check failed
constexpr int exit_usage = 2;        // bad command line
constexpr int exit_unreachable = 3;  // no answer from the node

const char* usage_text = R"(usage: alertctl [--endpoint E] [--json] [--timeout S] COMMAND [ARGS]

Commands:
  status                                   node, endpoints, counters, gateways, cluster members
  health                                   checks; exit 0 when healthy, 1 when not
  alerts [--state S] [--priority P] [--patient ID] [--limit N]
                                           alerts (state: open (default), pending, firing,
                                           acknowledged, resolved, all)
  alert ID                                 one alert: its history, escalation and pages
  ack ID [--by NAME]                       acknowledge a firing alert (stops its paging)
  resolve ID [--by NAME]                   resolve an open alert by hand
  silence (--patient ID | --device ID | --rule ID | --priority P)... --for DURATION
          --reason TEXT [--by NAME]        silence matching alerts (DURATION: 90s, 15m, 2h)
  unsilence ID [--by NAME]                 lift a silence
  silences                                 silences in force
  device ID [--at TIME]                    a device's state, now or at a past time
  patient ID [--at TIME]                   a patient's state, now or at a past time
                                           (TIME: epoch ms or 2026-11-22T10:30:00Z)
  rules check [FILE]                       check a rules file (default: the node's own)
  rules reload                             reload the node's rules file (like SIGHUP)
  events [--kind K] [--limit N]            the node's event journal (audit): restarts,
                                           quarantines, silences, pages and statuses
  readings DEVICE [--from SEQ] [--limit N] journaled readings of a device
  release ENTITY [--by NAME]               serve a quarantined entity again (d/<device>, p/<patient>)
  audit [--limit N]                        the audit log: every command, who, about what, result
  audit verify                             check the audit log's hash chain; exit 1 if broken
  keygen NAME [--dir DIR]                  make a CURVE key pair: DIR/NAME.key (secret, 0600)
                                           and DIR/NAME.pub (for the node's access file)
  keygen --data-keys FILE [--rotate]       make a data key file for encryption at rest, or
                                           add a new key to it (new data uses the newest)

Global options:
  --endpoint E   the node's control endpoint (default tcp://127.0.0.1:7602, or $ALERTCTL_ENDPOINT)
  --json         print the node's answer as JSON (for scripts)
  --timeout S    seconds to wait for the node (default 40)
  --key FILE     this operator's CURVE key pair (default $ALERTCTL_KEY)
  --server-key FILE  the node's public key, its .pub file (default $ALERTCTL_SERVER_KEY)

Exit codes: 0 done; 1 the node refused (the message says why) or a check failed;
2 bad command line; 3 no answer from the node (is alertd running? is the endpoint right?).
)";

struct usage_error {
  std::string message;
};

std::string iso_time(std::int64_t ms) {
  if (ms <= 0) return "-";
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// "1700000000000" (epoch ms) or "2026-11-22T10:30:00Z".
std::int64_t parse_time(const std::string& s) {
  if (!s.empty() && s.find_first_not_of("0123456789") == std::string::npos) return std::stoll(s);
  std::tm tm{};
  const char* end = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (!end || (*end != '\0' && std::string{end} != "Z"))
    throw usage_error{"time '" + s + "' must be epoch milliseconds or like 2026-11-22T10:30:00Z"};
  return static_cast<std::int64_t>(timegm(&tm)) * 1000;
}

// "90", "90s", "15m", "2h", "1d" -> seconds.
std::int64_t parse_duration(const std::string& s) {
  std::size_t used = 0;
  long long n = 0;
  try {
    n = std::stoll(s, &used);
  } catch (const std::exception&) {
    throw usage_error{"duration '" + s + "' must be like 90s, 15m, 2h or 1d"};
  }
  std::string unit = s.substr(used);
  long long mult = unit.empty() || unit == "s" ? 1 : unit == "m" ? 60 : unit == "h" ? 3600 : unit == "d" ? 86400 : 0;
  if (mult == 0 || n <= 0) throw usage_error{"duration '" + s + "' must be like 90s, 15m, 2h or 1d"};
  return n * mult;
}

// ---- reading values -------------------------------------------------------------------------

std::string text(const value* v) {
  if (!v || v->is_null()) return "-";
  if (v->is_string()) return std::get<std::string>(v->v);
  if (v->is_bool()) return std::get<bool>(v->v) ? "yes" : "no";
  if (v->is_int()) return std::to_string(std::get<std::int64_t>(v->v));
  if (v->is_double()) {
    std::ostringstream out;
    out << std::get<double>(v->v);
    return out.str();
  }
  return alert::wire::to_json(*v);
}
std::string text(const value& obj, std::string_view key) { return text(obj.get(key)); }
std::string when(const value& obj, std::string_view key) { return iso_time(obj.integer(key).value_or(0)); }
const alert::wire::value_array& items(const value& obj, std::string_view key) {
  static const alert::wire::value_array none;
  const auto* v = obj.get(key);
  return v && v->is_array() ? std::get<alert::wire::value_array>(v->v) : none;
}

// An aligned table: a header row, then rows; the last column is not padded.
void table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> width(header.size());
  for (std::size_t i = 0; i < header.size(); ++i) width[i] = header[i].size();
  for (const auto& r : rows)
    for (std::size_t i = 0; i < r.size() && i < width.size(); ++i) width[i] = std::max(width[i], r[i].size());
  auto line = [&](const std::vector<std::string>& r) {
    std::string out;
    for (std::size_t i = 0; i < r.size(); ++i) {
      out += r[i];
      if (i + 1 < r.size()) out += std::string(width[i] - r[i].size() + 2, ' ');
    }
    std::cout << out << "\n";
  };
  line(header);
  for (const auto& r : rows) line(r);
}

// ---- printing each command's answer -----------------------------------------------------------

int print_status(const value& r) {
  std::cout << "node        " << text(r, "node") << " (alertd " << text(r, "version") << ")\n";
  std::cout << "started     " << when(r, "started_at") << "\n";
  std::cout << "data dir    " << text(r, "data_dir") << "\n";
  if (const auto* e = r.get("endpoints"))
    std::cout << "endpoints   ingest " << text(*e, "ingest") << ", pager " << text(*e, "pager") << ", control "
              << text(*e, "control") << "\n";
  if (const auto* s = r.get("stats"))
    std::cout << "readings    " << text(*s, "accepted") << " accepted, " << text(*s, "duplicates") << " duplicates, "
              << text(*s, "rejected") << " rejected in " << text(*s, "requests") << " requests\n"
              << "entities    " << text(*s, "active_devices") << " devices and " << text(*s, "active_patients")
              << " patients active, " << text(*s, "restarts") << " restarts, " << text(*s, "quarantined")
              << " quarantined\n";
  std::string open;
  if (const auto* a = r.get("open_alerts"); a && a->is_object())
    for (const auto& [state, n] : std::get<alert::wire::value_object>(a->v))
      open += (open.empty() ? "" : ", ") + text(&n) + " " + state;
  std::cout << "alerts      " << (open.empty() ? "none open" : open) << "; " << text(r, "escalations")
            << " escalations\n";
  std::string gws;
  for (const auto& g : items(r, "gateways")) gws += (gws.empty() ? "" : ", ") + text(&g);
  std::cout << "gateways    " << (gws.empty() ? "none connected" : gws) << "\n";
  if (const auto* c = r.get("cluster")) {
    std::string members;
    for (const auto& m : items(*c, "members"))
      members += (members.empty() ? "" : ", ") + text(m, "node") + " " + text(m, "state") +
                 (m.boolean("self").value_or(false) ? " (this node)" : "");
    std::cout << "cluster     " << text(*c, "mode") << ": " << members;
    if (text(*c, "mode") == "cluster")
      std::cout << "; " << (c->boolean("quorum").value_or(false) ? "in quorum" : "NO QUORUM: not taking readings, not paging");
    std::cout << "\n";
    if (text(*c, "mode") == "cluster") {
      // Shards: how many this node owns, how many have an owner it can route to.
      std::int64_t routed = 0;
      if (const auto* owned = c->get("owned"); owned && owned->is_object())
        for (const auto& [id, n] : std::get<alert::wire::value_object>(owned->v))
          if (n.is_int()) routed += std::get<std::int64_t>(n.v);
      const auto shards = c->integer("shards").value_or(0);
      std::cout << "shards      " << items(*c, "acting").size() << " of " << shards << " owned here; " << routed
                << " with an owner";
      if (routed < shards) std::cout << " (" << shards - routed << " moving: their readings get unavailable, retry)";
      if (const auto waiting = c->integer("catching_up").value_or(0); waiting > 0)
        std::cout << "; catching up on " << waiting;
      std::cout << "\n";
    }
  }
  return exit_ok;
}

int print_health(const value& r) {
  const bool ok = r.boolean("ok").value_or(false);
  std::cout << (ok ? "healthy" : "NOT HEALTHY") << "\n";
  std::vector<std::vector<std::string>> rows;
  for (const auto& c : items(r, "checks"))
    rows.push_back({text(c, "check"), c.boolean("ok").value_or(false) ? "ok" : "FAIL", text(c, "detail")});
  table({"CHECK", "RESULT", "DETAIL"}, rows);
  return ok ? exit_ok : exit_refused;
}

int print_alerts(const value& r) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& a : items(r, "alerts"))
    rows.push_back({text(a, "id"), text(a, "state"), text(a, "priority"), text(a, "patient"), when(a, "fired_at"),
                    text(a, "summary")});
  if (rows.empty()) {
    std::cout << "no alerts match\n";
    return exit_ok;
  }
  table({"ALERT", "STATE", "PRIORITY", "PATIENT", "FIRED", "SUMMARY"}, rows);
  auto matched = r.integer("matched").value_or(0);
  if (matched > static_cast<std::int64_t>(rows.size()))
    std::cout << "(" << rows.size() << " of " << matched << " shown; use --limit)\n";
  return exit_ok;
}

int print_alert(const value& r) {
  const auto* a = r.get("alert");
  if (!a) return exit_ok;
  std::cout << text(*a, "id") << "\n"
            << "  " << text(*a, "summary") << "\n"
            << "  state " << text(*a, "state") << ", priority " << text(*a, "priority") << ", " << text(*a, "kind")
            << ", rule " << text(*a, "rule") << "\n"
            << "  patient " << text(*a, "patient") << ", device " << text(*a, "device") << "\n";
  if (text(*a, "acked_by") != "") std::cout << "  acknowledged by " << text(*a, "acked_by") << " at " << when(*a, "acked_at") << "\n";
  std::cout << "\nHistory\n";
  std::vector<std::vector<std::string>> rows;
  for (const auto& e : items(r, "history"))
    rows.push_back({iso_time(e.integer("at").value_or(0)), text(e, "type"), text(e, "priority"),
                    e.get("by") ? text(e, "by") : "", text(e, "summary")});
  table({"AT", "TRANSITION", "PRIORITY", "BY", "SUMMARY"}, rows);
  if (const auto* esc = r.get("escalation")) {
    std::cout << "\nEscalation: policy " << text(*esc, "policy") << ", " << text(*esc, "phase") << " at level "
              << text(*esc, "level") << " (repeat " << text(*esc, "repeat") << ")";
    if (esc->get("next_due")) std::cout << ", next step due " << when(*esc, "next_due");
    std::cout << "\n";
  }
  rows.clear();
  for (const auto& p : items(r, "pages"))
    rows.push_back({when(p, "at"), text(p, "kind"), text(p, "entity"), text(p, "detail")});
  std::cout << "\nPages\n";
  if (rows.empty()) std::cout << "none\n";
  else table({"AT", "EVENT", "PAGE", "DETAIL"}, rows);
  rows.clear();
  for (const auto& e : items(r, "actions")) rows.push_back({when(e, "at"), text(e, "kind"), text(e, "detail")});
  if (!rows.empty()) {
    std::cout << "\nBy hand\n";
    table({"AT", "ACTION", "DETAIL"}, rows);
  }
  return exit_ok;
}

int print_transitions(const value& r) {
  for (const auto& e : items(r, "transitions"))
    std::cout << text(e, "type") << (e.get("by") ? " by " + text(e, "by") : "") << ": " << text(e, "summary") << "\n";
  return exit_ok;
}

int print_silences(const value& r) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& s : items(r, "silences")) {
    std::string scope;
    for (const char* k : {"patient", "device", "rule", "priority"})
      if (const auto* v = s.get(k); v && !v->is_null()) scope += (scope.empty() ? "" : " ") + std::string{k} + "=" + text(v);
    rows.push_back({text(s, "id"), scope, when(s, "until"), text(s, "by"), text(s, "reason")});
  }
  if (rows.empty()) {
    std::cout << "no silences in force\n";
    return exit_ok;
  }
  table({"SILENCE", "SCOPE", "UNTIL", "BY", "REASON"}, rows);
  return exit_ok;
}

int print_device(const value& r) {
  std::cout << "device " << text(r, "device") << " (" << text(r, "kind") << "), patient " << text(r, "patient")
            << ", last seq " << text(r, "last_seq") << ", last seen " << when(r, "last_seen");
  if (r.get("at")) std::cout << ", as known at " << when(r, "at");
  std::cout << "\n";
  std::vector<std::vector<std::string>> rows;
  for (const auto& s : items(r, "samples"))
    rows.push_back({text(s, "metric"), text(s, "value") + " " + text(s, "unit"), when(s, "ts"), text(s, "seq")});
  table({"METRIC", "VALUE", "MEASURED", "SEQ"}, rows);
  return exit_ok;
}

int print_patient(const value& r) {
  std::string devices;
  for (const auto& d : items(r, "devices")) devices += (devices.empty() ? "" : ", ") + text(&d);
  std::cout << "patient " << text(r, "patient") << ", devices " << (devices.empty() ? "none" : devices);
  if (r.boolean("spo2_scale2").value_or(false)) std::cout << ", SpO2 scale 2";
  if (r.get("at")) std::cout << ", as known at " << when(r, "at");
  std::cout << "\n";
  std::vector<std::vector<std::string>> rows;
  for (const auto& v : items(r, "vitals"))
    rows.push_back({text(v, "metric"), text(v, "value") + " " + text(v, "unit"), when(v, "ts"), text(v, "device")});
  table({"VITAL", "VALUE", "MEASURED", "DEVICE"}, rows);
  return exit_ok;
}

int print_rules_check(const value& r) {
  const auto file = text(r, "file");
  if (r.boolean("ok").value_or(false)) {
    std::cout << file << ": ok, " << text(r, "rules") << " rules, " << text(r, "policies") << " escalation policies, "
              << text(r, "routes") << " routes\n";
    return exit_ok;
  }
  for (const auto& p : items(r, "problems"))
    std::cout << file << ":" << text(p, "line") << ":" << text(p, "column") << ": " << text(p, "message") << "\n";
  return exit_refused;
}

int print_events(const value& r) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& e : items(r, "events"))
    rows.push_back({when(e, "at"), text(e, "kind"), text(e, "entity"), text(e, "detail")});
  if (rows.empty()) {
    std::cout << "no events\n";
    return exit_ok;
  }
  table({"AT", "EVENT", "ENTITY", "DETAIL"}, rows);
  return exit_ok;
}

int print_readings(const value& r) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& e : items(r, "readings"))
    rows.push_back({text(e, "seq"), text(e, "metric"), text(e, "value") + " " + text(e, "unit"), when(e, "ts"),
                    when(e, "received"), text(e, "patient")});
  if (rows.empty()) {
    std::cout << "no readings\n";
    return exit_ok;
  }
  table({"SEQ", "METRIC", "VALUE", "MEASURED", "RECEIVED", "PATIENT"}, rows);
  return exit_ok;
}

int print_audit(const value& r) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& a : items(r, "records"))
    rows.push_back({text(a, "seq"), when(a, "at"), text(a, "actor"), text(a, "action"), text(a, "subject"),
                    text(a, "outcome")});
  if (rows.empty()) {
    std::cout << "no audit records\n";
    return exit_ok;
  }
  table({"SEQ", "AT", "WHO", "ACTION", "SUBJECT", "OUTCOME"}, rows);
  return exit_ok;
}

int print_audit_verify(const value& r) {
  if (r.boolean("ok").value_or(false)) {
    std::cout << "audit log intact: " << text(r, "records") << " records, head " << text(r, "head") << "\n";
    return exit_ok;
  }
  std::cout << "audit log BROKEN at record " << text(r, "first_broken") << ": " << text(r, "reason") << "\n";
  return exit_refused;
}

// ---- talking to the node ---------------------------------------------------------------------

struct outcome {
  bool answered = false;
  bool key_refused = false;       // the node refused our key (ZAP)
  bool handshake_failed = false;  // the CURVE handshake broke off before the node could tell
  alert::wire::control_reply reply;
};

outcome ask(const std::string& endpoint, const alert::cluster::client_security& security, double timeout_s,
            const std::string& cmd, value args) {
  zmq::context_t ctx{1};
  zmq::socket_t sock{ctx, zmq::socket_type::dealer};
  sock.set(zmq::sockopt::linger, 0);
  alert::cluster::apply_client(sock, security);
  // Watches the handshake: a node that refuses this key answers nothing, and saying so
  // beats waiting out the timeout.
  zmq::socket_t monitor{ctx, zmq::socket_type::pair};
  const bool watching =
      security.enabled() &&
      zmq_socket_monitor(sock.handle(), "inproc://alertctl-monitor",
                         ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                             ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_SUCCEEDED |
                             ZMQ_EVENT_DISCONNECTED) == 0;
  bool handshake_done = false;
  int dropped_in_handshake = 0;
  if (watching) monitor.connect("inproc://alertctl-monitor");
  sock.connect(endpoint);
  alert::wire::control_request req;
  req.id = static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count() & 0x7fffffff);
  req.cmd = cmd;
  req.args = std::move(args);
  sock.send(zmq::buffer(alert::wire::encode_control_request(req)), zmq::send_flags::dontwait);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds{static_cast<long long>(timeout_s * 1000)};
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return {};
    zmq::pollitem_t items[2] = {{sock.handle(), 0, ZMQ_POLLIN, 0}, {monitor.handle(), 0, ZMQ_POLLIN, 0}};
    if (zmq::poll(items, watching ? 2 : 1, left) == 0) continue;
    if (watching && (items[1].revents & ZMQ_POLLIN)) {
      // A monitor event: 2 bytes of event id and 4 of value, then a frame with the address.
      zmq::message_t event, address;
      if (monitor.recv(event, zmq::recv_flags::dontwait) && event.size() >= 2) {
        if (event.more()) (void)monitor.recv(address);
        std::uint16_t id;
        std::memcpy(&id, event.data(), sizeof id);
        outcome failed;
        if (id == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) handshake_done = true;
        if (id == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
          failed.key_refused = true;
          return failed;
        }
        // The node closed the connection in the handshake: it could not read our hello,
        // which is what a --server-key other than the node's own looks like.
        if (id == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL || id == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL ||
            (id == ZMQ_EVENT_DISCONNECTED && !handshake_done && ++dropped_in_handshake >= 2)) {
          failed.handshake_failed = true;
          return failed;
        }
      }
    }
    if (!(items[0].revents & ZMQ_POLLIN)) continue;
    zmq::message_t m;
    if (!sock.recv(m, zmq::recv_flags::dontwait)) continue;
    auto reply = alert::wire::decode_control_reply(static_cast<const char*>(m.data()), m.size());
    if (!reply || reply->id != req.id) continue;  // not ours (or unreadable): keep waiting
    return {true, false, false, std::move(*reply)};
  }
}

std::string default_by() {
  for (const char* var : {"ALERTCTL_USER", "USER"})
    if (const char* v = std::getenv(var); v && *v) return v;
  return "operator";
}


// `keygen NAME [--dir DIR]` or `keygen --data-keys FILE [--rotate]`: made here, no node asked.
int keygen(const std::vector<std::string>& args) {
  std::string name, dir = ".", data_keys;
  bool rotate = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const auto& a = args[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= args.size()) throw usage_error{a + " needs a value"};
      return args[++i];
    };
    if (a == "--dir") dir = next();
    else if (a == "--data-keys") data_keys = next();
    else if (a == "--rotate") rotate = true;
    else if (!a.empty() && a[0] == '-') throw usage_error{"keygen does not take " + a};
    else if (name.empty()) name = a;
    else throw usage_error{"keygen takes one name"};
  }
  if (!data_keys.empty()) {
    if (!name.empty()) throw usage_error{"keygen --data-keys FILE takes no name"};
    if (rotate) {
      auto id = alert::storage::add_data_key(data_keys);
      if (!id) {
        std::cerr << "alertctl: " << id.error().message() << "\n";
        return exit_refused;
      }
      std::cout << "added data key " << *id << " to " << data_keys
                << ": new data is encrypted with it once alertd restarts; older keys still read old data, keep them\n";
      return exit_ok;
    }
    if (auto st = alert::storage::create_data_key_file(data_keys); !st) {
      std::cerr << "alertctl: " << st.message() << "\n";
      return exit_refused;
    }
    std::cout << "wrote " << data_keys << " (mode 0600): give it to alertd as --security.data-key-file, keep it "
              << "outside the data directory, and back it up apart from the data\n";
    return exit_ok;
  }
  if (rotate) throw usage_error{"--rotate goes with --data-keys FILE"};
  if (name.empty()) throw usage_error{"keygen NAME [--dir DIR] | keygen --data-keys FILE [--rotate]"};
  auto keys = alert::cluster::generate_keypair();
  if (!keys) {
    std::cerr << "alertctl: " << keys.error().message() << "\n";
    return exit_refused;
  }
  if (auto st = alert::cluster::write_key_files(dir, name, *keys); !st) {
    std::cerr << "alertctl: " << st.message() << "\n";
    return exit_refused;
  }
  std::cout << "wrote " << dir << "/" << name << ".key (secret, mode 0600) and " << dir << "/" << name << ".pub\n"
            << "for the node's access file:\n"
            << "  - name: " << name << "\n"
            << "    role: operator   # or integrator (with devices), gateway (with targets), clinician, auditor, node\n"
            << "    public-key: \"" << keys->public_key << "\"\n";
  return exit_ok;
}

}  // namespace

int main(int argc, char** argv) {
  auto env = [](const char* name, const char* fallback) {
    const char* v = std::getenv(name);
    return std::string{v && *v ? v : fallback};
  };
  std::string endpoint = env("ALERTCTL_ENDPOINT", "tcp://127.0.0.1:7602");
  std::string key_file = env("ALERTCTL_KEY", ""), server_key_file = env("ALERTCTL_SERVER_KEY", "");
  bool json = false;
  double timeout_s = 40;  // longer than the node's own 30 s limit on a command
  std::vector<std::string> rest;
  try {
    // Global options come before the command.
    int i = 1;
    for (; i < argc; ++i) {
      std::string a = argv[i];
      auto value_of = [&](const std::string& name) -> std::string {
        auto eq = a.find('=');
        if (eq != std::string::npos) return a.substr(eq + 1);
        if (i + 1 >= argc) throw usage_error{name + " needs a value"};
        return argv[++i];
      };
      if (a == "--help" || a == "-h") {
        std::cout << usage_text;
        return exit_ok;
      }
      if (a == "--json") json = true;
      else if (a.rfind("--endpoint", 0) == 0) endpoint = value_of("--endpoint");
      else if (a.rfind("--timeout", 0) == 0) timeout_s = std::stod(value_of("--timeout"));
      else if (a.rfind("--server-key", 0) == 0) server_key_file = value_of("--server-key");
      else if (a.rfind("--key", 0) == 0) key_file = value_of("--key");
      else if (!a.empty() && a[0] == '-') throw usage_error{"unknown option " + a};
      else break;
    }
    for (; i < argc; ++i) rest.emplace_back(argv[i]);
    if (rest.empty()) throw usage_error{"no command given"};
    std::string cmd = rest[0];
    rest.erase(rest.begin());
    if (cmd == "audit" && !rest.empty() && rest[0] == "verify") {
      cmd = "audit-verify";
      rest.erase(rest.begin());
    }
    if (cmd == "keygen") return keygen(rest);
    if (cmd == "rules") {
      if (rest.empty() || (rest[0] != "check" && rest[0] != "reload")) throw usage_error{"rules check [FILE] | rules reload"};
      cmd = "rules-" + rest[0];
      rest.erase(rest.begin());
    }

    // Per-command options and positional arguments.
    po::options_description opts;
    std::string state, priority, patient, device, rule, by = default_by(), duration, reason, at, kind;
    std::int64_t limit = 0, from = 0;
    opts.add_options()("state", po::value(&state))("priority", po::value(&priority))("patient", po::value(&patient))(
        "device", po::value(&device))("rule", po::value(&rule))("by", po::value(&by))("for", po::value(&duration))(
        "reason", po::value(&reason))("at", po::value(&at))("kind", po::value(&kind))("limit", po::value(&limit))(
        "from", po::value(&from))("positional", po::value<std::vector<std::string>>());
    po::positional_options_description pos;
    pos.add("positional", -1);
    po::variables_map vm;
    po::store(po::command_line_parser(rest).options(opts).positional(pos).run(), vm);
    po::notify(vm);
    std::vector<std::string> positional;
    if (vm.count("positional")) positional = vm["positional"].as<std::vector<std::string>>();
    auto one = [&](const std::string& what) -> std::string {
      if (positional.size() != 1) throw usage_error{cmd + " takes one " + what};
      return positional[0];
    };
    auto none = [&] {
      if (!positional.empty()) throw usage_error{cmd + " takes no arguments"};
    };
    auto allow = [&](std::initializer_list<const char*> allowed) {
      for (const auto& [name, v] : vm) {
        if (name == "positional") continue;
        bool ok = false;
        for (const char* a : allowed) ok = ok || name == a;
        if (!ok && !(name == "by" && v.defaulted())) throw usage_error{cmd + " does not take --" + name};
      }
    };

    value args = alert::wire::value_object{};
    int (*print)(const value&) = nullptr;
    if (cmd == "status" || cmd == "health" || cmd == "silences") {
      none();
      allow({});
      print = cmd == "status" ? print_status : cmd == "health" ? print_health : print_silences;
    } else if (cmd == "alerts") {
      none();
      allow({"state", "priority", "patient", "limit"});
      if (!state.empty()) args.set("state", state);
      if (!priority.empty()) args.set("priority", priority);
      if (!patient.empty()) args.set("patient", patient);
      if (limit) args.set("limit", limit);
      print = print_alerts;
    } else if (cmd == "alert") {
      allow({});
      args.set("id", one("alert id"));
      print = print_alert;
    } else if (cmd == "ack" || cmd == "resolve" || cmd == "unsilence" || cmd == "release") {
      allow({"by"});
      args.set("id", one(cmd == "unsilence" ? "silence id" : cmd == "release" ? "entity (d/ID or p/ID)" : "alert id"));
      args.set("by", by);
      print = cmd == "unsilence" || cmd == "release" ? nullptr : print_transitions;
    } else if (cmd == "silence") {
      none();
      allow({"patient", "device", "rule", "priority", "for", "reason", "by"});
      if (patient.empty() && device.empty() && rule.empty() && priority.empty())
        throw usage_error{"silence needs a scope: --patient, --device, --rule or --priority"};
      if (duration.empty()) throw usage_error{"silence needs --for DURATION (e.g. 15m)"};
      if (reason.empty()) throw usage_error{"silence needs --reason TEXT"};
      if (!patient.empty()) args.set("patient", patient);
      if (!device.empty()) args.set("device", device);
      if (!rule.empty()) args.set("rule", rule);
      if (!priority.empty()) args.set("priority", priority);
      args.set("duration_s", parse_duration(duration));
      args.set("reason", reason);
      args.set("by", by);
    } else if (cmd == "device" || cmd == "patient") {
      allow({"at"});
      args.set("id", one(cmd + " id"));
      if (!at.empty()) args.set("at", parse_time(at));
      print = cmd == "device" ? print_device : print_patient;
    } else if (cmd == "rules-check") {
      allow({});
      if (positional.size() > 1) throw usage_error{"rules check takes at most one file"};
      if (!positional.empty()) args.set("path", positional[0]);
      print = print_rules_check;
    } else if (cmd == "rules-reload") {
      none();
      allow({});
    } else if (cmd == "events") {
      none();
      allow({"kind", "limit"});
      if (!kind.empty()) args.set("kind", kind);
      if (limit) args.set("limit", limit);
      print = print_events;
    } else if (cmd == "audit") {
      none();
      allow({"limit"});
      if (limit) args.set("limit", limit);
      print = print_audit;
    } else if (cmd == "audit-verify") {
      none();
      allow({});
      print = print_audit_verify;
    } else if (cmd == "readings") {
      allow({"from", "limit"});
      args.set("device", one("device id"));
      if (from) args.set("from_seq", from);
      if (limit) args.set("limit", limit);
      print = print_readings;
    } else {
      throw usage_error{"unknown command '" + cmd + "'"};
    }

    auto security = alert::cluster::load_client_security(key_file, server_key_file);
    if (!security) throw usage_error{security.error().message()};
    auto out = ask(endpoint, *security, timeout_s, cmd, std::move(args));
    if (out.key_refused) {
      std::cerr << "alertctl: the node at " << endpoint
                << " refused this key: is its public key in the node's access file, with a role that may use "
                   "the control endpoint (operator, clinician or auditor)?\n";
      return exit_refused;
    }
    if (out.handshake_failed) {
      std::cerr << "alertctl: the node at " << endpoint
                << " closed the connection during the CURVE handshake: is --server-key the node's own public key"
                   " (its .pub file), and does the node run with CURVE?\n";
      return exit_refused;
    }
    if (!out.answered) {
      std::cerr << "alertctl: no answer from " << endpoint << " within " << timeout_s
                << " s: is alertd running, and is this its control endpoint (--endpoint)? A command that changes"
                   " something may still have been applied: check before repeating it.\n";
      return exit_unreachable;
    }
    const auto& reply = out.reply;
    if (!reply.ok) {
      if (json) {
        value err = alert::wire::value_object{};
        err.set("ok", false);
        err.set("code", std::string{alert::to_string(reply.code)});
        err.set("message", reply.message);
        std::cout << alert::wire::to_json(err, true) << "\n";
      }
      std::cerr << "alertctl: " << alert::to_string(reply.code) << ": " << reply.message << "\n";
      return exit_refused;
    }
    if (json) {
      std::cout << alert::wire::to_json(reply.result, true) << "\n";
      // A check that failed is still a failure for scripts.
      if ((cmd == "health" || cmd == "rules-check" || cmd == "audit-verify") &&
          !reply.result.boolean("ok").value_or(false))
        return exit_refused;
      return exit_ok;
    }
    if (print) return print(reply.result);
    // Commands whose answer is one line.
    if (cmd == "silence") std::cout << "silence " << text(reply.result, "id") << " until " << when(reply.result, "until") << "\n";
    else if (cmd == "unsilence") std::cout << "silence " << text(reply.result, "removed") << " lifted\n";
    else if (cmd == "rules-reload") std::cout << "rules reloaded from " << text(reply.result, "reloaded") << "\n";
    else if (cmd == "release") std::cout << text(reply.result, "released") << " released: served again from its next message\n";
    return exit_ok;
  } catch (const usage_error& e) {
    std::cerr << "alertctl: " << e.message << " (see alertctl --help)\n";
    return exit_usage;
  } catch (const po::error& e) {
    std::cerr << "alertctl: " << e.what() << " (see alertctl --help)\n";
    return exit_usage;
  } catch (const std::invalid_argument&) {
    std::cerr << "alertctl: a number was expected (see alertctl --help)\n";
    return exit_usage;
  } catch (const std::out_of_range&) {
    std::cerr << "alertctl: a number is out of range (see alertctl --help)\n";
    return exit_usage;
  } catch (const zmq::error_t& e) {
    std::cerr << "alertctl: cannot use endpoint " << endpoint << ": " << e.what()
              << " (expected like tcp://127.0.0.1:7602)\n";
    return exit_usage;
  } catch (const std::exception& e) {
    std::cerr << "alertctl: " << e.what() << "\n";
    return exit_refused;
  }
}
