// lpsctl submit: a JSONL file of comparison requests, sent in chunks to the bulk route with
// progress, rate and ETA; with --wait, every result event collected exactly once.

#include "tools/lpsctl/commands.hpp"
#include "runtime/error_code.hpp"

#include <boost/json/parse.hpp>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <thread>

namespace json = boost::json;

namespace lps::ctl {

namespace {

using clock_type = std::chrono::steady_clock;

struct input_line {
  size_t number = 0;
  std::string text;
};

/// Every non-empty line, each checked to be a JSON object; "" or why not (FILE:LINE: ...).
std::string read_requests(const std::string& file, std::vector<input_line>& out) {
  std::ifstream in{file};
  if (!in)
    return "cannot read " + file;
  std::string line;
  for (size_t number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos)
      continue;
    json::error_code ec;
    auto value = json::parse(line, ec);
    if (ec || !value.is_object())
      return file + ":" + std::to_string(number) + ": not a JSON object"
             + (ec ? " (" + ec.message() + ")" : std::string{});
    out.push_back({number, std::move(line)});
  }
  if (out.empty())
    return file + " holds no requests";
  return "";
}

/// One line on a terminal, rewritten in place; nothing when stderr is not a terminal.
class progress_line {
public:
  explicit progress_line(size_t total) : total_(total), tty_(::isatty(STDERR_FILENO) != 0) {}

  void show(const char* what, size_t done) {
    if (!tty_)
      return;
    auto elapsed = std::chrono::duration<double>(clock_type::now() - start_).count();
    auto rate = elapsed > 0 ? double(done) / elapsed : 0.0;
    auto eta = rate > 0 ? double(total_ - done) / rate : 0.0;
    constexpr int width = 30;
    int filled = total_ == 0 ? width : static_cast<int>(width * done / total_);
    std::fprintf(stderr, "\r%s [%-*s] %zu/%zu %.0f/s ETA %.0fs   ", what, width,
                 std::string(static_cast<size_t>(filled), '#').c_str(), done, total_, rate, eta);
    std::fflush(stderr);
  }
  void finish() {
    if (tty_)
      std::fputc('\n', stderr);
  }

private:
  size_t total_;
  bool tty_;
  clock_type::time_point start_ = clock_type::now();
};

struct submission {
  /// queue_id of each accepted line, in file order.
  std::vector<std::pair<size_t, std::string>> accepted;
  /// line -> "CODE: message" for refused lines.
  std::map<size_t, std::string> refused;
};

std::string chunk_body(const std::vector<input_line>& lines, size_t from, size_t count) {
  std::string body = "{\"requests\":[";
  for (size_t i = from; i < from + count; ++i)
    body += (i > from ? "," : "") + lines[i].text;
  return body + "]}";
}

/// " (field): message" of an item's error envelope.
std::string refusal_detail(const json::value* err) {
  if (err == nullptr || !err->is_object())
    return "";
  const auto& e = err->as_object();
  std::string text;
  if (const auto* details = e.if_contains("details"); details != nullptr && details->is_object())
    if (const auto* field = details->as_object().if_contains("field");
        field != nullptr && field->is_string()) {
      // "requests[7].user_prompt" names the place in the chunk; the line number says more.
      std::string name{field->as_string()};
      if (name.rfind("requests[", 0) == 0 && name.find("].") != std::string::npos)
        name = name.substr(name.find("].") + 2);
      text += " (" + name + ")";
    }
  if (const auto* message = e.if_contains("message"); message != nullptr && message->is_string())
    text += ": " + std::string{message->as_string()};
  return text;
}

/// Reads the per-item answers of a 202; items refused with QUEUE_FULL go back to `retry`.
void read_items(const api_answer& answer, const std::vector<input_line>& lines, size_t from,
                submission& result, std::vector<input_line>& retry) {
  const auto* items =
      answer.json.is_object() ? answer.json.as_object().if_contains("results") : nullptr;
  for (size_t i = 0; items != nullptr && items->is_array() && i < items->as_array().size(); ++i) {
    const auto& item = items->as_array()[i].as_object();
    const auto& line = lines[from + i];
    if (const auto* id = item.if_contains("queue_id"); id != nullptr && id->is_string()) {
      result.accepted.emplace_back(line.number, std::string{id->as_string()});
      continue;
    }
    const auto* err = item.if_contains("error");
    auto code = err != nullptr ? std::string{err->as_object().at("code").as_string()} : "?";
    if (code == to_string(ec::queue_full)) {
      retry.push_back(line);
      continue;
    }
    result.refused[line.number] = code + refusal_detail(err);
  }
}

/// Sends every line; returns an exit code (ok, incomplete, unreachable).
int send_all(lps_api& api, std::vector<input_line> lines, size_t chunk, submission& result) {
  progress_line progress{lines.size()};
  size_t total = lines.size();
  while (!lines.empty()) {
    std::vector<input_line> retry;
    for (size_t from = 0; from < lines.size();) {
      auto count = std::min(chunk, lines.size() - from);
      auto answer = api.post("/api/v1/comparisons", chunk_body(lines, from, count));
      if (answer.status == 413 && count > 1) {
        chunk = std::max<size_t>(1, count / 2); // too big for lps' bulk limit: halve
        continue;
      }
      if (answer.status == 503 && answer.retry_after > 0) {
        std::this_thread::sleep_for(std::chrono::seconds{answer.retry_after});
        continue;
      }
      if (answer.status != 202) {
        progress.finish();
        std::fprintf(stderr, "lpsctl: %s\n", describe(answer, api.base_url()).c_str());
        return answer.status == 0 || answer.status >= 500 || answer.status == 401 ? unreachable
                                                                                  : incomplete;
      }
      read_items(answer, lines, from, result, retry);
      from += count;
      progress.show("submit", result.accepted.size() + result.refused.size());
    }
    if (!retry.empty())
      std::this_thread::sleep_for(std::chrono::seconds{1}); // the queue was full: let it drain
    lines = std::move(retry);
  }
  progress.finish();
  std::fprintf(stderr, "lpsctl: %zu requests, %zu accepted, %zu refused\n", total,
               result.accepted.size(), result.refused.size());
  size_t shown = 0;
  for (const auto& [line, why] : result.refused)
    if (shown++ < 20)
      std::fprintf(stderr, "  line %zu: %s\n", line, why.c_str());
  return result.refused.empty() ? ok : incomplete;
}

/// Polls every accepted request's result and writes each event once.
int collect(lps_api& api, const submission& sent, std::FILE* out, unsigned timeout_seconds) {
  std::vector<std::string> pending;
  for (const auto& [line, id] : sent.accepted)
    pending.push_back(id);
  progress_line progress{pending.size()};
  auto deadline = clock_type::now() + std::chrono::seconds{timeout_seconds};
  size_t final_count = 0;
  size_t total = pending.size();
  while (!pending.empty()) {
    std::vector<std::string> paths, still;
    for (const auto& id : pending)
      paths.push_back("/api/v1/results/" + id);
    size_t lost = 0;
    api.get_many(paths, 32, [&](size_t i, api_answer answer) {
      if (answer.status == 200) {
        std::fwrite(answer.body.data(), 1, answer.body.size(), out);
        std::fputc('\n', out);
        ++final_count;
      } else {
        lost += answer.status == 404 ? 1 : 0;
        still.push_back(pending[i]);
      }
    });
    std::fflush(out);
    progress.show("results", final_count);
    if (lost > 0) {
      progress.finish();
      std::fprintf(stderr, "lpsctl: lps does not know %zu accepted requests\n", lost);
      return incomplete;
    }
    pending = std::move(still);
    if (pending.empty())
      break;
    if (timeout_seconds > 0 && clock_type::now() >= deadline) {
      progress.finish();
      std::fprintf(stderr, "lpsctl: %zu of %zu results still pending after %u s\n", pending.size(),
                   total, timeout_seconds);
      return incomplete;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{500});
  }
  progress.finish();
  std::fprintf(stderr, "lpsctl: %zu results collected\n", final_count);
  return ok;
}

} // namespace

int submit(lps_api& api, const submit_options& options) {
  std::vector<input_line> lines;
  if (auto why = read_requests(options.file, lines); !why.empty()) {
    std::fprintf(stderr, "lpsctl: %s\n", why.c_str());
    return usage;
  }
  // The output file is opened first: a run must not be submitted and then have nowhere to go.
  std::FILE* out = stdout;
  std::unique_ptr<std::FILE, decltype(&std::fclose)> file{nullptr, &std::fclose};
  if (options.wait && !options.out.empty()) {
    file.reset(std::fopen(options.out.c_str(), "w"));
    if (!file) {
      std::fprintf(stderr, "lpsctl: cannot write %s\n", options.out.c_str());
      return usage;
    }
    out = file.get();
  }
  submission sent;
  auto rc = send_all(api, std::move(lines), std::max<size_t>(1, options.chunk), sent);
  if (rc == unreachable || !options.wait) {
    for (const auto& [line, id] : sent.accepted)
      std::printf("%s\n", id.c_str());
    return rc;
  }
  auto collected = collect(api, sent, out, options.timeout_seconds);
  return rc != ok ? rc : collected;
}

} // namespace lps::ctl
