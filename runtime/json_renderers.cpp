// Structs to response bodies and result events: the error envelope, the result event, the
// 202 bodies, the status and inspection bodies.

#include "runtime/json_codec.hpp"
#include "runtime/json_scanner.hpp"
#include "runtime/json_utf8.hpp"
#include "runtime/json_writer.hpp"

#include "runtime/ids.hpp"

#include <boost/json.hpp>

#include <chrono>
#include <cmath>
#include <cstdint>

namespace lps {

namespace {

namespace json = boost::json;

/// The error envelope's inner object, shared by the single and the bulk bodies.
void append_error_object(std::string& out, std::string_view code, std::string_view message,
                         std::string_view correlation_id, std::string_view details_field) {
  object_writer error{out};
  error.string("code", code)
      .string("message", message)
      .string_or_null("correlation_id", correlation_id);
  object_writer details{error.member("details")};
  if (!details_field.empty())
    details.string("field", details_field);
  details.close();
  error.close();
}

/// Enrichment keys lps adds to request_metadata, each only where the caller did not set it.
template <class Emit>
void for_each_enrichment(const json::object& caller, const result_event& event, Emit emit) {
  const auto& outcome = event.outcome;
  const auto& enrichment = outcome.enrichment;
  auto text = [&](std::string_view key, std::string_view value) {
    if (!value.empty() && !caller.contains(key))
      emit(key, json_quote(value));
  };
  auto count = [&](std::string_view key, uint64_t value) {
    if (value > 0 && !caller.contains(key))
      emit(key, std::to_string(value));
  };
  text("resolved_provider", enrichment.resolved_provider);
  text("resolved_model", enrichment.resolved_model);
  text("queue_processing_mode", enrichment.queue_processing_mode);
  text("prompt_sha256", outcome.prompt_sha256);
  if (enrichment.bundle_size > 0) {
    text("bundle_id", enrichment.bundle_id);
    count("bundle_size", enrichment.bundle_size);
  }
  text("batch_job_id", enrichment.batch_job_id);
  count("cache_read_input_tokens", outcome.usage.cache_read_input_tokens);
  count("cache_creation_input_tokens", outcome.usage.cache_creation_input_tokens);
}

/// `raw` is a valid JSON object text: copied as it is, lps' keys appended before its brace.
void append_metadata_verbatim(std::string& out, std::string_view raw, const json::object& keys,
                              const result_event& event) {
  out.append(raw.data(), raw.size() - 1);
  bool first = keys.empty();
  for_each_enrichment(keys, event, [&](std::string_view key, const std::string& value) {
    if (!first)
      out += ',';
    first = false;
    out += json_quote(key);
    out += ':';
    out += value;
  });
  out += '}';
}

/// request_metadata: the caller's keys untouched, then enrichment keys the caller did not set.
void append_request_metadata(std::string& out, const result_event& event) {
  unsigned char buffer[document_buffer_size];
  json::monotonic_resource resource{buffer, sizeof(buffer)};
  json::parse_options options;
  options.max_depth = 256; // stored metadata passed the intake limit already
  json::error_code ec;
  auto caller = json::parse(event.caller_metadata_json, ec, json::storage_ptr{&resource}, options);
  static const json::object no_keys;
  const auto& keys = !ec && caller.is_object() ? caller.get_object() : no_keys;
  // The caller's text as given (exact numbers), then lps' keys appended inside its braces.
  std::string_view raw = event.caller_metadata_json;
  while (!raw.empty() && is_json_space(raw.front()))
    raw.remove_prefix(1);
  while (!raw.empty() && is_json_space(raw.back()))
    raw.remove_suffix(1);
  bool verbatim =
      !ec && caller.is_object() && raw.size() >= 2 && raw.front() == '{' && raw.back() == '}';
  if (verbatim)
    return append_metadata_verbatim(out, raw, keys, event);
  object_writer metadata{out};
  for (const auto& member : keys)
    append_value(metadata.member(member.key()), member.value());
  for_each_enrichment(keys, event, [&](std::string_view key, const std::string& value) {
    metadata.member(key) += value;
  });
  metadata.close();
}

constexpr std::string_view service_name = "llm_provider_service";

/// CONTRACTS.md: justification holds at most 500 characters; longer text is cut, not lost.
constexpr size_t max_justification_chars = 500;

std::string_view first_non_empty(std::string_view a, std::string_view b) {
  return !a.empty() ? a : b;
}

void append_error_detail(std::string& out, const result_event& event,
                         std::string_view correlation_id, std::string_view provider) {
  const auto& outcome = event.outcome;
  object_writer detail{out};
  // An unnamed failure still needs a code consumers can switch on.
  detail.string("error_code", first_non_empty(outcome.error_code, to_string(ec::internal_error)))
      .string("message", outcome.error_message)
      .string_or_null("correlation_id", correlation_id)
      .string("timestamp", iso8601(event.completed_at))
      .string("service", service_name)
      .string("operation", "process_comparison");
  object_writer details{detail.member("details")};
  if (outcome.http_status != 0)
    details.integer("http_status", outcome.http_status);
  details.boolean("retryable", outcome.retryable)
      .string_or_null("provider", provider)
      .string_or_null("final_status", event.final_status);
  // How many provider attempts were made before this final failure (0: none, e.g. expiry).
  details.integer("attempts", event.attempts);
  details.close();
  detail.close();
}

void append_result_data(std::string& out, const result_event& event,
                        std::string_view correlation_id) {
  const auto& outcome = event.outcome;
  // Who served the call; a request that never reached a provider names the one resolved for it.
  auto provider = first_non_empty(outcome.provider, outcome.enrichment.resolved_provider);
  auto model = first_non_empty(outcome.model, outcome.enrichment.resolved_model);
  object_writer data{out};
  data.string("request_id", event.request_id).string_or_null("correlation_id", correlation_id);
  if (outcome.success) {
    data.string("winner", outcome.winner)
        .string("justification", cut_to_chars(outcome.justification, max_justification_chars))
        .number("confidence", outcome.confidence)
        .null("error_detail");
  } else {
    data.null("winner").null("justification").null("confidence");
    append_error_detail(data.member("error_detail"), event, correlation_id, provider);
  }
  data.string_or_null("provider", provider)
      .string_or_null("model", model)
      .integer("response_time_ms",
               static_cast<int64_t>(
                   std::chrono::duration_cast<std::chrono::milliseconds>(outcome.response_time)
                       .count()));
  object_writer usage{data.member("token_usage")};
  usage.integer("prompt_tokens", outcome.usage.prompt_tokens)
      .integer("completion_tokens", outcome.usage.completion_tokens)
      .integer("total_tokens", outcome.usage.total_tokens);
  usage.close();
  data.number("cost_estimate", std::isfinite(outcome.cost_estimate) ? outcome.cost_estimate : 0.0)
      .string("requested_at", iso8601(event.requested_at))
      .string("completed_at", iso8601(event.completed_at))
      .string_or_null("trace_id", event.trace_id);
  append_request_metadata(data.member("request_metadata"), event);
  data.close();
}

} // namespace

std::string render_error_body(ec code, std::string_view message, std::string_view correlation_id,
                              std::string_view details_field) {
  std::string result;
  result.reserve(128 + message.size());
  object_writer body{result};
  append_error_object(body.member("error"), to_string(code), message, correlation_id,
                      details_field);
  body.close();
  return result;
}

std::string render_result_event(const result_event& event) {
  // The original service fell back to the queue id when a request had no correlation id.
  std::string_view correlation_id =
      !event.correlation_id.empty() ? event.correlation_id : event.request_id;
  std::string result;
  result.reserve(1024 + event.outcome.justification.size() + event.caller_metadata_json.size()
                 + event.outcome.error_message.size());
  object_writer envelope{result};
  envelope.string("event_id", event.event_id)
      .string("event_type", "LLMComparisonResultV1")
      .string("event_timestamp", iso8601(event.event_timestamp))
      .string("source_service", service_name)
      .integer("schema_version", 1)
      .string_or_null("correlation_id", correlation_id);
  append_result_data(envelope.member("data"), event, correlation_id);
  envelope.close();
  return result;
}

std::string render_accepted(const enqueue_outcome& outcome) {
  std::string result;
  object_writer body{result};
  body.string("queue_id", outcome.queue_id)
      .string("status", "queued")
      .string_or_null("correlation_id", outcome.correlation_id)
      .string("message", "Request queued for processing");
  body.close();
  return result;
}

std::string render_bulk_accepted(const std::vector<bulk_entry>& entries) {
  std::string result;
  result.reserve(32 + entries.size() * 128);
  object_writer body{result};
  auto& out = body.member("results");
  out += '[';
  for (size_t i = 0; i < entries.size(); ++i) {
    if (i > 0)
      out += ',';
    const auto& entry = entries[i];
    object_writer item{out};
    if (entry.accepted) {
      item.string("queue_id", entry.outcome.queue_id)
          .string("status", entry.status)
          .string_or_null("correlation_id", entry.outcome.correlation_id);
    } else if (!entry.error.message.empty()) {
      // Refused while parsing: the request never got a correlation id of ours.
      append_error_object(item.member("error"), to_string(entry.error.code), entry.error.message,
                          {}, entry.error.field);
    } else {
      append_error_object(item.member("error"), entry.outcome.error_code,
                          entry.outcome.error_message, entry.outcome.correlation_id, {});
    }
    item.close();
  }
  out += ']';
  body.close();
  return result;
}

std::string json_quote(std::string_view text) {
  std::string result;
  append_quoted(result, text);
  return result;
}

std::string render_status(const request_status& status,
                          const std::optional<submission_window>& window) {
  std::string result;
  object_writer body{result};
  body.string("queue_id", status.queue_id)
      .string("status", to_string(status.status))
      .string("queued_at", iso8601(status.queued_at))
      .integer("attempts", status.attempts)
      .integer("priority", status.priority)
      .string_or_null("provider", status.provider)
      .string_or_null("model", status.model)
      .string_or_null("correlation_id", status.correlation_id);
  if (status.last_error_code.empty()) {
    body.null("last_error");
  } else {
    object_writer error{body.member("last_error")};
    error.string("code", status.last_error_code).string("message", status.last_error_message);
    error.close();
  }
  if (status.next_attempt_at == caf::timestamp{})
    body.null("next_attempt_at");
  else
    body.string("next_attempt_at", iso8601(status.next_attempt_at));
  if (window)
    body.string("window_opens_at", iso8601(window->opens_at))
        .string("window_closes_at", iso8601(window->closes_at));
  body.close();
  return result;
}

std::string render_inspection(const std::vector<actor_status>& actors) {
  std::string result;
  object_writer body{result};
  auto& out = body.member("actors");
  out += '[';
  for (size_t i = 0; i < actors.size(); ++i) {
    if (i > 0)
      out += ',';
    const auto& actor = actors[i];
    object_writer item{out};
    item.string("name", actor.name)
        .string("kind", actor.kind)
        .integer("mailbox_size", actor.mailbox_size)
        .integer("messages_handled", actor.messages_handled);
    object_writer figures{item.member("figures")};
    for (const auto& [key, value] : actor.figures)
      figures.number(key, value);
    figures.close();
    object_writer facts{item.member("facts")};
    for (const auto& [key, value] : actor.facts)
      facts.string(key, value);
    facts.close();
    item.close();
  }
  out += ']';
  body.close();
  return result;
}

} // namespace lps
