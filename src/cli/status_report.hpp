#pragma once

#include <lockable/lockable.hpp>

#include <chrono>
#include <string>
#include <vector>

namespace lockable::cli {

/// The version of `lockable status --json`'s schema (README "Status"): raised only when a field
/// changes meaning or goes away; new fields may appear without it.
constexpr int kStatusSchema = 1;

/// What `lockable status` shows of one device. One state per device; each state's details live
/// in the fields it names, so a new state (reserved: why, until) adds an enum value, its fields
/// and one case in each of device_state_name / device_details / the JSON.
struct DeviceStatus {
  enum class State { kFree, kHeld, kReserved, kOffline } state = State::kFree;
  std::string id;
  std::string hostname;
  bool for_this_host = true;
  /// kHeld: who holds it, since when, for which requirement, its fencing token (if issued).
  /// kReserved: the holder that keeps it while draining, or the lock folder's reservation holder.
  std::optional<HolderInfo> holder;
  /// kReserved: why, by whom, since and until when, and what is missing (Reservation::problem).
  std::optional<Reservation> reservation;
  /// Any state: a holder that lost its lock on this device and may still use it (the lock
  /// folder: its lock file was removed or replaced under it), else empty.
  std::string lost;
};

/// One waiting request in the order it would be served now.
struct QueuedStatus {
  QueuedRequest request;
  /// Its priority aged by its waiting time (core effective_priority), what the order uses.
  long long effective_priority = 0;
};

/// One snapshot of the lab: every device, then the queue in service order.
struct StatusReport {
  std::chrono::system_clock::time_point time;
  std::string this_host;
  /// Where the locks live (LockBackend::describe).
  std::string backend;
  std::vector<DeviceStatus> devices;
  /// Next served first: core queue_order over the backend's queue (arrival order) at `time`.
  std::vector<QueuedStatus> queue;
  /// Set when the store could not say which devices are reserved (the table says so).
  std::string reservations_unknown;
  /// What is wrong with the store (LockBackend::problems), each naming the fix.
  std::vector<std::string> problems;
};

/// Builds the snapshot from the library's answers. `queued` is in arrival order (as
/// LockBackend::queued() gives it); `aging` is Options::priority_aging. `reservations` is
/// LockBackend::reservations_of the statuses' ids, in their order (empty: none known).
StatusReport make_status_report(const std::vector<ResourceStatus>& statuses,
                                const std::vector<std::optional<Reservation>>& reservations,
                                const std::vector<QueuedRequest>& queued,
                                const std::string& this_host, const std::string& backend,
                                std::chrono::system_clock::time_point now,
                                std::chrono::system_clock::duration aging);

/// "free", "held", "reserved" or "offline".
std::string device_state_name(DeviceStatus::State state);

/// True when a lock on `this_host` may use `resource` (the implicit hostname filter): it names
/// this host.
bool for_this_host(const Resource& resource, const std::string& this_host);

/// The table: one line per device (id, host, state, details: the holder, since when and for how
/// long, for which requirement, allocation, fencing token; "not for this host" for another
/// host's device), then the queue in service order (position, priority, who, waiting time,
/// wanted ids, requirement) or "queue: empty", then a "warning: " line per problem of the store.
/// Ends with a newline.
std::string status_text(const StatusReport& report);

/// The schema documented in README "Status":
///   {"schema": 1, "time": ISO 8601, "hostname": this host, "backend": text,
///    "devices": [{"id", "hostname", "for_this_host",
///                 "state": "free"|"held"|"reserved"|"offline",
///                 "holder": null | {"pid", "hostname", "alloc_id", "since", "requirements",
///                                   "priority", "fencing_token"?, "held_for": seconds},
///                 "reservation": null | {"reason", "by", "since", "until": null | time,
///                                        "draining", "problem"?},
///                 "lost": null | "who lost the lock and why (may still use the device)"}],
///    "queue": [{"position": 1.., "pid", "hostname", "since", "waited": seconds,
///               "priority", "effective_priority", "requirements", "wants": [ids]}],
///    "problems": [text naming the fix]}
/// Attributes are left out: they may hold credentials.
Json status_json(const StatusReport& report);

}  // namespace lockable::cli
