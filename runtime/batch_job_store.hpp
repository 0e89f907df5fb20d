#pragma once

// Durable references to provider batch jobs (OpenAI Batch API, Anthropic Message Batches)
// and the queue items each job holds. Plain structs in, plain structs out; it knows no
// actor. It shares lps.db with the main store through its own connection (WAL mode) and
// owns only the tables batch_jobs and batch_job_items; the main store's tables and
// PRAGMA user_version are left alone. Every call is synchronous, thread-safe (one mutex
// around the connection) and never throws: writes answer false with an error text,
// reads log with spdlog and answer empty.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace lps {

/// One provider batch job as the store keeps it.
struct batch_job_record {
  /// Ours, e.g. "bj-<uuid>".
  std::string job_id;
  /// "openai", "anthropic".
  std::string provider;
  std::string model;
  /// created, uploaded, submitting, submitted, cancelling, ended, collected, failed. Free
  /// text: the actor owns the meaning; the store only knows that "collected" and "failed"
  /// are final.
  std::string state;
  /// "" until known.
  std::string provider_job_id;
  /// OpenAI input file id, "" otherwise.
  std::string file_id;
  /// Stored as one TEXT column: each location followed by '\n', with '\\' and '\n' inside
  /// a location escaped as "\\\\" and "\\n" (so any string round-trips, empty ones too).
  std::vector<std::string> result_locations;
  /// The provider's own word.
  std::string provider_status;
  std::string last_error;
  bool cancel_requested = false;
  uint64_t item_count = 0, succeeded = 0, failed = 0;
  int64_t created_at_ms = 0, submitted_at_ms = 0, updated_at_ms = 0, ended_at_ms = 0;
};

/// How the batch job store is opened.
struct batch_job_store_options {
  /// Folder for lps.db (created if missing); the same folder as the main store's.
  std::string data_dir = "./var";
  /// true: synchronous=FULL (fsync at every commit); false: synchronous=NORMAL.
  bool fsync_every_commit = true;
};

/// Whether a job's state is final ("collected" or "failed"): its items are released.
bool is_final_batch_job_state(const std::string& state);

/// batch_job_record::result_locations as both backends keep it in one text column.
std::string encode_result_locations(const std::vector<std::string>& locations);
std::vector<std::string> decode_result_locations(const std::string& text);

/// The batch job store's contract, in plain structs (no database type). batch_job_store::open
/// gives the SQLite implementation (runtime/batch_job_store.cpp),
/// open_postgres_batch_job_store the PostgreSQL one (runtime/pg_batch_job_store.hpp); the
/// batch jobs actor sees only this interface. Both pass the same contract tests
/// (tests/unit/batch_job_store_test.cpp).
class batch_job_store {
public:
  /// Opens lps.db under data_dir (creating the folder, the file and the two tables if
  /// missing) or returns nullptr with `error` set.
  static std::unique_ptr<batch_job_store> open(const batch_job_store_options& options,
                                               std::string& error);

  virtual ~batch_job_store() = default;
  batch_job_store(const batch_job_store&) = delete;
  batch_job_store& operator=(const batch_job_store&) = delete;

  /// One transaction: the job row and one row per item (queue id -> job id, in the given
  /// order). Fails (false, error; nothing written) if the job id exists, an item id is
  /// empty or listed twice, or an item already belongs to an unfinished job. An item left
  /// behind by a final job that was never finish()ed is taken over.
  virtual bool create(const batch_job_record& job, const std::vector<std::string>& item_ids,
                      std::string& error) = 0;

  /// Updates every column of an existing job (false if unknown).
  virtual bool update(const batch_job_record& job, std::string& error) = 0;

  /// One transaction: updates the job and releases its items (deletes their rows), so they
  /// no longer count as owned. The job's state must be final ("collected" or "failed"),
  /// otherwise nothing is written and false is returned.
  virtual bool finish(const batch_job_record& job, std::string& error) = 0;

  /// The job, or nullopt if unknown (or on a read error, which is logged).
  virtual std::optional<batch_job_record> find(const std::string& job_id) = 0;

  /// Jobs of `provider` whose state is not final, oldest first (created_at_ms, then
  /// insertion order).
  virtual std::vector<batch_job_record> load_unfinished(const std::string& provider) = 0;

  /// The job's queue ids in insertion order (empty once the job is finished).
  virtual std::vector<std::string> load_items(const std::string& job_id) = 0;

  /// Queue id -> job id for every item of an unfinished job.
  virtual std::unordered_map<std::string, std::string> load_owned_items() = 0;

  /// Up to `limit` jobs of any state, newest first (created_at_ms desc).
  virtual std::vector<batch_job_record> list(size_t limit) = 0;

  /// Path of the database file.
  virtual const std::string& path() const = 0;

  /// The store as a cluster leader at `epoch` writes it (docs/cluster.md): every write first
  /// checks that `epoch` still holds the leader lease, in its transaction, and fails ("no
  /// longer leader") otherwise; reads are unchanged. It uses this store, which outlives it.
  /// nullptr where there is no lease (SQLite: a single node).
  virtual std::unique_ptr<batch_job_store> fenced(int64_t epoch) {
    (void)epoch;
    return nullptr;
  }

protected:
  batch_job_store() = default;
};

} // namespace lps
