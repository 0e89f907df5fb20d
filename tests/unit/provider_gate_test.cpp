// provider_gate without actors: time is an argument, so every test moves it by hand.

#include "actors/provider_gate.hpp"
#include "fixtures/outcomes.hpp"

#include <catch2/catch.hpp>

using namespace lps;
using lps::test::failure;
using lps::test::success;
using namespace std::chrono_literals;

namespace {

const clock_time t0 = clock_time{} + 1h;

bundle bundle_of(const std::string& provider, size_t items, size_t prompt_bytes = 3) {
  bundle result;
  result.provider = provider;
  for (size_t i = 0; i < items; ++i) {
    bundle_item item;
    item.entry.request.user_prompt = std::string(prompt_bytes, 'x');
    result.items.push_back(std::move(item));
  }
  return result;
}

provider_gate_settings breaker_opens_after(uint32_t failures) {
  provider_gate_settings result;
  result.breaker.failure_threshold = failures;
  result.breaker.open_duration = 30s;
  result.breaker.success_threshold = 1;
  return result;
}

} // namespace

TEST_CASE("a provider takes bundles while it has free call slots") {
  provider_gate_settings settings;
  settings.max_inflight["openai"] = 2;
  provider_gate gate{settings};
  CHECK(gate.has_capacity("openai", t0));
  gate.start_call(bundle_of("openai", 1), t0);
  gate.start_call(bundle_of("openai", 1), t0);
  CHECK(gate.inflight("openai") == 2);
  CHECK_FALSE(gate.has_capacity("openai", t0));
  // A full provider holds up no other, and one with no setting gets 64 slots.
  CHECK(gate.has_capacity("mock", t0));
  gate.finish_call("openai", {success()}, t0);
  CHECK(gate.has_capacity("openai", t0));
  CHECK(gate.inflight_total() == 1);
}

TEST_CASE("provider-side failures open the breaker, client errors do not") {
  provider_gate gate{breaker_opens_after(2)};
  for (int i = 0; i < 3; ++i) {
    gate.start_call(bundle_of("openai", 1), t0);
    CHECK_FALSE(gate.finish_call("openai", {failure("INVALID_REQUEST")}, t0));
  }
  CHECK(gate.breaker("openai").state() == breaker_state::closed);
  gate.start_call(bundle_of("openai", 1), t0);
  CHECK_FALSE(gate.finish_call("openai", {failure("EXTERNAL_SERVICE_ERROR")}, t0));
  gate.start_call(bundle_of("openai", 1), t0);
  CHECK(gate.finish_call("openai", {failure("TIMEOUT")}, t0)); // the state changed
  CHECK(gate.breaker("openai").state() == breaker_state::open);
  CHECK_FALSE(gate.has_capacity("openai", t0));
  CHECK(gate.blocked_for("openai", t0) == 30s);
}

TEST_CASE("a call with one success is no provider failure") {
  provider_gate gate{breaker_opens_after(1)};
  gate.start_call(bundle_of("openai", 2), t0);
  gate.finish_call("openai", {failure("CONNECTION_ERROR"), success()}, t0);
  CHECK(gate.breaker("openai").state() == breaker_state::closed);
}

TEST_CASE("an open breaker lets one probe through after open_duration and closes on success") {
  provider_gate gate{breaker_opens_after(1)};
  gate.start_call(bundle_of("openai", 1), t0);
  gate.finish_call("openai", {failure("EXTERNAL_SERVICE_ERROR")}, t0);
  CHECK_FALSE(gate.has_capacity("openai", t0 + 29s));
  CHECK(gate.blocked_for("openai", t0 + 29s) == 1s);
  CHECK(gate.has_capacity("openai", t0 + 30s));
  // The probe call turns the breaker half-open and takes its only probe slot.
  CHECK(gate.start_call(bundle_of("openai", 1), t0 + 30s));
  CHECK(gate.breaker("openai").state() == breaker_state::half_open);
  CHECK_FALSE(gate.has_capacity("openai", t0 + 30s));
  CHECK(gate.finish_call("openai", {success()}, t0 + 31s));
  CHECK(gate.breaker("openai").state() == breaker_state::closed);
  CHECK(gate.has_capacity("openai", t0 + 31s));
}

TEST_CASE("soonest_unblock names the shortest wait among blocked providers") {
  provider_gate_settings settings = breaker_opens_after(1);
  settings.rate_limits["mock"] = {60, 0}; // one request a second
  provider_gate gate{settings};
  CHECK_FALSE(gate.soonest_unblock({"mock", "openai"}, t0));
  gate.start_call(bundle_of("openai", 1), t0);
  gate.finish_call("openai", {failure("TIMEOUT")}, t0);
  CHECK(gate.soonest_unblock({"mock", "openai"}, t0) == 30s);
  gate.start_call(bundle_of("mock", 60), t0); // the whole minute's budget
  gate.finish_call("mock", {success()}, t0);
  auto soonest = gate.soonest_unblock({"mock", "openai"}, t0);
  REQUIRE(soonest);
  CHECK(*soonest > 0s);
  CHECK(*soonest <= 1s);
  CHECK(gate.soonest_unblock({"openai"}, t0 + 10s) == 20s);
}

TEST_CASE("a bundle is charged one request per item, or per packed call with multi-prompt") {
  provider_gate_settings settings;
  settings.rate_limits["mock"] = {10, 0};
  SECTION("one call per item") {
    provider_gate gate{settings};
    CHECK_FALSE(gate.request_budget("openai", t0)); // unlimited
    CHECK(gate.request_budget("mock", t0) == 10);
    gate.start_call(bundle_of("mock", 4), t0);
    CHECK(gate.request_budget("mock", t0) == 6);
  }
  SECTION("four comparisons per call") {
    settings.multi_prompt_max = 4;
    provider_gate gate{settings};
    gate.start_call(bundle_of("mock", 5), t0);
    CHECK(gate.request_budget("mock", t0) == 8);
  }
}

TEST_CASE("a bundle over the token budget still goes and leaves debt") {
  provider_gate_settings settings;
  settings.rate_limits["mock"] = {0, 100};
  provider_gate gate{settings};
  gate.start_call(bundle_of("mock", 1, 800), t0);         // about 201 tokens
  CHECK(gate.request_budget("mock", t0) == std::nullopt); // requests are unlimited
  // 100 tokens a minute repay the debt of about 101 in just over 60 s.
  CHECK_FALSE(gate.has_capacity("mock", t0 + 60s));
  CHECK(gate.has_capacity("mock", t0 + 61s));
}

TEST_CASE("the tightest rate-limit figures a provider reports are learned") {
  provider_gate_settings settings;
  settings.rate_limits["openai"] = {100, 0};
  provider_gate gate{settings};
  gate.start_call(bundle_of("openai", 2), t0);
  auto loose = success();
  loose.limits.remaining_requests = 50;
  loose.limits.requests_reset = 10ms;
  auto tight = success();
  tight.limits.remaining_requests = 0;
  tight.limits.requests_reset = 20s;
  gate.finish_call("openai", {loose, tight}, t0);
  CHECK(gate.request_budget("openai", t0) == 0);
  CHECK(gate.blocked_for("openai", t0) == 20s);
  CHECK(gate.has_capacity("openai", t0 + 20s));
}

TEST_CASE("a rejected key pauses its provider until it is resumed, and no other provider") {
  provider_gate gate;
  gate.start_call(bundle_of("openai", 2), t0);
  auto rejected = failure("AUTHENTICATION_ERROR");
  rejected.model = "gpt-5-mini";
  gate.finish_call("openai", {success(), rejected}, t0);
  const auto* pause = gate.pause_of("openai");
  REQUIRE(pause != nullptr);
  CHECK(pause->model == "gpt-5-mini");
  CHECK(pause->error_code == "AUTHENTICATION_ERROR");
  // Paused is not time-blocked: no wake is armed for it, and time does not end it.
  CHECK_FALSE(gate.has_capacity("openai", t0 + 1h));
  CHECK_FALSE(gate.soonest_unblock({"openai"}, t0).has_value());
  CHECK(gate.has_capacity("mock", t0));
  CHECK(gate.pause_of("mock") == nullptr);
  // A bad key says nothing about the provider's health: the breaker stays closed.
  CHECK(gate.breaker("openai").state() == breaker_state::closed);
  CHECK(gate.resume("openai"));
  CHECK(gate.pause_of("openai") == nullptr);
  CHECK(gate.has_capacity("openai", t0));
  CHECK_FALSE(gate.resume("openai")); // not paused any more
}

TEST_CASE("other client errors and provider failures do not pause a provider") {
  provider_gate gate;
  for (const auto* code : {"INVALID_REQUEST", "QUOTA_EXCEEDED", "RATE_LIMIT", "TIMEOUT"}) {
    gate.start_call(bundle_of("openai", 1), t0);
    gate.finish_call("openai", {failure(code)}, t0);
    CHECK(gate.pause_of("openai") == nullptr);
  }
  CHECK(rejects_key(failure("AUTHENTICATION_ERROR")));
  auto succeeded = success();
  succeeded.error_code = "AUTHENTICATION_ERROR";
  CHECK_FALSE(rejects_key(succeeded));
}
