// The batch jobs actor under CAF's test coordinator with simulated time: when jobs are
// formed (opportunistic count and age, the nightly window), how the queue is cut into jobs
// (item limit, one model per job), and that a job is recorded durably before its first
// provider call, and each step before the next. The provider is a transport that records
// calls and never answers, or answers from a script; the whole flow against the mock
// server's batch endpoints is in service_test. The cases tagged [restart] (a job resumed
// from each stored state) run again on PostgreSQL (fixtures/batch_job_store_backend.hpp).

#include "actors/batch_jobs.hpp"
#include "actors/callbacks.hpp"
#include "actors/intake.hpp"
#include "actors/metrics.hpp"
#include "actors/providers/openai_batch_format.hpp"
#include "actors/queue_manager.hpp"
#include "fixtures/batch_job_store_backend.hpp"
#include "fixtures/deterministic.hpp"
#include "fixtures/manual_reads.hpp"
#include "runtime/ids.hpp"
#include "runtime/store.hpp"

#include <boost/json.hpp>
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

/// Answers by URL with canned bodies (OpenAI shapes), synchronously; records every call.
struct scripted_transport : http_transport {
  std::vector<http_client_request> requests;
  /// URL suffix -> body of a 200 answer; unmatched URLs get a 500.
  std::vector<std::pair<std::string, std::string>> answers;
  /// URL suffixes the provider answers 404 (a job it no longer knows).
  std::vector<std::string> gone;
  void send(http_client_request request, http_client_callback done) override {
    requests.push_back(request);
    for (const auto& suffix : gone)
      if (request.url.ends_with(suffix))
        return done(http_client_response{
            404,
            R"({"error":{"message":"No batch found","type":"invalid_request_error"}})",
            {},
            transport_error::none,
            ""});
    for (const auto& [suffix, body] : answers)
      if (request.url.ends_with(suffix))
        return done(http_client_response{200, body, {}, transport_error::none, ""});
    done(http_client_response{
        500, R"({"error":{"message":"no","type":"server_error"}})", {}, transport_error::none, ""});
  }
  size_t calls_to(std::string_view suffix) const {
    return static_cast<size_t>(std::count_if(requests.begin(), requests.end(), [&](const auto& r) {
      return r.url.ends_with(suffix) || r.url.find(std::string{suffix} + "?") != std::string::npos;
    }));
  }
};

/// A chat.completion body with a verdict, as a batch output line's response body.
std::string output_line(const std::string& custom_id) {
  return R"({"id":"batch_req_1","custom_id":")" + custom_id
         + R"(","response":{"status_code":200,"request_id":"r","body":{"id":"c","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"{\"winner\":\"Essay B\",\"justification\":\"b\",\"confidence\":4}"},"finish_reason":"stop"}],"usage":{"prompt_tokens":100,"completion_tokens":20,"total_tokens":120}}},"error":null})";
}

std::string batch_object(const std::string& status, const std::string& lps_job_id = "") {
  return R"({"id":"batch_abc","object":"batch","endpoint":"/v1/chat/completions","status":")"
         + status + R"(","input_file_id":"file-in","output_file_id":)"
         + (status == "completed" ? std::string{R"("file-out")"} : std::string{"null"})
         + R"(,"error_file_id":null,"request_counts":{"total":3,"completed":3,"failed":0},"metadata":{"lps_job_id":")"
         + lps_job_id + R"("},"created_at":1700000000})";
}

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
  /// The queue manager's reads; they run when the test settles.
  std::unique_ptr<store_reader> reads;
  silent_transport http;
  scripted_transport scripted;
  metrics_actor metrics_hdl;
  queue_manager_actor queue;
  intake_actor intake_hdl;
  batch_jobs_actor batch;
  /// The simulated wall clock the batch actor reads (starts at the real time, because intake
  /// stamps requests with it).
  caf::timestamp clock = caf::make_timestamp();

  batch_fixture() {
    std::string error;
    db = test::open_backend_store(
        {.data_dir = dir.string(), .fsync_every_commit = false, .manual_commits = true}, error);
    INFO(error);
    REQUIRE(db);
    jobs_db = test::open_backend_batch_job_store({dir.string(), false}, error);
    INFO(error);
    REQUIRE(jobs_db);
    metrics_hdl = spawn(metrics);
    callbacks_config cb;
    auto callbacks_hdl =
        spawn(callbacks, cb, static_cast<http_transport*>(&http), db.get(), metrics_hdl);
    queue_manager_config qm;
    qm.default_provider = "openai";
    reads = test::manual_reader(*db);
    qm.reads = reads.get();
    queue = spawn(queue_manager, qm, db.get(), metrics_hdl, callbacks_hdl);
    intake_hdl = spawn(intake, intake_config{}, queue);
  }

  ~batch_fixture() {
    for (auto& hdl : spawned)
      caf::anon_send_exit(hdl, caf::exit_reason::user_shutdown);
    sched.run();
    spawned.clear();
    reads.reset();
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
    c.store_writes = batch_job_store_writer::mode::caller_thread;
    c.minute_of_day = [](caf::timestamp t) {
      auto secs = std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
      return static_cast<int>((secs / 60) % (24 * 60));
    };
    return c;
  }

  void start(batch_jobs_config c, http_transport* transport = nullptr,
             batch_job_store* job_store = nullptr) {
    batch = spawn(batch_jobs, c, std::make_shared<openai_batch_wire>(),
                  transport != nullptr ? transport : static_cast<http_transport*>(&http),
                  job_store != nullptr ? job_store : jobs_db.get(), queue, metrics_hdl);
    settle();
  }

  /// A job left behind by an earlier run in `state`, holding the given requests (accepted
  /// and stored, then taken out of the queue as the earlier run had done).
  std::vector<std::string> leave_job(const std::string& state, size_t n) {
    submit(n);
    auto rh = self->request(queue, caf::infinite, atom::dequeue_v, static_cast<uint32_t>(n),
                            std::vector<std::string>{"openai"});
    settle();
    std::vector<std::string> ids;
    rh.receive(
        [&](std::vector<queued_request>& xs) {
          for (auto& x : xs)
            ids.push_back(x.request.queue_id);
        },
        [](caf::error& err) { FAIL(caf::to_string(err)); });
    batch_job_record rec;
    rec.job_id = "bj-left-" + state;
    rec.provider = "openai";
    rec.model = "gpt-4o-mini";
    rec.state = state;
    rec.item_count = n;
    rec.created_at_ms = 1;
    rec.submitted_at_ms = state == "created" || state == "uploaded" ? 0 : 2;
    rec.provider_job_id = state == "submitted" || state == "ended" ? "batch_abc" : "";
    if (state == "ended")
      rec.result_locations = {"file-out"};
    if (state == "uploaded" || state == "submitting")
      rec.file_id = "file-in";
    std::string error;
    REQUIRE(jobs_db->create(rec, ids, error));
    return ids;
  }

  /// Final results stored for `ids` (the callbacks actor is not involved: no callback_url).
  size_t finals(const std::vector<std::string>& ids) {
    size_t n = 0;
    for (const auto& id : ids)
      n += db->find_result(id) ? 1 : 0;
    return n;
  }

  void settle() {
    test::store_with_reads both{*db, *reads};
    settle_with(both);
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

/// The real job store, but its updates fail while `fail_updates` is set (a store outage).
struct flaky_job_store : batch_job_store {
  explicit flaky_job_store(batch_job_store& real) : real(real) {}
  batch_job_store& real;
  bool fail_updates = false;
  size_t failed_updates = 0;

  bool create(const batch_job_record& job, const std::vector<std::string>& items,
              std::string& error) override {
    return real.create(job, items, error);
  }
  bool update(const batch_job_record& job, std::string& error) override {
    if (!fail_updates)
      return real.update(job, error);
    ++failed_updates;
    error = "the store is away";
    return false;
  }
  bool finish(const batch_job_record& job, std::string& error) override {
    return real.finish(job, error);
  }
  std::optional<batch_job_record> find(const std::string& id) override {
    return real.find(id);
  }
  std::vector<batch_job_record> load_unfinished(const std::string& provider) override {
    return real.load_unfinished(provider);
  }
  std::vector<std::string> load_items(const std::string& id) override {
    return real.load_items(id);
  }
  std::unordered_map<std::string, std::string> load_owned_items() override {
    return real.load_owned_items();
  }
  std::vector<batch_job_record> list(size_t limit) override {
    return real.list(limit);
  }
  const std::string& path() const override {
    return real.path();
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

// -- restart in every job state ----------------------------------------------------------

TEST_CASE("restart before upload: the entries are gone, the items go back to the queue",
          "[restart]") {
  batch_fixture fx;
  auto ids = fx.leave_job("created", 3);
  auto c = fx.config();
  c.min_items = 1000; // nothing new is formed
  fx.start(c, &fx.scripted);
  fx.step();
  CHECK(fx.scripted.requests.empty()); // no upload, no create: nothing is submitted
  auto job = fx.jobs_db->find("bj-left-created");
  REQUIRE(job);
  CHECK(job->state == "failed");
  CHECK(fx.jobs_db->load_owned_items().empty());
  CHECK(fx.finals(ids) == 0); // retryable: back in the queue, not failed
}

TEST_CASE("restart after upload: the job is created from the uploaded file", "[restart]") {
  batch_fixture fx;
  auto ids = fx.leave_job("uploaded", 3);
  fx.scripted.answers = {{"/v1/batches", batch_object("validating", "bj-left-uploaded")}};
  auto c = fx.config();
  c.min_items = 1000;
  fx.start(c, &fx.scripted);
  fx.step();
  REQUIRE(fx.scripted.requests.size() == 1); // the create, no new upload
  CHECK(fx.scripted.requests[0].method == "POST");
  CHECK(fx.scripted.requests[0].body.find("\"file-in\"") != std::string::npos);
  auto job = fx.jobs_db->find("bj-left-uploaded");
  REQUIRE(job);
  CHECK(job->state == "submitted");
  CHECK(job->provider_job_id == "batch_abc");
  CHECK(fx.finals(ids) == 0);
}

TEST_CASE("restart while submitting: our job is found in the provider's list, not created again",
          "[restart]") {
  batch_fixture fx;
  auto ids = fx.leave_job("submitting", 3);
  fx.scripted.answers = {{"/batches?limit=100",
                          R"({"object":"list","data":[)" + batch_object("in_progress", "bj-other")
                              + "," + batch_object("in_progress", "bj-left-submitting")
                              + R"(],"has_more":false})"},
                         {"/batches/batch_abc", batch_object("in_progress", "bj-left-submitting")}};
  auto c = fx.config();
  c.min_items = 1000;
  fx.start(c, &fx.scripted);
  fx.step();
  CHECK(fx.scripted.calls_to("/batches") == 1); // the list only
  CHECK(fx.scripted.calls_to("/files") == 0);
  auto job = fx.jobs_db->find("bj-left-submitting");
  REQUIRE(job);
  CHECK(job->provider_job_id == "batch_abc");
  CHECK(job->state == "submitted");
  CHECK(fx.finals(ids) == 0);
}

TEST_CASE("restart while submitting: not in the provider's list means never created", "[restart]") {
  batch_fixture fx;
  auto ids = fx.leave_job("submitting", 3);
  fx.scripted.answers = {{"/batches?limit=100", R"({"object":"list","data":[)"
                                                    + batch_object("in_progress", "bj-other")
                                                    + R"(],"has_more":false})"},
                         {"/v1/batches", batch_object("validating", "bj-left-submitting")}};
  auto c = fx.config();
  c.min_items = 1000;
  fx.start(c, &fx.scripted);
  fx.step();
  // Looked up first; not there, so created now, once, from the file uploaded before.
  REQUIRE(fx.scripted.requests.size() == 2);
  CHECK(fx.scripted.requests[0].method == "GET");
  CHECK(fx.scripted.requests[1].method == "POST");
  CHECK(fx.scripted.requests[1].body.find("\"file-in\"") != std::string::npos);
  CHECK(fx.jobs_db->find("bj-left-submitting")->state == "submitted");
  CHECK(fx.finals(ids) == 0);
}

TEST_CASE("restart after submission: the job is polled, its results mapped once", "[restart]") {
  for (auto state : {"submitted", "ended"}) {
    INFO(state);
    batch_fixture fx;
    auto ids = fx.leave_job(state, 3);
    std::string output;
    for (const auto& id : ids)
      output += output_line(id) + "\n";
    output += output_line(ids.front()) + "\n"; // a repeated line changes nothing
    fx.scripted.answers = {{"/batches/batch_abc", batch_object("completed")},
                           {"/files/file-out/content", output}};
    auto c = fx.config();
    c.min_items = 1000;
    c.prices["gpt-4o-mini"] = model_price{1.0, 2.0, 0.0, 0.5};
    fx.start(c, &fx.scripted);
    fx.step();
    fx.step();
    CHECK(fx.scripted.calls_to("/files") == 0); // never uploaded again
    CHECK(fx.scripted.calls_to("/files/file-out/content") == 1);
    REQUIRE(fx.finals(ids) == 3);
    for (const auto& id : ids) {
      auto event = boost::json::parse(fx.db->find_result(id)->event_json).as_object();
      auto& data = event["data"].as_object();
      CHECK(data["winner"] == "Essay B");
      CHECK(data["request_metadata"].as_object()["batch_job_id"]
            == boost::json::value(std::string{"bj-left-"} + state));
      // (100 x $1 + 20 x $2) / 1M at half price.
      CHECK(data["cost_estimate"].as_double() == Approx(140.0 / 1e6 * 0.5));
    }
    CHECK(fx.jobs_db->find(std::string{"bj-left-"} + state)->state == "collected");
    CHECK(fx.jobs_db->load_owned_items().empty());
  }
}

TEST_CASE("a job the provider no longer knows gives its items back instead of waiting forever") {
  batch_fixture fx;
  auto ids = fx.leave_job("submitted", 2);
  fx.scripted.gone = {"/batches/batch_abc"};
  auto c = fx.config();
  c.min_items = 1000;
  fx.start(c, &fx.scripted);
  fx.step();
  CHECK(fx.scripted.requests.size() == 1);
  auto job = fx.jobs_db->find("bj-left-submitted");
  REQUIRE(job);
  CHECK(job->state == "failed");
  CHECK(job->last_error.find("no longer knows") != std::string::npos);
  CHECK(fx.jobs_db->load_owned_items().empty());
  CHECK(fx.finals(ids) == 0); // back in the queue for another job
}

TEST_CASE("a poll that fails for a while is retried later and the reason is visible") {
  batch_fixture fx;
  auto ids = fx.leave_job("submitted", 2);
  auto c = fx.config();
  c.min_items = 1000;
  c.poll_interval = 10s;
  fx.start(c, &fx.scripted); // no answers scripted: every call gets a 500
  fx.step();
  CHECK(fx.scripted.requests.size() == 1);
  fx.step(); // within the retry wait: no new call
  CHECK(fx.scripted.requests.size() == 1);
  fx.step(10s);
  CHECK(fx.scripted.requests.size() == 2);
  auto job = fx.jobs_db->find("bj-left-submitted");
  REQUIRE(job);
  CHECK(job->state == "submitted");
  CHECK(job->last_error.find("500") != std::string::npos);
}

TEST_CASE("jobs respect the byte limit") {
  batch_fixture fx;
  auto c = fx.config();
  c.min_items = 1;
  // Each entry is a little over 1 KB here: at most two fit in 2.5 KB.
  c.max_bytes_per_job = 2500;
  fx.start(c);
  fx.submit(5);
  fx.step();
  auto jobs = fx.jobs_db->list(100);
  CHECK(jobs.size() == 3); // 2 + 2 + 1
  for (const auto& job : jobs)
    CHECK(job.item_count <= 2);
  for (const auto& upload : fx.http.requests)
    CHECK(items_in(upload) <= 2);
}

TEST_CASE("a step whose state cannot be stored starts nothing until the write succeeds") {
  batch_fixture fx;
  flaky_job_store flaky{*fx.jobs_db};
  fx.scripted.answers = {{"/files", R"({"id":"file-in","object":"file","purpose":"batch"})"},
                         {"/v1/batches", batch_object("validating")}};
  auto c = fx.config();
  c.poll_interval = 10s;
  fx.start(c, &fx.scripted, &flaky);
  flaky.fail_updates = true;
  fx.submit(5);
  fx.step(); // recorded (create), uploaded; storing "uploaded" fails
  CHECK(fx.scripted.calls_to("/files") == 1);
  CHECK(flaky.failed_updates == 1);
  fx.step(10s); // the write is retried first, and fails again
  CHECK(flaky.failed_updates == 2);
  // No create while the upload is not stored: a crash now must not leave a job at the
  // provider that the store does not know was maybe created.
  CHECK(fx.scripted.calls_to("/v1/batches") == 0);
  auto jobs = fx.jobs_db->list(10);
  REQUIRE(jobs.size() == 1);
  CHECK(jobs[0].state == "created");
  flaky.fail_updates = false;
  fx.step(10s); // stored now: "uploaded", then "submitting", then the create call
  CHECK(fx.scripted.calls_to("/v1/batches") == 1);
  jobs = fx.jobs_db->list(10);
  REQUIRE(jobs.size() == 1);
  CHECK(jobs[0].state == "submitted");
  CHECK(jobs[0].file_id == "file-in");
}
