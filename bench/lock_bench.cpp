// Local lock folder latencies, printed as medians (plain main: the handoff needs two processes).
//   1. uncontended lock + unlock through Lockable (one process, one device), next to its floor
//      measured in the same run, iterations interleaved: what any flock-based pid file lock must
//      do, in C (open, flock, write the pid, ftruncate, unlock, close of one file)
//      and the lock folder backend alone (try_lock + release, no Lockable layer above it)
//      and this lock folder protocol's own floor: its system calls alone, in C (see below)
//   2. handoff: release in one process to grant in another, both waiting through the library
// Usage: lock_bench [uncontended-iterations=2000] [handoffs=300]
#include <lockable/lock_folder.hpp>
#include <lockable/lockable.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "bench_timing.hpp"

namespace {

using lockable::bench::monotonic_ns;
using lockable::bench::percentile;

lockable::Options options_for(const std::filesystem::path& folder) {
  lockable::Options options;
  options.resources =
      lockable::Json::array({{{"id", "bench-dut"}, {"online", true}, {"hostname", "bench-host"}}});
  options.hostname = "bench-host";
  options.lock_folder = folder;
  options.log = [](const std::string&) {};
  return options;
}

// One lock+unlock of a pid file at its floor: the system calls every flock-based holder makes.
void floor_lock_unlock(const char* path, const std::string& pid_text) {
  const int fd = ::open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
  ::flock(fd, LOCK_EX);
  if (::write(fd, pid_text.data(), pid_text.size()) < 0) std::abort();
  if (::ftruncate(fd, 0) != 0) std::abort();
  ::flock(fd, LOCK_UN);
  ::close(fd);
}

// One lock+unlock as the lock folder protocol makes it, with no library work around it: the 13
// system calls of Lockable::lock + unlock on an uncontended device (strace), each of which keeps
// a promise. Descriptors the library keeps across locks (the read-only probe that holds the flock,
// the details file) are kept here too.
struct ProtocolFloor {
  int probe;    // `<id>.pid`, read-only, flock-ed
  int details;  // `<id>.pid.json`
  std::string queue, pid, reservation;
  std::string pid_text, details_text;

  void lock_unlock() const {
    struct stat st {};
    ::fstatat(AT_FDCWD, queue.c_str(), &st, AT_SYMLINK_NOFOLLOW);  // fair queue: any waiter?
    ::flock(probe, LOCK_EX | LOCK_NB);
    char first = 0;
    if (::pread(probe, &first, 1, 0) != 0) std::abort();  // emptied on release: no holder pid
    ::fstatat(AT_FDCWD, reservation.c_str(), &st, AT_SYMLINK_NOFOLLOW);  // reserved? (ENOENT)
    const int write_fd = ::open(pid.c_str(), O_WRONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
    ::fstat(write_fd, &st);  // still the file the flock is on (the Python package unlinks)
    if (::pwrite(write_fd, pid_text.data(), pid_text.size(), 0) < 0) std::abort();
    ::fstat(details, &st);  // longer details left by another holder are truncated
    if (::pwrite(details, details_text.data(), details_text.size(), 0) < 0) std::abort();
    ::fstat(probe, &st);                              // release: removed while held? (a warning)
    if (::ftruncate(write_fd, 0) != 0) std::abort();  // the Python package reads no live pid
    ::flock(probe, LOCK_UN);
    ::close(write_fd);  // IN_CLOSE_WRITE wakes the head of the queue, in every version
  }
};

struct Event {
  int process;
  int kind;  // 0 = granted, 1 = about to release
  long long ns;
};

}  // namespace

int main(int argc, char** argv) {
  const int iterations = argc > 1 ? std::atoi(argv[1]) : 2000;
  const int handoffs = argc > 2 ? std::atoi(argv[2]) : 300;
  std::string pattern = (std::filesystem::temp_directory_path() / "lockable-bench-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) return 1;
  const std::filesystem::path folder = pattern;

  {
    lockable::Lockable lockable(options_for(folder));
    const std::string floor_path = (folder / "floor.pid").string();
    const std::string pid_text = std::to_string(::getpid()) + "\n";
    for (int i = 0; i < 50; ++i) {  // warm up the caches
      lockable.lock("").unlock();
      floor_lock_unlock(floor_path.c_str(), pid_text);
    }
    // The backend alone, on its own device so that its probe descriptor is its own.
    const auto backend = lockable::make_lock_folder_backend(folder);
    const lockable::Resource backend_device{"bench-backend", lockable::Json::object()};
    lockable::HolderInfo holder;
    holder.pid = ::getpid();
    holder.hostname = "bench-host";
    holder.alloc_id = "00000000-0000-4000-8000-000000000000";
    holder.requirements = lockable::Json::object();
    for (int i = 0; i < 50; ++i) backend->try_lock(backend_device, holder)->release();
    // Its own device's files, made as the library makes them.
    backend->try_lock(lockable::Resource{"bench-protocol", lockable::Json::object()}, holder)
        ->release();
    const std::string protocol_pid = (folder / "bench-protocol.pid").string();
    const ProtocolFloor protocol{
        ::open(protocol_pid.c_str(), O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC),
        ::open((folder / "bench-protocol.pid.json").c_str(),
               O_WRONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC),
        (folder / ".lockable-queue").string(),
        protocol_pid,
        (folder / "bench-protocol.reserved.json").string(),
        pid_text,
        std::string(152, ' ')};
    if (protocol.probe < 0 || protocol.details < 0) return 1;
    for (int i = 0; i < 50; ++i) protocol.lock_unlock();
    std::vector<double> micros;
    std::vector<double> floor_micros;
    std::vector<double> protocol_micros;
    std::vector<double> backend_micros;
    for (int i = 0; i < iterations; ++i) {
      auto start = monotonic_ns();
      floor_lock_unlock(floor_path.c_str(), pid_text);
      floor_micros.push_back(static_cast<double>(monotonic_ns() - start) / 1e3);
      start = monotonic_ns();
      protocol.lock_unlock();
      protocol_micros.push_back(static_cast<double>(monotonic_ns() - start) / 1e3);
      start = monotonic_ns();
      auto allocation = lockable.lock("");
      allocation.unlock();
      micros.push_back(static_cast<double>(monotonic_ns() - start) / 1e3);
      start = monotonic_ns();
      holder.since = std::chrono::system_clock::now();
      backend->try_lock(backend_device, holder)->release();
      backend_micros.push_back(static_cast<double>(monotonic_ns() - start) / 1e3);
    }
    std::printf("uncontended lock+unlock: median %.1f us, p90 %.1f us (%d iterations)\n",
                percentile(micros, 0.5), percentile(micros, 0.9), iterations);
    std::printf(
        "  floor, same run (C: open+flock+write+ftruncate+unlock+close): median %.1f us, "
        "p90 %.1f us\n",
        percentile(floor_micros, 0.5), percentile(floor_micros, 0.9));
    std::printf(
        "  floor of this lock folder protocol, same run (C: its 13 system calls, no library "
        "work): median %.1f us, p90 %.1f us\n",
        percentile(protocol_micros, 0.5), percentile(protocol_micros, 0.9));
    ::close(protocol.probe);
    ::close(protocol.details);
    std::printf("  lock folder backend alone (try_lock+release): median %.1f us, p90 %.1f us\n",
                percentile(backend_micros, 0.5), percentile(backend_micros, 0.9));
  }

  // Two processes pass the device back and forth. Each writes (process, kind, stamp) records to
  // a shared pipe; a handoff is a release by one process followed by a grant in the other.
  int events[2];
  if (::pipe(events) != 0) return 1;
  std::vector<pid_t> children;
  for (int process = 0; process < 2; ++process) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::close(events[0]);
      lockable::Lockable lockable(options_for(folder));
      for (int round = 0; round < handoffs / 2 + 1; ++round) {
        auto allocation = lockable.lock("", lockable::Seconds(60));
        Event granted{process, 0, monotonic_ns()};
        if (::write(events[1], &granted, sizeof granted) < 0) ::_exit(1);
        // Hold long enough for the other process to queue up behind us.
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
        Event released{process, 1, monotonic_ns()};
        if (::write(events[1], &released, sizeof released) < 0) ::_exit(1);
        allocation.unlock();
      }
      ::_exit(0);
    }
    children.push_back(pid);
  }
  ::close(events[1]);
  std::vector<Event> log;
  Event event{};
  while (::read(events[0], &event, sizeof event) == static_cast<ssize_t>(sizeof event)) {
    log.push_back(event);
  }
  for (const auto pid : children) ::waitpid(pid, nullptr, 0);
  std::sort(log.begin(), log.end(), [](const Event& a, const Event& b) { return a.ns < b.ns; });
  std::vector<double> micros;
  for (std::size_t i = 1; i < log.size(); ++i) {
    if (log[i].kind == 0 && log[i - 1].kind == 1 && log[i].process != log[i - 1].process) {
      micros.push_back(static_cast<double>(log[i].ns - log[i - 1].ns) / 1e3);
    }
  }
  std::printf(
      "handoff between processes: median %.1f us, p90 %.1f us, max %.1f us (%zu handoffs)\n",
      percentile(micros, 0.5), percentile(micros, 0.9), percentile(micros, 1.0), micros.size());
  std::error_code ignored;
  std::filesystem::remove_all(folder, ignored);
  return 0;
}
