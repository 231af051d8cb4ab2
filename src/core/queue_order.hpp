#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

namespace lockable {

/// The ids a waiter may try to lock now, in the order of `mine`: its candidate ids minus every
/// id wanted by a live waiter served before it (`earlier`, in queue order, see queue_order). The
/// first waiter (empty `earlier`) may try all of its ids, so the queue always makes progress,
/// and a newcomer never takes a device that a waiter ahead of it is waiting for. Pure; no I/O.
std::vector<std::string> claimable_ids(const std::vector<std::string>& mine,
                                       const std::vector<std::vector<std::string>>& earlier);

/// The earlier waiters a waiter waits behind, one per id of `mine` that some of `earlier` (in
/// queue order) wants: the last of those, the nearest to it in the queue. As ids are only
/// released to the waiter once no earlier waiter wants them, an id of `mine` can become
/// claimable (claimable_ids) only once that nearest one has left or stopped wanting it: the
/// others leaving first changes nothing for it. So a waiter that watches only these tickets
/// misses no chance to move up (etcd's lock recipe watches only the previous key). Indexes into
/// `earlier`, ascending, each once. Pure; no I/O.
std::vector<std::size_t> nearest_holding_back(const std::vector<std::string>& mine,
                                              const std::vector<std::vector<std::string>>& earlier);

/// One waiter as the queue order sees it.
struct QueuePlace {
  /// The request's priority (higher is served first).
  int priority = 0;
  /// When it joined the queue (wall clock): its waiting time ages its priority. The epoch means
  /// unknown (no aging).
  std::chrono::system_clock::time_point since{};
};

/// `priority` raised by one per whole `aging` waited since `since` (never lowered: a `since` in
/// the future, another host's clock, counts as no wait). `aging` <= 0 means no aging. Saturates
/// instead of overflowing.
long long effective_priority(const QueuePlace& place, std::chrono::system_clock::time_point now,
                             std::chrono::system_clock::duration aging);

/// The order in which waiters are served, as indexes into `by_arrival` (the waiters oldest
/// first, in the store's arrival order): higher effective priority first (see
/// effective_priority), arrival order among equals. Aging raises every waiter alike, so it never
/// reorders waiters of one priority, and a waiter of priority p is never overtaken by one of
/// priority q > p that arrives (q - p) * aging or more after it: it is served at the latest once
/// the waiters queued before that moment have had their turn. Pure; no I/O.
std::vector<std::size_t> queue_order(const std::vector<QueuePlace>& by_arrival,
                                     std::chrono::system_clock::time_point now,
                                     std::chrono::system_clock::duration aging);

/// The indexes of the waiters served before `by_arrival[mine]`, in queue order (queue_order).
std::vector<std::size_t> served_before(const std::vector<QueuePlace>& by_arrival, std::size_t mine,
                                       std::chrono::system_clock::time_point now,
                                       std::chrono::system_clock::duration aging);

}  // namespace lockable
