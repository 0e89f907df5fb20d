// The mock's OpenAI Files + Batch API: uploads, batches validating their input file, their
// phases over time, output and error files (docs/mock-provider.md, "Batch APIs").

#include "tools/mock_provider/batch_service.hpp"
#include "tools/mock_provider/multipart.hpp"

#include <algorithm>
#include <iterator>
#include <mutex>
#include <unordered_set>

namespace lps::mock_batch {

namespace {

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

} // namespace

// -- the calls (service::impl) ---------------------------------------------------------------

http_response service::impl::openai_call(const http_request& req, const route& r,
                                         const std::string& rid) {
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

http_response service::impl::upload(const http_request& req, const std::string& rid) {
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
                       error_of(d, 400, std::string("Missing required parameter: '") + what + "'.",
                                what, "missing_required_parameter"),
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

http_response service::impl::no_such_file(const std::string& id, const std::string& rid) {
  return error_reply(dialect::openai,
                     error_of(dialect::openai, 404, "No such File object: " + id, "id"), rid);
}

http_response service::impl::file(const std::string& id, bool content, const std::string& rid) {
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

http_response service::impl::create_openai(const http_request& req, const std::string& rid) {
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

std::optional<std::string> service::impl::check_metadata(const json::value& m) {
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

http_response service::impl::get_or_cancel_openai(const std::string& id, bool cancel,
                                                  const std::string& rid) {
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

http_response service::impl::list_openai(const http_request& req, const std::string& rid) {
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

} // namespace lps::mock_batch
