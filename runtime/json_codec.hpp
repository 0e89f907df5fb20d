#pragma once

// JSON at the edge: HTTP bodies to validated structs, structs to response bodies and
// result events. Validation happens here, once, with errors that name the field.
// Implemented by json_request_parser.cpp (parsing and validation) and json_renderers.cpp
// (bodies and result events) on top of json_utf8, json_writer and json_scanner; Boost.JSON
// stays inside those files so other translation units stay light.

#include "messages/comparison.hpp"
#include "messages/queue.hpp"
#include "messages/status.hpp"
#include "runtime/error_code.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lps {

/// Limits applied while parsing a request body.
struct request_limits {
  /// JSON nested deeper than this is refused.
  unsigned max_depth = 64;
  /// Most items in one POST /api/v1/comparisons body; more is PAYLOAD_TOO_LARGE.
  size_t max_batch_items = 10000;
};

/// A validation failure: which field, what is wrong, and the error code for the envelope.
struct field_error {
  /// VALIDATION_ERROR, or PAYLOAD_TOO_LARGE for a bulk body over max_batch_items.
  ec code = ec::validation_error;
  /// Dotted path of the offending field ("llm_config_overrides.temperature_override",
  /// "requests[3].user_prompt"); empty for whole-body errors (malformed JSON).
  std::string field;
  std::string message;
};

/// Parses and validates one LLMComparisonRequest object body. On success fills `out`
/// (queue_id and queued_at stay empty: intake assigns them) and returns true.
bool parse_comparison_request(std::string_view body, const request_limits& limits,
                              comparison_request& out, field_error& error);

/// One item of a bulk body: either a request or the reason it was refused.
struct bulk_item {
  bool ok = false;
  comparison_request request;
  field_error error;
};

/// Parses `{"requests": [...]}`. Returns false (with `error`) only when the body as a whole
/// is unusable (malformed JSON, no requests array, too many items); otherwise every item
/// gets its own ok/error.
bool parse_comparison_batch(std::string_view body, const request_limits& limits,
                            std::vector<bulk_item>& items, field_error& error);

/// The error envelope: {"error": {"code", "message", "correlation_id", "details"}}.
/// `details_field` (when not empty) becomes details.field.
std::string render_error_body(ec code, std::string_view message, std::string_view correlation_id,
                              std::string_view details_field = {});

/// The rendered result event envelope (CONTRACTS.md section 2).
std::string render_result_event(const result_event& event);

/// 202 body for one accepted request: {"queue_id", "status": "queued", "correlation_id",
/// "message"}.
std::string render_accepted(const enqueue_outcome& outcome);

/// Body for the bulk endpoint (202, or 200 for a repeat): {"results": [...]} in request
/// order; refused entries (parse errors or enqueue refusals) carry {"error": {...}}.
struct bulk_entry {
  bool accepted = false;
  enqueue_outcome outcome;
  field_error error;
  /// An accepted entry's "status": "queued", or a repeated one's current status.
  std::string status = "queued";
};
std::string render_bulk_accepted(const std::vector<bulk_entry>& entries);

/// The window a queued request's nightly batch job may be submitted in.
struct submission_window {
  caf::timestamp opens_at;
  caf::timestamp closes_at;
};

/// GET /api/v1/status body for a request still held by the queue manager; with `window`, its
/// window_opens_at and window_closes_at follow the other members.
std::string render_status(const request_status& status,
                          const std::optional<submission_window>& window = std::nullopt);

/// GET /api/v1/inspect body: {"actors": [...]}.
std::string render_inspection(const std::vector<actor_status>& actors);

/// Escapes `text` as a JSON string literal including the quotes.
std::string json_quote(std::string_view text);

/// Reads top-level string fields of a stored result event (status route): returns "" if absent.
std::string json_string_field(std::string_view json, std::string_view key);

/// The code of one of our error bodies ({"error": {"code": ...}}), or "" if `json` is none.
std::string json_error_code(std::string_view json);

} // namespace lps
