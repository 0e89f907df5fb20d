#include "messages/error.hpp"

#include <caf/make_message.hpp>
#include <caf/message.hpp>

namespace lps {

caf::error make_error(ec code, std::string context) {
  return caf::error{static_cast<uint8_t>(code), error_category,
                    caf::make_message(std::move(context))};
}

std::string render_error(const caf::error& err) {
  if (!err)
    return "none";
  std::string result;
  if (err.category() == error_category)
    result = to_string(static_cast<ec>(err.code()));
  else
    result = caf::to_string(err);
  if (err.category() == error_category && !err.context().empty()
      && err.context().match_elements<std::string>())
    result += ": " + err.context().get_as<std::string>(0);
  return result;
}

} // namespace lps
