#pragma once

// Every typed actor interface of lps, and nothing else: one place to see every
// conversation. Messages live in messages/; behaviour lives in one file pair per actor.
//
// Each actor with messages to itself (timers, store and HTTP answers handed over from other
// threads) has two types: `<role>_actor`, the interface peers hold, and
// `<role>_impl_actor`, the same plus those internal messages, which only the actor itself
// (and tests) use. An impl handle converts to the public one; never the other way.

#include "messages/type_ids.hpp"

#include <caf/typed_actor.hpp>
#include <caf/replies_to.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace lps {

// -- status: every actor answers it (the inspection protocol) ---------------------------

using status_client_actor = caf::typed_actor<
    // Reports name, kind, mailbox size, messages handled and the actor's own figures.
    caf::replies_to<atom::status>::with<actor_status>>;

// -- work requesters: whoever asks the queue manager for work ----------------------------

using work_requester_actor = caf::typed_actor<
    // New work was stored after this requester found its queues empty: ask again.
    caf::reacts_to<atom::wake>>;

// -- metrics ------------------------------------------------------------------------------

using metrics_actor = caf::typed_actor<
    // Applies counter steps, gauge values and histogram observations.
    caf::reacts_to<atom::record, std::vector<metric_sample>>,
    // Returns the Prometheus text exposition.
    caf::replies_to<atom::render>::with<std::string>>::extend_with<status_client_actor>;

// -- callbacks: webhook delivery of result events ----------------------------------------

using callbacks_actor = caf::typed_actor<
    // Queues result events for POSTing to their callback_url (retried with backoff).
    caf::reacts_to<atom::deliver, std::vector<delivery>>>::extend_with<status_client_actor>;

/// The callbacks actor's own handle.
using callbacks_impl_actor = callbacks_actor::extend<
    // Internal: a delivery attempt finished with this HTTP status (0: transport error), why
    // it failed ("" on a 2xx), and whether retrying cannot help (bad URL, refused target).
    caf::reacts_to<atom::callback_answered, delivery, uint32_t, std::string, bool>,
    // Internal: time to retry deliveries whose backoff elapsed.
    caf::reacts_to<atom::retry_due>>;

// -- providers: one actor per provider ----------------------------------------------------

using provider_actor = caf::typed_actor<
    // process_comparison_batch: one outcome per bundle item, in item order; a failing item
    // never fails its neighbours.
    caf::replies_to<atom::process, bundle>::with<std::vector<comparison_outcome>>,
    // The gateway path: one OpenAI-shaped chat call, retried while retryable, answered in
    // OpenAI's shape (docs/gateway.md).
    caf::replies_to<atom::gateway,
                    gateway_call>::with<gateway_reply>>::extend_with<status_client_actor>;

/// The mock provider's own handle.
using provider_mock_impl_actor = provider_actor::extend<
    // Internal: the simulated latency of the reply with this ticket has elapsed.
    caf::reacts_to<atom::latency_elapsed, uint64_t>>;

/// An HTTP provider's own handle.
using provider_http_impl_actor = provider_actor::extend<
    // Internal: the HTTP answer with this ticket is in the inbox.
    caf::reacts_to<atom::http_answered, uint64_t>,
    // Internal: the backoff of the gateway call with this ticket is over: try it again.
    caf::reacts_to<atom::retry_due, uint64_t>>;

// -- bundler: the queue processor ---------------------------------------------------------

using bundler_actor = caf::typed_actor<
    // Stop pulling work (shutdown); replies `drained` once no bundle is in flight any more
    // (bundles in flight still finish; a requester that stops waiting leaves them running).
    caf::replies_to<atom::drain>::with<atom::drained>,
    // Ends the pause of a provider that rejected the key (the operator fixed it); replies
    // false when that provider is not paused.
    caf::replies_to<atom::resume, std::string>::with<bool>,
    // Reports every provider it serves: breaker, pause, bundles in flight, time blocked.
    caf::replies_to<atom::providers>::with<std::vector<provider_status>>>::
    extend_with<work_requester_actor>::extend_with<status_client_actor>;

// -- queue manager: sole owner of queue state and the durable store ----------------------

using queue_manager_actor = caf::typed_actor<
    // Stores requests durably; replies (one outcome per request, in order) after commit.
    caf::replies_to<atom::enqueue,
                    std::vector<comparison_request>>::with<std::vector<enqueue_outcome>>,
    // Hands out up to n queued requests for the given providers, in queue order (priority,
    // then FIFO), marked processing; when none, the asking work requester gets one `wake`
    // as soon as new work is available.
    caf::replies_to<atom::dequeue, uint32_t,
                    std::vector<std::string>>::with<std::vector<queued_request>>,
    // Final or retryable outcomes of processed requests.
    caf::reacts_to<atom::complete, std::vector<comparison_outcome>>,
    // Cluster leader: requests other nodes stored, found by the store poller; those already
    // held are skipped.
    caf::reacts_to<atom::adopt, std::vector<adopted_request>>,
    // Status of a request still held (found == false once final or unknown).
    caf::replies_to<atom::lookup, std::string>::with<request_status>,
    // What waits in one provider's ready queue (batch jobs decide when to submit from it).
    caf::replies_to<atom::peek, std::string>::with<queue_backlog>,
    // Refuse new requests from now on (shutdown; /healthz says draining).
    caf::reacts_to<atom::stop>,
    // Ends the target's queued requests with a final CANCELLED result; those processing or
    // final are left alone. Replies with the counts once the results are committed.
    caf::replies_to<atom::cancel, cancel_target>::with<cancel_summary>,
    // Whether new requests are taken: false once `stop` or `drain` arrived.
    caf::replies_to<atom::accepting>::with<bool>,
    // Stop taking new requests and flush the store; replies when flushed.
    caf::replies_to<atom::drain>::with<bool>>::extend_with<status_client_actor>;

/// The queue manager's own handle.
using queue_manager_impl_actor = queue_manager_actor::extend<
    // Internal: a store write, or a read on the reader pool, finished (its id, ok, error
    // text).
    caf::reacts_to<atom::store_committed, uint64_t, bool, std::string>,
    // Internal: the periodic sweep (expiry, due retries, failed writes again, gauges).
    caf::reacts_to<atom::sweep>>;

// -- batch jobs: one per provider with a batch API -----------------------------------------

// A work requester too: `wake` is ignored, because the actor looks at the queue on its own
// schedule.
using batch_jobs_actor = caf::typed_actor<
    // Operator cancel of a job by id; replies "" when accepted, else why not.
    caf::replies_to<atom::cancel, std::string>::with<std::string>,
    // Stop starting new jobs (jobs in flight go on; they are durable).
    caf::reacts_to<atom::stop>>::extend_with<work_requester_actor>::
    extend_with<status_client_actor>;

/// The batch jobs actor's own handle.
using batch_jobs_impl_actor = batch_jobs_actor::extend<
    // Internal: time to look at the queue and start due job steps.
    caf::reacts_to<atom::sweep>,
    // Internal: the HTTP answer with this ticket is in the inbox.
    caf::reacts_to<atom::http_answered, uint64_t>,
    // Internal: the job store write with this ticket is done (ok, else the store's error).
    caf::reacts_to<atom::store_committed, uint64_t, bool, std::string>>;

// -- intake: the front door ---------------------------------------------------------------

using intake_actor = caf::typed_actor<
    // Assigns queue ids and defaults, stores via the queue manager, replies once durable.
    caf::replies_to<atom::submit,
                    std::vector<comparison_request>>::with<std::vector<enqueue_outcome>>,
    // Refuse new submissions from now on (503 SERVICE_UNAVAILABLE).
    caf::reacts_to<atom::stop>>::extend_with<status_client_actor>;

// -- inspector: aggregates every actor's status ------------------------------------------

using inspector_actor = caf::typed_actor<
    // Asks every registered actor for its status; replies with all answers.
    caf::replies_to<atom::inspect>::with<std::vector<actor_status>>,
    // Replies with the snapshots of the last n samples (one a second, at most 600), oldest
    // first; only the newest keeps the actors' tables.
    caf::replies_to<atom::history, uint32_t>::with<std::vector<inspection_snapshot>>,
    // Replies with this node's own figures from the newest snapshot (seq 0: none yet), for
    // the nodes view of the other nodes of a cluster.
    caf::replies_to<atom::inspect,
                    atom::figures>::with<node_figures>>::extend_with<status_client_actor>;

/// The inspector's own handle.
using inspector_impl_actor = inspector_actor::extend<
    // Internal: time to take the next sample.
    caf::reacts_to<atom::sweep>>;

// -- request bridge: one per call of an HTTP route (app/http_api) -------------------------

// Told the request it makes on the route's behalf (its only message), it hands the reply or
// the error (a timeout's too) to the route's callback and ends.
template <class... Request>
using request_bridge_actor = caf::typed_actor<caf::reacts_to<Request...>>;

// -- commit waiter: one per store write an HTTP route waits for (app/http_api) ------------

// Told whether the store committed the write (its only message), it hands that to the
// route's callback and ends.
using commit_waiter_actor = caf::typed_actor<caf::reacts_to<bool>>;

} // namespace lps
