#include "runtime/postgres.hpp"

#include <libpq-fe.h>
#include <poll.h>

#include <exception>
#include <memory>

namespace lps::pg {

namespace {

constexpr const char* masked = "***";

/// Where the password of `user:password@` sits in the URL, or npos when there is none.
std::pair<size_t, size_t> userinfo_password(const std::string& url) {
  auto scheme_end = url.find("://");
  if (scheme_end == std::string::npos)
    return {std::string::npos, 0};
  auto start = scheme_end + 3;
  auto authority_end = url.find_first_of("/?#", start);
  auto at = url.rfind('@', authority_end == std::string::npos ? url.size() : authority_end);
  if (at == std::string::npos || at < start)
    return {std::string::npos, 0};
  auto colon = url.find(':', start);
  if (colon == std::string::npos || colon > at)
    return {std::string::npos, 0};
  return {colon + 1, at - colon - 1};
}

/// Where the value of a `password=` query parameter sits, or npos.
std::pair<size_t, size_t> query_password(const std::string& url) {
  auto query = url.find('?');
  if (query == std::string::npos)
    return {std::string::npos, 0};
  for (auto at = query; at != std::string::npos; at = url.find('&', at + 1)) {
    if (url.compare(at + 1, 9, "password=") == 0) {
      auto start = at + 10;
      auto end = url.find_first_of("&#", start);
      return {start, (end == std::string::npos ? url.size() : end) - start};
    }
  }
  return {std::string::npos, 0};
}

/// The passwords written in the URL, so messages that might quote them can be scrubbed.
std::vector<std::string> passwords_in(const std::string& url) {
  std::vector<std::string> result;
  for (auto [at, len] : {userinfo_password(url), query_password(url)})
    if (at != std::string::npos && len > 0)
      result.push_back(url.substr(at, len));
  return result;
}

/// `message` with every password of `url` replaced, on one line.
std::string scrubbed(std::string message, const std::string& url) {
  for (const auto& password : passwords_in(url))
    for (auto at = message.find(password); at != std::string::npos;
         at = message.find(password, at + 3))
      message.replace(at, password.size(), masked);
  while (!message.empty() && (message.back() == '\n' || message.back() == ' '))
    message.pop_back();
  // libpq's reasons span lines ("...failed: Connection refused\n\tIs the server running");
  // callers print one line.
  for (auto at = message.find('\n'); at != std::string::npos; at = message.find('\n', at)) {
    auto next = message.find_first_not_of(" \t", at + 1);
    message.replace(at, (next == std::string::npos ? message.size() : next) - at, "; ");
  }
  return message;
}

bool has_scheme(const std::string& url) {
  return url.rfind("postgresql://", 0) == 0 || url.rfind("postgres://", 0) == 0;
}

row row_of(const PGresult* res, int r) {
  row out;
  auto columns = PQnfields(res);
  out.reserve(static_cast<size_t>(columns));
  for (int c = 0; c < columns; ++c)
    if (PQgetisnull(res, r, c))
      out.emplace_back(std::nullopt);
    else
      out.emplace_back(
          std::string{PQgetvalue(res, r, c), static_cast<size_t>(PQgetlength(res, r, c))});
  return out;
}

result from_pg_result(PGresult* res, pg_conn* conn) {
  result out;
  std::unique_ptr<PGresult, decltype(&PQclear)> guard{res, &PQclear};
  auto status = res != nullptr ? PQresultStatus(res) : PGRES_FATAL_ERROR;
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    out.error = res != nullptr ? PQresultErrorMessage(res) : PQerrorMessage(conn);
    while (!out.error.empty() && out.error.back() == '\n')
      out.error.pop_back();
    const char* state = res != nullptr ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
    out.sqlstate = state != nullptr ? state : "";
    return out;
  }
  out.ok = true;
  const char* affected = PQcmdTuples(res);
  out.affected = affected != nullptr && *affected != '\0' ? std::stoull(affected) : 0;
  auto rows = PQntuples(res);
  out.rows.reserve(static_cast<size_t>(rows));
  for (int r = 0; r < rows; ++r)
    out.rows.push_back(row_of(res, r));
  return out;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  return c >= 'A' && c <= 'F' ? c - 'A' + 10 : 0;
}

// libpq's arrays of parameter values, lengths and formats, pointing into `params`.
struct param_arrays {
  std::vector<const char*> values;
  std::vector<int> lengths;
  std::vector<int> formats;

  explicit param_arrays(const std::vector<param>& params) {
    for (const auto& p : params) {
      values.push_back(p.value ? p.value->data() : nullptr);
      lengths.push_back(p.value ? static_cast<int>(p.value->size()) : 0);
      formats.push_back(p.binary ? 1 : 0);
    }
  }
  int count() const {
    return static_cast<int>(values.size());
  }
};

} // namespace

std::string decode_bytea(const std::string& text) {
  if (text.rfind("\\x", 0) != 0)
    return text;
  std::string bytes;
  bytes.reserve((text.size() - 2) / 2);
  for (size_t i = 2; i + 1 < text.size(); i += 2)
    bytes.push_back(static_cast<char>(hex_value(text[i]) * 16 + hex_value(text[i + 1])));
  return bytes;
}

std::string masked_url(const std::string& url) {
  if (!has_scheme(url))
    return url.empty() ? url : masked;
  auto result = url;
  // Replace from the back, so the front position stays valid.
  auto query = query_password(result);
  if (query.first != std::string::npos)
    result.replace(query.first, query.second, masked);
  auto userinfo = userinfo_password(result);
  if (userinfo.first != std::string::npos)
    result.replace(userinfo.first, userinfo.second, masked);
  return result;
}

std::string check_url(const std::string& url) {
  if (url.empty())
    return "is empty: set it to a libpq URI, e.g. postgresql://lps:PASSWORD@127.0.0.1:5432/lps";
  if (!has_scheme(url))
    return "must start with postgresql:// or postgres://";
  char* error = nullptr;
  auto* options = PQconninfoParse(url.c_str(), &error);
  if (options == nullptr) {
    std::string why = error != nullptr ? error : "cannot be parsed";
    PQfreemem(error);
    return "cannot be parsed: " + scrubbed(why, url);
  }
  PQconninfoFree(options);
  return "";
}

std::unique_ptr<connection>
connection::open(const std::string& url, std::chrono::seconds connect_timeout, std::string& error) {
  if (auto why = check_url(url); !why.empty()) {
    error = "POSTGRES_URL " + why;
    return nullptr;
  }
  auto timeout = std::to_string(std::max<long long>(1, connect_timeout.count()));
  const char* keys[] = {"dbname", "connect_timeout", "application_name", nullptr};
  const char* values[] = {url.c_str(), timeout.c_str(), "lps", nullptr};
  auto* conn = PQconnectdbParams(keys, values, 1);
  if (conn == nullptr) {
    error = "cannot connect to " + masked_url(url) + ": out of memory";
    return nullptr;
  }
  if (PQstatus(conn) != CONNECTION_OK) {
    error = "cannot connect to " + masked_url(url) + ": " + scrubbed(PQerrorMessage(conn), url);
    PQfinish(conn);
    return nullptr;
  }
  // Server notices ("relation already exists, skipping") are not errors: libpq would print
  // them on stderr.
  PQsetNoticeProcessor(
      conn, [](void*, const char*) {}, nullptr);
  auto opened = std::unique_ptr<connection>{new connection{conn, url}};
  // A process paused or cut off inside a transaction keeps its locks; a cluster leader's
  // write holds the lease row (lps_lease_held, FOR SHARE), so a paused leader would block
  // the takeover until it resumed. The server ends such a session after 2 s instead (lps's
  // own transactions never wait between statements).
  if (auto r = opened->exec("SET idle_in_transaction_session_timeout = 2000"); !r.ok) {
    error = "cannot set up the session on " + masked_url(url) + ": " + scrubbed(r.error, url);
    return nullptr;
  }
  return opened;
}

connection::connection(pg_conn* conn, std::string url) : conn_(conn), url_(std::move(url)) {}

connection::~connection() {
  PQfinish(conn_);
}

result connection::exec(const std::string& sql,
                        const std::vector<std::optional<std::string>>& params) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params)
    values.push_back(p ? p->c_str() : nullptr);
  return from_pg_result(PQexecParams(conn_, sql.c_str(), static_cast<int>(values.size()), nullptr,
                                     values.data(), nullptr, nullptr, 0),
                        conn_);
}

result connection::exec_script(const std::string& sql) {
  return from_pg_result(PQexec(conn_, sql.c_str()), conn_);
}

std::string connection::prepare(const std::string& name, const std::string& sql) {
  auto r = from_pg_result(PQprepare(conn_, name.c_str(), sql.c_str(), 0, nullptr), conn_);
  return r.ok ? "" : r.error;
}

result connection::exec_prepared(const std::string& name, const std::vector<param>& params) {
  param_arrays a{params};
  return from_pg_result(PQexecPrepared(conn_, name.c_str(), a.count(), a.values.data(),
                                       a.lengths.data(), a.formats.data(), 0),
                        conn_);
}

std::vector<result> connection::exec_pipelined(const std::vector<prepared_call>& calls) {
  std::vector<result> out(calls.size());
  if (PQenterPipelineMode(conn_) == 0) {
    out.assign(calls.size(), from_pg_result(nullptr, conn_));
    return out;
  }
  size_t sent = 0;
  for (const auto& call : calls) {
    param_arrays a{call.params};
    if (PQsendQueryPrepared(conn_, call.name.c_str(), a.count(), a.values.data(), a.lengths.data(),
                            a.formats.data(), 0)
        == 0)
      break;
    ++sent;
  }
  PQpipelineSync(conn_);
  // Each statement's result is followed by a null one; the sync ends the pipeline.
  for (size_t i = 0; i < sent; ++i) {
    PGresult* res = PQgetResult(conn_);
    if (res != nullptr && PQresultStatus(res) == PGRES_PIPELINE_ABORTED) {
      PQclear(res);
      out[i].error = "not run: an earlier statement failed";
    } else {
      out[i] = from_pg_result(res, conn_);
    }
    if (res != nullptr)
      while (PGresult* extra = PQgetResult(conn_))
        PQclear(extra);
  }
  for (size_t i = sent; i < calls.size(); ++i)
    out[i] = from_pg_result(nullptr, conn_);
  while (PGresult* res = PQgetResult(conn_)) {
    bool synced = PQresultStatus(res) == PGRES_PIPELINE_SYNC;
    PQclear(res);
    if (synced)
      break;
  }
  PQexitPipelineMode(conn_);
  return out;
}

result connection::stream(const std::string& sql, const std::vector<param>& params,
                          const std::function<void(const row&)>& visit) {
  param_arrays a{params};
  if (PQsendQueryParams(conn_, sql.c_str(), a.count(), nullptr, a.values.data(), a.lengths.data(),
                        a.formats.data(), 0)
          == 0
      || PQsetSingleRowMode(conn_) == 0)
    return from_pg_result(nullptr, conn_);
  result out;
  out.ok = true;
  std::exception_ptr thrown;
  // Every result must be read, even after a failure, before the connection takes the next
  // statement; the rows come one per PGRES_SINGLE_TUPLE result, then one that ends them.
  while (PGresult* res = PQgetResult(conn_)) {
    if (PQresultStatus(res) == PGRES_SINGLE_TUPLE) {
      std::unique_ptr<PGresult, decltype(&PQclear)> guard{res, &PQclear};
      if (out.ok && !thrown) {
        try {
          visit(row_of(res, 0));
        } catch (...) {
          thrown = std::current_exception();
        }
      }
    } else if (auto end = from_pg_result(res, conn_); !end.ok && out.ok) {
      out = std::move(end);
    }
  }
  if (thrown)
    std::rethrow_exception(thrown);
  return out;
}

bool connection::reset() {
  PQreset(conn_);
  return healthy();
}

// Notifications read along with a statement's answer wait in libpq: those count first.
bool connection::await_notification(std::chrono::milliseconds timeout) {
  auto drain = [this] {
    bool any = false;
    while (PGnotify* n = PQnotifies(conn_)) {
      any = true;
      PQfreemem(n);
    }
    return any;
  };
  if (drain())
    return true;
  int fd = PQsocket(conn_);
  if (fd < 0)
    return false;
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0)
    return false;
  PQconsumeInput(conn_);
  return drain();
}

bool connection::healthy() const {
  return PQstatus(conn_) == CONNECTION_OK;
}

std::string connection::error_message() const {
  return scrubbed(PQerrorMessage(conn_), url_);
}

int connection::server_version() const {
  return PQserverVersion(conn_);
}

} // namespace lps::pg
