// libFuzzer target for the HTTP edge: parse_comparison_request and parse_comparison_batch on
// arbitrary bytes, then the renderers that consume what they produced. Sanitizers catch memory
// errors and UB; the checks below catch wrong answers: a violated invariant aborts, so
// libFuzzer keeps the input as a crash. Built and run by tools/fuzz.sh (see docs/fuzzing.md).

#include "runtime/gateway_request.hpp"
#include "runtime/gateway_translate.hpp"
#include "runtime/ids.hpp"
#include "runtime/json_codec.hpp"
#include "runtime/sse_parser.hpp"
#include "runtime/stream_translate_anthropic.hpp"
#include "runtime/stream_translate_gemini.hpp"
#include "runtime/stream_translate_openai.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <bit>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace json = boost::json;

// The production limits: the fuzzer should explore what the service actually accepts.
const lps::request_limits limits{};

/// Reports which invariant broke (the input is saved by libFuzzer) and stops the run.
[[noreturn]] void violated(std::string_view what, std::string_view detail = {}) {
  std::fprintf(stderr, "\n*** invariant violated: %.*s\n", static_cast<int>(what.size()),
               what.data());
  if (!detail.empty())
    std::fprintf(stderr, "*** detail (%zu bytes): %.*s\n", detail.size(),
                 static_cast<int>(std::min<size_t>(detail.size(), 2000)), detail.data());
  std::abort();
}

void check(bool ok, std::string_view what, std::string_view detail = {}) {
  if (!ok)
    violated(what, detail);
}

/// Parses rendered output back. Depth: our own bodies nest a request's metadata (at most
/// limits.max_depth deep) a few levels down, so allow well beyond the intake limit.
json::value reparse(std::string_view text, std::string_view what) {
  json::parse_options options;
  options.max_depth = 4 * limits.max_depth;
  json::error_code ec;
  auto value = json::parse(text, ec, json::storage_ptr{}, options);
  if (ec)
    violated(what, text);
  return value;
}

/// json_quote must give a JSON string literal that reads back as the same text. Parsed fields
/// are valid UTF-8 (Boost.JSON refuses anything else), so no U+FFFD substitution may happen.
void check_quote(std::string_view text) {
  auto quoted = lps::json_quote(text);
  auto value = reparse(quoted, "json_quote output is not valid JSON");
  check(value.is_string() && value.get_string() == text, "json_quote does not round-trip", quoted);
}

bool is_code(lps::ec code) {
  return code == lps::ec::validation_error || code == lps::ec::invalid_request;
}

/// A refusal must say what is wrong in a code clients can switch on, and render as valid JSON.
/// `render` false skips the rendering (see full_check_items). A bulk body may also be refused
/// as a whole for holding more than BULK_MAX_REQUESTS items (`too_large_allowed`).
void check_error(const lps::field_error& error, bool render = true,
                 bool too_large_allowed = false) {
  check(!error.message.empty(), "failed parse with an empty message", error.field);
  check(is_code(error.code) || (too_large_allowed && error.code == lps::ec::payload_too_large),
        "failed parse with an unexpected code", lps::to_string(error.code));
  if (!render)
    return;
  auto body = lps::render_error_body(error.code, error.message, {}, error.field);
  auto value = reparse(body, "render_error_body output is not valid JSON");
  const auto* inner = value.is_object() ? value.get_object().if_contains("error") : nullptr;
  check(inner != nullptr && inner->is_object(), "error body has no error object", body);
  const auto* message = inner->get_object().if_contains("message");
  check(message != nullptr && message->is_string() && message->get_string() == error.message,
        "error body does not carry the message", body);
}

bool is_one_of(std::string_view x, std::initializer_list<std::string_view> allowed) {
  for (auto y : allowed)
    if (x == y)
      return true;
  return false;
}

void append_double(std::string& out, double x) {
  char buf[32];
  auto res = std::to_chars(buf, buf + sizeof(buf), x);
  out.append(buf, res.ptr);
}

/// Equal, or at most a few ulps apart (see the round trip in check_request).
bool nearly_equal(double a, double b) {
  if (a == b)
    return true;
  if (!std::isfinite(a) || !std::isfinite(b) || std::signbit(a) != std::signbit(b))
    return false;
  auto x = std::bit_cast<int64_t>(a);
  auto y = std::bit_cast<int64_t>(b);
  return (x > y ? x - y : y - x) <= 4;
}

/// Requests equal up to number drift. Boost.JSON 1.81 parses floating-point numbers
/// imprecisely (an ulp or two off for long mantissas or large exponents; later versions offer
/// number_precision::precise), and the result even depends on the bytes after the number, so
/// the same text can give a different double alone and inside a bulk body (docs/fuzzing.md,
/// "Known findings"). temperature_override gets that tolerance; metadata is echoed as text
/// and every other field must match exactly.
bool same_request(const lps::comparison_request& a, const lps::comparison_request& b) {
  if (!nearly_equal(a.overrides.temperature, b.overrides.temperature))
    return false;
  // Metadata is kept as the caller wrote it (whitespace aside), so its text must match
  // exactly; comparing parsed values would trip over Boost's own number drift (0e368 even
  // parses as NaN).
  if (a.metadata_json != b.metadata_json)
    return false;
  auto a_but_numbers = a;
  a_but_numbers.overrides.temperature = b.overrides.temperature;
  a_but_numbers.metadata_json = b.metadata_json;
  return a_but_numbers == b;
}

/// Writes a parsed request back as a request body, so parsing it again must give the same
/// struct: anything the validator accepted, it must accept again unchanged.
std::string render_request(const lps::comparison_request& r) {
  using lps::json_quote;
  std::string out = "{\"user_prompt\":" + json_quote(r.user_prompt);
  if (!r.prompt_blocks.empty()) {
    out += ",\"prompt_blocks\":[";
    for (size_t i = 0; i < r.prompt_blocks.size(); ++i) {
      const auto& b = r.prompt_blocks[i];
      out += i > 0 ? ",{" : "{";
      out += "\"target\":" + json_quote(b.target) + ",\"content\":" + json_quote(b.content);
      out += b.cacheable ? ",\"cacheable\":true" : ",\"cacheable\":false";
      if (!b.ttl.empty())
        out += ",\"ttl\":" + json_quote(b.ttl);
      out += '}';
    }
    out += ']';
  }
  if (!r.callback_url.empty())
    out += ",\"callback_url\":" + json_quote(r.callback_url);
  if (!r.callback_topic.empty())
    out += ",\"callback_topic\":" + json_quote(r.callback_topic);
  const auto& o = r.overrides;
  out += ",\"llm_config_overrides\":{\"provider_override\":";
  out += o.provider.empty() ? "null" : json_quote(o.provider);
  if (!o.model.empty())
    out += ",\"model_override\":" + json_quote(o.model);
  if (o.has_temperature) {
    out += ",\"temperature_override\":";
    append_double(out, o.temperature);
  }
  if (o.has_system_prompt)
    out += ",\"system_prompt_override\":" + json_quote(o.system_prompt);
  if (o.max_tokens > 0)
    out += ",\"max_tokens_override\":" + std::to_string(o.max_tokens);
  if (!o.reasoning_effort.empty())
    out += ",\"reasoning_effort\":" + json_quote(o.reasoning_effort);
  if (!o.output_verbosity.empty())
    out += ",\"output_verbosity\":" + json_quote(o.output_verbosity);
  out += '}';
  if (!r.correlation_id.empty())
    out += ",\"correlation_id\":" + json_quote(r.correlation_id);
  if (!r.user_id.empty())
    out += ",\"user_id\":" + json_quote(r.user_id);
  out += ",\"metadata\":" + r.metadata_json;
  out += ",\"priority\":" + std::to_string(r.priority);
  out += '}';
  return out;
}

/// Everything a successful parse promises to the rest of the service (CONTRACTS.md 1). `full`
/// false checks the fields only, without the renderers and the round trip.
void check_request(const lps::comparison_request& r, bool full = true) {
  check(!r.user_prompt.empty(), "accepted request with an empty user_prompt");
  check(r.user_prompt.find_first_not_of(" \t\r\n\f\v") != std::string::npos,
        "accepted request with a blank user_prompt", r.user_prompt);
  check(r.priority >= 0 && r.priority <= 10, "priority outside 0..10");
  const auto& o = r.overrides;
  if (o.has_temperature)
    check(std::isfinite(o.temperature) && o.temperature >= 0.0 && o.temperature <= 2.0,
          "temperature_override outside 0..2");
  check(o.max_tokens <= 1'000'000, "max_tokens_override above 1000000");
  check(o.provider.empty() || lps::is_provider_name(o.provider), "unknown provider", o.provider);
  check(is_one_of(o.reasoning_effort, {"", "none", "low", "medium", "high"}),
        "bad reasoning_effort", o.reasoning_effort);
  check(is_one_of(o.output_verbosity, {"", "low", "medium", "high"}), "bad output_verbosity",
        o.output_verbosity);
  check(r.correlation_id.empty() || lps::is_uuid(r.correlation_id), "correlation_id not a uuid",
        r.correlation_id);
  check(r.callback_url.empty() || r.callback_url.starts_with("http://")
            || r.callback_url.starts_with("https://"),
        "callback_url not http(s)", r.callback_url);
  check(r.queue_id.empty(), "parser assigned a queue_id");
  bool seen_5m = false;
  for (const auto& b : r.prompt_blocks) {
    check(is_one_of(b.target, {"system", "user_content"}), "bad prompt block target", b.target);
    check(is_one_of(b.ttl, {"", "5m", "1h"}), "bad prompt block ttl", b.ttl);
    check(!(b.ttl == "1h" && seen_5m), "1h prompt block after a 5m block");
    seen_5m = seen_5m || b.ttl == "5m";
  }
  auto metadata = reparse(r.metadata_json, "metadata_json is not valid JSON");
  check(metadata.is_object(), "metadata_json is not an object", r.metadata_json);
  if (!full)
    return;

  // Every text field goes out through json_quote somewhere (events, status, errors).
  for (std::string_view text :
       {std::string_view{r.user_prompt}, std::string_view{r.callback_url},
        std::string_view{r.callback_topic}, std::string_view{r.user_id}, std::string_view{o.model},
        std::string_view{o.system_prompt}, std::string_view{r.cj_batching_mode}})
    check_quote(text);
  for (const auto& b : r.prompt_blocks)
    check_quote(b.content);

  // The renderers that consume parsed data must still write valid JSON.
  auto error_body = lps::render_error_body(lps::ec::validation_error, r.user_prompt,
                                           r.correlation_id, r.callback_topic);
  reparse(error_body, "render_error_body (request fields) is not valid JSON");

  lps::enqueue_outcome accepted{true, "q-1", r.correlation_id, {}, {}, 0};
  reparse(lps::render_accepted(accepted), "render_accepted is not valid JSON");

  lps::request_status status;
  status.found = true;
  status.queue_id = "q-1";
  status.correlation_id = r.correlation_id;
  status.priority = r.priority;
  status.provider = o.provider;
  status.model = o.model;
  reparse(lps::render_status(status), "render_status is not valid JSON");

  // The result event echoes the caller's metadata under data.request_metadata.
  lps::result_event event;
  event.event_id = "e-1";
  event.request_id = "q-1";
  event.correlation_id = r.correlation_id;
  event.final_status = "completed";
  event.caller_metadata_json = r.metadata_json;
  event.callback_url = r.callback_url;
  event.trace_id = r.trace_id;
  // Odd priorities render a failure event, so the error_detail path sees parsed text too.
  event.outcome.success = r.priority % 2 == 0;
  event.outcome.winner = "Essay A";
  event.outcome.justification = r.user_prompt; // long text: exercises the 500-char cut
  event.outcome.confidence = 3.0;
  event.outcome.error_code = o.reasoning_effort;
  event.outcome.error_message = r.user_prompt;
  event.outcome.http_status = static_cast<int32_t>(o.max_tokens);
  event.outcome.model = o.model;
  event.outcome.enrichment.resolved_provider = o.provider;
  auto rendered = lps::render_result_event(event);
  auto value = reparse(rendered, "render_result_event is not valid JSON");
  const auto* data = value.is_object() ? value.get_object().if_contains("data") : nullptr;
  check(data != nullptr && data->is_object(), "result event without a data object", rendered);
  const auto* echoed = data->get_object().if_contains("request_metadata");
  check(echoed != nullptr && echoed->is_object(), "request_metadata is not an object", rendered);
  for (const auto& member : metadata.get_object())
    check(echoed->get_object().contains(member.key()), "caller metadata key lost in the event",
          member.key());

  // Round trip: what was accepted renders back into a body that parses to the same request.
  auto body = render_request(r);
  lps::comparison_request again;
  lps::field_error error;
  if (!lps::parse_comparison_request(body, limits, again, error))
    violated("re-rendered request refused: " + error.field + ": " + error.message, body);
  check(same_request(again, r), "re-rendered request parses differently", body);
}

/// The same object must get the same verdict alone and as item 0 of a bulk body: both
/// endpoints share one validator, and clients rely on that.
void check_single_matches_bulk(std::string_view input, bool ok,
                               const lps::comparison_request& request,
                               const lps::field_error& error) {
  std::string wrapped = "{\"requests\":[";
  wrapped += input;
  wrapped += "]}";
  std::vector<lps::bulk_item> items;
  lps::field_error batch_error;
  // Two more levels of nesting can push a deep body over the limit: nothing to compare then.
  if (!lps::parse_comparison_batch(wrapped, limits, items, batch_error))
    return;
  check(items.size() == 1, "wrapped object gave more than one bulk item", wrapped);
  const auto& item = items.front();
  check(item.ok == ok, "single and bulk parses disagree on acceptance", wrapped);
  if (ok) {
    check(same_request(item.request, request), "single and bulk parses give different requests",
          wrapped);
  } else {
    check(item.error.code == error.code && item.error.message == error.message,
          "single and bulk parses give different errors", wrapped);
    check(item.error.field == "requests[0]." + error.field,
          "bulk error field is not the single error field under requests[0]", item.error.field);
  }
}

void fuzz_single(std::string_view input) {
  lps::comparison_request request;
  lps::field_error error;
  auto ok = lps::parse_comparison_request(input, limits, request, error);
  if (ok)
    check_request(request);
  else
    check_error(error);
  // A field error means the body was one JSON object, so it can be wrapped into a bulk body
  // as is. (Whole-body errors have no field: the text might not even be one JSON value.)
  if (ok || !error.field.empty())
    check_single_matches_bulk(input, ok, request, error);
}

/// Bulk items that get the full (rendering, round-trip) checks; the rest get the field checks.
/// Rendering each of 10,000 items made one bulk input take a quarter of a second, starving the
/// search. Nothing is lost: items are parsed independently, the fuzzer can move any item to
/// the front, and render_bulk_accepted below still renders every item.
constexpr size_t full_check_items = 8;

void fuzz_batch(std::string_view input) {
  std::vector<lps::bulk_item> items;
  lps::field_error error;
  if (!lps::parse_comparison_batch(input, limits, items, error)) {
    check(items.empty(), "failed batch parse left items behind");
    check_error(error, true, true);
    return;
  }
  check(!items.empty() && items.size() <= limits.max_batch_items, "batch item count out of range");
  std::vector<lps::bulk_entry> entries(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    const auto& item = items[i];
    auto& entry = entries[i];
    if (item.ok) {
      check_request(item.request, i < full_check_items);
      // Every third accepted item is refused by the (imaginary) queue: the other error shape.
      entry.accepted = i % 3 != 2;
      entry.outcome = {entry.accepted,
                       "q-" + std::to_string(i),
                       item.request.correlation_id,
                       entry.accepted ? "" : "QUEUE_FULL",
                       item.request.user_prompt,
                       1};
    } else {
      check_error(item.error, i < full_check_items);
      // Bulk errors name the item, so a client can match them to what it sent.
      auto prefix = "requests[" + std::to_string(i) + "]";
      check(item.error.field.starts_with(prefix), "bulk error does not name its item",
            item.error.field);
      entry.error = item.error;
    }
  }
  auto rendered = lps::render_bulk_accepted(entries);
  auto value = reparse(rendered, "render_bulk_accepted is not valid JSON");
  const auto* results = value.is_object() ? value.get_object().if_contains("results") : nullptr;
  check(results != nullptr && results->is_array() && results->get_array().size() == items.size(),
        "bulk body does not hold one result per item", rendered);
}

// -- the gateway route (POST /v1/chat/completions, docs/gateway.md) --

/// An OpenAI error body: an object `error` with a string message and type, param and code
/// present.
void check_openai_error(std::string_view body, std::string_view what) {
  auto value = reparse(body, what);
  const auto* error = value.is_object() ? value.get_object().if_contains("error") : nullptr;
  const auto* e = error ? error->if_object() : nullptr;
  check(e && e->contains("message") && e->at("message").is_string() && e->contains("type")
            && e->contains("param") && e->contains("code"),
        what, body);
}

/// Input as a client's request: refused with an OpenAI 400, or accepted and then translated
/// for every dialect (valid JSON or a 400) and answered by the built-in mock.
void fuzz_gateway_request(std::string_view input) {
  lps::gateway_request_info info;
  if (auto e = lps::check_gateway_request(input, info)) {
    check(e->status == 400, "gateway: a refusal is a 400");
    check_openai_error(lps::render_gateway_error(*e), "gateway: refusal body");
    return;
  }
  check(!info.model.empty(), "gateway: an accepted request names a model");
  const lps::gateway_target target{"http://127.0.0.1:1", "sk-fuzz", {}, {}};
  for (auto d : {lps::gateway_dialect::openai, lps::gateway_dialect::anthropic,
                 lps::gateway_dialect::gemini}) {
    auto upstream = lps::gateway_upstream_request(d, target, input, info.model);
    if (upstream.error)
      check_openai_error(lps::render_gateway_error(*upstream.error), "gateway: untranslatable");
    else
      reparse(upstream.request.body, "gateway: upstream body");
  }
  // The route's shortcut: a body it may send as it is goes upstream byte for byte.
  if (info.sendable_as_is) {
    auto as_is = lps::gateway_upstream_request(lps::gateway_dialect::openai, target, input,
                                               info.model, true);
    check(!as_is.error && as_is.request.body == input, "gateway: sent as it is");
  }
  auto answer = lps::gateway_mock_answer(input, info.model);
  check(answer.status == 200, "gateway: the mock answers 200");
  reparse(answer.body, "gateway: mock answer");
}

/// Input as a provider's answer, in every dialect, to a success and an error status: always
/// an OpenAI chat.completion (200) or an OpenAI error.
void fuzz_gateway_answer(std::string_view input) {
  const auto now = std::chrono::system_clock::time_point{std::chrono::seconds{1'800'000'000}};
  const lps::gateway_headers headers{{"retry-after", "3"}};
  for (auto d : {lps::gateway_dialect::openai, lps::gateway_dialect::anthropic,
                 lps::gateway_dialect::gemini})
    for (unsigned status : {200u, 429u, 529u}) {
      auto r = lps::gateway_read_upstream(d, status, input, headers, "{}", "m", now);
      if (r.status == 200) {
        if (d != lps::gateway_dialect::openai) // OpenAI's own answers pass through
          reparse(r.body, "gateway: translated answer");
      } else {
        check(r.status >= 400 && r.status <= 504, "gateway: error status", r.body);
        check_openai_error(r.body, "gateway: error answer");
      }
    }
}

/// Input as a provider's streamed body, read whole and in two pieces, by every dialect's
/// translator (Anthropic's with a json_schema tool, whose input becomes content): every chunk
/// it yields is a JSON object.
void fuzz_gateway_stream(std::string_view input) {
  lps::stream_translate_options options{"m", true, 1, "response"};
  using make = std::unique_ptr<lps::stream_translator> (*)(lps::stream_translate_options);
  for (make m : {&lps::make_openai_stream_translator, &lps::make_anthropic_stream_translator,
                 &lps::make_gemini_stream_translator})
    for (size_t cut : {input.size(), input.size() / 2}) {
      auto translator = m(options);
      lps::sse_parser parser;
      std::vector<lps::sse_event> events;
      parser.feed(input.substr(0, cut), events);
      parser.feed(input.substr(cut), events);
      std::vector<std::string> chunks;
      for (const auto& e : events)
        translator->on_event(e, chunks);
      translator->on_end(chunks);
      for (const auto& c : chunks)
        check(reparse(c, "gateway stream: chunk").is_object(), "gateway stream: chunk object", c);
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input{reinterpret_cast<const char*>(data), size};
  fuzz_single(input);
  fuzz_batch(input);
  fuzz_gateway_request(input);
  fuzz_gateway_answer(input);
  fuzz_gateway_stream(input);
  return 0;
}
