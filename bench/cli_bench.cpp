// The lockable command's round trip, as a shell script pays it: start, lock an uncontended device,
// run `/bin/true`, release, exit. Printed next to its floors measured in the same run, rounds
// interleaved so that a busy machine slows all three alike: fork+exec of `/bin/true` alone, and
// `lockable --help` (start-up and exit without any lock). Medians in milliseconds. Plain main:
// each sample is a child process.
// Usage: cli_bench [rounds=200] [lockable-path=the one built with this benchmark]
#include <fcntl.h>
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

// Runs `argv` with stdout and stderr on /dev/null; milliseconds from fork to its reaping, or a
// negative value when it did not exit 0.
double run_ms(const std::vector<std::string>& words) {
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
  ::waitpid(pid, &status, 0);
  const double ms = static_cast<double>(monotonic_ns() - start) / 1e6;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? ms : -1;
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
  std::vector<double> true_ms;
  std::vector<double> help_ms;
  std::vector<double> lock_ms;
  int failures = 0;
  for (int round = -5; round < rounds; ++round) {  // 5 rounds warm the page cache
    const double t = run_ms(true_words);
    const double h = run_ms(help_words);
    const double l = run_ms(lock_words);
    if (t < 0 || h < 0 || l < 0) ++failures;
    if (round < 0) continue;
    true_ms.push_back(t);
    help_ms.push_back(h);
    lock_ms.push_back(l);
  }
  std::printf("fork+exec /bin/true:                      median %.2f ms, p90 %.2f ms\n",
              percentile(true_ms, 0.5), percentile(true_ms, 0.9));
  std::printf("lockable --help:                          median %.2f ms, p90 %.2f ms\n",
              percentile(help_ms, 0.5), percentile(help_ms, 0.9));
  std::printf(
      "lockable --requirements type=x -- /bin/true: median %.2f ms, p90 %.2f ms (%d rounds)\n",
      percentile(lock_ms, 0.5), percentile(lock_ms, 0.9), rounds);
  if (failures > 0) std::printf("%d runs failed\n", failures);
  std::error_code ignored;
  std::filesystem::remove_all(folder, ignored);
  return failures == 0 ? 0 : 1;
}
