#pragma once

// The batch job store contract (runtime/batch_job_store.hpp) on PostgreSQL
// (STORE_BACKEND=postgres): the tables batch_jobs and batch_job_items of
// runtime/pg_schema.cpp, in the same database as the requests and results. Same promises as
// the SQLite implementation: each call is one transaction, synchronous, thread-safe (one
// mutex around its own connection) and never throws.

#include "runtime/batch_job_store.hpp"

#include <chrono>
#include <memory>
#include <string>

namespace lps {

/// Connects to the database `url` names (within `connect_timeout`) and applies the schema
/// migrations (a no-op when the main store did already). Returns nullptr with `error` set,
/// the password masked, on failure. A connection lost later is reopened by the next call.
std::unique_ptr<batch_job_store>
open_postgres_batch_job_store(const std::string& url, std::string& error,
                              std::chrono::seconds connect_timeout = std::chrono::seconds{10});

} // namespace lps
