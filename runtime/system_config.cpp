#include "runtime/system_config.hpp"

#include "messages/error.hpp"
#include "messages/cluster_type_ids.hpp"
#include "runtime/scheduler.hpp"

#include <caf/config_option_set.hpp>
#include <caf/config_value.hpp>
#include <caf/settings.hpp>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <regex>
#include <sstream>

namespace lps {

namespace {

// Config file values arrive typed (integer, real, string, list, ...); lps validates every
// key itself from text, because CAF silently drops values of the wrong type.
std::string to_text(const caf::config_value& x) {
  if (auto s = caf::get_if<std::string>(&x))
    return *s;
  if (auto i = caf::get_if<caf::config_value::integer>(&x))
    return std::to_string(*i);
  if (auto b = caf::get_if<bool>(&x))
    return *b ? "true" : "false";
  if (auto r = caf::get_if<caf::config_value::real>(&x)) {
    auto text = std::to_string(*r);
    return text;
  }
  if (auto a = caf::get_if<caf::atom_value>(&x))
    return caf::to_string(*a);
  if (auto xs = caf::get_if<caf::config_value::list>(&x)) {
    std::string result;
    for (const auto& item : *xs)
      result += (result.empty() ? "" : ",") + to_text(item);
    return result;
  }
  return caf::to_string(x);
}

// A relative MODEL_MANIFEST in the file names a file beside the config file, wherever lps
// is started from.
void resolve_beside(const std::string& config_file, std::string& path) {
  auto folder = std::filesystem::path{config_file}.parent_path();
  if (!path.empty() && std::filesystem::path{path}.is_relative() && !folder.empty())
    path = (folder / path).lexically_normal().string();
}

std::string nearest(std::string_view name, const std::vector<std::string>& candidates);
std::vector<std::string> key_names(std::string config_key_info::*spelling);

bool is_config_key(const std::string& name) {
  return std::any_of(config_keys().begin(), config_keys().end(),
                     [&](const auto& x) { return x.file_name == name || x.env_name == name; });
}

void apply_file_section(const caf::settings& content, const std::string& config_file, config& cfg,
                        std::vector<std::string>& errors) {
  auto section = content.find("lps");
  if (section == content.end())
    return;
  auto dict = caf::get_if<caf::settings>(&section->second);
  if (dict == nullptr) {
    errors.push_back("config file: [lps] must be a section");
    return;
  }
  for (const auto& [key, value] : *dict) {
    auto err = set_config_value(cfg, key, to_text(value));
    if (!err.empty() && !is_config_key(key))
      err += " (did you mean " + nearest(key, key_names(&config_key_info::file_name)) + "?)";
    if (!err.empty())
      errors.push_back("config file [lps]: " + err);
  }
  if (dict->contains("model-manifest"))
    resolve_beside(config_file, cfg.model_manifest);
}

// -- telling typos apart from intent --

// Edits (insert, delete, replace) from one name to another: how close a typo is.
size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j)
    row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    auto diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      auto above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::string nearest(std::string_view name, const std::vector<std::string>& candidates) {
  std::string best;
  auto best_distance = SIZE_MAX;
  for (const auto& x : candidates)
    if (auto d = edit_distance(name, x); d < best_distance)
      best = x, best_distance = d;
  return best;
}

// Every lps key in one spelling (&config_key_info::env_name or ::file_name).
std::vector<std::string> key_names(std::string config_key_info::*spelling) {
  std::vector<std::string> result;
  for (const auto& x : config_keys())
    result.push_back(x.*spelling);
  return result;
}

// -- CAF's parser errors in words --

std::string match_or_empty(const std::string& text, const std::regex& pattern) {
  std::smatch m;
  return std::regex_search(text, m, pattern) ? m[1].str() : std::string{};
}

// CAF renders "parser_error(unexpected_character, ({"column" = 24, "line" = 3}))" or
// "... ({"argument" = "--scheduler.max-threads=abc"}))"; this says where and what.
std::string describe_parse_error(const std::string& rendered, const std::string& file) {
  auto code = match_or_empty(rendered, std::regex{R"re(^parser_error\(([a-z_]+))re"});
  auto line = match_or_empty(rendered, std::regex{R"re("line" = (\d+))re"});
  auto column = match_or_empty(rendered, std::regex{R"re("column" = (\d+))re"});
  auto argument = match_or_empty(rendered, std::regex{R"re("argument" = "([^"]*)")re"});
  if (code.empty())
    return "command line or config file: " + rendered;
  std::replace(code.begin(), code.end(), '_', ' ');
  if (!argument.empty())
    return "command line: " + argument + ": " + code + " (the value does not fit the option)";
  if (line.empty())
    return "config file " + file + ": " + code;
  return "config file " + file + ", line " + line + ", column " + column + ": " + code
         + " (text values need double quotes, e.g. queue-processing-mode=\"serial_bundle\"; "
           "lps keys go in the [lps] section)";
}

// -- sections, keys and values CAF ignores silently --

std::string text_of(caf::string_view x) {
  return {x.data(), x.size()};
}

void check_caf_section(const caf::config_option_set& options, const std::string& category,
                       const caf::settings& section, startup& result) {
  std::vector<std::string> names;
  for (const auto& opt : options)
    if (text_of(opt.category()) == category)
      names.push_back(text_of(opt.long_name()));
  for (const auto& [key, value] : section) {
    if (caf::holds_alternative<caf::settings>(value))
      continue; // a nested section: CAF's own business
    const auto* opt = options.qualified_name_lookup(category, key);
    if (opt == nullptr)
      result.warnings.push_back("config file: [" + category + "] " + key
                                + " is not an option and is ignored (did you mean "
                                + nearest(key, names) + "?)");
    else if (opt->check(value))
      result.errors.push_back("config file: [" + category + "] " + key + ": invalid value "
                              + to_text(value) + " (expected " + text_of(opt->type_name()) + ")");
  }
}

void check_caf_settings(const caf::config_option_set& options, const caf::settings& content,
                        startup& result) {
  std::vector<std::string> categories{"lps"};
  for (const auto& opt : options)
    if (auto category = text_of(opt.category());
        std::find(categories.begin(), categories.end(), category) == categories.end())
      categories.push_back(category);
  for (const auto& [name, value] : content) {
    if (name == "lps")
      continue;
    const auto* section = caf::get_if<caf::settings>(&value);
    if (section == nullptr) {
      if (options.qualified_name_lookup("global", name) == nullptr)
        result.warnings.push_back("config file: " + name
                                  + " outside a section is ignored (lps keys go in [lps]: did "
                                    "you mean [lps] "
                                  + nearest(name, key_names(&config_key_info::file_name)) + "?)");
    } else if (std::find(categories.begin(), categories.end(), name) == categories.end()) {
      result.warnings.push_back("config file: unknown section [" + name
                                + "] is ignored (did you mean [" + nearest(name, categories)
                                + "]?)");
    } else {
      check_caf_section(options, name, *section, result);
    }
  }
}

} // namespace

system_config::system_config() {
  add_message_types<caf::id_block::lps>();
  add_message_types<caf::id_block::lps_cluster>();
  add_error_category(error_category, [](uint8_t code, caf::atom_value, const caf::message& ctx) {
    std::string result = to_string(static_cast<ec>(code));
    if (!ctx.empty() && ctx.match_elements<std::string>())
      result += ": " + ctx.get_as<std::string>(0);
    return result;
  });
  // Two worker threads match the 2-core target machine; --scheduler.max-threads overrides.
  set("scheduler.max-threads", 2);
  // lps's own policy unless the file or command line names CAF's (runtime/scheduler.hpp).
  set("scheduler.policy", caf::atom("lps"));
  module_factories.push_back(make_scheduler);
  // A worker that runs out of work polls its queue 100 times, then (CAF's default) 500 more
  // times with a 50 us sleep between polls, about 25-40 ms, before it sleeps. lps wakes a
  // worker some 20 times a second while idle (timers, the inspector's sweep), so the workers
  // never got to sleep: 7.5 % of a core idle and about 0.5 ms of CPU per request at 1,000
  // requests/s went to polling. Ten polls (0.5 ms) are enough: work from outside the
  // scheduler (HTTP, store and client threads) wakes a sleeping worker at once.
  // docs/benchmarks.md, "Idle CPU".
  set("work-stealing.moderate-poll-attempts",
      static_cast<caf::config_value::integer>(idle_moderate_poll_attempts));
}

startup load_startup(system_config& sys_cfg, int argc, char** argv, const env_lookup& env) {
  startup result;
  auto split = split_command_line(argc, argv);
  result.dump_config = split.dump_config;
  result.help_config = split.help_config;
  result.errors = split.errors;
  if (auto err = sys_cfg.parse(split.caf_args, "lps.ini")) {
    result.errors.push_back(describe_parse_error(sys_cfg.render(err), sys_cfg.config_file_path));
    return result;
  }
  if (sys_cfg.cli_helptext_printed) {
    result.help_printed = true;
    return result;
  }
  // CAF drops values of its options that have the wrong type without a word: check the
  // file as written.
  if (auto written = caf::actor_system_config::parse_config_file(sys_cfg.config_file_path.c_str()))
    check_caf_settings(sys_cfg.caf_options(), *written, result);
  if (auto err = check_scheduler_policy(caf::get_or(sys_cfg, "scheduler.policy", caf::atom("lps"))))
    result.errors.push_back(*err);
  apply_file_section(sys_cfg.content, sys_cfg.config_file_path, result.cfg, result.errors);
  for (auto& err : apply_environment(result.cfg, env))
    result.errors.push_back(std::move(err));
  for (const auto& [key, value] : split.lps_options)
    if (auto err = set_config_value(result.cfg, key, value); !err.empty())
      result.errors.push_back("command line: " + err);
  for (auto& err : validate(result.cfg))
    result.errors.push_back(std::move(err));
  return result;
}

std::string system_config::help_text(bool all) const {
  std::istringstream caf_text{custom_options_.help_text(!all)};
  std::string result;
  for (std::string line; std::getline(caf_text, line);)
    if (line.find("--dump-config") == std::string::npos
        && line.find("--config-file") == std::string::npos)
      result += line + "\n";
  return result + R"(lps options:
  --config-file=<path>  : the INI file to read ([lps] section for lps keys; default: lps.ini
                          in the working folder when present; config/lps.ini documents all)
  --dump-config         : print lps' effective configuration (secrets masked) to stdout, exit
  --help-config         : print every lps key (environment name, file key, default, rule), exit
  --<key>=<value>       : set an lps key, e.g. --http-port=9000 (also --lps.<key>=<value>)

environment: LLM_PROVIDER_SERVICE_<KEY> (e.g. LLM_PROVIDER_SERVICE_DATA_DIR); of the bare
names only <PROVIDER>_API_KEY is read. Later wins: file < environment < command line.
)";
}

environment_check check_environment_names(const std::vector<std::string>& names) {
  constexpr std::string_view prefix = "LLM_PROVIDER_SERVICE_";
  auto keys = key_names(&config_key_info::env_name);
  auto known = [&](std::string_view key) {
    return std::find(keys.begin(), keys.end(), key) != keys.end();
  };
  environment_check result;
  for (const auto& name : names) {
    if (name.starts_with(prefix)) {
      auto key = name.substr(prefix.size());
      if (!known(key))
        result.errors.push_back("environment: " + name + " is not an lps key (did you mean "
                                + std::string{prefix} + nearest(key, keys) + "?)");
    } else if (known(name) && !name.ends_with("_API_KEY")) {
      result.warnings.push_back("environment: " + name + " is not read; lps reads "
                                + std::string{prefix} + name);
    }
  }
  return result;
}

} // namespace lps
