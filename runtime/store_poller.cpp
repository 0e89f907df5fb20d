#include "runtime/store_poller.hpp"

#include "runtime/cluster_lease.hpp"

#include <spdlog/spdlog.h>

namespace lps::cluster {

namespace {

constexpr const char* page_sql =
    "SELECT queue_id, provider, priority, (extract(epoch FROM queued_at) * 1000)::bigint, "
    "size_bytes, attempts, seq FROM requests WHERE seq > $1::bigint ORDER BY seq LIMIT $2::integer";

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
                                                  std::string& error) {
  std::unique_ptr<store_poller> result{new store_poller(std::move(settings), std::move(sink))};
  result->db_ =
      pg::connection::open(result->settings_.postgres_url, std::chrono::seconds{10}, error);
  if (!result->db_)
    return nullptr;
  result->thread_ = std::thread{[p = result.get()] { p->run(); }};
  return result;
}

store_poller::store_poller(poller_settings settings, rows_sink sink)
    : settings_(std::move(settings)), sink_(std::move(sink)) {}

store_poller::~store_poller() {
  {
    std::lock_guard lock{mutex_};
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable())
    thread_.join();
}

uint64_t store_poller::rows_read() const {
  return rows_read_.load();
}

void store_poller::run() {
  std::unique_lock lock{mutex_};
  while (!stopping_) {
    lock.unlock();
    poll(polls_ % settings_.lookback_every == settings_.lookback_every - 1);
    ++polls_;
    lock.lock();
    wake_.wait_for(lock, settings_.interval, [this] { return stopping_; });
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

int64_t store_poller::read_after(int64_t after) {
  for (;;) {
    std::string error;
    auto r = exec_reconnecting(*db_, page_sql,
                               {std::to_string(after), std::to_string(settings_.page_rows)}, error);
    if (!r.ok) {
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
