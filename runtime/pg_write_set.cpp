#include "runtime/pg_write_set.hpp"

#include <algorithm>

namespace lps::pg {

namespace {

// Times are timestamptz columns; the store contract speaks Unix milliseconds.
#define LPS_TS(ms) "(timestamptz 'epoch' + " ms " * interval '1 millisecond')"

// clang-format off

// Rows come in the order of their arrays, so `seq` keeps the order of submission.
constexpr const char* insert_requests_sql =
    "INSERT INTO requests(queue_id, priority, queued_at, size_bytes, attempts, payload, texts, "
    "provider, bos_batch_id, model, correlation_id, cj_batch_id) "
    "SELECT queue_id, priority, " LPS_TS("queued_ms") ", size_bytes, attempts, payload, texts, "
    "provider, bos_batch_id, model, correlation_id, cj_batch_id FROM unnest($1::text[], "
    "$2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bytea[], $7::bytea[], "
    "$8::text[], $9::text[], $10::text[], $11::text[], $12::text[]) AS r(queue_id, priority, "
    "queued_ms, size_bytes, attempts, payload, texts, provider, bos_batch_id, model, "
    "correlation_id, cj_batch_id)";
// Many request inserts as one binary COPY (copy_rows), the columns of insert_requests_sql:
// the server reads each field as it is, with no array to build or unnest. Rows go in in
// order, so `seq` keeps the order of submission. A duplicate id fails it as the INSERT.
constexpr const char* copy_requests_sql =
    "COPY requests(queue_id, priority, queued_at, size_bytes, attempts, payload, texts, "
    "provider, bos_batch_id, model, correlation_id, cj_batch_id) FROM STDIN (FORMAT binary)";
// The first request of a key wins.
constexpr const char* insert_idempotency_keys_sql =
    "INSERT INTO idempotency_keys(key, queue_id) SELECT * FROM unnest($1::text[], $2::text[]) "
    "ON CONFLICT (key) DO NOTHING";
// Handed to a provider (processing: a row in requests_processing, schema version 8), or put
// back (queued: that row deleted) with its attempts, which a NULL keeps. Only the attempts
// change the request's row (its index requests_recovery holds them); the dispatch mark, once
// per provider call, leaves it alone. A mark of a request not stored is a no-op, as an
// update of it would be.
constexpr const char* update_status_sql =
    "WITH s AS (SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[]) "
    "AS s(queue_id, status, attempts)), "
    "counted AS (UPDATE requests SET attempts = s.attempts::integer, updated_at = now() FROM s "
    "WHERE requests.queue_id = s.queue_id AND s.attempts IS NOT NULL), "
    "queued AS (DELETE FROM requests_processing p USING s WHERE p.queue_id = s.queue_id "
    "AND s.status = 'queued') "
    "INSERT INTO requests_processing(queue_id) SELECT r.queue_id FROM s JOIN requests r ON "
    "r.queue_id = s.queue_id WHERE s.status = 'processing' ON CONFLICT (queue_id) DO NOTHING";
// The results of finished requests, each taking its request's priority and queue time
// (and its provider when the result names none) into its columns; then delete_finished_sql
// removes the requests. ON CONFLICT DO NOTHING: the first final result wins, so a request
// never gets two (a late duplicate cannot replace one that may be delivered already); the
// request goes either way. In the order of the arrays, so `seq` keeps the order of
// completion. A new result that is not delivered gets its row in results_undelivered (in the
// same snapshot, so only the ids without a result before the statement: those it inserts;
// a segment's finals have distinct ids).
constexpr const char* record_finals_sql =
    "WITH owed AS (INSERT INTO results_undelivered(queue_id) SELECT u.queue_id FROM "
    "unnest($1::text[], $5::boolean[]) AS u(queue_id, delivered) WHERE NOT u.delivered AND NOT "
    "EXISTS (SELECT 1 FROM results x WHERE x.queue_id = u.queue_id) ON CONFLICT DO NOTHING) "
    "INSERT INTO results(queue_id, status, event_json, callback_url, completed_at, "
    "provider, priority, queued_at, bos_batch_id, model, error_code, correlation_id, "
    "cj_batch_id, epoch) "
    "SELECT f.queue_id, f.status, f.event_json, f.callback_url, "
    LPS_TS("f.completed_ms") ", coalesce(nullif(f.provider, ''), r.provider, ''), "
    "coalesce(r.priority, 5), coalesce(r.queued_at, " LPS_TS("f.completed_ms") "), "
    "f.bos_batch_id, f.model, f.error_code, f.correlation_id, f.cj_batch_id, "
    "nullif(f.epoch, 0) FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], "
    "$5::boolean[], $6::bigint[], $7::text[], $8::text[], $9::text[], $10::text[], "
    "$11::text[], $12::text[], $13::bigint[]) WITH ORDINALITY AS f(queue_id, status, "
    "event_json, callback_url, delivered, completed_ms, bos_batch_id, provider, model, "
    "error_code, correlation_id, cj_batch_id, epoch, ord) "
    "LEFT JOIN requests r ON r.queue_id = f.queue_id ORDER BY f.ord "
    "ON CONFLICT (queue_id) DO NOTHING";
// The finished requests go with their processing marks.
constexpr const char* delete_finished_sql =
    "WITH unmarked AS (DELETE FROM requests_processing WHERE queue_id = ANY($1::text[])) "
    "DELETE FROM requests WHERE queue_id = ANY($1::text[])";
// Delivered: the result's row in results_undelivered goes (schema version 8); the result's
// own row is not written.
constexpr const char* mark_delivered_sql =
    "DELETE FROM results_undelivered WHERE queue_id = ANY($1::text[])";
constexpr const char* mark_given_up_sql =
    "UPDATE results SET delivery_failed_at = " LPS_TS("g.failed_ms") ", delivery_attempts = "
    "g.attempts::integer, last_delivery_error = g.last_error FROM unnest($1::text[], "
    "$2::bigint[], $3::bigint[], $4::text[]) AS g(queue_id, failed_ms, attempts, last_error) "
    "WHERE results.queue_id = g.queue_id";
// A fenced write's first statement (cluster mode): fails the transaction unless the leader
// lease is still held at the write's epoch, and locks the lease row until COMMIT, so no
// takeover happens in between (schema version 5, docs/cluster.md).
constexpr const char* require_lease_sql = "SELECT lps_require_lease('leader', $1::bigint)";

// The same operations for one row each, with scalar parameters: a kind with fewer rows
// than write_set's set_from_rows goes this way (at one row an unnest costs the server more
// than the row's own work). Same effects as the set-based statements above.
constexpr const char* insert_request_sql =
    "INSERT INTO requests(queue_id, priority, queued_at, size_bytes, attempts, payload, texts, "
    "provider, bos_batch_id, model, correlation_id, cj_batch_id) VALUES($1, $2::integer, "
    LPS_TS("$3::bigint") ", $4::bigint, $5::integer, $6, $7, $8, $9, $10, $11, $12)";
constexpr const char* insert_idempotency_key_sql =
    "INSERT INTO idempotency_keys(key, queue_id) VALUES($1, $2) ON CONFLICT (key) DO NOTHING";
// The parts for the status not given ($2) or without attempts ($3 NULL) do nothing: their
// conditions on parameters only are one-time filters of the generic plan.
constexpr const char* update_status_row_sql =
    "WITH counted AS (UPDATE requests SET attempts = $3::integer, updated_at = now() "
    "WHERE queue_id = $1 AND $3::integer IS NOT NULL), "
    "queued AS (DELETE FROM requests_processing WHERE queue_id = $1 AND $2 = 'queued') "
    "INSERT INTO requests_processing(queue_id) SELECT queue_id FROM requests "
    "WHERE queue_id = $1 AND $2 = 'processing' ON CONFLICT (queue_id) DO NOTHING";
// One statement removes the request with its processing mark and records its result, with
// its undelivered mark when it is new and not delivered (record_finals_sql and
// delete_finished_sql in one).
constexpr const char* record_final_sql =
    "WITH gone AS (DELETE FROM requests WHERE queue_id = $1 "
    "RETURNING provider, priority, queued_at), "
    "unmarked AS (DELETE FROM requests_processing WHERE queue_id = $1), "
    "added AS (INSERT INTO results(queue_id, status, event_json, callback_url, completed_at, "
    "provider, priority, queued_at, bos_batch_id, model, error_code, correlation_id, "
    "cj_batch_id, epoch) "
    "SELECT $1, $2, $3, $4, " LPS_TS("$6::bigint") ", "
    "coalesce(nullif($8, ''), gone.provider, ''), coalesce(gone.priority, 5), "
    "coalesce(gone.queued_at, " LPS_TS("$6::bigint") "), $7, $9, $10, $11, $12, "
    "nullif($13::bigint, 0) FROM (VALUES (1)) AS one LEFT JOIN gone ON true "
    "ON CONFLICT (queue_id) DO NOTHING RETURNING queue_id) "
    "INSERT INTO results_undelivered(queue_id) SELECT queue_id FROM added "
    "WHERE NOT $5::boolean ON CONFLICT DO NOTHING";
constexpr const char* mark_delivered_row_sql =
    "DELETE FROM results_undelivered WHERE queue_id = $1";
constexpr const char* mark_given_up_row_sql =
    "UPDATE results SET delivery_failed_at = " LPS_TS("$2::bigint") ", delivery_attempts = "
    "$3::integer, last_delivery_error = $4 WHERE queue_id = $1";

// clang-format on

#undef LPS_TS

using element = array_param::element;

// An absent run, job or error code is NULL, not "", as in the SQLite store: no run is
// named "".
template <typename Builder> // array_param or copy_rows
void add_text_or_null(Builder& builder, const std::string& text) {
  if (text.empty())
    builder.add_null();
  else
    builder.add(text);
}

// "insert request 'q1'", "insert request 'q1' and 99 more".
std::string label_of(const char* what, std::string_view first, size_t rows) {
  auto label = std::string{what} + " '" + std::string{first} + "'";
  if (rows > 1)
    label += " and " + std::to_string(rows - 1) + " more";
  return label;
}

param text_param(std::string_view text) {
  return {std::string{text}};
}

param bytes_param(const std::string& bytes) {
  return {bytes, true};
}

param number_param(int64_t value) {
  return {std::to_string(value)};
}

param text_or_null(const std::string& text) {
  if (text.empty())
    return {};
  return {text};
}

std::vector<param> take_all(std::vector<array_param>& arrays) {
  std::vector<param> params;
  params.reserve(arrays.size());
  for (auto& a : arrays)
    params.push_back(a.take());
  return params;
}

} // namespace

const std::vector<std::pair<const char*, const char*>>& write_statements() {
  static const std::vector<std::pair<const char*, const char*>> statements{
      {"insert_requests", insert_requests_sql},
      {"insert_idempotency_keys", insert_idempotency_keys_sql},
      {"update_status", update_status_sql},
      {"record_finals", record_finals_sql},
      {"delete_finished", delete_finished_sql},
      {"mark_delivered", mark_delivered_sql},
      {"mark_given_up", mark_given_up_sql},
      {"require_lease", require_lease_sql},
      {"insert_request", insert_request_sql},
      {"insert_idempotency_key", insert_idempotency_key_sql},
      {"update_status_row", update_status_row_sql},
      {"record_final", record_final_sql},
      {"mark_delivered_row", mark_delivered_row_sql},
      {"mark_given_up_row", mark_given_up_row_sql}};
  return statements;
}

const std::vector<const char*>& writer_session_settings() {
  static const std::vector<const char*> settings{
      "SET plan_cache_mode = force_generic_plan", "SET enable_seqscan = off",
      "SET enable_hashjoin = off", "SET enable_mergejoin = off",
      "SET default_toast_compression = lz4"};
  return settings;
}

write_set::write_set(size_t rows_per_statement, size_t set_from_rows, size_t copy_from_rows)
    : rows_per_statement_(rows_per_statement == 0 ? 1 : rows_per_statement),
      set_from_rows_(set_from_rows == 0 ? 1 : set_from_rows), copy_from_rows_(copy_from_rows) {}

// The write's operations in the order the one-statement-per-row store ran them.
void write_set::add(const store_write& write) {
  // Once per epoch and transaction, before anything of its writes: the row lock holds until
  // COMMIT, and a failure fails the whole transaction wherever it runs.
  if (auto epoch = write.fencing_epoch; epoch > 0 && epochs_checked_.insert(epoch).second)
    ready_.push_back({{"require_lease", {{std::to_string(epoch)}}},
                      "check the leader lease at epoch '" + std::to_string(epoch) + "'"});
  for (const auto& row : write.inserts)
    if (touch(row.queue_id, kind::insert))
      inserts_.push_back(&row);
  for (const auto& row : write.finals) {
    if (touch(row.queue_id, kind::final)) {
      drop_status(row.queue_id);
      finals_.emplace_back(&row, write.fencing_epoch);
    }
  }
  for (const auto& id : write.delivered)
    if (touch(id, kind::delivered))
      delivered_.push_back(id);
  for (const auto& [id, attempts] : write.attempts)
    add_status(id, false, attempts);
  for (const auto& key : write.idempotency_keys) {
    if (rows_ >= rows_per_statement_)
      close_segment();
    if (key_names_.insert(key.first).second) {
      keys_.push_back(&key);
      ++rows_;
    }
  }
  for (const auto& g : write.delivery_give_ups) {
    if (!touch(g.queue_id, kind::give_up)) {
      give_ups_[give_up_at_.at(g.queue_id)] = &g; // the last give-up holds
      continue;
    }
    give_up_at_[g.queue_id] = give_ups_.size();
    give_ups_.push_back(&g);
  }
  for (const auto& id : write.dispatched)
    add_status(id, true, std::nullopt);
}

// Records an operation of kind `k` on `queue_id` in the open segment, closing it first when
// it is full or holds a later kind for the id; false when the segment already holds this
// kind for the id (the caller folds the two).
bool write_set::touch(std::string_view queue_id, kind k) {
  auto it = pending_.find(queue_id);
  if (it != pending_.end() && it->second == k && k != kind::insert)
    return false;
  if (rows_ >= rows_per_statement_ || (it != pending_.end() && it->second > k))
    close_segment();
  auto& latest = pending_[queue_id];
  latest = std::max(latest, k);
  ++rows_;
  return true;
}

void write_set::add_status(std::string_view queue_id, bool processing,
                           std::optional<uint32_t> attempts) {
  if (!touch(queue_id, kind::status)) {
    auto& update = status_[status_at_.at(queue_id)];
    update.processing = processing;
    if (attempts)
      update.attempts = attempts;
    return;
  }
  status_at_[queue_id] = status_.size();
  status_.push_back({queue_id, processing, attempts});
}

// A final removes its request, so a status update of it earlier in the segment (the
// dispatch mark of a request whose answer came before the mark was committed) would be
// seen by nobody: only committed rows are read, and the final takes none of the columns it
// sets (status, attempts, updated_at). Dropped, it costs the server nothing.
void write_set::drop_status(std::string_view queue_id) {
  auto it = status_at_.find(queue_id);
  if (it == status_at_.end())
    return;
  status_[it->second].dropped = true;
  status_at_.erase(it);
}

void write_set::close_segment() {
  emit_inserts();
  emit_keys();
  emit_status();
  emit_finals();
  emit_delivered();
  emit_give_ups();
  pending_.clear();
  rows_ = 0;
  key_names_.clear();
  status_at_.clear();
  give_up_at_.clear();
}

std::vector<labelled_call> write_set::take() {
  close_segment();
  return std::exchange(ready_, {});
}

void write_set::emit_inserts() {
  if (inserts_.empty())
    return;
  if (inserts_.size() < set_from_rows_)
    return emit_inserts_rows();
  if (copy_from_rows_ > 0 && inserts_.size() >= copy_from_rows_)
    return emit_inserts_copy();
  std::vector<array_param> a{
      array_param{element::text},  array_param{element::int8}, array_param{element::int8},
      array_param{element::int8},  array_param{element::int8}, array_param{element::bytea},
      array_param{element::bytea}, array_param{element::text}, array_param{element::text},
      array_param{element::text},  array_param{element::text}, array_param{element::text}};
  for (const auto* row : inserts_) {
    a[0].add(row->queue_id);
    a[1].add(int64_t{row->priority});
    a[2].add(row->queued_at_ms);
    a[3].add(static_cast<int64_t>(row->size_bytes));
    a[4].add(int64_t{row->attempts});
    a[5].add(row->payload);
    a[6].add(row->texts);
    a[7].add(row->provider);
    add_text_or_null(a[8], row->bos_batch_id);
    a[9].add(row->model);
    a[10].add(row->correlation_id);
    add_text_or_null(a[11], row->cj_batch_id);
  }
  ready_.push_back({{"insert_requests", take_all(a)},
                    label_of("insert request", inserts_.front()->queue_id, inserts_.size())});
  inserts_.clear();
}

void write_set::emit_keys() {
  if (keys_.empty())
    return;
  if (keys_.size() < set_from_rows_)
    return emit_keys_rows();
  array_param keys{element::text}, ids{element::text};
  for (const auto* key : keys_) {
    keys.add(key->first);
    ids.add(key->second);
  }
  ready_.push_back({{"insert_idempotency_keys", {keys.take(), ids.take()}},
                    label_of("insert idempotency key", keys_.front()->second, keys_.size())});
  keys_.clear();
}

void write_set::emit_status() {
  std::erase_if(status_, [](const status_update& u) { return u.dropped; });
  if (status_.empty())
    return;
  if (status_.size() < set_from_rows_)
    return emit_status_rows();
  array_param ids{element::text}, states{element::text}, attempts{element::int8};
  for (const auto& u : status_) {
    ids.add(u.queue_id);
    states.add(u.processing ? std::string_view{"processing"} : std::string_view{"queued"});
    if (u.attempts)
      attempts.add(int64_t{*u.attempts});
    else
      attempts.add_null();
  }
  ready_.push_back({{"update_status", {ids.take(), states.take(), attempts.take()}},
                    label_of("update status", status_.front().queue_id, status_.size())});
  status_.clear();
}

void write_set::emit_finals() {
  if (finals_.empty())
    return;
  if (finals_.size() < set_from_rows_)
    return emit_finals_rows();
  std::vector<array_param> a{
      array_param{element::text}, array_param{element::text},    array_param{element::text},
      array_param{element::text}, array_param{element::boolean}, array_param{element::int8},
      array_param{element::text}, array_param{element::text},    array_param{element::text},
      array_param{element::text}, array_param{element::text},    array_param{element::text},
      array_param{element::int8}};
  for (const auto& [row, epoch] : finals_) {
    a[0].add(row->queue_id);
    a[1].add(row->status);
    a[2].add(row->event_json);
    a[3].add(row->callback_url);
    a[4].add_bool(row->delivered);
    a[5].add(row->completed_at_ms);
    add_text_or_null(a[6], row->bos_batch_id);
    a[7].add(row->provider);
    a[8].add(row->model);
    add_text_or_null(a[9], row->error_code);
    a[10].add(row->correlation_id);
    add_text_or_null(a[11], row->cj_batch_id);
    a[12].add(epoch);
  }
  const auto& first = finals_.front().first->queue_id;
  auto params = take_all(a);
  auto ids = params.front();
  ready_.push_back(
      {{"record_finals", std::move(params)}, label_of("insert result", first, finals_.size())});
  ready_.push_back({{"delete_finished", {std::move(ids)}},
                    label_of("remove finished request", first, finals_.size())});
  finals_.clear();
}

void write_set::emit_delivered() {
  if (delivered_.empty())
    return;
  if (delivered_.size() < set_from_rows_)
    return emit_delivered_rows();
  array_param ids{element::text};
  for (auto id : delivered_)
    ids.add(id);
  ready_.push_back({{"mark_delivered", {ids.take()}},
                    label_of("mark delivered", delivered_.front(), delivered_.size())});
  delivered_.clear();
}

void write_set::emit_give_ups() {
  if (give_ups_.empty())
    return;
  if (give_ups_.size() < set_from_rows_)
    return emit_give_ups_rows();
  array_param ids{element::text}, failed_at{element::int8}, attempts{element::int8},
      errors{element::text};
  for (const auto* g : give_ups_) {
    ids.add(g->queue_id);
    failed_at.add(g->failed_at_ms);
    attempts.add(int64_t{g->attempts});
    errors.add(g->last_error);
  }
  ready_.push_back(
      {{"mark_given_up", {ids.take(), failed_at.take(), attempts.take(), errors.take()}},
       label_of("mark delivery given up", give_ups_.front()->queue_id, give_ups_.size())});
  give_ups_.clear();
}

void write_set::emit_inserts_rows() {
  for (const auto* row : inserts_)
    ready_.push_back(
        {{"insert_request",
          {text_param(row->queue_id), number_param(row->priority), number_param(row->queued_at_ms),
           number_param(static_cast<int64_t>(row->size_bytes)), number_param(row->attempts),
           bytes_param(row->payload), bytes_param(row->texts), text_param(row->provider),
           text_or_null(row->bos_batch_id), text_param(row->model), text_param(row->correlation_id),
           text_or_null(row->cj_batch_id)}},
         label_of("insert request", row->queue_id, 1)});
  inserts_.clear();
}

void write_set::emit_inserts_copy() {
  copy_rows rows;
  // A field count, then a length and the bytes of each of the 12 fields (4 numbers), and
  // the 2-byte trailer.
  size_t bytes = 2;
  for (const auto* row : inserts_)
    bytes += 2 + 12 * 4 + 4 + 8 + 8 + 4 + row->queue_id.size() + row->payload.size()
             + row->texts.size() + row->provider.size() + row->bos_batch_id.size()
             + row->model.size() + row->correlation_id.size() + row->cj_batch_id.size();
  rows.reserve(bytes);
  for (const auto* row : inserts_) {
    rows.start_row(12);
    rows.add(row->queue_id);
    rows.add_int4(row->priority);
    rows.add_unix_ms(row->queued_at_ms);
    rows.add_int8(static_cast<int64_t>(row->size_bytes));
    rows.add_int4(static_cast<int32_t>(row->attempts));
    rows.add(row->payload);
    rows.add(row->texts);
    rows.add(row->provider);
    add_text_or_null(rows, row->bos_batch_id);
    rows.add(row->model);
    rows.add(row->correlation_id);
    add_text_or_null(rows, row->cj_batch_id);
  }
  ready_.push_back({{"copy_requests", {rows.take()}},
                    label_of("insert request", inserts_.front()->queue_id, inserts_.size()),
                    copy_requests_sql});
  inserts_.clear();
}

void write_set::emit_keys_rows() {
  for (const auto* key : keys_)
    ready_.push_back({{"insert_idempotency_key", {text_param(key->first), text_param(key->second)}},
                      label_of("insert idempotency key", key->second, 1)});
  keys_.clear();
}

void write_set::emit_status_rows() {
  for (const auto& u : status_)
    ready_.push_back({{"update_status_row",
                       {text_param(u.queue_id), text_param(u.processing ? "processing" : "queued"),
                        u.attempts ? number_param(*u.attempts) : param{}}},
                      label_of("update status", u.queue_id, 1)});
  status_.clear();
}

void write_set::emit_finals_rows() {
  for (const auto& [row, epoch] : finals_)
    ready_.push_back(
        {{"record_final",
          {text_param(row->queue_id), text_param(row->status), text_param(row->event_json),
           text_param(row->callback_url), text_param(row->delivered ? "true" : "false"),
           number_param(row->completed_at_ms), text_or_null(row->bos_batch_id),
           text_param(row->provider), text_param(row->model), text_or_null(row->error_code),
           text_param(row->correlation_id), text_or_null(row->cj_batch_id), number_param(epoch)}},
         label_of("insert result", row->queue_id, 1)});
  finals_.clear();
}

void write_set::emit_delivered_rows() {
  for (auto id : delivered_)
    ready_.push_back({{"mark_delivered_row", {text_param(id)}}, label_of("mark delivered", id, 1)});
  delivered_.clear();
}

void write_set::emit_give_ups_rows() {
  for (const auto* g : give_ups_)
    ready_.push_back({{"mark_given_up_row",
                       {text_param(g->queue_id), number_param(g->failed_at_ms),
                        number_param(g->attempts), text_param(g->last_error)}},
                      label_of("mark delivery given up", g->queue_id, 1)});
  give_ups_.clear();
}

} // namespace lps::pg
