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

/// Why an attribute may not set the variable `name`, or "" when it may. Refused: variables that
/// decide what a command runs or loads, or that it needs from its session: PATH, HOME, SHELL,
/// USER, LOGNAME, PWD, TMPDIR, IFS, ENV, BASH_ENV, CDPATH, PS4, GLOBIGNORE, SHELLOPTS, BASHOPTS,
/// GCONV_PATH, LOCPATH, NLSPATH, HOSTALIASES, GLIBC_TUNABLES, CLASSPATH, NODE_OPTIONS,
/// NODE_PATH, JAVA_TOOL_OPTIONS, RUBYLIB, RUBYOPT, and every name starting with LD_, DYLD_,
/// MALLOC_, PYTHON, PERL5, PERLLIB, BASH_FUNC_ or LOCKABLE_ (the last configure lockable and
/// the GoogleTest plugin in the command). Case matters: `name` is an exported name
/// (`environment_name`).
std::string protected_variable_reason(const std::string& name);

/// An attribute `environment_for` leaves out, and why.
struct WithheldAttribute {
  std::string key;     ///< the attribute's key as written in the resources
  std::string name;    ///< the variable it would set ("" for an empty key)
  std::string reason;  ///< for messages, e.g. "PATH decides which programs the command runs"
};

/// The variables a child process run on `resource` should see, for the CLI and for test
/// launchers: one per top-level attribute (name from `environment_name`; string values as they
/// are, any other value as compact JSON, e.g. `true`, `14`, `{"hub":1,"port":2}`; a string
/// holding a NUL byte, which an environment cannot carry, also as JSON), then
/// `LOCKABLE_RESOURCE_ID` (the id), `LOCKABLE_ALLOC_ID` (`alloc_id`) and `LOCKABLE_RESOURCE`
/// (all attributes as compact JSON). Names are unique: when two keys map to one name, the key
/// that sorts first wins. An attribute whose name `protected_variable_reason` refuses is left
/// out, so the caller's PATH, HOME, LD_PRELOAD, ... stay the process's own. Every attribute left
/// out is listed by `withheld_attributes`. Sorted by name. Never reads or changes the process
/// environment.
std::vector<EnvironmentVariable> environment_for(const Resource& resource,
                                                 const std::string& alloc_id);

/// The attributes of `resource` that `environment_for` leaves out (an empty key, a protected
/// name, a name already taken by a key that sorts first), in key order.
std::vector<WithheldAttribute> withheld_attributes(const Resource& resource);

/// `environment_for(allocation.resource(), allocation.alloc_id())`, plus
/// `LOCKABLE_FENCING_TOKEN` (decimal) when the backend issued a fencing token (etcd).
std::vector<EnvironmentVariable> environment_for(const Allocation& allocation);

}  // namespace lockable
