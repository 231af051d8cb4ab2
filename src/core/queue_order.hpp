#pragma once

#include <string>
#include <vector>

namespace lockable {

/// The ids a waiter may try to lock now, in the order of `mine`: its candidate ids minus every
/// id wanted by a live waiter that queued earlier (`earlier`, in arrival order). The oldest
/// waiter (empty `earlier`) may try all of its ids, so the queue always makes progress, and a
/// newcomer never takes a device that an earlier waiter is waiting for. Pure; no I/O.
std::vector<std::string> claimable_ids(const std::vector<std::string>& mine,
                                       const std::vector<std::vector<std::string>>& earlier);

}  // namespace lockable
