#pragma once

// Pieces the batch wire formats (openai_batch_format, anthropic_batch_format) share: the
// results of steps that succeeded or whose answer cannot be used, and the reading of result
// files line by line. Includes Boost.JSON (through wire_common.hpp), so only the
// *_batch_format.cpp files include it.

#include "actors/providers/batch_wire.hpp"
#include "actors/providers/provider_wire.hpp"
#include "actors/providers/wire_common.hpp"

#include <chrono>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lps::wire {

/// A 2xx answer that is not what the step should return: asking again is harmless and the
/// only way to learn more. `provider` ("OpenAI") starts the message.
inline wire_response bad_answer(std::string_view provider, unsigned status, std::string what,
                                const wire_headers& headers,
                                std::chrono::system_clock::time_point now) {
  auto result =
      failure(ec::parsing_error, std::string{provider} + " " + std::move(what), status, true);
  result.retry_after = retry_after_of(headers, now);
  return result;
}

/// The result of a step that succeeded.
inline wire_response step_ok(unsigned status) {
  wire_response result;
  result.success = true;
  result.http_status = static_cast<int32_t>(status);
  return result;
}

/// An answer whose reading threw `ex`: retryable, like bad_answer.
inline wire_response unreadable(std::string_view provider, unsigned status,
                                const std::exception& ex) {
  return failure(ec::parsing_error, std::string{provider} + " answer unreadable: " + ex.what(),
                 status, true);
}

/// Calls `f` with every line of `body` that holds more than whitespace, without a trailing
/// "\r" (a file written with CRLF line ends).
template <class F>
void for_each_line(std::string_view body, F f) {
  while (!body.empty()) {
    auto end = body.find('\n');
    auto line = body.substr(0, end);
    body = end == std::string_view::npos ? std::string_view{} : body.substr(end + 1);
    if (line.ends_with('\r'))
      line.remove_suffix(1);
    if (line.find_first_not_of(" \t\r") != std::string_view::npos)
      f(line);
  }
}

/// Reads the result lines of `body` with `read_line` (false: not a result line). A line it
/// cannot read, or throws on, counts in `out.unreadable_lines`: one bad line must not cost the
/// results of the others.
template <class ReadLine>
void read_result_lines(std::string_view body, batch_results& out, ReadLine read_line) {
  for_each_line(body, [&](std::string_view line) {
    bool read = false;
    try {
      read = read_line(line);
    } catch (const std::exception&) {
      read = false;
    }
    if (!read)
      ++out.unreadable_lines;
  });
}

/// Reads a results download: `http_error` reads a non-2xx answer the provider's way;
/// `read_line(line, items)` reads one result line into `items` (see read_result_lines).
/// Failures land in `error`; nothing throws.
template <class HttpError, class ReadLine>
batch_results read_results_answer(std::string_view provider, unsigned status, std::string_view body,
                                  wire_response& error, HttpError http_error, ReadLine read_line) {
  batch_results out;
  try {
    if (!is_success(status)) {
      error = http_error();
      return out;
    }
    error = step_ok(status);
    read_result_lines(body, out, [&](std::string_view line) { return read_line(line, out.items); });
  } catch (const std::exception& ex) {
    error = unreadable(provider, status, ex);
    out = batch_results{};
  }
  return out;
}

/// Reads a job answer (create, poll and cancel all return the job object). `http_error` reads
/// a non-2xx answer the provider's way; `fill(root, out)` reads the provider's fields into
/// `out` and returns the state its status word maps to (nullopt: a word we do not know).
/// A body that is not a JSON object, a job without an id and an unknown status word are
/// unreadable answers (retryable); nothing throws.
template <class HttpError, class Fill>
batch_job_status
read_job_answer(std::string_view provider, std::string_view status_field, unsigned status,
                std::string_view body, const wire_headers& headers,
                std::chrono::system_clock::time_point now, HttpError http_error, Fill fill) {
  batch_job_status out;
  try {
    if (!is_success(status)) {
      out.error = http_error();
      return out;
    }
    json::error_code ec;
    auto doc = json::parse(body, ec);
    if (ec || !doc.is_object()) {
      out.error = bad_answer(provider, status, "batch answer is not a JSON object", headers, now);
      return out;
    }
    std::optional<batch_job_state> state = fill(doc.get_object(), out);
    if (out.provider_job_id.empty()) {
      out.error = bad_answer(provider, status, "batch answer has no id", headers, now);
    } else if (!state) {
      out.error = bad_answer(provider, status,
                             "batch " + std::string{status_field} + " \""
                                 + quoted(out.provider_status) + "\" unknown",
                             headers, now);
    } else {
      out.state = *state;
      out.ok = true;
      out.error = step_ok(status);
    }
    return out;
  } catch (const std::exception& ex) {
    batch_job_status failed;
    failed.error = unreadable(provider, status, ex);
    return failed;
  }
}

/// Reads a job list answer: `{"data": [...]}`, each object read by `entry` (entries without
/// a job id are left out). `http_error` reads a non-2xx answer; failures land in `error`.
template <class HttpError, class Entry>
std::vector<batch_listing>
read_list_answer(std::string_view provider, unsigned status, std::string_view body,
                 const wire_headers& headers, std::chrono::system_clock::time_point now,
                 wire_response& error, HttpError http_error, Entry entry) {
  std::vector<batch_listing> out;
  try {
    if (!is_success(status)) {
      error = http_error();
      return out;
    }
    json::error_code ec;
    auto doc = json::parse(body, ec);
    auto* data = !ec && doc.is_object() ? array_field(&doc.get_object(), "data") : nullptr;
    if (data == nullptr) {
      error = bad_answer(provider, status, "batch list has no data array", headers, now);
      return out;
    }
    for (const auto& v : *data) {
      if (!v.is_object())
        continue;
      auto item = entry(v.get_object());
      if (!item.provider_job_id.empty())
        out.push_back(std::move(item));
    }
    error = step_ok(status);
    return out;
  } catch (const std::exception& ex) {
    error = unreadable(provider, status, ex);
    return {};
  }
}

} // namespace lps::wire
