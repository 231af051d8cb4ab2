// The `lockable` CLI with its wall clock shifted by the fault harness's LD_PRELOAD shim
// (clock_jump_preload): timeouts must not move, and the pid-reuse rule of the lock folder must
// not take a live Python holder's file. The same faults the harness injects at random, here one
// at a time with a fixed answer.

#include <gtest/gtest.h>

#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "lockable/test/child.hpp"
#include "lockable/test/files.hpp"

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using lockable::test::Child;
using lockable::test::ChildOptions;
using lockable::test::TempDir;

constexpr int kTimeout = 6;

// The shim's variables; under AddressSanitizer the shim comes before the sanitizer's runtime,
// which must be told to accept that.
std::map<std::string, std::string> shim_env(const fs::path& offset_file) {
  const char* asan = std::getenv("ASAN_OPTIONS");
  return {{"LD_PRELOAD", FAULT_PRELOAD_PATH},
          {"FAULT_CLOCK_OFFSET_FILE", offset_file.string()},
          {"ASAN_OPTIONS", std::string(asan != nullptr ? asan : "") + ":verify_asan_link_order=0"}};
}

class ClockJump : public ::testing::Test {
 protected:
  TempDir dir_;
  fs::path locks_ = dir_.path() / "locks";
  fs::path resources_ = dir_.path() / "resources.json";
  fs::path offset_ = dir_.path() / "clock_offset";

  void SetUp() override {
    fs::create_directories(locks_);
    lockable::test::write_file(resources_,
                               R"([{"id": "dut", "online": true, "hostname": "localhost"}])");
    set_offset("0");
  }

  void set_offset(const std::string& seconds) {
    lockable::test::write_file(offset_, seconds + "\n");
  }

  // The CLI with the shim, locking "dut" for `true` within `timeout` seconds.
  std::unique_ptr<Child> start_cli(const std::string& timeout) {
    ChildOptions options;
    options.env = shim_env(offset_);
    options.drop_env_prefixes = {"LOCKABLE_"};
    options.in = lockable::test::Stream::null();
    options.out = lockable::test::Stream::file(dir_.path() / "cli.out");
    options.err = lockable::test::Stream::same_as_stdout();
    return std::make_unique<Child>(
        std::vector<std::string>{LOCKABLE_CLI_PATH, "--resources", resources_.string(),
                                 "--hostname", "localhost", "--lock-folder", locks_.string(),
                                 "--timeout", timeout, "--no-shell", "true"},
        options);
  }

  std::unique_ptr<Child> python_holder(const std::string& mode) {
    ChildOptions options;
    options.err = lockable::test::Stream::inherit();
    return std::make_unique<Child>(
        std::vector<std::string>{"/usr/bin/python3", FAULT_PYTHON_PID_LOCK, mode,
                                 (locks_ / "dut.pid").string()},
        options);
  }
};

char process_state(pid_t pid) {
  const std::string stat = lockable::test::read_text("/proc/" + std::to_string(pid) + "/stat");
  const auto paren = stat.rfind(')');
  return paren == std::string::npos || paren + 2 >= stat.size() ? '?' : stat[paren + 2];
}

TEST_F(ClockJump, ShimShiftsTheWallClockOnly) {
  // The shim itself: `date +%s` a day ahead, while the monotonic clock is untouched (below).
  set_offset("86400");
  ChildOptions options;
  options.env = shim_env(offset_);
  const auto result = lockable::test::run({"/bin/date", "+%s"}, options);
  ASSERT_EQ(result.exit_code, 0) << result;
  const long shifted = std::stol(result.out);
  const long real = static_cast<long>(std::time(nullptr));
  EXPECT_GT(shifted, real + 86000) << result;
  EXPECT_LT(shifted, real + 86800) << result;
}

TEST_F(ClockJump, PythonHolderBetweenCloseAndUnlinkIsNeverTakenWhateverTheWallClock) {
  // The Python package releases by close() then unlink(). Stopped between the two, its file is
  // free but names its live pid. A lockable whose wall clock is a day ahead (or behind) must
  // still see that pid as the live holder, not as a pid reused after the file was written.
  auto python = python_holder("hold-stop");
  ASSERT_EQ(python->read_line(10s), "locked");
  python->write_line("");
  ASSERT_EQ(python->read_line(10s), "closed");
  const auto guard = std::chrono::steady_clock::now() + 10s;
  while (process_state(python->pid()) != 'T' && std::chrono::steady_clock::now() < guard) {
    std::this_thread::sleep_for(1ms);
  }
  ASSERT_EQ(process_state(python->pid()), 'T');
  for (const char* offset : {"86400", "-86400", "0"}) {
    set_offset(offset);
    auto cli = start_cli("0.5");
    EXPECT_EQ(cli->wait(60s), kTimeout) << "wall clock offset " << offset << " s:\n"
                                        << cli->output();
  }
  python->send_signal(SIGCONT);
  EXPECT_EQ(python->read_line(10s), "released");
  EXPECT_EQ(python->wait(), 0);
  auto cli = start_cli("5");
  EXPECT_EQ(cli->wait(60s), 0) << cli->output();
}

TEST_F(ClockJump, TimeoutsHoldWhenTheWallClockJumpsWhileWaiting) {
  auto python = python_holder("hold");  // holds "dut" until told
  ASSERT_EQ(python->read_line(10s), "locked");
  for (const char* offset : {"86400", "-86400"}) {
    set_offset("0");
    const auto started = std::chrono::steady_clock::now();
    auto cli = start_cli("2");
    std::this_thread::sleep_for(500ms);
    set_offset(offset);  // while it waits
    EXPECT_EQ(cli->wait(60s), kTimeout) << cli->output();
    const auto waited = std::chrono::steady_clock::now() - started;
    // Not sooner than its timeout (a deadline on the wall clock would end at once on +1 day),
    // and not much later (one on the wall clock would wait a day on -1 day; 20 s is only a
    // bound for a loaded machine).
    EXPECT_GE(waited, 2s) << "offset " << offset;
    EXPECT_LT(waited, 20s) << "offset " << offset;
  }
  python->write_line("");
  EXPECT_EQ(python->read_line(10s), "released");
}

}  // namespace
