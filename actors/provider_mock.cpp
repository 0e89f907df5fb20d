#include "actors/provider_mock.hpp"
#include "actors/status_report.hpp"
#include "runtime/gateway_stream.hpp"
#include "runtime/gateway_translate.hpp"

#include <caf/event_based_actor.hpp>

#include <chrono>

namespace lps {

namespace {

using self_ptr = provider_mock_impl_actor::stateful_pointer<provider_mock_state>;

actor_status status_of(self_ptr self) {
  auto& st = self->state;
  auto result = status_header(self, provider_mock_state::name, "provider", st.stats);
  result.figures = {{"calls_total", double(st.calls_total)},
                    {"items_total", double(st.items_total)},
                    {"errors_total", double(st.errors_total)},
                    {"inflight_calls", double(st.waiting.size())}};
  result.facts = {
      {"provider", "mock"}, {"configured", "true"}, {"default_model", st.settings.default_model}};
  return result;
}

// process_comparison_batch: loops over process_comparison; the latency of the whole call
// is the sum, as when the items are called one after another.
caf::result<std::vector<comparison_outcome>> process_batch(self_ptr self, const bundle& b) {
  auto& st = self->state;
  ++st.calls_total;
  std::vector<comparison_outcome> outcomes;
  std::chrono::microseconds latency{0};
  for (const auto& item : b.items) {
    outcomes.push_back(mock_process_comparison(st.settings, item));
    latency += outcomes.back().response_time;
    st.errors_total += outcomes.back().success ? 0 : 1;
  }
  st.items_total += b.items.size();
  if (latency.count() == 0)
    return outcomes;
  auto ticket = st.next_ticket++;
  auto promise = self->make_response_promise<std::vector<comparison_outcome>>();
  st.waiting.emplace(ticket, provider_mock_state::delayed_reply{promise, std::move(outcomes)});
  self->delayed_send(self, latency, atom::latency_elapsed_v, ticket);
  return promise;
}

} // namespace

comparison_outcome mock_process_comparison(const mock_settings& settings, const bundle_item& item) {
  const auto& req = item.entry.request;
  auto answer = mock_judge(settings, req.correlation_id, req.user_prompt, item.entry.attempts,
                           req.prompt_sha256);
  comparison_outcome result;
  result.queue_id = req.queue_id;
  result.success = answer.success;
  result.provider = "mock";
  result.model = req.overrides.model.empty() ? settings.default_model : req.overrides.model;
  result.response_time = answer.latency;
  result.prompt_sha256 = answer.prompt_sha256;
  result.enrichment = item.enrichment;
  if (answer.success) {
    result.winner = answer.winner;
    result.justification = answer.justification;
    result.confidence = answer.confidence;
    result.usage.prompt_tokens = answer.prompt_tokens;
    result.usage.completion_tokens = answer.completion_tokens;
    result.usage.total_tokens = answer.prompt_tokens + answer.completion_tokens;
    result.cost_estimate = 0.0; // the mock model is free
  } else {
    result.error_code = answer.error_code;
    result.error_message = answer.error_message;
    result.http_status = answer.http_status;
    result.retryable = true;
  }
  return result;
}

provider_mock_impl_actor::behavior_type provider_mock(self_ptr self, mock_settings settings) {
  self->state.settings = std::move(settings);
  return counted(
      self,
      [=](atom::process, const bundle& b) -> caf::result<std::vector<comparison_outcome>> {
        return process_batch(self, b);
      },
      // The gateway path: answered at once in OpenAI's shape (docs/gateway.md, "mock/...").
      [=](atom::gateway, const gateway_call& call) -> gateway_reply {
        ++self->state.calls_total;
        auto r = gateway_mock_answer(call.body, call.model);
        auto sink = gateway_streams().take(self->current_sender().get());
        if (sink && r.status == 200) {
          sink->write_completion(r.body);
          auto o = sink->end(false, "");
          return gateway_reply{200,   "", o.usage.prompt_tokens, o.usage.completion_tokens, 0,
                               false, 1};
        }
        return gateway_reply{
            r.status, std::move(r.body), r.prompt_tokens, r.completion_tokens, 0, false, 1};
      },
      [=](atom::latency_elapsed, uint64_t ticket) {
        auto& st = self->state;
        if (auto i = st.waiting.find(ticket); i != st.waiting.end()) {
          i->second.promise.deliver(std::move(i->second.outcomes));
          st.waiting.erase(i);
        }
      },
      [=](atom::status) -> actor_status { return status_of(self); });
}

} // namespace lps
