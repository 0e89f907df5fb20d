// The streamed form of the gateway's upstream requests, and the client's stream options
// (runtime/gateway_stream.hpp).

#include "runtime/gateway_stream.hpp"
#include "runtime/gateway_request.hpp"

namespace lps {

gateway_upstream gateway_upstream_stream_request(gateway_dialect d, const gateway_target& target,
                                                 std::string_view body, const std::string& model,
                                                 bool as_is) {
  auto u = gateway_upstream_request(d, target, body, model, as_is);
  if (u.error || (as_is && takes_openai_format(d))) // as it is: the client asked for what lps would
    return u;
  if (d == gateway_dialect::gemini) {
    auto& url = u.request.url;
    if (auto at = url.rfind(":generateContent"); at != std::string::npos)
      url.replace(at, url.size() - at, ":streamGenerateContent?alt=sse");
    return u;
  }
  // The fields go on the end of the serialized object rather than through a second parse of
  // it (a 6 KB body costs tens of µs each way): the translators drop the client's stream
  // fields (OpenAI, OpenRouter) or never write them (Anthropic), so neither is there twice.
  auto& text = u.request.body;
  if (text.size() < 2 || text.back() != '}')
    return u; // not an object: the translators never make one
  text.pop_back();
  text += text.size() > 1 ? ",\"stream\":true" : "\"stream\":true";
  if (d != gateway_dialect::anthropic)
    text += ",\"stream_options\":{\"include_usage\":true}";
  text += '}';
  return u;
}

stream_translate_options gateway_stream_options(const gateway_request_info& info, std::string model,
                                                int64_t created) {
  return {std::move(model), info.include_usage, created, info.schema_tool};
}

} // namespace lps
