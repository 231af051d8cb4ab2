// The test-support library itself: what the other suites rely on when a test fails or hangs
// (guards, kill and reap, clean-up) and the child's environment and redirections.
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>

#include "lockable/test/child.hpp"
#include "lockable/test/eventually.hpp"
#include "lockable/test/files.hpp"
#include "lockable/test/hold_ledger.hpp"

namespace lockable::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

ChildOptions piped() {
  ChildOptions options;
  options.out = Stream::pipe();
  options.err = Stream::pipe();
  return options;
}

TEST(Eventually, IsTrueOnceTheConditionHoldsAndFalseWhenItNeverDoes) {
  int calls = 0;
  EXPECT_TRUE(eventually([&] { return ++calls == 3; }, 10s, 1ms));
  EXPECT_EQ(calls, 3);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(eventually([] { return false; }, 50ms, 5ms));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 50ms);
}

TEST(HoldLedger, ReadsEndedHoldsAndTheOnesThatNeverEnded) {
  TempDir dir;
  write_file(dir.path() / "dut.ledger", "enter 10 1\nleave 10 5\nenter 11 6\n");
  const auto ledger = read_hold_ledger(dir.path(), "dut");
  ASSERT_EQ(ledger.holds.size(), 1u);
  EXPECT_EQ(ledger.holds[0].pid, "10");
  EXPECT_EQ(ledger.holds[0].start, 1);
  EXPECT_EQ(ledger.holds[0].end, 5);
  EXPECT_EQ(ledger.open, (std::map<std::string, long long>{{"11", 6}}));
}

TEST(HoldLedger, EnteringTwiceOrLeavingWithoutEnteringFailsTheTest) {
  TempDir dir;
  write_file(dir.path() / "a.ledger", "enter 10 1\nenter 10 2\n");
  write_file(dir.path() / "b.ledger", "leave 12 3\n");
  EXPECT_NONFATAL_FAILURE(read_hold_ledger(dir.path(), "a"), "a: pid 10 entered twice");
  EXPECT_NONFATAL_FAILURE(read_hold_ledger(dir.path(), "b"), "b: pid 12 left without entering");
}

TEST(HoldLedger, OverlappingHoldsFailTheTestAndTouchingOnesDoNot) {
  expect_no_overlapping_holds({{5, 9, "2"}, {0, 5, "1"}, {9, 12, "3"}}, "dut");
  EXPECT_NONFATAL_FAILURE(expect_no_overlapping_holds({{6, 9, "2"}, {0, 7, "1"}}, "dut"),
                          "dut: pid 2 entered while pid 1 held it");
}

TEST(Run, CapturesStdoutAndStderrApartAndTheExitStatus) {
  const auto result = run({"/bin/sh", "-c", "echo out; echo err >&2; exit 3"}, piped());
  EXPECT_EQ(result.exit_code, 3) << result;
  EXPECT_EQ(result.signal, 0) << result;
  EXPECT_EQ(result.out, "out\n") << result;
  EXPECT_EQ(result.err, "err\n") << result;
  EXPECT_EQ(result.output(), "out\nerr\n");
}

TEST(Run, ChildEndedBySignalGives128PlusItAndTheSignal) {
  const auto result = run({"/bin/sh", "-c", "kill -TERM $$"}, piped());
  EXPECT_EQ(result.exit_code, 128 + SIGTERM) << result;
  EXPECT_EQ(result.signal, SIGTERM) << result;
}

TEST(Run, EnvironmentSetsUnsetsAndDropsPrefixes) {
  ASSERT_EQ(::setenv("LOCKABLE_SUPPORT_TEST_DROPPED", "1", 1), 0);
  ASSERT_EQ(::setenv("LOCKABLE_SUPPORT_TEST_UNSET", "1", 1), 0);
  ASSERT_EQ(::setenv("SUPPORT_TEST_KEPT", "kept", 1), 0);
  auto options = piped();
  options.env = {{"SUPPORT_TEST_ADDED", "added"}, {"LOCKABLE_SUPPORT_TEST_UNSET", ""}};
  options.drop_env_prefixes = {"LOCKABLE_SUPPORT_TEST_D"};
  const auto result =
      run({"/bin/sh", "-c",
           "echo \"$SUPPORT_TEST_ADDED|$SUPPORT_TEST_KEPT|"
           "${LOCKABLE_SUPPORT_TEST_DROPPED-gone}|${LOCKABLE_SUPPORT_TEST_UNSET-gone}\""},
          options);
  EXPECT_EQ(result.out, "added|kept|gone|gone\n") << result;
}

TEST(Run, WorkingDirectoryAndOneFileForBothStreams) {
  const TempDir dir;
  ChildOptions options;
  options.cwd = dir.path();
  options.out = Stream::file(dir.path() / "log");
  options.err = Stream::same_as_stdout();
  const auto result = run({"/bin/sh", "-c", "pwd; echo to-stderr >&2"}, options);
  EXPECT_EQ(result.exit_code, 0) << result;
  EXPECT_EQ(read_text(dir.path() / "log"), fs::canonical(dir.path()).string() + "\nto-stderr\n");
  EXPECT_EQ(result.out, read_text(dir.path() / "log"));
  EXPECT_EQ(result.err, "");
}

TEST(Run, ProgramThatCannotStartThrowsNamingIt) {
  try {
    run({"/nonexistent/program"});
    FAIL() << "expected std::system_error";
  } catch (const std::system_error& error) {
    EXPECT_NE(std::string(error.what()).find("/nonexistent/program"), std::string::npos)
        << error.what();
  }
}

TEST(Child, TalksLinesThroughStdinAndStdout) {
  Child child({"/bin/sh", "-c", "read line; echo got-$line"});
  child.write_line("hello");
  EXPECT_EQ(child.read_line(30s), "got-hello");
  EXPECT_EQ(child.read_line(30s), std::nullopt);  // end of file
  EXPECT_EQ(child.wait(), 0);
}

TEST(Child, WaitPastTheGuardKillsTheChildAndThrowsWithItsOutput) {
  auto options = piped();
  Child child({"/bin/sh", "-c", "echo started; exec sleep 600"}, options);
  ASSERT_EQ(child.read_line(30s), "started");
  try {
    child.wait(50ms);
    FAIL() << "expected std::runtime_error";
  } catch (const std::runtime_error& error) {
    EXPECT_NE(std::string(error.what()).find("still ran after 50 ms; killed it"), std::string::npos)
        << error.what();
  }
  EXPECT_EQ(child.term_signal(), SIGKILL);
  EXPECT_EQ(child.wait(), 128 + SIGKILL);
}

TEST(Child, SignalReachesTheChild) {
  Child child({"/bin/sh", "-c",
               "trap 'echo trapped; exit 7' TERM; echo ready; "
               "while :; do sleep 0.05; done"});
  ASSERT_EQ(child.read_line(30s), "ready");
  child.send_signal(SIGTERM);
  EXPECT_EQ(child.read_line(30s), "trapped");
  EXPECT_EQ(child.wait(), 7);
}

TEST(Child, WaitForOutputThrowsWhenTheChildExitsWithoutPrintingIt) {
  const TempDir dir;
  ChildOptions options;
  options.out = Stream::file(dir.path() / "out");
  Child child({"/bin/sh", "-c", "echo something-else"}, options);
  try {
    child.wait_for_output("the-text");
    FAIL() << "expected std::runtime_error";
  } catch (const std::runtime_error& error) {
    EXPECT_NE(std::string(error.what()).find("exited with 0 before printing \"the-text\""),
              std::string::npos)
        << error.what();
    EXPECT_NE(std::string(error.what()).find("something-else"), std::string::npos) << error.what();
  }
}

TEST(Child, DestructorKillsAndReapsARunningChild) {
  pid_t pid = -1;
  {
    Child child({"/bin/sleep", "600"});
    pid = child.pid();
    ASSERT_EQ(::kill(pid, 0), 0);
  }
  // Reaped, not a zombie: the pid is gone.
  EXPECT_EQ(::kill(pid, 0), -1);
  EXPECT_EQ(errno, ESRCH);
}

TEST(Files, TempDirRemovesItselfAlsoWithReadOnlyFolders) {
  fs::path path;
  {
    const TempDir dir;
    path = dir.path();
    fs::create_directories(path / "ro" / "sub");
    write_file(path / "ro" / "sub" / "file", "x");
    fs::permissions(path / "ro", fs::perms::owner_read | fs::perms::owner_exec);
  }
  EXPECT_FALSE(fs::exists(path));
}

TEST(Files, WriteFileReplacesAndReadTextReadsBack) {
  const TempDir dir;
  write_file(dir.path() / "f", "first");
  write_file(dir.path() / "f", std::string("sec\0ond", 7));
  EXPECT_EQ(read_text(dir.path() / "f"), std::string("sec\0ond", 7));
  EXPECT_FALSE(fs::exists(dir.path() / "f.tmp"));
  EXPECT_EQ(read_text(dir.path() / "missing"), "");
}

TEST(Files, WriteFileIntoAMissingFolderThrowsNamingIt) {
  const TempDir dir;
  try {
    write_file(dir.path() / "missing" / "f", "x");
    FAIL() << "expected std::runtime_error";
  } catch (const std::runtime_error& error) {
    EXPECT_NE(std::string(error.what()).find((dir.path() / "missing").string()), std::string::npos)
        << error.what();
  }
}

TEST(Files, IsFlockedSeesAnotherOpenFilesLock) {
  const TempDir dir;
  const auto path = dir.path() / "lock";
  EXPECT_FALSE(is_flocked(path));  // missing
  write_file(path, "");
  EXPECT_FALSE(is_flocked(path));
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX), 0);
  EXPECT_TRUE(is_flocked(path));
  ::close(fd);
  EXPECT_FALSE(is_flocked(path));
}

}  // namespace
}  // namespace lockable::test
