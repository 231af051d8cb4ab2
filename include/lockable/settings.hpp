#pragma once

#include <functional>
#include <optional>
#include <string>

namespace lockable {

/// A value as a user gave it, and where it came from (a flag such as "--timeout" or a variable
/// such as "LOCKABLE_TIMEOUT"), so that an error names what the user has to change.
struct Setting {
  std::string value;
  std::string source;
};

/// Looks up an environment variable; nullopt when it is unset.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;

/// The process environment (`std::getenv`).
std::optional<std::string> getenv_lookup(const std::string& name);

/// The `LOCKABLE_*` variables every front end honours. The CLI and the GoogleTest plugin both
/// read them through `environment_settings`, so a CI job that exports them configures both alike
/// (one lock folder, one resources file). Flags of either front end win over them.
constexpr const char* kResourcesVariable = "LOCKABLE_RESOURCES";
constexpr const char* kRequirementsVariable = "LOCKABLE_REQUIREMENTS";
constexpr const char* kTimeoutVariable = "LOCKABLE_TIMEOUT";
constexpr const char* kLockFolderVariable = "LOCKABLE_LOCK_FOLDER";
/// The lock store as a spec (make_lock_backend): a lock folder path, file://, or a remote scheme.
constexpr const char* kLockBackendVariable = "LOCKABLE_LOCK_BACKEND";
constexpr const char* kHostnameVariable = "LOCKABLE_HOSTNAME";
/// The allocation log (Options::metrics_file): one JSON line per finished allocation.
constexpr const char* kMetricsFileVariable = "LOCKABLE_METRICS_FILE";
/// The requests' priority (Options::priority), a whole number from -1000 to 1000.
constexpr const char* kPriorityVariable = "LOCKABLE_PRIORITY";
/// Read by the GoogleTest plugin only (a suite's fail/skip choice).
constexpr const char* kOnUnavailableVariable = "LOCKABLE_ON_UNAVAILABLE";

/// The raw values of the `LOCKABLE_*` variables, `source` set to the variable's name. A variable
/// that is unset or empty leaves its field unset (shells make it easy to export an empty one by
/// accident). Values are not validated here: the caller parses each and names `source` in its
/// error (`parse_timeout(s.value, s.source)`).
struct EnvironmentSettings {
  std::optional<Setting> resources;       ///< LOCKABLE_RESOURCES
  std::optional<Setting> requirements;    ///< LOCKABLE_REQUIREMENTS
  std::optional<Setting> timeout;         ///< LOCKABLE_TIMEOUT
  std::optional<Setting> lock_folder;     ///< LOCKABLE_LOCK_FOLDER
  std::optional<Setting> lock_backend;    ///< LOCKABLE_LOCK_BACKEND
  std::optional<Setting> hostname;        ///< LOCKABLE_HOSTNAME
  std::optional<Setting> on_unavailable;  ///< LOCKABLE_ON_UNAVAILABLE
  std::optional<Setting> metrics_file;    ///< LOCKABLE_METRICS_FILE
  std::optional<Setting> priority;        ///< LOCKABLE_PRIORITY
};

/// Reads the `LOCKABLE_*` variables through `env` (default: the process environment).
EnvironmentSettings environment_settings(const EnvLookup& env = getenv_lookup);

}  // namespace lockable
