#include <lockable/error.hpp>
#include <lockable/lock_folder.hpp>
#include <lockable/lockable.hpp>
#include <lockable/settings.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

namespace lockable {

Seconds parse_timeout(std::string_view text, const std::string& name) {
  const std::string copy(text);
  const auto fail = [&](const std::string& why) -> Seconds {
    throw ConfigError(name + ": " + why + ", found \"" + copy +
                      "\"; give the timeout in seconds, e.g. 30 or 0.5");
  };
  if (copy.empty()) return fail("must be a number of seconds");
  char* end = nullptr;
  errno = 0;
  const double value = std::strtod(copy.c_str(), &end);
  if (end != copy.c_str() + copy.size() || errno == ERANGE) {
    return fail("must be a number of seconds");
  }
  if (!std::isfinite(value)) return fail("must be finite");
  if (value < 0) return fail("must not be negative");
  return Seconds(value);
}

int parse_priority(const std::string& text, const std::string& name) {
  const auto fail = [&](const std::string& why) -> int {
    throw ConfigError(name + ": " + why + ", found \"" + text + "\"; give a whole number from " +
                      std::to_string(kMinPriority) + " to " + std::to_string(kMaxPriority) +
                      " (higher is served first, default 0), e.g. " + name +
                      (name.rfind("--", 0) == 0 ? " 10" : "=10"));
  };
  if (text.empty()) return fail("must be a whole number");
  char* end = nullptr;
  errno = 0;
  const long value = std::strtol(text.c_str(), &end, 10);
  if (end != text.c_str() + text.size() || std::isspace(static_cast<unsigned char>(text[0]))) {
    return fail("must be a whole number");
  }
  if (errno == ERANGE || value < kMinPriority || value > kMaxPriority) {
    return fail("is out of range");
  }
  return static_cast<int>(value);
}

std::optional<std::string> getenv_lookup(const std::string& name) {
  if (const char* value = std::getenv(name.c_str())) return std::string(value);
  return std::nullopt;
}

EnvironmentSettings environment_settings(const EnvLookup& env) {
  EnvironmentSettings settings;
  if (!env) return settings;
  const auto read = [&](const char* name) -> std::optional<Setting> {
    auto value = env(name);
    if (!value || value->empty()) return std::nullopt;
    return Setting{std::move(*value), name};
  };
  settings.resources = read(kResourcesVariable);
  settings.requirements = read(kRequirementsVariable);
  settings.timeout = read(kTimeoutVariable);
  settings.lock_folder = read(kLockFolderVariable);
  settings.lock_backend = read(kLockBackendVariable);
  settings.hostname = read(kHostnameVariable);
  settings.on_unavailable = read(kOnUnavailableVariable);
  settings.metrics_file = read(kMetricsFileVariable);
  settings.priority = read(kPriorityVariable);
  return settings;
}

namespace {

// What Python's tempfile accepts: an existing directory this user can create files in. Python
// proves it by writing a scratch file; access() answers the same question (EROFS included)
// without touching the disk.
bool usable_temp_dir(const std::filesystem::path& dir) {
  struct stat info {};
  return ::stat(dir.c_str(), &info) == 0 && S_ISDIR(info.st_mode) &&
         ::access(dir.c_str(), W_OK | X_OK) == 0;
}

}  // namespace

std::filesystem::path default_lock_folder() {
  // Python's tempfile.gettempdir(), which the Python package and its pytest plugin use: the
  // first usable of TMPDIR, TEMP, TMP, /tmp, /var/tmp, /usr/tmp, the working directory. It never
  // creates a folder, so neither do we: a TMPDIR naming a missing folder is passed over.
  std::vector<std::filesystem::path> candidates;
  for (const char* variable : {"TMPDIR", "TEMP", "TMP"}) {
    const char* value = std::getenv(variable);
    if (value != nullptr && *value != '\0') candidates.emplace_back(value);
  }
  for (const char* dir : {"/tmp", "/var/tmp", "/usr/tmp"}) candidates.emplace_back(dir);
  std::error_code error;
  for (const auto& dir : candidates) {
    if (usable_temp_dir(dir)) {
      auto absolute = std::filesystem::absolute(dir, error);
      return error ? dir : absolute.lexically_normal();
    }
  }
  auto cwd = std::filesystem::current_path(error);
  return error ? std::filesystem::path(".") : cwd;
}

}  // namespace lockable
