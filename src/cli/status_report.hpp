#pragma once

#include <lockable/lockable.hpp>

#include <string>
#include <vector>

namespace lockable::cli {

/// "free", "busy" or "offline".
std::string state_name(ResourceStatus::State state);

/// One line per resource: id, host, state, and for busy ones the holder (pid, host,
/// allocation id, since when), under a header line. Ends with a newline.
std::string status_table(const std::vector<ResourceStatus>& statuses);

/// A JSON array of {"id", "hostname", "state", "holder"}; "holder" is HolderInfo::to_json() for
/// busy resources and null otherwise. Attributes are left out: they may hold credentials.
Json status_json(const std::vector<ResourceStatus>& statuses);

}  // namespace lockable::cli
