#include "actors/queue_manager.hpp"
#include "runtime/error_code.hpp"
#include "actors/status_report.hpp"

#include "actors/provider_gate.hpp"
#include "actors/providers/retry_policy.hpp"
#include "actors/providers/wire_common.hpp"
#include "actors/result_mapper.hpp"
#include "runtime/ids.hpp"
#include "runtime/json_codec.hpp"
#include "runtime/logging.hpp"
#include "runtime/store_reader.hpp"

#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>
#include <caf/event_based_actor.hpp>

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>

#include <algorithm>

namespace lps {

namespace {

using self_ptr = queue_manager_impl_actor::stateful_pointer<queue_manager_state>;

std::shared_ptr<spdlog::logger> log() {
  static auto logger = get_logger("queue");
  return logger;
}

// -- serialization of requests for the store (CAF's binary format, same as the cluster) --

template <class T>
std::string serialize(self_ptr self, T& x) {
  std::vector<char> buf;
  caf::binary_serializer sink{self->system(), buf};
  if (auto err = sink(x))
    return {};
  return std::string{buf.begin(), buf.end()};
}

template <class T>
bool deserialize(self_ptr self, const std::string& payload, T& out) {
  caf::binary_deserializer source{self->system(), payload.data(), payload.size()};
  return !source(out);
}

uint64_t text_bytes(const comparison_request& req) {
  auto result = req.user_prompt.size();
  for (const auto& block : req.prompt_blocks)
    result += block.content.size();
  return result;
}

// The batches a request belongs to, from its metadata ("" when absent).
struct batch_ids {
  /// metadata.bos_batch_id when it is a string: the run.
  std::string bos_batch_id;
  /// metadata.cj_batch_id when it is a string or an integer (CJ numbers its batches).
  std::string cj_batch_id;
};

// One parse for both ids; the search first spares it to requests with neither.
batch_ids batch_ids_of(const comparison_request& req) {
  batch_ids result;
  if (req.metadata_json.find("_batch_id") == std::string::npos)
    return result;
  boost::json::monotonic_resource resource;
  boost::json::parse_options options;
  options.max_depth = 256; // deeper than the API accepts (64 levels)
  boost::system::error_code ec;
  auto document =
      boost::json::parse(req.metadata_json, ec, boost::json::storage_ptr{&resource}, options);
  if (ec || !document.is_object())
    return result;
  const auto& metadata = document.get_object();
  if (const auto* run = metadata.if_contains("bos_batch_id"); run && run->is_string())
    result.bos_batch_id = run->get_string();
  if (const auto* cj = metadata.if_contains("cj_batch_id"); cj && cj->is_string())
    result.cj_batch_id = cj->get_string();
  else if (cj && cj->is_int64())
    result.cj_batch_id = std::to_string(cj->get_int64());
  else if (cj && cj->is_uint64())
    result.cj_batch_id = std::to_string(cj->get_uint64());
  return result;
}

// The model a request will be called with: its override, else its provider's default.
std::string resolved_model(self_ptr self, const std::string& provider,
                           const comparison_request& req) {
  if (!req.overrides.model.empty())
    return req.overrides.model;
  const auto& models = self->state.cfg.default_models;
  auto i = models.find(provider);
  return i != models.end() ? i->second : std::string{};
}

// The store row: scheduling data and texts apart, so texts can stay out of memory.
// The texts are moved out while the rest is serialized and moved back after: no copy of
// the 6 KB prompt.
stored_request to_row(self_ptr self, queued_request& item, const std::string& provider) {
  request_texts texts{std::move(item.request.user_prompt), std::move(item.request.prompt_blocks)};
  auto meta = serialize(self, item.request);
  auto texts_blob = serialize(self, texts);
  item.request.user_prompt = std::move(texts.user_prompt);
  item.request.prompt_blocks = std::move(texts.prompt_blocks);
  auto batches = batch_ids_of(item.request);
  return {item.request.queue_id,
          item.request.priority,
          to_unix_ms(item.request.queued_at),
          item.size_bytes,
          0,
          std::move(meta),
          std::move(texts_blob),
          provider,
          std::move(batches.bos_batch_id),
          resolved_model(self, provider, item.request),
          item.request.correlation_id,
          std::move(batches.cj_batch_id)};
}

// What the leader's index needs of a stored row (cluster mode, cfg.on_stored).
adopted_request adopted_of(const stored_request& row) {
  return {row.queue_id, row.provider, row.priority, row.queued_at_ms, row.size_bytes, row.attempts};
}

// The result row: the event, and the columns operators query. A request that never reached
// a provider (expired, cancelled) names the provider and model it was queued for.
stored_result to_row(self_ptr self, const queue_entry& entry, const result_event& event,
                     std::string json, caf::timestamp now) {
  const auto& req = entry.hot->request;
  const auto& outcome = event.outcome;
  auto batches = batch_ids_of(req);
  stored_result row{event.request_id, event.final_status, std::move(json), req.callback_url, false,
                    to_unix_ms(now)};
  row.bos_batch_id = std::move(batches.bos_batch_id);
  row.provider = outcome.provider.empty() ? entry.provider : outcome.provider;
  row.model = outcome.model.empty() ? resolved_model(self, entry.provider, req) : outcome.model;
  row.error_code = outcome.success ? "" : outcome.error_code;
  row.correlation_id = req.correlation_id;
  row.cj_batch_id = std::move(batches.cj_batch_id);
  return row;
}

// -- index maintenance --

const std::string& provider_of(self_ptr self, const comparison_request& req) {
  return req.overrides.provider.empty() ? self->state.cfg.default_provider : req.overrides.provider;
}

void make_ready(self_ptr self, const std::string& id, queue_entry& entry) {
  auto& st = self->state;
  entry.status = queue_status::queued;
  entry.seq = st.next_seq++;
  // The newest sequence number sorts last within its priority: at the end for the common
  // case (one priority, and the recovery, which reads in priority order), no tree search.
  auto& queue = st.ready[entry.provider];
  queue.emplace_hint(queue.end(), std::make_pair(-entry.priority, entry.seq), id);
  ++st.ready_count;
}

void remove_ready(self_ptr self, const queue_entry& entry) {
  auto& st = self->state;
  auto i = st.ready.find(entry.provider);
  if (i != st.ready.end() && i->second.erase({-entry.priority, entry.seq}) > 0)
    --st.ready_count;
}

queue_entry& insert_entry(self_ptr self, const std::string& id, std::string provider,
                          int32_t priority, caf::timestamp queued_at, uint64_t size_bytes,
                          uint32_t attempts) {
  auto& st = self->state;
  st.active_bytes += size_bytes;
  // New requests, and recovered ones within a priority, come oldest first: at the end.
  st.by_age.emplace_hint(st.by_age.end(), queued_at, id);
  auto& entry = st.entries[id];
  entry.provider = std::move(provider);
  entry.priority = priority;
  entry.queued_at = queued_at;
  entry.size_bytes = size_bytes;
  entry.attempts = attempts;
  return entry;
}

// A new request stays hot (with its texts) while the text budget allows; beyond it only
// the scheduling data stays in memory. A hot one is ready at once, even before its insert
// committed (the provider call overlaps the commit); a cold one can only be read back from
// the store, so it becomes ready when its insert has committed.
void add_entry(self_ptr self, queued_request item) {
  auto& st = self->state;
  auto id = item.request.queue_id;
  auto& entry = insert_entry(self, id, provider_of(self, item.request), item.request.priority,
                             item.request.queued_at, item.size_bytes, item.attempts);
  auto bytes = text_bytes(item.request);
  if (st.text_bytes_in_memory + bytes <= st.cfg.memory_text_budget) {
    entry.hot = std::make_unique<queued_request>(std::move(item));
    entry.texts_held = bytes;
    st.text_bytes_in_memory += bytes;
  }
  entry.stored = false;
  if (entry.hot)
    make_ready(self, id, entry);
}

using requests_by_id = std::map<std::string, queued_request>;

// Whole requests from their store rows (with their texts when `with_texts`); a row that
// cannot be deserialized is left out (logged).
requests_by_id requests_of(self_ptr self, std::vector<stored_request>& rows, bool with_texts) {
  requests_by_id result;
  for (auto& row : rows) {
    queued_request item;
    request_texts texts;
    if (!deserialize(self, row.payload, item.request)
        || (with_texts && !row.texts.empty() && !deserialize(self, row.texts, texts))) {
      LPS_LOG_ERROR(log(), "queue-manager cannot read stored request {}", row.queue_id);
      continue;
    }
    if (with_texts && !row.texts.empty()) {
      item.request.user_prompt = std::move(texts.user_prompt);
      item.request.prompt_blocks = std::move(texts.prompt_blocks);
    }
    item.size_bytes = row.size_bytes;
    result.emplace(row.queue_id, std::move(item));
  }
  return result;
}

// Makes a cold entry hot without its texts, reading on the actor's thread from the store's
// own connection: only for the recovery at start, before any message is handled.
bool hydrate_at_start(self_ptr self, const std::string& id, queue_entry& entry) {
  auto rows = self->state.db->load_rows({id});
  auto requests = requests_of(self, rows, false);
  if (requests.empty())
    return false;
  entry.hot = std::make_unique<queued_request>(std::move(requests.begin()->second));
  return true;
}

// Runs `read` on the reader pool; `then` runs in the actor with how it went (not ok: the
// pool refused the read, or it failed). The answer comes as a `store_committed` message
// under an id taken from the write ids, so one handler serves writes and reads.
void read_then(self_ptr self, store_reader::read_fn read,
               std::function<void(bool ok, const std::string& error)> then) {
  auto& st = self->state;
  auto id = st.next_write_id++;
  st.pending_reads.emplace(id, std::move(then));
  auto hdl = caf::actor_cast<queue_manager_impl_actor>(self);
  st.cfg.reads->post(
      [read = std::move(read), hdl, id](store_reads& db) {
        read(db);
        caf::anon_send(hdl, atom::store_committed_v, id, true, std::string{});
      },
      [hdl, id](const std::string& error) {
        caf::anon_send(hdl, atom::store_committed_v, id, false, error);
      });
}

// Reads whole requests (with their texts when `with_texts`) on the reader pool and hands
// them to `then` in the actor, by queue id (rows gone or unreadable are left out).
void read_requests(self_ptr self, std::vector<std::string> ids, bool with_texts,
                   std::function<void(bool ok, requests_by_id& requests)> then) {
  auto rows = std::make_shared<std::vector<stored_request>>();
  read_then(
      self, [rows, ids = std::move(ids)](store_reads& db) { *rows = db.load_rows(ids); },
      [self, rows, with_texts, then = std::move(then)](bool ok, const std::string& error) {
        requests_by_id requests;
        if (ok) {
          requests = requests_of(self, *rows, with_texts);
        } else {
          LPS_LOG_ERROR(log(), "queue-manager could not read requests from the store: {}", error);
          self->state.stats.last_error = "could not read requests: " + error;
        }
        then(ok, requests);
      });
}

void wake_waiters(self_ptr self) {
  auto& st = self->state;
  if (st.ready_count == 0 || st.waiters.empty())
    return;
  for (auto& requester : st.waiters)
    self->send(requester, atom::wake_v);
  st.waiters.clear();
}

void record(self_ptr self, std::vector<metric_sample> samples) {
  if (!samples.empty() && self->state.metrics)
    self->send(self->state.metrics, atom::record_v, std::move(samples));
}

// -- store callbacks come from the writer thread: hop back into the actor --

// An insert's callback: once it committed, it submits the final writes chained to it
// meanwhile (see chained_finals), before telling the actor; when it failed, it drops them.
store_callback insert_notifier(self_ptr self, uint64_t write_id,
                               std::shared_ptr<chained_finals> chain) {
  auto hdl = caf::actor_cast<queue_manager_impl_actor>(self);
  return [hdl, write_id, chain, db = self->state.db](bool ok, const std::string& error) {
    std::vector<std::pair<store_write, store_callback>> writes;
    {
      std::lock_guard lock{chain->mutex};
      chain->insert_ok = ok;
      writes.swap(chain->writes);
    }
    if (ok)
      for (auto& [write, done] : writes)
        db->submit(std::move(write), std::move(done));
    caf::anon_send(hdl, atom::store_committed_v, write_id, ok, error);
  };
}

// Submits a final write behind its requests' insert: through the insert's callback while it
// has not run, at once when it ran and the insert committed; not at all when the insert
// failed (on_insert_committed then forgets the write).
void submit_after_insert(store* db, chained_finals& chain, store_write write, store_callback done) {
  std::unique_lock lock{chain.mutex};
  if (!chain.insert_ok) {
    chain.writes.emplace_back(std::move(write), std::move(done));
    return;
  }
  auto committed = *chain.insert_ok;
  lock.unlock();
  if (committed)
    db->submit(std::move(write), std::move(done));
}

// -- enqueue --

enqueue_outcome refuse(const comparison_request& req, const char* code, std::string message,
                       uint32_t retry_after) {
  return {false, req.queue_id, req.correlation_id, code, std::move(message), retry_after};
}

caf::result<std::vector<enqueue_outcome>> enqueue(self_ptr self,
                                                  std::vector<comparison_request>& reqs) {
  auto& st = self->state;
  queue_manager_state::pending_insert pending;
  uint64_t pending_bytes = 0; // bytes of the requests accepted so far in this message
  store_write write;
  std::vector<queued_request> accepted;
  for (auto& req : reqs) {
    queued_request item{std::move(req), queue_status::queued, 0, 0};
    item.size_bytes = item.request.user_prompt.size() + item.request.metadata_json.size();
    for (const auto& block : item.request.prompt_blocks)
      item.size_bytes += block.content.size();
    auto count_after = st.entries.size() + pending.queue_ids.size() + 1;
    auto bytes_after = st.active_bytes + pending_bytes + item.size_bytes;
    if (st.draining) {
      pending.outcomes.push_back(refuse(item.request, to_string(ec::service_unavailable),
                                        "the service is shutting down", 0));
    } else if (count_after > st.cfg.max_size || bytes_after > st.cfg.max_bytes) {
      ++st.rejected_total;
      pending.outcomes.push_back(refuse(item.request, to_string(ec::queue_full),
                                        "queue is at capacity (QUEUE_MAX_SIZE or QUEUE_MAX_BYTES)",
                                        st.cfg.retry_after_seconds));
    } else {
      write.inserts.push_back(to_row(self, item, provider_of(self, item.request)));
      if (st.cfg.on_stored)
        pending.stored_rows.push_back(adopted_of(write.inserts.back()));
      pending.outcomes.push_back(
          {true, item.request.queue_id, item.request.correlation_id, "", "", 0});
      pending_bytes += item.size_bytes;
      pending.queue_ids.push_back(item.request.queue_id);
      accepted.push_back(std::move(item));
    }
  }
  if (pending.queue_ids.empty())
    return std::move(pending.outcomes);
  pending.chain = std::make_shared<chained_finals>();
  if (!st.cfg.intake_only)
    for (auto& item : accepted) {
      st.unstored_chains.emplace(item.request.queue_id, pending.chain);
      add_entry(self, std::move(item));
    }
  auto id = st.next_write_id++;
  pending.promise = self->make_response_promise<std::vector<enqueue_outcome>>();
  auto result = pending.promise;
  auto chain = pending.chain;
  st.pending_inserts.emplace(id, std::move(pending));
  st.db->submit(std::move(write), insert_notifier(self, id, std::move(chain)));
  wake_waiters(self);
  return result;
}

// A request whose insert failed was never accepted (its client gets an error, not a 202):
// it leaves without a result, and an outcome of a provider call already made is dropped.
void discard_unstored(self_ptr self, const std::string& id) {
  auto& st = self->state;
  auto i = st.entries.find(id);
  if (i == st.entries.end())
    return;
  auto& entry = i->second;
  if (entry.status == queue_status::processing)
    --st.processing_count;
  else
    remove_ready(self, entry);
  st.early_outcomes.erase(id);
  st.active_bytes -= entry.size_bytes;
  st.text_bytes_in_memory -= entry.texts_held;
  st.by_age.erase({entry.queued_at, id});
  st.entries.erase(i);
}

void complete(self_ptr self, std::vector<comparison_outcome>& outcomes);

void on_insert_committed(self_ptr self, queue_manager_state::pending_insert& pending, bool ok,
                         const std::string& error) {
  auto& st = self->state;
  for (const auto& id : pending.queue_ids)
    st.unstored_chains.erase(id);
  if (!ok) {
    LPS_LOG_ERROR(log(), "queue-manager could not store {} requests: {}", pending.queue_ids.size(),
                  error);
    st.stats.last_error = "could not store requests: " + error;
    for (auto write_id : pending.chain->write_ids) // never submitted (insert_notifier)
      st.pending_finals.erase(write_id);
    for (const auto& id : pending.queue_ids)
      discard_unstored(self, id);
    for (auto& x : pending.outcomes)
      if (x.accepted)
        x = {false,
             x.queue_id,
             x.correlation_id,
             to_string(ec::store_unavailable),
             "the request could not be stored durably; retry later",
             store_unavailable_retry_after_s};
    pending.promise.deliver(std::move(pending.outcomes));
    return;
  }
  st.accepted_total += pending.queue_ids.size();
  record(self, {{"llm_provider_requests_accepted_total", {}, double(pending.queue_ids.size())}});
  if (st.cfg.intake_only) { // stored for the leader: told by message, else its poller finds it
    if (st.cfg.on_stored)
      st.cfg.on_stored(std::move(pending.stored_rows));
    pending.promise.deliver(std::move(pending.outcomes));
    return;
  }
  std::vector<comparison_outcome> early;
  for (const auto& id : pending.queue_ids) {
    auto& entry = st.entries.at(id);
    entry.stored = true;
    if (!entry.hot) // cold: waited for its row (see add_entry)
      make_ready(self, id, entry);
    if (auto i = st.early_outcomes.find(id); i != st.early_outcomes.end()) {
      early.push_back(std::move(i->second));
      st.early_outcomes.erase(i);
    }
  }
  pending.promise.deliver(std::move(pending.outcomes));
  if (!early.empty())
    complete(self, early);
  wake_waiters(self);
}

// -- dequeue --

// The ready queue among `providers` whose head comes first (priority, then FIFO).
std::map<std::pair<int32_t, uint64_t>, std::string>*
best_queue(self_ptr self, const std::vector<std::string>& providers) {
  std::map<std::pair<int32_t, uint64_t>, std::string>* result = nullptr;
  for (const auto& p : providers) {
    auto i = self->state.ready.find(p);
    if (i == self->state.ready.end() || i->second.empty())
      continue;
    if (result == nullptr || i->second.begin()->first < result->begin()->first)
      result = &i->second;
  }
  return result;
}

// Whoever asks for work is a work requester (the dequeue contract in actors.hpp).
void remember_waiter(self_ptr self) {
  auto& st = self->state;
  if (auto sender = caf::actor_cast<work_requester_actor>(self->current_sender()))
    if (std::find(st.waiters.begin(), st.waiters.end(), sender) == st.waiters.end())
      st.waiters.push_back(std::move(sender));
}

// Reads requests whose texts are only in the store; each entry becomes hot (without texts)
// while it is processed, so its result can be built without another read.
void fill_from_store(self_ptr self, std::vector<queued_request>& items,
                     const std::vector<std::string>& ids, const std::vector<size_t>& positions,
                     requests_by_id& rows) {
  auto& st = self->state;
  for (size_t k = 0; k < ids.size(); ++k) {
    auto& item = items[positions[k]];
    auto& entry = st.entries.at(ids[k]);
    auto row = rows.find(ids[k]);
    if (row == rows.end())
      continue; // unreadable: the provider gets an empty prompt and fails the item
    auto attempts = item.attempts;
    item = std::move(row->second);
    item.status = queue_status::processing;
    item.attempts = attempts;
    if (!entry.hot) {
      entry.hot = std::make_unique<queued_request>(item);
      std::string{}.swap(entry.hot->request.user_prompt);
      std::vector<prompt_block>{}.swap(entry.hot->request.prompt_blocks);
    }
    ++st.texts_loaded_total;
  }
}

void put_back(self_ptr self, const std::string& id, queue_entry& entry);

// The rows of cold requests handed out could not be read (the reader pool refused or failed
// the read): they go back to the queue as if never dequeued and leave the answer.
void put_back_unread(self_ptr self, std::vector<queued_request>& items,
                     const std::vector<std::string>& ids, const std::vector<size_t>& positions) {
  auto& st = self->state;
  for (const auto& id : ids) {
    --st.processing_count;
    put_back(self, id, st.entries.at(id));
  }
  for (auto k = positions.size(); k-- > 0;) // positions ascend: erase from the back
    items.erase(items.begin() + static_cast<ptrdiff_t>(positions[k]));
}

// Requests handed out are processing: one write marks them so, which group commit folds into
// a transaction with the inserts and finals around it. Nobody waits for it: should it fail,
// the rows keep saying queued until the requests' next write.
void store_dispatched(self_ptr self, const std::vector<queued_request>& items) {
  if (items.empty())
    return;
  store_write write;
  for (const auto& item : items)
    write.dispatched.push_back(item.request.queue_id);
  self->state.db->submit(std::move(write), [](bool, const std::string&) {});
}

// The item handed to the bundler: the hot copy with texts, or read back from the store on
// the reader pool (the answer waits for that read). Meanwhile those entries are processing,
// so no cancel, expiry or other dequeue takes them.
caf::result<std::vector<queued_request>> dequeue(self_ptr self, uint32_t max_items,
                                                 const std::vector<std::string>& providers) {
  auto& st = self->state;
  if (st.draining)
    return std::vector<queued_request>{};
  std::vector<queued_request> result;
  std::vector<std::string> from_store;
  std::vector<size_t> positions;
  while (result.size() < max_items) {
    auto* queue = best_queue(self, providers);
    if (queue == nullptr)
      break;
    auto id = queue->begin()->second;
    queue->erase(queue->begin());
    --st.ready_count;
    auto& entry = st.entries.at(id);
    st.by_age.erase({entry.queued_at, id});
    entry.status = queue_status::processing;
    ++entry.attempts;
    ++st.processing_count;
    if (entry.hot && entry.texts_held > 0) {
      // The texts go to the provider; the queue keeps the rest. A retry reads them back from
      // the store, so texts of requests in flight (a whole batch job's) are held only once.
      result.push_back(std::move(*entry.hot));
      auto& out = result.back().request;
      request_texts texts{std::move(out.user_prompt), std::move(out.prompt_blocks)};
      entry.hot = std::make_unique<queued_request>(result.back());
      out.user_prompt = std::move(texts.user_prompt);
      out.prompt_blocks = std::move(texts.prompt_blocks);
      st.text_bytes_in_memory -= entry.texts_held;
      entry.texts_held = 0;
    } else {
      result.emplace_back();
      from_store.push_back(id);
      positions.push_back(result.size() - 1);
    }
    result.back().request.queue_id = id;
    result.back().status = queue_status::processing;
    result.back().attempts = entry.attempts;
  }
  if (result.empty())
    remember_waiter(self);
  store_dispatched(self, result);
  if (from_store.empty())
    return result;
  auto promise = self->make_response_promise<std::vector<queued_request>>();
  auto items = std::make_shared<std::vector<queued_request>>(std::move(result));
  auto requester = caf::actor_cast<work_requester_actor>(self->current_sender());
  read_requests(self, from_store, true,
                [self, promise, items, requester, ids = from_store,
                 positions](bool ok, requests_by_id& rows) mutable {
                  if (ok) {
                    fill_from_store(self, *items, ids, positions, rows);
                  } else {
                    put_back_unread(self, *items, ids, positions);
                    // Left empty-handed: woken by the next tick, not at once (the pool
                    // that refused the read needs a moment).
                    auto& waiters = self->state.waiters;
                    if (items->empty() && requester
                        && std::find(waiters.begin(), waiters.end(), requester) == waiters.end())
                      waiters.push_back(requester);
                  }
                  promise.deliver(std::move(*items));
                });
  return promise;
}

// -- final results --

// Final provider failures (after their retries) are worth an operator's look, but a night
// of them must not flood the log: the throttle folds repeats into a count. Never the
// provider's message: it may echo part of the key.
void log_final_failure(self_ptr self, const comparison_outcome& outcome, caf::timestamp now) {
  if (!is_provider_failure(outcome))
    return;
  if (auto count = self->state.failure_log.admit(outcome.provider, outcome.error_code, now))
    LPS_LOG_WARN(log(),
                 "queue-manager: final provider failure: provider {}, model {}, error {} (HTTP "
                 "{}); {} such failure(s) since the last line about this provider and error",
                 outcome.provider, outcome.model, outcome.error_code, outcome.http_status, count);
}

using cancel_reply = std::pair<caf::typed_response_promise<cancel_summary>, cancel_summary>;

// Submits a final write (again, after a failure). Its callback runs on the writer thread:
// once the write committed, it hands the results' deliveries straight to the callbacks
// actor, so the callback POST does not wait for a hop through this actor (which is told in
// parallel, and forgets the entries then). A failed write leaves them for its retry: the
// writer touches them only in the callback, and this actor only after it.
void submit_final(self_ptr self, queue_manager_state::pending_final pending,
                  chained_finals* chain) {
  auto& st = self->state;
  auto write_id = st.next_write_id++;
  auto write = pending.write;
  auto hdl = caf::actor_cast<queue_manager_impl_actor>(self);
  auto done = [hdl, callbacks = st.callbacks, deliveries = pending.deliveries,
               write_id](bool ok, const std::string& error) {
    if (ok && callbacks && !deliveries->empty())
      caf::anon_send(callbacks, atom::deliver_v, std::move(*deliveries));
    caf::anon_send(hdl, atom::store_committed_v, write_id, ok, error);
  };
  st.pending_finals.emplace(write_id, std::move(pending));
  if (!chain)
    return st.db->submit(std::move(write), std::move(done));
  chain->write_ids.push_back(write_id);
  submit_after_insert(st.db, *chain, std::move(write), std::move(done));
}

// Writes the final results of hot entries in one write, which answers `replies` once
// committed (at once when there is nothing to write); behind their insert when `chain` is
// set (requests whose insert is being committed).
void write_finals(self_ptr self, std::vector<std::pair<std::string, comparison_outcome>> finals,
                  std::vector<cancel_reply> replies, chained_finals* chain = nullptr) {
  auto& st = self->state;
  auto now = st.cfg.now();
  queue_manager_state::pending_final pending;
  for (auto& [id, outcome] : finals) {
    auto& entry = st.entries.at(id);
    if (!entry.hot) {
      LPS_LOG_ERROR(log(), "queue-manager cannot finalize {}: its row is unreadable", id);
      continue;
    }
    auto& item = *entry.hot;
    item.attempts = entry.attempts;
    log_final_failure(self, outcome, now);
    auto event = make_result_event(item, outcome, now);
    auto json = render_result_event(event);
    auto samples = final_result_metrics(event, now);
    pending.samples.insert(pending.samples.end(), samples.begin(), samples.end());
    const auto& callback_url = item.request.callback_url;
    if (!callback_url.empty())
      pending.deliveries->push_back({id, callback_url, json, 0});
    pending.write.finals.push_back(to_row(self, entry, event, std::move(json), now));
    pending.queue_ids.push_back(id);
  }
  if (pending.queue_ids.empty()) {
    for (auto& [promise, summary] : replies)
      promise.deliver(summary);
    return;
  }
  pending.cancel_replies = std::move(replies);
  submit_final(self, std::move(pending), chain);
}

// Stores final results; `replies` are answered once they are committed. Their entries are
// final from now on, so no dequeue, expiry, retry or cancel takes them meanwhile. Entries
// whose request is only in the store (cold) are read first on the reader pool, then all are
// written together; should that read fail, they are read again on the next tick.
void finalize_all(self_ptr self, std::vector<std::pair<std::string, comparison_outcome>> finals,
                  std::vector<cancel_reply> replies = {}, chained_finals* chain = nullptr) {
  auto& st = self->state;
  std::vector<std::string> cold;
  for (auto& [id, outcome] : finals) {
    auto& entry = st.entries.at(id);
    entry.status = final_status_of(outcome);
    if (!entry.hot)
      cold.push_back(id);
  }
  if (cold.empty())
    return write_finals(self, std::move(finals), std::move(replies), chain);
  auto unread = std::make_shared<queue_manager_state::unread_final>(
      queue_manager_state::unread_final{std::move(finals), std::move(replies)});
  read_requests(self, std::move(cold), false, [self, unread](bool ok, requests_by_id& rows) {
    auto& st = self->state;
    if (!ok) {
      st.unread_finals.push_back(std::move(*unread));
      return;
    }
    for (auto& [id, request] : rows) // entries stay until their final result committed
      if (auto& entry = st.entries.at(id); !entry.hot)
        entry.hot = std::make_unique<queued_request>(std::move(request));
    write_finals(self, std::move(unread->finals), std::move(unread->cancel_replies));
  });
}

// A final failure the queue decides itself (expired, cancelled): no provider was called.
// Its prompt hash is the request's, filled in when its result event is made.
comparison_outcome queue_failure(self_ptr self, const std::string& id, ec code,
                                 const char* message) {
  comparison_outcome result;
  result.queue_id = id;
  result.success = false;
  result.error_code = to_string(code);
  result.error_message = message;
  result.retryable = false;
  result.enrichment.queue_processing_mode = self->state.cfg.processing_mode;
  return result;
}

void forget(self_ptr self, const std::string& id) {
  auto& st = self->state;
  auto i = st.entries.find(id);
  if (i == st.entries.end())
    return;
  switch (i->second.status) {
  case queue_status::completed:
    ++st.completed_total;
    break;
  case queue_status::expired:
    ++st.expired_total;
    break;
  default:
    ++st.failed_total;
    break;
  }
  st.active_bytes -= i->second.size_bytes;
  st.text_bytes_in_memory -= i->second.texts_held;
  st.by_age.erase({i->second.queued_at, id});
  st.entries.erase(i);
  if (st.cfg.adoption_memory.count() > 0 && st.recent_final_ids.insert(id).second)
    st.recent_finals.emplace_back(st.cfg.now(), id);
}

void on_final_committed(self_ptr self, queue_manager_state::pending_final& pending, bool ok,
                        const std::string& error) {
  auto& st = self->state;
  if (!ok) {
    LPS_LOG_ERROR(log(), "queue-manager could not store {} results, retrying: {}",
                  pending.queue_ids.size(), error);
    st.stats.last_error = "could not store results: " + error;
    st.failed_finals.push_back(std::move(pending));
    return;
  }
  for (const auto& id : pending.queue_ids)
    forget(self, id);
  record(self, std::move(pending.samples)); // the deliveries went out from submit_final
  for (auto& [promise, summary] : pending.cancel_replies)
    promise.deliver(summary);
}

// A request back in the queue: its row shows queued again, with its attempts so far.
void store_requeued(self_ptr self, const std::string& id, uint32_t attempts) {
  store_write write;
  write.attempts.emplace_back(id, attempts);
  self->state.db->submit(std::move(write), [](bool, const std::string&) {});
}

// The retry policy's decision for a failed attempt: exponential backoff with jitter, never
// sooner than the provider's Retry-After, and only while attempts are left.
retry_decision decide_retry(self_ptr self, uint32_t attempts, const comparison_outcome& outcome) {
  const auto& cfg = self->state.cfg;
  backoff_settings settings;
  settings.base = std::chrono::duration_cast<clock_duration>(cfg.retry_base_delay);
  settings.max = std::chrono::duration_cast<clock_duration>(cfg.retry_max_delay);
  settings.max_retries = cfg.max_retries;
  std::optional<clock_duration> retry_after;
  if (outcome.retry_after.count() > 0)
    retry_after = std::chrono::duration_cast<clock_duration>(outcome.retry_after);
  auto kind = outcome.retryable ? failure_class::retryable : failure_class::permanent;
  return decide(settings, attempts, kind, retry_after, self->state.jitter.next());
}

// Status shows the last retryable failure; the message is cut so an entry stays small.
void remember_failure(queue_entry& entry, const comparison_outcome& outcome) {
  constexpr size_t max_message_chars = 200;
  entry.last_failure = std::make_unique<entry_failure>(
      entry_failure{outcome.error_code, wire::cut_utf8(outcome.error_message, max_message_chars)});
}

void schedule_retry(self_ptr self, const std::string& id, queue_entry& entry,
                    clock_duration delay) {
  auto& st = self->state;
  ++st.retried_total;
  entry.status = queue_status::queued;
  entry.not_before = st.cfg.now() + std::chrono::duration_cast<caf::timespan>(delay);
  st.delayed.emplace(entry.not_before, id);
  st.by_age.emplace(entry.queued_at, id);
  store_requeued(self, id, entry.attempts);
}

// The bundler pauses a provider that rejects our key; batch jobs do not pause, so their
// items still fail (put back, a job would submit them again and again).
bool waits_for_key_fix(const comparison_outcome& outcome) {
  return rejects_key(outcome) && outcome.enrichment.batch_job_id.empty();
}

// The provider rejected our key (it is paused now): the request waits in the queue as if it
// had not been dequeued, so a bad key uses up neither retries nor the queue; the next
// dequeue of its provider (after the pause ends) reads its texts back from the store.
void put_back(self_ptr self, const std::string& id, queue_entry& entry) {
  --entry.attempts;
  self->state.by_age.emplace(entry.queued_at, id);
  make_ready(self, id, entry);
  store_requeued(self, id, entry.attempts);
}

// An outcome that ends its request whatever its attempts: a success, or a failure that is
// neither retryable nor a rejected key (the request waits for the key's fix).
bool final_at_once(const comparison_outcome& outcome) {
  return (outcome.success || !outcome.retryable) && !waits_for_key_fix(outcome);
}

// The chain of final writes behind the insert of `id`, a request not stored yet (null: none).
chained_finals* chain_of(self_ptr self, const std::string& id) {
  auto& chains = self->state.unstored_chains;
  auto i = chains.find(id);
  return i != chains.end() ? i->second.get() : nullptr;
}

void complete(self_ptr self, std::vector<comparison_outcome>& outcomes) {
  auto& st = self->state;
  std::vector<std::pair<std::string, comparison_outcome>> finals;
  // Finals of requests whose insert is being committed: written behind it, per insert.
  std::map<chained_finals*, std::vector<std::pair<std::string, comparison_outcome>>> chained;
  for (auto& outcome : outcomes) {
    auto i = st.entries.find(outcome.queue_id);
    // Only a processing request can complete: a late duplicate outcome is ignored, so a
    // request never gets two final results.
    if (i == st.entries.end() || i->second.status != queue_status::processing)
      continue;
    auto id = outcome.queue_id;
    if (!i->second.stored) { // answered before its insert committed
      // (Hot, as only hot requests are dispatched before their insert committed: its final
      // is written at once, without a read that would lose the chain.)
      auto* chain = final_at_once(outcome) && i->second.hot ? chain_of(self, id) : nullptr;
      if (!chain) { // a retry's or a put-back's write must wait for the insert's outcome
        st.early_outcomes.insert_or_assign(std::move(id), std::move(outcome));
        continue;
      }
      --st.processing_count;
      chained[chain].emplace_back(std::move(id), std::move(outcome));
      continue;
    }
    --st.processing_count;
    if (waits_for_key_fix(outcome)) {
      put_back(self, outcome.queue_id, i->second);
      continue;
    }
    if (!outcome.success) {
      auto decision = decide_retry(self, i->second.attempts, outcome);
      if (decision.retry) {
        remember_failure(i->second, outcome);
        schedule_retry(self, outcome.queue_id, i->second, decision.delay);
        continue;
      }
    }
    finals.emplace_back(std::move(id), std::move(outcome));
  }
  finalize_all(self, std::move(finals));
  for (auto& [chain, group] : chained)
    finalize_all(self, std::move(group), {}, chain);
}

// What waits for `provider`: a batch job is worth submitting when enough does, or when the
// oldest has waited long enough. Linear in that provider's ready queue, asked about once a
// second by each batch jobs actor.
queue_backlog backlog_of(self_ptr self, const std::string& provider) {
  auto& st = self->state;
  queue_backlog result;
  auto i = st.ready.find(provider);
  if (i == st.ready.end())
    return result;
  for (const auto& [key, id] : i->second) {
    const auto& entry = st.entries.at(id);
    if (result.count == 0 || entry.queued_at < result.oldest_queued_at)
      result.oldest_queued_at = entry.queued_at;
    ++result.count;
    result.bytes += entry.size_bytes;
  }
  return result;
}

// -- periodic work --

void release_due_retries(self_ptr self, caf::timestamp now) {
  auto& st = self->state;
  while (!st.delayed.empty() && st.delayed.begin()->first <= now) {
    auto id = st.delayed.begin()->second;
    st.delayed.erase(st.delayed.begin());
    if (auto i = st.entries.find(id);
        i != st.entries.end() && i->second.status == queue_status::queued)
      make_ready(self, id, i->second); // a new sequence: a retry does not jump the line
  }
}

void expire_old(self_ptr self, caf::timestamp now) {
  auto& st = self->state;
  std::vector<std::pair<std::string, comparison_outcome>> finals;
  while (!st.by_age.empty() && st.by_age.begin()->first + st.cfg.ttl <= now) {
    auto id = st.by_age.begin()->second;
    auto& entry = st.entries.at(id);
    if (!entry.stored)
      break; // not accepted yet; it expires on a later tick, after its insert committed
    st.by_age.erase(st.by_age.begin());
    remove_ready(self, entry);
    finals.emplace_back(id, queue_failure(self, id, ec::expired,
                                          "request was not processed within "
                                          "QUEUE_REQUEST_TTL_HOURS"));
  }
  finalize_all(self, std::move(finals));
}

void publish_gauges(self_ptr self) {
  auto& st = self->state;
  auto queued = static_cast<double>(st.ready_count + st.delayed.size());
  auto processing = static_cast<double>(st.processing_count);
  auto health = st.db->health();
  // The counters take steps: the reconnects and commits since the last tick.
  auto reconnects =
      health.reconnects - std::exchange(st.store_reconnects_recorded, health.reconnects);
  auto commits = st.db->stats().commits;
  std::vector<metric_sample> samples{
      {"llm_provider_store_up", {}, health.available ? 1.0 : 0.0},
      {"llm_provider_store_reconnects_total", {}, double(reconnects)},
      {"llm_provider_store_commits_total",
       {},
       double(commits - std::exchange(st.store_commits_recorded, commits))}};
  if (!st.cfg.intake_only) // a cluster's queue-wide gauges come from its leader alone
    samples.insert(samples.end(),
                   {{"llm_provider_queue_depth", {"queued"}, queued},
                    {"llm_provider_queue_depth", {"processing"}, processing},
                    {"llm_provider_queue_depth", {"total"}, double(st.entries.size())}});
  record(self, std::move(samples));
}

// Ids finalized longer ago than cfg.adoption_memory can no longer come back from a poll.
void forget_old_finals(self_ptr self, caf::timestamp now) {
  auto& st = self->state;
  while (!st.recent_finals.empty()
         && st.recent_finals.front().first + st.cfg.adoption_memory < now) {
    st.recent_final_ids.erase(st.recent_finals.front().second);
    st.recent_finals.pop_front();
  }
}

void sweep(self_ptr self) {
  auto& st = self->state;
  auto now = st.cfg.now();
  forget_old_finals(self, now);
  release_due_retries(self, now);
  expire_old(self, now);
  for (auto& pending : std::exchange(st.failed_finals, {}))
    submit_final(self, std::move(pending), nullptr);
  for (auto& unread : std::exchange(st.unread_finals, {}))
    finalize_all(self, std::move(unread.finals), std::move(unread.cancel_replies));
  publish_gauges(self);
  wake_waiters(self);
  self->delayed_send(self, st.cfg.tick_interval, atom::sweep_v);
}

// -- cancel --

using final_list = std::vector<std::pair<std::string, comparison_outcome>>;

// Counts one held request into `summary`. A queued one ends like an expired one: a final
// CANCELLED result through finalize_all (stored, counted, called back). It leaves the ready
// queue and the age index at once, so no dequeue or expiry takes it while its result is
// committed; a delayed retry of it is skipped, as it is no longer queued then.
void cancel_entry(self_ptr self, const std::string& id, queue_entry& entry, cancel_summary& summary,
                  final_list& finals) {
  auto& st = self->state;
  if (entry.status == queue_status::processing) {
    ++summary.already_processing;
    return;
  }
  if (entry.status != queue_status::queued) { // final: its result is being committed
    ++summary.already_final;
    return;
  }
  if (!entry.stored) { // not accepted yet (no 202)
    ++summary.not_found;
    return;
  }
  remove_ready(self, entry);
  st.by_age.erase({entry.queued_at, id});
  finals.emplace_back(
      id, queue_failure(self, id, ec::cancelled, "request was cancelled before it was processed"));
  ++summary.cancelled;
}

// Stores the CANCELLED results and answers once they are committed, so a crash after the
// answer cannot bring the requests back.
void finish_cancel(self_ptr self, const cancel_target& target, cancel_summary summary,
                   final_list finals, caf::typed_response_promise<cancel_summary> promise) {
  if (summary.cancelled > 0)
    LPS_LOG_INFO(log(), "queue-manager cancelled {} queued requests ({})", summary.cancelled,
                 target.queue_id.empty() ? "run " + target.bos_batch_id
                                         : "request " + target.queue_id);
  finalize_all(self, std::move(finals), {{std::move(promise), summary}});
}

caf::error store_read_failed(const std::string& error) {
  return caf::make_error(caf::sec::runtime_error, "the store could not be read: " + error);
}

// A run's requests come from the store (cold entries too): its active ones and the count of
// its final results, read at one moment on the reader pool. Each is sorted by its state when
// the answer arrives: one dispatched meanwhile is processing and left to its provider.
void cancel_run(self_ptr self, const cancel_target& target,
                caf::typed_response_promise<cancel_summary> promise) {
  auto run = std::make_shared<run_rows>();
  read_then(
      self, [run, id = target.bos_batch_id](store_reads& db) { *run = db.load_run(id); },
      [self, run, target, promise](bool ok, const std::string& error) mutable {
        if (!ok) {
          promise.deliver(store_read_failed(error));
          return;
        }
        auto& st = self->state;
        cancel_summary summary;
        summary.already_final = run->finals;
        final_list finals;
        for (const auto& id : run->active)
          if (auto i = st.entries.find(id); i != st.entries.end())
            cancel_entry(self, id, i->second, summary, finals);
        finish_cancel(self, target, summary, std::move(finals), std::move(promise));
      });
}

// One request: sorted at once when the queue holds it; otherwise its final result is looked
// for on the reader pool.
void cancel_one(self_ptr self, const cancel_target& target,
                caf::typed_response_promise<cancel_summary> promise) {
  auto& st = self->state;
  const auto& id = target.queue_id;
  if (auto i = st.entries.find(id); i != st.entries.end()) {
    cancel_summary summary;
    final_list finals;
    cancel_entry(self, id, i->second, summary, finals);
    return finish_cancel(self, target, summary, std::move(finals), std::move(promise));
  }
  auto found = std::make_shared<bool>(false);
  read_then(
      self, [found, id](store_reads& db) { *found = db.find_result(id).has_value(); },
      [found, promise](bool ok, const std::string& error) mutable {
        if (!ok) {
          promise.deliver(store_read_failed(error));
          return;
        }
        cancel_summary summary;
        ++(*found ? summary.already_final : summary.not_found);
        promise.deliver(summary);
      });
}

caf::result<cancel_summary> cancel(self_ptr self, const cancel_target& target) {
  // A cluster node holds no queue: its route records cancels for the leader
  // (runtime/cancel_relay) and never asks this queue manager.
  if (self->state.cfg.intake_only)
    return caf::make_error(caf::sec::feature_disabled);
  auto promise = self->make_response_promise<cancel_summary>();
  if (target.queue_id.empty())
    cancel_run(self, target, promise);
  else
    cancel_one(self, target, promise);
  return promise;
}

// -- recovery --

void recover(self_ptr self) {
  auto& st = self->state;
  // Only the scheduling columns are read: every recovered entry starts cold.
  std::vector<std::string> unknown_provider;
  st.db->load_active_index([&](stored_request&& row) {
    if (row.provider.empty()) // schema version 1 rows: the provider is in the payload
      unknown_provider.push_back(row.queue_id);
    auto& entry = insert_entry(self, row.queue_id, std::move(row.provider), row.priority,
                               from_unix_ms(row.queued_at_ms), row.size_bytes, row.attempts);
    if (st.cfg.batch_owned.count(row.queue_id)) {
      // Its batch job resumes it; the job's own expiry applies, not the queue's TTL.
      entry.status = queue_status::processing;
      st.by_age.erase({entry.queued_at, row.queue_id});
      ++st.processing_count;
      ++st.recovered_total;
      return;
    }
    if (entry.provider.empty())
      return;
    make_ready(self, row.queue_id, entry);
    ++st.recovered_total;
  });
  for (const auto& id : unknown_provider) {
    auto& entry = st.entries.at(id);
    if (!hydrate_at_start(self, id, entry)) {
      ++st.unreadable_total;
      st.by_age.erase({entry.queued_at, id});
      st.active_bytes -= entry.size_bytes;
      st.entries.erase(id);
      continue;
    }
    entry.provider = provider_of(self, entry.hot->request);
    make_ready(self, id, entry);
    ++st.recovered_total;
  }
  std::vector<delivery> deliveries;
  for (auto& row : st.db->load_undelivered_results())
    deliveries.push_back({row.queue_id, row.callback_url, std::move(row.event_json), 0});
  if (!st.entries.empty() || !deliveries.empty())
    LPS_LOG_INFO(log(), "queue-manager recovered {} requests and {} undelivered results",
                 st.entries.size(), deliveries.size());
  if (!deliveries.empty() && st.callbacks)
    self->send(st.callbacks, atom::deliver_v, std::move(deliveries));
}

// Cluster leader: rows other nodes stored, as cold entries (as at recovery). Those held
// already, or finalized within cfg.adoption_memory (a poll that read the row before its
// final write), are skipped.
void adopt(self_ptr self, const std::vector<adopted_request>& rows) {
  auto& st = self->state;
  size_t before = st.adopted_total;
  for (const auto& row : rows) {
    if (row.provider.empty() || st.entries.count(row.queue_id)
        || st.recent_final_ids.count(row.queue_id))
      continue;
    auto& entry = insert_entry(self, row.queue_id, row.provider, row.priority,
                               from_unix_ms(row.queued_at_ms), row.size_bytes, row.attempts);
    make_ready(self, row.queue_id, entry);
    ++st.adopted_total;
  }
  if (st.adopted_total == before)
    return;
  // Counts each request once, however many ways it arrived (message, notification, poll).
  record(self, {{"llm_provider_cluster_adopted_total", {}, double(st.adopted_total - before)}});
  wake_waiters(self);
}

// What the queue knows of a held request; `req` gives its correlation id and model.
request_status status_of_entry(self_ptr self, const std::string& id, const queue_entry& entry,
                               const comparison_request& req) {
  request_status result{true,
                        id,
                        req.correlation_id,
                        entry.status,
                        entry.queued_at,
                        entry.attempts,
                        entry.priority,
                        entry.provider,
                        resolved_model(self, entry.provider, req)};
  if (entry.last_failure) {
    result.last_error_code = entry.last_failure->code;
    result.last_error_message = entry.last_failure->message;
  }
  // Only a queued entry with a retry time waits in backoff (a released one has left
  // `delayed` and its time has passed).
  if (entry.status == queue_status::queued && entry.not_before > self->state.cfg.now())
    result.next_attempt_at = entry.not_before;
  return result;
}

// An intake-only node holds nothing: a request it does not hold is looked up in the store
// (on the reader pool), where it waits for (or is being processed by) the leader, whose
// dispatch mark tells `processing` from `queued` (PostgreSQL). The last retryable failure is
// held by the leader's memory alone, so it is not shown here.
caf::result<request_status> lookup_stored(self_ptr self, const std::string& id) {
  auto promise = self->make_response_promise<request_status>();
  auto rows = std::make_shared<std::vector<stored_request>>();
  read_then(
      self, [rows, id](store_reads& db) { *rows = db.load_rows({id}); },
      [self, rows, id, promise](bool ok, const std::string& error) mutable {
        if (!ok)
          LPS_LOG_ERROR(log(), "queue-manager could not read requests from the store: {}", error);
        auto requests = ok ? requests_of(self, *rows, false) : requests_by_id{};
        auto row = requests.find(id);
        if (row == requests.end()) {
          promise.deliver(request_status{});
          return;
        }
        const auto& stored = rows->front();
        const auto& req = row->second.request;
        const auto& provider = provider_of(self, req);
        promise.deliver(request_status{
            true, id, req.correlation_id,
            stored.processing ? queue_status::processing : queue_status::queued, req.queued_at,
            stored.attempts, req.priority, provider, resolved_model(self, provider, req)});
      });
  return promise;
}

// A cold entry's request is read on the reader pool (not kept); the answer shows the entry
// as it is when the read returns. One final by then is not found (its result is committed,
// where the caller looks next). Should the read fail, the answer still says what the queue
// knows, without the correlation id and model: "not found" would tell an idempotent
// resubmission that the request is unknown.
caf::result<request_status> lookup(self_ptr self, const std::string& id) {
  auto& st = self->state;
  auto i = st.entries.find(id);
  if (i == st.entries.end() && st.cfg.intake_only)
    return lookup_stored(self, id);
  if (i == st.entries.end())
    return request_status{};
  if (i->second.hot)
    return status_of_entry(self, id, i->second, i->second.hot->request);
  auto promise = self->make_response_promise<request_status>();
  read_requests(self, {id}, false, [self, id, promise](bool, requests_by_id& rows) mutable {
    auto& st = self->state;
    auto entry = st.entries.find(id);
    if (entry == st.entries.end()) {
      promise.deliver(request_status{});
      return;
    }
    auto row = rows.find(id);
    const auto& req = row != rows.end()   ? row->second.request
                      : entry->second.hot ? entry->second.hot->request
                                          : comparison_request{};
    promise.deliver(status_of_entry(self, id, entry->second, req));
  });
  return promise;
}

/// Waiting requests the inspector's queue table covers at most (oldest first), so a large
/// backlog costs the status answer a bounded walk.
constexpr size_t queue_table_scan_limit = 100'000;

// Counts the waiting requests by provider and model, oldest first, up to the scan limit.
void walk_waiting(self_ptr self) {
  auto& st = self->state;
  st.waiting_walk.clear();
  ++st.queue_table_walks;
  size_t scanned = 0;
  for (const auto& [queued_at, id] : st.by_age) {
    if (++scanned > queue_table_scan_limit)
      break;
    auto i = st.entries.find(id);
    if (i == st.entries.end())
      continue;
    const auto& entry = i->second;
    auto model =
        entry.hot ? resolved_model(self, entry.provider, entry.hot->request) : std::string{};
    auto [group, first] = st.waiting_walk.try_emplace({entry.provider, std::move(model)});
    if (first) // by_age is oldest first: the first request seen is the oldest
      group->second.oldest = queued_at;
    group->second.waiting += 1;
  }
}

// The inspector's "queue" table: waiting requests (queued or waiting for a retry) by
// provider and model, with the oldest one's age. The model of a request whose text is only
// in the store (cold) is unknown until it is dequeued: those rows have model "". The walk is
// made again only when a message other than a status question came since the last one.
std::vector<status_row> waiting_by_provider_and_model(self_ptr self) {
  auto& st = self->state;
  auto others = st.stats.handled - ++st.status_questions;
  if (others != st.waiting_walk_at) {
    walk_waiting(self);
    st.waiting_walk_at = others;
  }
  auto now = st.cfg.now();
  std::vector<status_row> result;
  for (const auto& [key, group] : st.waiting_walk) {
    status_row row;
    row.facts = {{"provider", key.first}, {"model", key.second}};
    row.figures = {
        {"waiting", group.waiting},
        {"oldest_age_seconds", std::chrono::duration<double>(now - group.oldest).count()}};
    result.push_back(std::move(row));
  }
  return result;
}

actor_status status_of(self_ptr self) {
  auto& st = self->state;
  auto result = status_header(self, queue_manager_state::name, "queue_manager", st.stats);
  auto waiting = waiting_by_provider_and_model(self);
  // The inspector asks once a second: the gauges follow at that pace, for one walk.
  record(self, st.waiting_gauges.update(waiting));
  result.tables["queue"] = std::move(waiting);
  result.figures = {
      {"queued", double(st.ready_count)},
      {"retry_waiting", double(st.delayed.size())},
      {"processing", double(st.processing_count)},
      {"active_total", double(st.entries.size())},
      {"active_bytes", double(st.active_bytes)},
      {"text_bytes_in_memory", double(st.text_bytes_in_memory)},
      {"texts_loaded_from_store_total", double(st.texts_loaded_total)},
      {"accepted_total", double(st.accepted_total)},
      {"rejected_total", double(st.rejected_total)},
      {"completed_total", double(st.completed_total)},
      {"failed_total", double(st.failed_total)},
      {"expired_total", double(st.expired_total)},
      {"retried_total", double(st.retried_total)},
      {"recovered_total", double(st.recovered_total)},
      {"adopted_total", double(st.adopted_total)},
      {"store_writes_in_flight", double(st.pending_inserts.size() + st.pending_finals.size())},
      {"store_reads_in_flight", double(st.pending_reads.size())},
      {"queue_table_walks_total", double(st.queue_table_walks)}};
  for (const auto& [provider, queue] : st.ready)
    result.figures["queued_" + provider] = double(queue.size());
  auto stats = st.db->stats();
  result.figures["store_commits"] = double(stats.commits);
  result.figures["store_checkpoints_background"] = double(stats.background_checkpoints);
  result.figures["store_checkpoints_writer"] = double(stats.writer_checkpoints);
  result.figures["store_ops_committed"] = double(stats.ops_committed);
  result.facts = {{"store", st.db->path()},
                  {"draining", st.draining ? "true" : "false"},
                  {"intake_only", st.cfg.intake_only ? "true" : "false"}};
  return result;
}

void on_committed(self_ptr self, uint64_t write_id, bool ok, const std::string& error) {
  auto& st = self->state;
  if (auto i = st.pending_inserts.find(write_id); i != st.pending_inserts.end()) {
    auto pending = std::move(i->second);
    st.pending_inserts.erase(i);
    on_insert_committed(self, pending, ok, error);
  } else if (auto j = st.pending_finals.find(write_id); j != st.pending_finals.end()) {
    auto pending = std::move(j->second);
    st.pending_finals.erase(j);
    on_final_committed(self, pending, ok, error);
  } else if (auto k = st.pending_reads.find(write_id); k != st.pending_reads.end()) {
    auto then = std::move(k->second);
    st.pending_reads.erase(k);
    then(ok, error);
  }
}

// Refuses new requests and flushes the store. What is not final stays stored and runs
// again after the next start (processing requests too: their calls are not waited for).
void drain(self_ptr self) {
  auto& st = self->state;
  st.draining = true;
  st.db->flush();
  auto queued = st.ready_count + st.delayed.size();
  if (queued + st.processing_count > 0) // results waiting for their commit are not put back
    LPS_LOG_INFO(log(),
                 "queue-manager drained: {} queued and {} processing requests are put back "
                 "and run after the next start",
                 queued, st.processing_count);
}

} // namespace

queue_manager_impl_actor::behavior_type
queue_manager(queue_manager_impl_actor::stateful_pointer<queue_manager_state> self,
              queue_manager_config cfg, store* db, metrics_actor metrics,
              callbacks_actor callbacks) {
  auto& st = self->state;
  st.cfg = std::move(cfg);
  st.jitter = jitter_source{st.cfg.jitter_seed};
  st.db = db;
  st.metrics = std::move(metrics);
  st.callbacks = std::move(callbacks);
  if (!st.cfg.intake_only)
    recover(self);
  // The depth gauges exist from the first scrape on, not from the first tick.
  publish_gauges(self);
  self->delayed_send(self, st.cfg.tick_interval, atom::sweep_v);
  return counted(
      self,
      [=](atom::enqueue, std::vector<comparison_request>& reqs)
          -> caf::result<std::vector<enqueue_outcome>> { return enqueue(self, reqs); },
      [=](atom::dequeue, uint32_t max_items,
          const std::vector<std::string>& providers) -> caf::result<std::vector<queued_request>> {
        return dequeue(self, max_items, providers);
      },
      [=](atom::complete, std::vector<comparison_outcome>& outcomes) { complete(self, outcomes); },
      [=](atom::adopt, const std::vector<adopted_request>& rows) { adopt(self, rows); },
      [=](atom::lookup, const std::string& id) -> caf::result<request_status> {
        return lookup(self, id);
      },
      [=](atom::store_committed, uint64_t write_id, bool ok, const std::string& error) {
        on_committed(self, write_id, ok, error);
      },
      [=](atom::sweep) { sweep(self); },
      [=](atom::peek, const std::string& provider) -> queue_backlog {
        return backlog_of(self, provider);
      },
      [=](atom::stop) { self->state.draining = true; },
      [=](atom::accepting) -> bool { return !self->state.draining; },
      [=](atom::cancel, const cancel_target& target) -> caf::result<cancel_summary> {
        return cancel(self, target);
      },
      [=](atom::drain) -> bool {
        drain(self);
        return true;
      },
      [=](atom::status) -> actor_status { return status_of(self); });
}

} // namespace lps
