#pragma once

// The durable store: SQLite in WAL mode with group commit (behind an interface another
// backend can implement). Plain structs in, plain
// structs out; it knows no actor. Writes are queued and committed by one writer thread
// in as few transactions as possible; each write's callback runs (on the writer thread)
// only after the transaction holding it committed.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace lps {

/// How the store is opened.
struct store_options {
  /// Folder for lps.db (created if missing).
  std::string data_dir = "./var";
  /// true: synchronous=FULL (fsync at every commit; survives power loss).
  /// false: synchronous=NORMAL (survives process crashes, not power loss).
  bool fsync_every_commit = true;
  /// Most operations folded into one transaction.
  size_t max_ops_per_commit = 4096;
  /// Tests only: no writer thread; writes wait until flush(), which commits them and runs
  /// their callbacks on the calling thread (deterministic actor tests need every message
  /// to come from the test thread).
  bool manual_commits = false;
  /// Without fsync at every commit: the WAL length (in 8 KiB frames) at which a background
  /// thread checkpoints it (1024: 8 MiB), instead of SQLite's automatic checkpoint inside a
  /// commit, whose syncs hold every commit behind it. Should the WAL still reach 8 times
  /// this (commits never pause long enough for it to restart), the writer checkpoints
  /// between two commits itself. With fsync at every commit SQLite's own checkpoint stays:
  /// there the background one's syncs compete with the commits' and raised median latency
  /// (docs/benchmarks.md, "WAL checkpoints off the writer thread"). 0: SQLite's own in
  /// both modes.
  uint32_t wal_checkpoint_frames = 1024;
  /// Final results whose callback was delivered or given up (or that have none) are deleted once
  /// their completed_at is older than this: by the writer thread, between commits, in small
  /// transactions (docs/operations.md, "Retention"). 0: kept forever. With manual_commits
  /// only purge_expired_results() purges.
  std::chrono::milliseconds result_retention{0};
};

/// A request row: indexed columns plus the opaque serialized request.
struct stored_request {
  std::string queue_id;
  int32_t priority = 5;
  int64_t queued_at_ms = 0;
  uint64_t size_bytes = 0;
  uint32_t attempts = 0;
  /// Serialized comparison_request without its texts (the caller decides the encoding).
  std::string payload;
  /// The request's texts (prompt and blocks), serialized apart so the queue can keep them
  /// out of memory and read them back when a provider call needs them. Filled only by
  /// load_rows.
  std::string texts;
  /// The resolved provider (the queue keeps one ready queue per provider).
  std::string provider;
  /// The run it belongs to (metadata.bos_batch_id; empty: none). Written, not read back:
  /// only load_run looks it up.
  std::string bos_batch_id{};
  /// Written for operators' SQL, not read back: the model it will be called with (its
  /// override, else its provider's default; empty: neither), its correlation_id, and its
  /// CJ batch (metadata.cj_batch_id as text; empty: none).
  std::string model{};
  std::string correlation_id{};
  std::string cj_batch_id{};
  /// Handed to a provider (the dispatch mark). Filled by load_rows on PostgreSQL only, where
  /// a cluster node reads it to answer the status of a request its leader processes.
  bool processing{};
};

/// A final result row.
struct stored_result {
  std::string queue_id;
  /// completed, failed or expired.
  std::string status;
  /// The rendered result event JSON.
  std::string event_json;
  /// Empty when no delivery is needed.
  std::string callback_url;
  bool delivered = false;
  int64_t completed_at_ms = 0;
  /// When the callbacks actor gave up delivering (0: it has not): a given-up result is not
  /// handed to it again at start and counts as delivered for retention.
  int64_t delivery_failed_at_ms = 0;
  /// Attempts of the run that gave up, and why its last one failed.
  uint32_t delivery_attempts = 0;
  std::string last_delivery_error{};
  /// The run of its request (metadata.bos_batch_id; empty: none). Written, not read back:
  /// only load_run counts it.
  std::string bos_batch_id{};
  /// Written for operators' SQL, not read back: the provider and model that served it (the
  /// request's own when no call was made), its error code (empty: none, as when completed),
  /// and its request's correlation_id and CJ batch (empty: none).
  std::string provider{};
  std::string model{};
  std::string error_code{};
  std::string correlation_id{};
  std::string cj_batch_id{};
};

/// What the store holds of one run (the requests sharing a metadata.bos_batch_id), as of
/// one moment.
struct run_rows {
  /// Queue ids of its requests that are not final.
  std::vector<std::string> active;
  /// Its final results still stored (retention deletes old ones).
  uint64_t finals = 0;
};

/// One run's counts as of one moment (summarize_runs, summarize_run).
struct run_summary {
  std::string bos_batch_id;
  /// Requests not final yet.
  uint64_t active = 0;
  /// Final results still stored, by outcome: completed, failed (cancelled ones apart),
  /// expired, and cancelled (status failed with error code CANCELLED).
  uint64_t completed = 0;
  uint64_t failed = 0;
  uint64_t expired = 0;
  uint64_t cancelled = 0;
  /// Final results completed at or after the `since_ms` asked for (a rate's numerator).
  uint64_t finals_since = 0;
  /// queued_at of its oldest active request (0: none active; a result keeps no queue time
  /// in the SQLite store, so both stores answer from active requests only).
  int64_t first_queued_at_ms = 0;
  /// completed_at of its newest final result (0: none stored).
  int64_t last_completed_at_ms = 0;
  /// Sum of its stored results' data.cost_estimate (USD).
  double cost_estimate = 0;
  /// Its stored results that are not completed, by data.error_detail.error_code ("UNKNOWN"
  /// when the event has none). Filled by summarize_run only.
  std::map<std::string, uint64_t> errors_by_code;
};

/// Where a page of a run's results ends: its last result's completed_at and queue id (the
/// page order).
struct result_cursor {
  int64_t completed_at_ms = 0;
  std::string queue_id;
};

/// The callbacks actor gave up delivering a result's callback.
struct delivery_give_up {
  std::string queue_id;
  int64_t failed_at_ms = 0;
  uint32_t attempts = 0;
  std::string last_error;
};

/// One write. Exactly one of the groups is used per operation kind.
struct store_write {
  /// Insert new requests (one transaction; all or nothing).
  std::vector<stored_request> inserts;
  /// Record results and remove their requests in the same transaction.
  std::vector<stored_result> finals;
  /// Mark results delivered.
  std::vector<std::string> delivered;
  /// Requests put back in the queue (queue_id, attempts so far): their status becomes
  /// queued and their attempt counter this.
  std::vector<std::pair<std::string, uint32_t>> attempts;
  /// Requests handed to a provider: their status becomes processing.
  std::vector<std::string> dispatched;
  /// Record idempotency keys (key, queue_id); a key already recorded keeps its queue id.
  std::vector<std::pair<std::string, std::string>> idempotency_keys;
  /// Record callback deliveries given up.
  std::vector<delivery_give_up> delivery_give_ups;
  /// Cluster mode (PostgreSQL only): the leader lease epoch this write was made under; the
  /// store commits it only while the lease is still held at that epoch, else the write fails
  /// ("no longer leader") and nothing of it is written. 0: not fenced (a single node).
  int64_t fencing_epoch = 0;
};

/// Whether the store can take writes now (store::health). A backend on a database server
/// (PostgreSQL) loses it when the connection does, and gets it back by reconnecting on its
/// writer thread; the embedded SQLite store is always available.
struct store_health {
  /// False while the writer has lost its database and is reconnecting.
  bool available = true;
  /// When it became unavailable (Unix milliseconds; 0 while available).
  int64_t unavailable_since_ms = 0;
  /// Why the last commit or reconnect failed (never a password); kept after the store is back.
  std::string last_error{};
  /// Times the store came back after being unavailable.
  uint64_t reconnects = 0;
};

/// The Retry-After (seconds) of a submission refused while the store is unavailable: the
/// longest wait between two reconnect attempts.
inline constexpr uint32_t store_unavailable_retry_after_s = 5;

/// Called once after the write committed (ok == true) or failed (ok == false, error text).
using store_callback = std::function<void(bool ok, const std::string& error)>;

/// Counters for inspection and benchmarks.
struct store_stats {
  uint64_t commits = 0;
  uint64_t ops_committed = 0;
  uint64_t failed_commits = 0;
  uint64_t pending_ops = 0;
  /// WAL checkpoints by the background thread, and RESTART checkpoints the writer waited
  /// for (the backstop; also counted in background_checkpoints when the thread ran them).
  uint64_t background_checkpoints = 0;
  uint64_t writer_checkpoints = 0;
  /// Results deleted by the retention rule, and the transactions that did it.
  uint64_t results_purged = 0;
  uint64_t purge_steps = 0;
};

/// The reads that serve requests (results, idempotency keys, texts read back, runs), on one
/// read connection. The store answers them on its own read connection (for tools, tests and
/// the start-up scan); store::open_reader gives each reader thread of the store_reader pool
/// (runtime/store_reader.hpp) a connection of its own, so request paths never wait for each
/// other's reads nor run one on an actor's or an I/O thread. One from open_reader serves one
/// thread at a time.
class store_reads {
public:
  virtual ~store_reads() = default;

  /// Reads a final result by queue id.
  virtual std::optional<stored_result> find_result(const std::string& queue_id) = 0;

  /// The queue id recorded for an idempotency key. Keys are dropped with their request's
  /// result.
  virtual std::optional<std::string> find_idempotency_key(const std::string& key) = 0;

  /// Whole rows (payload and texts) of active requests by queue id; gone ids are left out.
  virtual std::vector<stored_request> load_rows(const std::vector<std::string>& queue_ids) = 0;

  /// A run's active requests and final results (one read transaction). Requests stored
  /// before schema version 4 have no run recorded.
  virtual run_rows load_run(const std::string& bos_batch_id) = 0;

  /// The runs with active requests or stored results, newest first (by their latest queue or
  /// completion time), at most `limit` of them (one read).
  virtual std::vector<run_summary> summarize_runs(int64_t since_ms, size_t limit) = 0;

  /// One run with its errors by code, or nullopt when the store holds none of its rows.
  virtual std::optional<run_summary> summarize_run(const std::string& bos_batch_id,
                                                   int64_t since_ms) = 0;

  /// Up to `limit` final results of a run ordered by (completed_at, queue_id), those after
  /// `after` when given.
  virtual std::vector<stored_result> load_run_results(const std::string& bos_batch_id,
                                                      const std::optional<result_cursor>& after,
                                                      size_t limit) = 0;
};

/// The store's contract, in plain structs (no SQLite type): what the queue manager and the
/// callbacks actor use; the reads of store_reads are thread-safe on the store's own read
/// connection (one at a time). store::open gives the SQLite implementation (runtime/store.cpp);
/// another backend (STORE_BACKEND=postgres, CONTRACTS.md section 6) implements the same
/// interface and the callers stay as they are.
class store : public store_reads {
public:
  /// Opens the SQLite store (creating schema if needed) or returns nullptr with `error` set.
  static std::unique_ptr<store> open(const store_options& options, std::string& error);

  virtual ~store() = default;
  store(const store&) = delete;
  store& operator=(const store&) = delete;

  /// Queues a write; thread-safe; never blocks on I/O.
  virtual void submit(store_write write, store_callback done) = 0;

  /// Blocks until every write submitted before this call committed.
  virtual void flush() = 0;

  /// Streams every active (not final) request's scheduling columns (queue id, priority,
  /// queued_at, size, attempts, provider; no payload, no texts) in (priority desc,
  /// queued_at asc, insertion) order. The start-up recovery: by then every request left
  /// processing, except an unfinished provider batch job's, says queued again (SQLite does
  /// it at open; PostgreSQL here, because only the node that recovers the whole queue may).
  virtual void load_active_index(const std::function<void(stored_request&&)>& visit) = 0;

  /// Results with a callback_url that were neither delivered nor given up yet.
  virtual std::vector<stored_result> load_undelivered_results() = 0;

  /// Deletes every result the retention rule (store_options::result_retention) lets go as
  /// of now, in the writer's small transactions, and waits for it. The writer does the same
  /// on its own; this is for tests and tools. Does nothing when retention is 0.
  virtual void purge_expired_results() = 0;

  /// Opens another read connection with the reads of store_reads, for one reader thread
  /// (store_reader): on SQLite a read-only connection on lps.db (WAL: it never waits for the
  /// writer), on PostgreSQL a libpq connection of its own. nullptr with `error` set when it
  /// cannot be opened. The store must outlive it.
  virtual std::unique_ptr<store_reads> open_reader(std::string& error) = 0;

  /// Counts of rows: active requests and results.
  virtual uint64_t count_active_requests() = 0;
  virtual uint64_t count_results() = 0;

  virtual store_stats stats() const = 0;

  /// Whether writes can commit now (thread-safe, no I/O). Always available unless the
  /// backend can lose its database.
  virtual store_health health() const {
    return {};
  }

  /// Path of the database file.
  virtual const std::string& path() const = 0;

protected:
  store() = default;
};

} // namespace lps
