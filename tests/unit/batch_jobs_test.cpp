// The batch jobs actor under CAF's test coordinator with simulated time: when jobs are
// formed (opportunistic count and age, the nightly window), how the queue is cut into jobs
// (item limit, one model per job), and that a job is recorded durably before its first
// provider call. The provider is a transport that records calls and never answers; the
// whole flow against the mock server's batch endpoints is in service_test.

#include "actors/batch_jobs.hpp"
#include "actors/callbacks.hpp"
#include "actors/intake.hpp"
#include "actors/metrics.hpp"
#include "actors/providers/openai_batch_format.hpp"
#include "actors/queue_manager.hpp"
#include "fixtures/deterministic.hpp"
#include "runtime/ids.hpp"
#include "runtime/store.hpp"

#include <catch2/catch.hpp>

#include <filesystem>

using namespace lps;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

/// Records every call; answers none (each test looks only at what was sent).
struct silent_transport : http_transport {
  std::vector<http_client_request> requests;
  std::vector<http_client_callback> pending;
  void send(http_client_request request, http_client_callback done) override {
    requests.push_back(std::move(request));
    pending.push_back(std::move(done));
  }
  size_t uploads() const {
    return static_cast<size_t>(std::count_if(
        requests.begin(), requests.end(), [](const auto& r) { return r.url.ends_with("/files"); }));
  }
};

/// Custom ids in an upload's multipart body.
size_t items_in(const http_client_request& upload) {
  size_t n = 0;
  for (size_t at = 0; (at = upload.body.find("\"custom_id\"", at)) != std::string::npos; ++at)
    ++n;
  return n;
}

struct batch_fixture : test::deterministic_fixture {
  fs::path dir = fs::temp_directory_path() / ("lps_batch_jobs_test_" + new_uuid());
  std::unique_ptr<store> db;
  std::unique_ptr<batch_job_store> jobs_db;
  silent_transport http;
  metrics_actor metrics_hdl;
  queue_manager_actor queue;
  intake_actor intake_hdl;
  batch_jobs_actor batch;
  /// The simulated wall clock the batch actor reads (starts at the real time, because intake
  /// stamps requests with it).
  caf::timestamp clock = caf::make_timestamp();

  batch_fixture() {
    std::string error;
    db = store::open({dir.string(), false, 4096, true}, error);
    REQUIRE(db);
    jobs_db = batch_job_store::open({dir.string(), false}, error);
    REQUIRE(jobs_db);
    metrics_hdl = spawn(metrics);
    callbacks_config cb;
    auto callbacks_hdl =
        spawn(callbacks, cb, static_cast<http_transport*>(&http), db.get(), metrics_hdl);
    queue_manager_config qm;
    qm.default_provider = "openai";
    queue = spawn(queue_manager, qm, db.get(), metrics_hdl, callbacks_hdl);
    intake_hdl = spawn(intake, intake_config{}, queue);
  }

  ~batch_fixture() {
    for (auto& hdl : spawned)
      caf::anon_send_exit(hdl, caf::exit_reason::user_shutdown);
    sched.run();
    spawned.clear();
    jobs_db.reset();
    db.reset();
    fs::remove_all(dir);
  }

  batch_jobs_config config() {
    batch_jobs_config c;
    c.provider = "openai";
    c.target.base_url = "http://127.0.0.1:9/v1";
    c.target.api_key = "sk-test";
    c.default_model = "gpt-4o-mini";
    c.min_items = 5;
    c.max_wait = 60s;
    c.check_interval = 1s;
    c.now = [this] { return clock; };
    c.minute_of_day = [](caf::timestamp t) {
      auto secs = std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
      return static_cast<int>((secs / 60) % (24 * 60));
    };
    return c;
  }

  void start(batch_jobs_config c) {
    batch = spawn(batch_jobs, c, std::make_shared<openai_batch_wire>(),
                  static_cast<http_transport*>(&http), jobs_db.get(), queue, metrics_hdl);
    settle();
  }

  void settle() {
    for (int i = 0; i < 100; ++i) {
      sched.run();
      db->flush();
      if (!sched.has_job())
        return;
    }
    FAIL("the actors did not settle");
  }

  /// One check interval of simulated time (actor timers and the wall clock together).
  void step(caf::timespan d = 1s) {
    clock += d;
    sched.advance_time(d);
    settle();
  }

  void submit(size_t n, const std::string& model = "") {
    std::vector<comparison_request> xs;
    for (size_t i = 0; i < n; ++i) {
      comparison_request x;
      x.user_prompt = "Essay A: " + std::to_string(i) + " " + new_uuid() + ". Essay B: other.";
      x.correlation_id = new_uuid();
      x.overrides.model = model;
      xs.push_back(std::move(x));
    }
    auto rh = self->request(intake_hdl, caf::infinite, atom::submit_v, std::move(xs));
    settle();
    rh.receive([](std::vector<enqueue_outcome>&) {},
               [](caf::error& err) { FAIL("submit failed: " << caf::to_string(err)); });
  }
};

} // namespace

TEST_CASE("opportunistic: a job starts when enough requests wait") {
  batch_fixture fx;
  fx.start(fx.config());
  fx.submit(4);
  fx.step();
  CHECK(fx.http.uploads() == 0); // 4 < BATCH_API_MIN_ITEMS (5), and none is old yet
  fx.submit(1);
  fx.step();
  REQUIRE(fx.http.uploads() == 1);
  CHECK(items_in(fx.http.requests.back()) == 5);
  // Recorded before the upload: the job and its items are in the store.
  auto jobs = fx.jobs_db->list(10);
  REQUIRE(jobs.size() == 1);
  CHECK(jobs[0].state == "created");
  CHECK(jobs[0].item_count == 5);
  CHECK(fx.jobs_db->load_owned_items().size() == 5);
  // The key goes only into the Authorization header.
  CHECK(fx.http.requests.back().body.find("sk-test") == std::string::npos);
}

TEST_CASE("opportunistic: a job starts when the oldest request has waited long enough") {
  batch_fixture fx;
  fx.start(fx.config());
  fx.submit(2);
  fx.step(30s);
  CHECK(fx.http.uploads() == 0);
  fx.step(31s); // the oldest has now waited more than BATCH_API_MAX_WAIT_SECONDS (60)
  REQUIRE(fx.http.uploads() == 1);
  CHECK(items_in(fx.http.requests.back()) == 2);
}

TEST_CASE("nightly: jobs start only inside the window") {
  batch_fixture fx;
  auto c = fx.config();
  c.mode = batch_api_mode::nightly;
  c.window_start_minute = 60; // 01:00
  c.window_end_minute = 120;  // 02:00
  // The simulated day starts at 00:30 UTC.
  fx.clock = std::chrono::floor<std::chrono::days>(caf::make_timestamp()) + 30min;
  fx.start(c);
  fx.submit(10);
  for (int i = 0; i < 5; ++i)
    fx.step(5min); // 00:55 at the end: still outside
  CHECK(fx.http.uploads() == 0);
  fx.step(10min); // 01:05
  REQUIRE(fx.http.uploads() == 1);
  CHECK(items_in(fx.http.requests.back()) == 10);
}

TEST_CASE("jobs respect the item limit and hold one model each") {
  batch_fixture fx;
  auto c = fx.config();
  c.min_items = 1;
  c.max_items_per_job = 4;
  fx.start(c);
  fx.submit(6);
  fx.submit(3, "gpt-4.1-mini");
  for (int i = 0; i < 5; ++i)
    fx.step();
  // Dequeued at most 4 per look: 4, then 2 + 2 of the other model (one job per model), ...
  size_t total = 0;
  std::map<std::string, size_t> per_model;
  for (const auto& job : fx.jobs_db->list(100)) {
    CHECK(job.item_count <= 4);
    per_model[job.model] += job.item_count;
    total += job.item_count;
  }
  CHECK(total == 9);
  CHECK(per_model["gpt-4o-mini"] == 6);
  CHECK(per_model["gpt-4.1-mini"] == 3);
  CHECK(fx.http.uploads() == fx.jobs_db->list(100).size());
  for (const auto& upload : fx.http.requests)
    CHECK(items_in(upload) <= 4);
}
