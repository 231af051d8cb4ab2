#pragma once

// Private to this library and its front ends (the GoogleTest plugin): what Allocation's public
// interface must not offer.

#include <lockable/allocation.hpp>

namespace lockable::detail {

struct AllocationAccess {
  /// Frees `allocation`'s device at once, from any thread, while other threads may still be
  /// reading the allocation: the plugin's Ctrl-C thread, just before the process dies, while a
  /// test goes on calling allocation().lost(). unlock() would destroy the lock object under
  /// those readers; this only releases it (HeldLock::release is idempotent and thread-safe) and
  /// changes nothing else, so held() stays true and a later unlock() completes the bookkeeping.
  static void release_device(Allocation& allocation) noexcept {
    if (allocation.lock_) allocation.lock_->release();
  }
};

}  // namespace lockable::detail
