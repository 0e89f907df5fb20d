// The mock's Anthropic Message Batches API: batch creation with per-request checks, phases
// over time, cancel, list and the results file (docs/mock-provider.md, "Batch APIs").

#include "tools/mock_provider/batch_service.hpp"

#include <algorithm>
#include <mutex>
#include <unordered_set>

namespace lps::mock_batch {

namespace {

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

} // namespace

// -- the calls (service::impl) ---------------------------------------------------------------

http_response service::impl::anthropic_call(const http_request& req, const route& r,
                                            const std::string& rid) {
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

std::string service::impl::base_url(const http_request& req) const {
  const auto* host = mock_wire::header(req, "host");
  if (!host || host->empty())
    return {}; // a path on the same origin; lps's client accepts that too
  return std::string(tls ? "https://" : "http://") + *host;
}

http_response service::impl::create_anthropic(const http_request& req, const std::string& rid) {
  constexpr auto d = dialect::anthropic;
  if (req.body.size() > anthropic_max_bytes)
    return error_reply(d, error_of(d, 413, "Request exceeds the maximum allowed number of bytes."),
                       rid);
  set_builder builder{seed};
  {
    // The DOM of a large body lives in one arena, freed at once.
    json::monotonic_resource arena;
    boost::system::error_code ec;
    auto doc = json::parse(req.body, ec, &arena);
    if (ec || !doc.is_object())
      return error_reply(
          d, error_of(d, 400, "There was an error parsing the body: expected a JSON object."), rid);
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

http_response service::impl::no_such_batch(const std::string& id, const std::string& rid) {
  return error_reply(dialect::anthropic,
                     error_of(dialect::anthropic, 404, "Message batch '" + id + "' not found."),
                     rid);
}

http_response service::impl::get_or_cancel_anthropic(const http_request& req, const std::string& id,
                                                     bool cancel, const std::string& rid) {
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

http_response service::impl::list_anthropic(const http_request& req, const std::string& rid) {
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

http_response service::impl::results(const std::string& id, const std::string& rid) {
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

} // namespace lps::mock_batch
