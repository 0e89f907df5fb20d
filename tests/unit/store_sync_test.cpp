// Which SQLite commits fsync (runtime/store.cpp, sync_for): with fsync on, inserts, finals and
// the other writes someone waits for sync the WAL at their commit; a transaction of marks
// only (dispatched, delivered) does not, and the next syncing commit carries it. The syncs
// are counted by a VFS shim around SQLite's default VFS that counts every xSync of a file
// whose name ends in "-wal", so the test sees what SQLite asks of the disk.

#include "fixtures/temp_dir.hpp"
#include "runtime/store.hpp"

#include <catch2/catch.hpp>
#include <sqlite3.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <string>

namespace {

std::atomic<int> wal_syncs{0};
sqlite3_vfs* real_vfs = nullptr;

// A file of the shim: ours first, the real VFS's file right behind it.
struct counting_file {
  sqlite3_file base;
  bool is_wal;
  sqlite3_file* real() {
    return reinterpret_cast<sqlite3_file*>(this + 1);
  }
};

counting_file* as_counting(sqlite3_file* f) {
  return reinterpret_cast<counting_file*>(f);
}

const sqlite3_io_methods* real_methods(sqlite3_file* f) {
  return as_counting(f)->real()->pMethods;
}

int counting_sync(sqlite3_file* f, int flags) {
  if (as_counting(f)->is_wal)
    ++wal_syncs;
  return real_methods(f)->xSync(as_counting(f)->real(), flags);
}

// Every other method forwards to the real file.
const sqlite3_io_methods counting_methods = {
    3,
    [](sqlite3_file* f) {
      auto rc = real_methods(f)->xClose(as_counting(f)->real());
      f->pMethods = nullptr;
      return rc;
    },
    [](sqlite3_file* f, void* p, int n, sqlite3_int64 o) {
      return real_methods(f)->xRead(as_counting(f)->real(), p, n, o);
    },
    [](sqlite3_file* f, const void* p, int n, sqlite3_int64 o) {
      return real_methods(f)->xWrite(as_counting(f)->real(), p, n, o);
    },
    [](sqlite3_file* f, sqlite3_int64 size) {
      return real_methods(f)->xTruncate(as_counting(f)->real(), size);
    },
    counting_sync,
    [](sqlite3_file* f, sqlite3_int64* size) {
      return real_methods(f)->xFileSize(as_counting(f)->real(), size);
    },
    [](sqlite3_file* f, int lock) { return real_methods(f)->xLock(as_counting(f)->real(), lock); },
    [](sqlite3_file* f, int lock) {
      return real_methods(f)->xUnlock(as_counting(f)->real(), lock);
    },
    [](sqlite3_file* f, int* out) {
      return real_methods(f)->xCheckReservedLock(as_counting(f)->real(), out);
    },
    [](sqlite3_file* f, int op, void* arg) {
      return real_methods(f)->xFileControl(as_counting(f)->real(), op, arg);
    },
    [](sqlite3_file* f) { return real_methods(f)->xSectorSize(as_counting(f)->real()); },
    [](sqlite3_file* f) { return real_methods(f)->xDeviceCharacteristics(as_counting(f)->real()); },
    [](sqlite3_file* f, int page, int size, int extend, void volatile** out) {
      return real_methods(f)->xShmMap(as_counting(f)->real(), page, size, extend, out);
    },
    [](sqlite3_file* f, int offset, int n, int flags) {
      return real_methods(f)->xShmLock(as_counting(f)->real(), offset, n, flags);
    },
    [](sqlite3_file* f) { real_methods(f)->xShmBarrier(as_counting(f)->real()); },
    [](sqlite3_file* f, int remove) {
      return real_methods(f)->xShmUnmap(as_counting(f)->real(), remove);
    },
    [](sqlite3_file* f, sqlite3_int64 o, int n, void** out) {
      return real_methods(f)->xFetch(as_counting(f)->real(), o, n, out);
    },
    [](sqlite3_file* f, sqlite3_int64 o, void* p) {
      return real_methods(f)->xUnfetch(as_counting(f)->real(), o, p);
    },
};

int counting_open(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* f, int flags, int* out_flags) {
  auto* file = as_counting(f);
  file->base.pMethods = nullptr;
  int rc = real_vfs->xOpen(real_vfs, name, file->real(), flags, out_flags);
  if (rc != SQLITE_OK)
    return rc;
  auto length = name ? std::strlen(name) : 0;
  file->is_wal = length > 4 && std::strcmp(name + length - 4, "-wal") == 0;
  file->base.pMethods = &counting_methods;
  return SQLITE_OK;
}

// Makes the shim SQLite's default VFS once for this test process (every connection the
// store opens uses the default VFS).
void install_counting_vfs() {
  static sqlite3_vfs vfs = [] {
    real_vfs = sqlite3_vfs_find(nullptr);
    sqlite3_vfs shim = *real_vfs;
    shim.zName = "lps_counting";
    shim.szOsFile = int(sizeof(counting_file)) + real_vfs->szOsFile;
    shim.xOpen = counting_open;
    return shim;
  }();
  static bool registered = sqlite3_vfs_register(&vfs, 1) == SQLITE_OK;
  REQUIRE(registered);
}

lps::stored_request request(const std::string& id) {
  lps::stored_request row;
  row.queue_id = id;
  row.priority = 5;
  row.queued_at_ms = 1000;
  row.payload = "{}";
  row.size_bytes = row.payload.size();
  return row;
}

lps::stored_result final_of(const std::string& id) {
  lps::stored_result row;
  row.queue_id = id;
  row.status = "completed";
  row.event_json = R"({"queue_id":")" + id + R"("})";
  row.callback_url = "http://127.0.0.1:9/cb";
  row.completed_at_ms = 2000;
  return row;
}

std::unique_ptr<lps::store> open_store(const lps::test::temp_dir& dir, bool fsync) {
  lps::store_options options;
  options.data_dir = dir.str();
  options.fsync_every_commit = fsync;
  std::string error;
  auto db = lps::store::open(options, error);
  INFO(error);
  REQUIRE(db != nullptr);
  return db;
}

// Submits one write, waits for its commit and returns how many WAL syncs it took.
int syncs_of(lps::store& db, lps::store_write write) {
  std::atomic<bool> ok{false};
  int before = wal_syncs.load();
  db.submit(std::move(write), [&](bool committed, const std::string&) { ok = committed; });
  db.flush();
  REQUIRE(ok.load());
  return wal_syncs.load() - before;
}

} // namespace

TEST_CASE("with fsync on, inserts and finals sync the WAL and marks nobody waits for do not",
          "[sqlite]") {
  install_counting_vfs();
  lps::test::temp_dir dir;
  auto db = open_store(dir, true);

  lps::store_write insert;
  insert.inserts = {request("q1")};
  CHECK(syncs_of(*db, insert) >= 1);

  lps::store_write dispatched;
  dispatched.dispatched = {"q1"};
  CHECK(syncs_of(*db, dispatched) == 0);

  lps::store_write final;
  final.finals = {final_of("q1")};
  CHECK(syncs_of(*db, final) >= 1);

  lps::store_write delivered;
  delivered.delivered = {"q1"};
  CHECK(syncs_of(*db, delivered) == 0);

  // A mark folded into one transaction with a write someone waits for syncs with it.
  lps::store_write both;
  both.inserts = {request("q2")};
  both.dispatched = {"q2"};
  CHECK(syncs_of(*db, both) >= 1);

  // The unsynced marks were committed: another connection reads them.
  db.reset();
  auto reopened = open_store(dir, true);
  auto result = reopened->find_result("q1");
  REQUIRE(result.has_value());
  CHECK(result->delivered);
}

TEST_CASE("with fsync off no commit syncs the WAL", "[sqlite]") {
  install_counting_vfs();
  lps::test::temp_dir dir;
  auto db = open_store(dir, false);
  lps::store_write insert;
  insert.inserts = {request("q1")};
  CHECK(syncs_of(*db, insert) == 0);
  lps::store_write final;
  final.finals = {final_of("q1")};
  CHECK(syncs_of(*db, final) == 0);
}
