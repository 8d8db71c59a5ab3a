#include "cluster/curve.hpp"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>
#include <zmq.hpp>

#include "engine/log.hpp"

namespace alert::cluster {
namespace {

constexpr const char* zap_endpoint = "inproc://zeromq.zap.01";
constexpr std::size_t z85_key_size = 40;

// `name = "value"` lines of a key file, value without quotes.
std::optional<std::string> field(const std::string& text, std::string_view name) {
  std::istringstream in{text};
  std::string line;
  while (std::getline(in, line)) {
    auto start = line.find_first_not_of(" \t");
    if (start == std::string::npos || line[start] == '#') continue;
    if (line.compare(start, name.size(), name) != 0) continue;
    auto eq = line.find('=', start + name.size());
    if (eq == std::string::npos || line.find_first_not_of(" \t", start + name.size()) != eq) continue;
    auto v = line.substr(eq + 1);
    auto b = v.find_first_not_of(" \t\"");
    auto e = v.find_last_not_of(" \t\r\"");
    if (b == std::string::npos) return std::string{};
    return v.substr(b, e - b + 1);
  }
  return std::nullopt;
}

result<std::string> read_small_file(const std::string& path) {
  std::ifstream in{path, std::ios::binary};
  if (!in) return status{errc::config_error, "cannot read key file " + path + ": " + std::strerror(errno)};
  std::ostringstream s;
  s << in.rdbuf();
  if (s.str().size() > 64 * 1024) return status{errc::config_error, path + " is too large to be a key file"};
  return s.str();
}

status write_new_file(const std::string& path, const std::string& text, mode_t mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) {
    if (errno == EEXIST) return {errc::invalid_argument, path + " exists already; keys are never overwritten"};
    return {errc::io_error, "cannot create " + path + ": " + std::strerror(errno)};
  }
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  ok = (::close(fd) == 0) && ok;
  if (!ok) return {errc::io_error, "cannot write " + path + ": " + std::strerror(errno)};
  return {};
}

std::string frame_string(const zmq::message_t& m) { return {static_cast<const char*>(m.data()), m.size()}; }

void set_key(zmq::socket_t& s, int option, const std::string& z85) {
  // 41 bytes: libzmq reads a Z85 key as a NUL-terminated string of 40 characters.
  if (zmq_setsockopt(s.handle(), option, z85.c_str(), z85_key_size + 1) != 0) throw zmq::error_t{};
}

}  // namespace

result<curve_keypair> generate_keypair() {
  std::array<char, 41> pub{}, sec{};
  if (zmq_curve_keypair(pub.data(), sec.data()) != 0)
    return status{errc::internal, std::string{"cannot make a CURVE key pair: "} + zmq_strerror(zmq_errno())};
  return curve_keypair{pub.data(), sec.data()};
}

bool is_z85_key(std::string_view s) noexcept {
  static constexpr std::string_view alphabet =
      "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
  if (s.size() != z85_key_size) return false;
  for (char c : s)
    if (alphabet.find(c) == std::string_view::npos) return false;
  return true;
}

status write_key_files(const std::string& dir, const std::string& name, const curve_keypair& keys) {
  if (name.empty() || name.find('/') != std::string::npos)
    return {errc::invalid_argument, "a key name must not be empty or contain '/'"};
  const std::string base = (dir.empty() ? std::string{"."} : dir) + "/" + name;
  struct stat st {};
  if (::stat((base + ".key").c_str(), &st) == 0 || ::stat((base + ".pub").c_str(), &st) == 0)
    return {errc::invalid_argument, base + ".key or " + base + ".pub exists already; keys are never overwritten"};
  std::string pub = "# alertd CURVE public key of \"" + name + "\": give it to the node's access file.\n"
                    "public-key = \"" + keys.public_key + "\"\n";
  std::string sec = "# alertd CURVE key pair of \"" + name + "\". SECRET: keep it mode 0600, never copy it off\n"
                    "# the machine that uses it.\n"
                    "public-key = \"" + keys.public_key + "\"\n"
                    "secret-key = \"" + keys.secret_key + "\"\n";
  if (auto s = write_new_file(base + ".key", sec, 0600); !s) return s;
  return write_new_file(base + ".pub", pub, 0644);
}

result<curve_keypair> load_key_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    return status{errc::config_error, "cannot read key file " + path + ": " + std::strerror(errno)};
  if (st.st_mode & 077)
    return status{errc::config_error, "key file " + path + " can be read by others: chmod 600 " + path};
  auto text = read_small_file(path);
  if (!text) return text.error();
  auto pub = field(*text, "public-key");
  auto sec = field(*text, "secret-key");
  if (!sec || !is_z85_key(*sec))
    return status{errc::config_error, path + " has no valid secret-key line (make one with alertctl keygen)"};
  if (!pub || !is_z85_key(*pub))
    return status{errc::config_error, path + " has no valid public-key line (make one with alertctl keygen)"};
  return curve_keypair{*pub, *sec};
}

result<std::string> load_public_key(const std::string& path) {
  auto text = read_small_file(path);
  if (!text) return text.error();
  auto pub = field(*text, "public-key");
  if (!pub || !is_z85_key(*pub))
    return status{errc::config_error, path + " has no valid public-key line (make one with alertctl keygen)"};
  return *pub;
}

result<client_security> load_client_security(const std::string& key_file, const std::string& server_key_file) {
  client_security out;
  if (key_file.empty() && server_key_file.empty()) return out;
  if (key_file.empty() || server_key_file.empty())
    return status{errc::config_error, "CURVE needs both a key file (--key) and the node's public key (--server-key)"};
  auto keys = load_key_file(key_file);
  if (!keys) return keys.error();
  auto server = load_public_key(server_key_file);
  if (!server) return server.error();
  out.keys = std::move(*keys);
  out.server_key = std::move(*server);
  return out;
}

void apply_client(zmq::socket_t& socket, const client_security& sec) {
  if (!sec.enabled()) return;
  set_key(socket, ZMQ_CURVE_SERVERKEY, sec.server_key);
  set_key(socket, ZMQ_CURVE_PUBLICKEY, sec.keys.public_key);
  set_key(socket, ZMQ_CURVE_SECRETKEY, sec.keys.secret_key);
}

void apply_server(zmq::socket_t& socket, const server_security& sec, endpoint_kind kind) {
  if (!sec.enabled()) return;
  socket.set(zmq::sockopt::curve_server, 1);
  set_key(socket, ZMQ_CURVE_SECRETKEY, sec.secret_key);
  socket.set(zmq::sockopt::zap_domain, std::string{to_string(kind)});
  // Without this, libzmq lets every handshake through when no ZAP handler answers.
  int enforce = 1;
  constexpr int zap_enforce_domain = 93;  // ZMQ_ZAP_ENFORCE_DOMAIN: in libzmq 4.3.4, declared only in its draft API
  if (zmq_setsockopt(socket.handle(), zap_enforce_domain, &enforce, sizeof enforce) != 0) throw zmq::error_t{};
}

std::optional<peer> peer_of(zmq::message_t& frame, const server_security& sec, endpoint_kind endpoint) {
  if (!sec.enabled()) return std::nullopt;
  // The ZAP handler gives the key itself as the user id: a name reused for a new key after a
  // reload does not hand the new entry's rights to the old key's open connection.
  const char* key = zmq_msg_gets(frame.handle(), "User-Id");
  if (!key) return std::nullopt;
  peer p;
  p.list = sec.access->get();
  if (!p.list) return std::nullopt;
  p.who = p.list->by_key(key);
  if (!p.who || !may_connect(p.who->what, endpoint)) return std::nullopt;
  return p;
}

result<std::unique_ptr<zap_handler>> zap_handler::start(zmq::context_t& ctx, std::shared_ptr<access_holder> access,
                                                        std::function<void(const auth_event&)> on_auth) {
  std::unique_ptr<zap_handler> h{new zap_handler{}};
  h->access_ = std::move(access);
  h->on_auth_ = std::move(on_auth);
  h->wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (h->wake_fd_ < 0) return status{errc::internal, std::string{"eventfd: "} + std::strerror(errno)};
  try {
    h->socket_ = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::rep);
    h->socket_->set(zmq::sockopt::linger, 0);
    h->socket_->bind(zap_endpoint);
  } catch (const zmq::error_t& e) {
    ::close(h->wake_fd_);
    h->wake_fd_ = -1;
    return status{errc::unavailable, std::string{"cannot start the ZAP handler: "} + e.what()};
  }
  h->thread_ = std::thread{[p = h.get()] { p->run(); }};
  return h;
}

zap_handler::~zap_handler() {
  stop();
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void zap_handler::stop() {
  if (!thread_.joinable()) return;
  stopping_.store(true);
  std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
  thread_.join();
}

void zap_handler::run() {
  zmq::pollitem_t items[2] = {{socket_->handle(), 0, ZMQ_POLLIN, 0}, {nullptr, wake_fd_, ZMQ_POLLIN, 0}};
  try {
    while (!stopping_.load()) {
      try {
        zmq::poll(items, 2, std::chrono::milliseconds{-1});
      } catch (const zmq::error_t& e) {
        if (e.num() == EINTR) continue;  // a signal, not a failure
        throw;
      }
      if (!(items[0].revents & ZMQ_POLLIN)) continue;
      std::vector<zmq::message_t> req;
      for (;;) {
        zmq::message_t m;
        if (!socket_->recv(m)) break;
        bool more = m.more();
        req.push_back(std::move(m));
        if (!more) break;
      }
      // version, request id, domain, address, routing id, mechanism, credentials...
      auth_event ev;
      std::string request_id = req.size() > 1 ? frame_string(req[1]) : std::string{};
      std::string status_code = "400";
      std::string user;
      if (req.size() < 6 || frame_string(req[0]) != "1.0") {
        ev.reason = "malformed ZAP request";
      } else {
        auto domain = endpoint_from_string(frame_string(req[2]));
        ev.endpoint = domain.value_or(endpoint_kind::ingest);
        ev.address = frame_string(req[3]);
        const auto mechanism = frame_string(req[5]);
        if (mechanism != "CURVE" || req.size() < 7 || req[6].size() != 32) {
          ev.reason = "mechanism " + mechanism + " is not accepted: connect with CURVE";
        } else {
          std::array<char, 41> z85{};
          zmq_z85_encode(z85.data(), static_cast<const std::uint8_t*>(req[6].data()), 32);
          ev.public_key = z85.data();
          auto list = access_->get();
          const principal* who = list ? list->by_key(ev.public_key) : nullptr;
          if (!domain) {
            ev.reason = "unknown ZAP domain";
          } else if (!who) {
            ev.reason = "unknown key";
          } else if (ev.name = who->name; !may_connect(who->what, *domain)) {
            ev.reason = "a " + std::string{to_string(who->what)} + " key may not use the " +
                        std::string{to_string(*domain)} + " endpoint";
          } else {
            ev.ok = true;
            status_code = "200";
            user = ev.public_key;
          }
        }
      }
      (ev.ok ? accepted_ : refused_).fetch_add(1);
      socket_->send(zmq::str_buffer("1.0"), zmq::send_flags::sndmore);
      socket_->send(zmq::buffer(request_id), zmq::send_flags::sndmore);
      socket_->send(zmq::buffer(status_code), zmq::send_flags::sndmore);
      socket_->send(zmq::buffer(ev.ok ? std::string{"OK"} : ev.reason), zmq::send_flags::sndmore);
      socket_->send(zmq::buffer(user), zmq::send_flags::sndmore);
      socket_->send(zmq::str_buffer(""), zmq::send_flags::none);
      if (on_auth_) {
        try {
          on_auth_(ev);
        } catch (const std::exception& e) {
          log(log_level::error, "security", "auth_report_failed", {{"error", e.what()}});
        }
      }
    }
  } catch (const std::exception& e) {
    // Every endpoint enforces ZAP, so from here on every handshake fails: closed, not open.
    log(log_level::error, "security", "zap_thread_failed",
        {{"error", e.what()}, {"msg", "no new connection can authenticate until the node restarts"}});
  }
  socket_->close();
}

}  // namespace alert::cluster
