#pragma once

#include "child_process.hpp"
#include "command_line.hpp"

#include <lockable/allocation.hpp>

#include <chrono>
#include <string>

namespace lockable::cli {

/// How long a command stopped for a lost lock gets between SIGTERM and SIGKILL:
/// LOCKABLE_STOP_GRACE seconds, 10 by default. Throws ConfigError naming the variable.
std::chrono::milliseconds stop_grace();

/// `lockable --lock-name NAME [--timeout S] COMMAND`: holds the named lock on the lock service
/// while COMMAND runs. Returns COMMAND's status, kLockLost when the lock was lost (COMMAND
/// stopped), or throws the library's errors (timeout, service unusable) for main to map.
int run_with_named_lock(const CommandLine& line, const std::string& name,
                        const std::string& timeout_text, const std::string& timeout_source,
                        SignalRelay& relay);

}  // namespace lockable::cli
