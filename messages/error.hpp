#pragma once

#include <caf/error.hpp>
#include <caf/atom.hpp>
#include <caf/fwd.hpp>
#include <caf/message.hpp>

#include <cstdint>
#include <string>

namespace lps {

/// Error codes of the lps error category. 0 is reserved: CAF 0.17 treats it as "no error".
enum class ec : uint8_t {
  /// Not an error.
  none = 0,
  /// The service is stopping and does not take new work.
  shutting_down,
  /// Queue capacity (count or bytes) reached; the request was not stored.
  queue_full,
  /// The durable store failed to commit; nothing was acknowledged.
  store_failure,
  /// A request id was not found.
  not_found,
  /// Configuration is invalid or a provider is not configured.
  configuration,
  /// Input failed validation.
  invalid_input,
};

/// Renders an error code as its lower-case name.
const char* to_string(ec code);

/// The error category name (at most 10 characters for a CAF 0.17 atom).
inline constexpr auto error_category = caf::atom("lps");

/// Makes a CAF error of the lps category with a context message.
caf::error make_error(ec code, std::string context);

/// Renders an lps error for humans ("queue_full: 1000 requests waiting").
std::string render_error(const caf::error& err);

} // namespace lps

CAF_ERROR_CODE_ENUM(lps::ec, "lps")
