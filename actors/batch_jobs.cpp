#include "actors/batch_jobs.hpp"
#include "actors/batch_window.hpp"
#include "runtime/error_code.hpp"
#include "actors/status_report.hpp"

#include "runtime/ids.hpp"
#include "runtime/logging.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>

#include <limits>
#include <set>

namespace lps {

const std::vector<std::string>& open_batch_job_states() {
  static const std::vector<std::string> result{"created",   "uploaded",   "submitting",
                                               "submitted", "cancelling", "ended"};
  return result;
}

const char* to_string(batch_step x) {
  switch (x) {
  case batch_step::upload:
    return "batch_upload";
  case batch_step::create:
    return "batch_create";
  case batch_step::list:
    return "batch_list";
  case batch_step::poll:
    return "batch_poll";
  case batch_step::cancel:
    return "batch_cancel";
  case batch_step::download:
    return "batch_results";
  }
  return "batch_unknown";
}

namespace {

using self_ptr = batch_jobs_impl_actor::stateful_pointer<batch_jobs_state>;
using state_t = batch_jobs_state;

std::shared_ptr<spdlog::logger> log() {
  static auto logger = get_logger("batch");
  return logger;
}

int64_t unix_ms(caf::timestamp t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

caf::timestamp now_of(self_ptr self) {
  return self->state.cfg.now();
}

// -- durable job records --

/// The callback of one store write of `job_id`: it only sends `store_committed, ticket` with
/// the outcome to the actor, which goes on in its own thread (on_stored). A weak handle: a
/// late answer must not keep a stopped actor alive.
batch_job_store_writer::callback on_written(self_ptr self, const std::string& job_id) {
  auto& st = self->state;
  auto ticket = st.next_write_ticket++;
  st.writes.emplace(ticket, job_id);
  return [actor = caf::actor_cast<caf::weak_actor_ptr>(self->ctrl()),
          ticket](bool ok, const std::string& error) {
    if (auto strong = actor.lock())
      caf::anon_send(caf::actor_cast<batch_jobs_impl_actor>(strong), atom::store_committed_v,
                     ticket, ok, error);
  };
}

/// Stores the job's record on the writer thread. The job's next step waits for the reply
/// (advance() starts nothing while a write is pending), so each step is stored before the
/// next one starts; a failed write is written again before the next step.
void save(self_ptr self, batch_job& job) {
  job.rec.updated_at_ms = unix_ms(now_of(self));
  job.unsaved = false;
  ++job.writes_pending;
  self->state.writer->update(job.rec, on_written(self, job.rec.job_id));
}

void record_metrics(self_ptr self, std::vector<metric_sample> samples) {
  if (self->state.metrics)
    self->send(self->state.metrics, atom::record_v, std::move(samples));
}

/// Open jobs by state, every state present (0 where none), so a dashboard has the series
/// from the first scrape on.
void publish_open_jobs(self_ptr self) {
  auto& st = self->state;
  std::map<std::string, double> counts;
  for (const auto& state : open_batch_job_states())
    counts[state] = 0;
  for (const auto& [id, job] : st.jobs)
    if (auto i = counts.find(job.rec.state); i != counts.end())
      ++i->second;
  std::vector<metric_sample> samples;
  for (const auto& [state, n] : counts)
    samples.push_back({"llm_provider_batch_api_jobs_open", {st.cfg.provider, state}, n});
  record_metrics(self, std::move(samples));
}

// -- outcomes --

comparison_outcome outcome_for(self_ptr self, const batch_job& job, const std::string& queue_id) {
  comparison_outcome out;
  out.queue_id = queue_id;
  out.provider = self->state.cfg.provider;
  out.model = job.rec.model;
  out.enrichment = {out.provider, out.model, "batch_api", "", 0, job.rec.job_id};
  if (job.rec.submitted_at_ms > 0)
    out.response_time = std::chrono::milliseconds{
        std::max<int64_t>(0, unix_ms(now_of(self)) - job.rec.submitted_at_ms)};
  return out;
}

void fail(comparison_outcome& out, std::string code, std::string message, bool retryable) {
  out.success = false;
  out.error_code = std::move(code);
  out.error_message = std::move(message);
  out.retryable = retryable;
}

/// The job's end: every item's outcome goes to the queue manager (which retries or
/// finalizes), then the job is stored as finished and its items released. In that order: a
/// crash in between only repeats outcomes, and the queue manager ignores repeats.
void finish_job(self_ptr self, batch_job& job, std::vector<comparison_outcome> outcomes,
                const std::string& final_state, const std::string& metric_status) {
  auto& st = self->state;
  st.items_returned += outcomes.size();
  if (!outcomes.empty())
    self->send(st.queue, atom::complete_v, std::move(outcomes));
  job.rec.state = final_state;
  job.rec.ended_at_ms = job.rec.ended_at_ms > 0 ? job.rec.ended_at_ms : unix_ms(now_of(self));
  job.rec.updated_at_ms = unix_ms(now_of(self));
  if (job.recorded) // a job whose create failed has no row to finish
    st.writer->finish(job.rec, on_written(self, job.rec.job_id));
  std::vector<metric_sample> samples{
      {"llm_provider_batch_api_jobs_total", {st.cfg.provider, job.rec.model, metric_status}, 1}};
  if (job.rec.submitted_at_ms > 0)
    samples.push_back({"llm_provider_batch_api_job_duration_seconds",
                       {st.cfg.provider, job.rec.model},
                       double(job.rec.ended_at_ms - job.rec.submitted_at_ms) / 1000.0});
  record_metrics(self, std::move(samples));
  LPS_LOG_INFO(log(), "batch job {} ({}, {} items) finished: {}", job.rec.job_id, st.cfg.provider,
               job.rec.item_count, metric_status);
  ++st.jobs_finished;
  auto id = job.rec.job_id; // `job` lives in st.jobs: copy the key before erasing it
  st.jobs.erase(id);
}

/// Every item back to the queue manager with the same error: a job that failed as a whole,
/// or one that never reached the provider.
void give_back(self_ptr self, batch_job& job, const std::string& code, const std::string& message,
               bool retryable) {
  std::vector<comparison_outcome> outcomes;
  for (const auto& id : job.item_ids) {
    auto out = outcome_for(self, job, id);
    fail(out, code, message, retryable);
    outcomes.push_back(std::move(out));
  }
  job.rec.last_error = message;
  finish_job(self, job, std::move(outcomes), "failed", "failed");
}

comparison_outcome outcome_of(self_ptr self, const batch_job& job, const batch_item_result& r) {
  auto& st = self->state;
  auto out = outcome_for(self, job, r.custom_id);
  using kind = batch_item_result::kind;
  switch (r.outcome) {
  case kind::succeeded:
    out.success = true;
    out.winner = r.response.verdict.winner;
    out.justification = r.response.verdict.justification;
    out.confidence = r.response.verdict.confidence;
    out.usage = r.response.usage;
    if (auto price = st.cfg.prices.find(job.rec.model); price != st.cfg.prices.end())
      out.cost_estimate = estimate_cost(price->second, out.usage, true);
    return out;
  case kind::errored:
    out.usage = r.response.usage;
    fail(out, r.response.error_code, r.response.error_message, r.response.retryable);
    out.http_status = r.response.http_status;
    return out;
  case kind::expired:
    fail(out, to_string(ec::timeout),
         "the provider's batch window ended before this comparison ran", true);
    return out;
  case kind::cancelled:
    if (job.rec.cancel_requested)
      fail(out, to_string(ec::cancelled),
           "batch job " + job.rec.job_id + " was cancelled by an operator", false);
    else
      fail(out, to_string(ec::external_service_error), "the provider cancelled this comparison",
           true);
    return out;
  }
  return out;
}

/// Maps the downloaded results to one outcome per item (by custom_id; the first line of an
/// id wins; an item without a line goes back to the queue).
void collect(self_ptr self, batch_job& job) {
  std::map<std::string, const batch_item_result*> by_id;
  for (const auto& r : job.results)
    by_id.emplace(r.custom_id, &r);
  std::vector<comparison_outcome> outcomes;
  uint64_t succeeded = 0;
  for (const auto& id : job.item_ids) {
    auto i = by_id.find(id);
    if (i == by_id.end()) {
      auto out = outcome_for(self, job, id);
      fail(out, to_string(ec::external_service_error), "missing from the batch results", true);
      outcomes.push_back(std::move(out));
      continue;
    }
    outcomes.push_back(outcome_of(self, job, *i->second));
    succeeded += outcomes.back().success ? 1 : 0;
  }
  job.rec.succeeded = succeeded;
  job.rec.failed = job.item_ids.size() - succeeded;
  auto status = job.rec.cancel_requested ? "cancelled" : "completed";
  finish_job(self, job, std::move(outcomes), "collected", status);
}

// -- HTTP --

void send_step(self_ptr self, batch_job& job, batch_step step, http_client_request req,
               size_t index = 0) {
  auto& st = self->state;
  auto ticket = st.next_ticket++;
  st.calls.emplace(ticket, state_t::pending{job.rec.job_id, step, index});
  job.busy = true;
  ++st.http_calls;
  auto done = http_inbox::callback<batch_jobs_impl_actor>(st.inbox, self->ctrl(), ticket);
  try {
    st.http->send(std::move(req), std::move(done));
  } catch (const std::exception& ex) {
    http_client_response failed;
    failed.error = transport_error::invalid;
    failed.error_message = ex.what();
    done(std::move(failed));
  }
}

/// A step that failed in a way worth retrying waits (Retry-After, else a poll interval).
void retry_later(self_ptr self, batch_job& job, const wire_response& error) {
  auto wait = std::max<caf::timespan>(error.retry_after, self->state.cfg.poll_interval);
  job.next_step_at = now_of(self) + wait;
  job.rec.last_error = error.error_message;
  save(self, job); // operators see why a job waits in /api/v1/batch-jobs
  LPS_LOG_WARN(log(), "batch job {}: {} (retrying)", job.rec.job_id, error.error_message);
}

// -- the steps --

void start_create(self_ptr self, batch_job& job) {
  auto& st = self->state;
  if (job.rec.state != "submitting") {
    // Stored before the call: after a crash the job is known to be possibly created. The
    // store's reply advances the job again, to the call below.
    job.rec.state = "submitting";
    job.rec.submitted_at_ms = unix_ms(now_of(self));
    save(self, job);
    return;
  }
  send_step(self, job, batch_step::create,
            st.wire->create(st.cfg.target, job.rec.file_id, job.entries, job.rec.job_id));
}

/// Moves a job one step on when nothing is in flight for it (an HTTP call or a store write)
/// and its next step is due; a record whose write failed is written again first.
void advance(self_ptr self, batch_job& job) {
  auto& st = self->state;
  if (job.busy || job.writes_pending > 0 || now_of(self) < job.next_step_at)
    return;
  if (job.unsaved) {
    save(self, job);
    return;
  }
  const auto& state = job.rec.state;
  bool unsent = state == "created" || state == "uploaded" || state == "submitting";
  if (job.rec.cancel_requested && (state == "created" || state == "uploaded")) {
    give_back(self, job, to_string(ec::cancelled),
              "batch job cancelled by an operator before submission", false);
    return;
  }
  if (unsent && (job.must_resolve || !job.inputs_held)) {
    if (state == "submitting") // it may exist at the provider: look before anything else
      send_step(self, job, batch_step::list, st.wire->list(st.cfg.target));
    else // never reached the provider, and the entries are gone with the restart
      give_back(self, job, to_string(ec::external_service_error),
                "lps restarted before batch job " + job.rec.job_id + " was submitted", true);
    return;
  }
  if (state == "created" && st.wire->needs_upload()) {
    send_step(self, job, batch_step::upload,
              st.wire->upload(st.cfg.target, job.entries, job.rec.job_id));
  } else if (unsent) {
    start_create(self, job);
  } else if (state == "ended") {
    auto downloads = st.wire->downloads(st.cfg.target, job.status);
    if (job.downloads_done >= downloads.size())
      collect(self, job);
    else
      send_step(self, job, batch_step::download, std::move(downloads[job.downloads_done]),
                job.downloads_done);
  } else if (job.rec.cancel_requested && !job.cancel_sent) {
    send_step(self, job, batch_step::cancel,
              st.wire->cancel(st.cfg.target, job.rec.provider_job_id));
  } else {
    send_step(self, job, batch_step::poll, st.wire->poll(st.cfg.target, job.rec.provider_job_id));
  }
}

/// What the provider says about a job (create, poll or cancel answer).
void apply_status(self_ptr self, batch_job& job, batch_job_status status) {
  job.rec.provider_job_id = status.provider_job_id;
  job.rec.provider_status = status.provider_status;
  job.rec.succeeded = status.succeeded;
  job.rec.failed = status.failed;
  job.rec.result_locations = status.result_locations;
  if (!status.job_error.empty())
    job.rec.last_error = status.job_error;
  job.next_step_at = now_of(self) + self->state.cfg.poll_interval;
  auto state = status.state;
  job.status = std::move(status);
  switch (state) {
  case batch_job_state::validating:
  case batch_job_state::in_progress:
    job.rec.state = "submitted";
    break;
  case batch_job_state::cancelling:
    job.rec.state = "cancelling";
    break;
  case batch_job_state::ended:
    job.rec.state = "ended";
    job.rec.ended_at_ms = unix_ms(now_of(self));
    job.next_step_at = now_of(self); // download at once
    break;
  case batch_job_state::failed:
    save(self, job);
    give_back(self, job, to_string(ec::external_service_error),
              "batch job " + job.rec.job_id + " failed at the provider: "
                  + (job.rec.last_error.empty() ? "no reason given" : job.rec.last_error),
              true);
    return;
  }
  save(self, job);
}

void on_created(self_ptr self, batch_job& job, batch_job_status status) {
  auto& st = self->state;
  if (!status.ok) {
    if (!status.error.retryable) {
      give_back(self, job, status.error.error_code, status.error.error_message, false);
      return;
    }
    // The provider may have created it anyway (a 5xx after the fact, a cut connection):
    // look it up before creating again.
    job.must_resolve = true;
    retry_later(self, job, status.error);
    return;
  }
  ++st.jobs_submitted;
  st.items_submitted += job.item_ids.size();
  std::vector<std::string>{}.swap(job.entries); // the provider has them now
  record_metrics(
      self,
      {{"llm_provider_batch_api_jobs_total", {st.cfg.provider, job.rec.model, "submitted"}, 1},
       {"llm_provider_batch_api_items_per_job",
        {st.cfg.provider, job.rec.model},
        double(job.item_ids.size())}});
  LPS_LOG_INFO(log(), "batch job {} submitted to {} as {} ({} items)", job.rec.job_id,
               st.cfg.provider, status.provider_job_id, job.item_ids.size());
  apply_status(self, job, std::move(status));
}

/// After a doubtful create: adopt the provider's job that is ours, or create it now.
void on_listed(self_ptr self, batch_job& job, const std::vector<batch_listing>& listing) {
  auto& st = self->state;
  std::set<std::string> taken;
  for (const auto& [id, other] : st.jobs)
    if (!other.rec.provider_job_id.empty())
      taken.insert(other.rec.provider_job_id);
  const batch_listing* match = nullptr;
  auto since_s = job.rec.submitted_at_ms / 1000 - 60;
  for (const auto& l : listing) {
    bool ours = !l.lps_job_id.empty()
                    ? l.lps_job_id == job.rec.job_id
                    // No metadata (Anthropic): the unclaimed job of the same size created
                    // after our attempt is ours; the oldest such one if several.
                    : l.total == job.item_ids.size() && l.created_at_s >= since_s
                          && !taken.count(l.provider_job_id);
    if (ours && (match == nullptr || l.created_at_s < match->created_at_s))
      match = &l;
  }
  job.must_resolve = false;
  if (match != nullptr) {
    LPS_LOG_INFO(log(), "batch job {} found at {} as {}", job.rec.job_id, st.cfg.provider,
                 match->provider_job_id);
    job.rec.provider_job_id = match->provider_job_id;
    job.rec.state = "submitted";
    std::vector<std::string>{}.swap(job.entries);
    job.next_step_at = now_of(self); // poll at once
    save(self, job);
    return;
  }
  if (!job.inputs_held) {
    give_back(self, job, to_string(ec::external_service_error),
              "batch job " + job.rec.job_id + " was not created at the provider", true);
    return;
  }
  start_create(self, job);
}

void on_answer(self_ptr self, const state_t::pending& call, batch_job& job,
               const http_client_response& resp) {
  auto& st = self->state;
  auto now = std::chrono::system_clock::now();
  job.busy = false;
  if (resp.error != transport_error::none) {
    if (call.step == batch_step::create)
      job.must_resolve = true;
    retry_later(self, job, transport_failure(st.cfg.provider + " batch", resp));
    return;
  }
  switch (call.step) {
  case batch_step::upload: {
    wire_response error;
    auto file_id = st.wire->read_upload(resp.status, resp.body, resp.headers, now, error);
    if (file_id.empty()) {
      if (!error.retryable)
        give_back(self, job, error.error_code, error.error_message, false);
      else
        retry_later(self, job, error);
      return;
    }
    job.rec.file_id = file_id;
    job.rec.state = "uploaded";
    std::vector<std::string>{}.swap(job.entries); // the file holds them now
    save(self, job);                              // its reply starts the create
    return;
  }
  case batch_step::create:
    on_created(self, job, st.wire->read_job(resp.status, resp.body, resp.headers, now));
    return;
  case batch_step::list: {
    wire_response error;
    auto listing = st.wire->read_list(resp.status, resp.body, resp.headers, now, error);
    if (!error.success)
      retry_later(self, job, error);
    else
      on_listed(self, job, listing);
    return;
  }
  case batch_step::poll:
  case batch_step::cancel: {
    auto status = st.wire->read_job(resp.status, resp.body, resp.headers, now);
    if (call.step == batch_step::cancel)
      job.cancel_sent = status.ok || !status.error.retryable;
    if (!status.ok && status.error.http_status == 404) {
      // The provider no longer knows the job (deleted, or results archived): nothing will
      // come of waiting, so its items run again.
      give_back(self, job, to_string(ec::external_service_error),
                "the provider no longer knows batch job " + job.rec.job_id, true);
      return;
    }
    if (!status.ok) {
      retry_later(self, job, status.error);
      return;
    }
    apply_status(self, job, std::move(status));
    return;
  }
  case batch_step::download: {
    wire_response error;
    auto read = st.wire->read_results(resp.status, resp.body, resp.headers, now, error);
    if (resp.status == 404) {
      give_back(self, job, to_string(ec::external_service_error),
                "the results of batch job " + job.rec.job_id + " are no longer available", true);
      return;
    }
    if (resp.status < 200 || resp.status > 299) {
      retry_later(self, job, error);
      return;
    }
    if (read.unreadable_lines > 0)
      LPS_LOG_WARN(log(), "batch job {}: {} result lines unreadable", job.rec.job_id,
                   read.unreadable_lines);
    for (auto& item : read.items)
      job.results.push_back(std::move(item));
    ++job.downloads_done;
    advance(self, job);
    return;
  }
  }
}

void on_http(self_ptr self, uint64_t ticket) {
  auto& st = self->state;
  http_client_response resp;
  if (!st.inbox->take(ticket, resp))
    return;
  auto i = st.calls.find(ticket);
  if (i == st.calls.end())
    return;
  auto call = i->second;
  st.calls.erase(i);
  record_metrics(self, {{"llm_provider_http_calls_total",
                         {st.cfg.provider, to_string(call.step), http_status_label(resp)},
                         1}});
  auto j = st.jobs.find(call.job_id);
  if (j == st.jobs.end())
    return;
  on_answer(self, call, j->second, resp);
}

// -- forming jobs from the queue --

bool in_window(const batch_jobs_config& cfg, caf::timestamp now) {
  return in_batch_window({cfg.window_start_minute, cfg.window_end_minute}, cfg.minute_of_day(now));
}

bool worth_submitting(self_ptr self, const queue_backlog& backlog) {
  auto& cfg = self->state.cfg;
  if (backlog.count == 0)
    return false;
  auto now = now_of(self);
  if (cfg.mode == batch_api_mode::nightly)
    return in_window(cfg, now);
  return backlog.count >= cfg.min_items || now - backlog.oldest_queued_at >= cfg.max_wait;
}

std::string model_of(const state_t& st, const comparison_request& req) {
  return req.overrides.model.empty() ? st.cfg.default_model : req.overrides.model;
}

/// Records a new job durably; the store's reply starts it (on_stored), and a job that
/// cannot be recorded is never sent.
void open_job(self_ptr self, const std::string& model, std::vector<std::string> ids,
              std::vector<std::string> entries) {
  auto& st = self->state;
  batch_job job;
  job.rec.job_id = "bj-" + new_uuid();
  job.rec.provider = st.cfg.provider;
  job.rec.model = model;
  job.rec.state = "created";
  job.rec.item_count = ids.size();
  job.rec.created_at_ms = unix_ms(now_of(self));
  job.rec.updated_at_ms = job.rec.created_at_ms;
  job.item_ids = std::move(ids);
  job.entries = std::move(entries);
  job.writes_pending = 1;
  st.writer->create(job.rec, job.item_ids, on_written(self, job.rec.job_id));
  auto id = job.rec.job_id;
  st.jobs.emplace(id, std::move(job));
}

/// A store write is done: the job goes on (or, unrecorded, gives its items back).
void on_stored(self_ptr self, uint64_t ticket, bool ok, const std::string& error) {
  auto& st = self->state;
  auto w = st.writes.find(ticket);
  if (w == st.writes.end())
    return;
  auto job_id = std::move(w->second);
  st.writes.erase(w);
  auto j = st.jobs.find(job_id);
  if (j == st.jobs.end()) { // a finished job's last write
    if (!ok)
      LPS_LOG_ERROR(log(), "batch job {}: cannot store its end: {}", job_id, error);
    return;
  }
  auto& job = j->second;
  --job.writes_pending;
  if (!job.recorded && !ok) {
    LPS_LOG_ERROR(log(), "batch job for {} not recorded: {}", st.cfg.provider, error);
    give_back(self, job, to_string(ec::internal_error), "batch job not recorded: " + error, true);
    return;
  }
  job.recorded = true;
  if (!ok) {
    LPS_LOG_ERROR(log(), "batch job {}: cannot store its state: {} (retrying)", job_id, error);
    job.unsaved = true;
    job.next_step_at = std::max(job.next_step_at, now_of(self) + st.cfg.poll_interval);
  }
  advance(self, job);
}

/// Groups dequeued requests by model (one model per job) and cuts each group at the item
/// and byte limits.
void form_jobs(self_ptr self, std::vector<queued_request>& items) {
  auto& st = self->state;
  struct group {
    std::vector<std::string> ids;
    std::vector<std::string> entries;
    uint64_t bytes = 0;
  };
  std::map<std::string, group> open;
  for (auto& item : items) {
    const auto& req = item.request;
    auto model = model_of(st, req);
    auto entry = st.wire->item_entry(req, req.queue_id, model);
    // The entry holds the texts now: keep one copy, not two, of a large job's prompts.
    std::string{}.swap(item.request.user_prompt);
    std::vector<prompt_block>{}.swap(item.request.prompt_blocks);
    auto& g = open[model];
    if (!g.ids.empty()
        && (g.ids.size() >= st.cfg.max_items_per_job
            || g.bytes + entry.size() + 1 > st.cfg.max_bytes_per_job)) {
      open_job(self, model, std::move(g.ids), std::move(g.entries));
      g = group{};
    }
    g.bytes += entry.size() + 1;
    g.ids.push_back(req.queue_id);
    g.entries.push_back(std::move(entry));
  }
  for (auto& [model, g] : open)
    if (!g.ids.empty())
      open_job(self, model, std::move(g.ids), std::move(g.entries));
}

// The queue is looked at again on the next check.
void queue_unanswered(self_ptr self, const char* what, const caf::error& err) {
  self->state.collecting = false;
  LPS_LOG_WARN(log(), "batch jobs of {}: the queue manager did not answer {}: {}",
               self->state.cfg.provider, what, caf::to_string(err));
}

void look_at_queue(self_ptr self) {
  auto& st = self->state;
  if (st.stopped || st.collecting)
    return;
  st.collecting = true;
  auto provider = st.cfg.provider;
  self->request(st.queue, st.cfg.queue_timeout, atom::peek_v, provider)
      .then(
          [=](const queue_backlog& backlog) {
            if (!worth_submitting(self, backlog) || self->state.stopped) {
              self->state.collecting = false;
              return;
            }
            auto n = static_cast<uint32_t>(std::min<uint64_t>(
                self->state.cfg.max_items_per_job, std::numeric_limits<uint32_t>::max()));
            self->request(self->state.queue, self->state.cfg.queue_timeout, atom::dequeue_v, n,
                          std::vector<std::string>{provider})
                .then(
                    [=](std::vector<queued_request>& items) {
                      self->state.collecting = false;
                      form_jobs(self, items);
                    },
                    [=](caf::error& err) { queue_unanswered(self, "dequeue", err); });
          },
          [=](caf::error& err) { queue_unanswered(self, "peek", err); });
}

void on_tick(self_ptr self) {
  auto& st = self->state;
  look_at_queue(self);
  std::vector<std::string> ids;
  for (const auto& [id, job] : st.jobs)
    ids.push_back(id);
  for (const auto& id : ids)
    if (auto i = st.jobs.find(id); i != st.jobs.end())
      advance(self, i->second);
  publish_open_jobs(self);
  self->delayed_send(self, st.cfg.check_interval, atom::sweep_v);
}

std::string cancel(self_ptr self, const std::string& job_id) {
  auto& st = self->state;
  auto i = st.jobs.find(job_id);
  if (i == st.jobs.end())
    return "no unfinished batch job " + job_id + " at " + st.cfg.provider;
  auto& job = i->second;
  if (job.rec.state == "ended")
    return "batch job " + job_id + " has already ended";
  job.rec.cancel_requested = true;
  save(self, job); // its reply sends the cancel (or ends a job not submitted yet)
  LPS_LOG_INFO(log(), "batch job {}: cancel requested", job_id);
  return "";
}

/// Jobs of this provider left unfinished by an earlier run resume from their stored step.
void resume(self_ptr self) {
  auto& st = self->state;
  for (auto& rec : st.db->load_unfinished(st.cfg.provider)) {
    batch_job job;
    job.rec = std::move(rec);
    job.item_ids = st.db->load_items(job.rec.job_id);
    job.status.result_locations = job.rec.result_locations;
    job.status.provider_job_id = job.rec.provider_job_id;
    job.recorded = true;
    job.must_resolve = job.rec.state == "submitting";
    // An uploaded OpenAI file is still there to create the job from; entries in memory are
    // gone.
    job.inputs_held = !job.rec.file_id.empty() && st.wire->needs_upload();
    auto id = job.rec.job_id;
    LPS_LOG_INFO(log(), "batch job {} ({} items) resumes in state {}", id, job.item_ids.size(),
                 job.rec.state);
    st.jobs.emplace(id, std::move(job));
  }
}

actor_status status_of(self_ptr self) {
  auto& st = self->state;
  auto result = status_header(self, "batch-jobs:" + st.cfg.provider, "batch_jobs", st.stats);
  result.figures = {{"jobs_open", double(st.jobs.size())},
                    {"jobs_submitted_total", double(st.jobs_submitted)},
                    {"jobs_finished_total", double(st.jobs_finished)},
                    {"items_submitted_total", double(st.items_submitted)},
                    {"items_returned_total", double(st.items_returned)},
                    {"http_calls_total", double(st.http_calls)}};
  result.facts = {{"provider", st.cfg.provider},
                  {"mode", to_string(st.cfg.mode)},
                  {"base_url", st.cfg.target.base_url},
                  {"stopped", st.stopped ? "true" : "false"}};
  for (const auto& [id, job] : st.jobs)
    result.facts.emplace(
        "job " + id,
        job.rec.state + ", " + std::to_string(job.item_ids.size()) + " items, provider job "
            + (job.rec.provider_job_id.empty() ? std::string{"-"} : job.rec.provider_job_id));
  return result;
}

} // namespace

batch_jobs_impl_actor::behavior_type batch_jobs(self_ptr self, batch_jobs_config cfg,
                                                std::shared_ptr<const batch_wire> wire,
                                                http_transport* http, batch_job_store* db,
                                                queue_manager_actor queue, metrics_actor metrics) {
  auto& st = self->state;
  st.cfg = std::move(cfg);
  if (!st.cfg.minute_of_day)
    st.cfg.minute_of_day = local_minute_of_day;
  st.cfg.max_items_per_job = std::min(st.cfg.max_items_per_job, wire->max_items_per_job());
  st.cfg.max_bytes_per_job = std::min(st.cfg.max_bytes_per_job, wire->max_bytes_per_job());
  st.wire = std::move(wire);
  st.http = http;
  st.db = db;
  st.writer = std::make_unique<batch_job_store_writer>(*db, st.cfg.store_writes);
  st.queue = std::move(queue);
  st.metrics = std::move(metrics);
  resume(self);
  publish_open_jobs(self);
  // Without the queue manager no job can be formed or finished.
  self->monitor(st.queue);
  self->set_down_handler([=](caf::down_msg& msg) {
    LPS_LOG_ERROR(log(), "batch jobs of {} stop: the queue manager is down ({})",
                  self->state.cfg.provider, caf::to_string(msg.reason));
    self->quit(msg.reason);
  });
  self->send(self, atom::sweep_v);
  return counted(
      self, [=](atom::sweep) { on_tick(self); },
      [=](atom::http_answered, uint64_t ticket) { on_http(self, ticket); },
      [=](atom::store_committed, uint64_t ticket, bool ok, const std::string& error) {
        on_stored(self, ticket, ok, error);
      },
      // Work arrived after an empty dequeue: the next sweep looks at the queue anyway.
      [=](atom::wake) {
        // nop
      },
      [=](atom::cancel, const std::string& job_id) -> std::string { return cancel(self, job_id); },
      [=](atom::stop) { self->state.stopped = true; },
      [=](atom::status) -> actor_status { return status_of(self); });
}

} // namespace lps
