// lps-store-bench: the durable store on its own, without HTTP or actors (docs/benchmarks.md,
// "Store micro-benchmarks").
//
//   lps-store-bench burst [--fsync]   50,000 inserts, then their finals, from 2 threads
//   lps-store-bench paced [--fsync]   10,000 requests/s offered, each finalized 100 ms later
//   lps-store-bench purge [--fsync]   the retention purge of 100,000 old results
//   lps-store-bench recover [--fsync] the start-up read of 100,000 queued requests, from the
//                                     scheduling index and from the table (before schema 5)
//
// --backend=postgres runs burst and paced on PostgreSQL instead of SQLite: in a database of
// its own, made on the server LPS_BENCH_POSTGRES_URL names (the environment keeps the
// password off the command line) and dropped at the end.

#include "runtime/pg_store.hpp"
#include "runtime/postgres.hpp"
#include "runtime/store.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;

// A folder under the system temp folder, removed at the end.
class scratch_dir {
public:
  scratch_dir() {
    std::string pattern = (fs::temp_directory_path() / "lps-store-bench-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      std::perror("lps-store-bench: mkdtemp");
      std::exit(1);
    }
    path_ = pattern;
  }
  ~scratch_dir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const {
    return path_;
  }

private:
  fs::path path_;
};

bool on_postgres = false;

// On PostgreSQL: a database of its own on LPS_BENCH_POSTGRES_URL's server, dropped at the end.
class scratch_database {
public:
  scratch_database() {
    const char* url = std::getenv("LPS_BENCH_POSTGRES_URL");
    server_url_ = url != nullptr ? url : "";
    name_ = "lps_store_bench_" + std::to_string(::getpid());
    auto admin = connect(server_url_);
    if (auto r = admin->exec("CREATE DATABASE " + name_); !r.ok) {
      std::fprintf(stderr, "lps-store-bench: %s\n", r.error.c_str());
      std::exit(1);
    }
    url_ = server_url_.substr(0, server_url_.rfind('/') + 1) + name_;
  }
  ~scratch_database() {
    connect(server_url_)->exec("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
  }
  const std::string& url() const {
    return url_;
  }

private:
  static std::unique_ptr<lps::pg::connection> connect(const std::string& url) {
    std::string error;
    auto db = lps::pg::connection::open(url, std::chrono::seconds{10}, error);
    if (!db) {
      std::fprintf(stderr, "lps-store-bench: LPS_BENCH_POSTGRES_URL: %s\n", error.c_str());
      std::exit(1);
    }
    return db;
  }
  std::string server_url_;
  std::string name_;
  std::string url_;
};

// Where a run's store lives: a scratch folder, or with --backend=postgres a scratch database.
struct scratch_store {
  scratch_dir dir;
  std::optional<scratch_database> database;
  scratch_store() {
    if (on_postgres)
      database.emplace();
  }
};

std::unique_ptr<lps::store> open_store(const scratch_store& where, bool fsync,
                                       std::chrono::milliseconds retention = {}) {
  std::string error;
  lps::store_options options{.data_dir = where.dir.path().string(),
                             .fsync_every_commit = fsync,
                             .result_retention = retention};
  auto db = where.database ? lps::open_postgres_store(where.database->url(), options, error)
                           : lps::store::open(options, error);
  if (!db) {
    std::fprintf(stderr, "lps-store-bench: %s\n", error.c_str());
    std::exit(1);
  }
  return db;
}

void require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "lps-store-bench: check failed: %s\n", what);
    std::exit(1);
  }
}

std::string bench_id(std::mt19937_64& rng) {
  char text[40];
  std::snprintf(text, sizeof text, "%08x-%04x-4%03x-a%03x-%012llx", static_cast<unsigned>(rng()),
                static_cast<unsigned>(rng() & 0xffff), static_cast<unsigned>(rng() & 0xfff),
                static_cast<unsigned>(rng() & 0xfff),
                static_cast<unsigned long long>(rng() & 0xffffffffffffULL));
  return text;
}

std::vector<std::string> bench_ids(int n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::string> ids;
  for (int i = 0; i < n; ++i)
    ids.push_back(bench_id(rng));
  return ids;
}

lps::store_write insert_of(const std::string& id, int32_t priority, int64_t queued_at_ms,
                           const std::string& payload) {
  lps::store_write write;
  lps::stored_request row;
  row.queue_id = id;
  row.priority = priority;
  row.queued_at_ms = queued_at_ms;
  row.size_bytes = payload.size();
  row.payload = payload;
  write.inserts.push_back(std::move(row));
  return write;
}

// A final result of 1.5 KB with a callback, as the service writes them.
lps::stored_result result_of(const std::string& id, int64_t completed_at_ms) {
  return {id, "completed", std::string(1536, 'e'), "http://cb/x", false, completed_at_ms};
}

lps::store_write final_of(const std::string& id, int64_t completed_at_ms) {
  lps::store_write write;
  write.finals.push_back(result_of(id, completed_at_ms));
  return write;
}

double seconds_since(clock_type::time_point start) {
  return std::chrono::duration<double>(clock_type::now() - start).count();
}

// Submits `writes[t]` from thread t, then waits for all of them to commit.
double submit_all(lps::store& db, std::vector<std::vector<lps::store_write>>& writes,
                  std::atomic<int>& failures) {
  auto start = clock_type::now();
  std::vector<std::thread> threads;
  for (auto& mine : writes)
    threads.emplace_back([&db, &mine, &failures] {
      for (auto& write : mine)
        db.submit(std::move(write),
                  [&failures](bool ok, const std::string&) { failures += ok ? 0 : 1; });
    });
  for (auto& thread : threads)
    thread.join();
  db.flush();
  return seconds_since(start);
}

void run_burst(bool fsync) {
  constexpr int requests = 50000;
  constexpr int threads = 2;
  scratch_store where;
  auto db = open_store(where, fsync);
  std::string payload(6 * 1024, 'p');
  auto ids = bench_ids(requests, 42);
  std::vector<std::vector<lps::store_write>> insert_writes(threads), final_writes(threads);
  for (int i = 0; i < requests; ++i) {
    insert_writes[i % threads].push_back(
        insert_of(ids[i], static_cast<int32_t>(i % 10), 1000 + i, payload));
    final_writes[i % threads].push_back(final_of(ids[i], 5000 + i));
  }

  std::atomic<int> failures{0};
  double insert_s = submit_all(*db, insert_writes, failures);
  auto after_insert = db->stats();
  double final_s = submit_all(*db, final_writes, failures);
  auto after_final = db->stats();

  require(failures == 0, "every write committed");
  require(db->count_active_requests() == 0, "no request left");
  require(db->count_results() == requests, "one result per request");
  auto final_commits = after_final.commits - after_insert.commits;
  std::printf("store burst (%s, fsync %s, %d requests, 6 KB payload, 1.5 KB result, %d threads)\n"
              "  insert:   %8.0f ops/s  %6.2f s  %6llu commits  %7.1f ops/commit\n"
              "  finalize: %8.0f ops/s  %6.2f s  %6llu commits  %7.1f ops/commit\n"
              "  overall:  %8.0f ops/s  (= %.0f requests/s end to end)\n",
              on_postgres ? "postgres" : "sqlite", fsync ? "on" : "off", requests, threads,
              requests / insert_s, insert_s, static_cast<unsigned long long>(after_insert.commits),
              double(requests) / double(after_insert.commits), requests / final_s, final_s,
              static_cast<unsigned long long>(final_commits),
              double(requests) / double(final_commits), 2 * requests / (insert_s + final_s),
              requests / (insert_s + final_s));
}

double percentile(std::vector<double> values, double fraction) {
  if (values.empty())
    return 0;
  std::sort(values.begin(), values.end());
  return values[static_cast<size_t>(fraction * double(values.size() - 1))];
}

// The service's shape: requests arrive at a steady 10,000/s (one write each) and each is
// finalized 100 ms later, so commits stay small and their fsync cost shows.
void run_paced(bool fsync) {
  constexpr int rate = 10000;
  constexpr int requests = 30000;
  constexpr int threads = 2;
  constexpr int lag = rate / 10; // even, so request i and final i - lag share a thread
  scratch_store where;
  auto db = open_store(where, fsync);
  auto ids = bench_ids(requests, 7);
  std::string payload(6 * 1024, 'p');
  // Latency from submit to callback, per operation: inserts first, then finals.
  std::vector<double> latency_ms(2 * requests, 0);
  std::atomic<int> failures{0};

  auto submit_timed = [&](lps::store_write write, size_t slot) {
    auto sent = clock_type::now();
    db->submit(std::move(write), [&, sent, slot](bool ok, const std::string&) {
      latency_ms[slot] =
          std::chrono::duration<double, std::milli>(clock_type::now() - sent).count();
      failures += ok ? 0 : 1;
    });
  };
  auto start = clock_type::now();
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t)
    workers.emplace_back([&, t] {
      for (int i = t; i < requests + lag; i += threads) {
        std::this_thread::sleep_until(start + std::chrono::microseconds(i * 1000000LL / rate));
        if (i < requests)
          submit_timed(insert_of(ids[i], 5, i, payload), i);
        if (i >= lag)
          submit_timed(final_of(ids[i - lag], i), requests + i - lag);
      }
    });
  for (auto& worker : workers)
    worker.join();
  db->flush();
  double elapsed = seconds_since(start);
  require(failures == 0, "every write committed");
  require(db->count_active_requests() == 0, "no request left");
  auto stats = db->stats();
  std::printf("store paced (%s, fsync %s, %d requests/s offered, 6 KB payload, 1.5 KB result)\n"
              "  %8.0f ops/s  %6.2f s  %6llu commits  %5.1f ops/commit  latency ms: "
              "p50 %.2f  p99 %.2f  max %.2f\n",
              on_postgres ? "postgres" : "sqlite", fsync ? "on" : "off", rate,
              2 * requests / elapsed, elapsed, static_cast<unsigned long long>(stats.commits),
              double(stats.ops_committed) / double(stats.commits), percentile(latency_ms, 0.5),
              percentile(latency_ms, 0.99), percentile(latency_ms, 1.0));
}

// 100,000 delivered results 31 days old and 10,000 recent ones; then the purge (retention
// 30 days) with its steps timed, and the file size before and after.
void run_purge(bool fsync) {
  constexpr int old_results = 100000;
  constexpr int recent_results = 10000;
  constexpr int64_t day_ms = 86'400'000;
  scratch_store where; // SQLite only: it measures the file
  auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  {
    auto db = open_store(where, fsync);
    auto ids = bench_ids(old_results + recent_results, 11);
    std::atomic<int> failures{0};
    std::vector<std::vector<lps::store_write>> writes(1);
    for (int i = 0; i < old_results + recent_results; ++i) {
      auto write = final_of(ids[i], i < old_results ? now_ms - 31 * day_ms : now_ms);
      write.finals.front().delivered = true;
      writes[0].push_back(std::move(write));
    }
    submit_all(*db, writes, failures);
    require(failures == 0, "every result committed");
  }
  auto db_file = where.dir.path() / "lps.db";
  auto size_before = fs::file_size(db_file);
  auto db = open_store(where, fsync, std::chrono::hours(24 * 30));
  auto start = clock_type::now();
  db->purge_expired_results();
  double purge_s = seconds_since(start);
  auto stats = db->stats();
  require(db->count_results() == recent_results, "the recent results are kept");
  db.reset(); // checkpoints the WAL into the file
  auto size_after = fs::file_size(db_file);
  std::printf("store purge (fsync %s, %d old results of 1.5 KB, %d recent)\n"
              "  %llu purged in %.2f s: %llu steps, %.2f ms per step; lps.db %.1f -> %.1f MiB\n",
              fsync ? "on" : "off", old_results, recent_results,
              static_cast<unsigned long long>(stats.results_purged), purge_s,
              static_cast<unsigned long long>(stats.purge_steps),
              1000 * purge_s / double(stats.purge_steps), double(size_before) / (1 << 20),
              double(size_after) / (1 << 20));
}

// Bytes this process read through read(2)/pread(2) (rchar: page cache or disk) and from
// storage (read_bytes), from /proc/self/io.
struct io_counters {
  uint64_t rchar = 0;
  uint64_t read_bytes = 0;
};

io_counters read_io_counters() {
  io_counters result;
  std::ifstream in{"/proc/self/io"};
  std::string key;
  uint64_t value = 0;
  while (in >> key >> value) {
    if (key == "rchar:")
      result.rchar = value;
    else if (key == "read_bytes:")
      result.read_bytes = value;
  }
  return result;
}

// Empties the page cache (root only), so a read shows what a cold restart reads from disk.
bool drop_page_cache() {
  ::sync();
  std::ofstream out{"/proc/sys/vm/drop_caches"};
  out << "3\n";
  out.flush();
  return static_cast<bool>(out);
}

// The start-up read (runtime/store.cpp, load_index_sql) on its own connection, every row
// stepped and its columns copied as the store does; `from` picks the index or the table.
void time_index_read(const fs::path& db_file, const char* from, const char* label) {
  std::string sql = std::string{"SELECT queue_id, priority, queued_at_ms, size_bytes, attempts, "
                                "provider FROM "}
                    + from + " ORDER BY priority DESC, queued_at_ms ASC, rowid ASC";
  bool cold = drop_page_cache();
  sqlite3* db = nullptr;
  sqlite3_stmt* stmt = nullptr;
  require(sqlite3_open_v2(db_file.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK,
          "open lps.db");
  auto before = read_io_counters();
  auto start = clock_type::now();
  require(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK, "prepare");
  uint64_t rows = 0;
  std::string id, provider;
  while (sqlite3_step(stmt) == SQLITE_ROW) {
    id.assign(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)));
    provider.assign(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 5)));
    ++rows;
  }
  double elapsed = seconds_since(start);
  auto after = read_io_counters();
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  std::printf("  %-28s %llu rows in %6.2f s; read %8.1f MiB (%.1f MiB from disk)%s\n", label,
              static_cast<unsigned long long>(rows), elapsed,
              double(after.rchar - before.rchar) / (1 << 20),
              double(after.read_bytes - before.read_bytes) / (1 << 20),
              cold ? ", page cache dropped" : ", page cache NOT dropped (needs root)");
}

// 100,000 queued requests of 6 KB texts and a 300 B payload, as the service stores them; then
// the start-up read from the covering scheduling index (schema 5) and the same statement made
// to scan the table (NOT INDEXED), as before schema 5.
void run_recover(bool fsync) {
  constexpr int requests = 100000;
  scratch_store where; // SQLite only: it reads the file
  {
    auto db = open_store(where, fsync);
    auto ids = bench_ids(requests, 13);
    std::vector<std::vector<lps::store_write>> writes(1);
    for (int i = 0; i < requests; ++i) {
      auto write = insert_of(ids[i], static_cast<int32_t>(i % 10), 1000 + i, std::string(300, 'p'));
      write.inserts.front().texts = std::string(6 * 1024, 't');
      write.inserts.front().provider = "openai";
      writes[0].push_back(std::move(write));
    }
    std::atomic<int> failures{0};
    submit_all(*db, writes, failures);
    require(failures == 0, "every insert committed");
  } // closing checkpoints the WAL into the file
  auto db_file = where.dir.path() / "lps.db";
  std::printf("store recover (fsync %s, %d queued requests, lps.db %.1f MiB)\n",
              fsync ? "on" : "off", requests, double(fs::file_size(db_file)) / (1 << 20));
  time_index_read(db_file, "requests", "index (schema 5):");
  time_index_read(db_file, "requests NOT INDEXED", "table (before schema 5):");
}

} // namespace

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "";
  bool fsync = false;
  bool bad_flag = false;
  for (int i = 2; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag == "--fsync")
      fsync = true;
    else if (flag == "--backend=postgres")
      on_postgres = true;
    else if (flag != "--backend=sqlite")
      bad_flag = true;
  }
  if (mode == "burst" && !bad_flag)
    run_burst(fsync);
  else if (mode == "paced" && !bad_flag)
    run_paced(fsync);
  else if (mode == "purge" && !bad_flag && !on_postgres)
    run_purge(fsync);
  else if (mode == "recover" && !bad_flag && !on_postgres)
    run_recover(fsync);
  else {
    std::fprintf(stderr, "usage: lps-store-bench burst|paced|purge|recover [--fsync] "
                         "[--backend=sqlite|postgres] (purge, recover: sqlite only)\n");
    return 2;
  }
  return 0;
}
