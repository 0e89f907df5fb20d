// Admission of gateway calls (app/gateway_gate): concurrency, breaker and rate limits per
// provider, per-key limits and usage, with the time passed in.

#include "app/gateway_gate.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <chrono>

using namespace lps;
using std::chrono::seconds;

namespace {

const clock_time t0 = clock_time{} + std::chrono::hours{1};

provider_gate_settings settings() {
  provider_gate_settings s;
  s.max_inflight["openai"] = 2;
  s.rate_limits["anthropic"] = {3, 0};
  s.breaker.failure_threshold = 2;
  s.breaker.open_duration = seconds{30};
  s.breaker.success_threshold = 1;
  return s;
}

} // namespace

TEST_CASE("calls beyond the provider's concurrency limit are refused with 429 at once") {
  gateway_gate gate{settings(), {}};
  CHECK_FALSE(gate.admit("openai", "", 10, t0));
  CHECK_FALSE(gate.admit("openai", "", 10, t0));
  auto refused = gate.admit("openai", "", 10, t0);
  REQUIRE(refused);
  CHECK(refused->status == 429);
  CHECK(refused->code == "concurrency_limit_exceeded");
  CHECK(refused->retry_after >= seconds{1});
  gate.finish("openai", "", true, false, 1, 1, 0.0, {}, t0);
  CHECK_FALSE(gate.admit("openai", "", 10, t0));
}

TEST_CASE("failing calls open the breaker: 503 with the rest of the open time") {
  gateway_gate gate{settings(), {}};
  for (int i = 0; i < 2; ++i) {
    REQUIRE_FALSE(gate.admit("google", "", 1, t0));
    gate.finish("google", "", false, true, 0, 0, 0.0, {}, t0);
  }
  auto refused = gate.admit("google", "", 1, t0 + seconds{10});
  REQUIRE(refused);
  CHECK(refused->status == 503);
  CHECK(refused->code == "circuit_open");
  CHECK(refused->retry_after > seconds{19});
  CHECK(refused->retry_after <= seconds{20});
  // After the open time one probe goes; its success closes the breaker again.
  REQUIRE_FALSE(gate.admit("google", "", 1, t0 + seconds{31}));
  CHECK(gate.admit("google", "", 1, t0 + seconds{31}));
  gate.finish("google", "", true, false, 0, 0, 0.0, {}, t0 + seconds{32});
  CHECK_FALSE(gate.admit("google", "", 1, t0 + seconds{32}));
}

TEST_CASE("client errors do not count against the breaker") {
  gateway_gate gate{settings(), {}};
  for (int i = 0; i < 5; ++i) {
    REQUIRE_FALSE(gate.admit("google", "", 1, t0));
    gate.finish("google", "", false, false, 0, 0, 0.0, {}, t0);
  }
  CHECK_FALSE(gate.admit("google", "", 1, t0));
}

TEST_CASE("the provider's requests per minute: 429 with the wait until a request is free") {
  gateway_gate gate{settings(), {}};
  for (int i = 0; i < 3; ++i) {
    REQUIRE_FALSE(gate.admit("anthropic", "", 1, t0));
    gate.finish("anthropic", "", true, false, 0, 0, 0.0, {}, t0);
  }
  auto refused = gate.admit("anthropic", "", 1, t0);
  REQUIRE(refused);
  CHECK(refused->code == "rate_limit_exceeded");
  CHECK(refused->retry_after >= seconds{19});
  CHECK(refused->retry_after <= seconds{21});
  CHECK_FALSE(gate.admit("anthropic", "", 1, t0 + seconds{21}));
}

TEST_CASE("per-key limits refuse one key and not another, usage is counted per key") {
  gateway_gate gate{settings(), {2, 1000}};
  REQUIRE_FALSE(gate.admit("mock", "alice", 600, t0));
  gate.finish("mock", "alice", true, false, 500, 100, 0.25, {}, t0);
  auto tokens = gate.admit("mock", "alice", 600, t0);
  REQUIRE(tokens);
  CHECK(tokens->code == "key_rate_limit_exceeded");
  REQUIRE_FALSE(gate.admit("mock", "bob", 10, t0));
  gate.finish("mock", "bob", false, false, 0, 0, 0.0, {}, t0);
  REQUIRE_FALSE(gate.admit("mock", "bob", 10, t0));
  CHECK(gate.admit("mock", "bob", 10, t0)); // two requests a minute
  auto usage = boost::json::parse(gate.usage_json(t0)).as_object();
  const auto& keys = usage.at("keys").as_array();
  REQUIRE(keys.size() == 2);
  const auto& alice = keys[0].as_object();
  CHECK(alice.at("key") == "alice");
  CHECK(alice.at("requests") == 1);
  CHECK(alice.at("refused") == 1);
  CHECK(alice.at("prompt_tokens") == 500);
  CHECK(alice.at("cost_usd").as_double() == 0.25);
  const auto& bob = keys[1].as_object();
  CHECK(bob.at("errors") == 1);
  CHECK(bob.at("refused") == 1);
  const auto& providers = usage.at("providers").as_array();
  CHECK(providers.at(0).as_object().at("provider") == "mock");
  CHECK(providers.at(0).as_object().at("inflight") == 1);
}

TEST_CASE("the gateway gate admits through the node's provider gate, the queue path's") {
  auto shared = std::make_shared<provider_gate>(settings());
  gateway_gate gate{shared, {}};
  bundle two;
  two.provider = "anthropic";
  two.items.resize(2);
  shared->start_call(two, t0); // the bundler sent 2 of the 3 requests a minute
  CHECK_FALSE(gate.admit("anthropic", "", 1, t0));
  auto refused = gate.admit("anthropic", "", 1, t0);
  REQUIRE(refused);
  CHECK(refused->code == "rate_limit_exceeded");
  CHECK(shared->gateway_inflight("anthropic") == 1);
  // Failing gateway calls open the breaker the bundler asks.
  for (int i = 0; i < 2; ++i) {
    REQUIRE_FALSE(gate.admit("google", "", 1, t0));
    gate.finish("google", "", false, true, 0, 0, 0.0, {}, t0);
  }
  CHECK_FALSE(shared->has_capacity("google", t0));
  CHECK(shared->breaker("google").state() == breaker_state::open);
}
