#include "app/http_api.hpp"
#include "app/config_route.hpp"
#include "app/gateway_routes.hpp"
#include "app/console_routes.hpp"
#include "app/actor_request.hpp"
#include "app/inspect_api.hpp"
#include "app/node_identity.hpp"
#include "app/inspect_nodes.hpp"
#include "actors/batch_window.hpp"
#include "actors/request_timeout.hpp"
#include "runtime/api_bodies.hpp"
#include "runtime/batch_job_store.hpp"
#include "runtime/cancel_relay.hpp"
#include "runtime/error_code.hpp"

#include "runtime/ids.hpp"
#include "runtime/store.hpp"
#include "runtime/store_reader.hpp"
#include "runtime/url.hpp"

#include <caf/typed_event_based_actor.hpp>
#include <caf/send.hpp>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>

namespace lps {

namespace {

// -- responses --

http_response json_response(unsigned status, std::string body) {
  return {status, std::move(body), "application/json", {}};
}

http_response error_response(unsigned status, ec code, std::string_view message,
                             std::string_view correlation_id = {}, std::string_view field = {}) {
  return json_response(status, render_error_body(code, message, correlation_id, field));
}

// Status code of a refused enqueue (CONTRACTS.md section 1).
unsigned status_of_refusal(ec code) {
  if (code == ec::queue_full || code == ec::service_unavailable || code == ec::store_unavailable)
    return 503;
  return 500;
}

http_response refusal_response(const enqueue_outcome& x) {
  // The queue manager and intake write the code with to_string; anything else is ours to fix.
  auto code = parse_error_code(x.error_code).value_or(ec::internal_error);
  auto res = error_response(status_of_refusal(code), code, x.error_message, x.correlation_id);
  if (x.retry_after_seconds > 0)
    res.headers.emplace_back("Retry-After", std::to_string(x.retry_after_seconds));
  return res;
}

// A submission's store write (its idempotency keys) failed: the store is down or failing,
// nothing was acknowledged, and the client may retry.
http_response store_unavailable(std::string_view message, std::string_view correlation_id = {}) {
  auto res = error_response(503, ec::store_unavailable, message, correlation_id);
  res.headers.emplace_back("Retry-After", std::to_string(store_unavailable_retry_after_s));
  return res;
}

// -- llm_provider_requests_rejected_total --

// How many requests the answer of a submission route stands for: 1 until a bulk body has
// been read, then its number of items (an answer refusing the whole body refuses them all).
struct submission_tally {
  size_t requests = 1;
};

void count_rejected(const api_context& ctx, std::map<std::string, double> by_reason) {
  if (!ctx.actors.metrics || by_reason.empty())
    return;
  std::vector<metric_sample> samples;
  for (auto& [reason, count] : by_reason)
    samples.push_back({"llm_provider_requests_rejected_total", {reason}, count});
  caf::anon_send(ctx.actors.metrics, atom::record_v, std::move(samples));
}

// Wraps a submission route's responder: an error answer counts the tally's requests under
// its error code. The refusals of single items in a bulk answer are counted by answer_bulk.
http_responder counting_refusals(const api_context& ctx, std::shared_ptr<submission_tally> tally,
                                 http_responder respond) {
  const auto* c = &ctx; // the context lives as long as the HTTP server
  return [c, tally, respond = std::move(respond)](http_response res) {
    if (res.status >= 400) {
      auto code = json_error_code(res.body);
      count_rejected(*c, {{code.empty() ? "HTTP_" + std::to_string(res.status) : code,
                           double(tally->requests)}});
    }
    respond(std::move(res));
  };
}

// While recovery runs the queue manager answers nothing: a probe or a client gets a quick
// 503 to retry instead of a hang until recovery ends.
http_response while_starting(http_response res) {
  res.headers.emplace_back("Retry-After", "1");
  return res;
}

bool is_json_content_type(const std::string& value) {
  auto semi = value.find(';');
  auto media = value.substr(0, semi);
  while (!media.empty() && media.back() == ' ')
    media.pop_back();
  for (auto& c : media)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return media == "application/json";
}

// Common checks of both submission routes: content type and a body at all.
bool check_submission(const http_request& req, http_responder& respond) {
  if (!is_json_content_type(req.content_type)) {
    respond(
        error_response(415, ec::unsupported_media_type, "Content-Type must be application/json"));
    return false;
  }
  if (req.body.empty()) {
    respond(error_response(400, ec::validation_error, "request body is empty"));
    return false;
  }
  return true;
}

/// Longest Idempotency-Key header value accepted.
constexpr size_t max_idempotency_key_bytes = 255;

// -- what a submission may ask for --

// Why `req` cannot be served, as a field error, or nullopt: the provider it resolves to
// must be configured, and the mock only with MOCK_ALLOWED (so a production run never gets
// mock verdicts by accident). `prefix` is the item's path in a bulk body.
std::optional<field_error> provider_refusal(const config& cfg, const comparison_request& req,
                                            const std::string& prefix = {}) {
  bool overridden = !req.overrides.provider.empty();
  auto provider = overridden ? req.overrides.provider : cfg.default_llm_provider;
  auto source = overridden ? std::string{"provider_override"}
                           : "DEFAULT_LLM_PROVIDER=" + cfg.default_llm_provider;
  auto reason = provider_unavailable_reason(cfg, provider);
  if (reason.empty())
    return std::nullopt;
  field_error result;
  result.field = overridden ? prefix + "llm_config_overrides.provider_override" : prefix;
  result.message = "the request would resolve to provider " + provider + " (" + source
                   + "), which cannot serve it: " + reason;
  return result;
}

// -- idempotent submissions --

// The value of header `name` (lower-case), or "".
std::string header_value(const http_request& req, std::string_view name) {
  for (const auto& [key, value] : req.headers)
    if (key == name)
      return value;
  return "";
}

// The key under which a repeated submission finds the first one: the Idempotency-Key
// header, else (DEDUPE_BY_CORRELATION_ID) the caller's correlation_id; prefixed by the
// client's key name, so clients never see each other's requests. "": none.
std::string idempotency_key(const config& cfg, const std::string& header,
                            const comparison_request& req, const std::string& client) {
  if (!header.empty())
    return client + "\nidempotency-key\n" + header;
  if (cfg.dedupe_by_correlation_id && !req.correlation_id.empty())
    return client + "\ncorrelation-id\n" + req.correlation_id;
  return "";
}

// Hands one request to intake; answers 202 once it is stored, or the refusal.
void enqueue_one(const api_context& ctx, comparison_request request, http_responder respond) {
  auto cid = request.correlation_id;
  ask<std::vector<enqueue_outcome>>(
      ctx, ctx.actors.intake,
      [respond, cid](caf::expected<std::vector<enqueue_outcome>> r) {
        if (!r || r->size() != 1) {
          respond(error_response(503, ec::service_unavailable, "the queue did not answer in time",
                                 cid));
          return;
        }
        const auto& x = r->front();
        respond(x.accepted ? json_response(202, render_accepted(x)) : refusal_response(x));
      },
      atom::submit_v, std::vector<comparison_request>{std::move(request)});
}

// Told whether the write committed (or the read ran), the waiter hands it to `then` and ends.
commit_waiter_actor::behavior_type commit_waiter(commit_waiter_actor::pointer self,
                                                 std::function<void(bool)> then) {
  return {[=](bool ok) {
    then(ok);
    self->quit();
  }};
}

// Why a read that after_read reports as not run did not run.
const std::string reads_refused = "too many store reads are waiting, or lps is stopping";

// The answer when the reader pool refused a read (too many waiting, or stopping).
http_response read_refused(const std::string& why, std::string_view correlation_id = {}) {
  auto res =
      error_response(503, ec::service_unavailable, "store read refused: " + why, correlation_id);
  res.headers.emplace_back("Retry-After", "1");
  return res;
}

// Runs `read` on a reader thread and answers with what it returns there; a refused read is
// answered 503 with Retry-After.
void read_and_respond(const api_context& ctx, std::function<http_response(store_reads&)> read,
                      http_responder respond) {
  ctx.reads->post([read, respond](store_reads& db) { respond(read(db)); },
                  [respond](const std::string& why) { respond(read_refused(why)); });
}

// Runs `read` on a reader thread, then `then(true)` in an actor, as after_commit does with a
// write (what follows a read may ask actors, which spawns); `then(false)` when the pool
// refused the read or stopped before it ran.
void after_read(const api_context& ctx, store_reader::read_fn read,
                std::function<void(bool)> then) {
  auto waiter = ctx.sys->spawn(commit_waiter, std::move(then));
  ctx.reads->post(
      [read = std::move(read), waiter](store_reads& db) {
        read(db);
        caf::anon_send(waiter, true);
      },
      [waiter](const std::string&) { caf::anon_send(waiter, false); });
}

// A key whose request the queue does not hold: 200 with its final result's status, or, when
// it has none either, the request submitted now under the recorded queue id.
void repeat_final_or_enqueue(const api_context& ctx, const std::string& queue_id,
                             comparison_request request, http_responder done) {
  const auto* c = &ctx; // the context lives as long as the HTTP server
  auto stored = std::make_shared<std::optional<stored_result>>();
  after_read(
      ctx, [stored, queue_id](store_reads& db) { *stored = db.find_result(queue_id); },
      [c, stored, queue_id, request, done](bool ok) mutable {
        if (!ok)
          return done(read_refused(reads_refused, request.correlation_id));
        if (*stored)
          return done(json_response(
              200, render_repeat(queue_id, (*stored)->status,
                                 json_string_field((*stored)->event_json, "correlation_id"))));
        request.queue_id = queue_id;
        enqueue_one(*c, std::move(request), std::move(done));
      });
}

// A key already recorded: 200 with the first request's queue id and status. A key whose
// request was never stored (refused, or a crash before its commit) submits it now under
// that queue id.
void answer_repeat(const api_context& ctx, const std::string& queue_id, comparison_request request,
                   http_responder done) {
  const auto* c = &ctx; // the context lives as long as the HTTP server
  ask<request_status>(
      ctx, ctx.actors.queue,
      [c, queue_id, request, done](caf::expected<request_status> r) mutable {
        if (r && r->found)
          return done(
              json_response(200, render_repeat(queue_id, to_string(r->status), r->correlation_id)));
        repeat_final_or_enqueue(*c, queue_id, std::move(request), std::move(done));
      },
      atom::lookup_v, queue_id);
}

// Runs `then(ok)` in an actor once the store has committed `write` (or failed). Store
// callbacks run on the store's writer thread, and actors spawned there kept the actor system
// from ever finishing its shutdown (seen through the binary), so the callback only sends.
void after_commit(const api_context& ctx, store_write write, std::function<void(bool)> then) {
  auto waiter = ctx.sys->spawn(commit_waiter, std::move(then));
  ctx.db->submit(std::move(write),
                 [waiter](bool ok, const std::string&) { caf::anon_send(waiter, ok); });
}

// A new key: recorded with a new queue id, then its request submitted under it.
void record_key_and_enqueue(const api_context& ctx, const std::string& key,
                            std::shared_ptr<comparison_request> shared, http_responder done) {
  const auto* c = &ctx; // the context lives as long as the HTTP server
  auto queue_id = new_uuid();
  store_write write;
  write.idempotency_keys = {{key, queue_id}};
  after_commit(ctx, std::move(write), [c, queue_id, shared, done](bool ok) {
    if (!ok)
      return done(store_unavailable("the Idempotency-Key was not stored; retry later",
                                    shared->correlation_id));
    shared->queue_id = queue_id;
    enqueue_one(*c, std::move(*shared), done);
  });
}

// The key is stored with the queue id before the request, so a crash in between leaves a
// key whose request answer_repeat stores later, never a request a retry would duplicate.
void submit_idempotent(const api_context& ctx, std::string key, comparison_request request,
                       http_responder respond) {
  auto gate = ctx.idempotency;
  // Leaving the gate with the answer lets the next submission of the key in.
  http_responder done = [gate, key, respond](http_response r) {
    respond(std::move(r));
    gate->leave(key);
  };
  const auto* c = &ctx; // the context lives as long as the HTTP server
  auto shared = std::make_shared<comparison_request>(std::move(request));
  gate->enter(key, [c, key, shared, done] {
    auto recorded = std::make_shared<std::optional<std::string>>();
    after_read(
        *c, [recorded, key](store_reads& db) { *recorded = db.find_idempotency_key(key); },
        [c, key, recorded, shared, done](bool ok) {
          if (!ok)
            return done(read_refused(reads_refused, shared->correlation_id));
          if (*recorded)
            return answer_repeat(*c, **recorded, *shared, done);
          record_key_and_enqueue(*c, key, shared, done);
        });
  });
}

// -- routes --

void submit_one(const api_context& ctx, http_request&& req, const std::string& client,
                http_responder respond) {
  if (!check_submission(req, respond))
    return;
  comparison_request parsed;
  field_error err;
  if (!parse_comparison_request(req.body, ctx.limits, parsed, err)) {
    respond(error_response(400, err.code, err.message, {}, err.field));
    return;
  }
  if (auto refusal = provider_refusal(ctx.cfg, parsed)) {
    respond(error_response(400, refusal->code, refusal->message, parsed.correlation_id,
                           refusal->field));
    return;
  }
  auto header = header_value(req, "idempotency-key");
  if (header.size() > max_idempotency_key_bytes)
    return respond(
        error_response(400, ec::validation_error,
                       "must be at most " + std::to_string(max_idempotency_key_bytes) + " bytes",
                       parsed.correlation_id, "Idempotency-Key"));
  auto key = idempotency_key(ctx.cfg, header, parsed, client);
  if (key.empty())
    return enqueue_one(ctx, std::move(parsed), std::move(respond));
  submit_idempotent(ctx, std::move(key), std::move(parsed), std::move(respond));
}

// A bulk submission of which nothing was accepted because the queue is full or the store
// unavailable is answered as a whole (503 with Retry-After), so a client backs off instead
// of reading 202.
std::optional<enqueue_outcome>
nothing_accepted_retry_later(const std::vector<enqueue_outcome>& xs) {
  auto full = [](const enqueue_outcome& x) {
    return !x.accepted
           && (x.error_code == to_string(ec::queue_full)
               || x.error_code == to_string(ec::store_unavailable));
  };
  if (xs.empty() || !std::all_of(xs.begin(), xs.end(), full))
    return std::nullopt;
  return *std::max_element(xs.begin(), xs.end(), [](const auto& a, const auto& b) {
    return a.retry_after_seconds < b.retry_after_seconds;
  });
}

// -- idempotent bulk submissions --

// A valid bulk item not answered yet: its position in the body, its idempotency key ("":
// none) and the request (its queue_id set once the key has one).
struct bulk_pending {
  size_t position = 0;
  std::string key;
  comparison_request request;
};

// One bulk submission on its way: the answer by position, the items still to submit, and
// items whose key an earlier item of the same body already holds (position, that item's).
struct bulk_submission {
  std::vector<bulk_entry> entries;
  std::vector<bulk_pending> pending;
  std::vector<std::pair<size_t, size_t>> copies;
  bool any_repeat = false;
};

// The key of a bulk item: `<Idempotency-Key>#<position>` in a namespace of its own (so a
// single submission's key never meets a bulk item's), else its correlation_id as on the
// single route (DEDUPE_BY_CORRELATION_ID), else "".
std::string bulk_item_key(const config& cfg, const std::string& header, size_t position,
                          const comparison_request& req, const std::string& client) {
  if (!header.empty())
    return client + "\nbulk-idempotency-key\n" + header + "#" + std::to_string(position);
  return idempotency_key(cfg, {}, req, client);
}

// The keys a bulk submission holds in the gate while it runs: the header's one key, else
// every item's key, sorted and unique.
std::vector<std::string> bulk_gate_keys(const std::string& header, const bulk_submission& bulk,
                                        const std::string& client) {
  if (!header.empty())
    return {client + "\nbulk-idempotency-key\n" + header};
  std::vector<std::string> keys;
  for (const auto& item : bulk.pending)
    if (!item.key.empty())
      keys.push_back(item.key);
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  return keys;
}

// Enters the gate for each of `keys` from `next` on, then runs `work`. Sorted keys give
// every submission the same order, so two never each hold a key the other waits for; a
// loop rather than recursion keeps thousands of free keys off the stack.
void enter_all(std::shared_ptr<idempotency_gate> gate,
               std::shared_ptr<const std::vector<std::string>> keys, size_t next,
               std::function<void()> work) {
  for (; next < keys->size(); ++next) {
    // Whoever comes second goes on: this loop if the key was free (the callback ran inside
    // enter), else the callback once the key is left to it.
    auto state = std::make_shared<std::atomic<int>>(0); // 1: callback ran, 2: enter returned
    gate->enter((*keys)[next], [gate, keys, next, work, state] {
      if (state->exchange(1) == 2)
        enter_all(gate, keys, next + 1, work);
    });
    if (state->exchange(2) == 0)
      return;
  }
  work();
}

// Moves items that share a key with an earlier item of the body to `copies`: they get
// that item's answer instead of a request of their own.
void fold_duplicate_keys(bulk_submission& bulk) {
  std::map<std::string, size_t> first;
  std::vector<bulk_pending> kept;
  for (auto& item : bulk.pending) {
    if (item.key.empty() || first.try_emplace(item.key, item.position).second)
      kept.push_back(std::move(item));
    else
      bulk.copies.emplace_back(item.position, first[item.key]);
  }
  bulk.pending = std::move(kept);
}

// The items of a bulk submission whose key was recorded, while their requests are looked up
// (in the queue, then among the final results).
struct recorded_lookup {
  std::shared_ptr<bulk_submission> bulk;
  /// Indexes into bulk->pending.
  std::vector<size_t> recorded;
  /// By slot of `recorded`: the repeat's answer and status, once found.
  std::vector<std::optional<enqueue_outcome>> found;
  std::vector<std::string> statuses;
  /// Queue lookups not answered yet.
  std::atomic<size_t> left{0};
  /// Runs last: false when the store refused a read.
  std::function<void(bool)> then;
};

// Answers the found items as repeats and drops them from `pending`, then runs `then(true)`.
void settle_lookup(recorded_lookup& x) {
  auto& bulk = *x.bulk;
  std::vector<bool> answered(bulk.pending.size(), false);
  for (size_t j = 0; j < x.recorded.size(); ++j) {
    if (!x.found[j])
      continue;
    auto& entry = bulk.entries[bulk.pending[x.recorded[j]].position];
    entry.accepted = true;
    entry.outcome = std::move(*x.found[j]);
    entry.status = x.statuses[j];
    answered[x.recorded[j]] = true;
    bulk.any_repeat = true;
  }
  std::vector<bulk_pending> kept;
  for (size_t k = 0; k < bulk.pending.size(); ++k)
    if (!answered[k])
      kept.push_back(std::move(bulk.pending[k]));
  bulk.pending = std::move(kept);
  x.then(true);
}

// Reads the final results of the recorded items the queue does not hold, then settles.
void read_recorded_finals(const api_context& ctx, std::shared_ptr<recorded_lookup> x) {
  if (std::all_of(x->found.begin(), x->found.end(), [](const auto& y) { return y.has_value(); }))
    return settle_lookup(*x);
  after_read(
      ctx,
      [x](store_reads& db) {
        for (size_t j = 0; j < x->recorded.size(); ++j) {
          if (x->found[j])
            continue;
          auto queue_id = x->bulk->pending[x->recorded[j]].request.queue_id;
          if (auto stored = db.find_result(queue_id)) {
            x->found[j] = enqueue_outcome{
                true, queue_id, json_string_field(stored->event_json, "correlation_id"), {}, {}, 0};
            x->statuses[j] = stored->status;
          }
        }
      },
      [x](bool ok) { ok ? settle_lookup(*x) : x->then(false); });
}

// Asks the queue for each recorded item's request; the last answer goes on to the finals.
void ask_recorded(const api_context& ctx, std::shared_ptr<recorded_lookup> x) {
  auto n = x->recorded.size();
  x->found.resize(n);
  x->statuses.resize(n);
  x->left = n;
  const auto* c = &ctx; // the context lives as long as the HTTP server
  for (size_t j = 0; j < n; ++j) {
    auto queue_id = x->bulk->pending[x->recorded[j]].request.queue_id;
    ask<request_status>(
        ctx, ctx.actors.queue,
        [c, j, queue_id, x](caf::expected<request_status> r) {
          if (r && r->found) {
            x->found[j] = enqueue_outcome{true, queue_id, r->correlation_id, {}, {}, 0};
            x->statuses[j] = to_string(r->status);
          }
          if (x->left.fetch_sub(1) == 1)
            read_recorded_finals(*c, x);
        },
        atom::lookup_v, queue_id);
  }
}

// Answers every item whose key was recorded and whose request is held or has a result as a
// repeat (its first queue id and current status) and drops it from `pending`; an item whose
// key was recorded but whose request was never stored (refused, or a crash before its
// commit) stays, to be submitted under the recorded queue id. Then runs `then(true)`, or
// `then(false)` when the store refused a read.
void settle_recorded(const api_context& ctx, std::shared_ptr<bulk_submission> bulk,
                     std::function<void(bool)> then) {
  auto keyed = std::any_of(bulk->pending.begin(), bulk->pending.end(),
                           [](const bulk_pending& item) { return !item.key.empty(); });
  if (!keyed)
    return then(true);
  auto x = std::make_shared<recorded_lookup>();
  x->bulk = std::move(bulk);
  x->then = std::move(then);
  const auto* c = &ctx; // the context lives as long as the HTTP server
  after_read(
      ctx,
      [x](store_reads& db) {
        auto& pending = x->bulk->pending;
        for (size_t k = 0; k < pending.size(); ++k) {
          if (pending[k].key.empty())
            continue;
          if (auto queue_id = db.find_idempotency_key(pending[k].key)) {
            pending[k].request.queue_id = *queue_id;
            x->recorded.push_back(k);
          }
        }
      },
      [c, x](bool ok) {
        if (!ok)
          return x->then(false);
        if (x->recorded.empty())
          return x->then(true);
        ask_recorded(*c, x);
      });
}

// Gives every keyed item still without a queue id a new one and records all those keys in
// one commit before their requests are stored (as the single route does), then runs
// `then(ok)`.
void record_new_keys(const api_context& ctx, bulk_submission& bulk,
                     std::function<void(bool)> then) {
  store_write write;
  for (auto& item : bulk.pending) {
    if (item.key.empty() || !item.request.queue_id.empty())
      continue;
    item.request.queue_id = new_uuid();
    write.idempotency_keys.emplace_back(item.key, item.request.queue_id);
  }
  if (write.idempotency_keys.empty())
    return then(true);
  after_commit(ctx, std::move(write), std::move(then));
}

// The answer: 200 when this submission created nothing and repeated at least one item,
// else 202; items folded onto an earlier one of the body get its entry.
void answer_bulk(const api_context& ctx, bulk_submission& bulk, bool created,
                 const http_responder& respond) {
  for (auto [position, source] : bulk.copies)
    bulk.entries[position] = bulk.entries[source];
  std::map<std::string, double> refused;
  for (const auto& entry : bulk.entries)
    if (!entry.accepted)
      ++refused[entry.error.message.empty() ? entry.outcome.error_code
                                            : std::string{to_string(entry.error.code)}];
  count_rejected(ctx, std::move(refused));
  auto code = !created && bulk.any_repeat ? 200 : 202;
  respond(json_response(code, render_bulk_accepted(bulk.entries)));
}

// Stores the pending items in one intake call and answers for the whole submission.
void enqueue_bulk(const api_context& ctx, std::shared_ptr<bulk_submission> bulk,
                  http_responder respond) {
  if (bulk->pending.empty())
    return answer_bulk(ctx, *bulk, false, respond);
  std::vector<comparison_request> requests;
  for (auto& item : bulk->pending)
    requests.push_back(std::move(item.request));
  ask<std::vector<enqueue_outcome>>(
      ctx, ctx.actors.intake,
      [c = &ctx, respond, bulk](caf::expected<std::vector<enqueue_outcome>> r) {
        if (!r || r->size() != bulk->pending.size()) {
          respond(error_response(503, ec::service_unavailable, "the queue did not answer in time"));
          return;
        }
        auto full = nothing_accepted_retry_later(*r);
        if (full && !bulk->any_repeat)
          return respond(refusal_response(*full));
        bool created = false;
        for (size_t k = 0; k < bulk->pending.size(); ++k) {
          auto& entry = bulk->entries[bulk->pending[k].position];
          entry.accepted = (*r)[k].accepted;
          entry.outcome = std::move((*r)[k]);
          created = created || entry.accepted;
        }
        answer_bulk(*c, *bulk, created, respond);
      },
      atom::submit_v, std::move(requests));
}

// Inside the gate: repeats answered, new keys recorded, the rest stored.
void submit_bulk_idempotent(const api_context& ctx, std::shared_ptr<bulk_submission> bulk,
                            std::vector<std::string> gate_keys, http_responder respond) {
  auto gate = ctx.idempotency;
  auto keys = std::make_shared<const std::vector<std::string>>(std::move(gate_keys));
  // Leaving the gate with the answer lets the next submission of these keys in.
  http_responder done = [gate, keys, respond](http_response r) {
    respond(std::move(r));
    for (const auto& key : *keys)
      gate->leave(key);
  };
  const auto* c = &ctx; // the context lives as long as the HTTP server
  enter_all(gate, keys, 0, [c, bulk, done] {
    settle_recorded(*c, bulk, [c, bulk, done](bool read) {
      if (!read)
        return done(read_refused(reads_refused));
      record_new_keys(*c, *bulk, [c, bulk, done](bool ok) {
        if (!ok)
          return done(store_unavailable("the idempotency keys were not stored; retry later"));
        enqueue_bulk(*c, bulk, done);
      });
    });
  });
}

void submit_many(const api_context& ctx, http_request&& req, const std::string& client,
                 submission_tally& tally, http_responder respond) {
  if (!check_submission(req, respond))
    return;
  auto header = header_value(req, "idempotency-key");
  if (header.size() > max_idempotency_key_bytes)
    return respond(
        error_response(400, ec::validation_error,
                       "must be at most " + std::to_string(max_idempotency_key_bytes) + " bytes",
                       {}, "Idempotency-Key"));
  std::vector<bulk_item> items;
  field_error err;
  if (!parse_comparison_batch(req.body, ctx.limits, items, err)) {
    if (err.code == ec::payload_too_large)
      return respond(
          error_response(413, err.code, err.message + " (raise BULK_MAX_REQUESTS)", {}, err.field));
    respond(error_response(400, err.code, err.message, {}, err.field));
    return;
  }
  for (size_t i = 0; i < items.size(); ++i) {
    if (!items[i].ok)
      continue;
    auto prefix = "requests[" + std::to_string(i) + "].";
    if (auto refusal = provider_refusal(ctx.cfg, items[i].request, prefix)) {
      items[i].ok = false;
      items[i].error = std::move(*refusal);
    }
  }
  tally.requests = items.size();
  auto bulk = std::make_shared<bulk_submission>();
  bulk->entries.resize(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    if (items[i].ok) {
      auto key = bulk_item_key(ctx.cfg, header, i, items[i].request, client);
      bulk->pending.push_back({i, std::move(key), std::move(items[i].request)});
    } else {
      bulk->entries[i].error = std::move(items[i].error);
    }
  }
  if (bulk->pending.empty())
    return answer_bulk(ctx, *bulk, false, respond);
  fold_duplicate_keys(*bulk);
  auto gate_keys = bulk_gate_keys(header, *bulk, client);
  if (gate_keys.empty())
    return enqueue_bulk(ctx, std::move(bulk), std::move(respond));
  submit_bulk_idempotent(ctx, std::move(bulk), std::move(gate_keys), std::move(respond));
}

// The windows of the providers whose batch jobs run nightly, by provider.
std::map<std::string, batch_window> nightly_windows(const api_context& ctx) {
  std::map<std::string, batch_window> result;
  for (const auto& [name, mode] : batch_providers(ctx.cfg))
    if (mode == batch_api_mode::nightly && ctx.actors.batch.count(name))
      result[name] = parse_batch_window(ctx.cfg.batch_api_nightly_window);
  return result;
}

// The window a queued request of a nightly batch provider may have its job submitted in (the
// open one, else the next); none for any other request.
std::optional<submission_window>
submission_window_of(const request_status& status,
                     const std::map<std::string, batch_window>& nightly) {
  auto window = nightly.find(status.provider);
  if (status.status != queue_status::queued || window == nightly.end())
    return std::nullopt;
  auto now = caf::make_timestamp();
  auto times = next_batch_window(window->second, now, local_minute_of_day(now));
  if (!times)
    return std::nullopt;
  return submission_window{times->opens_at, times->closes_at};
}

// A cluster node's queue answered from the store; the leader's queue adds the last retryable
// failure and the next attempt time (and its own view of queued or processing). A leader
// that does not hold the request (not taken in yet, or just finished) has nothing to add; one
// that does not answer in time leaves the store's answer, saying what it lacks.
void respond_with_leader_status(const api_context& ctx, request_status stored,
                                std::map<std::string, batch_window> nightly,
                                http_responder respond) {
  ask_within<request_status>(
      ctx, ctx.leader_timeout, ctx.cluster_node,
      [stored, nightly, respond](caf::expected<request_status> r) {
        const auto& shown = r && r->found ? *r : stored;
        auto window = submission_window_of(shown, nightly);
        if (r)
          return respond(json_response(200, render_status(shown, window)));
        respond(json_response(
            200, render_status_without_leader(
                     shown, window,
                     "the leader did not answer (" + caf::to_string(r.error())
                         + "): its last retryable failure and next attempt time are unknown "
                           "here")));
      },
      atom::leader_v, atom::lookup_v, stored.queue_id);
}

// Held requests are answered by the queue manager (in a cluster, the leader's); final ones
// come from the store.
void get_status(const api_context& ctx, const std::string& id, http_responder respond) {
  const auto* c = &ctx; // the context lives as long as the HTTP server
  ask<request_status>(
      ctx, ctx.actors.queue,
      [c, respond, id, nightly = nightly_windows(ctx)](caf::expected<request_status> r) {
        if (r && r->found && c->cluster_node)
          return respond_with_leader_status(*c, std::move(*r), nightly, respond);
        if (r && r->found)
          return respond(json_response(200, render_status(*r, submission_window_of(*r, nightly))));
        read_and_respond(
            *c,
            [id](store_reads& db) {
              if (auto stored = db.find_result(id))
                return json_response(200, render_final_status(*stored));
              return error_response(404, ec::resource_not_found, "no request with queue_id " + id);
            },
            respond);
      },
      atom::lookup_v, id);
}

// A final result is answered from the reader thread; otherwise the queue manager says
// whether the request is held.
void get_result(const api_context& ctx, const std::string& id, http_responder respond) {
  auto stored = std::make_shared<std::optional<stored_result>>();
  const auto* c = &ctx; // the context lives as long as the HTTP server
  after_read(
      ctx, [stored, id](store_reads& db) { *stored = db.find_result(id); },
      [c, stored, id, respond](bool ok) {
        if (!ok)
          return respond(read_refused(reads_refused));
        if (*stored)
          return respond(json_response(200, std::move((*stored)->event_json)));
        ask<request_status>(
            *c, c->actors.queue,
            [respond, id](caf::expected<request_status> r) {
              if (r && r->found) {
                respond(json_response(202, render_pending_result(id, to_string(r->status))));
              } else {
                respond(
                    error_response(404, ec::resource_not_found, "no request with queue_id " + id));
              }
            },
            atom::lookup_v, id);
      });
}

// The bundler's status of provider `name`; a provider it does not report is closed, idle and
// not paused.
provider_status status_of(const std::vector<provider_status>& live, const std::string& name) {
  for (const auto& x : live)
    if (x.name == name)
      return x;
  provider_status result;
  result.name = name;
  return result;
}

// What the operator reads about a paused provider, or "" when it is not paused.
std::string pause_reason(const provider_status& x) {
  if (x.paused_by.empty())
    return "";
  return x.paused_by + ": fix the key, then POST /api/v1/providers/" + x.name + "/resume";
}

// Per provider: configuration (never the key) plus the bundler's live view: breaker state,
// whether a rejected key paused it, bundles in flight, and how long its breaker or rate
// limit blocks it.
std::vector<provider_report> provider_reports(const config& cfg,
                                              const std::vector<provider_status>& live) {
  auto report = [&](const std::string& name, bool configured, const std::string& model) {
    auto x = status_of(live, name);
    return provider_report{name,
                           configured,
                           model,
                           x.circuit_state,
                           pause_reason(x),
                           x.inflight_bundles,
                           x.blocked_for.count(),
                           provider_unavailable_reason(cfg, name)};
  };
  std::vector<provider_report> result{report("mock", true, cfg.mock.default_model)};
  for (const auto& [name, p] : cfg.providers)
    result.push_back(report(name, !p.api_key.empty(), p.default_model));
  return result;
}

// This node's bundler's view of the providers (in a cluster an idle one: the leader's
// bundler calls them), marked as this node's when `source` names it.
void respond_with_own_providers(const api_context& ctx, provider_state_source source,
                                http_responder respond) {
  auto cfg = std::make_shared<config>(ctx.cfg);
  ask<std::vector<provider_status>>(
      ctx, ctx.actors.bundler,
      [respond, cfg, source](caf::expected<std::vector<provider_status>> r) {
        std::vector<provider_status> live;
        if (r)
          live = std::move(*r);
        respond(json_response(200, render_providers(cfg->default_llm_provider,
                                                    provider_reports(*cfg, live), source)));
      },
      atom::providers_v);
}

// The leader's providers (any node of a cluster), labelled with the node that answered; this
// node's own when the leader does not answer in time.
void get_providers(const api_context& ctx, http_responder respond) {
  if (!ctx.cluster_node)
    return respond_with_own_providers(ctx, {}, respond);
  auto shared = std::make_shared<api_context>(ctx);
  ask_within<leader_providers>(
      ctx, ctx.leader_timeout, ctx.cluster_node,
      [shared, respond](caf::expected<leader_providers> r) {
        if (!r)
          return respond_with_own_providers(*shared, {this_node_name(shared->cfg), false}, respond);
        respond(json_response(200, render_providers(shared->cfg.default_llm_provider,
                                                    provider_reports(shared->cfg, r->providers),
                                                    {r->node, true})));
      },
      atom::leader_v, atom::providers_v);
}

// Which providers can serve requests (a provider without a key is not a failing check:
// requests for it are refused at submission, and the note says how to configure it).
std::vector<health_provider> health_providers(const config& cfg) {
  std::vector<health_provider> result{{"mock", true, provider_unavailable_reason(cfg, "mock")}};
  for (const auto& [name, p] : cfg.providers)
    result.push_back({name, !p.api_key.empty(), provider_unavailable_reason(cfg, name)});
  return result;
}

// One warning per provider paused by a rejected key.
std::vector<std::string> pause_warnings(const config& cfg,
                                        const caf::expected<std::vector<provider_status>>& live) {
  std::vector<std::string> result;
  if (!live)
    return result;
  auto add = [&](const std::string& name) {
    if (auto reason = pause_reason(status_of(*live, name)); !reason.empty())
      result.push_back("provider " + name + " is paused: " + reason);
  };
  add("mock");
  for (const auto& [name, p] : cfg.providers)
    add(name);
  return result;
}

void report_health(const api_context& ctx, std::vector<std::string> paused, http_responder respond,
                   provider_state_source source = {});

// A cluster node's pauses are the leader's (its bundler calls the providers); a leader that
// does not answer in time is a warning, not a failed check (requests are still stored).
void get_cluster_health(const api_context& ctx, http_responder respond) {
  auto shared = std::make_shared<api_context>(ctx);
  ask_within<leader_providers>(
      ctx, ctx.leader_timeout, ctx.cluster_node,
      [shared, respond](caf::expected<leader_providers> r) {
        if (r)
          return report_health(*shared, pause_warnings(shared->cfg, r->providers), respond,
                               {r->node, true});
        report_health(*shared,
                      {"the providers' state is unknown: the leader did not answer ("
                       + caf::to_string(r.error()) + ")"},
                      respond, {this_node_name(shared->cfg), false});
      },
      atom::leader_v, atom::providers_v);
}

// A paused provider does not take the node out of a load balancer (other providers still
// work and its requests wait safely): /healthz stays 200 and says "degraded".
void get_health(const api_context& ctx, http_responder respond) {
  if (ctx.starting->load())
    return respond(while_starting(json_response(503, render_health_starting())));
  if (ctx.cluster_node)
    return get_cluster_health(ctx, respond);
  auto shared = std::make_shared<api_context>(ctx);
  ask<std::vector<provider_status>>(
      ctx, ctx.actors.bundler,
      [shared, respond](caf::expected<std::vector<provider_status>> r) {
        report_health(*shared, pause_warnings(shared->cfg, r), respond);
      },
      atom::providers_v);
}

// The configuration half of /healthz; the queue manager's answer completes it.
health_report configured_health(const api_context& ctx, std::vector<std::string> paused) {
  health_report result;
  result.providers = health_providers(ctx.cfg);
  result.configured_mode = to_string(ctx.cfg.processing_mode);
  result.effective_mode =
      ctx.actors.batch.empty() ? to_string(effective_mode(ctx.cfg)) : result.configured_mode;
  if (result.configured_mode != result.effective_mode)
    result.warnings.push_back("QUEUE_PROCESSING_MODE=" + result.configured_mode
                              + " but no provider uses a batch API (set "
                                "OPENAI_BATCH_API_MODE or ANTHROPIC_BATCH_API_MODE and the "
                                "provider's key): requests are processed as "
                              + result.effective_mode);
  if (auto mock_warning = mock_default_warning(ctx.cfg); !mock_warning.empty())
    result.warnings.push_back(std::move(mock_warning));
  result.warnings.insert(result.warnings.end(), paused.begin(), paused.end());
  return result;
}

// The store check of /healthz: it takes writes (a PostgreSQL store that lost its database
// says why and since when in a warning; its writer probes it while idle) and answers a read,
// made on the reader pool like every route's.
bool store_answers(const store_health& health, store_reads& db,
                   std::vector<std::string>& warnings) {
  if (!health.available) {
    auto since = caf::timestamp{std::chrono::milliseconds{health.unavailable_since_ms}};
    warnings.push_back("store unavailable: " + health.last_error + " (since " + iso8601(since)
                       + "; lps is reconnecting)");
    return false;
  }
  try {
    db.find_result("healthz-probe");
    return true;
  } catch (...) {
    return false;
  }
}

http_response health_response(health_report report, bool degraded, bool store_ok,
                              caf::expected<bool> accepting) {
  report.store_ok = store_ok;
  report.queue_manager_ok = static_cast<bool>(accepting);
  bool healthy = report.queue_manager_ok && report.store_ok;
  auto draining = accepting && !*accepting;
  report.accepting_requests = !draining;
  report.status = draining   ? "draining"
                  : !healthy ? "unhealthy"
                  : degraded ? "degraded"
                             : "healthy";
  return json_response(healthy && !draining ? 200 : 503, render_health(report));
}

void report_health(const api_context& ctx, std::vector<std::string> paused, http_responder respond,
                   provider_state_source source) {
  auto degraded = !paused.empty();
  auto configured = configured_health(ctx, std::move(paused));
  configured.provider_state = std::move(source);
  auto* db = ctx.db;
  auto* reads = ctx.reads;
  ask<bool>(
      ctx, ctx.actors.queue,
      [respond, configured, degraded, db, reads](caf::expected<bool> accepting) {
        auto health = db->health();
        reads->post(
            [=](store_reads& r) {
              auto report = configured;
              auto ok = store_answers(health, r, report.warnings);
              respond(health_response(std::move(report), degraded, ok, accepting));
            },
            [=](const std::string& why) {
              auto report = configured;
              report.warnings.push_back("store read refused: " + why);
              respond(health_response(std::move(report), degraded, false, accepting));
            });
      },
      atom::accepting_v);
}

void get_metrics(const api_context& ctx, http_responder respond) {
  flush_gateway_metrics(ctx); // sent before the render question, so counted in it
  ask<std::string>(
      ctx, ctx.actors.metrics,
      [respond](caf::expected<std::string> r) {
        if (!r) {
          respond(error_response(503, ec::service_unavailable, "metrics did not answer"));
          return;
        }
        respond({200, std::move(*r), "text/plain; version=0.0.4; charset=utf-8", {}});
      },
      atom::render_v);
}

void get_inspect(const api_context& ctx, http_responder respond) {
  ask<std::vector<actor_status>>(
      ctx, ctx.actors.inspector,
      [respond](caf::expected<std::vector<actor_status>> r) {
        if (!r) {
          respond(error_response(503, ec::service_unavailable, "the inspector did not answer"));
          return;
        }
        respond(json_response(200, render_inspection(*r)));
      },
      atom::inspect_v);
}

// -- provider batch jobs --

// The batch job routes read on a reader thread of the pool, not on the I/O thread, through
// that thread's own batch job store connection (store_reader::post_jobs): never the
// connection the batch jobs actors write through, nor one shared by the reader threads.
// A read the pool refuses is answered 503 with Retry-After.
void read_jobs_and_respond(const api_context& ctx,
                           std::function<http_response(batch_job_store&)> read,
                           http_responder respond) {
  ctx.reads->post_jobs([read, respond](batch_job_store& jobs) { respond(read(jobs)); },
                       [respond](const std::string& why) { respond(read_refused(why)); });
}

void get_batch_jobs(const api_context& ctx, http_responder respond) {
  read_jobs_and_respond(
      ctx,
      [](batch_job_store& jobs) { return json_response(200, render_batch_jobs(jobs.list(1000))); },
      std::move(respond));
}

http_response no_batch_job(const std::string& id) {
  return error_response(404, ec::resource_not_found, "no batch job " + id);
}

void get_batch_job(const api_context& ctx, const std::string& id, http_responder respond) {
  read_jobs_and_respond(
      ctx,
      [id](batch_job_store& jobs) {
        auto job = jobs.find(id);
        return job ? json_response(200, render_batch_job(*job)) : no_batch_job(id);
      },
      std::move(respond));
}

void ask_batch_jobs_to_cancel(const api_context& ctx, const batch_job_record& job,
                              http_responder respond);

// The job's batch actor asks the provider to cancel; items finish as the provider reports
// them (those it did not run end CANCELLED). The job is read first (on a reader thread).
void cancel_batch_job(const api_context& ctx, const std::string& id, http_responder respond) {
  const auto* c = &ctx; // the context lives as long as the HTTP server
  auto job = std::make_shared<std::optional<batch_job_record>>();
  auto waiter =
      ctx.sys->spawn(commit_waiter, std::function<void(bool)>{[c, job, id, respond](bool ok) {
                       if (!ok)
                         return respond(read_refused(reads_refused));
                       if (!*job)
                         return respond(no_batch_job(id));
                       ask_batch_jobs_to_cancel(*c, **job, respond);
                     }});
  ctx.reads->post_jobs(
      [job, id, waiter](batch_job_store& jobs) {
        *job = jobs.find(id);
        caf::anon_send(waiter, true);
      },
      [waiter](const std::string&) { caf::anon_send(waiter, false); });
}

void ask_batch_jobs_to_cancel(const api_context& ctx, const batch_job_record& job,
                              http_responder respond) {
  auto actor = ctx.actors.batch.find(job.provider);
  if (actor == ctx.actors.batch.end())
    return respond(error_response(409, ec::invalid_request,
                                  "batch jobs of " + job.provider + " are not running now"));
  auto id = job.job_id;
  ask<std::string>(
      ctx, actor->second,
      [respond, id](caf::expected<std::string> r) {
        if (!r)
          return respond(error_response(503, ec::service_unavailable, "batch jobs did not answer"));
        if (!r->empty())
          return respond(error_response(409, ec::invalid_request, *r));
        respond(json_response(202, render_cancel_requested(id)));
      },
      atom::cancel_v, id);
}

// The operator fixed the key of a paused provider: its queued requests flow again at once.
void resume_provider(const api_context& ctx, const std::string& name, http_responder respond) {
  if (name != "mock" && ctx.cfg.providers.count(name) == 0)
    return respond(error_response(404, ec::resource_not_found, "no provider " + name));
  ask<bool>(
      ctx, ctx.actors.bundler,
      [respond, name](caf::expected<bool> r) {
        if (!r)
          return respond(
              error_response(503, ec::service_unavailable, "the bundler did not answer"));
        if (!*r)
          return respond(
              error_response(409, ec::invalid_request, "provider " + name + " is not paused"));
        respond(json_response(202, render_provider_resumed(name)));
      },
      atom::resume_v, name);
}

// -- cancels of queued requests --

// 200 when it was queued and is now CANCELLED; 409 naming why not; 404 unknown.
http_response request_cancel_answer(const std::string& id, const cancel_summary& r) {
  if (r.cancelled > 0)
    return json_response(200, render_request_cancelled(id));
  if (r.already_processing > 0)
    return error_response(409, ec::invalid_request,
                          "request " + id
                              + " is already processing: it was handed to a provider and ends "
                                "with that provider's result");
  if (r.already_final > 0)
    return error_response(409, ec::invalid_request,
                          "request " + id
                              + " is already final: its result is at GET /api/v1/results/" + id);
  return error_response(404, ec::resource_not_found, "no request with queue_id " + id);
}

// 200 with the counts; 404 when the run has no request at all (none held, none final).
http_response run_cancel_answer(const std::string& run, const cancel_summary& r) {
  if (r.cancelled + r.already_processing + r.already_final == 0)
    return error_response(404, ec::resource_not_found,
                          "no request with metadata.bos_batch_id " + run);
  return json_response(200, render_run_cancelled(run, r));
}

// A cluster node records the cancel for the leader (docs/cluster.md) and answers with the
// leader's answer as a single node would; 202 "cancel_requested" when the leader did not
// answer within the relay's wait (it applies the cancel later).
void relay_cancel(const api_context& ctx, const cancel_target& target,
                  std::function<http_response(const cancel_summary&)> answer,
                  http_responder respond) {
  ctx.cancel_relay->ask(
      {0, target.queue_id, target.bos_batch_id},
      [target, answer = std::move(answer), respond](cluster::relay_outcome o) {
        using kind = cluster::relay_outcome::kind;
        if (o.what == kind::failed)
          return respond(store_unavailable(o.error));
        if (o.what == kind::pending)
          return respond(json_response(202, render_cancel_pending(target)));
        const auto& c = o.counts;
        respond(answer({c.cancelled, c.already_processing, c.already_final, c.not_found}));
      });
}

void cancel_request(const api_context& ctx, const std::string& id, http_responder respond) {
  if (ctx.cancel_relay != nullptr)
    return relay_cancel(
        ctx, {id, ""}, [id](const cancel_summary& r) { return request_cancel_answer(id, r); },
        std::move(respond));
  ask<cancel_summary>(
      ctx, ctx.actors.queue,
      [respond, id](caf::expected<cancel_summary> r) {
        if (!r)
          return respond(
              error_response(503, ec::service_unavailable, "the queue did not answer in time"));
        respond(request_cancel_answer(id, *r));
      },
      atom::cancel_v, cancel_target{id, ""});
}

void cancel_run(const api_context& ctx, const std::string& segment, http_responder respond) {
  auto run = percent_decoded(segment);
  if (!run || run->empty())
    return respond(error_response(400, ec::validation_error,
                                  "the run id in the path is not valid percent-encoding"));
  if (ctx.cancel_relay != nullptr)
    return relay_cancel(
        ctx, {"", *run},
        [run = *run](const cancel_summary& r) { return run_cancel_answer(run, r); },
        std::move(respond));
  ask<cancel_summary>(
      ctx, ctx.actors.queue,
      [respond, run = *run](caf::expected<cancel_summary> r) {
        if (!r)
          return respond(
              error_response(503, ec::service_unavailable, "the queue did not answer in time"));
        respond(run_cancel_answer(run, *r));
      },
      atom::cancel_v, cancel_target{"", *run});
}

// -- runs and their results --

// A run's rate counts the finals of the last minute.
constexpr int64_t run_rate_window_ms = 60'000;
// GET /api/v1/runs lists at most this many runs.
constexpr size_t runs_listed = 100;
// Results per page of GET /api/v1/results: the default and the most a client may ask for.
constexpr size_t results_page_default = 100;
constexpr size_t results_page_max = 1000;

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void get_runs(const api_context& ctx, http_responder respond) {
  read_and_respond(
      ctx,
      [since = now_ms() - run_rate_window_ms](store_reads& db) {
        auto runs = db.summarize_runs(since, runs_listed);
        return json_response(200, render_runs(runs, run_rate_window_ms / 1000.0));
      },
      std::move(respond));
}

void get_run(const api_context& ctx, const std::string& segment, http_responder respond) {
  auto run = percent_decoded(segment);
  if (!run || run->empty())
    return respond(error_response(400, ec::validation_error,
                                  "the run id in the path is not valid percent-encoding"));
  read_and_respond(
      ctx,
      [run = *run, since = now_ms() - run_rate_window_ms](store_reads& db) {
        auto summary = db.summarize_run(run, since);
        if (!summary)
          return error_response(404, ec::resource_not_found,
                                "no request with metadata.bos_batch_id " + run);
        return json_response(200, render_run(*summary, run_rate_window_ms / 1000.0));
      },
      std::move(respond));
}

// A page size from 1 to results_page_max, or nullopt.
std::optional<size_t> parse_page_limit(const std::string& text) {
  size_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || value == 0
      || value > results_page_max)
    return std::nullopt;
  return value;
}

// GET /api/v1/results?bos_batch_id=X&after=CURSOR&limit=N: a full page names the cursor
// after its last result; a shorter one ends the run's results for now (next is null).
void get_results_page(const api_context& ctx, const http_request& req, http_responder respond) {
  auto run = query_param(req.query, "bos_batch_id");
  if (!run || run->empty())
    return respond(error_response(400, ec::validation_error,
                                  "query parameter bos_batch_id is required", {}, "bos_batch_id"));
  std::optional<result_cursor> after;
  if (auto text = query_param(req.query, "after"); text && !text->empty()) {
    after = parse_result_cursor(*text);
    if (!after)
      return respond(error_response(400, ec::validation_error,
                                    "query parameter after is not a cursor this service gave", {},
                                    "after"));
  }
  size_t limit = results_page_default;
  if (auto text = query_param(req.query, "limit")) {
    auto parsed = parse_page_limit(*text);
    if (!parsed)
      return respond(error_response(400, ec::validation_error,
                                    "query parameter limit must be an integer from 1 to "
                                        + std::to_string(results_page_max),
                                    {}, "limit"));
    limit = *parsed;
  }
  read_and_respond(
      ctx,
      [run = *run, after, limit](store_reads& db) {
        auto results = db.load_run_results(run, after, limit);
        std::optional<std::string> next;
        if (results.size() == limit)
          next = render_result_cursor(results.back());
        return json_response(200, render_results_page(results, next));
      },
      std::move(respond));
}

// "/api/v1/status/<id>" -> id, when `path` starts with `prefix`.
bool match_id(const std::string& path, std::string_view prefix, std::string& id) {
  if (path.size() <= prefix.size() || path.compare(0, prefix.size(), prefix) != 0)
    return false;
  id = path.substr(prefix.size());
  return id.find('/') == std::string::npos;
}

// "/api/v1/providers/<id>/resume" -> id, when `path` is `prefix`, an id and `suffix`.
bool match_action(const std::string& path, std::string_view prefix, std::string_view suffix,
                  std::string& id) {
  return path.ends_with(suffix)
         && match_id(path.substr(0, path.size() - suffix.size()), prefix, id);
}

void route_get(const api_context& ctx, http_request&& req, http_responder respond) {
  std::string id;
  if (match_id(req.path, "/api/v1/status/", id))
    return get_status(ctx, id, std::move(respond));
  if (match_id(req.path, "/api/v1/results/", id))
    return get_result(ctx, id, std::move(respond));
  if (req.path == "/healthz")
    return get_health(ctx, std::move(respond));
  if (req.path == "/metrics")
    return get_metrics(ctx, std::move(respond));
  if ((req.path == "/api/v1/inspect" || req.path == "/api/v1/inspect/actors") && names_nodes(req))
    return get_nodes_inspection(ctx, req, req.path != "/api/v1/inspect", std::move(respond));
  if (req.path == "/api/v1/inspect")
    return get_inspect(ctx, std::move(respond));
  if (req.path == "/api/v1/inspect/gateway")
    return respond(gateway_usage_response(ctx));
  if (req.path.starts_with("/api/v1/inspect/"))
    return get_inspect_view(ctx, req, std::move(respond));
  if (req.path == "/api/v1/providers")
    return get_providers(ctx, std::move(respond));
  if (req.path == "/api/v1/models")
    return respond(json_response(200, ctx.model_manifest_json));
  if (req.path == "/api/v1/batch-jobs")
    return get_batch_jobs(ctx, std::move(respond));
  if (match_id(req.path, "/api/v1/batch-jobs/", id))
    return get_batch_job(ctx, id, std::move(respond));
  if (req.path == "/api/v1/runs")
    return get_runs(ctx, std::move(respond));
  if (match_id(req.path, "/api/v1/runs/", id))
    return get_run(ctx, id, std::move(respond));
  if (req.path == "/api/v1/results")
    return get_results_page(ctx, req, std::move(respond));
  if (req.path == "/api/v1/config")
    return respond(config_response(ctx.cfg));
  if (req.path == "/api/v1/cluster")
    return respond(ctx.cluster_answer ? ctx.cluster_answer()
                                      : error_response(404, ec::resource_not_found,
                                                       "this node is not part of a cluster "
                                                       "(CLUSTER_ENABLED=false)"));
  if (is_console_path(req.path))
    return respond(console_response(req, console_assets()));
  respond(error_response(404, ec::resource_not_found, "no route for GET " + req.path));
}

// -- access --

/// What a route needs: nothing (probes), a client key, or the operator token.
enum class route_access { open, client, admin };

route_access access_of(const http_request& req) {
  // The console's files are a shell without data (docs/console.md): a browser cannot send a
  // bearer token when it opens a page, so they are open and the page sends the token on the
  // API routes it reads, which keep their own access.
  if (req.path == "/healthz" || req.path == "/metrics" || is_console_path(req.path))
    return route_access::open;
  auto operator_action = [&](std::string_view prefix, std::string_view suffix) {
    return req.method == "POST" && req.path.starts_with(prefix) && req.path.ends_with(suffix);
  };
  if (req.path == "/api/v1/inspect" || req.path.starts_with("/api/v1/inspect/")
      || req.path.starts_with("/api/v1/config") || operator_action("/api/v1/batch-jobs/", "/cancel")
      || operator_action("/api/v1/runs/", "/cancel")
      || operator_action("/api/v1/providers/", "/resume"))
    return route_access::admin;
  return route_access::client;
}

// Hashing both sides makes the comparison independent of the token's length.
bool is_admin_token(const api_context& ctx, std::string_view presented) {
  return !ctx.cfg.admin_token.empty()
         && constant_time_equal(sha256_hex(presented), sha256_hex(ctx.cfg.admin_token.reveal()));
}

// The client's key name ("" when no key is needed), or nullopt when the request may not
// pass. Operator routes take ADMIN_TOKEN when it is set; otherwise they need what client
// routes need. The admin token also reads what clients read (every GET), so one token
// serves the web console and lpsctl; it never submits or cancels as a client.
std::optional<std::string> authenticate(const api_context& ctx, const http_request& req) {
  auto access = access_of(req);
  if (access == route_access::open)
    return "";
  // bearer_token() views into its argument: the header text must outlive `presented`.
  auto authorization = header_value(req, "authorization");
  auto presented = bearer_token(authorization);
  if (access == route_access::admin && !ctx.cfg.admin_token.empty()) {
    if (is_admin_token(ctx, presented))
      return "admin";
    return std::nullopt;
  }
  if (ctx.keys.empty())
    return "";
  if (req.method == "GET" && is_admin_token(ctx, presented))
    return "admin";
  return ctx.keys.find(presented);
}

// The 401 names what is missing, never what was sent.
http_response unauthorized(route_access access) {
  auto res = error_response(401, ec::authentication_error,
                            access == route_access::admin
                                ? "this operator route needs Authorization: Bearer <ADMIN_TOKEN>"
                                : "this route needs Authorization: Bearer <API key>");
  res.headers.emplace_back("WWW-Authenticate", "Bearer");
  return res;
}

} // namespace

void idempotency_gate::enter(const std::string& key, std::function<void()> work) {
  {
    std::lock_guard<std::mutex> lock{mutex_};
    auto [i, first] = running_.try_emplace(key);
    if (!first) {
      i->second.push_back(std::move(work));
      return;
    }
  }
  work();
}

void idempotency_gate::leave(const std::string& key) {
  std::function<void()> next;
  {
    std::lock_guard<std::mutex> lock{mutex_};
    auto i = running_.find(key);
    if (i == running_.end())
      return;
    if (i->second.empty()) {
      running_.erase(i);
      return;
    }
    next = std::move(i->second.front());
    i->second.pop_front();
  }
  next();
}

std::string mock_default_warning(const config& cfg) {
  if (cfg.default_llm_provider != "mock")
    return "";
  std::string keys;
  std::string first;
  for (const auto& [name, p] : cfg.providers) {
    if (p.api_key.empty())
      continue;
    auto upper = name;
    for (auto& c : upper)
      c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    keys += (keys.empty() ? "" : ", ") + upper + "_API_KEY";
    if (first.empty())
      first = name;
  }
  if (keys.empty())
    return "";
  return "DEFAULT_LLM_PROVIDER is mock although " + keys
         + " is set: requests without provider_override get mock verdicts (provider \"mock\"); "
           "set DEFAULT_LLM_PROVIDER="
         + first + " (or MOCK_ALLOWED=false to refuse them)";
}

bool is_submission(const http_request& req) {
  return req.method == "POST"
         && (req.path == "/api/v1/comparison" || req.path == "/api/v1/comparisons");
}

void handle_http(const api_context& ctx, http_request&& req, http_responder respond) {
  if (req.method == "HEAD"
      && req.path == "/healthz") // load balancers probe with HEAD; open like GET
    return get_health(ctx, std::move(respond));
  // The gateway authenticates on its own, to answer in OpenAI's error shape; it needs no
  // recovered queue (no durability on that path).
  if (is_gateway_path(req.path))
    return handle_gateway(ctx, std::move(req), std::move(respond));
  std::shared_ptr<submission_tally> tally; // set on the two submission routes only
  if (is_submission(req)) {
    tally = std::make_shared<submission_tally>();
    respond = counting_refusals(ctx, tally, std::move(respond));
  }
  auto client = authenticate(ctx, req);
  if (!client)
    return respond(unauthorized(access_of(req)));
  if (ctx.starting->load() && req.path != "/healthz" && req.path != "/metrics")
    return respond(while_starting(
        error_response(503, ec::service_unavailable,
                       "lps is starting: the queue is being recovered from the store")));
  if (req.method == "GET")
    return route_get(ctx, std::move(req), std::move(respond));
  if (req.method == "POST" && req.path == "/api/v1/comparison")
    return submit_one(ctx, std::move(req), *client, std::move(respond));
  if (req.method == "POST" && req.path == "/api/v1/comparisons")
    return submit_many(ctx, std::move(req), *client, *tally, std::move(respond));
  std::string id;
  if (req.method == "POST" && match_action(req.path, "/api/v1/batch-jobs/", "/cancel", id))
    return cancel_batch_job(ctx, id, std::move(respond));
  if (req.method == "POST" && match_action(req.path, "/api/v1/providers/", "/resume", id))
    return resume_provider(ctx, id, std::move(respond));
  if (req.method == "POST" && match_action(req.path, "/api/v1/requests/", "/cancel", id))
    return cancel_request(ctx, id, std::move(respond));
  if (req.method == "POST" && match_action(req.path, "/api/v1/runs/", "/cancel", id))
    return cancel_run(ctx, id, std::move(respond));
  respond(error_response(req.method == "POST" ? 404 : 405,
                         req.method == "POST" ? ec::resource_not_found : ec::invalid_request,
                         "no route for " + req.method + " " + req.path));
}

} // namespace lps
