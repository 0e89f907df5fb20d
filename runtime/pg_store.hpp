#pragma once

// The store contract (runtime/store.hpp) on PostgreSQL (STORE_BACKEND=postgres): the same
// promises as the SQLite store (group commit by one writer thread with callbacks after
// COMMIT, one final result per request, reads on a connection of their own, retention in
// small transactions) on the tables of runtime/pg_schema.cpp, which it migrates at open.

#include "runtime/store.hpp"

#include <chrono>
#include <memory>
#include <string>

namespace lps {

/// Opens the store in the database `url` names: connects (within `connect_timeout`),
/// applies the schema migrations and starts the writer. Of `options` it uses
/// max_ops_per_commit, manual_commits, result_retention and fsync_every_commit (false:
/// synchronous_commit=off, so a commit does not wait for the server's WAL flush; a server
/// crash may then lose the last commits). Returns nullptr with `error` set (the password
/// masked) on failure.
std::unique_ptr<store>
open_postgres_store(const std::string& url, const store_options& options, std::string& error,
                    std::chrono::seconds connect_timeout = std::chrono::seconds{10});

/// The start-up recovery scan's statement (store::load_active_index), which the index
/// requests_recovery answers without a sort (tests check its plan).
const std::string& pg_recovery_scan_sql();

} // namespace lps
