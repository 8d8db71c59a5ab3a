#pragma once
// CURVE on the node's endpoints: key pairs and their files, the ZAP handler that admits
// only the keys of the access list (each to the endpoints its role may use), and the
// settings a server or client socket needs. docs/security.md says how to provision keys.

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "engine/access.hpp"
#include "engine/status.hpp"

namespace zmq {
class context_t;
class socket_t;
class message_t;
}  // namespace zmq

namespace alert::cluster {

/// A CURVE key pair, both halves in Z85 (40 characters each).
struct curve_keypair {
  std::string public_key;
  std::string secret_key;
};

/// A new random key pair (libzmq's zmq_curve_keypair).
result<curve_keypair> generate_keypair();

/// Whether `s` is a Z85 CURVE key (40 characters of the Z85 alphabet).
bool is_z85_key(std::string_view s) noexcept;

/// Writes `dir`/`name`.key (both halves, mode 0600) and `dir`/`name`.pub (the public half).
/// Refuses (invalid_argument) to overwrite either file; io_error when it cannot write.
status write_key_files(const std::string& dir, const std::string& name, const curve_keypair& keys);

/// Reads a key file written by write_key_files (a .key file with its secret). config_error
/// when it is unreadable, has no valid keys, or can be read by group or others.
result<curve_keypair> load_key_file(const std::string& path);

/// The public key in a .pub or .key file; config_error when there is none.
result<std::string> load_public_key(const std::string& path);

/// What a client socket needs for CURVE: the server's public key and its own pair. All
/// empty: plaintext.
struct client_security {
  std::string server_key;
  curve_keypair keys;
  bool enabled() const noexcept { return !server_key.empty(); }
};

/// Loads a client's security from its key file and the node's public key file; both empty
/// gives plaintext, one without the other is a config_error.
result<client_security> load_client_security(const std::string& key_file, const std::string& server_key_file);

/// Sets CURVE on a client socket before it connects (nothing when !sec.enabled()).
void apply_client(zmq::socket_t& socket, const client_security& sec);

/// The access list in force, replaced whole on a reload. Thread-safe.
class access_holder {
public:
  explicit access_holder(std::shared_ptr<const access_list> list = nullptr) : list_(std::move(list)) {}
  std::shared_ptr<const access_list> get() const {
    std::lock_guard<std::mutex> lock{mutex_};
    return list_;
  }
  void set(std::shared_ptr<const access_list> list) {
    std::lock_guard<std::mutex> lock{mutex_};
    list_ = std::move(list);
  }

private:
  mutable std::mutex mutex_;
  std::shared_ptr<const access_list> list_;
};

/// What a server endpoint needs for CURVE. `access` null: plaintext.
struct server_security {
  std::shared_ptr<access_holder> access;
  std::string secret_key;  ///< the node's own secret key, Z85
  /// Told of every request or reading refused for its party's role or allowance: who, the
  /// action refused, and what it was about (for the audit log). Runs on the I/O thread.
  std::function<void(const std::string& who, const std::string& action, const std::string& subject)> on_denied;
  bool enabled() const noexcept { return access != nullptr; }
};

/// Sets CURVE server mode and the ZAP domain (the endpoint's name) on a server socket
/// before it binds (nothing when !sec.enabled()).
void apply_server(zmq::socket_t& socket, const server_security& sec, endpoint_kind kind);

/// The party behind a received message (a frame the peer sent, not the ROUTER's identity
/// frame), when CURVE is on: its key, looked up again in the access list in force, and
/// admitted only if its role may still use `endpoint` (a key removed or given another role
/// by a reload is nobody). Nothing when plaintext, or when the party is not admitted now.
struct peer {
  std::shared_ptr<const access_list> list;  ///< keeps `who` alive
  const principal* who = nullptr;
};
std::optional<peer> peer_of(zmq::message_t& frame, const server_security& sec, endpoint_kind endpoint);

/// One authentication the ZAP handler decided.
struct auth_event {
  endpoint_kind endpoint = endpoint_kind::ingest;
  std::string address;     ///< the peer's IP address
  std::string public_key;  ///< Z85
  std::string name;        ///< the party's name, empty for an unknown key
  bool ok = false;
  std::string reason;      ///< why it was refused
};

/// The ZAP handler of one ZeroMQ context (inproc://zeromq.zap.01), on its own thread. It
/// admits a CURVE key when the access list has it and its role may use the endpoint (the
/// socket's ZAP domain), and refuses everything else: the peer's handshake fails, it gets
/// nothing. Every decision goes to `on_auth` (on the handler's thread).
class zap_handler {
public:
  static result<std::unique_ptr<zap_handler>> start(zmq::context_t& ctx, std::shared_ptr<access_holder> access,
                                                    std::function<void(const auth_event&)> on_auth);
  ~zap_handler();
  zap_handler(const zap_handler&) = delete;
  zap_handler& operator=(const zap_handler&) = delete;
  /// Stops the thread and closes the socket. Idempotent. Call before the context ends.
  void stop();
  std::uint64_t accepted() const noexcept { return accepted_.load(); }
  std::uint64_t refused() const noexcept { return refused_.load(); }

private:
  zap_handler() = default;
  void run();
  std::unique_ptr<zmq::socket_t> socket_;
  std::shared_ptr<access_holder> access_;
  std::function<void(const auth_event&)> on_auth_;
  int wake_fd_ = -1;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<std::uint64_t> accepted_{0}, refused_{0};
};

}  // namespace alert::cluster
