#pragma once

#include <lockable/lockable.hpp>

#include <string>
#include <vector>

namespace lockable::cli {

/// "free", "busy" or "offline".
std::string state_name(ResourceStatus::State state);

/// True when a lock on `this_host` may use `resource` (the implicit hostname filter): it names
/// this host.
bool for_this_host(const Resource& resource, const std::string& this_host);

/// One line per resource: id, host, state, and for busy ones the holder (pid, host,
/// allocation id, since when), under a header line. A device of another host says so (a lock
/// here never takes it). Ends with a newline.
std::string status_table(const std::vector<ResourceStatus>& statuses, const std::string& this_host);

/// A JSON array of {"id", "hostname", "state", "holder", "for_this_host"}; "holder" is
/// HolderInfo::to_json() for busy resources and null otherwise; "for_this_host" is false for a
/// device of another host. Attributes are left out: they may hold credentials.
Json status_json(const std::vector<ResourceStatus>& statuses, const std::string& this_host);

/// "reserved:" and one line per reserved device (`id: reserved "why" (by, since, until)`, and
/// what is missing, see Reservation::problem), asked from `store`; "" when none is. A store that
/// cannot say (an error) is one line saying so. Ends with a newline when not empty.
std::string reservation_lines(const std::vector<ResourceStatus>& statuses, LockBackend& store);

/// "queue, oldest first:" and one line per waiting request (who, since when, which ids), or ""
/// when nothing waits (or the backend cannot tell). Ends with a newline when not empty.
std::string queue_lines(const std::vector<QueuedRequest>& queued);

}  // namespace lockable::cli
