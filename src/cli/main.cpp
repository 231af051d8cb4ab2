// `lockable`: locks a device, runs a command with the device in its environment, unlocks.
// Kept thin: options -> lockable::Options -> the library -> the child process.

#include "child_process.hpp"
#include "command_line.hpp"
#include "exit_codes.hpp"
#include "named_lock_command.hpp"
#include "report_command.hpp"
#include "reserve_command.hpp"
#include "status_report.hpp"

#include "lock_folder/held_files.hpp"

#include <lockable/environment.hpp>
#include <lockable/lock_folder.hpp>
#include <lockable/lockable.hpp>
#include <lockable/settings.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>

extern char** environ;

namespace lockable::cli {
namespace {

void say(const std::string& line) { std::cerr << "lockable: " << line << std::endl; }

// Why `path` cannot be read, with the fix for that reason.
std::string unreadable_reason(const std::string& path, int error) {
  std::string text = std::strerror(error);
  if (error == ENOENT || error == ENOTDIR) {
    return text +
           "; check the path, or give the file with --resources FILE or LOCKABLE_RESOURCES "
           "(default: resources.json in the current directory)";
  }
  if (error == EACCES || error == EPERM) {
    return text + "; make it readable by this user (e.g. chmod a+r '" + path +
           "', and a+x on its folders) or run lockable as a user who may read it";
  }
  return text;
}

// An http(s) resources spec: fetched by the provider, whose errors name the URL (without
// credentials), rather than read here as a file.
bool is_url(const std::string& spec) {
  std::string head = spec.substr(0, 8);
  for (auto& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return head.rfind("http://", 0) == 0 || head.rfind("https://", 0) == 0;
}

// Opened here rather than only in the provider so that the messages can name our flag. Opened
// non-blocking and checked to be a regular file: a FIFO or a device would block forever.
// Returns the descriptor.
int open_resources_file(const std::string& path) {
  const auto fail = [&](const std::string& why) { throw ResourcesError(path, {{path, why}}); };
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) fail("cannot read the resources file: " + unreadable_reason(path, errno));
  struct stat info {};
  if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    const bool directory = S_ISDIR(info.st_mode);
    ::close(fd);
    fail(directory ? "is a directory; give the resources.json file inside it with --resources"
                   : "is not a regular file (a FIFO, socket or device would never end); give "
                     "a resources.json file with --resources");
  }
  return fd;
}

std::string read_resources_file(const std::string& path) {
  const int fd = open_resources_file(path);
  std::string text;
  char buffer[65536];
  for (;;) {
    const auto count = ::read(fd, buffer, sizeof buffer);
    if (count < 0 && errno == EINTR) continue;
    if (count < 0) {
      const int error = errno;
      ::close(fd);
      throw ResourcesError(
          path, {{path, "cannot read the resources file: " + unreadable_reason(path, error)}});
    }
    if (count == 0) break;
    text.append(buffer, static_cast<std::size_t>(count));
  }
  ::close(fd);
  return text;
}

// Once per resource: the attributes its command will not see, and why.
void warn_withheld(const std::string& prefix, const Resource& resource) {
  const auto withheld = withheld_attributes(resource);
  if (withheld.empty()) return;
  std::string text;
  for (const auto& attribute : withheld) {
    text += (text.empty() ? "" : "; ") +
            Json(attribute.key).dump(-1, ' ', false, Json::error_handler_t::replace) + " (" +
            attribute.reason + ")";
  }
  say(prefix + resource.id + ": attributes not exported to the command: " + text);
}

// The settings the user gave, each from its flag, else its LOCKABLE_* variable.
struct Settings {
  std::string resources = "resources.json";
  std::optional<Setting> lock_folder;
  std::optional<Setting> lock_backend;
  std::optional<Setting> timeout;
  std::optional<Setting> hostname;
  std::optional<Setting> requirements;
  std::optional<Setting> metrics_file;
  std::optional<Setting> priority;
};

Settings resolve_settings(const CommandLine& line) {
  const EnvironmentSettings env = environment_settings();
  const auto pick = [](const std::optional<std::string>& flag, const char* name,
                       const std::optional<Setting>& variable) -> std::optional<Setting> {
    if (flag) return Setting{*flag, name};
    return variable;
  };
  Settings settings;
  if (auto s = pick(line.resources, "--resources", env.resources)) settings.resources = s->value;
  settings.lock_folder = pick(line.lock_folder, "--lock-folder", env.lock_folder);
  settings.lock_backend = pick(line.lock_backend, "--lock-backend", env.lock_backend);
  settings.timeout = pick(line.timeout, "--timeout", env.timeout);
  settings.hostname = pick(line.hostname, "--hostname", env.hostname);
  settings.requirements = pick(line.requirements, "--requirements", env.requirements);
  settings.metrics_file = pick(line.metrics_file, "--metrics-file", env.metrics_file);
  settings.priority = pick(line.priority, "--priority", env.priority);
  return settings;
}

// Names the variable when the requirements came from one: a flag the user sees, a variable not.
Requirements parse_requirements(const std::optional<Setting>& setting) {
  if (!setting) return Requirements::parse("");
  try {
    return Requirements::parse(setting->value);
  } catch (const RequirementsError& error) {
    if (setting->source.rfind("--", 0) == 0) throw;
    throw RequirementsError(setting->source + ": " + error.what());
  }
}

int validate_only(const std::string& resources_path) {
  // One rule: any problem with the file, unreadable or invalid, exits 1 (as the Python CLI).
  try {
    std::string shown = resources_path;
    Resources resources;
    if (is_url(resources_path)) {
      auto provider = make_resource_provider(resources_path);
      shown = provider->describe();  // without credentials
      resources = provider->load();
    } else {
      resources = parse_resources_text(read_resources_file(resources_path), resources_path);
    }
    for (const auto& resource : resources) {
      warn_withheld("warning: " + shown + ": ", resource);
    }
    std::cout << shown << ": " << resources.size()
              << (resources.size() == 1 ? " resource" : " resources") << ", valid" << std::endl;
    return kOk;
  } catch (const ResourcesError& error) {
    say(error.what());
    return kValidationFailed;
  }
}

// `lockable ctest-spec`: the CTest resource spec of the resources file.
int ctest_spec(const CommandLine& line) {
  const Settings settings = resolve_settings(line);
  const Resources resources =
      parse_resources_text(read_resources_file(settings.resources), settings.resources);
  CtestSpecOptions options;
  options.by = line.ctest_by;
  options.type_name = line.ctest_type;
  options.include_offline = line.include_offline;
  if (!line.all_hosts) {
    options.hostname = settings.hostname ? settings.hostname->value : this_hostname();
  }
  const std::string text = ctest_resource_spec(resources, options).dump(2) + "\n";
  if (!line.output) {
    std::cout << text << std::flush;
    return kOk;
  }
  std::ofstream out(*line.output, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) {
    throw ConfigError("-o " + *line.output + ": cannot write it (" + std::strerror(errno) +
                      "); give a path in a writable folder");
  }
  return kOk;
}

// `lockable status [--json] [--watch [SECONDS] [--count N]]`.
int status(const CommandLine& line, const std::string& resources, Options options,
           SignalRelay& relay) {
  std::optional<std::chrono::milliseconds> every;
  long long count = 0;  // 0: until interrupted
  if (line.watch) {
    const Seconds seconds = parse_timeout(*line.watch, "--watch");
    if (!(seconds.count() >= 0.1)) {
      throw ConfigError("--watch: must be at least 0.1 seconds, found \"" + *line.watch +
                        "\"; give the refresh period in seconds, e.g. --watch 2");
    }
    every = std::chrono::duration_cast<std::chrono::milliseconds>(seconds);
  }
  if (line.count) {
    char* end = nullptr;
    count = std::strtoll(line.count->c_str(), &end, 10);
    if (end != line.count->c_str() + line.count->size() || count < 1) {
      throw ConfigError("--count: must be a whole number of snapshots, 1 or more, found \"" +
                        *line.count + "\"; e.g. --count 3");
    }
  }
  // A read-only observer: status works in a folder this account may not write, and changes
  // nothing on disk (no folder, lock file or queue ticket is created).
  auto provider = make_resource_provider(resources);
  auto observer = make_lock_observer(options.lock_backend.empty() ? options.lock_folder.string()
                                                                  : options.lock_backend);
  LockBackend& store = *observer;
  const auto aging =
      std::chrono::duration_cast<std::chrono::system_clock::duration>(options.priority_aging);
  Lockable lockable(std::move(options), std::move(provider), std::move(observer));
  const bool terminal = ::isatty(STDOUT_FILENO) == 1;
  // While watching, Ctrl-C ends the loop (exit 0) instead of killing lockable mid-line.
  if (every) relay.cancel_with([] {});
  struct StopCancelling {
    SignalRelay& relay;
    ~StopCancelling() { relay.cancel_with(nullptr); }
  } stop_cancelling{relay};
  for (long long shown = 0;; ++shown) {
    const auto statuses = lockable.status();
    std::vector<std::string> ids;
    for (const auto& status : statuses) ids.push_back(status.resource.id);
    std::vector<std::optional<Reservation>> reservations;
    std::string reservations_unknown;
    try {
      reservations = store.reservations_of(ids);
    } catch (const std::exception& error) {
      reservations_unknown = error.what();
    }
    auto report = make_status_report(statuses, reservations, store.queued(), lockable.hostname(),
                                     store.describe(), std::chrono::system_clock::now(), aging);
    report.reservations_unknown = reservations_unknown;
    report.problems = store.problems();
    std::string text =
        line.json ? status_json(report).dump(2, ' ', false, Json::error_handler_t::replace) + "\n"
                  : status_text(report);
    if (every && terminal) {
      text = "\033[H\033[2J" + text;  // home and clear: the snapshot replaces the last one
    } else if (shown > 0) {
      text = "\n" + text;  // successive snapshots, a blank line apart
    }
    std::cout << text << std::flush;
    if (!every || (count > 0 && shown + 1 >= count)) break;
    if (relay.sleep_unless_interrupted(*every)) break;
  }
  const int interrupted = relay.interrupted_exit_code();
  return interrupted == 128 + SIGINT ? kOk : interrupted;
}

int run(const CommandLine& line, SignalRelay& relay) {
  if (line.ctest_spec || line.lock_name || line.validate_only) relay.start_thread();
  if (line.ctest_spec) return ctest_spec(line);
  // Every option is checked before anything touches the disk (the lock folder is created by
  // the Lockable), so a bad one changes nothing.
  const Settings settings = resolve_settings(line);
  Options options;
  if (settings.hostname) options.hostname = settings.hostname->value;
  options.resources = std::filesystem::path(settings.resources);
  if (settings.lock_folder) options.lock_folder = settings.lock_folder->value;
  if (settings.lock_backend) options.lock_backend = settings.lock_backend->value;
  if (settings.timeout) {
    options.default_timeout = parse_timeout(settings.timeout->value, settings.timeout->source);
  }
  if (settings.priority) {
    options.priority = parse_priority(settings.priority->value, settings.priority->source);
  }
  if (settings.metrics_file) {
    options.metrics_file = settings.metrics_file->value;
    // The command names the allocation in `lockable report`'s timeline.
    for (const auto& word : line.command) {
      options.metrics_label += (options.metrics_label.empty() ? "" : " ") + word;
    }
  }
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
  if (line.lock_name) {
    return run_with_named_lock(line, *line.lock_name,
                               settings.timeout ? settings.timeout->value : "",
                               settings.timeout ? settings.timeout->source : "", relay);
  }
  if (line.validate_only) return validate_only(settings.resources);
  const std::string lock_spec =
      options.lock_backend.empty() ? options.lock_folder.string() : options.lock_backend;
  // Locking a local folder from a local file either succeeds at once or waits in the queue: the
  // relay thread is started when it queues (below). Anything else may take long from the start.
  const bool local_lock = line.admin.empty() && !line.status && options.lock_backend.empty() &&
                          !is_url(settings.resources);
  if (!local_lock) relay.start_thread();
  if (!line.admin.empty()) {
    return run_admin_command(
        line, AdminSettings{lock_spec, settings.resources, options.metrics_file.string()});
  }
  // The provider would also fail on an unreadable file, but only we can name the flag. Not read
  // here: the provider reads it, and an inventory of 100,000 devices is 20 MB.
  if (!is_url(settings.resources)) ::close(open_resources_file(settings.resources));

  if (line.status) return status(line, settings.resources, std::move(options), relay);

  const Requirements requirements = parse_requirements(settings.requirements);
  const auto launch = resolve_command(line.command, !line.no_shell);
  if (const auto* error = std::get_if<LaunchError>(&launch)) {
    std::cerr << error->message << std::endl;
    return error->exit_code;
  }

  // A reservation whose holder process ended (a reboot) gets it back before we lock.
  restart_reservation_holders(lock_spec);
  // The wait for the command below checks the held lock file (folder_backend::HeldFileWatch), so
  // a run as short as `true` never starts the lock folder's checker thread.
  folder_backend::check_held_files_on_callers_thread();
  Lockable lockable(std::move(options));
  lockable.add_observer([&relay](const AllocationEvent& event) {
    if (event.kind == AllocationEvent::Kind::kQueued) relay.start_thread();
  });
  // SIGINT/SIGTERM while waiting cancel the wait; the unwinding leaves the queue.
  relay.cancel_with([&lockable] { lockable.cancel(); });
  struct StopCancelling {
    SignalRelay& relay;
    ~StopCancelling() { relay.cancel_with(nullptr); }
  } stop_cancelling{relay};
  Allocation allocation;
  try {
    allocation = lockable.lock(requirements);
  } catch (const CancelledError&) {
    return relay.interrupted_exit_code();
  }
  relay.defer_signals();
  // A lease backend may lose the device while the command runs: stop the command.
  const auto grace = stop_grace();
  std::atomic<bool> lost{false};
  allocation.on_lock_loss([&lost, &relay, grace](const std::string& reason) {
    lost = true;
    say(reason + "; stopping the command");
    relay.stop_command(grace);
  });
  if (!quiet) {
    say("locked " + allocation.resource_id() + " (alloc " + allocation.alloc_id() + ") after " +
        format_seconds(allocation.queue_time()) + " s");
  }
  // Test hook: a window between the lock and the command's start, for the signal tests.
  if (const char* pause = std::getenv("LOCKABLE_TEST_PAUSE_BEFORE_COMMAND_MS")) {
    relay.sleep_unless_interrupted(std::chrono::milliseconds(std::atol(pause)));
  }
  warn_withheld("", allocation.resource());
  const auto environment = child_environment(environ, environment_for(allocation));
  std::variant<int, LaunchError> result = 0;
  if (auto too_large =
          check_exec_size(std::get<Launch>(launch), environment, allocation.resource_id())) {
    result = std::move(*too_large);
  } else {
    result = relay.run(std::get<Launch>(launch), environment,
                       {folder_backend::kHeldFileCheckInterval, [] {
                          try {
                            folder_backend::check_held_files_now();
                          } catch (const std::exception&) {
                            // Out of memory for the reason's text: the next check tells.
                          }
                        }});
  }
  allocation.unlock();
  if (lost) {
    say(allocation.resource_id() + " was lost while the command ran; exit status " +
        std::to_string(kLockLost));
    return kLockLost;
  }
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
  if (argc > 1 && std::string(argv[1]) == kReservationHolderWord) {
    return run_reservation_holder(argc, argv);
  }
  const ParseResult parsed = parse_command_line(argc, argv);
  if (!parsed.line) {
    std::cout << parsed.out << std::flush;
    std::cerr << parsed.err << std::flush;
    return parsed.exit_code;
  }
  if (parsed.line->report) return run_report(*parsed.line);
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
