// How Lockable waits: never for itself, cancellable, with progress and reload messages that say
// what is true. Real lock folder and resources files in a temp dir.

#include <lockable/lockable.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <mutex>
#include <thread>

#include "lockable/test/files.hpp"
#include "lockable/test/held_elsewhere.hpp"

namespace lockable {
namespace {

using namespace std::chrono_literals;
using test::HeldElsewhere;
using test::TempDir;

Json device(const std::string& id, Json extra = Json::object()) {
  Json json{{"id", id}, {"online", true}, {"hostname", "test-host"}};
  json.update(extra);
  return json;
}

class Waiting : public ::testing::Test {
 protected:
  TempDir dir_;
  std::filesystem::path resources_ = dir_.path() / "resources.json";
  std::filesystem::path locks_ = dir_.path() / "locks";
  std::mutex log_mutex_;
  std::vector<std::string> log_;

  void write_resources(const Json& list) { test::write_file(resources_, list.dump(2)); }

  Options options() {
    Options options;
    options.resources = resources_;
    options.lock_folder = locks_;
    options.hostname = "test-host";
    options.default_timeout = Seconds(30);
    options.progress_interval = Seconds(0.05);
    options.log = [this](const std::string& line) {
      std::lock_guard<std::mutex> guard(log_mutex_);
      log_.push_back(line);
    };
    return options;
  }

  std::vector<std::string> log_lines() {
    std::lock_guard<std::mutex> guard(log_mutex_);
    return log_;
  }

  std::size_t count_lines(const std::string& needle) {
    const auto lines = log_lines();
    return static_cast<std::size_t>(std::count_if(lines.begin(), lines.end(), [&](const auto& l) {
      return l.find(needle) != std::string::npos;
    }));
  }
};

TEST_F(Waiting, RequestOnlyThisThreadCanServeFailsAtOnceNamingTheEarlierAllocation) {
  write_resources(Json::array({device("psu-1", {{"type", "psu"}})}));
  Lockable lockable(options());
  const auto program_wide = lockable.lock("type=psu");
  const auto started = std::chrono::steady_clock::now();
  try {
    lockable.lock("type=psu", Seconds(20));
    FAIL() << "expected NoMatchError";
  } catch (const NoMatchError& error) {
    EXPECT_LT(std::chrono::steady_clock::now() - started, 5s) << "it waited for itself";
    const std::string what = error.what();
    EXPECT_NE(what.find("wait for itself"), std::string::npos) << what;
    ASSERT_EQ(error.reasons().size(), 1u);
    EXPECT_NE(error.reasons()[0].find("psu-1: held by this very thread"), std::string::npos);
    EXPECT_NE(error.reasons()[0].find(program_wide.alloc_id()), std::string::npos);
  }
  // It never queued: nothing is left in the queue folder.
  for (const auto& entry : std::filesystem::directory_iterator(locks_ / ".lockable-queue")) {
    ADD_FAILURE() << "left in the queue: " << entry.path();
  }
}

TEST_F(Waiting, SecondDeviceIsServedWhenThisThreadHoldsTheFirst) {
  write_resources(
      Json::array({device("psu-1", {{"type", "psu"}}), device("psu-2", {{"type", "psu"}})}));
  Lockable lockable(options());
  const auto first = lockable.lock("type=psu");
  const auto second = lockable.lock("type=psu", Seconds(5));
  EXPECT_NE(first.resource_id(), second.resource_id());
}

TEST_F(Waiting, OwnDeviceCountsAgainOnceReleased) {
  write_resources(Json::array({device("psu-1", {{"type", "psu"}})}));
  Lockable lockable(options());
  auto first = lockable.lock("type=psu");
  first.unlock();
  EXPECT_EQ(lockable.lock("type=psu", Seconds(5)).resource_id(), "psu-1");
}

TEST_F(Waiting, LockManyWhoseSecondPartOnlyThisThreadHoldsFailsAtOnce) {
  write_resources(Json::array({device("a", {{"kind", "a"}}), device("b", {{"kind", "b"}})}));
  Lockable lockable(options());
  const auto b = lockable.lock("kind=b");
  EXPECT_THROW(lockable.lock_many({Requirements::parse("kind=a"), Requirements::parse("kind=b")},
                                  Seconds(20)),
               NoMatchError);
  // The failed request left "a" free.
  EXPECT_EQ(lockable.lock("kind=a", Seconds(0)).resource_id(), "a");
}

TEST_F(Waiting, DeviceOfAnotherThreadOfThisProcessIsWaitedFor) {
  write_resources(Json::array({device("psu-1", {{"type", "psu"}})}));
  Lockable lockable(options());
  std::promise<void> locked;
  std::promise<void> release;
  std::thread other([&] {
    auto held = lockable.lock("type=psu");
    locked.set_value();
    release.get_future().wait();
  });
  locked.get_future().wait();
  auto waiter =
      std::async(std::launch::async, [&] { return lockable.lock("type=psu", Seconds(20)); });
  EXPECT_EQ(waiter.wait_for(300ms), std::future_status::timeout) << "it did not wait";
  release.set_value();
  other.join();
  EXPECT_EQ(waiter.get().resource_id(), "psu-1");
}

TEST_F(Waiting, CancelEndsAWaitAndLeavesTheQueue) {
  write_resources(Json::array({device("dut-1")}));
  Lockable lockable(options());
  HeldElsewhere held(lockable, "");
  auto waiter = std::async(std::launch::async, [&] { return lockable.lock("", Seconds(60)); });
  // Wait until the waiter is queued (its ticket is published before it first sleeps).
  const auto queue = locks_ / ".lockable-queue";
  for (int i = 0; i < 200 && std::filesystem::is_empty(queue); ++i)
    std::this_thread::sleep_for(10ms);
  ASSERT_FALSE(std::filesystem::is_empty(queue));
  const auto cancelled_at = std::chrono::steady_clock::now();
  lockable.cancel();
  ASSERT_EQ(waiter.wait_for(10s), std::future_status::ready);
  EXPECT_LT(std::chrono::steady_clock::now() - cancelled_at, 5s);
  EXPECT_THROW(waiter.get(), CancelledError);
  EXPECT_TRUE(std::filesystem::is_empty(queue)) << "the cancelled waiter left its ticket";
  // Cancelling is for good: a request racing with it cannot slip through.
  EXPECT_THROW(lockable.lock("", Seconds(0.1)), CancelledError);
}

TEST_F(Waiting, InvalidResourcesWhileWaitingAreReportedOnceAndAgainWhenValid) {
  write_resources(Json::array({device("dut-1")}));
  Lockable lockable(options());
  HeldElsewhere held(lockable, "");
  auto waiter = std::async(std::launch::async, [&] { return lockable.lock("", Seconds(30)); });
  std::this_thread::sleep_for(100ms);
  test::write_file(resources_, "[{\"id\": ");  // an editor half-way through a save
  // Many wake-ups while it stays invalid: touching the file wakes nobody, so bump it repeatedly.
  for (int i = 0; i < 10; ++i) {
    test::write_file(resources_, "[{\"id\": " + std::string(static_cast<std::size_t>(i), ' '));
    std::this_thread::sleep_for(60ms);
  }
  test::write_file(resources_, "[{\"id\": ");
  std::this_thread::sleep_for(300ms);
  write_resources(Json::array({device("dut-1")}));
  std::this_thread::sleep_for(300ms);
  held.unlock();
  EXPECT_EQ(waiter.get().resource_id(), "dut-1");
  EXPECT_GE(count_lines("keeping the previous resources"), 1u);
  // Each distinct problem once (the texts differ by position), never once per wake-up.
  EXPECT_LE(count_lines("keeping the previous resources"), 12u);
  EXPECT_EQ(count_lines("is valid again"), 1u);
}

TEST_F(Waiting, SameInvalidResourcesAreReportedOnlyOnce) {
  write_resources(Json::array({device("dut-1")}));
  Lockable lockable(options());
  HeldElsewhere held(lockable, "");
  auto waiter = std::async(std::launch::async, [&] { return lockable.lock("", Seconds(30)); });
  std::this_thread::sleep_for(100ms);
  for (int i = 0; i < 8; ++i) {  // the same broken text written again and again
    test::write_file(resources_, "[{\"id\": \"x\"");
    std::this_thread::sleep_for(60ms);
  }
  write_resources(Json::array({device("dut-1")}));
  std::this_thread::sleep_for(200ms);
  held.unlock();
  EXPECT_EQ(waiter.get().resource_id(), "dut-1");
  EXPECT_EQ(count_lines("keeping the previous resources"), 1u);
}

TEST_F(Waiting, ProgressLineCountsHeldDevicesAndNeverSaysAllBusyOfAFreeOne) {
  write_resources(Json::array({device("dut-1")}));
  Lockable lockable(options());
  HeldElsewhere held(lockable, "");
  EXPECT_THROW(lockable.lock("", Seconds(0.3)), TimeoutError);
  const auto lines = log_lines();
  ASSERT_FALSE(lines.empty());
  const std::string& line = lines.front();
  EXPECT_NE(line.find("1 matching, 1 held: dut-1: held by pid"), std::string::npos) << line;
  EXPECT_EQ(line.find("all busy"), std::string::npos) << line;
}

TEST_F(Waiting, NoMatchNamesOnlyTheImplicitFiltersReallyAdded) {
  write_resources(Json::array({device("dut-1")}));
  Lockable lockable(options());
  try {
    lockable.lock(R"({"online": false})");
    FAIL() << "expected NoMatchError";
  } catch (const NoMatchError& error) {
    const std::string what = error.what();
    EXPECT_EQ(what.find("online=true"), std::string::npos) << what;
    EXPECT_NE(what.find("implicit filter hostname=test-host"), std::string::npos) << what;
  }
  try {
    lockable.lock(R"({"online": false, "hostname": null})");
    FAIL() << "expected NoMatchError";
  } catch (const NoMatchError& error) {
    EXPECT_EQ(std::string(error.what()).find("implicit"), std::string::npos) << error.what();
  }
}

TEST_F(Waiting, BadOptionChangesNothingOnDisk) {
  write_resources(Json::array({device("dut-1")}));
  auto bad = options();
  bad.default_timeout = Seconds(-1);
  EXPECT_THROW(Lockable{bad}, ConfigError);
  bad = options();
  bad.progress_interval = Seconds(0);
  EXPECT_THROW(Lockable{bad}, ConfigError);
  EXPECT_FALSE(std::filesystem::exists(locks_)) << "a rejected option created the lock folder";
}

}  // namespace
}  // namespace lockable
