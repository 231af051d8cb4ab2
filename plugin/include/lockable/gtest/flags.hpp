#pragma once

#include <lockable/lockable.hpp>

#include <filesystem>
#include <functional>
#include <optional>
#include <string>

namespace lockable::gtest {

/// What a suite (or the global environment) does when no device can be had: no resource matches,
/// or every match stayed busy until the timeout. Configuration errors (bad resources file, bad
/// requirements) always fail, whatever this says.
enum class OnUnavailable {
  /// The suite fails with the reason; its tests do not run. The program exits non-zero.
  kFail,
  /// The suite's tests are reported skipped with the reason. The program may exit 0.
  kSkip,
};

/// "fail" or "skip".
const char* to_string(OnUnavailable value) noexcept;

/// The plugin's configuration. Each field comes from a `--lockable_<field>` flag, else from the
/// `LOCKABLE_<FIELD>` environment variable, else from the default below.
struct Config {
  /// resources.json to read; relative paths are relative to the working directory.
  std::filesystem::path resources = "resources.json";
  /// Requirements of the one device the global environment locks for the whole program. Empty:
  /// no global device (suites deriving from LockableTest still lock their own).
  std::string requirements;
  /// How long a lock waits for a busy device; unset means the library's default
  /// (`Options::default_timeout`).
  std::optional<Seconds> timeout;
  /// Where lock files live; empty means the system temp dir (as the Python package).
  std::filesystem::path lock_folder;
  /// Where locks live as a spec (see lockable::make_lock_backend); empty means `lock_folder`.
  std::string lock_backend;
  /// This host's name for the implicit `hostname` filter; empty means `gethostname()`.
  std::string hostname;
  OnUnavailable on_unavailable = OnUnavailable::kFail;
  /// Where to append one JSON line per finished allocation (Options::metrics_file); empty: none.
  std::filesystem::path metrics_file;
  /// The priority of this program's requests (Options::priority, -1000..1000; higher is served
  /// first); `--lockable_priority`, `LOCKABLE_PRIORITY`.
  int priority = 0;
};

/// Looks up an environment variable; nullopt when it is unset.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;

/// The process environment (`std::getenv`).
std::optional<std::string> process_environment(const std::string& name);

/// The configuration from `LOCKABLE_*` environment variables and defaults only. Throws
/// ConfigError naming the variable for a bad value (e.g. `LOCKABLE_TIMEOUT=abc`).
Config config_from_environment(const EnvLookup& env = process_environment);

/// Parses and removes every `--lockable_<name>=value` and `--lockable_<name> value` argument from
/// argv (argv[0] and other arguments keep their order; `*argc` shrinks), falling back to the
/// environment, then to the defaults. Arguments after a lone `--` are left alone. Throws
/// ConfigError naming the flag for an unknown `--lockable_*` flag, a missing value, or a bad value;
/// argv is unchanged then. Requirements are validated here, so a typo fails before any test runs.
Config parse_flags(int* argc, char** argv, const EnvLookup& env = process_environment);

/// The library options for `config`. Progress lines of a waiting lock go to stdout, prefixed
/// with `[ LOCKABLE ]`, so they interleave with GoogleTest's own output.
Options to_options(const Config& config);

/// The help text for the `--lockable_*` flags and their environment variables.
std::string flags_help();

}  // namespace lockable::gtest
