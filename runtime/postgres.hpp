#pragma once

// A PostgreSQL connection over libpq (Debian libpq-dev 15): opening from a POSTGRES_URL,
// statements with text parameters, transactions, and the URL's password kept out of every
// message. The store backend for PostgreSQL builds on this; nothing here knows an actor.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct pg_conn;
struct pg_result;

namespace lps::pg {

/// `url` with its password replaced by "***" (userinfo `user:pass@` and a `password=`
/// query parameter), for logs, errors and --dump-config. Text that is not a URL comes back
/// as "***" whole when it might hold a password.
std::string masked_url(const std::string& url);

/// Checks a POSTGRES_URL before any connection: a postgresql:// or postgres:// URI that
/// libpq can parse. Returns "" when fine, else what is wrong (never the password).
std::string check_url(const std::string& url);

/// One statement's answer: rows of text columns (nullopt for SQL NULL), or an error with
/// its SQLSTATE (e.g. "40P01" deadlock, "23505" unique violation, "" for a lost connection).
struct result {
  bool ok = false;
  std::string error;
  std::string sqlstate;
  std::vector<std::vector<std::optional<std::string>>> rows;
  /// Rows changed by INSERT, UPDATE or DELETE.
  uint64_t affected = 0;
};

/// One row of text columns (nullopt for SQL NULL).
using row = std::vector<std::optional<std::string>>;

/// A statement parameter: text, or bytes sent as they are (for bytea), or SQL NULL.
struct param {
  std::optional<std::string> value;
  bool binary = false;
};

/// A statement prepared under `name`, with its parameters.
struct prepared_call {
  std::string name;
  std::vector<param> params;
};

/// A row of a chunk that connection::fetch_in_chunks hands over, read where libpq holds it:
/// valid only during the visit.
class row_ref {
public:
  /// The column's text; "" for SQL NULL.
  std::string_view text(int column) const;
  bool is_null(int column) const;

private:
  friend class connection;
  row_ref(const pg_result* res, int row) : res_(res), row_(row) {}
  const pg_result* res_;
  int row_;
};

/// A one-dimensional array parameter in PostgreSQL's binary array format, for set-based
/// statements (`unnest($1::text[], ...)`, `= ANY($1::text[])`): each element goes as its
/// bytes, so no text in it (quotes, backslashes, braces, commas, JSON) needs escaping, and
/// the server parses no array literal. The statement must cast the parameter to the array
/// type the builder names (text[], bytea[], bigint[], boolean[]): the server refuses
/// another element type.
class array_param {
public:
  enum class element { text, bytea, int8, boolean };
  explicit array_param(element type);

  void add(std::string_view bytes); // text or bytea
  void add(int64_t value);          // int8
  void add_bool(bool value);        // boolean
  void add_null();

  size_t size() const {
    return count_;
  }
  /// The finished parameter (binary); the builder is empty afterwards.
  param take();

private:
  void add_length(int32_t length);
  element type_;
  std::string bytes_;
  size_t count_ = 0;
  bool has_null_ = false;
};

/// Rows for `COPY table(columns) FROM STDIN (FORMAT binary)` in PostgreSQL's binary copy
/// format: each field goes as its bytes or as a big-endian integer, so no text in it needs
/// escaping and the server parses no literal (the fastest way in for many rows). Fields come
/// in the order and of the types of the COPY's column list.
class copy_rows {
public:
  copy_rows();

  /// Room for `bytes` more, so a commit's hundreds of 7 KB rows are not copied again each
  /// time the buffer grows.
  void reserve(size_t bytes);
  /// Starts a row of `fields` fields.
  void start_row(int16_t fields);
  void add(std::string_view bytes); // text or bytea
  void add_int4(int32_t value);
  void add_int8(int64_t value);
  /// A timestamptz given as Unix milliseconds.
  void add_unix_ms(int64_t ms);
  void add_null();

  size_t rows() const {
    return rows_;
  }
  /// The finished data (as one binary parameter for connection::copy_in); the builder is
  /// empty afterwards.
  param take();

private:
  std::string bytes_;
  size_t rows_ = 0;
};

/// A bytea column read in text format ("\x" and hex digits) as its bytes.
std::string decode_bytea(const std::string& text);

class connection {
public:
  /// Connects to `url` within `connect_timeout`; on failure returns null and says why in
  /// `error` (libpq's reason with the URL masked).
  static std::unique_ptr<connection> open(const std::string& url,
                                          std::chrono::seconds connect_timeout, std::string& error);
  ~connection();
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  /// Runs one statement with text parameters ($1, $2, ...); SQL NULL for nullopt.
  result exec(const std::string& sql, const std::vector<std::optional<std::string>>& params = {});

  /// Runs several statements without parameters (a migration script); no rows.
  result exec_script(const std::string& sql);

  /// Prepares `sql` under `name` for exec_prepared; "" when fine, else the server's error.
  std::string prepare(const std::string& name, const std::string& sql);

  /// Runs a statement prepared under `name`; binary parameters go as raw bytes.
  result exec_prepared(const std::string& name, const std::vector<param>& params);

  /// Runs prepared statements in one round trip (libpq's pipeline mode), inside whatever
  /// transaction is open; one result per statement, in order. After a failure the server
  /// skips the rest: their results say "not run".
  std::vector<result> exec_pipelined(const std::vector<prepared_call>& calls);

  /// Runs `COPY ... FROM STDIN` (`sql`) with `data` (copy_rows) inside whatever transaction is
  /// open, outside pipeline mode (libpq allows no COPY in a pipeline): two round trips.
  result copy_in(const std::string& sql, const std::string& data);

  /// Runs a query through a cursor, in a transaction of its own, fetching `rows_per_chunk`
  /// rows per round trip and handing each row to `visit` in place: one result per chunk, no
  /// copy of a row, and never the whole answer in memory (the start-up scan of 1,000,000
  /// requests). The result carries no rows. An exception from `visit` ends the transaction
  /// and is rethrown.
  result fetch_in_chunks(const std::string& sql, size_t rows_per_chunk,
                         const std::function<void(const row_ref&)>& visit);

  /// Waits at most `timeout` for a notification on a channel this session LISTENs on
  /// (consuming every one that arrived); true when one did.
  bool await_notification(std::chrono::milliseconds timeout);

  /// Reconnects with the same parameters after the server went away; true when healthy.
  bool reset();

  /// False once the server has gone (the caller opens a new connection).
  bool healthy() const;

  /// libpq's last connection error (why reset() failed) on one line, the password masked.
  std::string error_message() const;

  /// The server's version number, e.g. 150018.
  int server_version() const;

private:
  connection(pg_conn* conn, std::string url);
  pg_conn* conn_;
  /// For masking the password in error_message().
  std::string url_;
};

} // namespace lps::pg
