#pragma once

// CTest resource allocation (ctest --resource-spec-file): the spec file written from the
// resources, and the device CTest assigned to a test process, mapped back to a resource.

#include <lockable/requirements.hpp>
#include <lockable/resource.hpp>
#include <lockable/settings.hpp>

#include <string>
#include <vector>

namespace lockable {

/// A resource id as CTest accepts it in a spec file (`[a-z0-9_]`): lower case, every other
/// character `_` ("pixel-7-01" -> "pixel_7_01").
std::string ctest_id(const std::string& resource_id);

/// What goes into the spec.
struct CtestSpecOptions {
  /// Group devices by this attribute (dotted path): each value becomes one CTest resource type
  /// (lower case, `[a-z_][a-z0-9_]*`). Empty: every device is of type `type_name`.
  std::string by;
  /// The type of every device when `by` is empty, and of devices without the attribute.
  std::string type_name = "devices";
  /// Only devices of this host (empty: every host).
  std::string hostname;
  /// Offline devices too.
  bool include_offline = false;
};

/// The CTest resource spec file (version 1.0) for `resources`: one entry per device, 1 slot
/// each. Throws ConfigError when two devices map to one CTest id or the `by` value gives no
/// usable type name (naming both devices / the device), or when no device is left.
Json ctest_resource_spec(const Resources& resources, const CtestSpecOptions& options);

/// The CTest ids assigned to this process, one per resource group, in group order, from
/// `CTEST_RESOURCE_GROUP_COUNT`, `CTEST_RESOURCE_GROUP_<n>` and
/// `CTEST_RESOURCE_GROUP_<n>_<TYPE>` ("id:pixel_7_01,slots:1"). Empty when CTest allocates no
/// resources (the variables are unset or the count is 0). Throws ConfigError naming the variable
/// when they are malformed.
std::vector<std::string> ctest_assigned_ids(const EnvLookup& env = getenv_lookup);

/// `requirements` with requirement i also demanding the device CTest assigned as group i (an
/// `"id"` key added, or an `{"id": ...}` clause in `$and` where it names one already), so the lock
/// still goes through the backend (processes outside this ctest run are respected) but takes
/// exactly that device. Throws ConfigError when fewer groups than requirements were assigned, or
/// when an assigned id names no resource (regenerate the spec with `lockable ctest-spec`).
std::vector<Requirements> restrict_to_ctest_assignment(
    const std::vector<Requirements>& requirements, const std::vector<std::string>& assigned,
    const Resources& resources);

}  // namespace lockable
