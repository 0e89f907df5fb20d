#include "runtime/pg_schema.hpp"

#include <algorithm>

namespace lps::pg {

namespace {

// Key of the transaction-level advisory lock that serialises migrations ("lps" + "schema").
constexpr const char* lock_sql = "SELECT pg_advisory_xact_lock(7081835, 1)";

constexpr const char* history_sql = R"sql(
CREATE TABLE IF NOT EXISTS lps_schema_migrations(
  version integer PRIMARY KEY,
  description text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()))sql";

// Version 1: the queue, results with their callback outbox, idempotency keys and batch jobs.
// The columns operators query (status, provider, model, priority, batch and correlation ids,
// times) are real columns with indexes; the request itself stays a binary payload that only
// lps reads. One row per request in `results` (primary key): a second final insert is
// `ON CONFLICT DO NOTHING`, never a second event. Event JSON is text, not jsonb, so the
// bytes a callback receives are the bytes stored.
constexpr const char* v1_sql = R"sql(
CREATE TABLE requests(
  queue_id text PRIMARY KEY,
  status text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'processing')),
  priority smallint NOT NULL CHECK (priority BETWEEN 0 AND 10),
  provider text NOT NULL,
  model text NOT NULL DEFAULT '',
  correlation_id text NOT NULL,
  bos_batch_id text,
  cj_batch_id text,
  queued_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  attempts integer NOT NULL DEFAULT 0,
  size_bytes bigint NOT NULL,
  payload bytea NOT NULL,
  texts bytea NOT NULL DEFAULT '\x');
CREATE INDEX requests_schedule ON requests(provider, priority DESC, queued_at);
CREATE INDEX requests_bos_batch ON requests(bos_batch_id) WHERE bos_batch_id IS NOT NULL;
CREATE INDEX requests_cj_batch ON requests(cj_batch_id) WHERE cj_batch_id IS NOT NULL;
CREATE INDEX requests_correlation ON requests(correlation_id);

CREATE TABLE results(
  queue_id text PRIMARY KEY,
  status text NOT NULL CHECK (status IN ('completed', 'failed', 'expired', 'cancelled')),
  error_code text,
  provider text NOT NULL,
  model text NOT NULL,
  correlation_id text NOT NULL,
  bos_batch_id text,
  cj_batch_id text,
  priority smallint NOT NULL,
  queued_at timestamptz NOT NULL,
  completed_at timestamptz NOT NULL,
  event_json text NOT NULL,
  callback_url text NOT NULL DEFAULT '',
  delivered boolean NOT NULL DEFAULT false,
  delivery_attempts integer NOT NULL DEFAULT 0,
  last_delivery_error text);
CREATE INDEX results_undelivered ON results(completed_at)
  WHERE NOT delivered AND callback_url <> '';
CREATE INDEX results_bos_batch ON results(bos_batch_id, completed_at)
  WHERE bos_batch_id IS NOT NULL;
CREATE INDEX results_cj_batch ON results(cj_batch_id) WHERE cj_batch_id IS NOT NULL;
CREATE INDEX results_correlation ON results(correlation_id);
CREATE INDEX results_completed_at ON results(completed_at);

CREATE TABLE idempotency_keys(
  key text PRIMARY KEY,
  queue_id text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now());

CREATE TABLE batch_jobs(
  job_id text PRIMARY KEY,
  provider text NOT NULL,
  model text NOT NULL,
  state text NOT NULL,
  provider_job_id text NOT NULL DEFAULT '',
  file_id text NOT NULL DEFAULT '',
  result_locations text NOT NULL DEFAULT '',
  provider_status text NOT NULL DEFAULT '',
  last_error text NOT NULL DEFAULT '',
  cancel_requested boolean NOT NULL DEFAULT false,
  item_count integer NOT NULL,
  succeeded integer NOT NULL DEFAULT 0,
  failed integer NOT NULL DEFAULT 0,
  created_at timestamptz NOT NULL,
  submitted_at timestamptz,
  updated_at timestamptz NOT NULL,
  ended_at timestamptz);
CREATE INDEX batch_jobs_open ON batch_jobs(provider, created_at)
  WHERE state NOT IN ('collected', 'failed');

CREATE TABLE batch_job_items(
  queue_id text PRIMARY KEY,
  job_id text NOT NULL REFERENCES batch_jobs(job_id) ON DELETE CASCADE,
  seq integer NOT NULL);
CREATE INDEX batch_job_items_job ON batch_job_items(job_id, seq);
)sql";

// Version 2: what the store contract (runtime/store.hpp) needs and version 1 lacked.
// `seq` keeps insertion order among rows with the same priority and time (SQLite's rowid).
// The store knows a request's priority, provider and times but not its model, correlation
// or batch ids (they sit in the opaque payload), so those columns default to '' and stay
// NULL. Priorities are whatever the queue uses. A result records when its callback was
// given up. An idempotency key lives as long as its request's result: the trigger drops it
// with the result, whoever deletes that (retention, an operator).
constexpr const char* v2_sql = R"sql(
ALTER TABLE requests ADD COLUMN seq bigint GENERATED ALWAYS AS IDENTITY;
ALTER TABLE requests DROP CONSTRAINT requests_priority_check;
ALTER TABLE requests ALTER COLUMN priority TYPE integer;
ALTER TABLE requests ALTER COLUMN correlation_id SET DEFAULT '';
ALTER TABLE results ADD COLUMN seq bigint GENERATED ALWAYS AS IDENTITY;
ALTER TABLE results ALTER COLUMN priority TYPE integer;
ALTER TABLE results ALTER COLUMN model SET DEFAULT '';
ALTER TABLE results ALTER COLUMN correlation_id SET DEFAULT '';
ALTER TABLE results ADD COLUMN delivery_failed_at timestamptz;
CREATE INDEX idempotency_keys_queue_id ON idempotency_keys(queue_id);
CREATE FUNCTION lps_drop_idempotency_keys() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM idempotency_keys WHERE queue_id = OLD.queue_id;
  RETURN NULL;
END $$;
CREATE TRIGGER idempotency_keys_follow_results AFTER DELETE ON results
  FOR EACH ROW EXECUTE FUNCTION lps_drop_idempotency_keys();
)sql";

// Version 3 (issue #11): the cluster's leader lease and node registry (runtime/cluster_lease,
// runtime/cluster_registry). A lease row names its holder and a fencing epoch that grows by
// one with every new holder; expiry is the database's clock, never a node's. lps_lease_held
// is the fencing guard of final writes: true while `lease` is live at `lease_epoch`, and it
// locks the lease row (FOR SHARE) until the writing transaction ends, so a takeover waits for
// that write to commit and no guarded write of an older epoch commits after a takeover.
// A node row's incarnation changes at every registration, so a node whose row was taken by a
// new process of the same name learns it at its next heartbeat.
constexpr const char* v3_sql = R"sql(
CREATE TABLE cluster_lease(
  name text PRIMARY KEY,
  holder text NOT NULL,
  epoch bigint NOT NULL CHECK (epoch > 0),
  acquired_at timestamptz NOT NULL,
  renewed_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL);
CREATE FUNCTION lps_lease_held(lease text, lease_epoch bigint) RETURNS boolean
  LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  PERFORM 1 FROM cluster_lease
    WHERE name = lease AND epoch = lease_epoch AND expires_at > clock_timestamp() FOR SHARE;
  RETURN FOUND;
END $$;

CREATE SEQUENCE cluster_node_incarnations;
CREATE TABLE cluster_nodes(
  name text PRIMARY KEY,
  host text NOT NULL,
  port integer NOT NULL CHECK (port BETWEEN 0 AND 65535),
  version text NOT NULL,
  roles text NOT NULL,
  incarnation bigint NOT NULL DEFAULT nextval('cluster_node_incarnations'),
  started_at timestamptz NOT NULL DEFAULT now(),
  heartbeat_at timestamptz NOT NULL DEFAULT now());
)sql";

// Version 4: the batch job tables in the shape of the batch job store contract
// (runtime/batch_job_store.hpp), replacing version 1's, which nothing ever wrote: times as
// Unix milliseconds and counters as 64-bit integers, so a record round-trips exactly as on
// SQLite (0 = not yet), and `seq` for insertion order among jobs created in the same
// millisecond. An item row of a final job no longer counts as owned and is taken over.
constexpr const char* v4_sql = R"sql(
DROP TABLE batch_job_items;
DROP TABLE batch_jobs;
CREATE TABLE batch_jobs(
  job_id text PRIMARY KEY,
  provider text NOT NULL,
  model text NOT NULL,
  state text NOT NULL,
  provider_job_id text NOT NULL,
  file_id text NOT NULL,
  result_locations text NOT NULL,
  provider_status text NOT NULL,
  last_error text NOT NULL,
  cancel_requested boolean NOT NULL,
  item_count bigint NOT NULL,
  succeeded bigint NOT NULL,
  failed bigint NOT NULL,
  created_at_ms bigint NOT NULL,
  submitted_at_ms bigint NOT NULL,
  updated_at_ms bigint NOT NULL,
  ended_at_ms bigint NOT NULL,
  seq bigint GENERATED ALWAYS AS IDENTITY);
CREATE INDEX batch_jobs_open ON batch_jobs(provider, created_at_ms, seq)
  WHERE state NOT IN ('collected', 'failed');
CREATE INDEX batch_jobs_created ON batch_jobs(created_at_ms, seq);
CREATE TABLE batch_job_items(
  queue_id text PRIMARY KEY,
  job_id text NOT NULL REFERENCES batch_jobs(job_id) ON DELETE CASCADE,
  seq bigint NOT NULL);
CREATE INDEX batch_job_items_job ON batch_job_items(job_id, seq);
)sql";

// Version 5 (issue #11, the running cluster): `requests.seq` indexed, so the leader's store
// poller reads only rows newer than those it saw; the epoch a final result was written
// under (NULL on a single node); and lps_require_lease, the fencing guard as a statement
// that fails its transaction when the lease is no longer held at the epoch (a group commit
// then retries its writes one by one, so only the fenced writes fail).
constexpr const char* v5_sql = R"sql(
CREATE INDEX requests_seq ON requests(seq);
ALTER TABLE results ADD COLUMN epoch bigint;
CREATE FUNCTION lps_require_lease(lease text, lease_epoch bigint) RETURNS void
  LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  IF NOT lps_lease_held(lease, lease_epoch) THEN
    RAISE EXCEPTION 'no longer leader: lease % is not held at epoch %', lease, lease_epoch;
  END IF;
END $$;
)sql";

// Version 6 (issue #10, a restart on 1,000,000 queued requests): the start-up recovery scan
// (pg_reader::load_index in runtime/pg_store.cpp) reads `requests_recovery`, an index in
// exactly its order that includes every column it reads, so PostgreSQL streams the rows from
// the first one without sorting (version 5 sorted 1,000,000 rows on disk, 3.1 s) and, where
// the visibility map says a page is all-visible, without reading the table, whose rows hold
// the payloads. It replaces `requests_schedule` (provider first), which no statement used, so
// an insert still maintains as many request indexes as before. The requests marked processing
// (a few per request in flight) get a partial index, so the start-up reset of them
// (pg_reader::requeue_processing) reads only them, not the table (SQLite's
// `requests_processing`).
constexpr const char* v6_sql = R"sql(
DROP INDEX requests_schedule;
CREATE INDEX requests_recovery ON requests(priority DESC, queued_at, seq)
  INCLUDE (queue_id, size_bytes, attempts, provider);
CREATE INDEX requests_processing ON requests(queue_id) WHERE status = 'processing';
)sql";

// Version 7 (issue #11, cancels on any node): a cancel asked
// on any node is recorded here and applied by the leader, the one writer of finals (its store
// poller reads the open rows); the leader records what the cancel did, which the asking node
// waits for to answer as a single node does. Exactly one of queue_id and bos_batch_id is set.
// New work wakes the leader's poller at once: an insert into requests or cluster_cancels
// NOTIFYs channel lps_work (at commit; one per transaction). The trigger on requests is
// created disabled, so a single node's intake pays nothing; the first cluster leader's
// store poller enables it. A lost notification delays: the poller's timer reads anyway. A node that
// got SIGTERM marks its registry row `leaving` until it is gone.
constexpr const char* v7_sql = R"sql(
CREATE TABLE cluster_cancels(
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  queue_id text NOT NULL DEFAULT '',
  bos_batch_id text NOT NULL DEFAULT '',
  requested_by text NOT NULL,
  requested_at timestamptz NOT NULL DEFAULT now(),
  answered_at timestamptz,
  cancelled bigint NOT NULL DEFAULT 0,
  already_processing bigint NOT NULL DEFAULT 0,
  already_final bigint NOT NULL DEFAULT 0,
  not_found bigint NOT NULL DEFAULT 0,
  CHECK ((queue_id = '') <> (bos_batch_id = '')));
CREATE INDEX cluster_cancels_open ON cluster_cancels(id) WHERE answered_at IS NULL;
ALTER TABLE cluster_nodes ADD COLUMN leaving boolean NOT NULL DEFAULT false;
CREATE FUNCTION lps_notify_work() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('lps_work', '');
  RETURN NULL;
END $$;
CREATE TRIGGER requests_notify_work AFTER INSERT ON requests
  FOR EACH STATEMENT EXECUTE FUNCTION lps_notify_work();
ALTER TABLE requests DISABLE TRIGGER requests_notify_work;
CREATE TRIGGER cluster_cancels_notify_work AFTER INSERT ON cluster_cancels
  FOR EACH STATEMENT EXECUTE FUNCTION lps_notify_work();
)sql";

// Version 8 (issue #10, the marks as their own rows): the dispatch mark and the delivered
// mark no longer update the request or result row. Before, each wrote a new version of its
// row and an entry in every index of its table, never a HOT update, because `status` and
// `delivered` were named in the predicates of the partial indexes requests_processing and
// results_undelivered (45 % of the server's executor time per request at 64 in flight,
// docs/benchmarks.md). Now a request handed to a provider has a row in `requests_processing`
// (inserted at dispatch, deleted when it is put back or final), and a result not yet
// delivered has one in `results_undelivered` (inserted with the final unless it says
// delivered, deleted at delivery): small rows with one index each, which the start-up
// requeue and the redelivery read instead of the big tables. The two columns go; existing
// marks move to the new tables (the processing ones read through the old partial index). A
// result's marks go with it: the trigger that drops its idempotency keys drops its
// undelivered row too.
constexpr const char* v8_sql = R"sql(
ALTER INDEX requests_processing RENAME TO requests_processing_v7;
CREATE TABLE requests_processing(
  queue_id text PRIMARY KEY,
  since timestamptz NOT NULL DEFAULT now());
INSERT INTO requests_processing(queue_id, since)
  SELECT queue_id, updated_at FROM requests WHERE status = 'processing';
DROP INDEX requests_processing_v7;
ALTER TABLE requests DROP COLUMN status;
DROP INDEX results_undelivered;
CREATE TABLE results_undelivered(queue_id text PRIMARY KEY);
INSERT INTO results_undelivered(queue_id) SELECT queue_id FROM results WHERE NOT delivered;
ALTER TABLE results DROP COLUMN delivered;
CREATE OR REPLACE FUNCTION lps_drop_idempotency_keys() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM idempotency_keys WHERE queue_id = OLD.queue_id;
  DELETE FROM results_undelivered WHERE queue_id = OLD.queue_id;
  RETURN NULL;
END $$;
)sql";

/// The version recorded in the history table; 0 when the table does not exist yet. Two
/// statements: a query naming a missing table fails even in a branch never taken.
result query_version(connection& db) {
  auto exists = db.exec("SELECT to_regclass('lps_schema_migrations') IS NOT NULL");
  if (!exists.ok || exists.rows.empty() || exists.rows[0][0] != "t")
    return exists.ok ? db.exec("SELECT 0") : exists;
  return db.exec("SELECT coalesce(max(version), 0) FROM lps_schema_migrations");
}

int version_of(const result& r) {
  return r.rows.empty() || !r.rows[0][0] ? 0 : std::stoi(*r.rows[0][0]);
}

std::string newer_schema_error(int database, int binary) {
  return "the database's lps schema is version " + std::to_string(database)
         + ", newer than this lps knows (" + std::to_string(binary)
         + "): run the newer lps, or restore a backup made for this version";
}

/// Applies the migrations after `from` up to `to`, inside the caller's transaction.
std::string apply_after(connection& db, int from, int to) {
  for (const auto& m : migrations()) {
    if (m.version <= from || m.version > to)
      continue;
    if (auto r = db.exec_script(m.sql); !r.ok)
      return "migration " + std::to_string(m.version) + " (" + m.description
             + ") failed: " + r.error;
    if (auto r = db.exec("INSERT INTO lps_schema_migrations(version, description) VALUES($1, $2)",
                         {std::to_string(m.version), m.description});
        !r.ok)
      return "cannot record migration " + std::to_string(m.version) + ": " + r.error;
  }
  return "";
}

} // namespace

const std::vector<migration>& migrations() {
  static const std::vector<migration> result{
      {1, "queue, results and outbox, idempotency keys, batch jobs", v1_sql},
      {2, "insertion order, callbacks given up, keys dropped with their result", v2_sql},
      {3, "cluster leader lease with fencing epoch, node registry", v3_sql},
      {4, "batch job tables in the batch job store's shape", v4_sql},
      {5, "cluster: request sequence index, result epoch, lease check", v5_sql},
      {6, "recovery scan index in its order, processing requests index", v6_sql},
      {7, "cluster: cancels on any node, new work notified, nodes leaving", v7_sql},
      {8, "processing and undelivered marks as rows of their own tables", v8_sql},
  };
  return result;
}

int binary_schema_version() {
  return migrations().back().version;
}

schema_report read_schema_version(connection& db) {
  schema_report report;
  auto r = query_version(db);
  if (!r.ok) {
    report.error = "cannot read the schema version: " + r.error;
    return report;
  }
  report.before = report.after = version_of(r);
  if (report.before > binary_schema_version())
    report.error = newer_schema_error(report.before, binary_schema_version());
  return report;
}

schema_report migrate(connection& db, int up_to) {
  schema_report report;
  auto fail = [&](std::string why) {
    db.exec("ROLLBACK");
    report.after = report.before;
    report.error = std::move(why);
    return report;
  };
  if (auto r = db.exec("BEGIN"); !r.ok)
    return fail("cannot begin: " + r.error);
  // The lock comes before the history table, so two nodes never race to create it.
  if (auto r = db.exec(lock_sql); !r.ok)
    return fail("cannot take the migration lock: " + r.error);
  if (auto r = db.exec(history_sql); !r.ok)
    return fail("cannot create the migration history: " + r.error);
  auto current = query_version(db);
  if (!current.ok)
    return fail("cannot read the schema version: " + current.error);
  report.before = version_of(current);
  if (report.before > binary_schema_version())
    return fail(newer_schema_error(report.before, binary_schema_version()));
  if (auto why = apply_after(db, report.before, up_to); !why.empty())
    return fail(why);
  if (auto r = db.exec("COMMIT"); !r.ok)
    return fail("cannot commit the migrations: " + r.error);
  report.after = std::max(report.before, up_to);
  return report;
}

} // namespace lps::pg
