// `lockable reserve | drain | unreserve | release --force` and the reservation holder process.
// Thin: the backends keep reservations and take devices back (LockBackend::reserve,
// force_release); this file parses times, names the operator, spawns the holder, signals a
// stuck lock folder holder with --kill, and writes the allocation log line.

#include "reserve_command.hpp"

#include "exit_codes.hpp"

#include <lockable/error.hpp>
#include <lockable/factory.hpp>
#include <lockable/lock_folder.hpp>
#include <lockable/lockable.hpp>
#include <lockable/metrics.hpp>
#include <lockable/named_lock_backend.hpp>

#include "core/allocation_record.hpp"
#include "lock_folder/pid_file.hpp"
#include "lock_folder/reservation_file.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>
#include <thread>

namespace lockable::cli {
namespace {

namespace fs = std::filesystem;
using SystemClock = std::chrono::system_clock;

void say(const std::string& line) { std::cerr << "lockable: " << line << std::endl; }

// user@host, from the account (not $USER: CI jobs run without it).
std::string operator_name() {
  std::string user;
  if (const passwd* entry = ::getpwuid(::geteuid()); entry != nullptr && entry->pw_name) {
    user = entry->pw_name;
  } else {
    user = "uid" + std::to_string(::geteuid());
  }
  return user + "@" + this_hostname();
}

// --until: an ISO 8601 time, or a duration from now (90s, 30m, 2h, 1d).
SystemClock::time_point parse_until(const std::string& text, SystemClock::time_point now) {
  const auto fail = [&](const std::string& why) -> SystemClock::time_point {
    throw ConfigError("--until " + text + ": " + why +
                      "; give an ISO 8601 time (2026-12-02T08:00:00Z) or a duration (90s, 30m, "
                      "2h, 1d)");
  };
  if (const auto seconds = metrics::parse_timestamp(text)) {
    const auto until = SystemClock::time_point(
        std::chrono::duration_cast<SystemClock::duration>(std::chrono::duration<double>(*seconds)));
    if (until <= now) fail("that time has passed");
    return until;
  }
  if (text.size() >= 2) {
    char* end = nullptr;
    const double value = std::strtod(text.c_str(), &end);
    const std::string unit = end != nullptr ? end : "";
    const double scale = unit == "s"   ? 1
                         : unit == "m" ? 60
                         : unit == "h" ? 3600
                         : unit == "d" ? 86400
                                       : 0;
    if (end != text.c_str() && scale > 0 && value > 0 && value * scale < 1e10) {
      return now + std::chrono::duration_cast<SystemClock::duration>(
                       std::chrono::duration<double>(value * scale));
    }
  }
  return fail("not a time or a duration");
}

// The ids the resources file knows; the action's id must be one.
void check_known(const std::string& id, const std::string& resources) {
  auto provider = make_resource_provider(resources);
  for (const auto& resource : provider->load()) {
    if (resource.id == id) return;
  }
  throw ConfigError("unknown device \"" + id + "\": " + provider->describe() +
                    " has no resource with that id; check the id (lockable status lists them) or "
                    "give the resources file with --resources");
}

void log_event(const AdminSettings& settings, const LockBackend& backend,
               AllocationEvent::Kind kind, const std::string& id, const std::string& reason,
               const std::string& holder) {
  if (settings.metrics_file.empty()) return;
  AllocationEvent event;
  event.kind = kind;
  event.resource_ids = {id};
  event.by = operator_name();
  event.reason = reason;
  event.holder = holder;
  event.hostname = this_hostname();
  event.pid = static_cast<long>(::getpid());
  event.wall_time = SystemClock::now();
  event.monotonic_time = std::chrono::steady_clock::now();
  make_allocation_log(settings.metrics_file, backend.describe(),
                      "lockable " + std::string(to_string(kind)),
                      [](const std::string& warning) { std::cerr << warning << std::endl; })(event);
}

// The lock folder a backend uses, or nullopt for another store.
std::optional<fs::path> folder_of(LockBackend& backend) {
  try {
    return folder_backend::folder_of(backend);
  } catch (const BackendError&) {
    return std::nullopt;
  }
}

// Forks the holder: its own session (it survives the terminal), stdio on /dev/null, exec'd
// afresh from our binary. Returns what it wrote to the ready pipe ("held", "waiting ...", or ""
// when it said nothing within `wait`).
std::string spawn_holder(const std::string& kind, const std::string& where, const std::string& id,
                         const std::string& reservation, std::chrono::milliseconds wait) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    throw BackendError(std::string("cannot start the reservation holder: pipe: ") +
                       std::strerror(errno));
  }
  const std::string ready = std::to_string(fds[1]);
  const pid_t child = ::fork();
  if (child < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    throw BackendError(std::string("cannot start the reservation holder: fork: ") +
                       std::strerror(errno));
  }
  if (child == 0) {
    ::setsid();
    // A second fork: the holder is nobody's child (no zombie in a long-lived parent).
    if (::fork() != 0) ::_exit(0);
    const int null = ::open("/dev/null", O_RDWR);
    if (null >= 0) {
      ::dup2(null, 0);
      ::dup2(null, 1);
      ::dup2(null, 2);
    }
    // Nothing of the caller's stays open in a process that lives on (a test harness's pipe
    // would never see its end of file); the ready pipe survives exec.
    for (int fd = 3; fd < 1024; ++fd) {
      if (fd != fds[1]) ::close(fd);
    }
    ::fcntl(fds[1], F_SETFD, 0);
    const char* args[] = {"lockable", kReservationHolderWord, kind.c_str(),        where.c_str(),
                          id.c_str(), ready.c_str(),          reservation.c_str(), nullptr};
    ::execv("/proc/self/exe", const_cast<char* const*>(args));
    ::_exit(127);
  }
  ::close(fds[1]);
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  std::string answer;
  const auto deadline = std::chrono::steady_clock::now() + wait;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                          deadline - std::chrono::steady_clock::now())
                          .count();
    if (left <= 0) break;
    pollfd entry{fds[0], POLLIN, 0};
    if (::poll(&entry, 1, static_cast<int>(left)) <= 0) continue;
    char buffer[512];
    const ssize_t n = ::read(fds[0], buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    answer.append(buffer, static_cast<std::size_t>(n));
    if (answer.find('\n') != std::string::npos) break;
  }
  ::close(fds[0]);
  if (!answer.empty() && answer.back() == '\n') answer.pop_back();
  return answer;
}

// Whether process `pid` of this host holds a flock on `path` (/proc/locks: "1: FLOCK ADVISORY
// WRITE <pid> <major>:<minor>:<inode> 0 EOF", major and minor in hex; "->" lines are waiters).
bool holds_flock(long pid, const fs::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return false;
  std::ifstream locks("/proc/locks");
  for (std::string line; std::getline(locks, line);) {
    std::istringstream words(line);
    std::string index, type, mode, access, device;
    long owner = 0;
    if (!(words >> index >> type) || type != "FLOCK") continue;
    if (!(words >> mode >> access >> owner >> device) || owner != pid) continue;
    unsigned major_number = 0, minor_number = 0;
    unsigned long inode = 0;
    if (std::sscanf(device.c_str(), "%x:%x:%lu", &major_number, &minor_number, &inode) != 3) {
      continue;
    }
    if (major_number == major(st.st_dev) && minor_number == minor(st.st_dev) &&
        inode == st.st_ino) {
      return true;
    }
  }
  return false;
}

// A zombie has ended: it holds no lock and waits only for its parent to reap it.
bool alive(long pid) {
  if (pid <= 0 || (::kill(static_cast<pid_t>(pid), 0) != 0 && errno != EPERM)) return false;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  const auto name_end = text.rfind(')');
  return name_end == std::string::npos || text.size() < name_end + 3 || text[name_end + 2] != 'Z';
}

int reserve(const CommandLine& line, const AdminSettings& settings, LockBackend& backend) {
  const auto now = SystemClock::now();
  Reservation reservation;
  reservation.reason = *line.reason;
  reservation.by = operator_name();
  reservation.since = now;
  if (line.until) reservation.until = parse_until(*line.until, now);
  reservation.draining = line.admin == "drain";
  const std::string& id = line.admin_id;
  const auto holder = backend.holder_of(id);
  const bool service = dynamic_cast<NamedLockBackend*>(&backend) != nullptr;
  // The lock service keeps a reservation only while a process holds it: the holder does.
  if (!service) backend.reserve(id, reservation);
  const auto folder = folder_of(backend);
  if (folder || service) {
    const std::string answer =
        folder ? spawn_holder("folder", folder->string(), id, "", std::chrono::seconds(10))
               : spawn_holder("service", settings.lock_spec, id, reservation.to_json().dump(),
                              std::chrono::seconds(10));
    if (answer.rfind("waiting", 0) == 0) {
      say(id + " is still held (" + answer.substr(std::min<std::size_t>(answer.size(), 8)) +
          "); the reservation holder takes it once it is released");
    } else if (answer != "held") {
      const std::string why = answer.empty() ? std::string("no answer within 10 s") : answer;
      if (service) {
        throw BackendError("cannot reserve " + id + " on " + backend.describe() +
                           ": the reservation holder process failed (" + why + ")");
      }
      say("warning: the reservation holder process did not start (" + why +
          "): this library's lockers stay off " + id +
          ", the Python package does not; run this command again");
      return kBackendError;
    }
  }
  log_event(settings, backend, AllocationEvent::Kind::kReserved, id, reservation.reason, "");
  say((reservation.draining ? "draining " : "reserved ") + id + ": " + reservation.describe());
  if (service) {
    say("the lock service cannot store the reason: status elsewhere shows " + id +
        " as held, not as reserved");
  }
  if (!folder && !service && holder) {
    say(id + " is still held by " + holder->describe() +
        (reservation.draining
             ? "; it keeps it until it releases"
             : "; `lockable release " + id + " --force --reason ...` takes it back"));
  }
  return kOk;
}

int unreserve(const CommandLine& line, const AdminSettings& settings, LockBackend& backend) {
  const std::string& id = line.admin_id;
  const auto before = backend.reservations_of({id}).front();
  backend.unreserve(id);
  if (const auto folder = folder_of(backend)) {
    // The holder sees its file gone within half a second: return once it let go.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      const auto holder = folder_backend::read_holder(*folder, id);
      if (!holder || holder->alloc_id.rfind("reservation ", 0) != 0) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  log_event(settings, backend, AllocationEvent::Kind::kUnreserved, id, before ? before->reason : "",
            "");
  if (dynamic_cast<NamedLockBackend*>(&backend) != nullptr) {
    say("released the named lock of " + id + " on " + backend.describe() +
        " (the service cannot tell a reservation from a hold); its reservation holder ends at "
        "its next heartbeat");
  } else {
    say(before ? "unreserved " + id : id + " was not reserved; nothing to do");
  }
  return kOk;
}

int release(const CommandLine& line, const AdminSettings& settings, LockBackend& backend) {
  const std::string& id = line.admin_id;
  const auto holder = backend.force_release(id, *line.reason);
  if (!holder) {
    say(id + " is not held; nothing to release");
    return kOk;
  }
  const auto folder = folder_of(backend);
  if (!folder) {
    log_event(settings, backend, AllocationEvent::Kind::kForced, id, *line.reason,
              holder->describe());
    say("took " + id + " from " + holder->describe() + " (" + backend.describe() +
        "); the holder sees a loss");
    return kOk;
  }
  say(id + " is held by " + holder->describe());
  if (!line.kill) {
    say("a lock folder cannot take a lock from a living process: stop it, or run this again with "
        "--kill (SIGTERM, then SIGKILL after --grace seconds)");
    return kBackendError;
  }
  double grace = 10;
  if (line.grace) {
    char* end = nullptr;
    grace = std::strtod(line.grace->c_str(), &end);
    if (end == line.grace->c_str() || *end != '\0' || grace < 0 || grace > 3600) {
      throw ConfigError("--grace " + *line.grace + ": not a number of seconds from 0 to 3600");
    }
  }
  // The hostname a holder records is its --hostname (a device filter), so the kernel decides:
  // only a process of this host that holds the flock of the lock file is signalled.
  const fs::path lock_file = folder_backend::pid_path(*folder, id);
  if (holder->pid <= 0 || holder->pid == ::getpid() || !holds_flock(holder->pid, lock_file)) {
    say("not killing: no process of this host with pid " + std::to_string(holder->pid) + " holds " +
        lock_file.string() + " (it runs on another host sharing the folder, or has " +
        "just ended); stop it where it runs");
    return kBackendError;
  }
  const auto pid = static_cast<pid_t>(holder->pid);
  if (::kill(pid, SIGTERM) != 0) {
    say("cannot signal pid " + std::to_string(pid) + " (" + std::strerror(errno) +
        "); ask its owner or root to stop it");
    return kBackendError;
  }
  log_event(settings, backend, AllocationEvent::Kind::kForced, id, *line.reason,
            holder->describe());
  say("sent SIGTERM to pid " + std::to_string(pid));
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                            std::chrono::duration<double>(grace));
  while (alive(pid) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (alive(pid)) {
    ::kill(pid, SIGKILL);
    say("sent SIGKILL to pid " + std::to_string(pid) + " after " + line.grace.value_or("10") +
        " s");
  }
  return kOk;
}

std::atomic<bool> stop_holder{false};
extern "C" void on_stop_signal(int) { stop_holder = true; }

// The lock service's reservation holder: holds the device's named lock (heartbeat included)
// until it is released on the service (`lockable unreserve`), `until`, or a signal.
int hold_service_reservation(const std::string& spec, const std::string& id,
                             const std::string& reservation_json,
                             const std::function<void(const std::string&)>& tell) {
  const Reservation reservation = Reservation::from_json(Json::parse(reservation_json));
  auto backend = make_lock_backend(spec, [](const std::string&) {});
  HolderInfo self;
  self.pid = static_cast<long>(::getpid());
  self.hostname = this_hostname();
  self.alloc_id = "reservation";
  self.since = SystemClock::now();
  Resource resource;
  resource.id = id;
  std::unique_ptr<HeldLock> lock;
  while (!stop_holder && !reservation.expired(SystemClock::now())) {
    if (!lock) {
      lock = backend->try_lock(resource, self);
      if (lock) {
        lock->on_lock_loss([](const std::string&) { stop_holder = true; });
        tell("held");
      } else {
        tell("waiting for its holder");
      }
    }
    backend->wait_for_change(std::chrono::steady_clock::now() + std::chrono::milliseconds(250));
  }
  if (lock && !lock->lost()) lock->release();
  tell("ended");
  return kOk;
}

}  // namespace

int run_admin_command(const CommandLine& line, const AdminSettings& settings) {
  check_known(line.admin_id, settings.resources);
  auto backend = make_lock_backend(settings.lock_spec);
  if (line.admin == "reserve" || line.admin == "drain") return reserve(line, settings, *backend);
  if (line.admin == "unreserve") return unreserve(line, settings, *backend);
  return release(line, settings, *backend);
}

int run_reservation_holder(int argc, const char* const* argv) {
  if (argc != 7) return kUsage;
  const std::string kind = argv[2];
  const fs::path folder = argv[3];
  const std::string id = argv[4];
  int ready = std::atoi(argv[5]);
  const auto tell = [&ready](const std::string& text) {
    if (ready < 0) return;
    const std::string line = text + "\n";
    if (::write(ready, line.data(), line.size()) < 0) {
      // The reserving command gave up waiting; nothing to tell.
    }
    ::close(ready);
    ready = -1;
  };
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  ::sigaction(SIGTERM, &action, nullptr);
  ::sigaction(SIGINT, &action, nullptr);
  ::signal(SIGHUP, SIG_IGN);
  // Whoever started it may have stopped listening (a restart does not wait for the answer).
  ::signal(SIGPIPE, SIG_IGN);
  try {
    if (kind == "service") return hold_service_reservation(argv[3], id, argv[6], tell);
    auto backend = make_lock_folder_backend(folder, [](const std::string&) {});
    const auto first = folder_backend::read_reservation(folder, id);
    if (!first || first->token.empty()) {
      tell("no reservation");
      return kOk;
    }
    const std::string token = first->token;
    HolderInfo self;
    self.pid = static_cast<long>(::getpid());
    self.hostname = this_hostname();
    self.alloc_id = folder_backend::reservation_alloc_id(token);
    self.since = SystemClock::now();
    self.requirements = Json{{"reservation", first->reservation.reason}};
    std::unique_ptr<HeldLock> lock;
    while (!stop_holder) {
      const auto file = folder_backend::read_reservation(folder, id);
      if (!file || file->token != token) break;
      if (file->reservation.expired(SystemClock::now())) {
        folder_backend::remove_reservation(folder, id, token);
        break;
      }
      if (!lock) {
        lock = folder_backend::lock_for_reservation(*backend, id, self);
        if (lock) {
          tell("held");
        } else {
          const auto holder = backend->holder_of(id);
          tell("waiting for " + (holder ? holder->describe() : std::string("its holder")));
        }
      }
      backend->wait_for_change(std::chrono::steady_clock::now() + std::chrono::milliseconds(250));
    }
    if (lock) lock->release();
    tell("ended");
    return kOk;
  } catch (const std::exception& error) {
    tell(std::string("error: ") + error.what());
    return kBackendError;
  }
}

void restart_reservation_holders(const std::string& spec) {
  try {
    const fs::path folder = spec.empty() ? default_lock_folder() : fs::path(spec);
    std::error_code error;
    if (spec.find("://") != std::string::npos || !fs::is_directory(folder, error)) return;
    // The index, not the folder: a default lock folder is /tmp, with thousands of other entries.
    for (const auto& id : folder_backend::indexed_reservations(folder)) {
      const auto file = folder_backend::read_reservation(folder, id);
      if (!file || file->token.empty() || file->reservation.expired(SystemClock::now())) continue;
      if (folder_backend::read_holder(folder, id)) continue;  // its holder (or a user) holds it
      spawn_holder("folder", folder.string(), id, "", std::chrono::milliseconds(0));
    }
  } catch (const std::exception&) {
    // Best effort: status names a reservation without its holder.
  }
}

}  // namespace lockable::cli
