#pragma once

// The store as the cluster leader's singletons see it (docs/cluster.md): every write they
// submit carries the leader lease epoch they were started under, so the PostgreSQL store
// commits it only while that epoch still holds the lease. An old leader that was paused or
// cut off thus writes nothing, however late its writes arrive. Everything else goes to the
// shared store unchanged.

#include "runtime/store.hpp"

#include <cstdint>

namespace lps {

class fenced_store final : public store {
public:
  /// `shared` (the node's store) outlives this object.
  fenced_store(store& shared, int64_t epoch) : shared_(shared), epoch_(epoch) {}

  int64_t epoch() const {
    return epoch_;
  }

  void submit(store_write write, store_callback done) override;
  void flush() override;
  void load_active_index(const std::function<void(stored_request&&)>& visit) override;
  std::vector<stored_result> load_undelivered_results() override;
  void purge_expired_results() override;
  std::unique_ptr<store_reads> open_reader(std::string& error) override;
  uint64_t count_active_requests() override;
  uint64_t count_results() override;
  store_stats stats() const override;
  store_health health() const override;
  const std::string& path() const override;

  std::optional<stored_result> find_result(const std::string& queue_id) override;
  std::optional<std::string> find_idempotency_key(const std::string& key) override;
  std::vector<stored_request> load_rows(const std::vector<std::string>& queue_ids) override;
  run_rows load_run(const std::string& bos_batch_id) override;
  std::vector<run_summary> summarize_runs(int64_t since_ms, size_t limit) override;
  std::optional<run_summary> summarize_run(const std::string& bos_batch_id,
                                           int64_t since_ms) override;
  std::vector<stored_result> load_run_results(const std::string& bos_batch_id,
                                              const std::optional<result_cursor>& after,
                                              size_t limit) override;

private:
  store& shared_;
  int64_t epoch_;
};

} // namespace lps
