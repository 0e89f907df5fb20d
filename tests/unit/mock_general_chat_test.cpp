// The mock provider's general chat calls (tools/mock_provider/general_chat): which calls are
// general, the checks the real APIs make of them, and the answers in each dialect's shape.

#include "tools/mock_provider/general_chat.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <string>

using namespace lps;
namespace json = boost::json;
using mock_wire::dialect;

namespace {

json::object obj(const std::string& text) {
  return json::parse(text).as_object();
}

std::string rejection(dialect d, const std::string& body) {
  auto e = mock_general::check(d, obj(body));
  return e ? e->message : std::string{};
}

std::string render(dialect d, const std::string& body, uint64_t& out) {
  return mock_general::render(d, obj(body), "model-x", "id-0123456789abcdef0123456789", 12,
                              1700000000, out);
}

} // namespace

TEST_CASE("the comparison calls of lps are not general, everything else is") {
  CHECK_FALSE(mock_general::is_general(
      dialect::openai,
      obj(R"({"response_format":{"type":"json_schema","json_schema":{"name":"comparison_result",
          "schema":{"properties":{"winner":{}}}}}})")));
  CHECK(mock_general::is_general(dialect::openai, obj(R"({"messages":[]})")));
  CHECK_FALSE(mock_general::is_general(
      dialect::anthropic,
      obj(R"({"tools":[{"name":"c","input_schema":{"properties":{"results":{}}}}]})")));
  CHECK(mock_general::is_general(
      dialect::anthropic,
      obj(R"({"tools":[{"name":"w","input_schema":{"properties":{"city":{}}}}]})")));
  CHECK_FALSE(mock_general::is_general(
      dialect::gemini,
      obj(R"({"generationConfig":{"responseJsonSchema":{"properties":{"winner":{}}}}})")));
}

TEST_CASE("OpenAI: tool results must answer a preceding tool call, strict schemas must be closed") {
  CHECK(
      rejection(
          dialect::openai,
          R"({"messages":[{"role":"user","content":"x"},{"role":"tool","tool_call_id":"a","content":"r"}]})")
          .find("must be a response to a preceeding message")
      != std::string::npos);
  CHECK(
      rejection(
          dialect::openai,
          R"({"messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"a","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"user","content":"y"}]})")
          .find("did not have response messages")
      != std::string::npos);
  CHECK(
      rejection(
          dialect::openai,
          R"({"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"bad name"}}]})")
          .find("pattern")
      != std::string::npos);
  CHECK(
      rejection(
          dialect::openai,
          R"({"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":{"type":"function","function":{"name":"g"}}})")
          .find("not found")
      != std::string::npos);
  CHECK(
      rejection(
          dialect::openai,
          R"({"messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema","json_schema":{"name":"s","strict":true,"schema":{"type":"object","properties":{"a":{"type":"string"}},"required":["a"]}}}})")
          .find("additionalProperties")
      != std::string::npos);
  CHECK(rejection(dialect::openai,
                  R"({"messages":[{"role":"user","content":"x"}],"temperature":2.5})")
            .find("temperature")
        != std::string::npos);
  CHECK(
      rejection(
          dialect::openai,
          R"({"messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"a","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"a","content":"r"}]})")
          .empty());
}

TEST_CASE("Anthropic: temperature 0..1, first turn user, tool_result after its tool_use") {
  CHECK(rejection(dialect::anthropic,
                  R"({"messages":[{"role":"user","content":"x"}],"temperature":1.5})")
            .find("temperature")
        != std::string::npos);
  CHECK(rejection(dialect::anthropic, R"({"messages":[{"role":"assistant","content":"x"}]})")
            .find("first message")
        != std::string::npos);
  CHECK(
      rejection(
          dialect::anthropic,
          R"({"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"r"}]}]})")
          .find("tool_use_id")
      != std::string::npos);
  CHECK(
      rejection(
          dialect::anthropic,
          R"({"messages":[{"role":"user","content":"x"},{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"f","input":{}}]},
                      {"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"r"}]}]})")
          .empty());
}

TEST_CASE("Gemini: function responses must answer a declared, called function") {
  const std::string tools =
      R"("tools":[{"functionDeclarations":[{"name":"f","parametersJsonSchema":{"type":"object"}}]}])";
  CHECK(
      rejection(
          dialect::gemini,
          R"({"contents":[{"role":"user","parts":[{"functionResponse":{"name":"f","response":{}}}]}],)"
              + tools + "}")
          .find("answers no earlier function call")
      != std::string::npos);
  CHECK(rejection(
            dialect::gemini,
            R"({"contents":[{"role":"model","parts":[{"functionCall":{"name":"g","args":{}}}]}],)"
                + tools + "}")
            .find("names no declared function")
        != std::string::npos);
  CHECK(
      rejection(
          dialect::gemini,
          R"({"contents":[{"role":"user","parts":[{"text":"x"}]}],"toolConfig":{"functionCallingConfig":{"mode":"AUTO","allowedFunctionNames":["f"]}}})")
          .find("only be set when mode is ANY")
      != std::string::npos);
  CHECK(
      rejection(
          dialect::gemini,
          R"({"contents":[{"role":"user","parts":[{"text":"x"}]},{"role":"model","parts":[{"functionCall":{"name":"f","args":{}}}]},
                      {"role":"user","parts":[{"functionResponse":{"name":"f","response":{}}}]}],)"
              + tools + "}")
          .empty());
}

TEST_CASE("answers: a tool call while tools are offered, then text, schema JSON, usage") {
  uint64_t out = 0;
  auto called = obj(
      render(dialect::anthropic,
             R"({"messages":[{"role":"user","content":"Oslo?"}],"tools":[{"name":"w","input_schema":
                               {"type":"object","properties":{"city":{"type":"string"}}}}]})",
             out));
  CHECK(called.at("stop_reason") == "tool_use");
  CHECK(called.at("content").as_array().at(0).as_object().at("input").as_object().at("city")
        == "mock");
  CHECK(called.at("usage").as_object().at("input_tokens") == 12);
  CHECK(out > 0);
  auto text =
      obj(render(dialect::openai, R"({"messages":[{"role":"user","content":"Hello"}]})", out));
  CHECK(text.at("choices").as_array().at(0).as_object().at("message").as_object().at("content")
        == "Mock answer to: Hello");
  auto gem = obj(render(
      dialect::gemini,
      R"({"contents":[{"role":"user","parts":[{"text":"Grade"}]}],"generationConfig":{"responseMimeType":"application/json",
                            "responseJsonSchema":{"type":"object","properties":{"score":{"type":"integer"}}}}})",
      out));
  auto part = gem.at("candidates")
                  .as_array()
                  .at(0)
                  .as_object()
                  .at("content")
                  .as_object()
                  .at("parts")
                  .as_array()
                  .at(0);
  CHECK(json::parse(std::string{part.as_object().at("text").as_string()}).as_object().at("score")
        == 1);
  CHECK(gem.at("usageMetadata").as_object().at("promptTokenCount") == 12);
}
