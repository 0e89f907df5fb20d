#pragma once

#include <caf/error.hpp>
#include <caf/atom.hpp>
#include <caf/fwd.hpp>
#include <caf/message.hpp>

#include "runtime/error_code.hpp"

#include <cstdint>
#include <string>

namespace lps {

/// The error category name (at most 10 characters for a CAF 0.17 atom).
inline constexpr auto error_category = caf::atom("lps");

/// Makes a CAF error of the lps category with a context message.
caf::error make_error(ec code, std::string context);

/// Renders an lps error for humans ("QUEUE_FULL: 1000 requests waiting").
std::string render_error(const caf::error& err);

} // namespace lps

CAF_ERROR_CODE_ENUM(lps::ec, "lps")
