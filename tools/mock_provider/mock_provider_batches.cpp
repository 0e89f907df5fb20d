#include "tools/mock_provider/mock_provider_batches.hpp"

#include "runtime/ids.hpp"
#include "tools/mock_provider/mock_provider_dialects.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <random>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

// Threading: handle() runs on the HTTP server's I/O threads. Files, batches, counters,
// settings and the id generator sit behind one mutex, held for bookkeeping only: parsing,
// validation and rendering run outside it on immutable item sets (shared_ptr<const>).
//
// Time: a batch stores its creation instant and the timings in force then; every call works
// out the phase from the steady clock, so no timer thread is needed and a batch nobody asks
// about costs nothing.

namespace lps::mock_batch {

namespace {

namespace json = boost::json;
using mock_wire::dialect;
using mock_wire::provider_error;
using steady = std::chrono::steady_clock;
using std::chrono::milliseconds;

using mock_wire::base62;
using mock_wire::hex;
using mock_wire::outcome_of_status;

constexpr std::string_view chat_endpoint = "/v1/chat/completions";
constexpr std::string_view openai_files = "/v1/files";
constexpr std::string_view openai_batches = "/v1/batches";
constexpr std::string_view anthropic_batches = "/v1/messages/batches";

constexpr size_t openai_max_requests = 50000;
constexpr size_t anthropic_max_requests = 100000;
constexpr size_t anthropic_max_bytes = 256000000;
/// errors.data of a failed OpenAI batch lists at most this many lines.
constexpr size_t max_reported_errors = 1000;
constexpr int64_t day_ms = 86400000;
constexpr milliseconds max_duration{day_ms};
constexpr uint32_t max_forced_failures = 10000;

// -- small helpers ---------------------------------------------------------------------------

/// splitmix64: ids derived from a batch and an item index, so a file downloaded twice is the
/// same file.
struct id_stream {
  uint64_t state = 0;

  uint64_t next() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }

  std::string chars(size_t n, std::string_view alphabet) {
    std::string s(n, '0');
    for (auto& c : s)
      c = alphabet[next() % alphabet.size()];
    return s;
  }
};

/// A fraction in [0, 1) from a hash. FNV-1a leaves the high bits of strings that differ only
/// at the end ("item-1", "item-2") alike, so they are mixed first (splitmix64's finaliser).
double unit_of(uint64_t h) {
  h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9ull;
  h = (h ^ (h >> 27)) * 0x94D049BB133111EBull;
  h ^= h >> 31;
  return static_cast<double>(h >> 11) * 0x1.0p-53;
}

int64_t unix_ms_now() {
  return std::chrono::duration_cast<milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int64_t unix_seconds(int64_t unix_ms) {
  return unix_ms >= 0 ? unix_ms / 1000 : -((-unix_ms + 999) / 1000);
}

/// Anthropic's timestamps: RFC 3339, UTC, with microseconds.
std::string rfc3339(int64_t unix_ms) {
  auto secs = unix_seconds(unix_ms);
  auto tt = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char date[32];
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[48];
  std::snprintf(out, sizeof out, "%s.%06dZ", date,
                static_cast<int>((unix_ms - secs * 1000) * 1000));
  return out;
}

std::string json_string(std::string_view s) {
  return json::serialize(json::string(s));
}

uint32_t clamp32(uint64_t v) {
  return static_cast<uint32_t>(std::min<uint64_t>(v, UINT32_MAX));
}

bool starts_with_ci(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size())
    return false;
  for (size_t i = 0; i < prefix.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(text[i]))
        != std::tolower(static_cast<unsigned char>(prefix[i])))
      return false;
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

std::string_view unquote(std::string_view s) {
  s = trim(s);
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"')
    s = s.substr(1, s.size() - 2);
  return s;
}

/// A `;`-separated header parameter (boundary, name, filename), case-insensitive name.
std::optional<std::string> header_param(std::string_view value, std::string_view name) {
  while (!value.empty()) {
    auto semi = value.find(';');
    auto piece = trim(value.substr(0, semi));
    value = semi == std::string_view::npos ? std::string_view{} : value.substr(semi + 1);
    auto eq = piece.find('=');
    if (eq == std::string_view::npos)
      continue;
    auto key = trim(piece.substr(0, eq));
    if (key.size() == name.size() && starts_with_ci(key, name))
      return std::string(unquote(piece.substr(eq + 1)));
  }
  return std::nullopt;
}

// -- multipart/form-data ---------------------------------------------------------------------

struct form_part {
  std::string name;
  std::optional<std::string> filename;
  std::string_view data;
};

/// The parts of a multipart/form-data body; nullopt when it is not one.
std::optional<std::vector<form_part>> parse_multipart(std::string_view content_type,
                                                      std::string_view body) {
  if (!starts_with_ci(trim(content_type), "multipart/form-data"))
    return std::nullopt;
  auto boundary = header_param(content_type, "boundary");
  if (!boundary || boundary->empty())
    return std::nullopt;
  const std::string delimiter = "--" + *boundary;
  const std::string next_delimiter = "\r\n" + delimiter;
  size_t pos = body.find(delimiter);
  if (pos == std::string_view::npos)
    return std::nullopt;
  pos += delimiter.size();
  std::vector<form_part> parts;
  for (;;) {
    if (body.substr(pos, 2) == "--")
      return parts;
    if (body.substr(pos, 2) != "\r\n")
      return std::nullopt;
    pos += 2;
    auto head_end = body.find("\r\n\r\n", pos);
    if (head_end == std::string_view::npos)
      return std::nullopt;
    auto headers = body.substr(pos, head_end - pos);
    auto data_start = head_end + 4;
    auto end = body.find(next_delimiter, data_start);
    if (end == std::string_view::npos)
      return std::nullopt;
    form_part part;
    part.data = body.substr(data_start, end - data_start);
    while (!headers.empty()) {
      auto eol = headers.find("\r\n");
      auto line = headers.substr(0, eol);
      headers = eol == std::string_view::npos ? std::string_view{} : headers.substr(eol + 2);
      constexpr std::string_view cd = "content-disposition:";
      if (!starts_with_ci(line, cd))
        continue;
      auto value = line.substr(cd.size());
      part.name = header_param(value, "name").value_or("");
      part.filename = header_param(value, "filename");
    }
    parts.push_back(std::move(part));
    pos = end + next_delimiter.size();
  }
}

// -- items -----------------------------------------------------------------------------------

/// A judgement by indices into item_set::strings (the verdict strings repeat a lot).
struct verdict_ref {
  uint32_t winner = 0;
  uint32_t justification = 0;
  int32_t confidence = 0;
};

/// What happens to an item if its batch runs to the end.
enum class plan : uint8_t { succeed, fail, expire };

/// What one item needs to be rendered later: its answer is judged now, drawn later.
struct item {
  std::string custom_id;
  uint32_t model = 0;
  uint32_t tool = 0;
  uint32_t prompt_tokens = 0;
  uint32_t output_tokens = 0;
  verdict_ref verdict;
  plan planned = plan::succeed;
  bool multi = false;
  std::vector<std::pair<std::string, verdict_ref>> results;
};

/// A batch's items, immutable once built.
struct item_set {
  std::vector<std::string> strings;
  std::vector<item> items;
  /// Processing order (ranks -> item indices), which is also the order of result lines.
  std::vector<uint32_t> order;
  size_t planned_expired = 0;
  /// Feeds the per-item ids.
  uint64_t key = 0;
};

/// Collects valid items, judging each exactly as mock_provider_server judges a sync call.
class set_builder {
public:
  explicit set_builder(uint64_t seed) : seed_(seed), set_(std::make_shared<item_set>()) {}

  void add(std::string custom_id, const mock_wire::parsed_call& call) {
    item it;
    it.custom_id = std::move(custom_id);
    it.model = intern(call.model);
    it.tool = intern(call.tool_name);
    it.prompt_tokens = clamp32(call.prompt_tokens);
    mock_wire::answer a;
    a.verdict = mock_wire::judge(seed_, call.prompt);
    a.multi = call.multi;
    for (const auto& [id, text] : call.comparisons)
      a.results.emplace_back(id, mock_wire::judge(seed_, text));
    it.output_tokens = clamp32(mock_wire::output_tokens(a));
    it.verdict = compact(a.verdict);
    it.multi = a.multi;
    for (const auto& [id, j] : a.results)
      it.results.emplace_back(id, compact(j));
    set_->items.push_back(std::move(it));
  }

  size_t size() const {
    return set_->items.size();
  }

  /// Draws each item's fate (from the seed, the batch ordinal and its custom_id) and the
  /// processing order (from the seed and `key`).
  std::shared_ptr<const item_set> finish(uint64_t ordinal, uint64_t key,
                                         const mock_batch_options& o) {
    auto& s = *set_;
    s.key = key;
    auto prefix = "lps-mock-batch/" + std::to_string(seed_) + "/" + std::to_string(ordinal) + "/";
    for (auto& it : s.items) {
      auto u = unit_of(stable_hash(prefix + it.custom_id));
      it.planned = u < o.item_error_rate                        ? plan::fail
                   : u < o.item_error_rate + o.item_expire_rate ? plan::expire
                                                                : plan::succeed;
      s.planned_expired += it.planned == plan::expire ? 1 : 0;
    }
    s.order.resize(s.items.size());
    for (size_t i = 0; i < s.order.size(); ++i)
      s.order[i] = static_cast<uint32_t>(i);
    std::mt19937_64 rng{seed_ ^ key};
    std::shuffle(s.order.begin(), s.order.end(), rng);
    s.strings.shrink_to_fit();
    return std::move(set_);
  }

private:
  uint32_t intern(const std::string& s) {
    auto [it, added] = index_.try_emplace(s, static_cast<uint32_t>(set_->strings.size()));
    if (added)
      set_->strings.push_back(s);
    return it->second;
  }

  verdict_ref compact(const mock_wire::judgement& j) {
    return {intern(j.winner), intern(j.justification), j.confidence};
  }

  uint64_t seed_;
  std::shared_ptr<item_set> set_;
  std::unordered_map<std::string, uint32_t> index_;
};

mock_wire::judgement expand(const item_set& s, const verdict_ref& v) {
  mock_wire::judgement j;
  j.winner = s.strings[v.winner];
  j.justification = s.strings[v.justification];
  j.confidence = v.confidence;
  return j;
}

/// The ids of item `index`, the same on every download.
id_stream ids_of(const item_set& s, size_t index) {
  return {s.key ^ ((static_cast<uint64_t>(index) + 1) * 0xD1B54A32D192ED03ull)};
}

/// The 200 body a sync call would have got for this item.
std::string render_item(dialect d, const item_set& s, const item& it, id_stream& ids,
                        int64_t created) {
  mock_wire::parsed_call call;
  call.model = s.strings[it.model];
  call.tool_name = s.strings[it.tool];
  mock_wire::answer a;
  a.verdict = expand(s, it.verdict);
  a.multi = it.multi;
  for (const auto& [id, v] : it.results)
    a.results.emplace_back(id, expand(s, v));
  a.tokens.input = it.prompt_tokens;
  a.tokens.output = it.output_tokens;
  if (d == dialect::anthropic) {
    a.id = "msg_01" + ids.chars(22, base62);
    a.tool_id = "toolu_01" + ids.chars(22, base62);
  } else {
    a.id = "chatcmpl-" + ids.chars(29, base62);
  }
  a.created = created;
  return mock_wire::render_answer(d, call, a);
}

// -- time ------------------------------------------------------------------------------------

struct timing {
  milliseconds validating{0};
  milliseconds processing{0};
  milliseconds finalizing{0};
  milliseconds cancel{0};
};

timing timing_of(const mock_batch_options& o) {
  return {o.validating, o.processing, o.processing / 10, o.cancel};
}

/// Items processed `at` after creation: they finish evenly spread over the processing time.
size_t processed(const timing& t, size_t n, milliseconds at) {
  if (at < t.validating)
    return 0;
  if (t.processing.count() <= 0 || at >= t.validating + t.processing)
    return n;
  auto f =
      static_cast<double>((at - t.validating).count()) / static_cast<double>(t.processing.count());
  return std::min(n, static_cast<size_t>(f * static_cast<double>(n)));
}

/// When the item of processing rank `rank` finished (ms after creation).
int64_t finished_at(const timing& t, size_t rank, size_t n) {
  auto share = static_cast<double>(rank + 1) / static_cast<double>(std::max<size_t>(n, 1));
  return t.validating.count()
         + static_cast<int64_t>(share * static_cast<double>(t.processing.count()));
}

/// What the first `done` items in processing order came to.
struct tally {
  uint64_t succeeded = 0;
  uint64_t errored = 0;
  uint64_t input_tokens = 0;
  uint64_t output_tokens = 0;
};

tally count(const item_set& s, size_t done) {
  tally t;
  for (size_t k = 0; k < done && k < s.order.size(); ++k) {
    const auto& it = s.items[s.order[k]];
    if (it.planned == plan::succeed) {
      ++t.succeeded;
      t.input_tokens += it.prompt_tokens;
      t.output_tokens += it.output_tokens;
    } else if (it.planned == plan::fail) {
      ++t.errored;
    }
  }
  return t;
}

/// What an item of an ended batch became.
enum class fate : uint8_t { succeeded, errored, expired, cancelled };

fate fate_of(const item& it, size_t rank, size_t done, bool cancelled) {
  if (rank < done && it.planned == plan::succeed)
    return fate::succeeded;
  if (rank < done && it.planned == plan::fail)
    return fate::errored;
  return cancelled ? fate::cancelled : fate::expired;
}

// -- errors and answers ----------------------------------------------------------------------

provider_error error_of(dialect d, unsigned status, std::string message, std::string param = {},
                        std::string code = {}) {
  provider_error e;
  e.status = status;
  e.type = d == dialect::anthropic ? mock_wire::anthropic_type(status)
           : status >= 500         ? "server_error"
                                   : "invalid_request_error";
  e.message = std::move(message);
  e.param = std::move(param);
  e.code = std::move(code);
  return e;
}

void add_id_header(dialect d, const std::string& rid, http_response& out) {
  out.headers.emplace_back(d == dialect::anthropic ? "request-id" : "x-request-id", rid);
}

http_response error_reply(dialect d, const provider_error& e, const std::string& rid) {
  http_response r;
  r.status = e.status;
  r.body = mock_wire::render_error(d, e, rid);
  add_id_header(d, rid, r);
  return r;
}

http_response json_reply(dialect d, const json::value& body, const std::string& rid) {
  http_response r;
  r.body = json::serialize(body);
  add_id_header(d, rid, r);
  return r;
}

std::optional<json::value> parse_json(std::string_view text) {
  boost::system::error_code ec;
  auto v = json::parse(text, ec);
  if (ec)
    return std::nullopt;
  return v;
}

/// Where a batch path leads.
struct route {
  dialect d = dialect::openai;
  /// A mock_batch_stats endpoint name; "unknown" for a path or method nothing answers.
  std::string endpoint = "unknown";
  std::string id;
};

std::vector<std::string_view> split_path(std::string_view rest) {
  std::vector<std::string_view> parts;
  while (!rest.empty()) {
    auto slash = rest.find('/');
    parts.push_back(rest.substr(0, slash));
    rest = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);
  }
  return parts;
}

bool under(std::string_view path, std::string_view prefix) {
  return path == prefix
         || (path.size() > prefix.size() && path.substr(0, prefix.size()) == prefix
             && path[prefix.size()] == '/');
}

route route_of(std::string_view method, std::string_view path) {
  route r;
  bool get = method == "GET";
  bool post = method == "POST";
  std::string_view prefix;
  if (under(path, anthropic_batches)) {
    r.d = dialect::anthropic;
    prefix = anthropic_batches;
  } else if (under(path, openai_batches)) {
    prefix = openai_batches;
  } else if (under(path, openai_files)) {
    prefix = openai_files;
  } else {
    return r;
  }
  auto rest = path.substr(prefix.size());
  if (rest.empty()) {
    if (prefix == openai_files)
      r.endpoint = post ? "files_upload" : "unknown";
    else
      r.endpoint = post ? "batch_create" : get ? "batch_list" : "unknown";
    return r;
  }
  auto parts = split_path(rest.substr(1));
  if (parts.empty() || parts.size() > 2 || parts[0].empty())
    return r;
  r.id = std::string(parts[0]);
  std::string_view action = parts.size() == 2 ? parts[1] : std::string_view{};
  if (prefix == openai_files) {
    if (get && parts.size() == 1)
      r.endpoint = "file_get";
    else if (get && action == "content")
      r.endpoint = "file_content";
  } else if (get && parts.size() == 1) {
    r.endpoint = "batch_get";
  } else if (post && action == "cancel") {
    r.endpoint = "batch_cancel";
  } else if (get && action == "results" && r.d == dialect::anthropic) {
    r.endpoint = "results";
  }
  return r;
}

/// An integer query parameter in [lo, hi]; `fallback` when absent, nullopt when invalid.
std::optional<size_t> limit_param(std::string_view query, size_t fallback, size_t lo, size_t hi) {
  auto v = mock_wire::query_param(query, "limit");
  if (!v)
    return fallback;
  size_t n = 0;
  if (v->empty() || v->size() > 9)
    return std::nullopt;
  for (char c : *v) {
    if (c < '0' || c > '9')
      return std::nullopt;
    n = n * 10 + static_cast<size_t>(c - '0');
  }
  if (n < lo || n > hi)
    return std::nullopt;
  return n;
}

// -- OpenAI ----------------------------------------------------------------------------------

struct openai_file {
  std::string id;
  std::string filename;
  std::string purpose;
  int64_t created_at = 0;
  /// Uploaded files: the bytes.
  std::shared_ptr<const std::string> data;
  /// Generated files: the batch whose output (or error) file this is.
  std::string batch_id;
  bool errors = false;
};

enum class oa_phase : uint8_t {
  validating,
  failed,
  in_progress,
  finalizing,
  completed,
  expired,
  cancelling,
  cancelled
};

const char* to_string(oa_phase p) {
  switch (p) {
  case oa_phase::validating:
    return "validating";
  case oa_phase::failed:
    return "failed";
  case oa_phase::in_progress:
    return "in_progress";
  case oa_phase::finalizing:
    return "finalizing";
  case oa_phase::completed:
    return "completed";
  case oa_phase::expired:
    return "expired";
  case oa_phase::cancelling:
    return "cancelling";
  case oa_phase::cancelled:
    return "cancelled";
  }
  return "failed";
}

struct openai_batch {
  std::string id;
  std::string input_file_id;
  std::string output_file_id;
  std::string error_file_id;
  json::value metadata;
  int64_t created_ms = 0;
  steady::time_point created;
  timing t;
  /// Null when the batch fails (bad input file or a forced failure).
  std::shared_ptr<const item_set> set;
  std::string model;
  json::array errors;
  /// When cancel was asked, after creation.
  std::optional<milliseconds> cancel_at;
};

struct openai_view {
  oa_phase phase = oa_phase::validating;
  size_t done = 0;
};

openai_view view_of(const openai_batch& b, steady::time_point now) {
  auto e = std::chrono::duration_cast<milliseconds>(now - b.created);
  size_t n = b.set ? b.set->items.size() : 0;
  const auto& t = b.t;
  if (b.cancel_at) {
    auto c = *b.cancel_at;
    return {e < c + t.cancel ? oa_phase::cancelling : oa_phase::cancelled, processed(t, n, c)};
  }
  if (e < t.validating)
    return {oa_phase::validating, 0};
  if (!b.set)
    return {oa_phase::failed, 0};
  if (e < t.validating + t.processing)
    return {oa_phase::in_progress, processed(t, n, e)};
  if (e < t.validating + t.processing + t.finalizing)
    return {oa_phase::finalizing, n};
  return {b.set->planned_expired > 0 ? oa_phase::expired : oa_phase::completed, n};
}

bool ended(oa_phase p) {
  return p == oa_phase::completed || p == oa_phase::expired || p == oa_phase::cancelled;
}

/// Everything a batch object or a file lookup shows, worked out once.
struct openai_state {
  openai_view v;
  /// Past validation with a valid file (a batch cancelled while validating never was).
  bool validated = false;
  size_t n = 0;
  tally c;
  bool has_output = false;
  bool has_errors = false;
};

openai_state state_of(const openai_batch& b, steady::time_point now) {
  openai_state s;
  s.v = view_of(b, now);
  s.validated = b.set && s.v.phase != oa_phase::validating && s.v.phase != oa_phase::failed
                && !(b.cancel_at && *b.cancel_at < b.t.validating);
  if (s.validated) {
    s.n = b.set->items.size();
    s.c = count(*b.set, s.v.done);
  }
  bool is_ended = ended(s.v.phase);
  s.has_output = is_ended && s.c.succeeded > 0;
  s.has_errors = is_ended && s.n > s.c.succeeded;
  return s;
}

json::object openai_batch_json(const openai_batch& b, const openai_state& s) {
  auto at = [&](milliseconds offset) -> json::value {
    return unix_seconds(b.created_ms + offset.count());
  };
  const auto& t = b.t;
  auto phase = s.v.phase;
  uint64_t failed = s.c.errored;
  bool finalized =
      phase == oa_phase::finalizing || phase == oa_phase::completed || phase == oa_phase::expired;
  if (finalized)
    failed = s.n - s.c.succeeded; // expired items count as failed
  json::value errors = nullptr;
  if (phase == oa_phase::failed)
    errors = json::object{{"object", "list"}, {"data", b.errors}};
  json::object usage{{"input_tokens", s.c.input_tokens},
                     {"input_tokens_details", json::object{{"cached_tokens", 0}}},
                     {"output_tokens", s.c.output_tokens},
                     {"output_tokens_details", json::object{{"reasoning_tokens", 0}}},
                     {"total_tokens", s.c.input_tokens + s.c.output_tokens}};
  auto end = t.validating + t.processing + t.finalizing;
  json::object o;
  o["id"] = b.id;
  o["object"] = "batch";
  o["endpoint"] = chat_endpoint;
  o["errors"] = std::move(errors);
  o["input_file_id"] = b.input_file_id;
  o["completion_window"] = "24h";
  o["status"] = to_string(phase);
  o["output_file_id"] = s.has_output ? json::value(b.output_file_id) : json::value(nullptr);
  o["error_file_id"] = s.has_errors ? json::value(b.error_file_id) : json::value(nullptr);
  o["created_at"] = at(milliseconds{0});
  o["in_progress_at"] = s.validated ? at(t.validating) : json::value(nullptr);
  o["expires_at"] = at(milliseconds{day_ms});
  o["finalizing_at"] = finalized ? at(t.validating + t.processing) : json::value(nullptr);
  o["completed_at"] = phase == oa_phase::completed ? at(end) : json::value(nullptr);
  o["failed_at"] = phase == oa_phase::failed ? at(t.validating) : json::value(nullptr);
  o["expired_at"] = phase == oa_phase::expired ? at(end) : json::value(nullptr);
  o["cancelling_at"] = b.cancel_at ? at(*b.cancel_at) : json::value(nullptr);
  o["cancelled_at"] =
      phase == oa_phase::cancelled ? at(*b.cancel_at + t.cancel) : json::value(nullptr);
  o["request_counts"] =
      json::object{{"total", s.n}, {"completed", s.c.succeeded}, {"failed", failed}};
  o["metadata"] = b.metadata;
  o["model"] = s.validated ? json::value(b.model) : json::value(nullptr);
  o["usage"] = std::move(usage);
  return o;
}

json::object file_json(const openai_file& f, uint64_t bytes) {
  return {{"id", f.id},
          {"object", "file"},
          {"bytes", bytes},
          {"created_at", f.created_at},
          {"filename", f.filename},
          {"purpose", f.purpose},
          {"status", "processed"},
          {"status_details", nullptr},
          {"expires_at", nullptr}};
}

json::object line_error(std::string code, std::optional<size_t> line, std::string message,
                        std::string param = {}) {
  return {{"code", std::move(code)},
          {"line", line ? json::value(*line) : json::value(nullptr)},
          {"message", std::move(message)},
          {"param", mock_wire::null_if_empty(param)}};
}

/// Checks one input line the way the Batch API does while validating; on success adds it.
std::optional<json::object> check_line(std::string_view text, size_t line, set_builder& builder,
                                       std::unordered_set<std::string>& seen, std::string& model) {
  auto doc = parse_json(text);
  if (!doc || !doc->is_object())
    return line_error("invalid_json_line", line, "This line is not parseable as valid JSON.");
  const auto& o = doc->get_object();
  auto missing = [&](const char* key) {
    return line_error("missing_required_parameter", line,
                      std::string("Missing required parameter: '") + key + "'.", key);
  };
  const auto* custom_id = mock_wire::string_at(o, "custom_id");
  if (!custom_id)
    return missing("custom_id");
  if (custom_id->empty())
    return line_error("invalid_value", line, "Invalid 'custom_id': empty string.", "custom_id");
  const auto* method = mock_wire::string_at(o, "method");
  if (!method)
    return missing("method");
  if (mock_wire::view(*method) != "POST")
    return line_error("invalid_value", line,
                      "Invalid value: '" + std::string(mock_wire::view(*method))
                          + "'. Supported values are: 'POST'.",
                      "method");
  const auto* url = mock_wire::string_at(o, "url");
  if (!url)
    return missing("url");
  if (mock_wire::view(*url) != chat_endpoint)
    return line_error("url_mismatch", line,
                      "The provided URL '" + std::string(mock_wire::view(*url))
                          + "' does not match the batch endpoint '" + std::string(chat_endpoint)
                          + "'.",
                      "url");
  const auto* body = o.if_contains("body");
  if (!body || !body->is_object())
    return missing("body");
  mock_wire::parsed_call call;
  if (auto e = mock_wire::validate_chat(dialect::openai, body->get_object(), call))
    return line_error(e->code.empty() ? "invalid_request" : e->code, line, e->message,
                      e->param.empty() ? "body" : "body." + e->param);
  std::string id(mock_wire::view(*custom_id));
  if (!seen.insert(id).second)
    return line_error("duplicate_custom_id", line,
                      "The custom_id for this request is a duplicate of another request. The "
                      "custom_id parameter must be unique for each request in a batch.",
                      "custom_id");
  if (model.empty())
    model = call.model;
  else if (call.model != model)
    return line_error("model_mismatch", line,
                      "The provided model '" + call.model
                          + "' does not match the model of the other requests in this batch ('"
                          + model + "'). Every request in a batch must use the same model.",
                      "body.model");
  builder.add(std::move(id), call);
  return std::nullopt;
}

/// Validates a whole input file: errors (capped) or every item.
json::array check_file(std::string_view data, set_builder& builder, std::string& model) {
  std::vector<std::string_view> lines;
  while (!data.empty()) {
    auto eol = data.find('\n');
    auto line = data.substr(0, eol);
    if (!line.empty() && line.back() == '\r')
      line.remove_suffix(1);
    lines.push_back(line);
    data = eol == std::string_view::npos ? std::string_view{} : data.substr(eol + 1);
  }
  json::array errors;
  if (lines.empty()) {
    errors.push_back(line_error("empty_file", std::nullopt, "The batch input file is empty."));
    return errors;
  }
  if (lines.size() > openai_max_requests) {
    errors.push_back(line_error("too_many_tasks", std::nullopt,
                                "The batch input file has " + std::to_string(lines.size())
                                    + " requests; a batch may hold at most 50000."));
    return errors;
  }
  std::unordered_set<std::string> seen;
  seen.reserve(lines.size());
  for (size_t i = 0; i < lines.size() && errors.size() < max_reported_errors; ++i)
    if (auto e = check_line(lines[i], i + 1, builder, seen, model))
      errors.push_back(std::move(*e));
  return errors;
}

/// The output (or error) file of an ended batch.
std::string render_openai_file(const item_set& s, const timing& t, int64_t created_ms, size_t done,
                               bool cancelled, bool error_file) {
  std::string out;
  size_t n = s.items.size();
  out.reserve(n * (error_file ? 200 : 900));
  for (size_t rank = 0; rank < n; ++rank) {
    auto index = s.order[rank];
    const auto& it = s.items[index];
    auto f = fate_of(it, rank, done, cancelled);
    if ((f == fate::succeeded) == error_file)
      continue;
    auto ids = ids_of(s, index);
    out += R"({"id":"batch_req_)";
    out += ids.chars(32, hex);
    out += R"(","custom_id":)";
    out += json_string(it.custom_id);
    if (f == fate::succeeded || f == fate::errored) {
      auto rid = "req_" + ids.chars(32, hex);
      out += R"(,"response":{"status_code":)";
      out += f == fate::succeeded ? "200" : "500";
      out += R"(,"request_id":")" + rid + R"(","body":)";
      if (f == fate::succeeded)
        out += render_item(dialect::openai, s, it, ids,
                           unix_seconds(created_ms + finished_at(t, rank, n)));
      else
        out += mock_wire::render_error(
            dialect::openai, mock_wire::status_error(dialect::openai, 500, s.strings[it.model]),
            rid);
      out += R"(},"error":null})";
    } else {
      out += R"(,"response":null,"error":{"code":")";
      out += f == fate::expired
                 ? R"(batch_expired","message":"This request could not be executed before the )"
                   R"(completion window expired."}})"
                 : R"(batch_cancelled","message":"This request was not executed because the )"
                   R"(batch was cancelled."}})";
    }
    out += '\n';
  }
  return out;
}

// -- Anthropic -------------------------------------------------------------------------------

struct anthropic_batch {
  std::string id;
  int64_t created_ms = 0;
  steady::time_point created;
  timing t;
  std::shared_ptr<const item_set> set;
  std::optional<milliseconds> cancel_at;
};

enum class an_phase : uint8_t { in_progress, canceling, ended };

struct anthropic_view {
  an_phase phase = an_phase::in_progress;
  size_t done = 0;
  /// When processing ends (ms after creation).
  milliseconds end{0};
};

anthropic_view view_of(const anthropic_batch& b, steady::time_point now) {
  auto e = std::chrono::duration_cast<milliseconds>(now - b.created);
  size_t n = b.set->items.size();
  const auto& t = b.t;
  if (b.cancel_at) {
    auto end = *b.cancel_at + t.cancel;
    return {e < end ? an_phase::canceling : an_phase::ended, processed(t, n, *b.cancel_at), end};
  }
  auto end = t.validating + t.processing;
  return {e < end ? an_phase::in_progress : an_phase::ended, processed(t, n, e), end};
}

json::object anthropic_batch_json(const anthropic_batch& b, const anthropic_view& v,
                                  const std::string& base_url) {
  size_t n = b.set->items.size();
  bool is_ended = v.phase == an_phase::ended;
  uint64_t succeeded = 0, errored = 0, canceled = 0, expired = 0;
  if (is_ended) {
    auto c = count(*b.set, v.done);
    succeeded = c.succeeded;
    errored = c.errored;
    (b.cancel_at ? canceled : expired) = n - c.succeeded - c.errored;
  }
  json::object counts{{"processing", is_ended ? 0 : n},
                      {"succeeded", succeeded},
                      {"errored", errored},
                      {"canceled", canceled},
                      {"expired", expired}};
  auto at = [&](milliseconds offset) { return rfc3339(b.created_ms + offset.count()); };
  json::object o;
  o["id"] = b.id;
  o["type"] = "message_batch";
  o["processing_status"] = v.phase == an_phase::in_progress ? "in_progress"
                           : v.phase == an_phase::canceling ? "canceling"
                                                            : "ended";
  o["request_counts"] = std::move(counts);
  o["ended_at"] = is_ended ? json::value(at(v.end)) : json::value(nullptr);
  o["created_at"] = at(milliseconds{0});
  o["expires_at"] = at(milliseconds{day_ms});
  o["archived_at"] = nullptr;
  o["cancel_initiated_at"] = b.cancel_at ? json::value(at(*b.cancel_at)) : json::value(nullptr);
  o["results_url"] =
      is_ended ? json::value(base_url + std::string(anthropic_batches) + "/" + b.id + "/results")
               : json::value(nullptr);
  return o;
}

/// A params error as the batch endpoint names it: "requests.N.params.<field>: ...".
std::string params_message(size_t index, const std::string& message) {
  auto at = "requests." + std::to_string(index) + ".params";
  auto colon = message.find(": ");
  bool has_path = colon != std::string::npos && colon > 0
                  && message.substr(0, colon).find(' ') == std::string::npos;
  return has_path ? at + "." + message : at + ": " + message;
}

bool custom_id_ok(std::string_view id) {
  return !id.empty() && id.size() <= 64 && std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'
           || c == '-';
  });
}

/// Checks every request of a create body; nullopt when all are valid (then `builder` holds
/// them all), else the 400 message.
std::optional<std::string> check_requests(const json::object& body, set_builder& builder) {
  const auto* requests = body.if_contains("requests");
  if (!requests)
    return "requests: Field required";
  if (!requests->is_array())
    return "requests: Input should be a valid list";
  const auto& list = requests->get_array();
  if (list.empty())
    return "requests: List should have at least 1 item after validation, not 0";
  if (list.size() > anthropic_max_requests)
    return "requests: List should have at most 100000 items after validation, not "
           + std::to_string(list.size());
  std::unordered_set<std::string> seen;
  seen.reserve(list.size());
  for (size_t i = 0; i < list.size(); ++i) {
    auto at = "requests." + std::to_string(i);
    const auto* r = list[i].if_object();
    if (!r)
      return at + ": Input should be a valid dictionary";
    const auto* id = r->if_contains("custom_id");
    if (!id)
      return at + ".custom_id: Field required";
    if (!id->is_string())
      return at + ".custom_id: Input should be a valid string";
    auto custom_id = std::string(mock_wire::view(id->get_string()));
    if (!custom_id_ok(custom_id))
      return at + ".custom_id: String should match pattern '^[a-zA-Z0-9_-]{1,64}$'";
    const auto* params = r->if_contains("params");
    if (!params)
      return at + ".params: Field required";
    if (!params->is_object())
      return at + ".params: Input should be a valid dictionary";
    mock_wire::parsed_call call;
    if (auto e = mock_wire::validate_anthropic(params->get_object(), call))
      return params_message(i, e->message);
    if (!seen.insert(custom_id).second)
      return at + ".custom_id: Duplicate custom_id '" + custom_id
             + "': every request in a batch needs its own custom_id";
    builder.add(std::move(custom_id), call);
  }
  return std::nullopt;
}

std::string render_anthropic_results(const item_set& s, size_t done, bool cancelled) {
  std::string out;
  size_t n = s.items.size();
  out.reserve(n * 700);
  for (size_t rank = 0; rank < n; ++rank) {
    auto index = s.order[rank];
    const auto& it = s.items[index];
    auto ids = ids_of(s, index);
    out += R"({"custom_id":)";
    out += json_string(it.custom_id);
    switch (fate_of(it, rank, done, cancelled)) {
    case fate::succeeded:
      out += R"(,"result":{"type":"succeeded","message":)";
      out += render_item(dialect::anthropic, s, it, ids, 0);
      out += "}}";
      break;
    case fate::errored:
      out += R"(,"result":{"type":"errored","error":)";
      out += mock_wire::render_error(
          dialect::anthropic, mock_wire::status_error(dialect::anthropic, 500, s.strings[it.model]),
          "req_01" + ids.chars(22, base62));
      out += "}}";
      break;
    case fate::expired:
      out += R"(,"result":{"type":"expired"}})";
      break;
    case fate::cancelled:
      out += R"(,"result":{"type":"canceled"}})";
      break;
    }
    out += '\n';
  }
  return out;
}

// -- settings --------------------------------------------------------------------------------

std::optional<std::string> apply_setting(const std::string& key, const json::value& v,
                                         mock_batch_options& o) {
  if (key == "validating_ms" || key == "processing_ms" || key == "cancel_ms") {
    auto n = mock_wire::number_of(v);
    if (!n || *n < 0 || *n > static_cast<double>(max_duration.count()) || *n != std::floor(*n))
      return key + " must be an integer in 0..86400000";
    milliseconds ms{static_cast<int64_t>(*n)};
    (key == "validating_ms" ? o.validating : key == "processing_ms" ? o.processing : o.cancel) = ms;
    return std::nullopt;
  }
  if (key == "item_error_rate" || key == "item_expire_rate") {
    auto n = mock_wire::number_of(v);
    if (!n || !(*n >= 0.0 && *n <= 1.0))
      return key + " must be a number in [0, 1]";
    (key == "item_error_rate" ? o.item_error_rate : o.item_expire_rate) = *n;
    return std::nullopt;
  }
  if (key == "fail_next_openai_batch") {
    if (v.is_bool()) {
      o.fail_next_openai_batches = v.get_bool() ? 1 : 0;
      return std::nullopt;
    }
    auto n = mock_wire::number_of(v);
    if (!n || *n < 0 || *n > max_forced_failures || *n != std::floor(*n))
      return "fail_next_openai_batch must be true, false or a count in 0..10000";
    o.fail_next_openai_batches = static_cast<uint32_t>(*n);
    return std::nullopt;
  }
  return "unknown batch setting '" + key + "'";
}

} // namespace

// -- free functions --------------------------------------------------------------------------

std::optional<std::string> check_options(const mock_batch_options& o) {
  for (auto d : {o.validating, o.processing, o.cancel})
    if (d.count() < 0 || d > max_duration)
      return "batch timings must be in 0..86400000 ms";
  if (!(o.item_error_rate >= 0.0 && o.item_error_rate <= 1.0)
      || !(o.item_expire_rate >= 0.0 && o.item_expire_rate <= 1.0))
    return "batch item_error_rate and item_expire_rate must be in [0, 1]";
  if (o.item_error_rate + o.item_expire_rate > 1.0 + 1e-9)
    return "batch item_error_rate + item_expire_rate must not exceed 1";
  if (o.fail_next_openai_batches > max_forced_failures)
    return "fail_next_openai_batch must be at most 10000";
  return std::nullopt;
}

bool is_batch_path(std::string_view path) {
  return under(path, openai_files) || under(path, openai_batches) || under(path, anthropic_batches);
}

namespace {

json::object counts_json(const std::map<std::string, uint64_t>& m) {
  json::object o;
  for (const auto& [k, v] : m)
    o[k] = v;
  return o;
}

} // namespace

json::object stats_json(const mock_batch_stats& s) {
  json::object by_pair;
  for (const auto& [d, m] : s.by_dialect_endpoint)
    by_pair[d] = counts_json(m);
  return {{"calls", s.calls},
          {"by_endpoint", counts_json(s.by_endpoint)},
          {"by_dialect_endpoint", std::move(by_pair)},
          {"by_outcome", counts_json(s.by_outcome)},
          {"batches_created", counts_json(s.batches_created)},
          {"items_submitted", counts_json(s.items_submitted)}};
}

json::object options_json(const mock_batch_options& o) {
  return {{"validating_ms", o.validating.count()},
          {"processing_ms", o.processing.count()},
          {"cancel_ms", o.cancel.count()},
          {"item_error_rate", o.item_error_rate},
          {"item_expire_rate", o.item_expire_rate},
          {"fail_next_openai_batch", o.fail_next_openai_batches}};
}

// -- the service -----------------------------------------------------------------------------

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

  /// Where batches stand: start_options.batch_clock, or the steady clock.
  steady::time_point clock_now() const {
    return start_options.batch_clock ? start_options.batch_clock() : steady::now();
  }

  /// Under mu.
  std::string random_chars(size_t n, std::string_view alphabet) {
    return mock_wire::random_chars(rng, n, alphabet);
  }

  std::string request_id(dialect d) {
    std::lock_guard<std::mutex> lock{mu};
    return mock_wire::request_id(rng, d);
  }

  void clear() {
    std::lock_guard<std::mutex> lock{mu};
    settings = start_options.batch;
    counters = {};
    rng.seed(seed ^ 0x6261746368ull);
    ordinal = 0;
    files.clear();
    openai_list.clear();
    openai_index.clear();
    anthropic_list.clear();
    anthropic_index.clear();
  }

  http_response handle(const http_request& req) {
    auto r = route_of(req.method, req.path);
    auto rid = request_id(r.d);
    auto out = r.d == dialect::anthropic ? anthropic_call(req, r, rid) : openai_call(req, r, rid);
    std::lock_guard<std::mutex> lock{mu};
    counters.calls += 1;
    counters.by_endpoint[r.endpoint] += 1;
    counters.by_dialect_endpoint[mock_wire::to_string(r.d)][r.endpoint] += 1;
    counters.by_outcome[outcome_of_status(out.status)] += 1;
    return out;
  }

  // -- OpenAI --------------------------------------------------------------------------------

  http_response openai_call(const http_request& req, const route& r, const std::string& rid) {
    if (r.endpoint == "unknown") {
      auto e = error_of(dialect::openai, 404, "Invalid URL (" + req.method + " " + req.path + ")");
      return error_reply(dialect::openai, e, rid);
    }
    if (auto e = mock_wire::check_auth(dialect::openai, req, api_key))
      return error_reply(dialect::openai, *e, rid);
    if (r.endpoint == "files_upload")
      return upload(req, rid);
    if (r.endpoint == "file_get" || r.endpoint == "file_content")
      return file(r.id, r.endpoint == "file_content", rid);
    if (r.endpoint == "batch_create")
      return create_openai(req, rid);
    if (r.endpoint == "batch_list")
      return list_openai(req, rid);
    return get_or_cancel_openai(r.id, r.endpoint == "batch_cancel", rid);
  }

  http_response upload(const http_request& req, const std::string& rid) {
    constexpr auto d = dialect::openai;
    auto parts = parse_multipart(req.content_type, req.body);
    if (!parts)
      return error_reply(d,
                         error_of(d, 400,
                                  "Invalid multipart/form-data body: the upload needs the "
                                  "fields 'purpose' and 'file'."),
                         rid);
    const form_part* purpose = nullptr;
    const form_part* file = nullptr;
    for (const auto& p : *parts) {
      if (p.name == "purpose" && !purpose)
        purpose = &p;
      else if (p.name == "file" && p.filename && !file)
        file = &p;
    }
    auto missing = [&](const char* what) {
      return error_reply(d,
                         error_of(d, 400,
                                  std::string("Missing required parameter: '") + what + "'.", what,
                                  "missing_required_parameter"),
                         rid);
    };
    if (!purpose)
      return missing("purpose");
    if (!file)
      return missing("file");
    static constexpr std::string_view purposes[] = {"assistants", "batch",     "fine-tune",
                                                    "vision",     "user_data", "evals"};
    auto purpose_text = std::string(trim(purpose->data));
    if (std::find(std::begin(purposes), std::end(purposes), purpose_text) == std::end(purposes))
      return error_reply(d,
                         error_of(d, 400,
                                  "Invalid value: '" + purpose_text
                                      + "'. Supported values are: 'assistants', 'batch', "
                                        "'fine-tune', 'vision', 'user_data' and 'evals'.",
                                  "purpose", "invalid_value"),
                         rid);
    if (purpose_text == "batch" && !file->filename->ends_with(".jsonl"))
      return error_reply(
          d, error_of(d, 400, "Invalid file format for Batch API. Must be .jsonl", "file"), rid);
    openai_file f;
    f.filename = *file->filename;
    f.purpose = purpose_text;
    f.created_at = unix_seconds(unix_ms_now());
    f.data = std::make_shared<const std::string>(file->data);
    auto bytes = f.data->size();
    std::lock_guard<std::mutex> lock{mu};
    do
      f.id = "file-" + random_chars(22, base62);
    while (files.contains(f.id));
    auto body = file_json(f, bytes);
    files.emplace(f.id, std::move(f));
    return json_reply(d, body, rid);
  }

  http_response no_such_file(const std::string& id, const std::string& rid) {
    return error_reply(dialect::openai,
                       error_of(dialect::openai, 404, "No such File object: " + id, "id"), rid);
  }

  http_response file(const std::string& id, bool content, const std::string& rid) {
    constexpr auto d = dialect::openai;
    openai_file f;
    std::shared_ptr<const item_set> set;
    openai_state state;
    timing t;
    int64_t created_ms = 0;
    {
      std::lock_guard<std::mutex> lock{mu};
      auto it = files.find(id);
      if (it == files.end())
        return no_such_file(id, rid);
      f = it->second;
      if (!f.data) {
        const auto& b = *openai_index.at(f.batch_id);
        state = state_of(b, clock_now());
        set = b.set;
        t = b.t;
        created_ms = b.created_ms;
      }
    }
    std::string bytes;
    if (f.data) {
      if (!content)
        return json_reply(d, file_json(f, f.data->size()), rid);
      bytes = *f.data;
    } else {
      // A generated file exists once its batch ended with at least one line for it.
      if (!(f.errors ? state.has_errors : state.has_output))
        return no_such_file(id, rid);
      bytes = render_openai_file(*set, t, created_ms, state.v.done,
                                 state.v.phase == oa_phase::cancelled, f.errors);
      if (!content)
        return json_reply(d, file_json(f, bytes.size()), rid);
    }
    http_response r;
    r.content_type = "application/octet-stream";
    r.body = std::move(bytes);
    add_id_header(d, rid, r);
    return r;
  }

  http_response create_openai(const http_request& req, const std::string& rid) {
    constexpr auto d = dialect::openai;
    auto bad = [&](std::string message, std::string param = {}, std::string code = {}) {
      return error_reply(d, error_of(d, 400, std::move(message), std::move(param), std::move(code)),
                         rid);
    };
    auto doc = parse_json(req.body);
    if (!doc || !doc->is_object())
      return bad("We could not parse the JSON body of your request. (HINT: This likely means "
                 "you aren't using your HTTP library correctly. The OpenAI API expects a JSON "
                 "payload, but what was sent was not valid JSON.)");
    const auto& body = doc->get_object();
    for (const char* key : {"input_file_id", "endpoint", "completion_window"}) {
      const auto* v = body.if_contains(key);
      if (!v || v->is_null())
        return bad(std::string("Missing required parameter: '") + key + "'.", key,
                   "missing_required_parameter");
      if (!v->is_string())
        return bad(std::string("Invalid type for '") + key
                       + "': expected a string, but got a different type instead.",
                   key, "invalid_type");
    }
    auto input_file_id = std::string(mock_wire::view(body.at("input_file_id").get_string()));
    auto endpoint = mock_wire::view(body.at("endpoint").get_string());
    auto window = mock_wire::view(body.at("completion_window").get_string());
    if (endpoint != chat_endpoint)
      return bad("Invalid value: '" + std::string(endpoint)
                     + "'. The mock provider supports only '/v1/chat/completions'.",
                 "endpoint", "invalid_value");
    if (window != "24h")
      return bad("Invalid value: '" + std::string(window) + "'. Supported values are: '24h'.",
                 "completion_window", "invalid_value");
    json::value metadata = nullptr;
    if (const auto* m = body.if_contains("metadata"); m && !m->is_null()) {
      if (auto e = check_metadata(*m))
        return bad(*e, "metadata");
      metadata = *m;
    }
    std::shared_ptr<const std::string> data;
    mock_batch_options s;
    uint64_t number = 0;
    bool forced = false;
    auto b = std::make_shared<openai_batch>();
    {
      std::lock_guard<std::mutex> lock{mu};
      auto it = files.find(input_file_id);
      if (it == files.end())
        return error_reply(
            d, error_of(d, 404, "No such File object: " + input_file_id, "input_file_id"), rid);
      if (it->second.purpose != "batch")
        return bad("The input file must have purpose 'batch', not '" + it->second.purpose + "'.",
                   "input_file_id");
      data = it->second.data;
      s = settings;
      number = ++ordinal;
      forced = settings.fail_next_openai_batches > 0;
      if (forced)
        settings.fail_next_openai_batches -= 1;
      do
        b->id = "batch_" + random_chars(32, hex);
      while (openai_index.contains(b->id));
      b->output_file_id = "file-" + random_chars(22, base62);
      b->error_file_id = "file-" + random_chars(22, base62);
    }
    // The Batch API validates while the batch is `validating`; the mock does the work now
    // and shows the verdict when that phase ends.
    set_builder builder{seed};
    b->errors = check_file(*data, builder, b->model);
    if (b->errors.empty() && forced)
      b->errors.push_back(
          line_error("token_limit_exceeded", std::nullopt,
                     "Enqueued token limit reached for " + b->model
                         + " in organization org-mock. Limit: 90,000 enqueued tokens. Please try "
                           "submitting an equal or smaller batch later."));
    size_t items = builder.size();
    if (b->errors.empty())
      b->set = builder.finish(number, stable_hash(b->id), s);
    b->input_file_id = input_file_id;
    b->metadata = std::move(metadata);
    b->t = timing_of(s);
    b->created_ms = unix_ms_now();
    b->created = clock_now();
    auto answer = openai_batch_json(*b, state_of(*b, b->created));
    std::lock_guard<std::mutex> lock{mu};
    for (bool errors : {false, true}) {
      openai_file f;
      f.id = errors ? b->error_file_id : b->output_file_id;
      f.filename = "batch_" + b->id.substr(6) + (errors ? "_error.jsonl" : "_output.jsonl");
      f.purpose = "batch_output";
      f.created_at = unix_seconds(b->created_ms);
      f.batch_id = b->id;
      f.errors = errors;
      files.emplace(f.id, std::move(f));
    }
    openai_list.push_back(b);
    openai_index.emplace(b->id, b);
    counters.batches_created["openai"] += 1;
    counters.items_submitted["openai"] += items;
    return json_reply(d, answer, rid);
  }

  static std::optional<std::string> check_metadata(const json::value& m) {
    const auto* o = m.if_object();
    if (!o)
      return "Invalid type for 'metadata': expected an object, but got a different type "
             "instead.";
    if (o->size() > 16)
      return "Invalid 'metadata': too many properties. Expected an object with at most 16 "
             "properties, but got an object with "
             + std::to_string(o->size()) + " properties instead.";
    for (const auto& [k, v] : *o) {
      if (k.size() > 64)
        return "Invalid 'metadata': keys may hold at most 64 characters.";
      if (!v.is_string())
        return "Invalid type for 'metadata." + std::string(k)
               + "': expected a string, but got a different type instead.";
      if (v.get_string().size() > 512)
        return "Invalid 'metadata." + std::string(k)
               + "': string too long. Expected a string with maximum length 512.";
    }
    return std::nullopt;
  }

  http_response get_or_cancel_openai(const std::string& id, bool cancel, const std::string& rid) {
    constexpr auto d = dialect::openai;
    std::lock_guard<std::mutex> lock{mu};
    auto it = openai_index.find(id);
    if (it == openai_index.end())
      return error_reply(d, error_of(d, 404, "No batch found with id '" + id + "'.", "id"), rid);
    auto& b = *it->second;
    auto now = clock_now();
    auto phase = view_of(b, now).phase;
    if (cancel && (phase == oa_phase::validating || phase == oa_phase::in_progress)) {
      b.cancel_at = std::chrono::duration_cast<milliseconds>(now - b.created);
    } else if (cancel && phase != oa_phase::cancelling && phase != oa_phase::cancelled) {
      return error_reply(
          d,
          error_of(d, 409,
                   "Cannot cancel a batch with status '" + std::string(to_string(phase)) + "'."),
          rid);
    }
    return json_reply(d, openai_batch_json(b, state_of(b, now)), rid);
  }

  http_response list_openai(const http_request& req, const std::string& rid) {
    constexpr auto d = dialect::openai;
    auto limit = limit_param(req.query, 20, 1, 100);
    if (!limit)
      return error_reply(d,
                         error_of(d, 400, "Invalid 'limit': expected an integer between 1 and 100.",
                                  "limit", "invalid_value"),
                         rid);
    auto after = mock_wire::query_param(req.query, "after");
    std::lock_guard<std::mutex> lock{mu};
    // Newest first: position i of the listing is openai_list[size - 1 - i].
    size_t start = 0;
    size_t size = openai_list.size();
    if (after) {
      start = size;
      for (size_t i = 0; i < size; ++i)
        if (openai_list[size - 1 - i]->id == *after)
          start = i + 1;
    }
    auto now = clock_now();
    json::array data;
    for (size_t i = start; i < size && data.size() < *limit; ++i) {
      const auto& b = *openai_list[size - 1 - i];
      data.push_back(openai_batch_json(b, state_of(b, now)));
    }
    bool more = start + data.size() < size;
    json::value first = nullptr, last = nullptr;
    if (!data.empty()) {
      first = data.front().at("id");
      last = data.back().at("id");
    }
    return json_reply(d,
                      json::object{{"object", "list"},
                                   {"data", std::move(data)},
                                   {"first_id", first},
                                   {"last_id", last},
                                   {"has_more", more}},
                      rid);
  }

  // -- Anthropic -----------------------------------------------------------------------------

  http_response anthropic_call(const http_request& req, const route& r, const std::string& rid) {
    constexpr auto d = dialect::anthropic;
    if (r.endpoint == "unknown")
      return error_reply(d, error_of(d, 404, "Not Found"), rid);
    if (auto e = mock_wire::check_auth(d, req, api_key))
      return error_reply(d, *e, rid);
    if (!mock_wire::header(req, "anthropic-version"))
      return error_reply(d, error_of(d, 400, "anthropic-version: header is required"), rid);
    if (r.endpoint == "batch_create")
      return create_anthropic(req, rid);
    if (r.endpoint == "batch_list")
      return list_anthropic(req, rid);
    if (r.endpoint == "results")
      return results(r.id, rid);
    return get_or_cancel_anthropic(req, r.id, r.endpoint == "batch_cancel", rid);
  }

  std::string base_url(const http_request& req) const {
    const auto* host = mock_wire::header(req, "host");
    if (!host || host->empty())
      return {}; // a path on the same origin; lps's client accepts that too
    return std::string(tls ? "https://" : "http://") + *host;
  }

  http_response create_anthropic(const http_request& req, const std::string& rid) {
    constexpr auto d = dialect::anthropic;
    if (req.body.size() > anthropic_max_bytes)
      return error_reply(
          d, error_of(d, 413, "Request exceeds the maximum allowed number of bytes."), rid);
    set_builder builder{seed};
    {
      // The DOM of a large body lives in one arena, freed at once.
      json::monotonic_resource arena;
      boost::system::error_code ec;
      auto doc = json::parse(req.body, ec, &arena);
      if (ec || !doc.is_object())
        return error_reply(
            d, error_of(d, 400, "There was an error parsing the body: expected a JSON object."),
            rid);
      if (auto e = check_requests(doc.get_object(), builder))
        return error_reply(d, error_of(d, 400, *e), rid);
    }
    auto b = std::make_shared<anthropic_batch>();
    mock_batch_options s;
    uint64_t number = 0;
    {
      std::lock_guard<std::mutex> lock{mu};
      s = settings;
      number = ++ordinal;
      do
        b->id = "msgbatch_01" + random_chars(22, base62);
      while (anthropic_index.contains(b->id));
    }
    size_t items = builder.size();
    b->set = builder.finish(number, stable_hash(b->id), s);
    b->t = timing_of(s);
    b->created_ms = unix_ms_now();
    b->created = clock_now();
    auto answer = anthropic_batch_json(*b, view_of(*b, b->created), base_url(req));
    std::lock_guard<std::mutex> lock{mu};
    anthropic_list.push_back(b);
    anthropic_index.emplace(b->id, b);
    counters.batches_created["anthropic"] += 1;
    counters.items_submitted["anthropic"] += items;
    return json_reply(d, answer, rid);
  }

  http_response no_such_batch(const std::string& id, const std::string& rid) {
    return error_reply(dialect::anthropic,
                       error_of(dialect::anthropic, 404, "Message batch '" + id + "' not found."),
                       rid);
  }

  http_response get_or_cancel_anthropic(const http_request& req, const std::string& id, bool cancel,
                                        const std::string& rid) {
    constexpr auto d = dialect::anthropic;
    std::lock_guard<std::mutex> lock{mu};
    auto it = anthropic_index.find(id);
    if (it == anthropic_index.end())
      return no_such_batch(id, rid);
    auto& b = *it->second;
    auto now = clock_now();
    auto v = view_of(b, now);
    if (cancel && v.phase == an_phase::in_progress) {
      b.cancel_at = std::chrono::duration_cast<milliseconds>(now - b.created);
      v = view_of(b, now);
    } else if (cancel && v.phase == an_phase::ended) {
      return error_reply(
          d, error_of(d, 400, "Message batch '" + id + "' has ended and cannot be canceled."), rid);
    }
    return json_reply(d, anthropic_batch_json(b, v, base_url(req)), rid);
  }

  http_response list_anthropic(const http_request& req, const std::string& rid) {
    constexpr auto d = dialect::anthropic;
    auto limit = limit_param(req.query, 20, 1, 1000);
    if (!limit)
      return error_reply(d, error_of(d, 400, "limit: Input should be between 1 and 1000"), rid);
    auto after = mock_wire::query_param(req.query, "after_id");
    auto before = mock_wire::query_param(req.query, "before_id");
    std::lock_guard<std::mutex> lock{mu};
    // Newest first: position i of the listing is anthropic_list[size - 1 - i].
    size_t size = anthropic_list.size();
    auto position = [&](const std::string& id) {
      for (size_t i = 0; i < size; ++i)
        if (anthropic_list[size - 1 - i]->id == id)
          return i;
      return size;
    };
    size_t start = 0, stop = size;
    if (after)
      start = std::min(size, position(*after) + 1);
    if (before) {
      stop = position(*before);
      start = stop > *limit ? stop - *limit : 0;
    }
    auto now = clock_now();
    json::array data;
    for (size_t i = start; i < stop && data.size() < *limit; ++i) {
      const auto& b = *anthropic_list[size - 1 - i];
      data.push_back(anthropic_batch_json(b, view_of(b, now), base_url(req)));
    }
    bool more = before ? start > 0 : start + data.size() < size;
    json::value first = nullptr, last = nullptr;
    if (!data.empty()) {
      first = data.front().at("id");
      last = data.back().at("id");
    }
    return json_reply(
        d,
        json::object{
            {"data", std::move(data)}, {"has_more", more}, {"first_id", first}, {"last_id", last}},
        rid);
  }

  http_response results(const std::string& id, const std::string& rid) {
    constexpr auto d = dialect::anthropic;
    std::shared_ptr<const item_set> set;
    anthropic_view v;
    bool cancelled = false;
    {
      std::lock_guard<std::mutex> lock{mu};
      auto it = anthropic_index.find(id);
      if (it == anthropic_index.end())
        return no_such_batch(id, rid);
      const auto& b = *it->second;
      v = view_of(b, clock_now());
      if (v.phase != an_phase::ended)
        return error_reply(d,
                           error_of(d, 404,
                                    "Results for message batch '" + id
                                        + "' are not available until processing has ended."),
                           rid);
      set = b.set;
      cancelled = b.cancel_at.has_value();
    }
    http_response r;
    r.content_type = "application/x-jsonl";
    r.body = render_anthropic_results(*set, v.done, cancelled);
    add_id_header(d, rid, r);
    return r;
  }
};

service::service() : impl_(std::make_unique<impl>()) {}

service::~service() = default;

void service::start(const mock_provider_options& options) {
  impl_->start_options = options;
  impl_->seed = options.seed;
  impl_->api_key = options.api_key;
  impl_->tls = !options.tls_cert_file.empty();
  impl_->clear();
}

http_response service::handle(const http_request& request) {
  return impl_->handle(request);
}

mock_batch_stats service::stats() const {
  std::lock_guard<std::mutex> lock{impl_->mu};
  return impl_->counters;
}

void service::reset() {
  impl_->clear();
}

mock_batch_options service::options() const {
  std::lock_guard<std::mutex> lock{impl_->mu};
  return impl_->settings;
}

std::optional<std::string> service::set_options(const mock_batch_options& options) {
  if (auto e = check_options(options))
    return e;
  std::lock_guard<std::mutex> lock{impl_->mu};
  impl_->settings = options;
  return std::nullopt;
}

std::optional<std::string> service::configure(std::string_view text) {
  auto doc = parse_json(text);
  if (!doc || !doc->is_object())
    return "the body must be a JSON object of batch settings";
  std::lock_guard<std::mutex> lock{impl_->mu};
  auto next = impl_->settings;
  for (const auto& [k, v] : doc->get_object())
    if (auto e = apply_setting(std::string(k), v, next))
      return e;
  if (auto e = check_options(next))
    return e;
  impl_->settings = next;
  return std::nullopt;
}

} // namespace lps::mock_batch
