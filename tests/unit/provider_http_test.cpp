// The OpenAI provider: the wire format as pure functions, the actor against a fake HTTP
// transport under the deterministic test coordinator, and the actor against the in-process
// mock provider server over real HTTP (which checks bodies the way the real API does).

#include "actors/metrics.hpp"
#include "actors/provider_http.hpp"
#include "actors/providers/anthropic_format.hpp"
#include "actors/providers/gemini_format.hpp"
#include "actors/providers/openai_format.hpp"
#include "actors/providers/wire_common.hpp"
#include "tools/mock_provider/mock_provider_server.hpp"

#include "fixtures/deterministic.hpp"
#include "fixtures/test_ca.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <algorithm>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace lps;
namespace json = boost::json;

namespace {

comparison_request make_request(std::string prompt) {
  comparison_request req;
  req.queue_id = "q-" + prompt;
  req.correlation_id = "c-" + prompt;
  req.user_prompt = std::move(prompt);
  req.prompt_sha256 = "sha";
  return req;
}

json::object parse_object(const std::string& text) {
  return json::parse(text).as_object();
}

/// A chat/completions 200 body whose message content is `content`.
std::string completion(const std::string& content, const std::string& finish = "stop") {
  json::object message{{"role", "assistant"}, {"content", content}, {"refusal", nullptr}};
  json::object choice{{"index", 0}, {"message", message}, {"finish_reason", finish}};
  json::object usage{{"prompt_tokens", 120},
                     {"completion_tokens", 30},
                     {"total_tokens", 150},
                     {"prompt_tokens_details", json::object{{"cached_tokens", 64}}}};
  json::object body{{"id", "chatcmpl-1"}, {"choices", json::array{choice}}, {"usage", usage}};
  return json::serialize(body);
}

std::string verdict(const std::string& winner, const std::string& justification, double conf) {
  return json::serialize(
      json::object{{"winner", winner}, {"justification", justification}, {"confidence", conf}});
}

std::string error_body(const std::string& type, const std::string& code) {
  return json::serialize(json::object{
      {"error", json::object{{"message", "details"}, {"type", type}, {"code", code}}}});
}

} // namespace

// -- format: request --------------------------------------------------------------------

TEST_CASE("openai request for a gpt-5 model uses max_completion_tokens and no temperature") {
  auto req = make_request("Compare these essays");
  req.overrides.has_temperature = true;
  req.overrides.temperature = 0.3;
  req.overrides.reasoning_effort = "low";
  req.overrides.output_verbosity = "high";
  auto body = parse_object(build_openai_request(req, "gpt-5.1", openai_model_flags_for("gpt-5.1")));
  CHECK(body["model"] == "gpt-5.1");
  CHECK(body["max_completion_tokens"] == wire::default_max_tokens);
  CHECK_FALSE(body.contains("max_tokens"));
  CHECK_FALSE(body.contains("temperature"));
  CHECK(body["reasoning_effort"] == "low");
  CHECK(body["verbosity"] == "high");
  auto& messages = body["messages"].as_array();
  REQUIRE(messages.size() == 2);
  CHECK(messages[0].as_object().at("role") == "system");
  CHECK(messages[0].as_object().at("content") == wire::default_system_prompt);
  CHECK(messages[1].as_object().at("role") == "user");
  CHECK(messages[1].as_object().at("content") == "Compare these essays");
  auto& format = body["response_format"].as_object();
  CHECK(format.at("type") == "json_schema");
  auto& js = format.at("json_schema").as_object();
  CHECK(js.at("name") == "comparison_result");
  CHECK(js.at("strict") == true);
  auto& schema = js.at("schema").as_object();
  CHECK(schema.at("additionalProperties") == false);
  CHECK(schema.at("required") == json::array{"winner", "justification", "confidence"});
  CHECK(schema.at("properties").as_object().at("winner").as_object().at("enum")
        == json::array{"Essay A", "Essay B"});
}

TEST_CASE("openai request for gpt-4o uses max_tokens and a temperature") {
  auto req = make_request("Compare");
  req.overrides.has_system_prompt = true;
  req.overrides.system_prompt = "Custom judge";
  req.overrides.max_tokens = 900;
  req.overrides.reasoning_effort = "low";
  auto body = parse_object(build_openai_request(req, "gpt-4o", openai_model_flags_for("gpt-4o")));
  CHECK(body["max_tokens"] == 900);
  CHECK_FALSE(body.contains("max_completion_tokens"));
  CHECK(body["temperature"].as_double() == Approx(0.1));
  // Reasoning controls are GPT-5 only: older models reject them.
  CHECK_FALSE(body.contains("reasoning_effort"));
  CHECK(body["messages"].as_array()[0].as_object().at("content") == "Custom judge");
  req.overrides.has_temperature = true;
  req.overrides.temperature = 0.7;
  body = parse_object(build_openai_request(req, "gpt-4o", openai_model_flags_for("gpt-4o")));
  CHECK(body["temperature"].as_double() == Approx(0.7));
}

// -- format: response -------------------------------------------------------------------

TEST_CASE("openai success is parsed with usage and cached tokens") {
  auto r = parse_openai_response(200, completion(verdict("Essay B", "B argues better", 4)), {});
  REQUIRE(r.success);
  CHECK(r.verdict.winner == "Essay B");
  CHECK(r.verdict.justification == "B argues better");
  CHECK(r.verdict.confidence == 4.0);
  CHECK(r.usage.prompt_tokens == 120);
  CHECK(r.usage.completion_tokens == 30);
  CHECK(r.usage.total_tokens == 150);
  CHECK(r.usage.cache_read_input_tokens == 64);
  CHECK(r.error_code.empty());
}

TEST_CASE("openai 429 rate limit is retryable with Retry-After") {
  auto r = parse_openai_response(429, error_body("requests", "rate_limit_exceeded"),
                                 {{"retry-after", "2"}});
  CHECK_FALSE(r.success);
  CHECK(r.error_code == "RATE_LIMIT");
  CHECK(r.retryable);
  CHECK(r.http_status == 429);
  CHECK(r.retry_after == std::chrono::milliseconds{2000});
}

TEST_CASE("openai 429 insufficient_quota is permanent QUOTA_EXCEEDED") {
  auto r = parse_openai_response(429, error_body("insufficient_quota", "insufficient_quota"), {});
  CHECK_FALSE(r.success);
  CHECK(r.error_code == "QUOTA_EXCEEDED");
  CHECK_FALSE(r.retryable);
}

TEST_CASE("openai 500 is retryable and 401 is a permanent authentication error") {
  auto r500 = parse_openai_response(500, error_body("server_error", ""), {});
  CHECK(r500.error_code == "EXTERNAL_SERVICE_ERROR");
  CHECK(r500.retryable);
  CHECK(r500.http_status == 500);
  // A non-JSON error body is still classified by its status.
  auto r500_html = parse_openai_response(502, "<html>bad gateway</html>", {});
  CHECK(r500_html.retryable);
  auto r401 =
      parse_openai_response(401, error_body("invalid_request_error", "invalid_api_key"), {});
  CHECK(r401.error_code == "AUTHENTICATION_ERROR");
  CHECK_FALSE(r401.retryable);
}

TEST_CASE("openai truncated answer is a PARSING_ERROR") {
  auto r = parse_openai_response(200, completion("{\"winner\":\"Essay A\"", "length"), {});
  CHECK_FALSE(r.success);
  CHECK(r.error_code == "PARSING_ERROR");
  CHECK(r.error_message.find("truncated") != std::string::npos);
}

TEST_CASE("openai malformed content and body are PARSING_ERROR") {
  CHECK(parse_openai_response(200, completion("not json at all"), {}).error_code
        == "PARSING_ERROR");
  CHECK(parse_openai_response(200, "{\"choices\":", {}).error_code == "PARSING_ERROR");
  CHECK(parse_openai_response(200, "{\"choices\":[]}", {}).error_code == "PARSING_ERROR");
}

TEST_CASE("openai winner and confidence are never guessed") {
  for (const char* winner : {"A", "essay a", "Essay C", ""})
    CHECK(parse_openai_response(200, completion(verdict(winner, "x", 3)), {}).error_code
          == "INVALID_RESPONSE");
  CHECK(parse_openai_response(200, completion(verdict("Essay A", "x", 0.9)), {}).error_code
        == "INVALID_RESPONSE");
  CHECK(parse_openai_response(200, completion(verdict("Essay A", "x", 5.5)), {}).error_code
        == "INVALID_RESPONSE");
  CHECK(
      parse_openai_response(200, completion("{\"winner\":\"Essay A\",\"justification\":\"x\"}"), {})
          .error_code
      == "INVALID_RESPONSE");
  auto ok = parse_openai_response(200, completion(verdict("Essay A", "x", 1)), {});
  CHECK(ok.success);
  CHECK(ok.verdict.confidence == 1.0);
}

TEST_CASE("openai long justification is cut to 500 characters on a UTF-8 boundary") {
  std::string text;
  for (int i = 0; i < 600; ++i)
    text += "\xC3\xA9"; // é: two bytes, one character
  auto r = parse_openai_response(200, completion(verdict("Essay A", text, 3)), {});
  REQUIRE(r.success);
  CHECK(r.verdict.justification.size() == 1000);
  CHECK(r.verdict.justification == text.substr(0, 1000));
  CHECK(wire::cut_utf8("abc", 500) == "abc");
  CHECK(wire::cut_utf8("a\xE2\x82\xAC"
                       "b",
                       2)
        == "a\xE2\x82\xAC");
}

// -- actor ------------------------------------------------------------------------------

namespace {

/// Answers each call with `answer(request)`, inline or from its own thread.
struct fake_transport : http_transport {
  std::function<http_client_response(const http_client_request&)> answer;
  bool threaded = false;
  std::mutex mtx;
  std::vector<http_client_request> sent;
  std::vector<std::thread> threads;

  void send(http_client_request request, http_client_callback done) override {
    auto resp = answer(request);
    {
      std::lock_guard<std::mutex> guard{mtx};
      sent.push_back(std::move(request));
    }
    if (threaded)
      threads.emplace_back([resp, done] { done(resp); });
    else
      done(resp);
  }

  void join() {
    for (auto& t : threads)
      t.join();
    threads.clear();
  }

  ~fake_transport() override {
    join();
  }
};

/// Item i succeeds with winner A or B, except prompts containing "fail" (500) or "garbage".
http_client_response scripted_answer(const http_client_request& req) {
  http_client_response resp;
  if (req.body.find("fail") != std::string::npos) {
    resp.status = 500;
    resp.body = error_body("server_error", "");
  } else if (req.body.find("garbage") != std::string::npos) {
    resp.status = 200;
    resp.body = completion("I think A is better");
  } else if (req.body.find("down") != std::string::npos) {
    resp.error = transport_error::connect;
    resp.error_message = "connection refused";
  } else {
    resp.status = 200;
    bool b = req.body.find("pick-b") != std::string::npos;
    resp.body = completion(verdict(b ? "Essay B" : "Essay A", "reason", 4));
  }
  return resp;
}

bundle make_bundle(const std::vector<std::string>& prompts) {
  bundle b{"b1", "openai", "gpt-5.1", "serial_bundle", {}};
  for (const auto& p : prompts) {
    queued_request q;
    q.request = make_request(p);
    b.items.push_back(
        {q,
         {"openai", "gpt-5.1", "serial_bundle", "b1", static_cast<uint32_t>(prompts.size()), {}}});
  }
  return b;
}

provider_http_config test_config() {
  provider_http_config cfg;
  cfg.provider = "openai";
  cfg.target.base_url = "http://127.0.0.1:9/v1";
  cfg.target.api_key = "sk-secret-test-key";
  cfg.default_model = "gpt-5.1";
  return cfg;
}

std::shared_ptr<const provider_wire> openai() {
  return std::make_shared<openai_wire>();
}

} // namespace

TEST_CASE("openai actor answers one outcome per item in order and isolates failures") {
  fake_transport http;
  http.answer = scripted_answer;
  test::deterministic_fixture fx;
  auto provider = fx.spawn(provider_http, test_config(), openai(), &http, metrics_actor{});
  auto b = make_bundle({"one", "pick-b two", "fail three", "garbage four", "down five", "six"});
  auto outcomes = fx.request<std::vector<comparison_outcome>>(provider, atom::process_v, b);
  REQUIRE(outcomes);
  REQUIRE(outcomes->size() == 6);
  for (size_t i = 0; i < 6; ++i) {
    const auto& o = (*outcomes)[i];
    CHECK(o.queue_id == b.items[i].entry.request.queue_id);
    CHECK(o.provider == "openai");
    CHECK(o.model == "gpt-5.1");
    CHECK(o.enrichment == b.items[i].enrichment);
    CHECK(o.error_message.find("sk-secret") == std::string::npos);
  }
  const auto& o = *outcomes;
  CHECK((o[0].success && o[0].winner == "Essay A"));
  CHECK((o[1].success && o[1].winner == "Essay B" && o[1].usage.total_tokens == 150));
  CHECK((!o[2].success && o[2].error_code == "EXTERNAL_SERVICE_ERROR" && o[2].retryable));
  CHECK(o[2].http_status == 500);
  CHECK((!o[3].success && o[3].error_code == "PARSING_ERROR"));
  CHECK((!o[4].success && o[4].error_code == "CONNECTION_ERROR" && o[4].retryable));
  CHECK((o[5].success && o[5].winner == "Essay A"));
  // Every call went to chat/completions with the key as a Bearer token.
  REQUIRE(http.sent.size() == 6);
  for (const auto& req : http.sent) {
    CHECK(req.url == "http://127.0.0.1:9/v1/chat/completions");
    CHECK(
        std::find(req.headers.begin(), req.headers.end(),
                  std::pair<std::string, std::string>{"Authorization", "Bearer sk-secret-test-key"})
        != req.headers.end());
  }
  auto& st = fx.state_of<provider_http_state>(provider);
  CHECK(st.bundles_total == 1);
  CHECK(st.items_total == 6);
  CHECK(st.http_calls_total == 6);
  CHECK(st.errors_total == 3);
  CHECK(st.https.empty());
  CHECK(st.calls.empty());
}

TEST_CASE("openai actor starts every item before any answer arrives") {
  fake_transport http;
  http.answer = scripted_answer;
  http.threaded = true;
  test::deterministic_fixture fx;
  auto provider = fx.spawn(provider_http, test_config(), openai(), &http, metrics_actor{});
  auto b = make_bundle({"one", "fail two", "pick-b three"});
  auto rh = fx.self->request(provider, caf::infinite, atom::process_v, b);
  fx.sched.run();
  // All three calls were sent in the one process message: they run concurrently.
  CHECK(http.sent.size() == 3);
  http.join();
  fx.sched.run();
  std::vector<comparison_outcome> outcomes;
  rh.receive([&](std::vector<comparison_outcome>& xs) { outcomes = std::move(xs); },
             [&](caf::error& err) { FAIL(caf::to_string(err)); });
  REQUIRE(outcomes.size() == 3);
  CHECK(outcomes[0].success);
  CHECK((!outcomes[1].success && outcomes[1].retryable));
  CHECK((outcomes[2].success && outcomes[2].winner == "Essay B"));
}

TEST_CASE("openai actor status reports figures and never the key") {
  fake_transport http;
  http.answer = scripted_answer;
  test::deterministic_fixture fx;
  auto provider = fx.spawn(provider_http, test_config(), openai(), &http, metrics_actor{});
  auto status = fx.request<actor_status>(provider, atom::status_v);
  REQUIRE(status);
  CHECK(status->name == "provider:openai");
  CHECK(status->kind == "provider");
  bool saw_base_url = false;
  for (const auto& [key, value] : status->facts) {
    CHECK(value.find("sk-secret") == std::string::npos);
    saw_base_url |= key == "base_url" && value == "http://127.0.0.1:9/v1";
  }
  CHECK(saw_base_url);
}

TEST_CASE("openai actor without a key fails every item as CONFIGURATION_ERROR") {
  fake_transport http;
  http.answer = scripted_answer;
  test::deterministic_fixture fx;
  auto cfg = test_config();
  cfg.target.api_key.clear();
  auto provider = fx.spawn(provider_http, cfg, openai(), &http, metrics_actor{});
  auto outcomes = fx.request<std::vector<comparison_outcome>>(provider, atom::process_v,
                                                              make_bundle({"a", "b"}));
  REQUIRE(outcomes);
  REQUIRE(outcomes->size() == 2);
  for (const auto& o : *outcomes)
    CHECK((!o.success && o.error_code == "CONFIGURATION_ERROR" && !o.retryable));
  CHECK(http.sent.empty());
}

// -- the HTTP call gauges ----------------------------------------------------------------

namespace {

/// Holds every call until the test answers it, the way a slow provider would.
struct held_transport : http_transport {
  std::vector<http_client_callback> held;

  void send(http_client_request, http_client_callback done) override {
    held.push_back(std::move(done));
  }

  /// Answers the `n` oldest held calls with a judgement.
  void answer(size_t n) {
    for (size_t i = 0; i < n; ++i) {
      http_client_response resp;
      resp.status = 200;
      resp.body = completion(verdict("Essay A", "reason", 4));
      auto done = std::move(held.front());
      held.erase(held.begin());
      done(std::move(resp));
    }
  }
};

std::vector<std::string> prompts(size_t n) {
  std::vector<std::string> result;
  for (size_t i = 0; i < n; ++i)
    result.push_back("pair " + std::to_string(i));
  return result;
}

constexpr auto inflight_gauge = "llm_provider_inflight_provider_calls";
constexpr auto waiting_gauge = "llm_provider_calls_waiting_for_connection";

} // namespace

TEST_CASE("the in-flight gauge counts calls up to the pool's connections, the rest wait") {
  held_transport http;
  test::deterministic_fixture fx;
  auto m = fx.spawn(metrics);
  auto gauge = [&](const char* name) {
    return fx.state_of<metrics_state>(m).registry.value(name, {"openai"});
  };
  auto cfg = test_config();
  cfg.max_connections = 3;
  auto provider = fx.spawn(provider_http, cfg, openai(), &http, m);
  auto rh = fx.self->request(provider, caf::infinite, atom::process_v, make_bundle(prompts(8)));
  fx.sched.run();
  // 8 calls handed to the client: 3 take the pool's connections, 5 wait for one.
  REQUIRE(http.held.size() == 8);
  CHECK(gauge(inflight_gauge) == 3);
  CHECK(gauge(waiting_gauge) == 5);
  auto status = fx.request<actor_status>(provider, atom::status_v);
  REQUIRE(status);
  CHECK(status->figures["inflight_http_calls"] == 3);
  CHECK(status->figures["http_calls_waiting_for_connection"] == 5);
  // Each answer frees a connection for a waiting call.
  http.answer(5);
  fx.sched.run();
  CHECK(gauge(inflight_gauge) == 3);
  CHECK(gauge(waiting_gauge) == 0);
  http.answer(2);
  fx.sched.run();
  CHECK(gauge(inflight_gauge) == 1);
  http.answer(1);
  fx.sched.run();
  CHECK(gauge(inflight_gauge) == 0);
  CHECK(gauge(waiting_gauge) == 0);
  std::vector<comparison_outcome> outcomes;
  rh.receive([&](std::vector<comparison_outcome>& xs) { outcomes = std::move(xs); },
             [&](caf::error& err) { FAIL(caf::to_string(err)); });
  CHECK(outcomes.size() == 8);
}

TEST_CASE("a provider that stops gives up its open calls: the gauges go back to 0") {
  held_transport http;
  test::deterministic_fixture fx;
  auto m = fx.spawn(metrics);
  auto gauge = [&](const char* name) {
    return fx.state_of<metrics_state>(m).registry.value(name, {"openai"});
  };
  auto cfg = test_config();
  cfg.max_connections = 3;
  auto provider = fx.spawn(provider_http, cfg, openai(), &http, m);
  fx.self->send(provider, atom::process_v, make_bundle(prompts(4)));
  fx.sched.run();
  REQUIRE(gauge(inflight_gauge) == 3);
  REQUIRE(gauge(waiting_gauge) == 1);
  caf::anon_send_exit(provider, caf::exit_reason::user_shutdown);
  fx.sched.run();
  CHECK(gauge(inflight_gauge) == 0);
  CHECK(gauge(waiting_gauge) == 0);
}

// -- multi-prompt -----------------------------------------------------------------------

namespace {

/// The `<comparison id>` blocks of a multi-prompt body's user message: (id, text).
std::vector<std::pair<std::string, std::string>> comparisons_in(const std::string& body) {
  auto doc = json::parse(body).as_object();
  std::string user{doc.at("messages").as_array().back().as_object().at("content").as_string()};
  std::vector<std::pair<std::string, std::string>> out;
  size_t pos = 0;
  while ((pos = user.find("<comparison id=\"", pos)) != std::string::npos) {
    auto id_start = pos + 16;
    auto id_end = user.find('"', id_start);
    auto end = user.find("</comparison>", id_end);
    out.emplace_back(user.substr(id_start, id_end - id_start),
                     user.substr(id_end + 3, end - id_end - 4));
    pos = end;
  }
  return out;
}

/// Multi-prompt calls: one result per comparison, except texts with "skip" (left out) and
/// "dupe" (answered twice); "fail" in any text fails the whole call with 500 and "garbage"
/// makes the content unreadable. Single calls: scripted_answer.
http_client_response multi_answer(const http_client_request& req) {
  if (req.body.find("comparison_results") == std::string::npos)
    return scripted_answer(req);
  http_client_response resp;
  resp.status = 200;
  if (req.body.find("fail") != std::string::npos) {
    resp.status = 500;
    resp.body = error_body("server_error", "");
    return resp;
  }
  if (req.body.find("garbage") != std::string::npos) {
    resp.body = completion("{\"results\": [");
    return resp;
  }
  json::array results;
  for (const auto& [id, text] : comparisons_in(req.body)) {
    if (text.find("skip") != std::string::npos)
      continue;
    auto winner = text.find("pick-b") != std::string::npos ? "Essay B" : "Essay A";
    json::object entry{
        {"comparison_id", id}, {"winner", winner}, {"justification", "r"}, {"confidence", 3}};
    results.push_back(entry);
    if (text.find("dupe") != std::string::npos) {
      entry["winner"] = "Essay B";
      results.push_back(entry);
    }
  }
  resp.body = completion(json::serialize(json::object{{"results", results}}));
  return resp;
}

provider_http_config multi_config() {
  auto cfg = test_config();
  cfg.multi_prompt = true;
  return cfg;
}

size_t multi_calls(fake_transport& http) {
  return static_cast<size_t>(
      std::count_if(http.sent.begin(), http.sent.end(), [](const http_client_request& r) {
        return r.body.find("comparison_results") != std::string::npos;
      }));
}

} // namespace

TEST_CASE("multi-prompt packs up to four compatible items per call, one outcome each") {
  fake_transport http;
  http.answer = multi_answer;
  test::deterministic_fixture fx;
  auto provider = fx.spawn(provider_http, multi_config(), openai(), &http, metrics_actor{});
  auto b = make_bundle({"one", "pick-b two", "three", "four", "pick-b five", "six"});
  auto outcomes = fx.request<std::vector<comparison_outcome>>(provider, atom::process_v, b);
  REQUIRE(outcomes);
  REQUIRE(outcomes->size() == 6);
  CHECK(http.sent.size() == 2); // 4 + 2
  CHECK(multi_calls(http) == 2);
  uint64_t prompt_tokens = 0;
  for (size_t i = 0; i < 6; ++i) {
    const auto& o = (*outcomes)[i];
    INFO(i << ": " << o.error_code << " " << o.error_message);
    CHECK(o.success);
    CHECK(o.queue_id == b.items[i].entry.request.queue_id);
    bool b_wins = b.items[i].entry.request.user_prompt.find("pick-b") != std::string::npos;
    CHECK(o.winner == (b_wins ? "Essay B" : "Essay A"));
    prompt_tokens += o.usage.prompt_tokens;
  }
  // Each call's usage is shared out among its items, adding up to what the calls used.
  CHECK(prompt_tokens == 2 * 120);
  auto& st = fx.state_of<provider_http_state>(provider);
  CHECK(st.multi_calls_total == 2);
  CHECK(st.multi_fallbacks_total == 0);
}

TEST_CASE("multi-prompt sends a missing or twice-answered comparison again alone") {
  fake_transport http;
  http.answer = multi_answer;
  test::deterministic_fixture fx;
  auto provider = fx.spawn(provider_http, multi_config(), openai(), &http, metrics_actor{});
  auto b = make_bundle({"one", "skip pick-b two", "dupe three", "four"});
  auto outcomes = fx.request<std::vector<comparison_outcome>>(provider, atom::process_v, b);
  REQUIRE(outcomes);
  REQUIRE(outcomes->size() == 4);
  CHECK(http.sent.size() == 3); // the multi call, then "skip" and "dupe" alone
  CHECK(multi_calls(http) == 1);
  for (const auto& o : *outcomes)
    CHECK(o.success);
  CHECK((*outcomes)[1].winner == "Essay B"); // from its own call
  CHECK(fx.state_of<provider_http_state>(provider).multi_fallbacks_total == 2);
}

TEST_CASE("multi-prompt: a failed call fails its items, an unreadable one is retried per item") {
  fake_transport http;
  http.answer = multi_answer;
  test::deterministic_fixture fx;
  auto provider = fx.spawn(provider_http, multi_config(), openai(), &http, metrics_actor{});
  auto failed = fx.request<std::vector<comparison_outcome>>(provider, atom::process_v,
                                                            make_bundle({"a fail", "b"}));
  REQUIRE(failed);
  REQUIRE(failed->size() == 2);
  for (const auto& o : *failed)
    CHECK((!o.success && o.error_code == "EXTERNAL_SERVICE_ERROR" && o.retryable));
  CHECK(http.sent.size() == 1); // no per-item retry inside the provider: the queue retries
  http.sent.clear();
  // "garbage" only in the multi call's packed text: its items go alone; the single call of
  // the garbage item itself still fails as PARSING_ERROR, its neighbour succeeds.
  auto mixed = fx.request<std::vector<comparison_outcome>>(provider, atom::process_v,
                                                           make_bundle({"garbage", "fine"}));
  REQUIRE(mixed);
  CHECK(http.sent.size() == 3);
  CHECK((!(*mixed)[0].success && (*mixed)[0].error_code == "PARSING_ERROR"));
  CHECK((*mixed)[1].success);
}

TEST_CASE("multi-prompt keeps items with different settings in different calls") {
  fake_transport http;
  http.answer = multi_answer;
  test::deterministic_fixture fx;
  auto provider = fx.spawn(provider_http, multi_config(), openai(), &http, metrics_actor{});
  auto b = make_bundle({"one", "two", "three"});
  b.items[1].entry.request.overrides.has_system_prompt = true;
  b.items[1].entry.request.overrides.system_prompt = "Be terse.";
  auto outcomes = fx.request<std::vector<comparison_outcome>>(provider, atom::process_v, b);
  REQUIRE(outcomes);
  for (const auto& o : *outcomes)
    CHECK(o.success);
  CHECK(http.sent.size() == 2); // "one"+"three" packed, "two" alone
  CHECK(multi_calls(http) == 1);
}

// -- against the mock provider server (real HTTP client, real scheduler) ---------------

namespace {

/// A running mock provider, an HTTP client and an actor system with real threads.
/// TLS material for an HTTPS mock: a CA made for this test run and a certificate for
/// localhost signed by it.
struct tls_files {
  test::temp_dir dir{"lps-provider-http-tls"};
  test::test_tls_files files = test::make_test_ca(dir.path());
};

struct mock_server_fixture {
  /// Set when the mock serves HTTPS (the client then trusts only the test CA).
  std::unique_ptr<tls_files> tls;
  mock_provider_server server;
  std::unique_ptr<http_client> client;
  http_client& http;
  system_config cfg;
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};

  explicit mock_server_fixture(bool https = false)
      : tls(https ? std::make_unique<tls_files>() : nullptr),
        client(std::make_unique<http_client>(client_options())), http(*client) {
    std::string error;
    mock_provider_options options;
    options.api_key = "test-key";
    if (tls) {
      options.tls_cert_file = tls->files.cert_file.string();
      options.tls_key_file = tls->files.key_file.string();
    }
    if (!server.start(options, error))
      FAIL("mock provider did not start: " << error);
  }

  http_client_options client_options() const {
    http_client_options o;
    if (tls)
      o.ca_file = tls->files.ca_file.string();
    return o;
  }

  std::string scheme_host() const {
    return (tls ? "https://localhost:" : "http://127.0.0.1:") + std::to_string(server.port());
  }

  ~mock_server_fixture() {
    http.stop();
    server.stop();
  }

  provider_http_config config(const std::string& provider = "openai") {
    provider_http_config c;
    c.provider = provider;
    auto base = scheme_host();
    c.target.base_url = provider == "openrouter" ? base + "/api/v1"
                        : provider == "openai"   ? base + "/v1"
                                                 : base;
    c.target.api_key = "test-key";
    c.default_model = provider == "anthropic" ? "claude-haiku-4-5"
                      : provider == "google"  ? "gemini-2.5-flash"
                                              : "gpt-5.1";
    c.target.timeout = std::chrono::seconds{10};
    if (provider == "openrouter")
      c.target.extra_headers = {{"HTTP-Referer", "https://huleedu.com"}, {"X-Title", "lps"}};
    return c;
  }

  static std::shared_ptr<const provider_wire> wire_of(const std::string& provider) {
    if (provider == "anthropic")
      return std::make_shared<anthropic_wire>();
    if (provider == "google")
      return std::make_shared<gemini_wire>();
    return std::make_shared<openai_wire>(provider == "openrouter");
  }

  std::vector<comparison_outcome> process(const provider_http_config& c, const bundle& b) {
    auto provider = sys.spawn(provider_http, c, wire_of(c.provider), &http, metrics_actor{});
    std::vector<comparison_outcome> result;
    self->request(provider, std::chrono::seconds{30}, atom::process_v, b)
        .receive([&](std::vector<comparison_outcome>& xs) { result = std::move(xs); },
                 [&](caf::error& err) { FAIL(caf::to_string(err)); });
    caf::anon_send_exit(provider, caf::exit_reason::user_shutdown);
    return result;
  }
};

size_t count_code(const std::vector<comparison_outcome>& xs, const std::string& code) {
  return static_cast<size_t>(std::count_if(
      xs.begin(), xs.end(), [&](const comparison_outcome& o) { return o.error_code == code; }));
}

} // namespace

TEST_CASE("openai actor gets judgements from the mock provider for gpt-5 and gpt-4o") {
  mock_server_fixture fx;
  auto b = make_bundle({"pair one", "pair two", "pair three", "pair four"});
  b.items[1].enrichment.resolved_model = "gpt-4o";
  b.items[3].enrichment.resolved_model = "gpt-4o";
  auto outcomes = fx.process(fx.config(), b);
  REQUIRE(outcomes.size() == 4);
  for (size_t i = 0; i < 4; ++i) {
    INFO(outcomes[i].error_code << ": " << outcomes[i].error_message);
    CHECK(outcomes[i].success);
    CHECK(outcomes[i].queue_id == b.items[i].entry.request.queue_id);
    CHECK((outcomes[i].confidence >= 1 && outcomes[i].confidence <= 5));
    CHECK(outcomes[i].usage.total_tokens > 0);
  }
  CHECK(outcomes[1].model == "gpt-4o");
}

TEST_CASE("openai actor maps mock provider faults per item") {
  mock_server_fixture fx;
  std::string error;
  REQUIRE(fx.server.add_faults(R"({"faults":[{"kind":"quota"},
      {"kind":"status","status":429,"retry_after":"2"},{"kind":"bad_winner"}]})",
                               error));
  auto outcomes = fx.process(fx.config(), make_bundle({"a", "b", "c", "d"}));
  REQUIRE(outcomes.size() == 4);
  // Concurrent calls reach the server in any order, so only the mix is known.
  CHECK(count_code(outcomes, "QUOTA_EXCEEDED") == 1);
  CHECK(count_code(outcomes, "RATE_LIMIT") == 1);
  CHECK(count_code(outcomes, "INVALID_RESPONSE") == 1);
  CHECK(std::count_if(outcomes.begin(), outcomes.end(),
                      [](const comparison_outcome& o) { return o.success; })
        == 1);
  for (const auto& o : outcomes) {
    if (o.error_code == "RATE_LIMIT")
      CHECK((o.retryable && o.retry_after == std::chrono::milliseconds{2000}));
    if (o.error_code == "QUOTA_EXCEEDED")
      CHECK_FALSE(o.retryable);
  }
}

TEST_CASE("openai actor reports a wrong key and serves openrouter") {
  mock_server_fixture fx;
  auto bad = fx.config();
  bad.target.api_key = "wrong-key";
  auto outcomes = fx.process(bad, make_bundle({"a"}));
  REQUIRE(outcomes.size() == 1);
  CHECK(outcomes[0].error_code == "AUTHENTICATION_ERROR");
  CHECK(outcomes[0].http_status == 401);
  CHECK(outcomes[0].error_message.find("wrong-key") == std::string::npos);
  auto routed = fx.process(fx.config("openrouter"), make_bundle({"a", "b"}));
  REQUIRE(routed.size() == 2);
  for (const auto& o : routed) {
    INFO(o.error_code << ": " << o.error_message);
    CHECK((o.success && o.provider == "openrouter"));
  }
}

// -- every provider against the mock server -------------------------------------------

namespace {

/// A bundle for `provider` whose items leave the model to the provider's default.
bundle bundle_for(const std::string& provider, const std::vector<std::string>& prompts) {
  auto b = make_bundle(prompts);
  b.provider = provider;
  b.model.clear();
  for (auto& item : b.items) {
    item.enrichment.resolved_provider = provider;
    item.enrichment.resolved_model.clear();
  }
  return b;
}

const std::vector<std::string> all_providers{"openai", "openrouter", "anthropic", "google"};

} // namespace

TEST_CASE("every provider gets judgements from the mock server, with usage and the same verdict") {
  mock_server_fixture fx;
  std::map<std::string, std::vector<std::string>> winners;
  for (const auto& provider : all_providers) {
    INFO(provider);
    auto b =
        bundle_for(provider, {"Essay A: cats. Essay B: dogs.", "Essay A: sun. Essay B: rain."});
    auto outcomes = fx.process(fx.config(provider), b);
    REQUIRE(outcomes.size() == 2);
    for (const auto& o : outcomes) {
      INFO(o.error_code << ": " << o.error_message);
      CHECK(o.success);
      CHECK(o.provider == provider);
      CHECK(o.model == fx.config(provider).default_model);
      CHECK(o.usage.prompt_tokens > 0);
      CHECK(o.usage.completion_tokens > 0);
      CHECK((o.confidence >= 1 && o.confidence <= 5));
      winners[provider].push_back(o.winner);
    }
    // OpenAI-style and Anthropic answers carry rate-limit headers; Gemini sends none.
    CHECK(outcomes[0].limits.empty() == (provider == "google"));
  }
  // The mock judges the user prompt alone, so every wire format must carry it unchanged.
  for (const auto& provider : all_providers)
    CHECK(winners[provider] == winners["openai"]);
}

TEST_CASE("every provider maps each mock fault to its error class, over HTTPS") {
  struct expectation {
    const char* fault;
    const char* code;
    bool retryable;
  };
  const std::vector<expectation> faults{
      {R"({"kind":"status","status":429,"retry_after":"3"})", "RATE_LIMIT", true},
      {R"({"kind":"quota"})", "QUOTA_EXCEEDED", false},
      {R"({"kind":"status","status":500})", "EXTERNAL_SERVICE_ERROR", true},
      {R"({"kind":"overloaded"})", "EXTERNAL_SERVICE_ERROR", true},
      {R"({"kind":"status","status":400})", "INVALID_REQUEST", false},
      {R"({"kind":"status","status":401})", "AUTHENTICATION_ERROR", false},
      {R"({"kind":"malformed"})", "PARSING_ERROR", false},
      {R"({"kind":"truncated"})", "PARSING_ERROR", false},
      {R"({"kind":"no_tool_use"})", "PARSING_ERROR", false},
      {R"({"kind":"bad_winner"})", "INVALID_RESPONSE", false},
  };
  mock_server_fixture fx{true};
  for (const auto& provider : all_providers) {
    for (const auto& f : faults) {
      INFO(provider << " " << f.fault);
      std::string error;
      REQUIRE(fx.server.add_faults(std::string{R"({"faults":[)"} + f.fault + "]}", error));
      auto outcomes = fx.process(fx.config(provider), bundle_for(provider, {"a"}));
      REQUIRE(outcomes.size() == 1);
      const auto& o = outcomes[0];
      INFO(o.error_message);
      CHECK_FALSE(o.success);
      CHECK(o.error_code == f.code);
      CHECK(o.retryable == f.retryable);
      CHECK(o.error_message.find("test-key") == std::string::npos);
      if (std::string{f.code} == "RATE_LIMIT")
        CHECK(o.retry_after == std::chrono::milliseconds{3000});
    }
  }
  CHECK(fx.server.stats().pending_faults == 0);
}

TEST_CASE("every provider reports a wrong key as AUTHENTICATION_ERROR without echoing it") {
  mock_server_fixture fx;
  for (const auto& provider : all_providers) {
    INFO(provider);
    auto c = fx.config(provider);
    c.target.api_key = "wrong-key-123";
    auto outcomes = fx.process(c, bundle_for(provider, {"a"}));
    REQUIRE(outcomes.size() == 1);
    CHECK(outcomes[0].error_code == "AUTHENTICATION_ERROR");
    CHECK_FALSE(outcomes[0].retryable);
    CHECK(outcomes[0].error_message.find("wrong-key-123") == std::string::npos);
  }
}

TEST_CASE("multi-prompt against the mock: fewer calls, the same verdicts for every provider") {
  mock_server_fixture fx;
  std::vector<std::string> prompts;
  for (int i = 0; i < 8; ++i)
    prompts.push_back("Essay A: text " + std::to_string(i) + ". Essay B: other "
                      + std::to_string(i * 7) + ".");
  for (const auto& provider : all_providers) {
    INFO(provider);
    fx.server.reset();
    auto single = fx.process(fx.config(provider), bundle_for(provider, prompts));
    auto single_calls = fx.server.stats().calls;
    fx.server.reset();
    auto c = fx.config(provider);
    c.multi_prompt = true;
    auto multi = fx.process(c, bundle_for(provider, prompts));
    auto multi_calls = fx.server.stats().calls;
    CHECK(single_calls == 8);
    CHECK(multi_calls == 2);
    REQUIRE(single.size() == 8);
    REQUIRE(multi.size() == 8);
    for (size_t i = 0; i < 8; ++i) {
      INFO(i << ": " << multi[i].error_code << " " << multi[i].error_message);
      CHECK(multi[i].success);
      CHECK(multi[i].queue_id == single[i].queue_id);
      CHECK(multi[i].winner == single[i].winner);
      CHECK(multi[i].confidence == single[i].confidence);
    }
  }
}

TEST_CASE("multi-prompt against the mock: a bad answer in a packed call is retried alone") {
  mock_server_fixture fx;
  for (const auto& provider : all_providers) {
    INFO(provider);
    fx.server.reset();
    std::string error;
    // The first call (the packed one) names a winner "Essay C" for its first comparison.
    REQUIRE(fx.server.add_faults(R"({"faults":[{"kind":"bad_winner"}]})", error));
    auto c = fx.config(provider);
    c.multi_prompt = true;
    auto outcomes = fx.process(c, bundle_for(provider, {"one", "two", "three"}));
    REQUIRE(outcomes.size() == 3);
    for (const auto& o : outcomes) {
      INFO(o.error_code << " " << o.error_message);
      CHECK(o.success);
    }
    CHECK(fx.server.stats().calls == 2); // the packed call, then comparison 1 alone
  }
}

namespace {

/// A metrics actor for tests with real threads: applies every sample to a registry and keeps
/// the peaks of the call gauges of `provider`.
struct gauge_recorder {
  std::string provider;
  std::mutex mtx;
  std::condition_variable changed;
  metrics_registry registry;
  double peak_in_flight = 0;
  double peak_waiting = 0;
  size_t samples = 0;

  void record(const std::vector<metric_sample>& xs) {
    std::lock_guard<std::mutex> guard{mtx};
    for (const auto& x : xs)
      registry.apply(x);
    samples += xs.size();
    peak_in_flight = std::max(peak_in_flight, registry.value(inflight_gauge, {provider}));
    peak_waiting = std::max(peak_waiting, registry.value(waiting_gauge, {provider}));
    changed.notify_all();
  }

  /// Waits until a gauge was recorded and both are 0 again; false after `limit`.
  bool wait_back_to_zero(std::chrono::milliseconds limit) {
    std::unique_lock<std::mutex> lock{mtx};
    return changed.wait_for(lock, limit, [this] {
      return samples > 0 && registry.value(inflight_gauge, {provider}) == 0
             && registry.value(waiting_gauge, {provider}) == 0;
    });
  }
};

metrics_actor::behavior_type recording_metrics(metrics_actor::pointer,
                                               std::shared_ptr<gauge_recorder> log) {
  return {
      [log](atom::record, const std::vector<metric_sample>& xs) { log->record(xs); },
      [](atom::render) { return std::string{}; },
      [](atom::status) { return actor_status{}; },
  };
}

} // namespace

TEST_CASE("against the mock, the in-flight gauge peaks at the calls the provider had open") {
  // 10 calls at 300 ms latency through a pool of 3 connections: 3 at a time reach the
  // provider, 7 wait in the pool at first.
  mock_provider_options options;
  options.latency = std::chrono::milliseconds{300};
  mock_provider_server server;
  std::string error;
  REQUIRE(server.start(options, error));
  http_client_options pool;
  pool.max_connections_per_origin = 3;
  http_client client{pool};
  system_config sys_cfg;
  caf::actor_system sys{sys_cfg};
  caf::scoped_actor self{sys};
  auto log = std::make_shared<gauge_recorder>();
  log->provider = "openai";
  auto m = sys.spawn(recording_metrics, log);
  auto cfg = test_config();
  cfg.target.base_url = "http://127.0.0.1:" + std::to_string(server.port()) + "/v1";
  cfg.target.api_key = options.api_key;
  cfg.target.timeout = std::chrono::seconds{10};
  cfg.max_connections = pool.max_connections_per_origin;
  auto provider = sys.spawn(provider_http, cfg, openai(), &client, m);
  std::vector<comparison_outcome> outcomes;
  self->request(provider, std::chrono::seconds{30}, atom::process_v, make_bundle(prompts(10)))
      .receive([&](std::vector<comparison_outcome>& xs) { outcomes = std::move(xs); },
               [&](caf::error& err) { FAIL(caf::to_string(err)); });
  CHECK(outcomes.size() == 10);
  CHECK(log->wait_back_to_zero(std::chrono::seconds{5}));
  auto stats = server.stats();
  CHECK(stats.calls == 10);
  CHECK(stats.peak_in_flight == 3);
  {
    std::lock_guard<std::mutex> guard{log->mtx};
    CHECK(log->peak_in_flight == double(stats.peak_in_flight));
    CHECK(log->peak_waiting == 7);
    CHECK(log->registry.rejected() == 0);
  }
  caf::anon_send_exit(provider, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(m, caf::exit_reason::user_shutdown);
  client.stop();
  server.stop();
}

TEST_CASE("the manifest's per-model flags decide the OpenAI parameters") {
  comparison_request req;
  req.user_prompt = "Essay A: x. Essay B: y.";
  req.overrides.reasoning_effort = "low";
  // A model the name rule would treat as an older chat model, flagged like GPT-5.
  openai_flags_table table{{"o-series-x", openai_model_flags{true, false, true}}};
  openai_wire wire{false, table};
  wire_target target{"http://127.0.0.1:9/v1", "k", std::chrono::seconds{1}, {}};
  auto flagged = json::parse(wire.single_call(target, req, "o-series-x").body).as_object();
  CHECK(flagged.contains("max_completion_tokens"));
  CHECK_FALSE(flagged.contains("max_tokens"));
  CHECK_FALSE(flagged.contains("temperature"));
  CHECK(flagged.at("reasoning_effort") == "low");
  // Models the manifest does not list fall back to the name rule.
  auto unlisted = json::parse(wire.single_call(target, req, "gpt-4o").body).as_object();
  CHECK(unlisted.contains("max_tokens"));
  CHECK(unlisted.contains("temperature"));
  CHECK_FALSE(unlisted.contains("reasoning_effort"));
}
