// The GoogleTest plugin's own cost per suite: what LockableTest's SetUpTestSuite and
// TearDownTestSuite do (lock through the shared Lockable, record the report properties, print
// the console lines, unlock), next to the bare library lock/unlock it wraps. Local lock folder in
// a temporary directory; nobody else competes. Prints medians over repetitions; asserts nothing.
//
// The plugin's console lines go to /dev/null; the benchmark table goes to the original stdout.
#include <lockable/gtest.hpp>

#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
namespace detail = lockable::gtest::detail;

std::vector<lockable::Requirements> one_phone() {
  return {lockable::Requirements::parse(R"({"os": "Android"})")};
}

std::vector<lockable::Requirements> phone_and_switch() {
  return {lockable::Requirements::parse(R"({"os": "Android"})"),
          lockable::Requirements::parse("type=power_switch")};
}

void BM_LibraryLockUnlock(benchmark::State& state) {
  auto& lockable = lockable::gtest::shared_lockable();
  const auto requirements = lockable::Requirements::parse(R"({"os": "Android"})");
  for (auto _ : state) {
    auto allocation = lockable.lock(requirements);
    benchmark::DoNotOptimize(allocation.resource_id());
    allocation.unlock();
  }
}

// One suite's set-up and tear-down as LockableTest runs them.
void BM_PluginSuiteOneDevice(benchmark::State& state) {
  auto& suite = detail::new_suite_state();
  for (auto _ : state) {
    detail::set_up_suite(suite, &one_phone);
    if (detail::device_count(suite) != 1) state.SkipWithError("no device locked");
    detail::tear_down_suite(suite);
  }
}

void BM_PluginSuiteTwoDevices(benchmark::State& state) {
  auto& suite = detail::new_suite_state();
  for (auto _ : state) {
    detail::set_up_suite(suite, &phone_and_switch);
    if (detail::device_count(suite) != 2) state.SkipWithError("devices not locked");
    detail::tear_down_suite(suite);
  }
}

void settings(benchmark::internal::Benchmark* b) {
  b->Unit(benchmark::kMicrosecond)->Repetitions(7)->ReportAggregatesOnly(true);
}

BENCHMARK(BM_LibraryLockUnlock)->Apply(settings);
BENCHMARK(BM_PluginSuiteOneDevice)->Apply(settings);
BENCHMARK(BM_PluginSuiteTwoDevices)->Apply(settings);

constexpr const char* kResources = R"([
  {"id": "phone-1", "online": true, "hostname": "bench-host", "os": "Android", "serial": "S1"},
  {"id": "phone-2", "online": true, "hostname": "bench-host", "os": "Android", "serial": "S2"},
  {"id": "board-1", "online": true, "hostname": "bench-host", "type": "board", "board": {"rev": 2}},
  {"id": "switch-1", "online": true, "hostname": "bench-host", "type": "power_switch"},
  {"id": "phone-3", "online": false, "hostname": "bench-host", "os": "Android"},
  {"id": "phone-4", "online": true, "hostname": "other-host", "os": "Android"}
])";

}  // namespace

int main(int argc, char** argv) {
  std::string dir_pattern = (fs::temp_directory_path() / "lockable-plugin-bench-XXXXXX").string();
  if (::mkdtemp(dir_pattern.data()) == nullptr) {
    std::perror("mkdtemp");
    return 1;
  }
  const fs::path dir = dir_pattern;
  std::ofstream(dir / "resources.json") << kResources;

  lockable::gtest::Config config;
  config.resources = dir / "resources.json";
  config.lock_folder = dir / "locks";
  config.hostname = "bench-host";
  config.timeout = lockable::Seconds(5.0);
  lockable::gtest::init(config);

  benchmark::Initialize(&argc, argv);
  // Keep the table on the real stdout; send the plugin's console lines to /dev/null.
  const int table_fd = ::dup(STDOUT_FILENO);
  const int null_fd = ::open("/dev/null", O_WRONLY);
  std::fflush(stdout);
  ::dup2(null_fd, STDOUT_FILENO);
  std::ofstream table("/proc/self/fd/" + std::to_string(table_fd));
  benchmark::ConsoleReporter reporter(::isatty(table_fd) ? benchmark::ConsoleReporter::OO_Defaults
                                                         : benchmark::ConsoleReporter::OO_Tabular);
  reporter.SetOutputStream(&table);
  reporter.SetErrorStream(&table);
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  table.flush();

  std::error_code ignored;
  fs::remove_all(dir, ignored);
  return 0;
}
