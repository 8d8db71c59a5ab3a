#include "engine/membership.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "engine/ids.hpp"

namespace alert {
namespace {

status config_error(std::string message) { return {errc::config_error, std::move(message)}; }

constexpr std::uint64_t fnv_offset = 0xcbf29ce484222325ULL;
constexpr std::uint64_t fnv_prime = 0x100000001b3ULL;

std::uint64_t fnv1a64_continue(std::uint64_t h, std::string_view bytes) noexcept {
  for (char c : bytes) {
    h ^= static_cast<unsigned char>(c);
    h *= fnv_prime;
  }
  return h;
}

// MurmurHash3's 64-bit finalizer: every input bit affects every output bit.
std::uint64_t fmix64(std::uint64_t k) noexcept {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdULL;
  k ^= k >> 33;
  k *= 0xc4ceb9fe1a85ec53ULL;
  k ^= k >> 33;
  return k;
}

}  // namespace

status validate(const cluster_config& config) {
  const auto n = config.members.size();
  if (n == 0) return config_error("cluster has no members");
  if (n > max_members)
    return config_error("cluster has " + std::to_string(n) + " members, more than " + std::to_string(max_members));
  if (config.shards == 0 || config.shards > max_shards)
    return config_error("cluster shards is " + std::to_string(config.shards) + ", not in 1.." +
                        std::to_string(max_shards));
  std::set<std::string_view> ids, endpoints;
  for (const auto& m : config.members) {
    if (auto st = validate_id(m.id, "member id"); !st) return config_error(st.message());
    if (!ids.insert(m.id).second) return config_error("member id " + m.id + " appears twice");
    if (m.endpoint.empty()) return config_error("member " + m.id + " has no endpoint");
    if (!endpoints.insert(m.endpoint).second)
      return config_error("endpoint " + m.endpoint + " of member " + m.id + " is used by another member");
  }
  if (config.self.empty()) return config_error("cluster self is empty");
  if (ids.count(config.self) == 0) return config_error("cluster self " + config.self + " is not a member");
  const auto& fd = config.fd;
  if (fd.heartbeat_interval_ms <= 0) return config_error("heartbeat interval must be positive");
  if (!std::isfinite(fd.phi_threshold) || fd.phi_threshold <= 0.0)
    return config_error("phi threshold must be a positive number");
  if (fd.acceptable_pause_ms < 0) return config_error("acceptable pause must not be negative");
  if (fd.min_std_deviation_ms <= 0) return config_error("minimum standard deviation must be positive");
  if (fd.max_samples == 0) return config_error("max samples must be at least 1");
  if (fd.first_heartbeat_estimate_ms <= 0) return config_error("first heartbeat estimate must be positive");
  return {};
}

// ---- failure detector ----

double phi_of(double elapsed_ms, double mean_ms, double std_deviation_ms) noexcept {
  const double y = (elapsed_ms - mean_ms) / std_deviation_ms;
  const double e = std::exp(-y * (1.5976 + 0.070566 * y * y));
  // Two forms of the same tail probability, each accurate on its side of the mean.
  if (elapsed_ms > mean_ms) return -std::log10(e / (1.0 + e));
  return -std::log10(1.0 - 1.0 / (1.0 + e));
}

phi_accrual_detector::phi_accrual_detector(failure_detector_options options) : options_(options) {}

void phi_accrual_detector::heartbeat(epoch_ms now) {
  if (!last_) {
    const auto mean = options_.first_heartbeat_estimate_ms;
    intervals_ = {mean - mean / 4, mean + mean / 4};
  } else if (now >= *last_ && available(now)) {
    intervals_.push_back(now - *last_);
  }
  while (intervals_.size() > std::max<std::size_t>(options_.max_samples, 1)) intervals_.pop_front();
  last_ = now;
  recompute();
}

void phi_accrual_detector::recompute() {
  const auto n = static_cast<double>(intervals_.size());
  double sum = 0.0;
  for (auto i : intervals_) sum += static_cast<double>(i);
  mean_ = sum / n;
  double sq = 0.0;
  for (auto i : intervals_) sq += (static_cast<double>(i) - mean_) * (static_cast<double>(i) - mean_);
  std_ = std::max(std::sqrt(sq / n), static_cast<double>(options_.min_std_deviation_ms));
}

double phi_accrual_detector::phi(epoch_ms now) const {
  if (!last_) return std::numeric_limits<double>::infinity();
  return phi_of(static_cast<double>(now - *last_), mean_ + static_cast<double>(options_.acceptable_pause_ms), std_);
}

// ---- membership ----

std::string_view to_string(member_state s) noexcept {
  switch (s) {
    case member_state::unknown: return "unknown";
    case member_state::up: return "up";
    case member_state::unreachable: return "unreachable";
  }
  return "unknown";
}

result<membership> membership::make(const cluster_config& config) {
  if (auto st = validate(config); !st) return st;
  return membership{config};
}

membership::membership(const cluster_config& config) : self_(config.self), shards_(config.shards) {
  for (const auto& m : config.members) {
    members_.push_back({m, phi_accrual_detector{config.fd}, m.id == self_ ? member_state::up : member_state::unknown});
  }
  std::sort(members_.begin(), members_.end(), [](const member& a, const member& b) { return a.config.id < b.config.id; });
}

std::size_t membership::index_of(const std::string& id) const {
  auto it = std::lower_bound(members_.begin(), members_.end(), id,
                             [](const member& m, const std::string& key) { return m.config.id < key; });
  return it != members_.end() && it->config.id == id ? static_cast<std::size_t>(it - members_.begin())
                                                      : members_.size();
}

member_state membership::evaluate(const member& m, epoch_ms now) const {
  if (m.config.id == self_) return member_state::up;
  if (!m.detector.last_heartbeat()) return member_state::unknown;
  return m.detector.available(now) ? member_state::up : member_state::unreachable;
}

void membership::record(member& m, epoch_ms now) {
  auto to = evaluate(m, now);
  if (to == m.reported) return;
  transitions_.push_back({m.config.id, m.reported, to, now});
  m.reported = to;
  if (transitions_.size() > max_kept_transitions)
    transitions_.erase(transitions_.begin(), transitions_.end() - static_cast<std::ptrdiff_t>(max_kept_transitions));
}

bool membership::heartbeat_from(const std::string& id, epoch_ms now) {
  const auto i = index_of(id);
  if (i == members_.size()) return false;
  if (id == self_) return true;
  members_[i].detector.heartbeat(now);
  record(members_[i], now);
  return true;
}

void membership::tick(epoch_ms now) {
  for (auto& m : members_) record(m, now);
}

member_state membership::state_of(const std::string& id, epoch_ms now) const {
  const auto i = index_of(id);
  return i < members_.size() ? evaluate(members_[i], now) : member_state::unknown;
}

std::vector<std::string> membership::live(epoch_ms now) const {
  std::vector<std::string> out;
  for (const auto& m : members_)
    if (evaluate(m, now) == member_state::up) out.push_back(m.config.id);
  return out;
}

bool membership::has_quorum(epoch_ms now) const {
  std::size_t up = 0;
  for (const auto& m : members_)
    if (evaluate(m, now) == member_state::up) ++up;
  return 2 * up > members_.size();
}

std::vector<member_view> membership::view(epoch_ms now) const {
  std::vector<member_view> out;
  for (const auto& m : members_) {
    const bool is_self = m.config.id == self_;
    out.push_back({m.config.id, m.config.endpoint, is_self, evaluate(m, now), is_self ? 0.0 : m.detector.phi(now),
                   is_self ? std::nullopt : m.detector.last_heartbeat()});
  }
  return out;
}

std::vector<member_transition> membership::take_transitions() {
  std::vector<member_transition> out;
  out.swap(transitions_);
  return out;
}

// ---- shards ----

std::uint64_t fnv1a64(std::string_view bytes) noexcept { return fnv1a64_continue(fnv_offset, bytes); }

std::uint64_t stable_hash64(std::string_view bytes) noexcept { return fmix64(fnv1a64(bytes)); }

std::uint32_t shard_of(std::string_view routing_key, std::uint32_t shards) noexcept {
  if (shards == 0) return 0;
  return static_cast<std::uint32_t>(stable_hash64(routing_key) % shards);
}

std::string routing_key(std::string_view device, std::optional<std::string_view> patient) {
  return std::string{patient && !patient->empty() ? *patient : device};
}

std::uint64_t rendezvous_score(std::string_view member, std::uint32_t shard) noexcept {
  const char be[4] = {static_cast<char>((shard >> 24) & 0xff), static_cast<char>((shard >> 16) & 0xff),
                      static_cast<char>((shard >> 8) & 0xff), static_cast<char>(shard & 0xff)};
  return fmix64(fnv1a64_continue(fnv1a64(member), std::string_view{be, 4}));
}

shard_placement place(std::uint32_t shard, const std::vector<std::string>& live_members) {
  // The best two by (score descending, id ascending).
  const std::string* best[2] = {nullptr, nullptr};
  std::uint64_t score[2] = {0, 0};
  auto beats = [](std::uint64_t s, const std::string& id, std::uint64_t other_s, const std::string* other) {
    return !other || s > other_s || (s == other_s && id < *other);
  };
  for (const auto& id : live_members) {
    if ((best[0] && id == *best[0]) || (best[1] && id == *best[1])) continue;
    const auto s = rendezvous_score(id, shard);
    if (beats(s, id, score[0], best[0])) {
      best[1] = best[0], score[1] = score[0];
      best[0] = &id, score[0] = s;
    } else if (beats(s, id, score[1], best[1])) {
      best[1] = &id, score[1] = s;
    }
  }
  return {best[0] ? *best[0] : std::string{}, best[1] ? *best[1] : std::string{}};
}

}  // namespace alert
