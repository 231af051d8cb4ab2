#pragma once

#include <lockable/allocation.hpp>
#include <lockable/resource.hpp>

#include <string>
#include <utility>
#include <vector>

namespace lockable {

/// One environment variable, name then value.
using EnvironmentVariable = std::pair<std::string, std::string>;

/// The name under which an attribute key is exported: upper-cased, every character outside
/// [A-Z0-9_] replaced by `_` (`serial-port` -> `SERIAL_PORT`, `usb.hub` -> `USB_HUB`). Returns
/// "" for an empty key, which is never exported.
std::string environment_name(const std::string& key);

/// The variables a child process run on `resource` should see, for the CLI and for test
/// launchers: one per top-level attribute (name from `environment_name`; string values as they
/// are, any other value as compact JSON, e.g. `true`, `14`, `{"hub":1,"port":2}`; a string
/// holding a NUL byte, which an environment cannot carry, also as JSON), then
/// `LOCKABLE_RESOURCE_ID` (the id), `LOCKABLE_ALLOC_ID` (`alloc_id`) and `LOCKABLE_RESOURCE`
/// (all attributes as compact JSON). Names are unique: when two keys map to one name, the key
/// that sorts first wins, and the three `LOCKABLE_*` variables win over any attribute. Sorted by
/// name. Never reads or changes the process environment.
std::vector<EnvironmentVariable> environment_for(const Resource& resource,
                                                 const std::string& alloc_id);

/// `environment_for(allocation.resource(), allocation.alloc_id())`.
std::vector<EnvironmentVariable> environment_for(const Allocation& allocation);

}  // namespace lockable
