#include "runtime/postgres.hpp"

#include <libpq-fe.h>

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

/// `message` with every password of `url` replaced, and trailing newlines (libpq's) cut.
std::string scrubbed(std::string message, const std::string& url) {
  for (const auto& password : passwords_in(url))
    for (auto at = message.find(password); at != std::string::npos;
         at = message.find(password, at + 3))
      message.replace(at, password.size(), masked);
  while (!message.empty() && (message.back() == '\n' || message.back() == ' '))
    message.pop_back();
  return message;
}

bool has_scheme(const std::string& url) {
  return url.rfind("postgresql://", 0) == 0 || url.rfind("postgres://", 0) == 0;
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
  auto columns = PQnfields(res);
  out.rows.reserve(static_cast<size_t>(rows));
  for (int r = 0; r < rows; ++r) {
    auto& row = out.rows.emplace_back();
    row.reserve(static_cast<size_t>(columns));
    for (int c = 0; c < columns; ++c)
      if (PQgetisnull(res, r, c))
        row.emplace_back(std::nullopt);
      else
        row.emplace_back(
            std::string{PQgetvalue(res, r, c), static_cast<size_t>(PQgetlength(res, r, c))});
  }
  return out;
}

} // namespace

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
  return std::unique_ptr<connection>{new connection{conn}};
}

connection::connection(pg_conn* conn) : conn_(conn) {}

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

bool connection::healthy() const {
  return PQstatus(conn_) == CONNECTION_OK;
}

int connection::server_version() const {
  return PQserverVersion(conn_);
}

} // namespace lps::pg
