// The lockable command's round trip, as a shell script pays it: start, lock an uncontended device,
// run `/bin/true`, release, exit. Printed next to its floors measured in the same run, rounds
// interleaved so that a busy machine slows all three alike: fork+exec of `/bin/true` alone, and
// `lockable --help` (start-up and exit without any lock). Medians in milliseconds. Plain main:
// each sample is a child process. Beside the elapsed time, the CPU time (user + system) of the
// process and every child it reaped (wait4's rusage): on a shared, loaded machine the elapsed
// time is mostly waiting for a core, the CPU time much less so. Last, the round trip again with a
// lock folder crowded like a lab's /tmp (the default lock folder).
// Usage: cli_bench [rounds=200] [lockable-path=the one built with this benchmark]
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "bench_timing.hpp"

#ifndef LOCKABLE_CLI_PATH
#error "LOCKABLE_CLI_PATH must name the built lockable command"
#endif

namespace {

using lockable::bench::monotonic_ns;
using lockable::bench::percentile;

struct Sample {
  double elapsed_ms = 0;
  double cpu_ms = 0;
};

double ms_of(const timeval& time) {
  return static_cast<double>(time.tv_sec) * 1e3 + static_cast<double>(time.tv_usec) / 1e3;
}

// Runs `argv` with stdout and stderr on /dev/null; milliseconds from fork to its reaping and its
// CPU time, or negative values when it did not exit 0.
Sample run_ms(const std::vector<std::string>& words) {
  std::vector<char*> argv;
  for (const auto& word : words) argv.push_back(const_cast<char*>(word.c_str()));
  argv.push_back(nullptr);
  const auto start = monotonic_ns();
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, 1);
    ::dup2(null, 2);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  int status = 0;
  rusage usage{};
  ::wait4(pid, &status, 0, &usage);
  const double ms = static_cast<double>(monotonic_ns() - start) / 1e6;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return {-1, -1};
  return {ms, ms_of(usage.ru_utime) + ms_of(usage.ru_stime)};
}

}  // namespace

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 200;
  std::string pattern = (std::filesystem::temp_directory_path() / "lockable-bench-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) return 1;
  const std::filesystem::path folder = pattern;
  const auto resources = (folder / "resources.json").string();
  std::ofstream(resources) << R"([{"id": "bench-dut", "online": true, "hostname": "bench-host",)"
                           << R"( "type": "x"}])";
  const std::string cli = argc > 2 ? argv[2] : LOCKABLE_CLI_PATH;
  const std::vector<std::string> true_words{"/bin/true"};
  const std::vector<std::string> help_words{cli, "--help"};
  const std::vector<std::string> lock_words{cli,
                                            "--resources",
                                            resources,
                                            "--hostname",
                                            "bench-host",
                                            "--lock-folder",
                                            (folder / "locks").string(),
                                            "--requirements",
                                            "type=x",
                                            "--",
                                            "/bin/true"};
  std::filesystem::create_directory(folder / "locks");
  // The default lock folder is /tmp, which on a lab's CI host holds thousands of other entries:
  // the same run there shows what the run's cost has to do with the folder's size.
  constexpr int kCrowd = 5000;
  const auto crowded = folder / "crowded";
  std::filesystem::create_directory(crowded);
  for (int i = 0; i < kCrowd; ++i) {
    std::ofstream(crowded / ("tmp-entry-" + std::to_string(i)));
  }
  auto crowded_words = lock_words;
  *(std::find(crowded_words.begin(), crowded_words.end(), "--lock-folder") + 1) = crowded.string();
  struct Series {
    const char* name;
    const std::vector<std::string>& words;
    std::vector<double> elapsed;
    std::vector<double> cpu;
  };
  Series series[] = {{"fork+exec /bin/true:", true_words, {}, {}},
                     {"lockable --help:", help_words, {}, {}},
                     {"lockable --requirements type=x -- /bin/true:", lock_words, {}, {}},
                     {"  the same, lock folder with 5000 other entries:", crowded_words, {}, {}}};
  int failures = 0;
  for (int round = -5; round < rounds; ++round) {  // 5 rounds warm the page cache
    for (auto& one : series) {
      const Sample sample = run_ms(one.words);
      if (sample.elapsed_ms < 0) ++failures;
      if (round < 0) continue;
      one.elapsed.push_back(sample.elapsed_ms);
      one.cpu.push_back(sample.cpu_ms);
    }
  }
  for (const auto& one : series) {
    std::printf("%-49s median %.2f ms, p90 %.2f ms; CPU median %.2f ms\n", one.name,
                percentile(one.elapsed, 0.5), percentile(one.elapsed, 0.9),
                percentile(one.cpu, 0.5));
  }
  std::printf("(%d rounds)\n", rounds);
  if (failures > 0) std::printf("%d runs failed\n", failures);
  std::error_code ignored;
  std::filesystem::remove_all(folder, ignored);
  return failures == 0 ? 0 : 1;
}
