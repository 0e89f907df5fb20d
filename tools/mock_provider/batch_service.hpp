#pragma once

// The state behind mock_batch::service, shared by the three files that implement it:
// mock_provider_batches.cpp (routing, counters, settings), openai_batches.cpp and
// anthropic_batches.cpp (each dialect's calls). Internal to lps_mock_provider.
//
// Threading: handle() runs on the HTTP server's I/O threads. Files, batches, counters,
// settings and the id generator sit behind one mutex, held for bookkeeping only: parsing,
// validation and rendering run outside it on immutable item sets (shared_ptr<const>).
//
// Time: a batch stores its creation instant and the timings in force then; every call works
// out the phase from its clock (mock_provider_options::batch_clock or the steady clock), so no
// timer thread is needed and a batch nobody asks about costs nothing.

#include "tools/mock_provider/anthropic_batches.hpp"
#include "tools/mock_provider/mock_provider_batches.hpp"
#include "tools/mock_provider/openai_batches.hpp"

#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace lps::mock_batch {

struct service::impl {
  mock_provider_options start_options;
  uint64_t seed = 0;
  std::string api_key;
  bool tls = false;

  mutable std::mutex mu;
  mock_batch_options settings;                            // guarded by mu
  mock_batch_stats counters;                              // guarded by mu
  std::mt19937_64 rng;                                    // guarded by mu
  uint64_t ordinal = 0;                                   // guarded by mu
  std::unordered_map<std::string, openai_file> files;     // guarded by mu
  std::vector<std::shared_ptr<openai_batch>> openai_list; // guarded by mu; oldest first
  std::unordered_map<std::string, std::shared_ptr<openai_batch>> openai_index; // guarded by mu
  std::vector<std::shared_ptr<anthropic_batch>> anthropic_list; // guarded by mu; oldest first
  std::unordered_map<std::string, std::shared_ptr<anthropic_batch>> anthropic_index; // by mu

  // -- shared (mock_provider_batches.cpp) --

  steady::time_point clock_now() const;
  std::string random_chars(size_t n, std::string_view alphabet);
  std::string request_id(dialect d);
  void clear();
  http_response handle(const http_request& req);

  // -- OpenAI (openai_batches.cpp) --

  http_response openai_call(const http_request& req, const route& r, const std::string& rid);
  http_response upload(const http_request& req, const std::string& rid);
  http_response no_such_file(const std::string& id, const std::string& rid);
  http_response file(const std::string& id, bool content, const std::string& rid);
  http_response create_openai(const http_request& req, const std::string& rid);
  static std::optional<std::string> check_metadata(const json::value& m);
  http_response get_or_cancel_openai(const std::string& id, bool cancel, const std::string& rid);
  http_response list_openai(const http_request& req, const std::string& rid);

  // -- Anthropic (anthropic_batches.cpp) --

  http_response anthropic_call(const http_request& req, const route& r, const std::string& rid);
  std::string base_url(const http_request& req) const;
  http_response create_anthropic(const http_request& req, const std::string& rid);
  http_response no_such_batch(const std::string& id, const std::string& rid);
  http_response get_or_cancel_anthropic(const http_request& req, const std::string& id, bool cancel,
                                        const std::string& rid);
  http_response list_anthropic(const http_request& req, const std::string& rid);
  http_response results(const std::string& id, const std::string& rid);
};

} // namespace lps::mock_batch
