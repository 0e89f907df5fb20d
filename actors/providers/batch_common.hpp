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
#include <string>
#include <string_view>

namespace lps::wire {

/// A 2xx status: the step did what it was asked; anything else is read as an error answer.
inline bool is_success(unsigned status) {
  return status >= 200 && status <= 299;
}

/// A 2xx answer that is not what the step should return: asking again is harmless and the
/// only way to learn more. `provider` ("OpenAI") starts the message.
inline wire_response bad_answer(std::string_view provider, unsigned status, std::string what,
                                const wire_headers& headers,
                                std::chrono::system_clock::time_point now) {
  auto result =
      failure("PARSING_ERROR", std::string{provider} + " " + std::move(what), status, true);
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
  return failure("PARSING_ERROR", std::string{provider} + " answer unreadable: " + ex.what(),
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

} // namespace lps::wire
