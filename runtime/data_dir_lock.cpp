#include "runtime/data_dir_lock.hpp"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <utility>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

namespace lps {

namespace {

// The PID the holder wrote into the file; "" when it cannot be read.
std::string holder_pid(int fd) {
  char buf[32] = {};
  auto n = ::pread(fd, buf, sizeof(buf) - 1, 0);
  std::string text{buf, n > 0 ? static_cast<size_t>(n) : 0};
  while (!text.empty() && (text.back() == '\n' || text.back() == ' '))
    text.pop_back();
  return text;
}

void write_own_pid(int fd) {
  // Only for the message a second process prints: a failed write costs nothing else.
  auto text = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0)
    return;
  auto written = ::pwrite(fd, text.data(), text.size(), 0);
  static_cast<void>(written);
}

} // namespace

data_dir_lock data_dir_lock::acquire(const std::string& data_dir, std::string& error) {
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  auto path = (std::filesystem::path{data_dir} / "lps.lock").string();
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    error = "cannot open " + path + ": " + std::strerror(errno);
    return {};
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    auto reason = errno;
    if (reason == EWOULDBLOCK) {
      auto pid = holder_pid(fd);
      error = "DATA_DIR " + data_dir + " is in use by another lps process"
              + (pid.empty() ? std::string{} : " (PID " + pid + ")")
              + "; one process per DATA_DIR (" + path + " is locked)";
    } else {
      error = "cannot lock " + path + ": " + std::strerror(reason);
    }
    ::close(fd);
    return {};
  }
  write_own_pid(fd);
  return data_dir_lock{fd};
}

data_dir_lock::data_dir_lock(data_dir_lock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}

data_dir_lock& data_dir_lock::operator=(data_dir_lock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0)
      ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

data_dir_lock::~data_dir_lock() {
  if (fd_ >= 0)
    ::close(fd_);
}

} // namespace lps
