#pragma once

// The batch jobs actor: one per provider with a batch API (OpenAI Batch API, Anthropic
// Message Batches), used in batch_api mode. It decides when enough work waits (opportunistic:
// a count or the oldest request's age; nightly: inside a daily window), takes that work from
// the queue manager, and drives each job through its steps: record the job durably, upload
// (OpenAI), create, poll, download the results, and hand one outcome per item back to the
// queue manager through the same path as every other mode. Every step is stored before the
// next one starts, so after a restart each job resumes where it was and is never submitted
// twice (docs/batch-api.md). HTTP answers arrive on client threads and are handed over
// through a locked inbox and a `tick, ticket` message, as in provider_http. Job store writes
// run on a writer thread of the actor's own (runtime/batch_job_store_writer) and come back as
// a `store_committed` message: a job's next step starts only on that reply. The only store
// reads are at spawn (the unfinished jobs to resume), synchronous, before any message.

#include "actors/actors.hpp"
#include "actors/status_report.hpp"
#include "actors/http_inbox.hpp"
#include "actors/providers/batch_wire.hpp"
#include "runtime/batch_job_store.hpp"
#include "runtime/batch_job_store_writer.hpp"
#include "runtime/config.hpp"
#include "runtime/model_manifest.hpp"

#include <caf/typed_event_based_actor.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace lps {

struct batch_jobs_config {
  /// "openai" or "anthropic".
  std::string provider;
  wire_target target;
  /// Model of requests without model_override.
  std::string default_model;
  /// Prices by model (cost with the batch discount).
  std::map<std::string, model_price> prices;
  /// opportunistic or nightly (disabled providers get no actor).
  batch_api_mode mode = batch_api_mode::opportunistic;
  /// opportunistic: submit when this many requests wait...
  uint64_t min_items = 1000;
  /// ...or when the oldest has waited this long.
  caf::timespan max_wait = std::chrono::seconds{300};
  /// nightly: submit only between these minutes after local midnight (end before start:
  /// the window crosses midnight).
  int window_start_minute = 60;
  int window_end_minute = 300;
  /// Job size limits (already capped by the provider's own limits).
  uint64_t max_items_per_job = 50'000;
  uint64_t max_bytes_per_job = 190'000'000;
  /// How often a submitted job is polled.
  caf::timespan poll_interval = std::chrono::seconds{30};
  /// How often the queue is looked at and due steps are started.
  caf::timespan check_interval = std::chrono::seconds{1};
  /// Deadline for the queue manager's answer to peek and dequeue.
  caf::timespan queue_timeout = std::chrono::seconds{60};
  /// Wall clock (tests inject a manual one).
  std::function<caf::timestamp()> now = [] { return caf::make_timestamp(); };
  /// Minutes after local midnight of a time point (tests inject UTC).
  std::function<int(caf::timestamp)> minute_of_day;
  /// Where job store writes run: a writer thread of the actor's own; tests run them on the
  /// actor's thread, whose reply is still a message (deterministic under the test coordinator).
  batch_job_store_writer::mode store_writes = batch_job_store_writer::mode::own_thread;
};

/// The batch steps that make HTTP calls (also the endpoint label of
/// llm_provider_http_calls_total).
enum class batch_step : uint8_t { upload, create, list, poll, cancel, download };

/// "batch_upload", "batch_create", "batch_list", "batch_poll", "batch_cancel",
/// "batch_results".
const char* to_string(batch_step x);

/// A job held in memory while it is not finished.
struct batch_job {
  batch_job_record rec;
  std::vector<std::string> item_ids;
  /// Item entries (JSONL lines or request objects); kept only until the provider has them
  /// (OpenAI: uploaded; Anthropic: created).
  std::vector<std::string> entries;
  /// Whether the job's input can still be sent: the entries, or the uploaded file. False
  /// after a restart before upload (the entries lived only in memory).
  bool inputs_held = true;
  /// An HTTP step is in flight: nothing else starts for this job.
  bool busy = false;
  /// Store writes of this job not answered yet: its next step waits for them.
  unsigned writes_pending = 0;
  /// The create write succeeded (until then the job exists only in memory).
  bool recorded = false;
  /// The last update failed: the record is written again before the next step.
  bool unsaved = false;
  /// A create answer was not clean (or lps restarted while submitting): before any new
  /// create, the provider's job list is checked for this job.
  bool must_resolve = false;
  bool cancel_sent = false;
  /// When the next poll (or retry of a failed step) is due.
  caf::timestamp next_step_at;
  /// Last job status read (result locations for the downloads).
  batch_job_status status;
  /// Results read so far and downloads still to do.
  std::vector<batch_item_result> results;
  size_t downloads_done = 0;
};

struct batch_jobs_state {
  static inline const char* name = "batch-jobs";
  batch_jobs_config cfg;
  std::shared_ptr<const batch_wire> wire;
  http_transport* http = nullptr;
  batch_job_store* db = nullptr;
  /// Runs the writes to `db` off this actor's thread.
  std::unique_ptr<batch_job_store_writer> writer;
  queue_manager_actor queue;
  metrics_actor metrics;
  std::shared_ptr<http_inbox> inbox = std::make_shared<http_inbox>();
  /// Unfinished jobs by job id.
  std::map<std::string, batch_job> jobs;
  /// HTTP calls in flight: ticket -> (job id, step, download index).
  struct pending {
    std::string job_id;
    batch_step step = batch_step::poll;
    size_t index = 0;
  };
  std::map<uint64_t, pending> calls;
  uint64_t next_ticket = 0;
  /// Store writes in flight: ticket -> job id.
  std::map<uint64_t, std::string> writes;
  uint64_t next_write_ticket = 0;
  /// A peek or dequeue is in flight (one at a time).
  bool collecting = false;
  bool stopped = false;
  /// Messages handled, their processing times, the last error (for status).
  actor_stats stats;
  uint64_t jobs_submitted = 0;
  uint64_t jobs_finished = 0;
  uint64_t items_submitted = 0;
  uint64_t items_returned = 0;
  uint64_t http_calls = 0;
};

/// The stored states of a job that is not finished yet (docs/batch-api.md), the label
/// values of llm_provider_batch_api_jobs_open.
const std::vector<std::string>& open_batch_job_states();

/// Spawns with its config, the provider's batch format, the HTTP transport and the job
/// store (both owned by the caller and outliving the actor), the queue manager and metrics.
/// Unfinished jobs of this provider are read from the store at spawn (synchronously) and
/// resumed; every later write goes through the actor's own writer.
batch_jobs_impl_actor::behavior_type
batch_jobs(batch_jobs_impl_actor::stateful_pointer<batch_jobs_state> self, batch_jobs_config cfg,
           std::shared_ptr<const batch_wire> wire, http_transport* http, batch_job_store* db,
           queue_manager_actor queue, metrics_actor metrics);

} // namespace lps
