// `lockable`: locks a device, runs a command with the device in its environment, unlocks.
// Kept thin: options -> lockable::Options -> the library -> the child process.

#include "child_process.hpp"
#include "command_line.hpp"
#include "exit_codes.hpp"
#include "status_report.hpp"

#include <lockable/environment.hpp>
#include <lockable/lock_folder.hpp>
#include <lockable/lockable.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>

extern char** environ;

namespace lockable::cli {
namespace {

void say(const std::string& line) { std::cerr << "lockable: " << line << std::endl; }

std::string format_seconds(std::chrono::duration<double> duration) {
  char text[32];
  std::snprintf(text, sizeof text, duration.count() < 10 ? "%.3f" : "%.1f", duration.count());
  return text;
}

// Read here rather than in the provider so that an unreadable file is told apart from an
// invalid one (--validate-only exits 3 for the first, 1 for the second).
std::string read_resources_file(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    throw ResourcesError(
        path, {{path, std::string("cannot read the resources file: ") + std::strerror(errno) +
                          "; give its path with --resources FILE"}});
  }
  std::ostringstream text;
  text << file.rdbuf();
  return text.str();
}

int validate_only(const CommandLine& line) {
  const std::string text = read_resources_file(line.resources);
  try {
    const Resources resources = parse_resources_text(text, line.resources);
    std::cout << line.resources << ": " << resources.size()
              << (resources.size() == 1 ? " resource" : " resources") << ", valid" << std::endl;
    return kOk;
  } catch (const ResourcesError& error) {
    say(error.what());
    return kValidationFailed;
  }
}

int run(const CommandLine& line, SignalRelay& relay) {
  Options options;
  options.hostname = line.hostname;
  options.resources = std::filesystem::path(line.resources);
  options.lock_folder = line.lock_folder;
  if (line.timeout) options.default_timeout = parse_timeout(*line.timeout, "--timeout");
  const bool quiet = line.quiet;
  options.log = [quiet](const std::string& message) {
    if (quiet) return;
    // The library's lines already carry the prefix; don't double it.
    if (message.rfind("lockable: ", 0) == 0) {
      std::cerr << message << std::endl;
    } else {
      say(message);
    }
  };
  if (line.validate_only) return validate_only(line);
  // The provider would also fail on an unreadable file, but only we can name the flag.
  read_resources_file(line.resources);

  if (line.status) {
    // A read-only observer: status works in a folder this account may not write, and changes
    // nothing on disk (no folder, lock file or queue ticket is created).
    auto provider = make_file_provider(std::get<std::filesystem::path>(options.resources));
    auto observer = make_lock_folder_observer(options.lock_folder);
    Lockable lockable(std::move(options), std::move(provider), std::move(observer));
    const auto statuses = lockable.status();
    if (line.json) {
      std::cout << status_json(statuses, lockable.hostname()).dump(2) << std::endl;
    } else {
      std::cout << status_table(statuses, lockable.hostname()) << std::flush;
    }
    return kOk;
  }

  const Requirements requirements = Requirements::parse(line.requirements);
  const auto launch = resolve_command(line.command);
  if (const auto* error = std::get_if<LaunchError>(&launch)) {
    std::cerr << error->message << std::endl;
    return error->exit_code;
  }

  Lockable lockable(std::move(options));
  Allocation allocation = lockable.lock(requirements);
  relay.defer_signals();
  if (!quiet) {
    say("locked " + allocation.resource_id() + " (alloc " + allocation.alloc_id() + ") after " +
        format_seconds(allocation.queue_time()) + " s");
  }
  const auto result =
      relay.run(std::get<Launch>(launch), child_environment(environ, environment_for(allocation)));
  allocation.unlock();
  if (!quiet) {
    say("released " + allocation.resource_id() + " after " + format_seconds(allocation.duration()) +
        " s");
  }
  if (const auto* error = std::get_if<LaunchError>(&result)) {
    std::cerr << error->message << std::endl;
    return error->exit_code;
  }
  return std::get<int>(result);
}

}  // namespace
}  // namespace lockable::cli

int main(int argc, char** argv) {
  using namespace lockable::cli;
  const ParseResult parsed = parse_command_line(argc, argv);
  if (!parsed.line) {
    std::cout << parsed.out << std::flush;
    std::cerr << parsed.err << std::flush;
    return parsed.exit_code;
  }
  // Before the library starts any thread; reachable through a static, so never a leak.
  static SignalRelay* const relay = new SignalRelay();
  try {
    return run(*parsed.line, *relay);
  } catch (const lockable::ConfigError& error) {
    say(error.what());
    return kUsage;
  } catch (const lockable::ResourcesError& error) {
    say(error.what());
    return kResourcesInvalid;
  } catch (const lockable::RequirementsError& error) {
    say(error.what());
    return kBadRequirements;
  } catch (const lockable::NoMatchError& error) {
    say(error.what());
    return kNoMatch;
  } catch (const lockable::TimeoutError& error) {
    say(error.what());
    return kTimeout;
  } catch (const lockable::BackendError& error) {
    say(error.what());
    return kBackendError;
  } catch (const std::exception& error) {
    say(std::string("internal error: ") + error.what() +
        "; please report it with the command line that caused it");
    return kInternalError;
  }
}
