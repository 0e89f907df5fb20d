// lpsctl: the terminal console of lps (docs/lpsctl.md).

#include "tools/lpsctl/commands.hpp"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <cstdlib>

namespace {

std::string env_or(const char* name, std::string fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : fallback;
}

} // namespace

int main(int argc, char** argv) {
  using namespace lps::ctl;
  CLI::App app{"lpsctl: watch and drive a running lps (docs/lpsctl.md)", "lpsctl"};
  app.require_subcommand(1);
  std::string url = env_or("LPS_URL", "http://127.0.0.1:8090");
  std::string token = env_or("LPS_TOKEN", "");
  unsigned timeout = 60;
  app.add_option("--url", url, "lps base URL (or LPS_URL)")->capture_default_str();
  app.add_option("--token", token, "Bearer token: an API key or the admin token (or LPS_TOKEN)");
  app.add_option("--request-timeout", timeout, "seconds one HTTP call may take")
      ->capture_default_str()
      ->check(CLI::Range(1u, 3600u));

  submit_options sub;
  auto* submit_cmd = app.add_subcommand("submit", "submit a JSONL file of comparison requests");
  submit_cmd->add_option("file", sub.file, "one request JSON object per line")
      ->required()
      ->check(CLI::ExistingFile);
  submit_cmd->add_option("--chunk", sub.chunk, "requests per bulk POST")
      ->capture_default_str()
      ->check(CLI::Range(size_t{1}, size_t{10000}));
  submit_cmd->add_flag("--wait", sub.wait, "wait for every result and write the events");
  submit_cmd->add_option("--out", sub.out, "with --wait: write the events here (default stdout)");
  submit_cmd
      ->add_option("--timeout", sub.timeout_seconds,
                   "with --wait: give up after this many seconds (0: never)")
      ->capture_default_str();

  std::string id;
  auto* status_cmd = app.add_subcommand("status", "a request's status");
  status_cmd->add_option("queue_id", id)->required();
  auto* result_cmd = app.add_subcommand("result", "a request's result event (202 while pending)");
  result_cmd->add_option("queue_id", id)->required();
  auto* providers_cmd = app.add_subcommand("providers", "providers: configuration and circuits");
  auto* health_cmd = app.add_subcommand("health", "the /healthz answer");
  auto* jobs_cmd = app.add_subcommand("jobs", "provider batch jobs");
  auto* cancel_cmd = jobs_cmd->add_subcommand("cancel", "cancel a batch job");
  cancel_cmd->add_option("job_id", id)->required();
  auto* cancel_request_cmd = app.add_subcommand("cancel", "cancel a queued request");
  cancel_request_cmd->add_option("queue_id", id)->required();
  auto* runs_cmd = app.add_subcommand("runs", "runs (requests sharing metadata.bos_batch_id)");
  runs_cmd->require_subcommand(0, 1);
  auto* cancel_run_cmd = runs_cmd->add_subcommand("cancel", "cancel a run's queued requests");
  cancel_run_cmd->add_option("bos_batch_id", id)->required();
  auto* run_cmd = app.add_subcommand("run", "one run: counts, rate, ETA, cost, errors by code");
  run_cmd->add_option("bos_batch_id", id)->required();
  bool follow = false;
  auto* results_cmd = app.add_subcommand("results", "a run's result events, one per line");
  // The run as the positional or as --run (the issue's `results --run ID --follow`).
  auto* run_positional = results_cmd->add_option("bos_batch_id", id, "the run's bos_batch_id");
  results_cmd->add_option("--run", id, "the run's bos_batch_id (instead of the positional)")
      ->excludes(run_positional);
  results_cmd->add_flag("--follow", follow,
                        "poll every second until the run has no active request");
  bool raw_json = false;
  auto* config_cmd = app.add_subcommand("config", "the effective configuration, secrets masked");
  config_cmd->add_flag("--json", raw_json, "print lps' JSON body instead of KEY=value lines");
  bool nodes_json = false;
  auto* nodes_cmd =
      app.add_subcommand("nodes", "the cluster's nodes (outside a cluster this one alone)");
  nodes_cmd->add_flag("--json", nodes_json, "print lps' JSON body instead of a table");
  bool once = false;
  auto* top_cmd = app.add_subcommand("top", "actors by mailbox, the queue, the providers");
  top_cmd->add_flag("--once", once, "print one snapshot (the default when not on a terminal)");
  std::string top_node;
  top_cmd->add_option("--node", top_node,
                      "actors of every node of the cluster (all) or of one node (its name)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    auto rc = app.exit(e);
    return rc == 0 ? ok : usage;
  }
  lps_api api{url, token, std::chrono::seconds{timeout}};
  if (submit_cmd->parsed())
    return submit(api, sub);
  if (status_cmd->parsed())
    return show(api, "/api/v1/status/" + id);
  if (result_cmd->parsed())
    return show(api, "/api/v1/results/" + id);
  if (providers_cmd->parsed())
    return show(api, "/api/v1/providers");
  if (health_cmd->parsed())
    return show(api, "/healthz");
  if (cancel_cmd->parsed())
    return cancel_job(api, id);
  if (jobs_cmd->parsed())
    return jobs(api);
  if (cancel_request_cmd->parsed())
    return cancel_request(api, id);
  if (cancel_run_cmd->parsed())
    return cancel_run(api, id);
  if (runs_cmd->parsed())
    return runs(api);
  if (run_cmd->parsed())
    return run(api, id);
  if (results_cmd->parsed()) {
    if (id.empty()) {
      std::fprintf(stderr, "lpsctl results: name the run: BOS_BATCH_ID or --run BOS_BATCH_ID\n");
      return usage;
    }
    return results(api, id, follow);
  }
  if (config_cmd->parsed())
    return config(api, raw_json);
  if (nodes_cmd->parsed())
    return nodes(api, nodes_json);
  if (top_cmd->parsed())
    return top(api, once, top_node);
  return usage;
}
