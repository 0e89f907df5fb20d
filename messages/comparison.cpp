#include "messages/comparison.hpp"

#include <algorithm>

namespace lps {

const std::vector<std::string>& provider_names() {
  static const std::vector<std::string> names{"anthropic", "openai", "google", "openrouter",
                                              "mock"};
  return names;
}

bool is_provider_name(const std::string& name) {
  const auto& xs = provider_names();
  return std::find(xs.begin(), xs.end(), name) != xs.end();
}

} // namespace lps

#include "messages/queue.hpp"

namespace lps {

const char* to_string(queue_status x) {
  switch (x) {
  case queue_status::queued:
    return "queued";
  case queue_status::processing:
    return "processing";
  case queue_status::completed:
    return "completed";
  case queue_status::failed:
    return "failed";
  case queue_status::expired:
    return "expired";
  }
  return "unknown";
}

} // namespace lps
