#include "actors/node.hpp"

#include <zmq.hpp>

#include "cluster/ingest_server.hpp"
#include "engine/log.hpp"
#include "storage/journal.hpp"

namespace alert {
namespace {

// Ingest backend of a single node: the journal, then the downstream sink.
class journal_backend final : public cluster::ingest_backend {
public:
  journal_backend(storage::journal& j, node::reading_sink sink) : journal_(j), sink_(std::move(sink)) {}

  status submit(std::vector<reading> readings, epoch_ms received, done_fn done) override {
    return journal_.append(std::move(readings), received,
                           [this, done = std::move(done)](storage::append_result&& r, std::vector<reading>&& rs) {
                             if (r.error && sink_ && r.accepted > 0) {
                               if (r.duplicates > 0) {
                                 std::vector<reading> fresh;
                                 fresh.reserve(r.accepted);
                                 for (std::size_t i = 0; i < rs.size(); ++i)
                                   if (!r.duplicate[i]) fresh.push_back(std::move(rs[i]));
                                 sink_(fresh);
                               } else {
                                 sink_(rs);
                               }
                             }
                             done(r.error, r.accepted, r.duplicates);
                           });
  }

private:
  storage::journal& journal_;
  node::reading_sink sink_;
};

}  // namespace

struct node::impl {
  zmq::context_t ctx{1};
  std::unique_ptr<storage::journal> journal;
  std::unique_ptr<journal_backend> backend;
  std::unique_ptr<cluster::ingest_server> ingest;
  bool stopped = false;
};

result<std::unique_ptr<node>> node::start(const config::node_options& opts, const time_source& clock,
                                          reading_sink sink) {
  auto p = std::make_unique<impl>();
  storage::journal_options jo;
  jo.sync = opts.journal_sync;
  jo.max_pending_readings = opts.ingest_max_pending_readings;
  auto j = storage::journal::open(opts.data_dir, jo);
  if (!j) return j.error();
  p->journal = std::move(*j);
  if (!opts.journal_sync)
    log(log_level::warn, "node", "journal_sync_off",
        {{"msg", "acknowledged readings can be lost on power failure; never run like this in production"}});
  p->backend = std::make_unique<journal_backend>(*p->journal, std::move(sink));

  cluster::ingest_options io;
  io.endpoint = opts.ingest_endpoint;
  io.max_message_bytes = opts.ingest_max_message_bytes;
  io.limits.max_readings = opts.ingest_max_batch_readings;
  io.max_future_ms = opts.ingest_max_future_ms;
  auto server = cluster::ingest_server::start(p->ctx, io, *p->backend, clock);
  if (!server) {
    p->journal->close();
    return server.error();
  }
  p->ingest = std::move(*server);
  log(log_level::info, "node", "started",
      {{"node", opts.node_id}, {"data_dir", opts.data_dir}, {"ingest", p->ingest->endpoint()}});
  return std::unique_ptr<node>{new node{std::move(p)}};
}

node::node(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

node::~node() { stop(); }

void node::stop() {
  if (!impl_ || impl_->stopped) return;
  impl_->stopped = true;
  // Order matters: stop intake and answer in-flight batches, then let the journal finish
  // every queued append (its completions still reach the ingest server, which is alive).
  impl_->ingest->stop();
  impl_->journal->close();
  log(log_level::info, "node", "stopped", {{"accepted", std::to_string(impl_->ingest->stats().accepted)}});
}

const std::string& node::ingest_endpoint() const { return impl_->ingest->endpoint(); }

node_stats node::stats() const {
  node_stats s;
  auto in = impl_->ingest->stats();
  s.requests = in.requests;
  s.request_errors = in.request_errors;
  s.accepted = in.accepted;
  s.duplicates = in.duplicates;
  s.rejected = in.rejected;
  if (!impl_->stopped) {
    auto js = impl_->journal->stats();
    s.journal_commits = js.commits;
    s.journal_commit_micros = js.commit_micros;
    s.journal_pending = js.pending;
  }
  return s;
}

}  // namespace alert
