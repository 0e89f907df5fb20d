#pragma once

// A PostgreSQL connection over libpq (Debian libpq-dev 15): opening from a POSTGRES_URL,
// statements with text parameters, transactions, and the URL's password kept out of every
// message. The store backend for PostgreSQL builds on this; nothing here knows an actor.

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

struct pg_conn;

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

  /// Runs a query and hands each row to `visit` as it arrives (libpq's single-row mode), so
  /// a large answer never sits in memory whole; the result carries no rows. An exception
  /// from `visit` stops the visits and is rethrown once the answer was read to its end.
  result stream(const std::string& sql, const std::vector<param>& params,
                const std::function<void(const row&)>& visit);

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
