#pragma once

// The check every cluster test ends with: each accepted request has exactly one result row
// in the shared database and one callback event id at the receiver, and no request is left.

#include "fixtures/cluster_database.hpp"
#include "fixtures/process_helpers.hpp"
#include "integration/service_clients.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace lps::test {

/// Waits up to `limit` for every id's result row and callback, then checks: one result row
/// per id, no request left, every id's callbacks carry one event id (0 lost, 0 duplicate).
inline void require_exactly_once(pg::connection& db, receiver& rx,
                                 const std::vector<std::string>& ids,
                                 std::chrono::seconds limit = std::chrono::seconds{90}) {
  using namespace std::chrono_literals;
  REQUIRE(eventually(
      [&] {
        return count_of(db, "SELECT count(*) FROM results") >= int64_t(ids.size())
               && rx.wait_for(ids.size(), 0s);
      },
      limit));
  CHECK(count_of(db, "SELECT count(*) FROM results") == int64_t(ids.size()));
  CHECK(count_of(db, "SELECT count(*) FROM requests") == 0);
  CHECK(std::set<std::string>(ids.begin(), ids.end()).size() == ids.size());
  size_t lost = 0, duplicate_ids = 0;
  std::lock_guard lock{rx.mtx};
  for (const auto& id : ids) {
    auto i = rx.events.find(id);
    if (i == rx.events.end()) {
      ++lost;
      continue;
    }
    std::set<std::string> event_ids;
    for (const auto& event : i->second)
      event_ids.emplace(event.at("event_id").as_string());
    duplicate_ids += event_ids.size() - 1;
  }
  CHECK(lost == 0);
  CHECK(duplicate_ids == 0);
}

} // namespace lps::test
