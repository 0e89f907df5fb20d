#include "runtime/fenced_store.hpp"

namespace lps {

void fenced_store::submit(store_write write, store_callback done) {
  write.fencing_epoch = epoch_;
  shared_.submit(std::move(write), std::move(done));
}

void fenced_store::flush() {
  shared_.flush();
}

void fenced_store::load_active_index(const std::function<void(stored_request&&)>& visit) {
  shared_.load_active_index(visit);
}

std::vector<stored_result> fenced_store::load_undelivered_results() {
  return shared_.load_undelivered_results();
}

void fenced_store::purge_expired_results() {
  shared_.purge_expired_results();
}

std::unique_ptr<store_reads> fenced_store::open_reader(std::string& error) {
  return shared_.open_reader(error);
}

uint64_t fenced_store::count_active_requests() {
  return shared_.count_active_requests();
}

uint64_t fenced_store::count_results() {
  return shared_.count_results();
}

store_stats fenced_store::stats() const {
  return shared_.stats();
}

store_health fenced_store::health() const {
  return shared_.health();
}

const std::string& fenced_store::path() const {
  return shared_.path();
}

std::optional<stored_result> fenced_store::find_result(const std::string& queue_id) {
  return shared_.find_result(queue_id);
}

std::optional<std::string> fenced_store::find_idempotency_key(const std::string& key) {
  return shared_.find_idempotency_key(key);
}

std::vector<stored_request> fenced_store::load_rows(const std::vector<std::string>& queue_ids) {
  return shared_.load_rows(queue_ids);
}

run_rows fenced_store::load_run(const std::string& bos_batch_id) {
  return shared_.load_run(bos_batch_id);
}

std::vector<run_summary> fenced_store::summarize_runs(int64_t since_ms, size_t limit) {
  return shared_.summarize_runs(since_ms, limit);
}

std::optional<run_summary> fenced_store::summarize_run(const std::string& bos_batch_id,
                                                       int64_t since_ms) {
  return shared_.summarize_run(bos_batch_id, since_ms);
}

std::vector<stored_result> fenced_store::load_run_results(const std::string& bos_batch_id,
                                                          const std::optional<result_cursor>& after,
                                                          size_t limit) {
  return shared_.load_run_results(bos_batch_id, after, limit);
}

} // namespace lps
