#include "runtime/cancel_relay.hpp"

#include <algorithm>

namespace lps::cluster {

std::unique_ptr<cancel_relay> cancel_relay::start(relay_settings settings, std::string& error) {
  std::unique_ptr<cancel_relay> result{new cancel_relay(std::move(settings))};
  result->db_ =
      pg::connection::open(result->settings_.postgres_url, std::chrono::seconds{10}, error);
  if (!result->db_)
    return nullptr;
  result->thread_ = std::thread{[r = result.get()] { r->run(); }};
  return result;
}

cancel_relay::~cancel_relay() {
  {
    std::lock_guard lock{mutex_};
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable())
    thread_.join();
  for (auto& w : waiting_)
    w.done({relay_outcome::kind::pending, {}, ""});
  for (auto& [ask, done] : incoming_)
    done({relay_outcome::kind::failed, {}, "lps is shutting down"});
}

void cancel_relay::ask(cancel_ask ask, done_fn done) {
  {
    std::lock_guard lock{mutex_};
    incoming_.emplace_back(std::move(ask), std::move(done));
  }
  wake_.notify_all();
}

// Sleeps until a cancel arrives; while some wait for their answer, checks every
// `check_every`.
void cancel_relay::run() {
  std::unique_lock lock{mutex_};
  while (!stopping_) {
    auto incoming = std::move(incoming_);
    incoming_.clear();
    lock.unlock();
    record(std::move(incoming));
    check_answers();
    lock.lock();
    auto ready = [this] { return stopping_ || !incoming_.empty(); };
    if (waiting_.empty())
      wake_.wait(lock, ready);
    else
      wake_.wait_for(lock, settings_.check_every, ready);
  }
}

void cancel_relay::record(std::deque<std::pair<cancel_ask, done_fn>> incoming) {
  for (auto& [ask, done] : incoming) {
    std::string error;
    auto id = record_cancel(*db_, ask, settings_.node, error);
    if (!id) {
      done({relay_outcome::kind::failed, {}, "the cancel could not be recorded: " + error});
      continue;
    }
    waiting_.push_back({*id, std::chrono::steady_clock::now() + settings_.wait, std::move(done)});
  }
}

// Answered cancels are handed on; those past their wait are told `pending` (they stay
// recorded: the leader applies them later). A failed read leaves every one waiting.
void cancel_relay::check_answers() {
  if (waiting_.empty())
    return;
  std::vector<int64_t> ids;
  for (const auto& w : waiting_)
    ids.push_back(w.id);
  std::string error;
  auto answers = read_answers(*db_, ids, error);
  auto now = std::chrono::steady_clock::now();
  std::erase_if(waiting_, [&](waiting& w) {
    auto a = std::find_if(answers.begin(), answers.end(),
                          [&](const cancel_answer& x) { return x.id == w.id; });
    if (a != answers.end()) {
      w.done({relay_outcome::kind::answered, a->counts, ""});
      return true;
    }
    if (w.deadline <= now) {
      w.done({relay_outcome::kind::pending, {}, ""});
      return true;
    }
    return false;
  });
}

} // namespace lps::cluster
