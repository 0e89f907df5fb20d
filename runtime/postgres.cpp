#include "runtime/postgres.hpp"

#include <libpq-fe.h>
#include <poll.h>

#include <cstdint>
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

// Big-endian, as the binary formats are.
void put_be(std::string& out, uint64_t value, int bytes) {
  for (int shift = (bytes - 1) * 8; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((value >> shift) & 0xff));
}

void patch_be32(std::string& out, size_t at, uint32_t value) {
  for (int i = 0; i < 4; ++i)
    out[at + static_cast<size_t>(i)] = static_cast<char>((value >> ((3 - i) * 8)) & 0xff);
}

// pg_type oids (catalog/pg_type.dat; fixed since PostgreSQL 7).
uint32_t oid_of(array_param::element type) {
  switch (type) {
  case array_param::element::text:
    return 25;
  case array_param::element::bytea:
    return 17;
  case array_param::element::int8:
    return 20;
  case array_param::element::boolean:
    return 16;
  }
  return 0;
}

// array_recv's format: a header (dimensions, has-nulls flag, element type, then per
// dimension its length and lower bound), then per element its length (-1: NULL) and bytes.
// The flag and the length are patched in take().
constexpr size_t has_null_at = 4;
constexpr size_t length_at = 12;

} // namespace

array_param::array_param(element type) : type_(type) {
  put_be(bytes_, 1, 4); // one dimension
  put_be(bytes_, 0, 4); // has nulls (patched)
  put_be(bytes_, oid_of(type_), 4);
  put_be(bytes_, 0, 4); // its length (patched)
  put_be(bytes_, 1, 4); // lower bound, as SQL arrays start at 1
}

void array_param::add_length(int32_t length) {
  put_be(bytes_, static_cast<uint32_t>(length), 4);
  ++count_;
}

void array_param::add(std::string_view bytes) {
  add_length(static_cast<int32_t>(bytes.size()));
  bytes_.append(bytes);
}

void array_param::add(int64_t value) {
  add_length(8);
  put_be(bytes_, static_cast<uint64_t>(value), 8);
}

void array_param::add_bool(bool value) {
  add_length(1);
  bytes_.push_back(value ? 1 : 0);
}

void array_param::add_null() {
  add_length(-1);
  has_null_ = true;
}

param array_param::take() {
  patch_be32(bytes_, has_null_at, has_null_ ? 1 : 0);
  patch_be32(bytes_, length_at, static_cast<uint32_t>(count_));
  param out{std::move(bytes_), true};
  *this = array_param{type_};
  return out;
}

namespace {

// The binary copy format's header: signature, flags (no OIDs), header extension length.
constexpr std::string_view copy_signature{"PGCOPY\n\377\r\n\0", 11};
// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01), which timestamptz counts from.
constexpr int64_t postgres_epoch_us = 946684800LL * 1000000;

} // namespace

copy_rows::copy_rows() {
  bytes_.append(copy_signature);
  put_be(bytes_, 0, 4);
  put_be(bytes_, 0, 4);
}

void copy_rows::reserve(size_t bytes) {
  bytes_.reserve(bytes_.size() + bytes);
}

void copy_rows::start_row(int16_t fields) {
  put_be(bytes_, static_cast<uint16_t>(fields), 2);
  ++rows_;
}

void copy_rows::add(std::string_view bytes) {
  put_be(bytes_, static_cast<uint32_t>(bytes.size()), 4);
  bytes_.append(bytes);
}

void copy_rows::add_int4(int32_t value) {
  put_be(bytes_, 4, 4);
  put_be(bytes_, static_cast<uint32_t>(value), 4);
}

void copy_rows::add_int8(int64_t value) {
  put_be(bytes_, 8, 4);
  put_be(bytes_, static_cast<uint64_t>(value), 8);
}

void copy_rows::add_unix_ms(int64_t ms) {
  add_int8(ms * 1000 - postgres_epoch_us);
}

void copy_rows::add_null() {
  put_be(bytes_, 0xffffffffU, 4);
}

param copy_rows::take() {
  put_be(bytes_, 0xffffU, 2); // the trailer: a field count of -1
  param out{std::move(bytes_), true};
  *this = copy_rows{};
  return out;
}

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

result connection::copy_in(const std::string& sql, const std::string& data) {
  std::unique_ptr<PGresult, decltype(&PQclear)> start{PQexec(conn_, sql.c_str()), &PQclear};
  if (PQresultStatus(start.get()) != PGRES_COPY_IN)
    return from_pg_result(start.release(), conn_);
  start.reset();
  // A failed send ends the COPY too; its reason is then the connection's (lost) or the
  // server's answer below.
  if (PQputCopyData(conn_, data.data(), static_cast<int>(data.size())) == 1)
    PQputCopyEnd(conn_, nullptr);
  auto out = from_pg_result(PQgetResult(conn_), conn_);
  while (PGresult* extra = PQgetResult(conn_))
    PQclear(extra);
  return out;
}

// A cursor, not libpq's single-row mode: that makes one result (a malloc'd PGresult) per row,
// which at 1,000,000 rows cost more than the rows' own work.
result connection::fetch_in_chunks(const std::string& sql, size_t rows_per_chunk,
                                   const std::function<void(const row_ref&)>& visit) {
  // Between two chunks the session idles inside the transaction while lps takes the rows
  // in; the server must not end it for that (the store sets a short idle limit).
  for (const char* start : {"BEGIN", "SET LOCAL idle_in_transaction_session_timeout = 0"})
    if (auto r = exec(start); !r.ok)
      return r;
  if (auto r = exec("DECLARE lps_chunks NO SCROLL CURSOR FOR " + sql); !r.ok) {
    exec("ROLLBACK");
    return r;
  }
  const auto fetch = "FETCH FORWARD " + std::to_string(rows_per_chunk) + " FROM lps_chunks";
  for (;;) {
    std::unique_ptr<PGresult, decltype(&PQclear)> chunk{PQexec(conn_, fetch.c_str()), &PQclear};
    if (PQresultStatus(chunk.get()) != PGRES_TUPLES_OK) {
      auto failed = from_pg_result(chunk.release(), conn_);
      exec("ROLLBACK");
      return failed;
    }
    auto rows = PQntuples(chunk.get());
    try {
      for (int r = 0; r < rows; ++r)
        visit(row_ref{chunk.get(), r});
    } catch (...) {
      exec("ROLLBACK");
      throw;
    }
    if (static_cast<size_t>(rows) < rows_per_chunk)
      break;
  }
  return exec("COMMIT");
}

std::string_view row_ref::text(int column) const {
  return {PQgetvalue(res_, row_, column), static_cast<size_t>(PQgetlength(res_, row_, column))};
}

bool row_ref::is_null(int column) const {
  return PQgetisnull(res_, row_, column) != 0;
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
