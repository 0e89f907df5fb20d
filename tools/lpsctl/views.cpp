// lpsctl's read-only views (status, results, providers, jobs, config, top) and job cancel.

#include "runtime/json_writer.hpp"
#include "tools/lpsctl/commands.hpp"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <map>
#include <set>
#include <sstream>
#include <thread>

namespace json = boost::json;

namespace lps::ctl {

namespace {

bool on_terminal() {
  return ::isatty(STDOUT_FILENO) != 0;
}

// JSON text as lps writes it (runtime/json_writer: 0.0, 4.7), so a result event comes out
// byte for byte as lps stored and sent it; boost::json::serialize would write 0E0 and 4.7E0.
std::string compact(const json::value& v) {
  std::string out;
  append_value(out, v);
  return out;
}

void pretty(std::ostringstream& out, const json::value& v, int indent) {
  auto pad = [&](int n) { out << std::string(static_cast<size_t>(n) * 2, ' '); };
  if (const auto* obj = v.if_object(); obj != nullptr && !obj->empty()) {
    out << "{\n";
    size_t i = 0;
    for (const auto& [key, value] : *obj) {
      pad(indent + 1);
      out << compact(json::value{key}) << ": ";
      pretty(out, value, indent + 1);
      out << (++i < obj->size() ? ",\n" : "\n");
    }
    pad(indent);
    out << "}";
  } else if (const auto* arr = v.if_array(); arr != nullptr && !arr->empty()) {
    out << "[\n";
    for (size_t i = 0; i < arr->size(); ++i) {
      pad(indent + 1);
      pretty(out, (*arr)[i], indent + 1);
      out << (i + 1 < arr->size() ? ",\n" : "\n");
    }
    pad(indent);
    out << "]";
  } else {
    out << compact(v);
  }
}

/// JSON for people on a terminal (indented), for scripts otherwise (one line).
void print_json(const json::value& v) {
  if (!on_terminal()) {
    std::printf("%s\n", compact(v).c_str());
    return;
  }
  std::ostringstream out;
  pretty(out, v, 0);
  std::printf("%s\n", out.str().c_str());
}

std::string text_of(const json::object& obj, const char* key) {
  const auto* v = obj.if_contains(key);
  if (v == nullptr || v->is_null())
    return "-";
  return v->is_string() ? std::string{v->as_string()} : compact(*v);
}

int failed(const api_answer& answer, const lps_api& api) {
  std::fprintf(stderr, "lpsctl: %s\n", describe(answer, api.base_url()).c_str());
  return answer.status == 0 || answer.status >= 500 || answer.status == 401 ? unreachable
                                                                            : incomplete;
}

// -- top --

struct actor_row {
  std::string name, kind;
  double mailbox = 0, handled = 0, rate = -1;
  std::string node = {};
};

std::vector<actor_row> actors_of(const json::value& inspect) {
  std::vector<actor_row> rows;
  const auto* list = inspect.is_object() ? inspect.as_object().if_contains("actors") : nullptr;
  if (list == nullptr || !list->is_array())
    return rows;
  for (const auto& a : list->as_array()) {
    const auto& obj = a.as_object();
    rows.push_back({text_of(obj, "name"), text_of(obj, "kind"),
                    obj.at("mailbox_size").to_number<double>(),
                    obj.at("messages_handled").to_number<double>(), -1, text_of(obj, "node")});
  }
  std::stable_sort(rows.begin(), rows.end(),
                   [](const auto& x, const auto& y) { return x.mailbox > y.mailbox; });
  return rows;
}

/// llm_provider_queue_depth{status="..."} values from the exposition text.
std::map<std::string, std::string> queue_depth(const std::string& metrics) {
  std::map<std::string, std::string> result;
  std::istringstream in{metrics};
  const std::string prefix = "llm_provider_queue_depth{status=\"";
  for (std::string line; std::getline(in, line);)
    if (line.rfind(prefix, 0) == 0) {
      auto end = line.find('"', prefix.size());
      result[line.substr(prefix.size(), end - prefix.size())] = line.substr(line.rfind(' ') + 1);
    }
  return result;
}

// The number `key` of a JSON object (0 when absent or not a number).
double number_in(const json::object& obj, const char* key) {
  const auto* v = obj.if_contains(key);
  return v != nullptr && v->is_number() ? v->to_number<double>() : 0;
}

// Waiting requests by provider and model with the oldest one's age (/api/v1/inspect/queue).
void print_queue_by_model(const api_answer& queue, const std::string& base_url) {
  std::printf("%-12s %-32s %9s %10s\n", "PROVIDER", "MODEL", "WAITING", "OLDEST_S");
  const auto* rows = queue.json.is_object() ? queue.json.as_object().if_contains("queue") : nullptr;
  if (queue.status != 200 || rows == nullptr || !rows->is_array()) {
    std::printf("(queue by model: %s)\n", describe(queue, base_url).c_str());
    return;
  }
  for (const auto& r : rows->as_array()) {
    const auto& obj = r.as_object();
    auto model = text_of(obj, "model");
    std::printf("%-12s %-32s %9.0f %10.0f\n", text_of(obj, "provider").c_str(),
                model.empty() ? "(not read yet)" : model.c_str(), number_in(obj, "waiting"),
                number_in(obj, "oldest_age_seconds"));
  }
}

// The runs not finished first, at most 10: done of all, percent, rate and ETA.
void print_top_runs(const api_answer& runs, const std::string& base_url) {
  std::printf("%-28s %15s %5s %8s %8s\n", "RUN", "DONE/ALL", "PCT", "RATE/S", "ETA_S");
  const auto* list = runs.json.is_object() ? runs.json.as_object().if_contains("runs") : nullptr;
  if (runs.status != 200 || list == nullptr || !list->is_array()) {
    std::printf("(runs: %s)\n", describe(runs, base_url).c_str());
    return;
  }
  std::vector<const json::object*> shown;
  for (const auto& r : list->as_array())
    shown.push_back(&r.as_object());
  std::stable_sort(shown.begin(), shown.end(), [](const auto* x, const auto* y) {
    return (number_in(*x, "active") > 0) > (number_in(*y, "active") > 0);
  });
  shown.resize(std::min<size_t>(shown.size(), 10));
  for (const auto* run : shown) {
    auto active = number_in(*run, "active");
    auto done = number_in(*run, "completed") + number_in(*run, "failed")
                + number_in(*run, "expired") + number_in(*run, "cancelled");
    auto all = done + active;
    char progress[40];
    std::snprintf(progress, sizeof(progress), "%.0f/%.0f", done, all);
    const auto* eta = run->if_contains("eta_seconds");
    char eta_text[24] = "-";
    if (active == 0)
      std::snprintf(eta_text, sizeof(eta_text), "done");
    else if (eta != nullptr && eta->is_number())
      std::snprintf(eta_text, sizeof(eta_text), "%.0f", eta->to_number<double>());
    std::printf("%-28s %15s %4.0f%% %8.1f %8s\n", text_of(*run, "bos_batch_id").c_str(), progress,
                all > 0 ? std::floor(100 * done / all) : 0.0, number_in(*run, "rate_per_second"),
                eta_text);
  }
}

std::string path_segment(const std::string& text);

// The nodes of `?node=all` (or one) that did not answer within 500 ms, with the reason.
void print_silent_nodes(const json::value& inspect) {
  const auto* list = inspect.is_object() ? inspect.as_object().if_contains("nodes") : nullptr;
  if (list == nullptr || !list->is_array())
    return;
  for (const auto& n : list->as_array())
    if (const auto& obj = n.as_object(); text_of(obj, "responsive") == "false")
      std::printf("node %s did not answer: %s\n", text_of(obj, "name").c_str(),
                  text_of(obj, "error").c_str());
}

void print_top(lps_api& api, const std::string& node, std::map<std::string, double>& last_handled,
               double seconds) {
  auto inspect =
      api.get(node.empty() ? "/api/v1/inspect" : "/api/v1/inspect?node=" + path_segment(node));
  auto providers = api.get("/api/v1/providers");
  auto metrics = api.get("/metrics");
  auto now = std::time(nullptr);
  char when[32];
  std::strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", std::localtime(&now));
  std::printf("lps %s  %s\n\n", api.base_url().c_str(), when);
  auto depth = queue_depth(metrics.body);
  std::printf("queue     queued %s  processing %s  total %s\n\n", depth["queued"].c_str(),
              depth["processing"].c_str(), depth["total"].c_str());
  print_queue_by_model(api.get("/api/v1/inspect/queue"), api.base_url());
  std::printf("\n");
  print_top_runs(api.get("/api/v1/runs"), api.base_url());
  std::printf("\n");
  std::printf("%-12s %-10s %9s %10s %7s  %s\n", "PROVIDER", "CIRCUIT", "IN_FLIGHT", "AVAILABLE",
              "PAUSED", "NOTE");
  if (const auto* list = providers.json.is_object()
                             ? providers.json.as_object().if_contains("providers")
                             : nullptr;
      list != nullptr && list->is_array())
    for (const auto& p : list->as_array()) {
      const auto& obj = p.as_object();
      // A paused provider (its key was refused) says why in place of the note.
      auto paused = text_of(obj, "paused") == "true";
      std::printf("%-12s %-10s %9s %10s %7s  %s\n", text_of(obj, "name").c_str(),
                  text_of(obj, "circuit_state").c_str(), text_of(obj, "in_flight").c_str(),
                  text_of(obj, "available").c_str(), paused ? "yes" : "no",
                  (paused ? text_of(obj, "pause_reason") : text_of(obj, "note")).c_str());
    }
  std::printf("\n%-24s %-14s %9s %12s %10s%s\n", "ACTOR", "KIND", "MAILBOX", "HANDLED", "RATE/S",
              node.empty() ? "" : "  NODE");
  for (auto& row : actors_of(inspect.json)) {
    std::string rate = "-";
    auto key = row.node + "/" + row.name;
    if (auto i = last_handled.find(key); i != last_handled.end() && seconds > 0) {
      char buf[32];
      std::snprintf(buf, sizeof(buf), "%.0f", (row.handled - i->second) / seconds);
      rate = buf;
    }
    last_handled[key] = row.handled;
    std::printf("%-24s %-14s %9.0f %12.0f %10s%s\n", row.name.c_str(), row.kind.c_str(),
                row.mailbox, row.handled, rate.c_str(),
                node.empty() ? "" : ("  " + row.node).c_str());
  }
  if (!node.empty())
    print_silent_nodes(inspect.json);
  if (inspect.status != 200)
    std::printf("\n(inspect: %s)\n", describe(inspect, api.base_url()).c_str());
  std::fflush(stdout);
}

// Any text as one path segment: every byte but RFC 3986's unreserved characters as %XX.
std::string path_segment(const std::string& text) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string result;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      result += static_cast<char>(c);
    } else {
      result += '%';
      result += hex[c >> 4];
      result += hex[c & 15];
    }
  }
  return result;
}

// POSTs an action and prints its JSON answer; anything but 200 is a failure.
int post_and_show(lps_api& api, const std::string& path) {
  auto answer = api.post(path, "");
  if (answer.status != 200)
    return failed(answer, api);
  print_json(answer.json);
  return ok;
}

} // namespace

int show(lps_api& api, const std::string& path) {
  auto answer = api.get(path);
  if (answer.status != 200 && answer.status != 202)
    return failed(answer, api);
  print_json(answer.json);
  return ok;
}

int jobs(lps_api& api) {
  auto answer = api.get("/api/v1/batch-jobs");
  if (answer.status != 200)
    return failed(answer, api);
  std::printf("%-28s %-10s %-28s %-11s %7s %9s %7s\n", "JOB", "PROVIDER", "MODEL", "STATE", "ITEMS",
              "SUCCEEDED", "FAILED");
  for (const auto& j : answer.json.as_object().at("jobs").as_array()) {
    const auto& obj = j.as_object();
    std::printf("%-28s %-10s %-28s %-11s %7s %9s %7s\n", text_of(obj, "job_id").c_str(),
                text_of(obj, "provider").c_str(), text_of(obj, "model").c_str(),
                text_of(obj, "state").c_str(), text_of(obj, "item_count").c_str(),
                text_of(obj, "succeeded").c_str(), text_of(obj, "failed").c_str());
  }
  return ok;
}

int cancel_job(lps_api& api, const std::string& job_id) {
  auto answer = api.post("/api/v1/batch-jobs/" + job_id + "/cancel", "");
  if (answer.status != 202)
    return failed(answer, api);
  std::printf("cancel requested for %s\n", job_id.c_str());
  return ok;
}

int cancel_request(lps_api& api, const std::string& queue_id) {
  return post_and_show(api, "/api/v1/requests/" + path_segment(queue_id) + "/cancel");
}

int cancel_run(lps_api& api, const std::string& bos_batch_id) {
  return post_and_show(api, "/api/v1/runs/" + path_segment(bos_batch_id) + "/cancel");
}

int top(lps_api& api, bool once, const std::string& node) {
  std::map<std::string, double> last_handled;
  if (once || !on_terminal()) {
    print_top(api, node, last_handled, 0);
    return ok;
  }
  auto last = std::chrono::steady_clock::now();
  for (;;) {
    auto now = std::chrono::steady_clock::now();
    std::printf("\033[H\033[2J");
    print_top(api, node, last_handled, std::chrono::duration<double>(now - last).count());
    last = now;
    std::this_thread::sleep_for(std::chrono::seconds{1});
  }
}

namespace {

// A number of the run's JSON with `decimals` places, or "-" when null or absent.
std::string number_of(const json::object& obj, const char* key, int decimals) {
  const auto* v = obj.if_contains(key);
  if (v == nullptr || !v->is_number())
    return "-";
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, v->to_number<double>());
  return buf;
}

std::string results_path(const std::string& run, const std::string& after) {
  return "/api/v1/results?limit=1000&bos_batch_id=" + path_segment(run)
         + (after.empty() ? "" : "&after=" + after);
}

// Whether the run has no active request any more (an unknown run has none).
bool run_finished(lps_api& api, const std::string& run, api_answer& answer) {
  answer = api.get("/api/v1/runs/" + path_segment(run));
  if (answer.status == 404)
    return true;
  if (answer.status != 200)
    return false;
  const auto* active = answer.json.as_object().if_contains("active");
  return active != nullptr && active->is_number() && active->to_number<double>() == 0;
}

} // namespace

int runs(lps_api& api) {
  auto answer = api.get("/api/v1/runs");
  if (answer.status != 200)
    return failed(answer, api);
  std::printf("%-28s %7s %9s %7s %7s %9s %8s %8s %10s\n", "RUN", "ACTIVE", "COMPLETED", "FAILED",
              "EXPIRED", "CANCELLED", "RATE/S", "ETA_S", "COST_USD");
  for (const auto& r : answer.json.as_object().at("runs").as_array()) {
    const auto& obj = r.as_object();
    std::printf("%-28s %7s %9s %7s %7s %9s %8s %8s %10s\n", text_of(obj, "bos_batch_id").c_str(),
                text_of(obj, "active").c_str(), text_of(obj, "completed").c_str(),
                text_of(obj, "failed").c_str(), text_of(obj, "expired").c_str(),
                text_of(obj, "cancelled").c_str(), number_of(obj, "rate_per_second", 1).c_str(),
                number_of(obj, "eta_seconds", 0).c_str(),
                number_of(obj, "cost_estimate", 4).c_str());
  }
  return ok;
}

int config(lps_api& api, bool raw_json) {
  auto answer = api.get("/api/v1/config");
  if (answer.status != 200)
    return failed(answer, api);
  if (raw_json) {
    std::printf("%s\n", answer.body.c_str());
    return ok;
  }
  std::map<std::string, std::string> values;
  for (const auto& x : answer.json.as_object().at("settings").as_array())
    values[text_of(x.as_object(), "key")] = std::string{x.as_object().at("value").as_string()};
  for (const auto& [key, value] : values)
    std::printf("%s=%s\n", key.c_str(), value.c_str());
  return ok;
}

// -- nodes --

namespace {

// "yes" or "no" for a boolean member, "-" when it is null or missing (not a cluster).
std::string yes_no(const json::object& obj, const char* key) {
  const auto* v = obj.if_contains(key);
  return v != nullptr && v->is_bool() ? (v->as_bool() ? "yes" : "no") : "-";
}

// "1.5s": the age of the node's last heartbeat; "-" outside a cluster.
std::string heartbeat_age(const json::object& obj) {
  const auto* v = obj.if_contains("heartbeat_age_seconds");
  if (v == nullptr || !v->is_number())
    return "-";
  char text[32];
  std::snprintf(text, sizeof(text), "%.1fs", v->to_number<double>());
  return text;
}

// "0.4s": the age of the figures of a node whose inspector answered this second; "silent" (with
// the age of the last figures it gave, if any) for one that did not; "-" when not known.
std::string figures_age(const json::object& obj) {
  const auto* responsive = obj.if_contains("responsive");
  if (responsive == nullptr || !responsive->is_bool())
    return "-";
  const auto* v = obj.if_contains("figures_age_seconds");
  char age[32] = "";
  if (v != nullptr && v->is_number())
    std::snprintf(age, sizeof(age), "%.1fs", v->to_number<double>());
  if (responsive->as_bool())
    return *age != '\0' ? age : "-";
  return *age != '\0' ? std::string{"silent,"} + age : "silent";
}

// In cluster mode, a line before the table: the leader, its epoch, and a failed registry read.
void print_cluster_line(const json::object& body) {
  const auto* cluster = body.if_contains("cluster");
  if (cluster == nullptr || !cluster->is_object())
    return;
  const auto& c = cluster->as_object();
  auto leader = text_of(c, "leader");
  std::printf("cluster: leader %s, epoch %s",
              leader == "-" ? "none (no live lease)" : leader.c_str(), text_of(c, "epoch").c_str());
  if (auto error = text_of(c, "error"); error != "-")
    std::printf(", the registry could not be read: %s", error.c_str());
  std::printf("\n");
}

} // namespace

int nodes(lps_api& api, bool raw_json) {
  // The first snapshot comes a second after lps starts: until then the view answers 503
  // with Retry-After, which is waited out a few times rather than failing a script.
  auto answer = api.get("/api/v1/inspect/nodes");
  for (int attempt = 0; attempt < 5 && answer.status == 503 && answer.retry_after > 0; ++attempt) {
    std::this_thread::sleep_for(std::chrono::seconds{answer.retry_after});
    answer = api.get("/api/v1/inspect/nodes");
  }
  if (answer.status != 200)
    return failed(answer, api);
  if (raw_json) {
    print_json(answer.json);
    return ok;
  }
  const auto& body = answer.json.as_object();
  print_cluster_line(body);
  std::printf("%-24s %-21s %-8s %-6s %-4s %9s %-12s %9s %6s %12s %s\n", "NODE", "ADDRESS", "STATE",
              "LEADER", "SELF", "HEARTBEAT", "VERSION", "IN_FLIGHT", "ACTORS", "UNRESPONSIVE",
              "FIGURES");
  for (const auto& n : body.at("nodes").as_array()) {
    const auto& obj = n.as_object();
    std::printf("%-24s %-21s %-8s %-6s %-4s %9s %-12s %9s %6s %12s %s\n",
                text_of(obj, "name").c_str(), text_of(obj, "address").c_str(),
                text_of(obj, "state").c_str(), yes_no(obj, "leader").c_str(),
                yes_no(obj, "self").c_str(), heartbeat_age(obj).c_str(),
                text_of(obj, "version").c_str(), text_of(obj, "in_flight_calls").c_str(),
                text_of(obj, "actors").c_str(), text_of(obj, "unresponsive_actors").c_str(),
                figures_age(obj).c_str());
  }
  return ok;
}

int run(lps_api& api, const std::string& bos_batch_id) {
  return show(api, "/api/v1/runs/" + path_segment(bos_batch_id));
}

// Pages from the last full page's cursor: a short page is read again from there on the next
// poll, and ids already written are skipped. Once the run has no active request, one last
// pass from the start writes any result committed behind one already read (its completion
// time earlier), so every result is written exactly once.
int results(lps_api& api, const std::string& bos_batch_id, bool follow) {
  std::set<std::string> written;
  std::string after;
  bool last_pass = false;
  for (;;) {
    auto answer = api.get(results_path(bos_batch_id, after));
    if (answer.status != 200)
      return failed(answer, api);
    const auto& page = answer.json.as_object();
    for (const auto& event : page.at("results").as_array()) {
      const auto& id = event.as_object().at("data").as_object().at("request_id").as_string();
      if (written.emplace(id).second)
        std::printf("%s\n", compact(event).c_str());
    }
    std::fflush(stdout);
    if (const auto& next = page.at("next"); next.is_string()) {
      after = std::string{next.as_string()};
      continue;
    }
    if (!follow || last_pass)
      return ok;
    api_answer run_answer;
    if (run_finished(api, bos_batch_id, run_answer)) {
      last_pass = true;
      after.clear();
      continue;
    }
    if (run_answer.status != 200)
      return failed(run_answer, api);
    std::this_thread::sleep_for(std::chrono::seconds{1});
  }
}

} // namespace lps::ctl
