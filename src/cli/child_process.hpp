#pragma once

#include <lockable/environment.hpp>

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace lockable::cli {

/// A command ready to start: the executable found and the argv to give it.
struct Launch {
  std::string path;
  std::vector<std::string> argv;
  /// Started as `/bin/sh -c` (dash) would start it, without the shell in between: the
  /// environment as the shell exports it (shell_exported_environment) and no signal blocked
  /// (the shell clears its mask). Set for plain words in the shell form; see resolve_command.
  bool as_the_shell_would = false;
};

/// Why a command cannot start, as a shell would say it (`lockable: foo: command not found`).
struct LaunchError {
  int exit_code = 0;  ///< 126 or 127
  std::string message;
};

/// What `command` runs. With `shell` (the default, as the Python CLI): `/bin/sh -c` with the
/// words joined by single spaces. Without: the first word is found like a shell finds it (a
/// name with a `/` as is, others in PATH) and gets the words as its argv. Either way a first
/// word that names no program, shell builtin or keyword is reported (127) now, before locking,
/// so that a typo does not wait for a device.
/// With `shell`, words the shell would pass on untouched (no quoting, expansion, redirection,
/// separator or assignment in any word) naming a program that is no shell builtin or keyword,
/// found in a set PATH, and a binary or `#!` script, are exec'd directly with
/// `as_the_shell_would`: the same program, argv, environment and signal mask as through the
/// shell, without starting a shell first (a shell costs a fork and an exec of its own).
std::variant<Launch, LaunchError> resolve_command(const std::vector<std::string>& command,
                                                  bool shell);

/// Why `launch` with `environment` cannot be exec'd (Linux: one string over 128 KiB, or all of
/// them over ARG_MAX with a margin for what a shell adds), naming the largest variables; nullopt
/// when it fits. `resource_id` names the device in the message.
std::optional<LaunchError> check_exec_size(const Launch& launch,
                                           const std::vector<std::string>& environment,
                                           const std::string& resource_id);

/// `environment` as `/bin/sh` (dash) exports it to the commands it starts: entries whose name is
/// not a shell variable name (`[A-Za-z_][A-Za-z0-9_]*`) dropped, the last of a repeated name
/// kept, and PWD set to `pwd`.
std::vector<std::string> shell_exported_environment(const std::vector<std::string>& environment,
                                                    const std::string& pwd);

/// `environ` with `overrides` replacing variables of the same name, as `NAME=value` strings.
std::vector<std::string> child_environment(const char* const* environ_entries,
                                           const std::vector<EnvironmentVariable>& overrides);

/// Something to run every `interval` while a thread waits (SignalRelay::run).
struct PeriodicCall {
  std::chrono::milliseconds interval{0};
  std::function<void()> call;
};

/// Owns lockable's handling of SIGINT, SIGTERM, SIGHUP and SIGQUIT. Construct it first thing in
/// main, before any thread starts: it blocks those signals in every thread and receives them on
/// its own thread, so that no library thread can be killed by one while a device is held.
///   - Before `defer_signals()` (waiting for a device, status, validation) a signal ends lockable
///     at once with 128+signal; no device is held, and the kernel drops any flock anyway.
///   - After it and before the command starts, the signal is remembered and `run` does not
///     start the command.
///   - While the command runs, the signal is passed on to it exactly once. When lockable runs
///     in the foreground of a terminal, the command shares its process group (so that it can
///     read the terminal and Ctrl-Z works), and a signal the terminal sent to that group
///     (Ctrl-C) is not passed on: the command has it already. Otherwise the command gets its own
///     process group, so that a signal sent to lockable's whole group (`kill -TERM -PGID`,
///     `kill %1`) reaches it once, through lockable.
///   - If lockable dies, however (SIGKILL), the command, its process group and every process it
///     started that is still running are killed before the device can be locked again (lock
///     folder: the lock is held until they are dead; lease backends: long before the lease
///     expires). Exceptions: processes of another account (a setuid program's children), and
///     anything handed to a process outside the command's tree (a service manager, `at`).
/// The relay thread starts with `start_thread()`, before anything that may take long; until
/// then a signal stays pending and is taken by `defer_signals()` and `run` (a lock that needs no
/// wait then costs no thread: cli_bench). One per process; never destroyed (its thread, once
/// started, lives until exit).
class SignalRelay {
 public:
  SignalRelay();
  SignalRelay(const SignalRelay&) = delete;
  SignalRelay& operator=(const SignalRelay&) = delete;

  /// Starts the relay thread unless it runs already. Call it before anything that may block or
  /// take long (a wait for a device, network, a sleep); safe from any thread. A signal that came
  /// before is handled at once, as if the thread had been there.
  void start_thread();

  /// While set, a signal that arrives before `defer_signals()` cancels the wait for a device
  /// instead of ending lockable at once: `cancel` runs on the relay thread (quick, non-blocking:
  /// Lockable::cancel) and the signal is remembered for `interrupted_exit_code()`. Clear it
  /// (pass nullptr) before what it refers to goes away.
  void cancel_with(std::function<void()> cancel);

  /// 128+N when signal N interrupted lockable before the command started, else 0.
  int interrupted_exit_code();

  /// Sleeps for `duration` unless a signal arrives first; true when one did.
  bool sleep_unless_interrupted(std::chrono::milliseconds duration);

  /// Call once a device is held: from now on signals never end lockable before it releases.
  void defer_signals();

  /// Starts `launch` with `environment` and the signal mask lockable started with, waits for
  /// it, and returns its exit status as a shell reports it (128+N when killed by signal N).
  /// Returns a LaunchError when it cannot start, and 128+N without starting it when signal N
  /// arrived after `defer_signals()`. While it waits, `every_interval.call` (when set) runs on
  /// this thread once per `every_interval.interval`.
  std::variant<int, LaunchError> run(const Launch& launch,
                                     const std::vector<std::string>& environment,
                                     const PeriodicCall& every_interval = {});

  /// The lock the command runs under is gone: SIGTERM to the command (its process group when it
  /// has its own), then, if it still runs after `grace`, SIGKILL to its group and to every
  /// process it started that is still running. Before the command starts, it
  /// keeps `run` from starting it. Safe from any thread (a lock's loss handler); returns at once.
  void stop_command(std::chrono::milliseconds grace);

 private:
  void relay_loop();
  // Caller holds mutex_: what a relayed signal does in the current state (see the class
  // comment). `code` is its si_code.
  void handle_locked(int signal, int code);
  // Handles every signal that is pending and not yet taken by the relay thread.
  void take_pending_signals();
  // Caller holds mutex_: `signal` to the running command, as the relay sends it.
  void signal_command(int signal);

  sigset_t relayed_{};
  sigset_t original_mask_{};
  /// Non-blocking signalfd of the relayed signals, -1 when none could be made (the thread then
  /// starts at once).
  int pending_fd_ = -1;
  std::mutex mutex_;
  bool thread_started_ = false;
  /// The running command's keeper (see child_process.cpp), 0 when none; cleared before the
  /// keeper is reaped, so that a kill() never reaches a reused pid.
  pid_t child_ = 0;
  /// The write end of the pipe whose EOF tells the keeper that lockable is gone; closing it
  /// early makes the keeper kill the command and everything it started. -1 when none.
  int keeper_gone_fd_ = -1;
  /// Whether the command shares lockable's process group (see the class comment).
  bool child_in_our_group_ = false;
  bool deferring_ = false;
  int pending_signal_ = 0;
  std::function<void()> cancel_;
  std::condition_variable interrupted_;
};

}  // namespace lockable::cli
