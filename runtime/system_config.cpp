#include "runtime/system_config.hpp"

#include "messages/error.hpp"
#include "messages/type_ids.hpp"

#include <caf/config_value.hpp>
#include <caf/settings.hpp>

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

void apply_file_section(const caf::settings& content, config& cfg,
                        std::vector<std::string>& errors) {
  auto section = content.find("lps");
  if (section == content.end())
    return;
  auto dict = caf::get_if<caf::settings>(&section->second);
  if (dict == nullptr) {
    errors.push_back("config file: [lps] must be a section");
    return;
  }
  for (const auto& [key, value] : *dict)
    if (auto err = set_config_value(cfg, key, to_text(value)); !err.empty())
      errors.push_back("config file [lps]: " + err);
}

} // namespace

system_config::system_config() {
  add_message_types<caf::id_block::lps>();
  add_error_category(error_category, [](uint8_t code, caf::atom_value, const caf::message& ctx) {
    std::string result = to_string(static_cast<ec>(code));
    if (!ctx.empty() && ctx.match_elements<std::string>())
      result += ": " + ctx.get_as<std::string>(0);
    return result;
  });
  // Two worker threads match the 2-core target machine; --scheduler.max-threads overrides.
  set("scheduler.max-threads", 2);
}

startup load_startup(system_config& sys_cfg, int argc, char** argv, const env_lookup& env) {
  startup result;
  auto split = split_command_line(argc, argv);
  result.dump_config = split.dump_config;
  result.help_config = split.help_config;
  result.errors = split.errors;
  if (auto err = sys_cfg.parse(split.caf_args, "lps.ini")) {
    result.errors.push_back("command line or config file: " + sys_cfg.render(err));
    return result;
  }
  if (sys_cfg.cli_helptext_printed) {
    result.help_printed = true;
    return result;
  }
  apply_file_section(sys_cfg.content, result.cfg, result.errors);
  for (auto& err : apply_environment(result.cfg, env))
    result.errors.push_back(std::move(err));
  for (const auto& [key, value] : split.lps_options)
    if (auto err = set_config_value(result.cfg, key, value); !err.empty())
      result.errors.push_back("command line: " + err);
  for (auto& err : validate(result.cfg))
    result.errors.push_back(std::move(err));
  return result;
}

} // namespace lps
