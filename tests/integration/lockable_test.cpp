// Lockable end to end: real lock folder, real resources files, real child processes.

#include <lockable/lockable.hpp>

#include <gtest/gtest.h>

#include <sys/stat.h>

#include <atomic>
#include <mutex>
#include <set>
#include <thread>

#include "lockable/test/case_name.hpp"
#include "lockable/test/child.hpp"
#include "lockable/test/files.hpp"

namespace lockable {
namespace {

using namespace std::chrono_literals;
using test::Child;
using test::TempDir;

Json device(const std::string& id, bool online = true, Json extra = Json::object()) {
  Json json{{"id", id}, {"online", online}, {"hostname", "test-host"}};
  json.update(extra);
  return json;
}

class LockableIntegration : public ::testing::Test {
 protected:
  TempDir dir_;
  std::filesystem::path resources_ = dir_.path() / "resources.json";
  std::filesystem::path locks_ = dir_.path() / "locks";
  std::vector<std::string> log_;
  std::mutex log_mutex_;

  void write_resources(const Json& list) { test::write_file(resources_, list.dump(2)); }

  Options options() {
    Options options;
    options.resources = resources_;
    options.lock_folder = locks_;
    options.hostname = "test-host";
    options.default_timeout = Seconds(60);
    options.log = [this](const std::string& line) {
      std::lock_guard<std::mutex> guard(log_mutex_);
      log_.push_back(line);
    };
    return options;
  }

  std::unique_ptr<Child> holder(const std::vector<std::string>& requirements) {
    std::vector<std::string> argv{LOCKABLE_TEST_HELPER, "hold", resources_.string(),
                                  locks_.string()};
    argv.insert(argv.end(), requirements.begin(), requirements.end());
    return std::make_unique<Child>(argv);
  }
};

TEST_F(LockableIntegration, KilledHolderFreesItsDeviceForAWaiter) {
  write_resources(Json::array({device("dut-1")}));
  auto child = holder({""});
  ASSERT_EQ(child->read_line(20s), "locked dut-1");
  Lockable lockable(options());
  std::thread killer([&] {
    std::this_thread::sleep_for(100ms);
    child->kill_now();
  });
  const auto allocation = lockable.lock("", Seconds(30));
  killer.join();
  EXPECT_EQ(allocation.resource_id(), "dut-1");
  EXPECT_EQ(child->wait(), 128 + SIGKILL);
}

TEST_F(LockableIntegration, PythonHolderMakesUsWaitAndTimeoutNamesItsPid) {
  write_resources(Json::array({device("dut-1")}));
  std::filesystem::create_directories(locks_);
  Child python(
      {LOCKABLE_PYTHON, LOCKABLE_PYTHON_PID_LOCK, "hold", (locks_ / "dut-1.pid").string()});
  ASSERT_EQ(python.read_line(10s), "locked");
  Lockable lockable(options());
  try {
    lockable.lock("", Seconds(0.2));
    FAIL() << "expected TimeoutError";
  } catch (const TimeoutError& error) {
    ASSERT_EQ(error.busy().size(), 1u);
    EXPECT_EQ(error.busy()[0], "dut-1: held by pid " + std::to_string(python.pid()));
    EXPECT_NE(std::string(error.what()).find("within 0.200 s"), std::string::npos) << error.what();
  }
  python.write_line("");
  EXPECT_EQ(python.read_line(10s), "released");
  EXPECT_EQ(lockable.lock("", Seconds(10)).resource_id(), "dut-1");
}

TEST_F(LockableIntegration, TimeoutNamesOurHolderWithAllocationId) {
  write_resources(Json::array({device("dut-1")}));
  Lockable lockable(options());
  // Held by another thread: the same thread would be told at once that it waits for itself.
  Allocation held;
  std::thread([&] { held = lockable.lock(""); }).join();
  try {
    lockable.lock("id=dut-1", Seconds(0));
    FAIL() << "expected TimeoutError";
  } catch (const TimeoutError& error) {
    ASSERT_EQ(error.busy().size(), 1u);
    EXPECT_NE(error.busy()[0].find("held by pid " + std::to_string(::getpid()) +
                                   " on test-host, allocation " + held.alloc_id()),
              std::string::npos)
        << error.busy()[0];
    EXPECT_NE(std::string(error.what()).find("{\"id\":\"dut-1\"}"), std::string::npos)
        << error.what();
  }
}

TEST_F(LockableIntegration, ThreadsAndTwoLockablesNeverShareADevice) {
  write_resources(Json::array({device("dut-1"), device("dut-2")}));
  Lockable first(options());
  Lockable second(options());
  std::mutex mutex;
  std::set<std::string> in_use;
  std::atomic<int> overlaps{0};
  std::atomic<int> grants{0};
  auto worker = [&](Lockable& lockable) {
    for (int round = 0; round < 60; ++round) {
      auto allocation = lockable.lock("", Seconds(60));
      {
        std::lock_guard<std::mutex> guard(mutex);
        if (!in_use.insert(allocation.resource_id()).second) ++overlaps;
      }
      std::this_thread::sleep_for(100us);
      {
        std::lock_guard<std::mutex> guard(mutex);
        in_use.erase(allocation.resource_id());
      }
      ++grants;
    }
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i)
    threads.emplace_back(worker, i % 2 == 0 ? std::ref(first) : std::ref(second));
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(overlaps, 0);
  EXPECT_EQ(grants, 240);
}

TEST_F(LockableIntegration, LockManyWithOppositeOrdersInTwoProcessesCompletes) {
  write_resources(
      Json::array({device("a", true, {{"kind", "a"}}), device("b", true, {{"kind", "b"}})}));
  Child forward({LOCKABLE_TEST_HELPER, "many", resources_.string(), locks_.string(), "100",
                 "kind=a", "kind=b"});
  Child backward({LOCKABLE_TEST_HELPER, "many", resources_.string(), locks_.string(), "100",
                  "kind=b", "kind=a"});
  EXPECT_EQ(forward.read_line(60s), "done");
  EXPECT_EQ(backward.read_line(60s), "done");
  EXPECT_EQ(forward.wait(), 0);
  EXPECT_EQ(backward.wait(), 0);
}

TEST_F(LockableIntegration, LockManyGivesEachRequirementItsOwnMatch) {
  // A matches X and Y, B matches only X: B must get X, A must get Y.
  write_resources(Json::array(
      {device("x", true, {{"a", true}, {"b", true}}), device("y", true, {{"a", true}})}));
  Lockable lockable(options());
  const auto allocations =
      lockable.lock_many({Requirements::parse("a=true"), Requirements::parse("b=true")});
  ASSERT_EQ(allocations.size(), 2u);
  EXPECT_EQ(allocations[0].resource_id(), "y");
  EXPECT_EQ(allocations[1].resource_id(), "x");
}

TEST_F(LockableIntegration, LockManyNeedingMoreDevicesThanExistFailsAtOnce) {
  write_resources(Json::array({device("x")}));
  Lockable lockable(options());
  try {
    lockable.lock_many({Requirements(), Requirements()}, Seconds(60));
    FAIL() << "expected NoMatchError";
  } catch (const NoMatchError& error) {
    EXPECT_NE(std::string(error.what()).find("need 2 distinct devices"), std::string::npos)
        << error.what();
  }
}

TEST_F(LockableIntegration, LockManyTakesNothingWhenOneDeviceIsBusy) {
  write_resources(Json::array({device("x", true, {{"k", "x"}}), device("y", true, {{"k", "y"}})}));
  auto child = holder({"k=y"});
  ASSERT_EQ(child->read_line(20s), "locked y");
  Lockable lockable(options());
  EXPECT_THROW(
      lockable.lock_many({Requirements::parse("k=x"), Requirements::parse("k=y")}, Seconds(0.1)),
      TimeoutError);
  // x was not kept: it can be locked at once.
  EXPECT_EQ(lockable.lock("k=x", Seconds(0)).resource_id(), "x");
}

TEST_F(LockableIntegration, DeviceBroughtOnlineDuringTheWaitGetsUsed) {
  write_resources(Json::array({device("dut-1"), device("dut-2", false)}));
  auto child = holder({"id=dut-1"});
  ASSERT_EQ(child->read_line(20s), "locked dut-1");
  Lockable lockable(options());
  std::thread editor([&] {
    std::this_thread::sleep_for(300ms);
    write_resources(Json::array({device("dut-1"), device("dut-2", true)}));
  });
  const auto allocation = lockable.lock("", Seconds(30));
  editor.join();
  EXPECT_EQ(allocation.resource_id(), "dut-2");
}

TEST_F(LockableIntegration, NoMatchWhenTheFileChangesSoThatNothingMatches) {
  write_resources(Json::array({device("dut-1")}));
  auto child = holder({""});
  ASSERT_EQ(child->read_line(20s), "locked dut-1");
  Lockable lockable(options());
  std::thread editor([&] {
    std::this_thread::sleep_for(300ms);
    write_resources(Json::array({device("dut-1", false)}));
  });
  try {
    lockable.lock("", Seconds(30));
    editor.join();
    FAIL() << "expected NoMatchError";
  } catch (const NoMatchError& error) {
    editor.join();
    EXPECT_NE(std::string(error.what()).find(resources_.string() + ": no resource matches"),
              std::string::npos)
        << error.what();
    ASSERT_EQ(error.reasons().size(), 1u);
    EXPECT_NE(error.reasons()[0].find("dut-1"), std::string::npos) << error.reasons()[0];
  }
}

TEST_F(LockableIntegration, NoMatchIsImmediateAndExplainsEachDevice) {
  write_resources(Json::array({device("dut-1", false), device("dut-2", true, {{"os", "ios"}})}));
  Lockable lockable(options());
  try {
    lockable.lock("os=android", Seconds(60));
    FAIL() << "expected NoMatchError";
  } catch (const NoMatchError& error) {
    EXPECT_EQ(error.reasons().size(), 2u) << error.what();
    EXPECT_NE(std::string(error.what()).find("{\"os\":\"android\"}"), std::string::npos)
        << error.what();
  }
}

TEST_F(LockableIntegration, WaiterLogsProgressNamingTheHolder) {
  write_resources(Json::array({device("dut-1")}));
  auto child = holder({""});
  ASSERT_EQ(child->read_line(20s), "locked dut-1");
  auto opts = options();
  opts.progress_interval = Seconds(0.05);
  Lockable lockable(std::move(opts));
  EXPECT_THROW(lockable.lock("", Seconds(0.3)), TimeoutError);
  std::lock_guard<std::mutex> guard(log_mutex_);
  ASSERT_FALSE(log_.empty());
  EXPECT_NE(log_[0].find("dut-1: held by pid " + std::to_string(child->pid()) + " on test-host"),
            std::string::npos)
      << log_[0];
  EXPECT_NE(log_[0].find(" left"), std::string::npos) << log_[0];
}

TEST_F(LockableIntegration, StatusShowsFreeBusyAndOffline) {
  write_resources(Json::array({device("free"), device("busy"), device("off", false)}));
  Lockable lockable(options());
  const auto held = lockable.lock("id=busy");
  const auto status = lockable.status();
  ASSERT_EQ(status.size(), 3u);
  EXPECT_EQ(status[0].state, ResourceStatus::State::kFree);
  EXPECT_EQ(status[1].state, ResourceStatus::State::kBusy);
  ASSERT_TRUE(status[1].holder.has_value());
  EXPECT_EQ(status[1].holder->alloc_id, held.alloc_id());
  EXPECT_EQ(status[2].state, ResourceStatus::State::kOffline);
}

// ---- one unusable lock file never blocks the other devices -------------------------------------

namespace fs = std::filesystem;

// What sits where a lock folder entry should be.
enum class Entry { kFifo, kSymlink, kDirectory };

void make_entry(const fs::path& path, Entry entry) {
  fs::create_directories(path.parent_path());
  switch (entry) {
    case Entry::kFifo:
      ASSERT_EQ(::mkfifo(path.c_str(), 0666), 0) << path;
      break;
    case Entry::kSymlink:
      test::write_file(path.string() + ".target", "");
      fs::create_symlink(path.string() + ".target", path);
      break;
    case Entry::kDirectory:
      fs::create_directory(path);
      break;
  }
}

struct UnusableCase {
  std::string name;
  std::string file;  // relative to the lock folder
  Entry entry;
  std::string says;  // in the warning, after the file's path
};

void PrintTo(const UnusableCase& row, std::ostream* out) { *out << row.name; }

class UnusableEntry : public LockableIntegration,
                      public ::testing::WithParamInterface<UnusableCase> {};

TEST_P(UnusableEntry, IsSkippedWithOneWarningAndAnotherMatchIsLocked) {
  const auto& row = GetParam();
  write_resources(Json::array({device("d1"), device("d2")}));
  make_entry(locks_ / row.file, row.entry);
  test::ChildOptions child_options;
  child_options.err = test::Stream::pipe();
  // A child with a guard: a FIFO used to block open() for ever.
  const auto result = test::run(
      {LOCKABLE_TEST_HELPER, "hold", resources_.string(), locks_.string(), ""}, child_options, 30s);
  EXPECT_EQ(result.exit_code, 0) << result;
  EXPECT_EQ(result.out, "locked d2\nreleased\n") << result;
  const std::string warning = (locks_ / row.file).string() + " is " + row.says;
  const auto first = result.err.find(warning);
  EXPECT_NE(first, std::string::npos) << result;
  EXPECT_EQ(result.err.find(warning, first + 1), std::string::npos) << "warned twice\n" << result;
  EXPECT_NE(result.err.find("remove it"), std::string::npos) << result;
  EXPECT_FALSE(test::is_flocked(locks_ / "d1.pid"));
}

INSTANTIATE_TEST_SUITE_P(
    LockFolder, UnusableEntry,
    ::testing::Values(
        UnusableCase{"FifoAtPidFile", "d1.pid", Entry::kFifo, "a FIFO"},
        UnusableCase{"FifoAtDetailsFile", "d1.pid.json", Entry::kFifo, "a FIFO"},
        UnusableCase{"SymlinkAtPidFile", "d1.pid", Entry::kSymlink, "a symbolic link"},
        UnusableCase{"DirectoryAtPidFile", "d1.pid", Entry::kDirectory, "a directory"},
        UnusableCase{"DirectoryAtDetailsFile", "d1.pid.json", Entry::kDirectory, "a directory"}),
    test::CaseName());

TEST_F(LockableIntegration, FailsOnlyWhenNoMatchIsUsableNamingEach) {
  write_resources(Json::array({device("d1"), device("d2")}));
  make_entry(locks_ / "d1.pid", Entry::kFifo);
  make_entry(locks_ / "d2.pid", Entry::kDirectory);
  test::ChildOptions child_options;
  child_options.err = test::Stream::pipe();
  const auto result = test::run(
      {LOCKABLE_TEST_HELPER, "hold", resources_.string(), locks_.string(), ""}, child_options, 30s);
  EXPECT_EQ(result.exit_code, 1) << result;
  EXPECT_NE(result.out.find("error: no usable device"), std::string::npos) << result;
  EXPECT_NE(result.out.find((locks_ / "d1.pid").string() + " is a FIFO"), std::string::npos)
      << result;
  EXPECT_NE(result.out.find((locks_ / "d2.pid").string() + " is a directory"), std::string::npos)
      << result;
}

TEST_F(LockableIntegration, FifoTicketInTheQueueNeverBlocksALock) {
  write_resources(Json::array({device("d1")}));
  make_entry(locks_ / ".lockable-queue" / "00000000000000000001-1-0.ticket", Entry::kFifo);
  const auto result =
      test::run({LOCKABLE_TEST_HELPER, "hold", resources_.string(), locks_.string(), ""}, {}, 30s);
  EXPECT_EQ(result.out, "locked d1\nreleased\n") << result;
}

TEST_F(LockableIntegration, UnusableDeviceWarnsOnceWhileWaitingForAnother) {
  write_resources(Json::array({device("d1"), device("d2")}));
  make_entry(locks_ / "d1.pid", Entry::kSymlink);
  auto held = holder({"id=d2"});
  ASSERT_EQ(held->read_line(10s), "locked d2");
  std::thread release([&] {
    std::this_thread::sleep_for(1500ms);  // several wake-ups of the waiter below
    held->write_line("");
  });
  Lockable lockable(options());
  std::string locked;
  try {
    locked = lockable.lock("").resource_id();
  } catch (const std::exception& error) {
    ADD_FAILURE() << error.what();
  }
  release.join();
  EXPECT_EQ(locked, "d2");
  int warnings = 0;
  for (const auto& line : log_) {
    if (line.find("skipping d1") != std::string::npos) ++warnings;
  }
  EXPECT_EQ(warnings, 1);
}

}  // namespace
}  // namespace lockable
