#pragma once

// An in-memory LockBackend whose locks a test can revoke, as a lease backend's keepalive thread
// would on expiry: for testing lock-loss handling before (and independently of) the lease
// backends themselves. It has a real queue (priorities, FIFO within one, aging: core
// queue_order), so the backend contract suite runs over it.

#include <lockable/backend.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace lockable::test {

class MemoryBackend final : public LockBackend {
 public:
  MemoryBackend();
  /// Another backend object on the same store as `store` (as two processes share one folder).
  explicit MemoryBackend(const MemoryBackend& store);
  ~MemoryBackend() override;

  std::unique_ptr<HeldLock> try_lock(const Resource& resource, const HolderInfo& holder) override;
  void wait_for_change(std::chrono::steady_clock::time_point deadline) override;
  std::unique_ptr<QueueTicket> enqueue(const std::vector<std::string>& resource_ids,
                                       const HolderInfo& waiter) override;
  std::optional<HolderInfo> holder_of(const std::string& resource_id) override;
  void set_priority_aging(std::chrono::milliseconds aging) override;
  std::string describe() const override { return "memory backend"; }

  /// Takes the lock on `resource_id` away from its holder and reports the loss from a thread of
  /// the backend; returns once the holder's handler (if any) has run. Returns false when the id
  /// is not held.
  bool revoke(const std::string& resource_id, const std::string& reason);

  /// Shared with the locks it grants, which may outlive the backend object.
  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace lockable::test
