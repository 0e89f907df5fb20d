#pragma once

// The queue manager: sole owner of queue state. Durable store underneath, an in-memory
// index on top (status, priority, FIFO sequence, retry time, age). A request whose texts
// are in memory may go to a provider while its insert is still being committed, so the
// provider call overlaps the commit; but it is answered (202), finalized and written about
// only after that commit. Results leave memory only after their final write committed.
// Its store reads (texts of cold requests, a run's requests and a result to cancel) run on
// the reader pool (runtime/store_reader.hpp), never on the actor's thread: each answers the
// actor with a `store_committed` message under an id of its own, as a write does. Only the
// recovery at start reads on the actor's thread, before any message.

#include "actors/actors.hpp"
#include "actors/status_report.hpp"
#include "actors/providers/retry_policy.hpp"
#include "actors/queue_gauges.hpp"
#include "actors/result_mapper.hpp"
#include "runtime/store.hpp"

#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <deque>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace lps {

class store_reader;

struct queue_manager_config {
  /// Accepted requests not yet final (queued + processing) allowed at once.
  uint64_t max_size = 1'000'000;
  /// Bytes of such requests allowed at once.
  uint64_t max_bytes = 8ull << 30;
  /// A request not handed to a provider within this time ends EXPIRED.
  caf::timespan ttl = std::chrono::hours{24};
  /// Retries after the first attempt for retryable failures.
  uint32_t max_retries = 3;
  /// The effective processing mode (label for expiry results).
  std::string processing_mode = "serial_bundle";
  /// DEFAULT_LLM_PROVIDER: the provider of requests without provider_override.
  std::string default_provider = "mock";
  /// Each provider's default model, the model of requests without a model override (for
  /// status only).
  std::map<std::string, std::string> default_models;
  /// Period of expiry sweeps, delayed-retry release and gauge updates.
  caf::timespan tick_interval = std::chrono::milliseconds{200};
  /// First retry delay; doubles per attempt up to retry_max_delay (with jitter).
  caf::timespan retry_base_delay = std::chrono::seconds{1};
  caf::timespan retry_max_delay = std::chrono::seconds{60};
  /// Seconds a QUEUE_FULL caller is told to wait.
  uint32_t retry_after_seconds = 5;
  /// Request texts kept in memory at most; beyond it they stay only in the store and are
  /// read back when the request is dequeued (so a large backlog costs little memory).
  uint64_t memory_text_budget = 256ull << 20;
  /// Requests that belong to a provider batch job still running (queue id -> job id, read
  /// from the batch job store at start): they stay processing, owned by their job, instead
  /// of going back to the queue, so a job is never submitted twice.
  std::unordered_map<std::string, std::string> batch_owned;
  /// Cluster mode, on every node (docs/cluster.md): new requests are stored for the leader
  /// and leave memory once committed; nothing is recovered, dispatched, expired or finalized
  /// here, gauges of the queue come from the leader, and a lookup of a request not in memory
  /// reads its row from the store.
  bool intake_only = false;
  /// Cluster mode, on every node: called with the scheduling columns of the requests of each
  /// committed insert (after the commit, before the 202 leaves), so the leader can index them
  /// without reading the store (docs/cluster.md, "New work reaches the leader"). Must not
  /// block. Empty: nobody is told (the leader's store poller still finds them).
  std::function<void(std::vector<adopted_request>&&)> on_stored;
  /// Cluster leader: how long the ids of finalized requests are remembered, so a store poll
  /// that read a row just before its final write cannot adopt it again (0: not at all).
  caf::timespan adoption_memory{0};
  /// Wall clock for result times, retry times and expiry (tests pass one that follows the
  /// test coordinator's virtual time).
  std::function<caf::timestamp()> now = [] { return caf::make_timestamp(); };
  /// Seed of the retry jitter (tests fix it).
  uint64_t jitter_seed = std::random_device{}();
  /// Where the store reads of requests in flight run (owned by main, outlives the actor;
  /// tests pass one in manual mode and run its reads when they settle). Required.
  store_reader* reads = nullptr;
};

/// Final writes made before their requests' insert committed (the provider answered first),
/// shared with that insert's store callback, which submits them from the writer thread once
/// the insert committed (and drops them when it failed): the second commit of a request
/// does not wait for a hop through the queue manager.
struct chained_finals {
  std::mutex mutex;
  /// Set by the insert's callback: whether the insert committed (empty before).
  std::optional<bool> insert_ok;
  /// Writes for the callback to submit (under `mutex`).
  std::vector<std::pair<store_write, store_callback>> writes;
  /// The pending_finals ids of these writes (the queue manager's alone): forgotten when the
  /// insert failed.
  std::vector<uint64_t> write_ids;
};

/// A retryable failure of a request: its error code and message (cut to 200 characters).
struct entry_failure {
  std::string code;
  std::string message;
};

/// One non-final request in memory. Scheduling data is always here; the request itself
/// (`hot`) while its texts fit the memory budget, and without its texts while it is being
/// processed (the provider has them; a retry reads them back). A cold entry (`hot` null)
/// costs about a third of a hot one: its fields are read back from the store when it is
/// dequeued, expires or is looked up.
struct queue_entry {
  std::unique_ptr<queued_request> hot;
  /// Resolved provider (the ready queue it waits in).
  std::string provider;
  int32_t priority = 5;
  caf::timestamp queued_at;
  uint64_t size_bytes = 0;
  uint32_t attempts = 0;
  queue_status status = queue_status::queued;
  /// Order within a priority: later sequence numbers are served later.
  uint64_t seq = 0;
  /// When a delayed retry may run again.
  caf::timestamp not_before;
  /// The last retryable failure, for status (null until one; memory only, lost at restart).
  std::unique_ptr<entry_failure> last_failure;
  /// Bytes of this request's texts held in `hot` (0: the texts are only in the store).
  uint64_t texts_held = 0;
  /// False while its insert is being committed: the client has no 202 yet, and nothing
  /// final may happen to it (an outcome that arrives early waits in `early_outcomes`).
  bool stored = true;
};

struct queue_manager_state {
  static inline const char* name = "queue-manager";

  queue_manager_config cfg;
  /// The durable store (owned by main; outlives the actor).
  store* db = nullptr;
  metrics_actor metrics;
  callbacks_actor callbacks;

  /// Every accepted request that is not final yet, by queue id.
  std::unordered_map<std::string, queue_entry> entries;
  /// Queued requests ready to run, per resolved provider: (-priority, seq) -> queue id.
  /// One queue per provider lets the bundler take work only for providers that can take
  /// it now, so a saturated or broken provider never holds up the others.
  std::map<std::string, std::map<std::pair<int32_t, uint64_t>, std::string>> ready;
  /// Total entries in `ready`.
  size_t ready_count = 0;
  /// Requests waiting for a retry: not_before -> queue id.
  std::multimap<caf::timestamp, std::string> delayed;
  /// Requests that may expire (queued or delayed): (queued_at, queue id).
  std::set<std::pair<caf::timestamp, std::string>> by_age;
  uint64_t next_seq = 0;
  uint64_t active_bytes = 0;
  /// Bytes of request texts held in memory (bounded by cfg.memory_text_budget).
  uint64_t text_bytes_in_memory = 0;
  uint64_t texts_loaded_total = 0;
  /// Store writes in flight, by write id.
  struct pending_insert {
    caf::typed_response_promise<std::vector<enqueue_outcome>> promise;
    std::vector<enqueue_outcome> outcomes;
    /// The accepted requests of this write (already entries, `stored` false).
    std::vector<std::string> queue_ids;
    /// Their scheduling columns, for cfg.on_stored (filled only when it is set).
    std::vector<adopted_request> stored_rows;
    /// Finals of these requests made before the insert committed.
    std::shared_ptr<chained_finals> chain;
  };
  /// The chain of each request whose insert is being committed, by queue id.
  std::unordered_map<std::string, std::shared_ptr<chained_finals>> unstored_chains;
  /// Outcomes of requests whose insert had not committed when the provider answered.
  std::unordered_map<std::string, comparison_outcome> early_outcomes;
  struct pending_final {
    std::vector<std::string> queue_ids;
    /// Handed to the callbacks actor by the store writer once the write committed (see
    /// submit_final in queue_manager.cpp); left here for the retry when it failed.
    std::shared_ptr<std::vector<delivery>> deliveries = std::make_shared<std::vector<delivery>>();
    std::vector<metric_sample> samples;
    store_write write;
    /// Cancels answered once this write committed (a failed write is retried with them).
    std::vector<std::pair<caf::typed_response_promise<cancel_summary>, cancel_summary>>
        cancel_replies{};
  };
  std::unordered_map<uint64_t, pending_insert> pending_inserts;
  std::unordered_map<uint64_t, pending_final> pending_finals;
  /// Final writes that failed, retried on the next tick.
  std::vector<pending_final> failed_finals;
  /// Reads on the reader pool not answered yet, by id (from next_write_id, so a
  /// `store_committed` names either a write or a read): what to do with the answer.
  std::unordered_map<uint64_t, std::function<void(bool ok, const std::string& error)>>
      pending_reads;
  /// Final results whose requests' rows could not be read (the pool refused the read, or it
  /// failed): read and written again on the next tick, with their cancel replies.
  struct unread_final {
    std::vector<std::pair<std::string, comparison_outcome>> finals;
    std::vector<std::pair<caf::typed_response_promise<cancel_summary>, cancel_summary>>
        cancel_replies;
  };
  std::vector<unread_final> unread_finals;
  uint64_t next_write_id = 1;
  /// Draws the jitter of retry delays.
  jitter_source jitter{0};
  /// At most one WARN line per provider and error code per 10 s about final failures.
  failure_log_throttle failure_log;

  /// Work requesters that found their queues empty and wait for a wake.
  std::vector<work_requester_actor> waiters;
  bool draining = false;

  // -- figures for inspection --
  /// Messages handled, their processing times, the last error (for status).
  actor_stats stats;
  uint64_t accepted_total = 0;
  uint64_t rejected_total = 0;
  /// The store's reconnects already counted in llm_provider_store_reconnects_total.
  uint64_t store_reconnects_recorded = 0;
  /// The store's commits already counted in llm_provider_store_commits_total.
  uint64_t store_commits_recorded = 0;
  uint64_t completed_total = 0;
  uint64_t failed_total = 0;
  uint64_t expired_total = 0;
  uint64_t retried_total = 0;
  uint64_t recovered_total = 0;
  /// Requests other nodes stored, taken in by `adopt` (cluster leader).
  uint64_t adopted_total = 0;
  /// Requests finalized within cfg.adoption_memory (time order), which `adopt` skips.
  std::deque<std::pair<caf::timestamp, std::string>> recent_finals;
  std::unordered_set<std::string> recent_final_ids;
  uint64_t unreadable_total = 0;
  uint64_t processing_count = 0;
  /// The waiting requests by provider and model in /metrics, set from each status answer.
  queue_gauges waiting_gauges;
  /// The queue table's groups as of its last walk: waiting requests by (provider, model)
  /// with the oldest one's queued_at (the age is taken at each answer).
  struct waiting_group {
    caf::timestamp oldest;
    double waiting = 0;
  };
  std::map<std::pair<std::string, std::string>, waiting_group> waiting_walk;
  /// Messages other than status questions handled when the walk was made. Only they change
  /// the queue, so status questions that piled up (the inspector asks every second and
  /// gives up after 0.5 s, so a recovery of 30 s leaves some 30 in the mailbox, each a walk
  /// of up to 100,000 entries) share one walk instead of holding up the start.
  uint64_t waiting_walk_at = ~uint64_t{0};
  uint64_t status_questions = 0;
  uint64_t queue_table_walks = 0;
};

/// Spawns with: the config, the store, the metrics and callbacks actors. Recovers the
/// store at start: processing requests go back to queued (at-least-once), undelivered
/// results go back to the callbacks actor.
queue_manager_impl_actor::behavior_type
queue_manager(queue_manager_impl_actor::stateful_pointer<queue_manager_state> self,
              queue_manager_config cfg, store* db, metrics_actor metrics,
              callbacks_actor callbacks);

} // namespace lps
