#pragma once

// The one CAF type-ID block of lps: every message type and atom.

#include "messages/bundle.hpp"
#include "messages/cancel.hpp"
#include "messages/comparison.hpp"
#include "messages/error.hpp"
#include "messages/gateway.hpp"
#include "messages/metrics.hpp"
#include "messages/queue.hpp"
#include "messages/status.hpp"

#include <caf/type_id.hpp>

#include <string>
#include <vector>

CAF_BEGIN_TYPE_ID_BLOCK(lps, caf::first_custom_type_id)

CAF_ADD_TYPE_ID(lps, (lps::prompt_block))
CAF_ADD_TYPE_ID(lps, (lps::llm_overrides))
CAF_ADD_TYPE_ID(lps, (lps::comparison_request))
CAF_ADD_TYPE_ID(lps, (lps::token_usage))
CAF_ADD_TYPE_ID(lps, (lps::request_enrichment))
CAF_ADD_TYPE_ID(lps, (lps::rate_limit_hint))
CAF_ADD_TYPE_ID(lps, (lps::comparison_outcome))
CAF_ADD_TYPE_ID(lps, (lps::enqueue_outcome))
CAF_ADD_TYPE_ID(lps, (lps::result_event))
CAF_ADD_TYPE_ID(lps, (lps::queue_status))
CAF_ADD_TYPE_ID(lps, (lps::queued_request))
CAF_ADD_TYPE_ID(lps, (lps::request_status))
CAF_ADD_TYPE_ID(lps, (lps::delivery))
CAF_ADD_TYPE_ID(lps, (lps::queue_backlog))
CAF_ADD_TYPE_ID(lps, (lps::adopted_request))
CAF_ADD_TYPE_ID(lps, (lps::bundle_item))
CAF_ADD_TYPE_ID(lps, (lps::bundle))
CAF_ADD_TYPE_ID(lps, (lps::actor_status))
CAF_ADD_TYPE_ID(lps, (lps::provider_status))
CAF_ADD_TYPE_ID(lps, (lps::metric_sample))
CAF_ADD_TYPE_ID(lps, (lps::ec))
CAF_ADD_TYPE_ID(lps, (lps::cancel_target))
CAF_ADD_TYPE_ID(lps, (lps::cancel_summary))
CAF_ADD_TYPE_ID(lps, (lps::status_row))
CAF_ADD_TYPE_ID(lps, (lps::actor_sample))
CAF_ADD_TYPE_ID(lps, (lps::inspection_snapshot))
CAF_ADD_TYPE_ID(lps, (lps::node_figures))
CAF_ADD_TYPE_ID(lps, (lps::gateway_call))
CAF_ADD_TYPE_ID(lps, (lps::gateway_reply))

CAF_ADD_TYPE_ID(lps, (std::vector<std::string>))
CAF_ADD_TYPE_ID(lps, (std::vector<lps::comparison_request>))
CAF_ADD_TYPE_ID(lps, (std::vector<lps::enqueue_outcome>))
CAF_ADD_TYPE_ID(lps, (std::vector<lps::queued_request>))
CAF_ADD_TYPE_ID(lps, (std::vector<lps::comparison_outcome>))
CAF_ADD_TYPE_ID(lps, (std::vector<lps::delivery>))
CAF_ADD_TYPE_ID(lps, (std::vector<lps::adopted_request>))
CAF_ADD_TYPE_ID(lps, (std::vector<lps::actor_status>))
CAF_ADD_TYPE_ID(lps, (std::vector<lps::provider_status>))
CAF_ADD_TYPE_ID(lps, (std::vector<lps::metric_sample>))
CAF_ADD_TYPE_ID(lps, (std::vector<lps::inspection_snapshot>))

CAF_ADD_ATOM(lps, lps::atom, submit, "submit")
CAF_ADD_ATOM(lps, lps::atom, enqueue, "enqueue")
CAF_ADD_ATOM(lps, lps::atom, dequeue, "dequeue")
CAF_ADD_ATOM(lps, lps::atom, complete, "complete")
CAF_ADD_ATOM(lps, lps::atom, process, "process")
CAF_ADD_ATOM(lps, lps::atom, deliver, "deliver")
CAF_ADD_ATOM(lps, lps::atom, status, "status")
CAF_ADD_ATOM(lps, lps::atom, record, "record")
CAF_ADD_ATOM(lps, lps::atom, render, "render")
CAF_ADD_ATOM(lps, lps::atom, stop, "stop")
CAF_ADD_ATOM(lps, lps::atom, lookup, "lookup")
CAF_ADD_ATOM(lps, lps::atom, inspect, "inspect")
CAF_ADD_ATOM(lps, lps::atom, wake, "wake")
CAF_ADD_ATOM(lps, lps::atom, drain, "drain")
CAF_ADD_ATOM(lps, lps::atom, peek, "peek")
CAF_ADD_ATOM(lps, lps::atom, cancel, "cancel")
CAF_ADD_ATOM(lps, lps::atom, drained, "drained")
CAF_ADD_ATOM(lps, lps::atom, providers, "providers")
CAF_ADD_ATOM(lps, lps::atom, accepting, "accepting")
CAF_ADD_ATOM(lps, lps::atom, history, "history")
CAF_ADD_ATOM(lps, lps::atom, figures, "figures")
CAF_ADD_ATOM(lps, lps::atom, adopt, "adopt")
CAF_ADD_ATOM(lps, lps::atom, gateway, "gateway")

// Internal messages of one actor to itself, each named for what it says.
CAF_ADD_ATOM(lps, lps::atom, store_committed, "committed")
CAF_ADD_ATOM(lps, lps::atom, sweep, "sweep")
CAF_ADD_ATOM(lps, lps::atom, http_answered, "httpanswer")
CAF_ADD_ATOM(lps, lps::atom, latency_elapsed, "latency")
CAF_ADD_ATOM(lps, lps::atom, callback_answered, "cbanswered")
CAF_ADD_ATOM(lps, lps::atom, retry_due, "retrydue")
CAF_ADD_ATOM(lps, lps::atom, resume, "resume")

CAF_END_TYPE_ID_BLOCK(lps)
