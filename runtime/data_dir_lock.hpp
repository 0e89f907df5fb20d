#pragma once

// One process per DATA_DIR: two lps processes on one embedded store would both recover the
// same queued requests, call the provider twice and send every callback twice. The lock is
// an flock on DATA_DIR/lps.lock, which the kernel drops when the process ends however it
// ends (a kill -9 leaves no stale lock behind).

#include <string>

namespace lps {

class data_dir_lock {
public:
  /// Takes the lock on `data_dir` (created if missing). On failure returns a lock that
  /// holds nothing and sets `error`: naming the PID that holds it, when another does.
  static data_dir_lock acquire(const std::string& data_dir, std::string& error);

  data_dir_lock() = default;
  data_dir_lock(data_dir_lock&& other) noexcept;
  data_dir_lock& operator=(data_dir_lock&& other) noexcept;
  data_dir_lock(const data_dir_lock&) = delete;
  data_dir_lock& operator=(const data_dir_lock&) = delete;
  ~data_dir_lock();

  bool held() const noexcept {
    return fd_ >= 0;
  }

private:
  explicit data_dir_lock(int fd) noexcept : fd_(fd) {}
  int fd_ = -1;
};

} // namespace lps
