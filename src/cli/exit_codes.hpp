#pragma once

namespace lockable::cli {

/// The exit statuses of `lockable` itself; any other status is the command's own. Documented in
/// `lockable --help`; scripts may rely on them, so never renumber.
enum ExitCode : int {
  kOk = 0,
  kValidationFailed = 1,   ///< --validate-only found problems in the resources file
  kUsage = 2,              ///< bad option, bad option value, missing command
  kResourcesInvalid = 3,   ///< resources file invalid or unreadable
  kBadRequirements = 4,    ///< --requirements malformed
  kNoMatch = 5,            ///< no resource can ever satisfy the requirements
  kTimeout = 6,            ///< all matching resources stayed busy until --timeout
  kBackendError = 7,       ///< lock store unusable (lock folder, lock service)
  kInternalError = 8,      ///< anything unexpected (a bug: please report it)
  kLockLost = 9,           ///< the lock (device or --lock-name) was lost; the command was stopped
  kCannotExecute = 126,    ///< the command exists but cannot be executed
  kCommandNotFound = 127,  ///< the command was not found
};

/// Exit status for a command killed by signal `signal`, as a POSIX shell reports it.
constexpr int exit_code_for_signal(int signal) { return 128 + signal; }

}  // namespace lockable::cli
