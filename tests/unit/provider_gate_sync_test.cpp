// The provider gate shared by the queue path and the gateway on one node, and its sync
// across a cluster (actors/provider_gate_sync.cpp): two gates stand for the leader and a
// follower, the sync messages passed by hand, time passed in.

#include "actors/provider_gate.hpp"
#include "fixtures/outcomes.hpp"

#include <catch2/catch.hpp>

using namespace lps;
using lps::test::failure;
using lps::test::success;
using namespace std::chrono_literals;

namespace {

const clock_time t0 = clock_time{} + 1h;

bundle bundle_of(const std::string& provider, size_t items) {
  bundle result;
  result.provider = provider;
  result.items.resize(items);
  return result;
}

provider_gate_settings limited(uint64_t requests_per_minute, uint32_t max_inflight = 64) {
  provider_gate_settings result;
  result.rate_limits["openai"] = {requests_per_minute, 0};
  result.max_inflight["openai"] = max_inflight;
  result.breaker.failure_threshold = 2;
  result.breaker.open_duration = 30s;
  result.breaker.success_threshold = 1;
  return result;
}

/// Admits gateway calls until one is refused; how many went.
int admit_all(provider_gate& gate, clock_time now) {
  int n = 0;
  while (!gate.admit_gateway("openai", 1, now) && n < 1000)
    ++n;
  return n;
}

const gate_provider_state& state_of(const gate_sync& sync, const std::string& provider) {
  for (const auto& x : sync.providers)
    if (x.provider == provider)
      return x;
  FAIL("no state for " << provider);
  return sync.providers.front();
}

const gate_provider_use& use_of(const gate_report& report, const std::string& provider) {
  for (const auto& x : report.providers)
    if (x.provider == provider)
      return x;
  FAIL("no use of " << provider);
  return report.providers.front();
}

} // namespace

TEST_CASE("queued bundles and gateway calls take the same requests per minute") {
  provider_gate gate{limited(10)};
  gate.start_call(bundle_of("openai", 6), t0);
  CHECK(admit_all(gate, t0) == 4);
  auto refused = gate.admit_gateway("openai", 1, t0);
  REQUIRE(refused);
  CHECK(refused->why == gate_refusal::reason::rate);
  CHECK(refused->wait > 0s);
  CHECK(gate.request_budget("openai", t0) == 0);
  CHECK(gate.blocked_for("openai", t0) > 0s); // the bundler waits too
}

TEST_CASE("gateway calls and bundles on this node share its call slots") {
  provider_gate gate{limited(0, 2)};
  gate.start_call(bundle_of("openai", 1), t0, true);
  gate.start_call(bundle_of("openai", 1), t0, false); // on another node: not this node's slot
  CHECK_FALSE(gate.admit_gateway("openai", 1, t0));
  CHECK(gate.gateway_inflight("openai") == 1);
  auto refused = gate.admit_gateway("openai", 1, t0);
  REQUIRE(refused);
  CHECK(refused->why == gate_refusal::reason::concurrency);
  CHECK(refused->inflight == 2);
  gate.finish_call("openai", {success()}, t0, true);
  CHECK_FALSE(gate.admit_gateway("openai", 1, t0));
  CHECK(gate.gateway_inflight("openai") == 2);
  gate.finish_gateway("openai", false, t0);
  CHECK(gate.gateway_inflight("openai") == 1);
}

TEST_CASE("a breaker opened by queued calls refuses gateway calls, and the reverse") {
  SECTION("queued calls open it") {
    provider_gate gate{limited(0)};
    for (int i = 0; i < 2; ++i) {
      gate.start_call(bundle_of("openai", 1), t0);
      gate.finish_call("openai", {failure("EXTERNAL_SERVICE_ERROR")}, t0);
    }
    auto refused = gate.admit_gateway("openai", 1, t0 + 10s);
    REQUIRE(refused);
    CHECK(refused->why == gate_refusal::reason::breaker);
    CHECK(refused->wait == 20s);
  }
  SECTION("gateway calls open it") {
    provider_gate gate{limited(0)};
    for (int i = 0; i < 2; ++i) {
      REQUIRE_FALSE(gate.admit_gateway("openai", 1, t0));
      gate.finish_gateway("openai", true, t0);
    }
    CHECK(gate.breaker("openai").state() == breaker_state::open);
    CHECK(gate.blocked_for("openai", t0 + 10s) == 20s);
    CHECK_FALSE(gate.has_capacity("openai", t0 + 10s));
  }
}

TEST_CASE("a follower's gateway spends its lease, never more, and gives back the rest") {
  provider_gate leader{limited(60)};
  provider_gate follower{limited(60)};
  auto sync = leader.lease_to("n2", {}, 1, 2s, t0);
  const auto& x = state_of(sync, "openai");
  CHECK(x.lease_requests == 4); // at least 4 when nothing was used yet
  CHECK(x.requests_level == 56);
  CHECK(leader.request_budget("openai", t0) == 56); // taken from the leader's bucket at once
  follower.follow(sync, t0);
  CHECK(follower.request_budget("openai", t0) == 56); // mirrored
  CHECK(admit_all(follower, t0) == 4);
  auto refused = follower.admit_gateway("openai", 1, t0);
  REQUIRE(refused);
  CHECK(refused->why == gate_refusal::reason::rate);
  // Next sync: the follower reports 4 used; the leader sizes the next lease on it.
  auto report = follower.follow(leader.lease_to("n2", {}, 1, 2s, t0 + 500ms), t0 + 500ms);
  CHECK(use_of(report, "openai").used_requests == 4);
  CHECK(use_of(report, "openai").unused_requests == 0);
  leader.settle("n2", report, t0 + 500ms);
  auto bigger = leader.lease_to("n2", {}, 1, 2s, t0 + 1s);
  CHECK(state_of(bigger, "openai").lease_requests == 8);
  // Unused lease comes back to the leader's bucket.
  auto budget = *leader.request_budget("openai", t0 + 1s);
  report = follower.follow(bigger, t0 + 1s);
  report = follower.follow(leader.lease_to("n2", {}, 1, 2s, t0 + 1s), t0 + 1s);
  CHECK(use_of(report, "openai").unused_requests == 8);
  leader.settle("n2", report, t0 + 1s);
  // The 8 are back, and no request is held back any more for a follower that used none.
  CHECK(*leader.request_budget("openai", t0 + 1s) == budget + 1);
}

TEST_CASE("leases never exceed an even share of the leader's bucket") {
  provider_gate leader{limited(6)};
  auto a = leader.lease_to("n2", {}, 2, 2s, t0);
  auto b = leader.lease_to("n3", {}, 2, 2s, t0);
  CHECK(state_of(a, "openai").lease_requests == 2); // 6 / 3
  CHECK(state_of(b, "openai").lease_requests == 1); // 4 / 3
  CHECK(leader.request_budget("openai", t0) == 3);
  // Leader and followers together stay within the bucket.
  provider_gate n2{limited(6)}, n3{limited(6)};
  n2.follow(a, t0);
  n3.follow(b, t0);
  CHECK(admit_all(leader, t0) + admit_all(n2, t0) + admit_all(n3, t0) == 6);
}

TEST_CASE("leases given back after the leader's bucket was spent add nothing to the limit") {
  provider_gate leader{limited(60)};
  provider_gate n2{limited(60)}, n3{limited(60)};
  // Idle syncs for 5 s: each follower gets its lease of 4 and gives the last one back unused.
  auto t = t0;
  for (; t < t0 + 5s; t += 500ms)
    for (auto* node : {&n2, &n3}) {
      auto name = node == &n2 ? "n2" : "n3";
      leader.settle(name, node->follow(leader.lease_to(name, {}, 2, 2s, t), t), t);
    }
  // The leader's bundles spend all its bucket holds while the followers still hold 8.
  auto spent = *leader.request_budget("openai", t);
  leader.start_call(bundle_of("openai", size_t(spent)), t);
  // The next sync brings the 8 back unused. The bucket refilled behind them while they were
  // lent, so they must not come on top: 60 in all (what was spent, what the bucket holds and
  // the new leases), not 68.
  int64_t leased = 0;
  for (auto* node : {&n2, &n3}) {
    auto name = node == &n2 ? "n2" : "n3";
    auto sync = leader.lease_to(name, {}, 2, 2s, t);
    leased += state_of(sync, "openai").lease_requests;
    leader.settle(name, node->follow(sync, t), t);
  }
  CHECK(spent == 52); // 60 less the 8 lent
  CHECK(spent + *leader.request_budget("openai", t) + leased == 60);
}

TEST_CASE("without a sync the lease expires and the follower goes by its mirrored bucket") {
  provider_gate leader{limited(60)};
  provider_gate follower{limited(60)};
  leader.start_call(bundle_of("openai", 50), t0);
  follower.follow(leader.lease_to("n2", {}, 1, 2s, t0), t0);
  CHECK(follower.request_budget("openai", t0) == 6);
  CHECK(admit_all(follower, t0 + 1s) == 4); // the lease
  // The leader is gone: past the lease the mirror (6, refilled a request a second) admits.
  CHECK(admit_all(follower, t0 + 2s) == 8);
}

TEST_CASE("a follower's failing gateway calls open the leader's breaker, which reaches every "
          "follower") {
  provider_gate leader{limited(0)};
  provider_gate n2{limited(0)}, n3{limited(0)};
  n2.follow(leader.lease_to("n2", {}, 2, 2s, t0), t0);
  n3.follow(leader.lease_to("n3", {}, 2, 2s, t0), t0);
  for (int i = 0; i < 2; ++i) {
    REQUIRE_FALSE(n2.admit_gateway("openai", 1, t0));
    n2.finish_gateway("openai", true, t0);
  }
  CHECK(
      leader.settle("n2", n2.follow(leader.lease_to("n2", {}, 2, 2s, t0 + 1s), t0 + 1s), t0 + 1s));
  CHECK(leader.breaker("openai").state() == breaker_state::open);
  CHECK_FALSE(leader.has_capacity("openai", t0 + 1s)); // the queue path waits
  n3.follow(leader.lease_to("n3", {}, 2, 2s, t0 + 2s), t0 + 2s);
  auto refused = n3.admit_gateway("openai", 1, t0 + 2s);
  REQUIRE(refused);
  CHECK(refused->why == gate_refusal::reason::breaker);
  CHECK(refused->wait == 29s);
}

TEST_CASE("a new leader starts from the last state it mirrored, not full buckets") {
  provider_gate old_leader{limited(60)};
  provider_gate next{limited(60)};
  // The provider said it has 3 requests left until a reset in 40 s.
  old_leader.start_call(bundle_of("openai", 1), t0);
  auto learned = success();
  learned.limits.remaining_requests = 3;
  learned.limits.requests_reset = 40s;
  old_leader.finish_call("openai", {learned}, t0);
  for (int i = 0; i < 2; ++i) { // and its breaker is open
    old_leader.start_call(bundle_of("openai", 1), t0);
    old_leader.finish_call("openai", {failure("TIMEOUT")}, t0);
  }
  next.follow(old_leader.lease_to("n2", {}, 1, 2s, t0), t0);
  // The old leader dies; `next` leads: its bundler starts a term on the mirrored gate.
  next.begin_term(t0);
  CHECK(next.request_budget("openai", t0 + 1s) <= 3);
  CHECK(next.breaker("openai").state() == breaker_state::open);
  CHECK(next.blocked_for("openai", t0 + 1s) >= 29s);
  // At the provider's reset the bucket is full again.
  CHECK(next.request_budget("openai", t0 + 41s) == 60);
}

TEST_CASE("the leader's bundles on a follower take that follower's call slots") {
  provider_gate leader{limited(0, 2)};
  provider_gate follower{limited(0, 2)};
  follower.follow(leader.lease_to("n2", {{"openai", 2}}, 1, 2s, t0), t0);
  auto refused = follower.admit_gateway("openai", 1, t0);
  REQUIRE(refused);
  CHECK(refused->why == gate_refusal::reason::concurrency);
  follower.follow(leader.lease_to("n2", {{"openai", 1}}, 1, 2s, t0), t0);
  CHECK_FALSE(follower.admit_gateway("openai", 1, t0));
  auto report = follower.follow(leader.lease_to("n2", {}, 1, 2s, t0), t0);
  CHECK(use_of(report, "openai").gateway_inflight == 1);
}

TEST_CASE("a follower refused for want of a lease gets the next request before the bundler") {
  provider_gate leader{limited(60)};
  provider_gate follower{limited(60)};
  leader.start_call(bundle_of("openai", 60), t0); // the queue path took the whole bucket
  follower.follow(leader.lease_to("n2", {}, 1, 2s, t0), t0);
  CHECK(follower.admit_gateway("openai", 1, t0)); // no lease: refused
  leader.settle("n2", follower.follow(leader.lease_to("n2", {}, 1, 2s, t0), t0), t0);
  // A request refills in a second; the bundler leaves it for the follower's next lease.
  CHECK(leader.request_budget("openai", t0 + 1s) == 0);
  CHECK(leader.blocked_for("openai", t0 + 1s) > 0s);
  auto sync = leader.lease_to("n2", {}, 1, 2s, t0 + 1s);
  CHECK(state_of(sync, "openai").lease_requests == 1);
  follower.follow(sync, t0 + 1s);
  CHECK_FALSE(follower.admit_gateway("openai", 1, t0 + 1s));
  // Once the node is gone nothing is held back for it.
  leader.forget_node("n2", t0 + 1s);
  CHECK(leader.request_budget("openai", t0 + 2s) == 1);
}

namespace {

/// What a provider's rate-limit headers say: `requests` left until a reset in `reset`.
rate_limit_hint requests_left(int64_t requests, std::chrono::milliseconds reset) {
  rate_limit_hint result;
  result.remaining_requests = requests;
  result.requests_reset = reset;
  return result;
}

} // namespace

TEST_CASE("a gateway answer's rate-limit headers hold for gateway and queued calls") {
  provider_gate gate{limited(60)};
  REQUIRE_FALSE(gate.admit_gateway("openai", 1, t0));
  gate.finish_gateway("openai", false, t0, requests_left(0, 30s));
  auto refused = gate.admit_gateway("openai", 1, t0 + 1s);
  REQUIRE(refused);
  CHECK(refused->why == gate_refusal::reason::rate);
  CHECK(refused->wait == 29s);
  CHECK_FALSE(gate.has_capacity("openai", t0 + 1s)); // the bundler waits too
  CHECK(gate.blocked_for("openai", t0 + 1s) == 29s);
  // A retried call's first answer is learned before the call ends.
  gate.learn_gateway("openai", requests_left(0, 40s), t0 + 2s);
  CHECK(gate.blocked_for("openai", t0 + 2s) == 40s);
  // At the provider's reset the bucket is full again.
  CHECK(gate.request_budget("openai", t0 + 42s) == 60);
}

TEST_CASE("a follower's gateway answers cut its lease and teach the leader with the next report") {
  provider_gate leader{limited(60)};
  provider_gate follower{limited(60)};
  follower.follow(leader.lease_to("n2", {}, 1, 2s, t0), t0);
  REQUIRE_FALSE(follower.admit_gateway("openai", 1, t0));
  follower.finish_gateway("openai", false, t0, requests_left(0, 20s));
  // The lease had 3 more; the provider said none is left: refused until its reset.
  auto refused = follower.admit_gateway("openai", 1, t0);
  REQUIRE(refused);
  CHECK(refused->why == gate_refusal::reason::rate);
  CHECK(refused->wait == 20s);
  // The leader's next sync was made before it heard: its lease is cut here too.
  auto report = follower.follow(leader.lease_to("n2", {}, 1, 2s, t0 + 500ms), t0 + 500ms);
  CHECK(use_of(report, "openai").limits == requests_left(0, 19500ms));
  CHECK(follower.admit_gateway("openai", 1, t0 + 500ms));
  leader.settle("n2", report, t0 + 500ms);
  CHECK(leader.blocked_for("openai", t0 + 500ms) == 19500ms); // the queue path waits
  CHECK(leader.admit_gateway("openai", 1, t0 + 500ms));
  CHECK(state_of(leader.lease_to("n2", {}, 1, 2s, t0 + 1s), "openai").lease_requests == 0);
  // Reported once: the next report has nothing new, and figures past their reset say nothing.
  follower.finish_gateway("openai", false, t0 + 1s, requests_left(5, 1s));
  report = follower.follow(leader.lease_to("n2", {}, 1, 2s, t0 + 3s), t0 + 3s);
  CHECK(use_of(report, "openai").limits.empty());
}

TEST_CASE("a follower mirrors the leader's breaker failure count, so a next leader counts on") {
  auto settings = limited(0);
  settings.breaker.failure_threshold = 3;
  provider_gate leader{settings};
  provider_gate next{settings};
  for (int i = 0; i < 2; ++i) {
    leader.start_call(bundle_of("openai", 1), t0);
    leader.finish_call("openai", {failure("TIMEOUT")}, t0);
  }
  auto sync = leader.lease_to("n2", {}, 1, 2s, t0);
  CHECK(state_of(sync, "openai").breaker_failures == 2);
  next.follow(sync, t0);
  CHECK(next.breaker("openai").consecutive_failures() == 2);
  // The old leader dies; the next one's third failure in a row opens its breaker.
  next.begin_term(t0 + 1s);
  next.start_call(bundle_of("openai", 1), t0 + 1s);
  next.finish_call("openai", {failure("TIMEOUT")}, t0 + 1s);
  CHECK(next.breaker("openai").state() == breaker_state::open);
}

TEST_CASE("a follower's own unreported failures add to the mirrored count, a success resets it") {
  auto settings = limited(0);
  settings.breaker.failure_threshold = 3;
  provider_gate leader{settings};
  provider_gate follower{settings};
  leader.start_call(bundle_of("openai", 1), t0);
  leader.finish_call("openai", {failure("TIMEOUT")}, t0);
  REQUIRE_FALSE(follower.admit_gateway("openai", 1, t0));
  follower.finish_gateway("openai", true, t0);
  // The leader's count (1) plus the failure this report carries to it (the leader adds it).
  auto report = follower.follow(leader.lease_to("n2", {}, 1, 2s, t0), t0);
  CHECK(follower.breaker("openai").consecutive_failures() == 2);
  leader.settle("n2", report, t0);
  CHECK(leader.breaker("openai").consecutive_failures() == 2);
  // A success reported with a failure after it leaves one, on both sides.
  REQUIRE_FALSE(follower.admit_gateway("openai", 1, t0));
  follower.finish_gateway("openai", false, t0);
  REQUIRE_FALSE(follower.admit_gateway("openai", 1, t0));
  follower.finish_gateway("openai", true, t0);
  report = follower.follow(leader.lease_to("n2", {}, 1, 2s, t0), t0);
  leader.settle("n2", report, t0);
  CHECK(follower.breaker("openai").consecutive_failures() == 1);
  CHECK(leader.breaker("openai").consecutive_failures() == 1);
}
