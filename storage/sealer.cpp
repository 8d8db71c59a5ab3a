#include "storage/sealer.hpp"

#include <atomic>
#include <climits>
#include <cstdlib>
#include <cstring>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "engine/log.hpp"

namespace alert::storage {
namespace {

constexpr std::size_t nonce_size = 12;
constexpr std::size_t tag_size = 16;
constexpr std::size_t head_size = 1 + 4 + nonce_size;
static_assert(sealer::overhead == head_size + tag_size);
constexpr std::string_view key_check_input = "alertd data key check";

// Fetched once: an implicit fetch on every EVP_*Init would cost more than sealing a reading.
// Kept for the life of the process.
const EVP_CIPHER* aes_256_gcm() {
  static EVP_CIPHER* const c = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
  return c;
}

EVP_MAC* hmac_algorithm() {
  static EVP_MAC* const m = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  return m;
}

// Nonces: 4 random bytes fixed for the process, then a 64-bit counter that starts at a
// random value and counts up once per seal.
struct nonce_source {
  unsigned char fixed[4]{};
  std::atomic<std::uint64_t> next{0};
  bool ok = false;
  nonce_source() {
    unsigned char r[nonce_size];
    ok = RAND_bytes(r, static_cast<int>(sizeof r)) == 1;
    std::memcpy(fixed, r, sizeof fixed);
    std::uint64_t v = 0;
    for (std::size_t i = sizeof fixed; i < sizeof r; ++i) v = (v << 8) | r[i];
    next.store(v, std::memory_order_relaxed);
  }
};

nonce_source& nonces() {
  static nonce_source n;
  return n;
}

void make_nonce(unsigned char* out) {
  auto& n = nonces();
  std::memcpy(out, n.fixed, sizeof n.fixed);
  const auto v = n.next.fetch_add(1, std::memory_order_relaxed);
  for (int i = 0; i < 8; ++i) out[4 + i] = static_cast<unsigned char>((v >> (56 - 8 * i)) & 0xff);
}

std::atomic<std::uint64_t> next_serial{1};

// One thread's OpenSSL contexts, keyed once and then only given a new nonce per value.
// `owner` is the serial of the sealer whose key the context holds (0: none).
struct cipher_slot {
  EVP_CIPHER_CTX* ctx = nullptr;
  std::uint64_t owner = 0;
  std::uint32_t key_id = 0;
  ~cipher_slot() { EVP_CIPHER_CTX_free(ctx); }
};

struct mac_slot {
  EVP_MAC_CTX* ctx = nullptr;
  std::uint64_t owner = 0;
  ~mac_slot() { EVP_MAC_CTX_free(ctx); }
};

struct thread_contexts {
  cipher_slot seal, open;
  mac_slot mac;
};

thread_contexts& contexts() {
  thread_local thread_contexts t;
  return t;
}

const unsigned char* bytes_of(std::string_view s) noexcept { return reinterpret_cast<const unsigned char*>(s.data()); }

bool fits_int(std::size_t n) noexcept { return n <= static_cast<std::size_t>(INT_MAX); }

// Starts a message on `slot`: keys it when it holds another key, else only sets the nonce.
bool start(cipher_slot& slot, bool sealing, std::uint64_t owner, std::uint32_t key_id,
           const data_keys::key_bytes& key, const unsigned char* nonce) {
  if (!slot.ctx) slot.ctx = EVP_CIPHER_CTX_new();
  if (!slot.ctx || !aes_256_gcm()) return false;
  const bool keyed = slot.owner == owner && slot.key_id == key_id;
  const int ok = sealing ? EVP_EncryptInit_ex2(slot.ctx, keyed ? nullptr : aes_256_gcm(), keyed ? nullptr : key.data(),
                                               nonce, nullptr)
                         : EVP_DecryptInit_ex2(slot.ctx, keyed ? nullptr : aes_256_gcm(), keyed ? nullptr : key.data(),
                                               nonce, nullptr);
  slot.owner = ok == 1 ? owner : 0;
  slot.key_id = key_id;
  return ok == 1;
}

bool add_aad(EVP_CIPHER_CTX* ctx, bool sealing, std::string_view aad) {
  if (aad.empty()) return true;
  if (!fits_int(aad.size())) return false;
  int len = 0;
  const int n = static_cast<int>(aad.size());
  return (sealing ? EVP_EncryptUpdate(ctx, nullptr, &len, bytes_of(aad), n)
                  : EVP_DecryptUpdate(ctx, nullptr, &len, bytes_of(aad), n)) == 1;
}

// HMAC-SHA256 of `msg` into `out`.
bool hmac(std::uint64_t owner, const data_keys::key_bytes& key, std::string_view msg, unsigned char (&out)[32]) {
  auto& slot = contexts().mac;
  if (!slot.ctx && hmac_algorithm()) slot.ctx = EVP_MAC_CTX_new(hmac_algorithm());
  if (!slot.ctx) return false;
  bool ok;
  if (slot.owner == owner) {
    ok = EVP_MAC_init(slot.ctx, nullptr, 0, nullptr) == 1;  // the same key again
  } else {
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                           OSSL_PARAM_construct_end()};
    ok = EVP_MAC_init(slot.ctx, key.data(), key.size(), params) == 1;
  }
  std::size_t len = 0;
  ok = ok && EVP_MAC_update(slot.ctx, bytes_of(msg), msg.size()) == 1 &&
       EVP_MAC_final(slot.ctx, out, &len, sizeof out) == 1 && len == sizeof out;
  slot.owner = ok ? owner : 0;
  return ok;
}

// Seals into out[base..]; false when OpenSSL fails (then `out` is left resized).
bool seal_raw(std::uint64_t owner, const data_keys& keys, std::string& out, std::string_view plain,
              std::string_view aad_head, std::string_view aad_tail) {
  const auto id = keys.current_id();
  const auto* key = keys.find(id);
  if (!key || plain.size() > static_cast<std::size_t>(INT_MAX) - sealer::overhead) return false;
  const auto base = out.size();
  out.resize(base + sealer::overhead + plain.size());
  auto* p = reinterpret_cast<unsigned char*>(out.data() + base);
  p[0] = sealer::format;
  for (int i = 0; i < 4; ++i) p[1 + i] = static_cast<unsigned char>((id >> (24 - 8 * i)) & 0xff);
  make_nonce(p + 5);
  auto& slot = contexts().seal;
  bool ok = start(slot, true, owner, id, *key, p + 5) && add_aad(slot.ctx, true, aad_head) &&
            add_aad(slot.ctx, true, aad_tail);
  int len = 0;
  if (ok && !plain.empty())
    ok = EVP_EncryptUpdate(slot.ctx, p + head_size, &len, bytes_of(plain), static_cast<int>(plain.size())) == 1 &&
         static_cast<std::size_t>(len) == plain.size();
  unsigned char* tag = p + head_size + plain.size();
  ok = ok && EVP_EncryptFinal_ex(slot.ctx, tag, &len) == 1 && len == 0 &&
       EVP_CIPHER_CTX_ctrl(slot.ctx, EVP_CTRL_AEAD_GET_TAG, static_cast<int>(tag_size), tag) == 1;
  if (!ok) slot.owner = 0;
  return ok;
}

[[noreturn]] void crypto_failed(const char* what) {
  // Only when OpenSSL cannot allocate or sealer::check() was skipped: nothing may be written
  // unsealed or under a wrong key.
  log(log_level::error, "sealer", "crypto_failed", {{"what", what}});
  std::abort();
}

status corrupt(std::string msg) { return {errc::corruption, std::move(msg)}; }

}  // namespace

sealer::sealer(std::shared_ptr<const data_keys> keys)
    : keys_(std::move(keys)), serial_(next_serial.fetch_add(1, std::memory_order_relaxed)) {}

status sealer::check() const {
  if (!keys_) return {};
  if (keys_->data.empty()) return {errc::config_error, "the data keys hold no data key"};
  if (!aes_256_gcm()) return {errc::config_error, "this OpenSSL offers no AES-256-GCM"};
  if (!hmac_algorithm()) return {errc::config_error, "this OpenSSL offers no HMAC"};
  if (!nonces().ok) return {errc::config_error, "OpenSSL could not produce random bytes for nonces"};
  unsigned char mac[32];
  if (!hmac(serial_, keys_->index_key, "check", mac)) return {errc::config_error, "HMAC-SHA256 fails in this OpenSSL"};
  std::string sealed, opened;
  if (!seal_raw(serial_, *keys_, sealed, "check", "aad", {}))
    return {errc::config_error, "AES-256-GCM sealing fails in this OpenSSL"};
  if (auto st = open_to(opened, sealed, "aad"); !st || opened != "check")
    return {errc::config_error, "AES-256-GCM does not open what it sealed in this OpenSSL"};
  return {};
}

void sealer::append_id(std::string& out, std::string_view plain) const {
  if (!keys_) {
    out.append(plain);
    return;
  }
  unsigned char mac[32];
  if (!hmac(serial_, keys_->index_key, plain, mac)) crypto_failed("HMAC-SHA256 of an id");
  out.append(reinterpret_cast<const char*>(mac), id_size);
  OPENSSL_cleanse(mac, sizeof mac);
}

std::string sealer::id(std::string_view plain) const {
  std::string out;
  out.reserve(keys_ ? id_size : plain.size());
  append_id(out, plain);
  return out;
}

std::string sealer::key_check() const {
  if (!keys_) return {};
  unsigned char mac[32];
  if (!hmac(serial_, keys_->index_key, key_check_input, mac)) crypto_failed("HMAC-SHA256 of the key check");
  return std::string(reinterpret_cast<const char*>(mac), sizeof mac);
}

void sealer::seal_to(std::string& out, std::string_view plain, std::string_view aad_head,
                     std::string_view aad_tail) const {
  if (!keys_) {
    out.append(plain);
    return;
  }
  if (!seal_raw(serial_, *keys_, out, plain, aad_head, aad_tail)) crypto_failed("AES-256-GCM sealing");
}

std::string sealer::seal(std::string_view plain, std::string_view aad) const {
  std::string out;
  out.reserve(plain.size() + (keys_ ? overhead : 0));
  seal_to(out, plain, aad);
  return out;
}

status sealer::open_to(std::string& out, std::string_view sealed, std::string_view aad_head,
                       std::string_view aad_tail) const {
  if (!keys_) {
    out.assign(sealed);
    return {};
  }
  if (sealed.size() < overhead)
    return corrupt("sealed value too short (" + std::to_string(sealed.size()) + " bytes)");
  if (static_cast<std::uint8_t>(sealed[0]) != format)
    return corrupt("value is not sealed (format byte " + std::to_string(static_cast<std::uint8_t>(sealed[0])) +
                   "): written without encryption, or damaged");
  const auto* p = bytes_of(sealed);
  const std::uint32_t id =
      (std::uint32_t{p[1]} << 24) | (std::uint32_t{p[2]} << 16) | (std::uint32_t{p[3]} << 8) | p[4];
  const auto* key = keys_->find(id);
  if (!key)
    return corrupt("value sealed with data key " + std::to_string(id) +
                   ", which is not in the data key file (keep every key that sealed data)");
  const std::size_t n = sealed.size() - overhead;
  if (!fits_int(n)) return corrupt("sealed value too large");
  out.resize(n);
  auto& slot = contexts().open;
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  int len = 0;
  bool ok = start(slot, false, serial_, id, *key, p + 5) && add_aad(slot.ctx, false, aad_head) &&
            add_aad(slot.ctx, false, aad_tail);
  if (ok && n > 0)
    ok = EVP_DecryptUpdate(slot.ctx, o, &len, p + head_size, static_cast<int>(n)) == 1 &&
         static_cast<std::size_t>(len) == n;
  // OpenSSL takes the expected tag through a non-const pointer; it only reads it.
  auto* tag = const_cast<unsigned char*>(p + head_size + n);
  ok = ok && EVP_CIPHER_CTX_ctrl(slot.ctx, EVP_CTRL_AEAD_SET_TAG, static_cast<int>(tag_size), tag) == 1;
  if (!ok) {
    slot.owner = 0;
    ERR_clear_error();
    OPENSSL_cleanse(out.data(), out.size());
    out.clear();
    return {errc::internal, "AES-256-GCM opening failed in OpenSSL"};
  }
  unsigned char none[16];
  if (EVP_DecryptFinal_ex(slot.ctx, none, &len) != 1) {
    ERR_clear_error();
    OPENSSL_cleanse(out.data(), out.size());
    out.clear();
    return corrupt("sealed value does not authenticate with data key " + std::to_string(id) +
                   ": it was changed, moved to another key, or sealed by another key file with a key of that id");
  }
  return {};
}

result<std::string> sealer::open(std::string_view sealed, std::string_view aad) const {
  std::string out;
  if (auto st = open_to(out, sealed, aad); !st) return st;
  return out;
}

}  // namespace alert::storage
