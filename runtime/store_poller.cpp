#include "runtime/store_poller.hpp"

#include "runtime/cluster_lease.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace lps::cluster {

namespace {

#define LPS_SCHEDULING_COLUMNS                                                                     \
  "SELECT queue_id, provider, priority, (extract(epoch FROM queued_at) * 1000)::bigint, "          \
  "size_bytes, attempts, seq FROM requests "

constexpr const char* page_sql =
    LPS_SCHEDULING_COLUMNS "WHERE seq > $1::bigint ORDER BY seq LIMIT $2::integer";
constexpr const char* request_sql = LPS_SCHEDULING_COLUMNS "WHERE queue_id = $1";
constexpr const char* run_sql = LPS_SCHEDULING_COLUMNS "WHERE bos_batch_id = $1";

/// Every this many polls answered cancels older than an hour are deleted.
constexpr uint64_t forget_cancels_every = 4 * 3600;

stored_request row_of(const pg::row& row) {
  stored_request out;
  out.queue_id = row[0].value_or("");
  out.provider = row[1].value_or("");
  out.priority = std::stoi(row[2].value_or("5"));
  out.queued_at_ms = std::stoll(row[3].value_or("0"));
  out.size_bytes = std::stoull(row[4].value_or("0"));
  out.attempts = static_cast<uint32_t>(std::stoul(row[5].value_or("0")));
  return out;
}

} // namespace

std::unique_ptr<store_poller> store_poller::start(poller_settings settings, rows_sink sink,
                                                  cancels_sink cancels, std::string& error) {
  std::unique_ptr<store_poller> result{
      new store_poller(std::move(settings), std::move(sink), std::move(cancels))};
  result->db_ =
      pg::connection::open(result->settings_.postgres_url, std::chrono::seconds{10}, error);
  if (!result->db_)
    return nullptr;
  result->thread_ = std::thread{[p = result.get()] { p->run(); }};
  return result;
}

store_poller::store_poller(poller_settings settings, rows_sink sink, cancels_sink cancels)
    : settings_(std::move(settings)), sink_(std::move(sink)), cancels_(std::move(cancels)) {}

store_poller::~store_poller() {
  {
    std::lock_guard lock{signals_->mutex};
    signals_->stopping = true;
  }
  signals_->wake.notify_all();
  if (thread_.joinable())
    thread_.join();
}

uint64_t store_poller::rows_read() const {
  return rows_read_.load();
}

uint64_t store_poller::notified_polls() const {
  return notified_polls_.load();
}

void store_poller::run() {
  auto& sig = *signals_;
  for (;;) {
    {
      std::lock_guard lock{sig.mutex};
      if (sig.stopping)
        return;
    }
    if (settings_.listen && !notify_enabled_)
      enable_notifications();
    listen();
    if (cancels_)
      poll_cancels();
    auto now = std::chrono::steady_clock::now();
    bool look_back = now - last_lookback_ >= settings_.interval * settings_.lookback_every;
    if (look_back)
      last_lookback_ = now;
    poll(look_back);
    ++polls_;
    wait_for_work();
  }
}

// Created disabled (schema version 7: a single node's intake pays nothing); the first leader
// enables it for good. ALTER TABLE waits for the inserts in flight and holds new ones behind
// it, so it gives up after 200 ms (a transaction left open) and tries again at the next poll.
void store_poller::enable_notifications() {
  std::string error;
  auto r = exec_reconnecting(*db_,
                             "SELECT tgenabled <> 'D' FROM pg_trigger WHERE tgname = "
                             "'requests_notify_work'",
                             {}, error);
  if (!r.ok || r.rows.empty())
    return;
  if (r.rows[0][0] == "t") {
    notify_enabled_ = true;
    return;
  }
  auto alter = db_->exec_script("BEGIN; SET LOCAL lock_timeout = '200ms'; ALTER TABLE requests "
                                "ENABLE TRIGGER requests_notify_work; COMMIT");
  if (alter.ok) {
    notify_enabled_ = true;
    return;
  }
  db_->exec("ROLLBACK");
  spdlog::warn("cluster: cannot enable the new-work notification yet: {}", alter.error);
}

void store_poller::listen() {
  if (!settings_.listen || listening_)
    return;
  std::string error;
  listening_ = exec_reconnecting(*db_, "LISTEN lps_work", {}, error).ok;
  if (!listening_)
    spdlog::warn("cluster: cannot LISTEN for new work (polling every {} ms): {}",
                 settings_.interval.count(), error);
}

// In slices, so a stop or an answer to record is seen within one.
void store_poller::wait_for_work() {
  constexpr std::chrono::milliseconds slice{20};
  auto& sig = *signals_;
  auto deadline = std::chrono::steady_clock::now() + settings_.interval;
  for (;;) {
    {
      std::unique_lock lock{sig.mutex};
      if (sig.stopping || !sig.answers.empty())
        return;
      if (!listening_) {
        sig.wake.wait_until(lock, deadline,
                            [&sig] { return sig.stopping || !sig.answers.empty(); });
        return;
      }
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left <= std::chrono::milliseconds{0})
      return;
    if (db_->await_notification(std::min(left, slice))) {
      ++notified_polls_;
      return;
    }
    if (!db_->healthy()) {
      listening_ = false; // the next statement reconnects; LISTEN again then
      return;
    }
  }
}

// A look back starts from the highest seq seen `lookback` ago (0 when the poller is younger:
// everything again).
void store_poller::poll(bool look_back) {
  auto now = std::chrono::steady_clock::now();
  int64_t from = highest_;
  if (look_back) {
    from = 0;
    for (const auto& [when, seq] : seen_)
      if (when + settings_.lookback <= now)
        from = seq;
  }
  auto top = read_after(from);
  if (top > highest_) {
    highest_ = top;
    seen_.emplace_back(now, top);
  }
  // Entries older than the look-back are needed only as its starting point: keep the newest.
  while (seen_.size() > 1 && seen_[1].first + settings_.lookback <= now)
    seen_.pop_front();
}

void store_poller::poll_cancels() {
  std::vector<cancel_answer> answers;
  std::vector<int64_t> retries;
  {
    std::lock_guard lock{signals_->mutex};
    answers.swap(signals_->answers);
    retries.swap(signals_->retries);
  }
  for (auto id : retries)
    handed_.erase(id);
  std::string error;
  for (const auto& a : answers) {
    // An answer not recorded is handed on again: the queue answers a repeat as already final.
    if (!record_answer(*db_, a, error))
      spdlog::warn("cluster: recording the answer of cancel {} failed: {}", a.id, error);
    handed_.erase(a.id);
  }
  if (polls_ % forget_cancels_every == 0)
    forget_answered(*db_, std::chrono::hours{1});
  auto open = read_open_cancels(*db_, error);
  if (!error.empty())
    spdlog::warn("cluster: reading the cancels asked failed: {}", error);
  for (const auto& ask : open)
    if (handed_.insert(ask.id).second)
      hand_on(ask);
}

// The targeted rows first, so the queue manager holds them when the cancel arrives (a
// request accepted just before its cancel may not have been polled yet); it skips those it
// holds. Both go out from this thread in this order.
void store_poller::hand_on(const cancel_ask& ask) {
  std::string error;
  auto r = ask.queue_id.empty() ? exec_reconnecting(*db_, run_sql, {ask.bos_batch_id}, error)
                                : exec_reconnecting(*db_, request_sql, {ask.queue_id}, error);
  if (!r.ok) {
    spdlog::warn("cluster: reading the requests of cancel {} failed: {}", ask.id, error);
    handed_.erase(ask.id);
    return;
  }
  if (!r.rows.empty()) {
    std::vector<stored_request> rows;
    for (const auto& row : r.rows)
      rows.push_back(row_of(row));
    sink_(std::move(rows));
  }
  cancels_(ask, [sig = signals_, id = ask.id](std::optional<cancel_counts> counts) {
    {
      std::lock_guard lock{sig->mutex};
      if (counts)
        sig->answers.push_back({id, *counts});
      else
        sig->retries.push_back(id);
    }
    sig->wake.notify_all();
  });
}

int64_t store_poller::read_after(int64_t after) {
  for (;;) {
    std::string error;
    auto r = exec_reconnecting(*db_, page_sql,
                               {std::to_string(after), std::to_string(settings_.page_rows)}, error);
    if (!r.ok) {
      listening_ = false;
      spdlog::warn("cluster: reading new requests failed: {}", error);
      return after;
    }
    if (r.rows.empty())
      return after;
    std::vector<stored_request> rows;
    rows.reserve(r.rows.size());
    for (const auto& row : r.rows)
      rows.push_back(row_of(row));
    after = std::stoll(r.rows.back()[6].value_or("0"));
    rows_read_ += rows.size();
    sink_(std::move(rows));
    if (r.rows.size() < settings_.page_rows)
      return after;
  }
}

} // namespace lps::cluster
