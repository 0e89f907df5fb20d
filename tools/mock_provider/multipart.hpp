#pragma once

// multipart/form-data bodies, as the OpenAI file upload sends them. Internal to
// lps_mock_provider.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lps::mock_batch {

struct form_part {
  std::string name;
  std::optional<std::string> filename;
  std::string_view data;
};

/// The parts of a multipart/form-data body; nullopt when it is not one.
std::optional<std::vector<form_part>> parse_multipart(std::string_view content_type,
                                                      std::string_view body);

/// `s` without spaces and tabs at either end, nor a CR at its end.
std::string_view trim(std::string_view s);

} // namespace lps::mock_batch
