#pragma once

#include <lockable/resource.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace lockable {

/// Something that happened to a request for devices or to a device it got, as `Lockable` tells
/// its observers (metrics, logs). One request gives `kRequested`, then `kQueued` if it had to wait,
/// then `kGranted` once per device (or one `kTimedOut` / `kNoMatch` / `kCancelled` / `kFailed`);
/// each granted device later gives `kReleased`, after a `kLost` if its lock was lost.
struct AllocationEvent {
  enum class Kind {
    kRequested,  ///< a lock()/lock_many() call started
    kQueued,     ///< no full set was free: the request joined the queue
    kGranted,    ///< one device was locked for the request (`queue_time` set)
    kReleased,   ///< a granted device was unlocked (`hold_time` set)
    kLost,       ///< the backend reported a granted device's lock lost (`reason` set)
    kTimedOut,   ///< the request gave up at its timeout (`reason` set)
    kNoMatch,    ///< nothing can ever serve the request (`reason` set)
    kCancelled,  ///< Lockable::cancel() ended the request
    kFailed,     ///< any other error ended the request (`reason` set)
    /// An operator's action on one device (`resource_ids`: it; `by` and `reason` set), not
    /// part of a request (`request_id` empty):
    kForced,      ///< `lockable release --force` took it from its holder (`holder` set)
    kReserved,    ///< `lockable reserve` / `drain` took it out of service
    kUnreserved,  ///< `lockable unreserve` put it back
  };

  Kind kind = Kind::kRequested;
  /// Ties the events of one lock()/lock_many() call together (a UUID).
  std::string request_id;
  /// kGranted, kReleased, kLost: the allocation's id (Allocation::alloc_id()).
  std::string alloc_id;
  /// kGranted, kReleased, kLost: the device. kQueued, kTimedOut: every id the request could use.
  std::vector<std::string> resource_ids;
  /// The requirements as the caller gave them: an array with one object per requested device.
  Json requirements = Json::array();
  std::string hostname;
  long pid = 0;
  /// When it happened, on both clocks: steady for durations, wall for reports.
  std::chrono::steady_clock::time_point monotonic_time;
  std::chrono::system_clock::time_point wall_time;
  /// kGranted: from the request to the grant.
  std::optional<std::chrono::steady_clock::duration> queue_time;
  /// kLost: from the grant to this event. kReleased: from the grant to the unlock, measured
  /// just before it, so that `start + hold_time` ends before the device's next grant.
  /// (`wall_time` of kGranted is taken just after the lock is taken.)
  std::optional<std::chrono::steady_clock::duration> hold_time;
  /// The error message for kTimedOut, kNoMatch, kCancelled, kFailed; the loss reason for kLost.
  std::string reason;
  /// kGranted, kReleased, kLost: the lock's fencing token where the backend issues one.
  std::optional<std::uint64_t> fencing_token;
  /// kForced, kReserved, kUnreserved: who did it (`user@host`).
  std::string by;
  /// kForced: who held the device (HolderInfo::describe(); empty when it was free).
  std::string holder;
};

/// "requested", "queued", "granted", ... (for logs and metrics files).
const char* to_string(AllocationEvent::Kind kind) noexcept;

/// Receives events. Called on the thread where the event happened: the requesting thread, the
/// thread that unlocks, or the backend's keepalive thread for kLost. Must be quick and must not
/// call back into the Lockable; exceptions it throws are swallowed.
using AllocationObserver = std::function<void(const AllocationEvent&)>;

}  // namespace lockable
