#include "tools/mock_provider/mock_provider_server.hpp"
#include "tools/mock_provider/general_chat.hpp"

#include "runtime/http_server.hpp"
#include "tools/mock_provider/mock_provider_batches.hpp"
#include "tools/mock_provider/mock_provider_dialects.hpp"
#include "tools/mock_provider/mock_provider_stream.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <deque>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <unordered_map>
#include <utility>

// Threading: the http_server calls handle() on its I/O threads. Everything mutable (counters,
// fault script, simulated caches, rate windows, the random generator) sits behind one mutex,
// held only for bookkeeping: parsing, validation and rendering run outside it. Answers that
// must wait (latency, jitter, delay faults) go to a single timer thread, so a slow answer
// never occupies an I/O thread. "drop" answers are kept unanswered until stop().

namespace lps {

namespace {

namespace json = boost::json;
using mock_wire::answer;
using mock_wire::answer_kind;
using mock_wire::dialect;
using mock_wire::outcome_of_status;
using mock_wire::parsed_call;
using mock_wire::provider_error;
using steady = std::chrono::steady_clock;
using std::chrono::milliseconds;

// -- faults ----------------------------------------------------------------------------------

enum class fault_kind : uint8_t {
  status,
  quota,
  overloaded,
  malformed,
  truncated,
  no_tool_use,
  bad_winner,
  drop,
  delay,
  cut,
  slow_stream,
};

constexpr std::pair<std::string_view, fault_kind> fault_names[] = {
    {"status", fault_kind::status},
    {"quota", fault_kind::quota},
    {"overloaded", fault_kind::overloaded},
    {"malformed", fault_kind::malformed},
    {"truncated", fault_kind::truncated},
    {"no_tool_use", fault_kind::no_tool_use},
    {"bad_winner", fault_kind::bad_winner},
    {"drop", fault_kind::drop},
    {"delay", fault_kind::delay},
    {"cut", fault_kind::cut},
    {"slow_stream", fault_kind::slow_stream},
};

/// One scripted (or randomly drawn) deviation from a good answer.
struct fault {
  fault_kind kind = fault_kind::status;
  unsigned status = 500;
  /// Retry-After header value (seconds); empty for none.
  std::string retry_after;
  /// delay: extra wait before a normal answer; slow_stream: the wait between events.
  milliseconds delay{0};
  /// cut: events sent before the connection closes (nullopt: half of them).
  std::optional<size_t> cut_after;
  /// Only calls of this dialect consume the fault; nullopt: any dialect.
  std::optional<dialect> only;
};

constexpr uint64_t max_fault_count = 10000;
constexpr milliseconds max_delay{600000};

/// Integers stay integers and fractions keep their digits ("2", "1.5"), as a header wants.
std::string format_seconds(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", s);
  return buf;
}

std::optional<std::string> parse_retry_after(const json::object& o, fault& f) {
  const auto* ra = o.if_contains("retry_after");
  if (!ra || ra->is_null())
    return std::nullopt;
  if (const auto* s = ra->if_string()) {
    f.retry_after = std::string(mock_wire::view(*s));
    return std::nullopt;
  }
  auto n = mock_wire::number_of(*ra);
  if (!n || *n < 0)
    return "retry_after must be a non-negative number or a string";
  f.retry_after = format_seconds(*n);
  return std::nullopt;
}

/// The fields of the stream faults (docs/mock-provider.md, "Streaming").
std::optional<std::string> mock_stream_fault_fields(const json::object& o, fault& f) {
  if (f.kind == fault_kind::slow_stream) {
    const auto* ms = o.if_contains("ms");
    auto n = ms ? mock_wire::number_of(*ms) : std::nullopt;
    if (!n || *n < 0 || *n > 60000)
      return "a slow_stream fault needs ms in 0..60000";
    f.delay = milliseconds{static_cast<int64_t>(*n)};
  }
  if (const auto* after = o.if_contains("after"); after && f.kind == fault_kind::cut) {
    auto n = mock_wire::number_of(*after);
    if (!n || *n < 0 || *n > 100000 || *n != static_cast<size_t>(*n))
      return "a cut fault's after must be an integer in 0..100000";
    f.cut_after = static_cast<size_t>(*n);
  }
  return std::nullopt;
}

std::optional<std::string> parse_kind_fields(const json::object& o, fault& f) {
  if (f.kind == fault_kind::status) {
    const auto* st = o.if_contains("status");
    auto n = st ? mock_wire::number_of(*st) : std::nullopt;
    if (!n || *n < 400 || *n > 599 || *n != static_cast<unsigned>(*n))
      return "a status fault needs an integer status in 400..599";
    f.status = static_cast<unsigned>(*n);
  }
  if (f.kind == fault_kind::delay) {
    const auto* ms = o.if_contains("ms");
    auto n = ms ? mock_wire::number_of(*ms) : std::nullopt;
    if (!n || *n < 0 || *n > static_cast<double>(max_delay.count()))
      return "a delay fault needs ms in 0..600000";
    f.delay = milliseconds{static_cast<int64_t>(*n)};
  }
  if (auto e = mock_stream_fault_fields(o, f))
    return e;
  return parse_retry_after(o, f);
}

/// Parses one entry of "faults"; `count` gets how often it repeats.
std::optional<std::string> parse_fault(const json::value& v, fault& f, uint64_t& count) {
  const auto* o = v.if_object();
  const auto* kind = o ? mock_wire::string_at(*o, "kind") : nullptr;
  if (!kind)
    return "every fault needs a string \"kind\"";
  auto it = std::find_if(std::begin(fault_names), std::end(fault_names),
                         [&](const auto& p) { return p.first == mock_wire::view(*kind); });
  if (it == std::end(fault_names))
    return "unknown fault kind '" + std::string(mock_wire::view(*kind)) + "'";
  f.kind = it->second;
  if (const auto* d = mock_wire::string_at(*o, "dialect")) {
    f.only = mock_wire::dialect_from(mock_wire::view(*d));
    if (!f.only)
      return "unknown dialect '" + std::string(mock_wire::view(*d)) + "'";
  }
  count = 1;
  if (const auto* c = o->if_contains("count")) {
    auto n = mock_wire::number_of(*c);
    if (!n || *n < 1 || *n > static_cast<double>(max_fault_count)
        || *n != static_cast<uint64_t>(*n))
      return "count must be an integer in 1..10000";
    count = static_cast<uint64_t>(*n);
  }
  return parse_kind_fields(*o, f);
}

/// The POST /_mock/faults body: {"faults": [...], "dialect": optional}.
std::optional<std::string> parse_fault_script(std::string_view text, std::vector<fault>& out) {
  boost::system::error_code ec;
  auto doc = json::parse(text, ec);
  const auto* o = ec ? nullptr : doc.if_object();
  const auto* list = o ? o->if_contains("faults") : nullptr;
  if (!list || !list->is_array())
    return "the body must be a JSON object with a \"faults\" array";
  std::optional<dialect> only;
  if (const auto* d = o->if_contains("dialect"); d && !d->is_null()) {
    only =
        d->is_string() ? mock_wire::dialect_from(mock_wire::view(d->get_string())) : std::nullopt;
    if (!only)
      return "dialect must be one of openai, openrouter, anthropic, gemini";
  }
  for (const auto& v : list->get_array()) {
    fault f;
    uint64_t count = 0;
    if (auto e = parse_fault(v, f, count))
      return e;
    if (!f.only)
      f.only = only;
    if (out.size() + count > max_fault_count)
      return "at most 10000 faults per script";
    out.insert(out.end(), count, f);
  }
  return std::nullopt;
}

// -- delayed answers -------------------------------------------------------------------------

/// One timer thread for every answer that must wait, so waiting never occupies an I/O thread.
class delayed_replies {
public:
  ~delayed_replies() {
    stop();
  }

  void start() {
    thread_ = std::thread([this] { run(); });
  }

  void post(steady::time_point when, http_responder responder, http_response response) {
    {
      std::lock_guard<std::mutex> lock{mutex_};
      heap_.push_back({when, seq_++, std::move(responder), std::move(response)});
      std::push_heap(heap_.begin(), heap_.end(), later{});
    }
    cv_.notify_one();
  }

  /// Joins the thread and forgets what still waits. Call after the HTTP server stopped, so
  /// the forgotten responders find no connection to answer.
  void stop() {
    {
      std::lock_guard<std::mutex> lock{mutex_};
      stopping_ = true;
    }
    cv_.notify_one();
    if (thread_.joinable())
      thread_.join();
    std::vector<entry> rest;
    std::lock_guard<std::mutex> lock{mutex_};
    rest.swap(heap_);
  }

private:
  struct entry {
    steady::time_point when;
    uint64_t seq = 0;
    http_responder responder;
    http_response response;
  };

  /// Earliest first; equal times in posting order.
  struct later {
    bool operator()(const entry& a, const entry& b) const {
      return a.when != b.when ? a.when > b.when : a.seq > b.seq;
    }
  };

  void run() {
    std::unique_lock<std::mutex> lock{mutex_};
    while (!stopping_) {
      if (heap_.empty()) {
        cv_.wait(lock);
        continue;
      }
      auto when = heap_.front().when;
      if (steady::now() < when) {
        cv_.wait_until(lock, when);
        continue;
      }
      std::pop_heap(heap_.begin(), heap_.end(), later{});
      auto e = std::move(heap_.back());
      heap_.pop_back();
      lock.unlock();
      // Outside the lock: it posts to an I/O thread. An exception (only bad_alloc is
      // possible) must not end this thread and with it every later answer.
      try {
        e.responder(std::move(e.response));
      } catch (...) {
      }
      e = {};
      lock.lock();
    }
  }

  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<entry> heap_;
  uint64_t seq_ = 0;
  bool stopping_ = false;
  std::thread thread_;
};

// -- rate-limit headers ----------------------------------------------------------------------

constexpr std::chrono::seconds rate_window_length{60};

/// A fixed one-minute window per dialect; it only feeds headers, nothing is enforced.
struct rate_window {
  steady::time_point start{};
  uint64_t requests = 0;
  uint64_t tokens = 0;
};

struct rate_snapshot {
  /// The advertised limits (mock_provider_options); both 0: no rate-limit headers at all.
  uint64_t request_limit = 0;
  uint64_t token_limit = 0;
  uint64_t requests_left = 0;
  uint64_t tokens_left = 0;
  milliseconds reset_in{0};
};

/// OpenAI's reset style: "12ms", "8.64s", "6m0s".
std::string openai_duration(milliseconds d) {
  auto ms = std::max<int64_t>(0, d.count());
  if (ms < 1000)
    return std::to_string(ms) + "ms";
  if (ms < 60000)
    return format_seconds(static_cast<double>(ms) / 1000.0) + "s";
  return std::to_string(ms / 60000) + "m" + std::to_string(ms % 60000 / 1000) + "s";
}

std::string rfc3339(std::chrono::system_clock::time_point t) {
  auto tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

void add_rate_headers(dialect d, const rate_snapshot& r, http_response& out) {
  auto& h = out.headers;
  auto request_limit = r.request_limit;
  auto token_limit = r.token_limit;
  if (request_limit == 0 && token_limit == 0)
    return;
  if (mock_wire::is_chat(d)) {
    auto reset = openai_duration(r.reset_in);
    h.emplace_back("x-ratelimit-limit-requests", std::to_string(request_limit));
    h.emplace_back("x-ratelimit-remaining-requests", std::to_string(r.requests_left));
    h.emplace_back("x-ratelimit-reset-requests", reset);
    h.emplace_back("x-ratelimit-limit-tokens", std::to_string(token_limit));
    h.emplace_back("x-ratelimit-remaining-tokens", std::to_string(r.tokens_left));
    h.emplace_back("x-ratelimit-reset-tokens", reset);
  } else if (d == dialect::anthropic) {
    auto reset = rfc3339(std::chrono::system_clock::now() + r.reset_in);
    // Anthropic rounds the token figures to the nearest thousand.
    auto tokens_left = std::to_string((r.tokens_left + 500) / 1000 * 1000);
    for (const char* kind : {"tokens", "input-tokens", "output-tokens"}) {
      std::string p = std::string("anthropic-ratelimit-") + kind;
      h.emplace_back(p + "-limit", std::to_string(token_limit));
      h.emplace_back(p + "-remaining", tokens_left);
      h.emplace_back(p + "-reset", reset);
    }
    h.emplace_back("anthropic-ratelimit-requests-limit", std::to_string(request_limit));
    h.emplace_back("anthropic-ratelimit-requests-remaining", std::to_string(r.requests_left));
    h.emplace_back("anthropic-ratelimit-requests-reset", reset);
  }
}

// -- outcomes --------------------------------------------------------------------------------

std::string outcome_of_fault(const fault& f) {
  switch (f.kind) {
  case fault_kind::status:
    return outcome_of_status(f.status);
  case fault_kind::quota:
    return "quota_exhausted";
  case fault_kind::overloaded:
    return "overloaded";
  case fault_kind::malformed:
    return "malformed";
  case fault_kind::truncated:
    return "truncated";
  case fault_kind::no_tool_use:
    return "no_tool_use";
  case fault_kind::bad_winner:
    return "bad_winner";
  case fault_kind::drop:
    return "dropped";
  case fault_kind::delay:
    return "delayed";
  case fault_kind::cut:
    return "cut";
  case fault_kind::slow_stream:
    return "slow_stream";
  }
  return "unknown";
}

answer_kind answer_kind_of(const std::optional<fault>& f) {
  if (!f)
    return answer_kind::normal;
  switch (f->kind) {
  case fault_kind::truncated:
    return answer_kind::truncated;
  case fault_kind::no_tool_use:
    return answer_kind::no_tool_use;
  case fault_kind::bad_winner:
    return answer_kind::bad_winner;
  default:
    return answer_kind::normal;
  }
}

http_response json_reply(unsigned status, const json::value& body) {
  http_response r;
  r.status = status;
  r.body = json::serialize(body);
  return r;
}

json::object counts_json(const std::map<std::string, uint64_t>& m) {
  json::object o;
  for (const auto& [k, v] : m)
    o[k] = v;
  return o;
}

json::object stats_json(const mock_provider_stats& s) {
  json::object by_pair;
  for (const auto& [d, m] : s.by_dialect_outcome)
    by_pair[d] = counts_json(m);
  return {{"calls", s.calls},
          {"by_dialect", counts_json(s.by_dialect)},
          {"by_outcome", counts_json(s.by_outcome)},
          {"by_dialect_outcome", std::move(by_pair)},
          {"scripted_faults", s.scripted_faults},
          {"random_errors", s.random_errors},
          {"pending_faults", s.pending_faults},
          {"in_flight", s.in_flight},
          {"peak_in_flight", s.peak_in_flight},
          {"abandoned", s.abandoned},
          {"batch", mock_batch::stats_json(s.batch)},
          {"streams", json::object{{"started", s.streams.started},
                                   {"open", s.streams.open},
                                   {"cancelled", s.streams.cancelled}}}};
}

/// Which dialect a path speaks, and the Gemini model it names.
std::optional<std::pair<dialect, std::string>> route_of(std::string_view path) {
  if (path == "/v1/chat/completions")
    return std::pair{dialect::openai, std::string{}};
  if (path == "/api/v1/chat/completions")
    return std::pair{dialect::openrouter, std::string{}};
  if (path == "/v1/messages")
    return std::pair{dialect::anthropic, std::string{}};
  constexpr std::string_view prefix = "/v1beta/models/";
  std::string_view suffix =
      mock_stream::is_gemini_stream_path(path) ? ":streamGenerateContent" : ":generateContent";
  if (path.size() > prefix.size() + suffix.size() && path.substr(0, prefix.size()) == prefix
      && path.substr(path.size() - suffix.size()) == suffix) {
    auto model = path.substr(prefix.size(), path.size() - prefix.size() - suffix.size());
    if (model.find('/') == std::string_view::npos)
      return std::pair{dialect::gemini, std::string(model)};
  }
  return std::nullopt;
}

using mock_wire::base62;
using mock_wire::hex;

/// What the server decided for one accepted provider call.
struct decision {
  std::optional<fault> f;
  bool random = false;
  mock_wire::usage tokens;
  rate_snapshot rate;
  std::string id;
  std::string tool_id;
};

/// One finished provider answer, before it is sent or scheduled.
struct reply {
  http_response response;
  std::string outcome;
  bool hold = false;
  milliseconds extra_delay{0};
  bool scripted = false;
  bool random = false;
  /// How a streamed answer goes out (the stream faults).
  mock_stream::delivery how;
  /// The comparisons the call carried (hashes of their texts; see item_calls()).
  std::vector<uint64_t> items;
};

/// The comparisons of a call, each as the hash of its text.
std::vector<uint64_t> items_of(const parsed_call& call) {
  std::vector<uint64_t> result;
  if (call.general)
    return result;
  std::hash<std::string> hash;
  if (call.comparisons.empty())
    result.push_back(hash(call.prompt));
  for (const auto& [id, text] : call.comparisons)
    result.push_back(hash(text));
  return result;
}

} // namespace

// -- the server ------------------------------------------------------------------------------

struct mock_provider_server::impl {
  mock_provider_options options;
  http_server server;
  delayed_replies delayed;
  mock_stream::streamer streams;
  mock_batch::service batches; // its own lock; never takes mu
  bool started = false;

  mutable std::mutex mu;
  mock_provider_stats counters;                           // guarded by mu (pending_faults unused)
  mutable std::condition_variable recorded;               // notified when counters change
  std::deque<fault> script;                               // guarded by mu
  std::unordered_map<uint64_t, steady::time_point> cache; // guarded by mu; key -> expiry
  rate_window windows[4];                                 // guarded by mu; indexed by dialect
  std::mt19937_64 rng;                                    // guarded by mu
  std::vector<http_responder> held;                       // guarded by mu; "drop" answers
  std::unordered_map<uint64_t, mock_item_calls> items;    // guarded by mu; see item_calls()

  std::string random_chars(size_t n, std::string_view alphabet) {
    return mock_wire::random_chars(rng, n, alphabet);
  }

  std::string request_id(dialect d) {
    std::lock_guard<std::mutex> lock{mu};
    return mock_wire::request_id(rng, d);
  }

  milliseconds draw_latency() {
    if (options.jitter.count() <= 0)
      return options.latency;
    std::lock_guard<std::mutex> lock{mu};
    std::uniform_int_distribution<int64_t> pick(0, options.jitter.count());
    return options.latency + milliseconds{pick(rng)};
  }

  // -- request handling ----------------------------------------------------------------------

  void handle(http_request&& req, http_responder respond) {
    if (req.path.rfind("/_mock/", 0) == 0)
      return respond(control(req));
    if (mock_batch::is_batch_path(req.path)) { // counted in stats().batch only
      reply r;
      r.response = batches.handle(req);
      return dispatch(std::move(r), std::move(respond));
    }
    auto route = route_of(req.path);
    if (!route || req.method != "POST") {
      record("unknown", "not_found", false, false);
      return respond(not_found(req));
    }
    auto r = answer_call(route->first, route->second, req);
    record(mock_wire::to_string(route->first), r.outcome, r.scripted, r.random);
    auto answered_items = note_items(r);
    // Streaming is only a form: any good answer streams (errors never do, as upstream).
    if (auto ask = mock_stream::ask_of(route->first, req.path, req.query, req.body);
        ask.stream && r.response.status == 200)
      streams.make_streamed(r.response, route->first, ask, r.how);
    if (answer_waits(r))
      watch_for_abandon(req);
    dispatch(std::move(r), counted(answered_items(std::move(respond))));
  }

  /// OpenAI's answer to an unknown URL: the generic shape any client can read.
  static http_response not_found(const http_request& req) {
    json::object err{{"message", "Invalid URL (" + req.method + " " + req.path + ")"},
                     {"type", "invalid_request_error"},
                     {"param", nullptr},
                     {"code", nullptr}};
    return json_reply(404, json::object{{"error", std::move(err)}});
  }

  void dispatch(reply r, http_responder respond) {
    if (r.hold) {
      std::lock_guard<std::mutex> lock{mu};
      held.push_back(std::move(respond));
      return;
    }
    auto wait = draw_latency() + r.extra_delay;
    if (wait.count() <= 0)
      return respond(std::move(r.response));
    delayed.post(steady::now() + wait, std::move(respond), std::move(r.response));
  }

  reply error_reply(dialect d, const provider_error& e, std::string outcome,
                    const std::string& rid) {
    reply r;
    r.outcome = std::move(outcome);
    r.response.status = e.status;
    r.response.body = mock_wire::render_error(d, e, rid);
    add_id_header(d, rid, r.response);
    if (!e.retry_after.empty())
      r.response.headers.emplace_back("retry-after", e.retry_after);
    return r;
  }

  static void add_id_header(dialect d, const std::string& rid, http_response& out) {
    if (d == dialect::anthropic)
      out.headers.emplace_back("request-id", rid);
    else if (d != dialect::gemini)
      out.headers.emplace_back("x-request-id", rid);
  }

  static std::optional<provider_error> validate(dialect d, const std::string& model,
                                                const http_request& req, parsed_call& call) {
    boost::system::error_code ec;
    auto doc = json::parse(req.body, ec);
    if (ec || !doc.is_object())
      return mock_wire::invalid(
          d, d == dialect::gemini ? "Invalid JSON payload received. Expected an object."
             : d == dialect::anthropic
                 ? "There was an error parsing the body: expected a JSON object."
                 : "We could not parse the JSON body of your request. (HINT: This likely means "
                   "you aren't using your HTTP library correctly. The OpenAI API expects a JSON "
                   "payload, but what was sent was not valid JSON.)");
    const auto& body = doc.get_object();
    switch (d) {
    case dialect::openai:
    case dialect::openrouter:
      return mock_wire::validate_chat(d, body, call);
    case dialect::anthropic:
      return mock_wire::validate_anthropic(body, call);
    case dialect::gemini:
      return mock_wire::validate_gemini(body, model, call);
    }
    return std::nullopt;
  }

  reply answer_call(dialect d, const std::string& model, const http_request& req) {
    auto rid = request_id(d);
    if (auto e = mock_wire::check_auth(d, req, options.api_key))
      return error_reply(d, *e, "unauthorized", rid);
    if (d == dialect::anthropic && !mock_wire::header(req, "anthropic-version"))
      return error_reply(d, mock_wire::invalid(d, "anthropic-version: header is required"),
                         "invalid_request", rid);
    parsed_call call;
    if (auto e = validate(d, model, req, call))
      return error_reply(d, *e, "invalid_request", rid);
    if (auto e = note_general(d, req, call))
      return error_reply(d, *e, "invalid_request", rid);
    auto dec = decide(d, call);
    auto r = build(d, call, dec, rid);
    r.items = items_of(call);
    r.scripted = dec.f && !dec.random;
    r.random = dec.random;
    return r;
  }

  /// The hook of general chat calls (the gateway path; tools/mock_provider/general_chat): a
  /// call whose answer schema asks for no verdict gets the general checks and answer.
  static std::optional<provider_error> note_general(dialect d, const http_request& req,
                                                    parsed_call& call) {
    auto body = std::make_shared<json::object>(json::parse(req.body).get_object());
    if (!mock_general::is_general(d, *body))
      return std::nullopt;
    call.general = std::move(body);
    return mock_general::check(d, *call.general);
  }

  reply build(dialect d, const parsed_call& call, const decision& dec, const std::string& rid) {
    const auto& f = dec.f;
    auto outcome = f ? outcome_of_fault(*f) : std::string("ok");
    if (f
        && (f->kind == fault_kind::status || f->kind == fault_kind::quota
            || f->kind == fault_kind::overloaded)) {
      auto e = f->kind == fault_kind::status  ? mock_wire::status_error(d, f->status, call.model)
               : f->kind == fault_kind::quota ? mock_wire::quota_error(d, call.model)
                                              : mock_wire::overloaded_error(d, call.model);
      mock_wire::add_retry_after(d, e, f->retry_after);
      auto r = error_reply(d, e, outcome, rid);
      if (e.status == 429)
        add_rate_headers(d, dec.rate, r.response);
      return r;
    }
    reply r;
    r.outcome = outcome;
    r.hold = f && f->kind == fault_kind::drop;
    r.extra_delay = f && f->kind == fault_kind::delay ? f->delay : milliseconds{0};
    r.how.cut = f && f->kind == fault_kind::cut;
    r.how.cut_after = f ? f->cut_after : std::nullopt;
    r.how.gap = f && f->kind == fault_kind::slow_stream ? f->delay : milliseconds{0};
    uint64_t general_output = 0;
    r.response.body =
        call.general ? mock_general::render(d, *call.general, call.model, dec.id, dec.tokens.input,
                                            std::time(nullptr), general_output)
                     : mock_wire::render_answer(d, call, make_answer(call, dec, answer_kind_of(f)));
    if (f && f->kind == fault_kind::malformed) // a JSON object cut short is never valid JSON
      r.response.body.resize(r.response.body.size() * 3 / 5);
    add_id_header(d, rid, r.response);
    add_rate_headers(d, dec.rate, r.response);
    return r;
  }

  answer make_answer(const parsed_call& call, const decision& dec, answer_kind kind) const {
    answer a;
    a.kind = kind;
    a.verdict = mock_wire::judge(options.seed, call.prompt);
    if (kind == answer_kind::bad_winner)
      a.verdict.winner = "Essay C";
    // Multi-prompt: each comparison judged as its own single call would be.
    a.multi = call.multi;
    for (const auto& [id, text] : call.comparisons)
      a.results.emplace_back(id, mock_wire::judge(options.seed, text));
    if (kind == answer_kind::bad_winner && !a.results.empty())
      a.results.front().second.winner = "Essay C";
    a.tokens = dec.tokens;
    a.tokens.output = mock_wire::output_tokens(a);
    a.id = dec.id;
    a.tool_id = dec.tool_id;
    a.created = std::chrono::duration_cast<std::chrono::seconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
    return a;
  }

  // -- decisions (all under mu) --------------------------------------------------------------

  decision decide(dialect d, const parsed_call& call) {
    std::lock_guard<std::mutex> lock{mu};
    decision dec;
    dec.f = take_fault(d);
    if (!dec.f)
      dec.f = random_error(d, dec.random);
    dec.rate = count_rate(d, call.prompt_tokens);
    dec.tokens = d == dialect::anthropic ? use_cache(call) : mock_wire::usage{};
    auto cached = dec.tokens.cache_read + dec.tokens.cache_write_5m + dec.tokens.cache_write_1h;
    dec.tokens.input = call.prompt_tokens > cached ? call.prompt_tokens - cached : 0;
    switch (d) {
    case dialect::openai:
      dec.id = "chatcmpl-" + random_chars(29, base62);
      break;
    case dialect::openrouter:
      dec.id = "gen-" + random_chars(10, hex.substr(0, 10)) + "-" + random_chars(20, base62);
      break;
    case dialect::anthropic:
      dec.id = "msg_01" + random_chars(22, base62);
      dec.tool_id = "toolu_01" + random_chars(22, base62);
      break;
    case dialect::gemini:
      dec.id = random_chars(22, base62);
      break;
    }
    return dec;
  }

  /// The first scripted fault meant for this dialect (or for any).
  std::optional<fault> take_fault(dialect d) {
    auto it = std::find_if(script.begin(), script.end(),
                           [d](const fault& f) { return !f.only || *f.only == d; });
    if (it == script.end())
      return std::nullopt;
    auto f = *it;
    script.erase(it);
    return f;
  }

  /// --error-rate: 529 means "overloaded", which the other dialects express as 503.
  std::optional<fault> random_error(dialect, bool& random) {
    if (options.error_rate <= 0 || options.error_codes.empty())
      return std::nullopt;
    if (std::uniform_real_distribution<double>(0, 1)(rng) >= options.error_rate)
      return std::nullopt;
    std::uniform_int_distribution<size_t> pick(0, options.error_codes.size() - 1);
    fault f;
    f.status = options.error_codes[pick(rng)];
    f.kind = f.status == 529 ? fault_kind::overloaded : fault_kind::status;
    random = true;
    return f;
  }

  rate_snapshot count_rate(dialect d, uint64_t tokens) {
    auto& w = windows[static_cast<size_t>(d)];
    auto now = steady::now();
    if (now - w.start >= rate_window_length)
      w = {now, 0, 0};
    w.requests += 1;
    w.tokens += tokens;
    rate_snapshot r;
    r.request_limit = options.rate_limit_requests;
    r.token_limit = options.rate_limit_tokens;
    r.requests_left = r.request_limit - std::min(r.request_limit, w.requests);
    r.tokens_left = r.token_limit - std::min(r.token_limit, w.tokens);
    r.reset_in = std::chrono::duration_cast<milliseconds>(w.start + rate_window_length - now);
    return r;
  }

  /// Anthropic prompt caching: the longest live breakpoint prefix is read, the rest written.
  /// Prefixes under 1024 tokens are not cached, as with the real API.
  mock_wire::usage use_cache(const parsed_call& call) {
    constexpr uint64_t min_tokens = 1024;
    auto now = steady::now();
    const auto& bps = call.breakpoints;
    mock_wire::usage u;
    size_t first_new = 0;
    for (size_t i = bps.size(); i-- > 0;) {
      auto it = cache.find(bps[i].key);
      if (bps[i].tokens >= min_tokens && it != cache.end() && it->second > now) {
        u.cache_read = bps[i].tokens;
        first_new = i + 1;
        break;
      }
    }
    uint64_t covered = u.cache_read;
    for (size_t i = first_new; i < bps.size(); ++i) {
      if (bps[i].tokens < min_tokens || bps[i].tokens <= covered)
        continue;
      (bps[i].one_hour ? u.cache_write_1h : u.cache_write_5m) += bps[i].tokens - covered;
      covered = bps[i].tokens;
    }
    if (cache.size() > 100000)
      std::erase_if(cache, [now](const auto& e) { return e.second <= now; });
    for (const auto& b : bps) {
      if (b.tokens < min_tokens)
        continue;
      auto ttl = b.one_hour ? std::chrono::seconds{3600} : std::chrono::seconds{300};
      auto& expiry = cache[b.key];
      expiry = std::max(expiry, now + ttl); // a read refreshes the entry, as the API does
    }
    return u;
  }

  void record(const std::string& d, const std::string& outcome, bool scripted, bool random) {
    std::lock_guard<std::mutex> lock{mu};
    counters.calls += 1;
    counters.by_dialect[d] += 1;
    counters.by_outcome[outcome] += 1;
    counters.by_dialect_outcome[d][outcome] += 1;
    counters.scripted_faults += scripted ? 1 : 0;
    counters.random_errors += random ? 1 : 0;
    recorded.notify_all();
  }

  /// Counts the call for each comparison it carries; returns what wraps its responder so a
  /// good answer marks when each comparison was first answered.
  std::function<http_responder(http_responder)> note_items(const reply& r) {
    {
      std::lock_guard<std::mutex> lock{mu};
      for (auto item : r.items)
        items[item].calls += 1;
    }
    if (r.items.empty() || r.outcome != "ok" || r.response.status != 200)
      return [](http_responder respond) { return respond; };
    return [this, answered = r.items](http_responder respond) -> http_responder {
      return [this, answered, respond = std::move(respond)](http_response res) {
        {
          std::lock_guard<std::mutex> lock{mu};
          auto now = steady::now();
          for (auto item : answered)
            if (auto& x = items[item]; !x.first_answered)
              x.first_answered = now;
        }
        respond(std::move(res));
      };
    };
  }

  /// Whether the answer is held, delayed or streamed: only then can a client leave before
  /// it ends (an answer sent at once costs no watching).
  bool answer_waits(const reply& r) const {
    return r.hold || r.extra_delay.count() > 0 || options.latency.count() > 0
           || options.jitter.count() > 0 || static_cast<bool>(r.response.stream);
  }

  /// Counts the call as abandoned when its client leaves before the answer ended.
  void watch_for_abandon(const http_request& req) {
    if (!req.close_watch)
      return;
    req.close_watch->on_close([this] {
      std::lock_guard<std::mutex> lock{mu};
      counters.abandoned += 1;
      recorded.notify_all();
    });
  }

  /// Counts the call in flight until `respond` runs, so the peak shows the client's
  /// concurrency as this server saw it.
  http_responder counted(http_responder respond) {
    {
      std::lock_guard<std::mutex> lock{mu};
      counters.in_flight += 1;
      counters.peak_in_flight = std::max(counters.peak_in_flight, counters.in_flight);
      recorded.notify_all();
    }
    return [this, respond = std::move(respond)](http_response r) {
      {
        std::lock_guard<std::mutex> lock{mu};
        counters.in_flight -= 1;
        recorded.notify_all();
      }
      respond(std::move(r));
    };
  }

  // -- control API ---------------------------------------------------------------------------

  http_response control(const http_request& req) {
    const auto& p = req.path;
    bool post = req.method == "POST";
    bool get = req.method == "GET";
    if (p == "/_mock/faults" && post) {
      std::string error;
      auto queued = add(req.body, error);
      if (!queued)
        return json_reply(400, json::object{{"error", json::object{{"message", error}}}});
      return json_reply(200,
                        json::object{{"queued", *queued}, {"pending", snapshot().pending_faults}});
    }
    if (p == "/_mock/stats" && get)
      return json_reply(200, stats_json(snapshot()));
    if (p == "/_mock/reset" && post) {
      clear();
      return json_reply(200, json::object{{"reset", true}});
    }
    if (p == "/_mock/health" && get)
      return json_reply(200, json::object{{"status", "ok"}});
    if (p == "/_mock/batches" && (get || post)) {
      if (post)
        if (auto e = batches.configure(req.body))
          return json_reply(400, json::object{{"error", json::object{{"message", *e}}}});
      return json_reply(200, mock_batch::options_json(batches.options()));
    }
    bool known = p == "/_mock/faults" || p == "/_mock/stats" || p == "/_mock/reset"
                 || p == "/_mock/health" || p == "/_mock/batches";
    auto message = known ? "method not allowed" : "unknown control path " + p;
    return json_reply(known ? 405 : 404,
                      json::object{{"error", json::object{{"message", message}}}});
  }

  std::optional<size_t> add(std::string_view text, std::string& error) {
    std::vector<fault> parsed;
    if (auto e = parse_fault_script(text, parsed)) {
      error = *e;
      return std::nullopt;
    }
    std::lock_guard<std::mutex> lock{mu};
    if (script.size() + parsed.size() > max_fault_count) {
      error = "at most 10000 faults may be pending";
      return std::nullopt;
    }
    script.insert(script.end(), parsed.begin(), parsed.end());
    return parsed.size();
  }

  mock_provider_stats snapshot() const {
    auto batch = batches.stats();
    std::lock_guard<std::mutex> lock{mu};
    auto s = counters;
    s.pending_faults = script.size();
    s.batch = std::move(batch);
    s.streams = streams.counts();
    return s;
  }

  /// Held "drop" connections stay held: releasing them would answer them.
  void clear() {
    batches.reset();
    streams.reset_counts();
    std::lock_guard<std::mutex> lock{mu};
    // Calls still waiting for their answer stay counted: they end after the reset.
    auto live = counters.in_flight;
    counters = {};
    counters.in_flight = live;
    counters.peak_in_flight = live;
    script.clear();
    items.clear();
    cache.clear();
    for (auto& w : windows)
      w = {};
  }
};

namespace {

std::optional<std::string> check_options(const mock_provider_options& o) {
  if (o.io_threads == 0)
    return "io_threads must be at least 1";
  if (o.latency.count() < 0 || o.jitter.count() < 0)
    return "latency and jitter must not be negative";
  if (!(o.error_rate >= 0.0 && o.error_rate <= 1.0))
    return "error_rate must be in [0, 1]";
  if (o.error_rate > 0 && o.error_codes.empty())
    return "error_codes must not be empty when error_rate > 0";
  for (auto c : o.error_codes)
    if (c < 400 || c > 599)
      return "error codes must be in 400..599, got " + std::to_string(c);
  if (o.api_key.empty())
    return "api_key must not be empty";
  return mock_batch::check_options(o.batch);
}

} // namespace

mock_provider_server::mock_provider_server() : impl_(std::make_unique<impl>()) {}

mock_provider_server::~mock_provider_server() {
  stop();
}

bool mock_provider_server::start(const mock_provider_options& options, std::string& error) {
  if (impl_->started) {
    error = "the mock provider server was already started";
    return false;
  }
  if (auto e = check_options(options)) {
    error = *e;
    return false;
  }
  impl_->options = options;
  impl_->rng.seed(options.seed);
  impl_->batches.start(options);
  http_server_options so;
  so.host = options.host;
  so.port = options.port;
  so.io_threads = options.io_threads;
  // Batch inputs: an OpenAI file holds up to 200 MB, an Anthropic create body 256 MB.
  so.max_body_bytes = size_t{320} << 20;
  so.tls_cert_file = options.tls_cert_file;
  so.tls_key_file = options.tls_key_file;
  auto* self = impl_.get();
  if (!impl_->server.start(
          so, [self](http_request&& r, http_responder p) { self->handle(std::move(r), p); }, error))
    return false;
  impl_->delayed.start();
  impl_->streams.start();
  impl_->started = true;
  return true;
}

uint16_t mock_provider_server::port() const {
  return impl_->started ? impl_->server.port() : 0;
}

void mock_provider_server::stop() {
  if (!impl_)
    return;
  // Server first: once it has stopped, responders dropped below answer nobody.
  impl_->server.stop();
  impl_->delayed.stop();
  impl_->streams.stop();
  std::vector<http_responder> held;
  {
    std::lock_guard<std::mutex> lock{impl_->mu};
    held.swap(impl_->held);
  }
}

mock_provider_stats mock_provider_server::stats() const {
  return impl_->snapshot();
}

std::map<uint64_t, mock_item_calls> mock_provider_server::item_calls() const {
  std::lock_guard<std::mutex> lock{impl_->mu};
  return {impl_->items.begin(), impl_->items.end()};
}

bool mock_provider_server::wait_for_calls(
    const std::function<bool(const mock_provider_stats&)>& until,
    std::chrono::milliseconds limit) const {
  std::unique_lock<std::mutex> lock{impl_->mu};
  return impl_->recorded.wait_for(lock, limit, [&] { return until(impl_->counters); });
}

bool mock_provider_server::add_faults(std::string_view json, std::string& error) {
  return impl_->add(json, error).has_value();
}

void mock_provider_server::reset() {
  impl_->clear();
}

mock_batch_options mock_provider_server::batch_options() const {
  return impl_->batches.options();
}

bool mock_provider_server::set_batch_options(const mock_batch_options& options,
                                             std::string& error) {
  auto e = impl_->batches.set_options(options);
  if (e)
    error = *e;
  return !e;
}

bool mock_provider_server::configure_batches(std::string_view json, std::string& error) {
  auto e = impl_->batches.configure(json);
  if (e)
    error = *e;
  return !e;
}

} // namespace lps
