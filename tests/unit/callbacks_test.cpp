// The callbacks actor driven deterministically: CAF's test coordinator runs every message on
// the test thread, the actor's clock is a manual one moved together with the coordinator's,
// and the HTTP transport is a fake that records POSTs and answers from a script. The real
// SQLite store (manual commits) shows which results were marked delivered.

#include "actors/callbacks.hpp"
#include "fixtures/deterministic.hpp"
#include "runtime/callback_signature.hpp"
#include "runtime/ids.hpp"
#include "runtime/store.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <set>

using namespace lps;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

// Peers hold callbacks_actor: it takes deliveries and status, never the actor's own
// messages, which only callbacks_impl_actor (the actor itself) takes. Checked at compile time.
template <class Handle, class... Message>
constexpr bool takes =
    caf::detail::tl_contains<typename Handle::signatures, caf::reacts_to<Message...>>::value;
static_assert(takes<callbacks_actor, atom::deliver, std::vector<delivery>>);
static_assert(!takes<callbacks_actor, atom::retry_due>);
static_assert(
    !takes<callbacks_actor, atom::callback_answered, delivery, uint32_t, std::string, bool>);
static_assert(takes<callbacks_impl_actor, atom::retry_due>);
static_assert(
    takes<callbacks_impl_actor, atom::callback_answered, delivery, uint32_t, std::string, bool>);

/// Records callback POSTs and answers them from a script (200 when it runs out).
struct fake_transport : http_transport {
  std::vector<http_client_request> requests;
  std::vector<http_client_response> answers;
  /// Requests to URLs starting with this prefix never get an answer (a hung receiver).
  std::string hang_prefix = "http://never-set";
  std::vector<http_client_callback> hung;

  void send(http_client_request request, http_client_callback done) override {
    requests.push_back(request);
    if (request.url.starts_with(hang_prefix)) {
      hung.push_back(std::move(done));
      return;
    }
    http_client_response answer{200, "", {}, transport_error::none, ""};
    if (!answers.empty()) {
      answer = answers.front();
      answers.erase(answers.begin());
    }
    done(answer);
  }

  void answer_statuses(std::initializer_list<unsigned> statuses) {
    for (auto status : statuses)
      answers.push_back({status, "", {}, transport_error::none, ""});
  }
};

struct callbacks_fixture : test::deterministic_fixture {
  fs::path dir = fs::temp_directory_path() / ("lps_callbacks_test_" + new_uuid());
  std::unique_ptr<store> db;
  fake_transport http;
  /// The actor's wall clock; step() moves it with the coordinator's.
  caf::timestamp clock = caf::make_timestamp();
  const caf::timestamp started_at = clock;
  callbacks_impl_actor actor;

  callbacks_fixture() {
    std::string error;
    db = store::open(
        {.data_dir = dir.string(), .fsync_every_commit = false, .manual_commits = true}, error);
    REQUIRE(db);
  }

  ~callbacks_fixture() {
    for (auto& hdl : spawned)
      caf::anon_send_exit(hdl, caf::exit_reason::user_shutdown);
    sched.run();
    spawned.clear();
    db.reset();
    fs::remove_all(dir);
  }

  callbacks_config config() {
    callbacks_config c;
    c.jitter_seed = 7;
    c.now = [this] { return clock; };
    return c;
  }

  void start(callbacks_config c) {
    actor = spawn(callbacks, c, static_cast<http_transport*>(&http), db.get(), metrics_actor{});
  }

  /// Stores a final result for `queue_id` and hands its event to the actor.
  void deliver(const std::string& queue_id, const std::string& url) {
    auto event = R"({"event_id":")" + stable_uuid("event", queue_id) + R"("})";
    store_write write;
    write.finals.push_back({queue_id, "completed", event, url, false, 1});
    db->submit(std::move(write), [](bool ok, const std::string& error) {
      INFO(error);
      REQUIRE(ok);
    });
    db->flush();
    self->send(actor, atom::deliver_v, std::vector<delivery>{{queue_id, url, event, 0}});
    settle();
  }

  void settle() {
    sched.run();
    db->flush();
    sched.run();
  }

  /// Moves both clocks by `d` and runs what became due.
  void step(caf::timespan d) {
    clock += d;
    sched.advance_time(d);
    settle();
  }

  /// The store's record of a give-up: attempts, last error, and a time from the actor's clock.
  void check_given_up(const std::string& queue_id, uint32_t attempts, const std::string& error) {
    auto row = db->find_result(queue_id);
    REQUIRE(row);
    auto ms = [](caf::timestamp t) {
      return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
    };
    CHECK(row->delivery_failed_at_ms >= ms(started_at));
    CHECK(row->delivery_failed_at_ms <= ms(clock));
    CHECK(row->delivery_attempts == attempts);
    CHECK(row->last_delivery_error == error);
    CHECK(db->load_undelivered_results().empty());
  }

  bool delivered(const std::string& queue_id) {
    auto row = db->find_result(queue_id);
    REQUIRE(row);
    return row->delivered;
  }

  callbacks_state& state() {
    return state_of<callbacks_state>(actor);
  }
};

} // namespace

TEST_CASE("callbacks are retried until the receiver accepts and then marked delivered") {
  callbacks_fixture fx;
  auto cfg = fx.config();
  cfg.retry_base_delay = 0ns;
  fx.start(cfg);
  fx.http.answer_statuses({500, 503});
  fx.deliver("q1", "http://127.0.0.1:9/results");
  CHECK_FALSE(fx.delivered("q1"));
  for (int i = 0; i < 3; ++i)
    fx.step(100ms); // one tick each (tick_interval 100 ms)
  CHECK(fx.http.requests.size() == 3);
  CHECK(fx.delivered("q1"));
  // Every attempt carried the same event.
  std::set<std::string> bodies;
  for (const auto& r : fx.http.requests)
    bodies.insert(r.body);
  CHECK(bodies.size() == 1);
  CHECK(fx.state().delivered_total == 1);
  CHECK(fx.state().retried_total == 2);
}

TEST_CASE("a hung callback receiver does not block deliveries to other receivers") {
  callbacks_fixture fx;
  fx.start(fx.config());
  fx.http.hang_prefix = "http://127.0.0.1:1";
  for (int i = 0; i < 40; ++i)
    fx.deliver("slow" + std::to_string(i), "http://127.0.0.1:1/hung");
  fx.deliver("fast", "http://127.0.0.1:2/ok");
  // The hung origin holds its concurrency limit (32) and nothing more; the other origin's
  // delivery went through and was marked delivered.
  CHECK(fx.http.hung.size() == 32);
  CHECK(fx.delivered("fast"));
  CHECK(fx.state().waiting["http://127.0.0.1:1"].size() == 8);
}

TEST_CASE("retries wait the jittered exponential backoff in virtual time") {
  callbacks_fixture fx;
  auto cfg = fx.config(); // base 1 s, cap 60 s, jitter +-50 %, tick 100 ms
  fx.start(cfg);
  fx.http.answer_statuses({500, 500, 500});
  fx.deliver("q1", "http://127.0.0.1:9/cb");
  REQUIRE(fx.http.requests.size() == 1);
  // Step 100 ms at a time and note when each retry goes out.
  std::vector<caf::timespan> sent_at{0ns};
  caf::timespan elapsed = 0ns;
  while (fx.http.requests.size() < 4 && elapsed < 60s) {
    fx.step(100ms);
    elapsed += 100ms;
    if (fx.http.requests.size() > sent_at.size())
      sent_at.push_back(elapsed);
  }
  REQUIRE(sent_at.size() == 4);
  CHECK(fx.delivered("q1"));
  // The waits are the retry policy's backoff with the same seed, each rounded up to the tick.
  lps::jitter_source jitter{cfg.jitter_seed};
  lps::backoff_settings settings; // the callbacks' defaults: 1 s doubling to 60 s, +-50 %
  for (uint32_t attempt = 1; attempt <= 3; ++attempt) {
    auto gap = sent_at[attempt] - sent_at[attempt - 1];
    auto expected = backoff_delay(settings, attempt, jitter.next());
    INFO("attempt " << attempt << " waited " << gap.count() << " ns, backoff " << expected.count()
                    << " ns");
    CHECK(gap >= expected);
    CHECK(gap < expected + 100ms);
    // And within the jitter bounds of the nominal 2^(attempt-1) s.
    auto nominal = std::chrono::milliseconds{1000 << (attempt - 1)};
    CHECK(gap >= nominal / 2);
    CHECK(gap <= nominal * 3 / 2 + 100ms);
  }
}

TEST_CASE("the same jitter seed gives the same retry times") {
  auto retry_time = [](uint64_t seed) {
    callbacks_fixture fx;
    auto cfg = fx.config();
    cfg.jitter_seed = seed;
    fx.start(cfg);
    fx.http.answer_statuses({500});
    fx.deliver("q1", "http://127.0.0.1:9/cb");
    REQUIRE(fx.state().retries.size() == 1);
    return fx.state().retries.begin()->first - fx.clock;
  };
  CHECK(retry_time(11) == retry_time(11));
  CHECK(retry_time(11) != retry_time(12));
}

TEST_CASE("a refused target or bad URL is given up at once with its reason") {
  callbacks_fixture fx;
  fx.start(fx.config());
  const std::string refusal = "callback target 169.254.169.254 is link-local/metadata: refused";
  fx.http.answers.push_back({0, "", {}, transport_error::invalid, refusal});
  fx.deliver("q1", "http://169.254.169.254/latest/meta-data");
  for (int i = 0; i < 20; ++i)
    fx.step(100ms);
  CHECK(fx.http.requests.size() == 1);
  CHECK_FALSE(fx.delivered("q1"));
  CHECK(fx.state().given_up_total == 1);
  CHECK(fx.state().retries.empty());
  CHECK(fx.state().last_error == "invalid: " + refusal);
  fx.check_given_up("q1", 1, "invalid: " + refusal);
  auto status = fx.request<actor_status>(fx.actor, atom::status_v);
  REQUIRE(status);
  CHECK(status->facts["last_error"] == "invalid: " + refusal);
}

TEST_CASE("a redirect is a failed attempt: never followed, retried, then given up") {
  callbacks_fixture fx;
  auto cfg = fx.config();
  cfg.retry_base_delay = 0ns;
  cfg.max_attempts = 2;
  fx.start(cfg);
  http_client_response redirect{
      302, "", {{"location", "http://169.254.169.254/"}}, transport_error::none, ""};
  fx.http.answers = {redirect, redirect};
  fx.deliver("q1", "http://127.0.0.1:9/cb");
  for (int i = 0; i < 5; ++i)
    fx.step(100ms);
  REQUIRE(fx.http.requests.size() == 2);
  for (const auto& r : fx.http.requests)
    CHECK(r.url == "http://127.0.0.1:9/cb");
  CHECK_FALSE(fx.delivered("q1"));
  CHECK(fx.state().given_up_total == 1);
  CHECK(fx.state().last_error == "HTTP 302");
  fx.check_given_up("q1", 2, "HTTP 302");
}

TEST_CASE("with a signing secret every attempt carries X-LPS-Signature over its body") {
  callbacks_fixture fx;
  auto cfg = fx.config();
  cfg.signing_secret = secret{"whsec-test"};
  cfg.retry_base_delay = 0ns;
  fx.start(cfg);
  fx.http.answer_statuses({500});
  fx.clock = caf::timestamp{std::chrono::seconds{1700000000}};
  fx.deliver("q1", "http://127.0.0.1:9/cb");
  fx.step(2s); // the retry is signed with its own time
  REQUIRE(fx.http.requests.size() == 2);
  for (size_t i = 0; i < 2; ++i) {
    const auto& req = fx.http.requests[i];
    auto t = std::to_string(1700000000 + 2 * i);
    std::string header;
    for (const auto& [name, value] : req.headers)
      if (name == "X-LPS-Signature")
        header = value;
    // t=<unix seconds of the attempt>,v1=<HMAC-SHA256(secret, "<t>.<body>")> (RFC 2104 HMAC,
    // checked against openssl in callback_signature_test).
    CHECK(header == "t=" + t + ",v1=" + hmac_sha256_hex("whsec-test", t + "." + req.body));
  }
  CHECK(fx.delivered("q1"));
}

TEST_CASE("without a signing secret callbacks carry no signature header") {
  callbacks_fixture fx;
  fx.start(fx.config());
  fx.deliver("q1", "http://127.0.0.1:9/cb");
  REQUIRE(fx.http.requests.size() == 1);
  for (const auto& [name, value] : fx.http.requests[0].headers)
    CHECK(name != "X-LPS-Signature");
}
