// Fairness and throughput under contention: many processes, few devices, every process asking for
// any device. Prints throughput and queue times (mean, median, max); a fair FIFO queue keeps the
// maximum close to the mean. Plain main: the measurement spans processes. The clock starts once
// every process is set up (forked, its Lockable made), so that neither the throughput nor the
// first requests' queue times count the start-up of the processes started after them. Beside
// the throughput, its floors measured in the same run: the holds as this machine sleeps them, and
// the kernel's own blocking flock() with the same processes and holds.
// Usage: contention_bench [processes=16] [devices=4] [allocations=2000] [hold-us=2000]
#include <lockable/lockable.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "bench_timing.hpp"

namespace {

using lockable::bench::percentile;

struct Sample {
  double queue_ms;
  double hold_us;  // as slept: sleeps overshoot by the timer slack and the scheduler
};

// The kernel's own handoff, the fastest there is: each process waits in a blocking flock() on
// the file of one device (process i on device i % devices), holds it `hold_us`, unlocks. No
// queue, no choice of device, no fairness promise. Allocations per second.
double flock_floor(const std::filesystem::path& folder, int processes, int devices, int allocations,
                   int hold_us) {
  std::vector<pid_t> children;
  int go[2];
  if (::pipe(go) != 0) return 0;
  for (int process = 0; process < processes; ++process) {
    const int rounds = allocations / processes + (process < allocations % processes ? 1 : 0);
    const pid_t pid = ::fork();
    if (pid == 0) {
      const auto path = folder / ("floor-" + std::to_string(process % devices) + ".pid");
      const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
      char byte = 0;
      if (fd < 0 || ::read(go[0], &byte, 1) != 1) ::_exit(1);
      for (int round = 0; round < rounds; ++round) {
        if (::flock(fd, LOCK_EX) != 0) ::_exit(1);
        std::this_thread::sleep_for(std::chrono::microseconds(hold_us));
        ::flock(fd, LOCK_UN);
      }
      ::_exit(0);
    }
    children.push_back(pid);
  }
  const auto start = std::chrono::steady_clock::now();
  const std::string bytes(static_cast<std::size_t>(processes), 'g');
  if (::write(go[1], bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size())) return 0;
  for (const auto pid : children) ::waitpid(pid, nullptr, 0);
  ::close(go[0]);
  ::close(go[1]);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return static_cast<double>(allocations) / seconds;
}

}  // namespace

int main(int argc, char** argv) {
  const int processes = argc > 1 ? std::atoi(argv[1]) : 16;
  const int devices = argc > 2 ? std::atoi(argv[2]) : 4;
  const int allocations = argc > 3 ? std::atoi(argv[3]) : 2000;
  const int hold_us = argc > 4 ? std::atoi(argv[4]) : 2000;
  std::string pattern = (std::filesystem::temp_directory_path() / "lockable-bench-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) return 1;
  const std::filesystem::path folder = pattern;
  lockable::Json list = lockable::Json::array();
  for (int i = 0; i < devices; ++i) {
    list.push_back({{"id", "dut-" + std::to_string(i)}, {"online", true}, {"hostname", "bench"}});
  }

  int results[2];
  if (::pipe(results) != 0) return 1;
  // Each child says it is set up on `ready`, then waits for a byte on `go`.
  int ready[2];
  int go[2];
  if (::pipe(ready) != 0 || ::pipe(go) != 0) return 1;
  std::vector<pid_t> children;
  for (int process = 0; process < processes; ++process) {
    const int rounds = allocations / processes + (process < allocations % processes ? 1 : 0);
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::close(results[0]);
      lockable::Options options;
      options.resources = list;
      options.hostname = "bench";
      options.lock_folder = folder;
      options.log = [](const std::string&) {};
      lockable::Lockable lockable(std::move(options));
      char byte = 0;
      if (::write(ready[1], &byte, 1) != 1 || ::read(go[0], &byte, 1) != 1) ::_exit(1);
      for (int round = 0; round < rounds; ++round) {
        auto allocation = lockable.lock("", lockable::Seconds(300));
        const auto held_from = std::chrono::steady_clock::now();
        std::this_thread::sleep_for(std::chrono::microseconds(hold_us));
        const Sample sample{
            std::chrono::duration<double, std::milli>(allocation.queue_time()).count(),
            std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - held_from)
                .count()};
        if (::write(results[1], &sample, sizeof sample) < 0) ::_exit(1);
        allocation.unlock();
      }
      ::_exit(0);
    }
    children.push_back(pid);
  }
  ::close(results[1]);
  ::close(ready[1]);  // a child that fails before it is set up ends the read below
  for (int process = 0; process < processes; ++process) {
    char byte = 0;
    if (::read(ready[0], &byte, 1) != 1) return 1;
  }
  const auto start = std::chrono::steady_clock::now();
  {
    const std::string bytes(static_cast<std::size_t>(processes), 'g');
    if (::write(go[1], bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size())) return 1;
  }
  std::vector<double> queue_ms;
  std::vector<double> hold_us_slept;
  Sample sample{};
  while (::read(results[0], &sample, sizeof sample) == static_cast<ssize_t>(sizeof sample)) {
    queue_ms.push_back(sample.queue_ms);
    hold_us_slept.push_back(sample.hold_us);
  }
  int failed = 0;
  for (const auto pid : children) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ++failed;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double mean = queue_ms.empty() ? 0
                                       : std::accumulate(queue_ms.begin(), queue_ms.end(), 0.0) /
                                             static_cast<double>(queue_ms.size());
  const double max = percentile(queue_ms, 1.0);
  std::printf(
      "%d processes, %d devices, hold %d us: %zu allocations in %.2f s = %.0f/s "
      "(ideal %.0f/s)\n",
      processes, devices, hold_us, queue_ms.size(), seconds,
      static_cast<double>(queue_ms.size()) / seconds, devices * 1e6 / hold_us);
  const double slept = percentile(hold_us_slept, 0.5);
  std::printf("  holds as this machine sleeps them: median %.0f us, so at most %.0f/s\n", slept,
              devices * 1e6 / slept);
  std::printf(
      "  floor, same run (C: blocking flock, the processes split over the devices): %.0f/s\n",
      flock_floor(folder, processes, devices, allocations, hold_us));
  std::printf("queue time: mean %.2f ms, median %.2f ms, p99 %.2f ms, max %.2f ms, max/mean %.2f\n",
              mean, percentile(queue_ms, 0.5), percentile(queue_ms, 0.99), max,
              mean > 0 ? max / mean : 0.0);
  if (failed > 0) std::printf("%d worker processes failed\n", failed);
  std::error_code ignored;
  std::filesystem::remove_all(folder, ignored);
  return failed == 0 ? 0 : 1;
}
