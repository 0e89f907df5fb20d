#pragma once

// What the mock's two batch APIs share: constants, small helpers, a batch's items (judged
// when the batch is created, rendered when downloaded), how items progress over time, error
// and JSON answers, and routing of the batch paths. Internal to lps_mock_provider.

#include "runtime/http_server.hpp"
#include "runtime/ids.hpp"
#include "tools/mock_provider/mock_provider_dialects.hpp"
#include "tools/mock_provider/mock_provider_server.hpp"

#include <boost/json.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace lps::mock_batch {

namespace json = boost::json;
using mock_wire::dialect;
using mock_wire::provider_error;
using steady = std::chrono::steady_clock;
using std::chrono::milliseconds;

using mock_wire::base62;
using mock_wire::hex;
using mock_wire::outcome_of_status;

inline constexpr std::string_view chat_endpoint = "/v1/chat/completions";
inline constexpr std::string_view openai_files = "/v1/files";
inline constexpr std::string_view openai_batches = "/v1/batches";
inline constexpr std::string_view anthropic_batches = "/v1/messages/batches";

inline constexpr size_t openai_max_requests = 50000;
inline constexpr size_t anthropic_max_requests = 100000;
inline constexpr size_t anthropic_max_bytes = 256000000;
/// errors.data of a failed OpenAI batch lists at most this many lines.
inline constexpr size_t max_reported_errors = 1000;
inline constexpr int64_t day_ms = 86400000;
inline constexpr milliseconds max_duration{day_ms};
inline constexpr uint32_t max_forced_failures = 10000;

// -- small helpers ---------------------------------------------------------------------------

/// splitmix64: ids derived from a batch and an item index, so a file downloaded twice is the
/// same file.
struct id_stream {
  uint64_t state = 0;

  uint64_t next() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }

  std::string chars(size_t n, std::string_view alphabet) {
    std::string s(n, '0');
    for (auto& c : s)
      c = alphabet[next() % alphabet.size()];
    return s;
  }
};

/// A fraction in [0, 1) from a hash. FNV-1a leaves the high bits of strings that differ only
/// at the end ("item-1", "item-2") alike, so they are mixed first (splitmix64's finaliser).
double unit_of(uint64_t h);

int64_t unix_ms_now();

int64_t unix_seconds(int64_t unix_ms);

/// Anthropic's timestamps: RFC 3339, UTC, with microseconds.
std::string rfc3339(int64_t unix_ms);

std::string json_string(std::string_view s);

uint32_t clamp32(uint64_t v);

// -- items -----------------------------------------------------------------------------------

/// A judgement by indices into item_set::strings (the verdict strings repeat a lot).
struct verdict_ref {
  uint32_t winner = 0;
  uint32_t justification = 0;
  int32_t confidence = 0;
};

/// What happens to an item if its batch runs to the end.
enum class plan : uint8_t { succeed, fail, expire };

/// What one item needs to be rendered later: its answer is judged now, drawn later.
struct item {
  std::string custom_id;
  uint32_t model = 0;
  uint32_t tool = 0;
  uint32_t prompt_tokens = 0;
  uint32_t output_tokens = 0;
  verdict_ref verdict;
  plan planned = plan::succeed;
  bool multi = false;
  std::vector<std::pair<std::string, verdict_ref>> results;
};

/// A batch's items, immutable once built.
struct item_set {
  std::vector<std::string> strings;
  std::vector<item> items;
  /// Processing order (ranks -> item indices), which is also the order of result lines.
  std::vector<uint32_t> order;
  size_t planned_expired = 0;
  /// Feeds the per-item ids.
  uint64_t key = 0;
};

/// Collects valid items, judging each exactly as mock_provider_server judges a sync call.
class set_builder {
public:
  explicit set_builder(uint64_t seed) : seed_(seed), set_(std::make_shared<item_set>()) {}

  void add(std::string custom_id, const mock_wire::parsed_call& call);

  size_t size() const {
    return set_->items.size();
  }

  /// Draws each item's fate (from the seed, the batch ordinal and its custom_id) and the
  /// processing order (from the seed and `key`).
  std::shared_ptr<const item_set> finish(uint64_t ordinal, uint64_t key,
                                         const mock_batch_options& o);

private:
  uint32_t intern(const std::string& s) {
    auto [it, added] = index_.try_emplace(s, static_cast<uint32_t>(set_->strings.size()));
    if (added)
      set_->strings.push_back(s);
    return it->second;
  }

  verdict_ref compact(const mock_wire::judgement& j) {
    return {intern(j.winner), intern(j.justification), j.confidence};
  }

  uint64_t seed_;
  std::shared_ptr<item_set> set_;
  std::unordered_map<std::string, uint32_t> index_;
};

mock_wire::judgement expand(const item_set& s, const verdict_ref& v);

/// The ids of item `index`, the same on every download.
id_stream ids_of(const item_set& s, size_t index);

/// The 200 body a sync call would have got for this item.
std::string render_item(dialect d, const item_set& s, const item& it, id_stream& ids,
                        int64_t created);

// -- time ------------------------------------------------------------------------------------

struct timing {
  milliseconds validating{0};
  milliseconds processing{0};
  milliseconds finalizing{0};
  milliseconds cancel{0};
};

timing timing_of(const mock_batch_options& o);

/// Items processed `at` after creation: they finish evenly spread over the processing time.
size_t processed(const timing& t, size_t n, milliseconds at);

/// When the item of processing rank `rank` finished (ms after creation).
int64_t finished_at(const timing& t, size_t rank, size_t n);

/// What the first `done` items in processing order came to.
struct tally {
  uint64_t succeeded = 0;
  uint64_t errored = 0;
  uint64_t input_tokens = 0;
  uint64_t output_tokens = 0;
};

tally count(const item_set& s, size_t done);

/// What an item of an ended batch became.
enum class fate : uint8_t { succeeded, errored, expired, cancelled };

fate fate_of(const item& it, size_t rank, size_t done, bool cancelled);

// -- errors and answers ----------------------------------------------------------------------

provider_error error_of(dialect d, unsigned status, std::string message, std::string param = {},
                        std::string code = {});

void add_id_header(dialect d, const std::string& rid, http_response& out);

http_response error_reply(dialect d, const provider_error& e, const std::string& rid);

http_response json_reply(dialect d, const json::value& body, const std::string& rid);

std::optional<json::value> parse_json(std::string_view text);

/// Where a batch path leads.
struct route {
  dialect d = dialect::openai;
  /// A mock_batch_stats endpoint name; "unknown" for a path or method nothing answers.
  std::string endpoint = "unknown";
  std::string id;
};

/// True when `path` is `prefix` or below it.
bool under(std::string_view path, std::string_view prefix);

route route_of(std::string_view method, std::string_view path);

/// An integer query parameter in [lo, hi]; `fallback` when absent, nullopt when invalid.
std::optional<size_t> limit_param(std::string_view query, size_t fallback, size_t lo, size_t hi);

} // namespace lps::mock_batch
