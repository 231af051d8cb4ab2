#include "named_lock_command.hpp"

#include "exit_codes.hpp"

#include <lockable/error.hpp>
#include <lockable/lockable.hpp>
#include <lockable/named_lock.hpp>

#include <atomic>
#include <cstdlib>
#include <iostream>

extern char** environ;

namespace lockable::cli {
namespace {

void say(const std::string& line) { std::cerr << "lockable: " << line << std::endl; }

std::chrono::milliseconds seconds_variable(const char* name, double fallback) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') {
    return std::chrono::milliseconds(static_cast<long long>(fallback * 1000));
  }
  const Seconds value = parse_timeout(text, name);
  return std::chrono::duration_cast<std::chrono::milliseconds>(value);
}

}  // namespace

std::chrono::milliseconds stop_grace() { return seconds_variable("LOCKABLE_STOP_GRACE", 10); }

int run_with_named_lock(const CommandLine& line, const std::string& name,
                        const std::string& timeout_text, const std::string& timeout_source,
                        SignalRelay& relay) {
  const auto launch = resolve_command(line.command, !line.no_shell);
  if (const auto* error = std::get_if<LaunchError>(&launch)) {
    std::cerr << error->message << std::endl;
    return error->exit_code;
  }
  const auto grace = stop_grace();
  const bool quiet = line.quiet;
  LockServiceOptions service;  // URL and token from LOCKABLE_SERVICE_URL, LOCKABLE_AUTH_TOKEN
  if (const char* lease = std::getenv("LOCKABLE_SERVICE_LEASE"); lease && *lease) {
    service.lease = seconds_variable("LOCKABLE_SERVICE_LEASE", 60);
  }
  if (!quiet) service.log = [](const std::string& message) { say(message); };
  auto store = make_lock_service_store(service);

  NamedLockOptions options;
  options.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(
      timeout_text.empty() ? Options{}.default_timeout
                           : parse_timeout(timeout_text, timeout_source));
  std::atomic<bool> lost{false};
  options.on_lock_loss = [&lost, &relay, grace](const std::string& reason) {
    lost = true;
    say(reason + "; stopping the command");
    relay.stop_command(grace);
  };
  options.on_heartbeat_exception = [quiet](std::exception_ptr error) {
    if (quiet) return;
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& failure) {
      say(std::string("warning: a heartbeat failed; trying again while the lease lasts: ") +
          failure.what());
    }
  };
  const auto started = std::chrono::steady_clock::now();
  NamedLock lock(store, name, options);
  relay.defer_signals();
  if (!quiet) {
    const double waited =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    char text[32];
    std::snprintf(text, sizeof text, "%.1f", waited);
    say("locked \"" + name + "\" on " + store->describe() + " after " + text + " s");
  }
  const auto environment = child_environment(environ, {});
  auto result = relay.run(std::get<Launch>(launch), environment);
  lock.release();
  if (lost) {
    say("the lock \"" + name + "\" was lost while the command ran; exit status " +
        std::to_string(kLockLost));
    return kLockLost;
  }
  if (!quiet) say("released \"" + name + "\"");
  if (const auto* error = std::get_if<LaunchError>(&result)) {
    std::cerr << error->message << std::endl;
    return error->exit_code;
  }
  return std::get<int>(result);
}

}  // namespace lockable::cli
