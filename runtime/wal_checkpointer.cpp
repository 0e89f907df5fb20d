#include "runtime/wal_checkpointer.hpp"

#include "runtime/sqlite_database.hpp"

#include <spdlog/spdlog.h>

namespace lps {

struct wal_checkpointer::connection {
  std::unique_ptr<sqlite::database> db;
};

std::unique_ptr<wal_checkpointer> wal_checkpointer::start(const std::string& data_dir,
                                                          int busy_timeout_ms, std::string& error) {
  std::unique_ptr<wal_checkpointer> result{new wal_checkpointer};
  result->db_ = std::make_unique<connection>();
  result->db_->db = sqlite::database::open({.data_dir = data_dir,
                                            .purpose = sqlite::role::checkpointer,
                                            .busy_timeout_ms = busy_timeout_ms},
                                           error);
  if (!result->db_->db) {
    error = "cannot open a checkpoint connection: " + error;
    return nullptr;
  }
  result->thread_ = std::thread([self = result.get()] { self->run(); });
  return result;
}

wal_checkpointer::~wal_checkpointer() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable())
    thread_.join();
}

void wal_checkpointer::request() {
  {
    std::lock_guard lock(mutex_);
    requested_ = true;
  }
  wake_.notify_one();
}

uint64_t wal_checkpointer::checkpoints() const {
  std::lock_guard lock(mutex_);
  return checkpoints_;
}

void wal_checkpointer::restart() {
  std::unique_lock lock(mutex_);
  auto ticket = ++restarts_wanted_;
  wake_.notify_one();
  restarted_.wait(lock, [&] { return restarts_done_ >= ticket || stopping_; });
}

// One checkpoint on this thread's connection; true when it ran on a WAL with frames.
bool wal_checkpointer::checkpoint(int mode) {
  int wal_frames = -1;
  int rc = sqlite3_wal_checkpoint_v2(db_->db->get(), nullptr, mode, &wal_frames, nullptr);
  // BUSY: readers kept a RESTART from finishing within the busy timeout (it still copied
  // what it could). Anything else is worth one warning.
  if (rc != SQLITE_OK && rc != SQLITE_BUSY && !warned_) {
    spdlog::warn("store: background WAL checkpoint failed: {}", sqlite::message(db_->db->get()));
    warned_ = true;
  }
  return rc == SQLITE_OK && wal_frames > 0; // -1: the connection is not in WAL mode
}

void wal_checkpointer::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [&] { return requested_ || restarts_wanted_ > restarts_done_ || stopping_; });
    if (stopping_)
      break;
    auto restart_ticket = restarts_wanted_;
    bool restart = restart_ticket > restarts_done_;
    requested_ = false;
    lock.unlock();
    bool ran = checkpoint(restart ? SQLITE_CHECKPOINT_RESTART : SQLITE_CHECKPOINT_PASSIVE);
    lock.lock();
    checkpoints_ += ran ? 1 : 0;
    if (restart) {
      restarts_done_ = restart_ticket;
      restarted_.notify_all();
    }
  }
  restarted_.notify_all();
}

} // namespace lps
