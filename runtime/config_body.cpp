#include "runtime/config_body.hpp"

#include "runtime/json_writer.hpp"

namespace lps {

std::string render_config(const std::vector<shown_setting>& settings) {
  std::string out;
  object_writer body{out};
  array_writer list{body.member("settings")};
  for (const auto& x : settings) {
    object_writer entry{list.element()};
    entry.string("key", x.env_name)
        .string("file_key", x.file_name)
        .string("value", x.value)
        .boolean("secret", x.is_secret);
    entry.close();
  }
  list.close();
  body.close();
  return out;
}

} // namespace lps
