#include "tools/mock_provider/batch_common.hpp"

#include <algorithm>
#include <random>
#include <cstdio>
#include <ctime>

namespace lps::mock_batch {

// -- small helpers ---------------------------------------------------------------------------

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

// -- items -----------------------------------------------------------------------------------

void set_builder::add(std::string custom_id, const mock_wire::parsed_call& call) {
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

std::shared_ptr<const item_set> set_builder::finish(uint64_t ordinal, uint64_t key,
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

mock_wire::judgement expand(const item_set& s, const verdict_ref& v) {
  mock_wire::judgement j;
  j.winner = s.strings[v.winner];
  j.justification = s.strings[v.justification];
  j.confidence = v.confidence;
  return j;
}

id_stream ids_of(const item_set& s, size_t index) {
  return {s.key ^ ((static_cast<uint64_t>(index) + 1) * 0xD1B54A32D192ED03ull)};
}

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

timing timing_of(const mock_batch_options& o) {
  return {o.validating, o.processing, o.processing / 10, o.cancel};
}

size_t processed(const timing& t, size_t n, milliseconds at) {
  if (at < t.validating)
    return 0;
  if (t.processing.count() <= 0 || at >= t.validating + t.processing)
    return n;
  auto f =
      static_cast<double>((at - t.validating).count()) / static_cast<double>(t.processing.count());
  return std::min(n, static_cast<size_t>(f * static_cast<double>(n)));
}

int64_t finished_at(const timing& t, size_t rank, size_t n) {
  auto share = static_cast<double>(rank + 1) / static_cast<double>(std::max<size_t>(n, 1));
  return t.validating.count()
         + static_cast<int64_t>(share * static_cast<double>(t.processing.count()));
}

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

fate fate_of(const item& it, size_t rank, size_t done, bool cancelled) {
  if (rank < done && it.planned == plan::succeed)
    return fate::succeeded;
  if (rank < done && it.planned == plan::fail)
    return fate::errored;
  return cancelled ? fate::cancelled : fate::expired;
}

// -- errors and answers ----------------------------------------------------------------------

provider_error error_of(dialect d, unsigned status, std::string message, std::string param,
                        std::string code) {
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

namespace {

std::vector<std::string_view> split_path(std::string_view rest) {
  std::vector<std::string_view> parts;
  while (!rest.empty()) {
    auto slash = rest.find('/');
    parts.push_back(rest.substr(0, slash));
    rest = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);
  }
  return parts;
}

} // namespace

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

} // namespace lps::mock_batch
