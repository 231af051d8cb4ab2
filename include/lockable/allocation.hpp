#pragma once

#include <lockable/backend.hpp>
#include <lockable/resource.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace lockable {

namespace detail {
struct AllocationAccess;  // src/core/allocation_access.hpp: for this library's own front ends
}  // namespace detail

/// A device handed to the caller. Move-only; releases the device when destroyed or when
/// `unlock()` is called (the C++ form of Python's `auto_lock`). Releasing twice is harmless.
/// Timings: `queue_time` runs from the request to the grant; `start_time` is the grant (wall
/// clock, for reports); `duration` runs from the grant to the release (or to now while held).
class Allocation {
 public:
  using SystemTime = std::chrono::system_clock::time_point;
  using Duration = std::chrono::steady_clock::duration;

  Allocation() = default;
  Allocation(Json requirements, Resource resource, std::string alloc_id, Duration queue_time,
             std::unique_ptr<HeldLock> lock);
  Allocation(Allocation&&) noexcept;
  Allocation& operator=(Allocation&&) noexcept;
  Allocation(const Allocation&) = delete;
  Allocation& operator=(const Allocation&) = delete;
  ~Allocation();

  /// Releases the device now. Idempotent; never throws.
  void unlock() noexcept;
  /// True until `unlock()` (or destruction). False for a default-constructed Allocation.
  bool held() const noexcept;
  /// True when the backend reports the lock lost (lease expired); the device may be in use by
  /// someone else. Never true for the local lock folder.
  bool lost() const noexcept;
  std::optional<std::uint64_t> fencing_token() const noexcept;
  /// Runs `handler(reason)` if the backend reports this device's lock lost while it is held
  /// (at once if that already happened), on the backend's thread; replaces an earlier handler.
  /// Never runs after `unlock()` returns. Does nothing for an allocation not held. The local
  /// lock folder never loses a lock.
  void on_lock_loss(LockLossHandler handler);

  /// The requirements as given by the caller (without the implicit filters).
  const Json& requirements() const noexcept { return requirements_; }
  const Resource& resource() const noexcept { return resource_; }
  const std::string& resource_id() const noexcept { return resource_.id; }
  /// Attributes of the device, e.g. `alloc.attributes()["serial"]`.
  const Json& attributes() const noexcept { return resource_.attributes; }
  /// A UUID unique to this allocation.
  const std::string& alloc_id() const noexcept { return alloc_id_; }
  Duration queue_time() const noexcept { return queue_time_; }
  SystemTime start_time() const noexcept { return start_time_; }
  /// Set once released.
  std::optional<SystemTime> release_time() const noexcept { return release_time_; }
  /// Time held: grant to release, or grant to now while held.
  Duration duration() const noexcept;

  /// Everything above as JSON (times as ISO 8601 UTC, durations in seconds), for reports.
  Json to_json() const;

 private:
  friend struct detail::AllocationAccess;

  Json requirements_;
  Resource resource_;
  std::string alloc_id_;
  Duration queue_time_{};
  SystemTime start_time_{};
  std::chrono::steady_clock::time_point start_steady_{};
  std::optional<SystemTime> release_time_;
  Duration held_for_{};
  std::unique_ptr<HeldLock> lock_;
};

/// `2026-11-22T10:00:00.123Z`.
std::string format_iso8601(std::chrono::system_clock::time_point time);

/// A duration as seconds with three decimals, rounded to the millisecond: `0.012`, `12.345`,
/// `-0.250` (no unit). The one form lockable writes durations in: GoogleTest's own `time`
/// attribute, the `lockable_allocation_queue_time` and `lockable_allocation_duration` report
/// properties, and the plugin's, the CLI's and the library's messages (which append " s").
std::string format_seconds(std::chrono::nanoseconds duration);

/// A new random (version 4) UUID in canonical text form.
std::string new_uuid();

}  // namespace lockable
