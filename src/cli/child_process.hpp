#pragma once

#include <lockable/environment.hpp>

#include <signal.h>
#include <sys/types.h>

#include <condition_variable>
#include <mutex>
#include <string>
#include <variant>
#include <vector>

namespace lockable::cli {

/// A command ready to start: the executable found and the argv to give it.
struct Launch {
  std::string path;
  std::vector<std::string> argv;
};

/// Why a command cannot start, as a shell would say it (`lockable: foo: command not found`).
struct LaunchError {
  int exit_code = 0;  ///< 126 or 127
  std::string message;
};

/// Finds the executable like a shell: a name with a `/` is used as is, others are searched in
/// PATH. One word holding shell syntax (`'adb -s $SERIAL shell'`) that names no executable runs
/// as `/bin/sh -c WORD`, because the Python CLI ran every command through a shell. Done before
/// locking so that a typo does not wait for a device.
std::variant<Launch, LaunchError> resolve_command(const std::vector<std::string>& command);

/// `environ` with `overrides` replacing variables of the same name, as `NAME=value` strings.
std::vector<std::string> child_environment(const char* const* environ_entries,
                                           const std::vector<EnvironmentVariable>& overrides);

/// Owns lockable's handling of SIGINT, SIGTERM, SIGHUP and SIGQUIT. Construct it first thing in
/// main, before any thread starts: it blocks those signals in every thread and receives them on
/// its own thread, so that no library thread can be killed by one while a device is held.
///   - Before `defer_signals()` (waiting for a device, status, validation) a signal ends lockable
///     at once with 128+signal; no device is held, and the kernel drops any flock anyway.
///   - After it and before the command starts, the signal is remembered and `run` does not
///     start the command.
///   - While the command runs, the signal is passed on to it, except one the terminal sent to
///     the whole foreground process group (Ctrl-C), which the command already received.
/// One per process; never destroyed (its thread lives until exit).
class SignalRelay {
 public:
  SignalRelay();
  SignalRelay(const SignalRelay&) = delete;
  SignalRelay& operator=(const SignalRelay&) = delete;

  /// Call once a device is held: from now on signals never end lockable before it releases.
  void defer_signals();

  /// Starts `launch` with `environment` and the signal mask lockable started with, waits for
  /// it, and returns its exit status as a shell reports it (128+N when killed by signal N).
  /// Returns a LaunchError when it cannot start, and 128+N without starting it when signal N
  /// arrived after `defer_signals()`.
  std::variant<int, LaunchError> run(const Launch& launch,
                                     const std::vector<std::string>& environment);

 private:
  void relay_loop();

  sigset_t relayed_{};
  sigset_t original_mask_{};
  std::mutex mutex_;
  pid_t child_ = 0;
  bool deferring_ = false;
  int pending_signal_ = 0;
};

}  // namespace lockable::cli
