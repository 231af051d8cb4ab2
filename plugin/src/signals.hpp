#pragma once

namespace lockable::gtest::detail {

/// From now on, SIGINT and SIGTERM release every device the plugin holds, print
/// `lockable: SIGTERM: released pixel-7-01; no report is written` on stderr, and then end the
/// program by the same signal (default action), so its exit status still says "killed" and no
/// lock file keeps its pid. A signal whose handler the program already set (or that it ignores)
/// is left alone: the program's own handling wins. Idempotent and thread-safe; never throws (a
/// failure to set up only leaves the default behaviour: the kernel frees the locks, the pid
/// stays in the file).
void release_devices_on_signals() noexcept;

/// Stops doing that: restores the default action of the signals handled here. Called as the
/// plugin's runtime goes away at exit.
void stop_releasing_on_signals() noexcept;

}  // namespace lockable::gtest::detail
