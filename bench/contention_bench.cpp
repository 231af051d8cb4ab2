// Fairness and throughput under contention: many processes, few devices, every process asking for
// any device. Prints throughput and queue times (mean, median, max); a fair FIFO queue keeps the
// maximum close to the mean. Plain main: the measurement spans processes. The clock starts once
// every process is set up (forked, its Lockable made), so that neither the throughput nor the
// first requests' queue times count the start-up of the processes started after them.
// Usage: contention_bench [processes=16] [devices=4] [allocations=2000] [hold-us=2000]
#include <lockable/lockable.hpp>

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
        const double queue_ms =
            std::chrono::duration<double, std::milli>(allocation.queue_time()).count();
        if (::write(results[1], &queue_ms, sizeof queue_ms) < 0) ::_exit(1);
        std::this_thread::sleep_for(std::chrono::microseconds(hold_us));
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
  double value = 0;
  while (::read(results[0], &value, sizeof value) == static_cast<ssize_t>(sizeof value)) {
    queue_ms.push_back(value);
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
  std::printf("queue time: mean %.2f ms, median %.2f ms, p99 %.2f ms, max %.2f ms, max/mean %.2f\n",
              mean, percentile(queue_ms, 0.5), percentile(queue_ms, 0.99), max,
              mean > 0 ? max / mean : 0.0);
  if (failed > 0) std::printf("%d worker processes failed\n", failed);
  std::error_code ignored;
  std::filesystem::remove_all(folder, ignored);
  return failed == 0 ? 0 : 1;
}
