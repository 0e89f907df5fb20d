#pragma once

// A group commit's writes on PostgreSQL as set-based statements: one statement per kind of
// operation (insert requests, idempotency keys, status updates, finals, delivered marks,
// give-ups) for many rows at once, its rows in binary array parameters (unnest), instead of
// one statement per row. Each statement costs the server a parse of its parameters, an
// executor start and a protocol message, which per row was most of its CPU per request.
//
// The statements give the database the same state as running every write's operations one
// by one in submission order: a run of writes becomes a segment whose statements go in a
// fixed order of kinds (inserts, keys, status updates, finals, delivered marks, give-ups);
// an operation on a queue id that already has an operation of a later kind in the segment
// ends the segment first (e.g. a final then a new insert of the same id), so no operation
// runs before one that preceded it. Inside a segment repeated operations on one id fold as
// running them in turn would: the first final and the first idempotency key win (the
// statements say ON CONFLICT DO NOTHING), the last status and the last give-up hold,
// duplicate inserts stay (the statement fails on the unique key as the second insert would),
// and a status update followed by a final of its id is dropped (the final deletes the row).
//
// A kind with fewer rows than `set_from_rows` in a segment goes as one prepared statement per
// row instead (insert_request, record_final, ...): at one row an unnest costs the server
// more than the row's own work (one request in flight makes commits of one row each).

#include "runtime/postgres.hpp"
#include "runtime/store.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace lps::pg {

/// A statement of a transaction and what it does to which rows, for its error message
/// ("insert request 'q7' and 99 more").
struct labelled_call {
  prepared_call call;
  std::string label;
  /// Set for a COPY: its statement, run with call.params[0] as its data
  /// (connection::copy_in) instead of a prepared statement.
  const char* copy_sql = nullptr;
};

/// The statements write_set calls, as (name, SQL), to prepare on the writer's connection.
const std::vector<std::pair<const char*, const char*>>& write_statements();

/// The writer session's settings (SET statements), run before it prepares the statements.
/// Every statement of the writer finds its rows by key: each row of its arrays looked up in
/// a primary key index (a nested loop), however many. The planner would choose that from
/// the tables' statistics, but a plan is cached with the statistics of its time: one made
/// while a table was empty (a new database, after a purge) scans the whole table (a hash
/// join over a sequential scan) until the next ANALYZE, which at thousands of rows a second
/// is a whole table per statement. So the session allows nested loops over indexes only,
/// with one generic plan per statement (never planned again). And it compresses the texts
/// it writes with lz4, which costs the server a fraction of the CPU of the default pglz
/// (PostgreSQL 14 and later, built with lz4 as Debian's is; reads tell each value's method).
const std::vector<const char*>& writer_session_settings();

class write_set {
public:
  /// Below this many rows of a kind, one statement per row costs the server less than an
  /// unnest of arrays (measured: docs/benchmarks.md, "One row a commit").
  static constexpr size_t default_set_from_rows = 2;
  /// From this many request inserts in a segment they go as one binary COPY instead of an
  /// unnest (measured: docs/benchmarks.md, "COPY for many inserts").
  static constexpr size_t default_copy_from_rows = 2;

  /// `rows_per_statement`: at most this many rows in one statement (0 counts as 1).
  /// `set_from_rows`: a kind of operation with fewer rows than this in a segment goes as
  /// one statement per row (insert_request, record_final, ...) instead of one set-based
  /// statement (0 counts as 1: always set-based). `copy_from_rows`: request inserts of a
  /// segment at least this many (and at least set_from_rows) go as a COPY (0: never).
  explicit write_set(size_t rows_per_statement = 1000, size_t set_from_rows = default_set_from_rows,
                     size_t copy_from_rows = default_copy_from_rows);

  /// Adds `write`'s operations after those added before. The write must stay alive and
  /// unchanged until the statements holding it were taken.
  void add(const store_write& write);

  /// Statements complete so far (a finished segment, a lease check), not yet taken.
  size_t ready() const {
    return ready_.size();
  }

  /// Every statement so far, the open segment's included, in the order they must run;
  /// the set is empty afterwards.
  std::vector<labelled_call> take();

private:
  // The kinds on queue ids, in the order a segment runs them.
  enum class kind { insert, status, final, delivered, give_up };

  struct status_update {
    std::string_view queue_id;
    bool processing = false;
    std::optional<uint32_t> attempts;
    bool dropped = false; // a final of the id followed it (drop_status)
  };

  bool touch(std::string_view queue_id, kind k);
  void add_status(std::string_view queue_id, bool processing, std::optional<uint32_t> attempts);
  void drop_status(std::string_view queue_id);
  void close_segment();
  void emit_inserts();
  void emit_keys();
  void emit_status();
  void emit_finals();
  void emit_delivered();
  void emit_give_ups();
  void emit_inserts_rows();
  void emit_inserts_copy();
  void emit_keys_rows();
  void emit_status_rows();
  void emit_finals_rows();
  void emit_delivered_rows();
  void emit_give_ups_rows();

  size_t rows_per_statement_;
  size_t set_from_rows_;
  size_t copy_from_rows_;
  std::vector<labelled_call> ready_;
  std::set<int64_t> epochs_checked_;

  // The open segment: what it holds for each queue id (the latest kind), and its rows.
  std::unordered_map<std::string_view, kind> pending_;
  size_t rows_ = 0;
  std::vector<const stored_request*> inserts_;
  std::vector<const std::pair<std::string, std::string>*> keys_;
  std::unordered_set<std::string_view> key_names_;
  std::vector<status_update> status_;
  std::unordered_map<std::string_view, size_t> status_at_;
  std::vector<std::pair<const stored_result*, int64_t>> finals_;
  std::vector<std::string_view> delivered_;
  std::vector<const delivery_give_up*> give_ups_;
  std::unordered_map<std::string_view, size_t> give_up_at_;
};

} // namespace lps::pg
