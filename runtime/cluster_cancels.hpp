#pragma once

// Cancels asked on any node of a cluster (issue #11, docs/cluster.md): the node that gets
// POST /api/v1/requests/{id}/cancel or /api/v1/runs/{id}/cancel records the cancel in
// `cluster_cancels` (schema version 7); the leader's store poller reads the open ones, its
// queue manager applies them (it alone writes finals, so a cancel racing a dispatch still
// ends in one final) and the poller records what each did, which the asking node reads back.
// Plain statements on a libpq connection; nothing here knows an actor.

#include "runtime/postgres.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace lps::cluster {

/// One recorded cancel: a request (`queue_id`) or a run (`bos_batch_id`), never both.
struct cancel_ask {
  int64_t id = 0;
  std::string queue_id;
  std::string bos_batch_id;
};

/// What the leader's cancel did (the queue manager's cancel_summary, request by request).
struct cancel_counts {
  uint64_t cancelled = 0;
  uint64_t already_processing = 0;
  uint64_t already_final = 0;
  uint64_t not_found = 0;
  friend bool operator==(const cancel_counts&, const cancel_counts&) = default;
};

struct cancel_answer {
  int64_t id = 0;
  cancel_counts counts;
};

/// Records a cancel asked on `node`; its id, or nullopt with `error` set.
std::optional<int64_t> record_cancel(pg::connection& db, const cancel_ask& ask,
                                     const std::string& node, std::string& error);

/// The answers recorded so far among `ids` (an unanswered id is left out).
std::vector<cancel_answer> read_answers(pg::connection& db, const std::vector<int64_t>& ids,
                                        std::string& error);

/// The cancels no leader has answered yet, oldest first.
std::vector<cancel_ask> read_open_cancels(pg::connection& db, std::string& error);

/// Records what cancel `id` did; false with `error` set when the statement failed.
bool record_answer(pg::connection& db, const cancel_answer& answer, std::string& error);

/// Deletes answered cancels older than `age` (their asker stopped waiting long ago).
void forget_answered(pg::connection& db, std::chrono::seconds age);

} // namespace lps::cluster
