#pragma once

#include <lockable/lock_loss.hpp>
#include <lockable/resource.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace lockable {

/// Who holds (or asks for) a device. Written next to the lock so that `lockable status` and
/// timeout errors can name the holder.
struct HolderInfo {
  long pid = 0;
  std::string hostname;
  std::string alloc_id;
  std::chrono::system_clock::time_point since{};
  Json requirements = Json::object();

  Json to_json() const;
  /// Tolerant: missing fields stay default (files written by other tools may lack them).
  static HolderInfo from_json(const Json& json);
  /// `pid 4242 on rig-01, allocation 1b4e..., since 2026-11-22T10:00:00.123Z`.
  std::string describe() const;
};

/// A lock on one device, held until `release()` or destruction. Implementations must make
/// `release()` idempotent and safe from any thread; it never throws.
class HeldLock {
 public:
  virtual ~HeldLock() = default;
  virtual void release() noexcept = 0;
  /// True when the backend knows the lock is no longer ours (lease expired, server said so).
  /// A local flock can never be lost while the process lives.
  virtual bool lost() const noexcept { return false; }
  /// Monotonic token issued with the lock by backends that support fencing (etcd revision).
  virtual std::optional<std::uint64_t> fencing_token() const noexcept { return std::nullopt; }
  /// Sets the handler run when the backend learns the lock is lost (see LockLossHandler; a
  /// LockLossSignal implements the contract): at most once, at once if already lost, never
  /// after `release()` returns. A local flock cannot be lost, so the default keeps no handler.
  virtual void on_lock_loss(LockLossHandler handler) { (void)handler; }
};

/// A waiter's place in the backend's fair queue; leaving the queue happens on destruction.
class QueueTicket {
 public:
  virtual ~QueueTicket() = default;
  /// Replace the ids this waiter wants (the resource list may change while it waits).
  virtual void update_wanted(const std::vector<std::string>& resource_ids) = 0;
  /// The ids wanted by live waiters that queued before this one, in arrival order. A waiter must
  /// leave those devices to them (see core `claimable_ids`).
  virtual std::vector<std::vector<std::string>> wanted_by_earlier_waiters() = 0;
};

/// Where locks live (a local folder, an HTTP lock service, etcd). Backends never parse
/// requirements; they lock resources by id. Thread-safe; may own a background thread.
class LockBackend {
 public:
  virtual ~LockBackend() = default;

  /// Try once, without waiting, to lock `resource`. Returns nullptr if someone else holds it.
  /// Two calls in one process (any thread, any backend object on the same store) never both
  /// succeed for one id. Throws BackendError when the store itself is unusable.
  virtual std::unique_ptr<HeldLock> try_lock(const Resource& resource,
                                             const HolderInfo& holder) = 0;

  /// Blocks until something may have changed (a lock was released, the queue moved) or until
  /// `deadline`. Spurious returns are allowed; missing a release is not.
  virtual void wait_for_change(std::chrono::steady_clock::time_point deadline) = 0;

  /// Joins the fair queue wanting `resource_ids`.
  virtual std::unique_ptr<QueueTicket> enqueue(const std::vector<std::string>& resource_ids,
                                               const HolderInfo& waiter) = 0;

  /// Current holder of `resource_id` if it is held (by anyone, including us), else nullopt. The
  /// HolderInfo may be partial (only a pid) for locks taken by other tools.
  virtual std::optional<HolderInfo> holder_of(const std::string& resource_id) = 0;

  /// Where the locks live, for messages (`lock folder /tmp`).
  virtual std::string describe() const = 0;
};

}  // namespace lockable
