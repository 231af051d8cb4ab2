// Lockable's waiting loop against fakes: a provider that is slow to load, a store that is
// unavailable for a moment. The in-memory backend stands in for a real store.

#include <lockable/lockable.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include "lockable/test/held_elsewhere.hpp"
#include "lockable/test/memory_backend.hpp"

namespace lockable {
namespace {

using namespace std::chrono_literals;

Json devices() {
  return Json::array({{{"id", "dut-1"}, {"online", true}, {"hostname", "test-host"}}});
}

// A provider whose load() blocks on one chosen thread until the test lets it go: a remote
// inventory that hangs for that caller. Other threads' loads go through.
class GatedProvider final : public ResourceProvider {
 public:
  Resources load() override {
    std::unique_lock<std::mutex> lock(mutex_);
    if (armed_ && std::this_thread::get_id() == blocked_thread_) {
      ++blocked_loads_;
      changed_cv_.notify_all();
      open_cv_.wait(lock, [this] { return !armed_; });
    }
    return inner_->load();
  }
  bool changed() override { return true; }  // conservative: every check reloads
  std::string describe() const override { return "gated provider"; }

  // Blocks every later load() called on this thread.
  void arm_for_this_thread() {
    std::lock_guard<std::mutex> lock(mutex_);
    armed_ = true;
    blocked_thread_ = std::this_thread::get_id();
  }
  void open() {
    std::lock_guard<std::mutex> lock(mutex_);
    armed_ = false;
    open_cv_.notify_all();
  }
  bool wait_for_blocked_load(std::chrono::milliseconds limit) {
    std::unique_lock<std::mutex> lock(mutex_);
    return changed_cv_.wait_for(lock, limit, [this] { return blocked_loads_ > 0; });
  }

 private:
  std::unique_ptr<ResourceProvider> inner_ = make_list_provider(devices());
  std::mutex mutex_;
  std::condition_variable open_cv_;
  std::condition_variable changed_cv_;
  bool armed_ = false;
  std::thread::id blocked_thread_;
  int blocked_loads_ = 0;
};

Options quiet_options() {
  Options options;
  options.hostname = "test-host";
  options.progress_interval = Seconds(0.05);
  options.log = [](const std::string&) {};
  return options;
}

TEST(LockableCoreTest, SlowProviderLoadDoesNotStallAWaiterThatHasAList) {
  auto provider = std::make_unique<GatedProvider>();
  GatedProvider* gate = provider.get();
  Lockable lockable(quiet_options(), std::move(provider), std::make_unique<test::MemoryBackend>());

  test::HeldElsewhere holder(lockable, "");
  auto waiter = std::async(std::launch::async, [&] { return lockable.lock("", Seconds(30)); });
  std::this_thread::sleep_for(100ms);  // the waiter has its list and waits

  // A new request starts a load that hangs.
  auto newcomer = std::async(std::launch::async, [&] {
    gate->arm_for_this_thread();
    try {
      return lockable.lock("", Seconds(30)).resource_id();
    } catch (const Error& error) {
      return std::string(error.what());
    }
  });
  // Opens the gate before the futures are waited for, also when an assertion returns early.
  struct OpenOnExit {
    GatedProvider* gate;
    ~OpenOnExit() { gate->open(); }
  } open_on_exit{gate};
  ASSERT_TRUE(gate->wait_for_blocked_load(5000ms));
  holder.unlock();
  // The waiter gets the device while the newcomer's load still hangs.
  ASSERT_EQ(waiter.wait_for(5s), std::future_status::ready) << "the waiter stalled behind the load";
  auto allocation = waiter.get();
  EXPECT_EQ(allocation.resource_id(), "dut-1");
  EXPECT_EQ(newcomer.wait_for(0s), std::future_status::timeout);
  allocation.unlock();
  gate->open();
  EXPECT_EQ(newcomer.get(), "dut-1");
}

// The in-memory store behind a connection that fails: the first `failures` calls of try_lock
// throw TemporarilyUnavailableError (a 503), or BackendError when `permanent`.
class FlakyBackend final : public LockBackend {
 public:
  FlakyBackend(int failures, bool permanent) : failures_(failures), permanent_(permanent) {}
  std::unique_ptr<HeldLock> try_lock(const Resource& resource, const HolderInfo& holder) override {
    if (calls_++ < failures_) {
      if (permanent_) throw BackendError("store at 127.0.0.1:9 refused the credentials");
      throw TemporarilyUnavailableError("store at 127.0.0.1:9 answered 503");
    }
    return inner_.try_lock(resource, holder);
  }
  void wait_for_change(std::chrono::steady_clock::time_point deadline) override {
    inner_.wait_for_change(deadline);
  }
  std::unique_ptr<QueueTicket> enqueue(const std::vector<std::string>& ids,
                                       const HolderInfo& waiter) override {
    return inner_.enqueue(ids, waiter);
  }
  std::optional<HolderInfo> holder_of(const std::string& id) override {
    return inner_.holder_of(id);
  }
  std::string describe() const override { return "flaky store"; }
  int calls() const { return calls_; }

 private:
  test::MemoryBackend inner_;
  int failures_;
  bool permanent_;
  std::atomic<int> calls_{0};
};

struct Logged {
  std::mutex mutex;
  std::vector<std::string> lines;
  Options options() {
    Options options = quiet_options();
    options.log = [this](const std::string& line) {
      std::lock_guard<std::mutex> guard(mutex);
      lines.push_back(line);
    };
    return options;
  }
};

TEST(LockableCoreTest, TemporarilyUnavailableStoreIsRetriedWithBackoffAndReported) {
  Logged logged;
  auto backend = std::make_unique<FlakyBackend>(3, false);
  FlakyBackend* flaky = backend.get();
  Lockable lockable(logged.options(), make_list_provider(devices()), std::move(backend));
  const auto allocation = lockable.lock("", Seconds(30));
  EXPECT_EQ(allocation.resource_id(), "dut-1");
  EXPECT_EQ(flaky->calls(), 4);
  ASSERT_EQ(logged.lines.size(), 3u);
  EXPECT_NE(logged.lines[0].find("flaky store is unavailable for a moment (store at "
                                 "127.0.0.1:9 answered 503); retry 1 in"),
            std::string::npos)
      << logged.lines[0];
  EXPECT_NE(logged.lines[2].find("retry 3 in"), std::string::npos) << logged.lines[2];
}

TEST(LockableCoreTest, StoreUnavailableUntilTheTimeoutIsATimeoutNamingTheStoreError) {
  Lockable lockable(quiet_options(), make_list_provider(devices()),
                    std::make_unique<FlakyBackend>(1000000, false));
  try {
    lockable.lock("", Seconds(0.3));
    FAIL() << "expected TimeoutError";
  } catch (const TimeoutError& error) {
    EXPECT_NE(std::string(error.what())
                  .find("stayed unavailable (store at 127.0.0.1:9 answered "
                        "503)"),
              std::string::npos)
        << error.what();
  }
}

TEST(LockableCoreTest, PermanentStoreErrorEndsTheWaitAtOnce) {
  auto backend = std::make_unique<FlakyBackend>(1000000, true);
  FlakyBackend* flaky = backend.get();
  Lockable lockable(quiet_options(), make_list_provider(devices()), std::move(backend));
  EXPECT_THROW(lockable.lock("", Seconds(30)), BackendError);
  EXPECT_EQ(flaky->calls(), 1);
}

TEST(LockableCoreTest, CancelEndsABackoffSleep) {
  Lockable lockable(quiet_options(), make_list_provider(devices()),
                    std::make_unique<FlakyBackend>(1000000, false));
  auto waiter = std::async(std::launch::async, [&] { return lockable.lock("", Seconds(60)); });
  std::this_thread::sleep_for(200ms);
  lockable.cancel();
  ASSERT_EQ(waiter.wait_for(10s), std::future_status::ready);
  EXPECT_THROW(waiter.get(), CancelledError);
}

// The in-memory store, counting how the waiting loop and status() ask for holders: one
// holders_of() call is one round trip to a remote store, each holder_of() call another one.
class CountingBackend final : public LockBackend {
 public:
  explicit CountingBackend(const test::MemoryBackend& store) : inner_(store) {}
  std::unique_ptr<HeldLock> try_lock(const Resource& resource, const HolderInfo& holder) override {
    return inner_.try_lock(resource, holder);
  }
  void wait_for_change(std::chrono::steady_clock::time_point deadline) override {
    inner_.wait_for_change(deadline);
  }
  std::unique_ptr<QueueTicket> enqueue(const std::vector<std::string>& ids,
                                       const HolderInfo& waiter) override {
    return inner_.enqueue(ids, waiter);
  }
  std::optional<HolderInfo> holder_of(const std::string& id) override {
    ++holder_of_calls;
    return inner_.holder_of(id);
  }
  std::vector<std::optional<HolderInfo>> holders_of(const std::vector<std::string>& ids) override {
    std::lock_guard<std::mutex> guard(mutex_);
    holders_of_ids.push_back(ids);
    std::vector<std::optional<HolderInfo>> holders;
    for (const auto& id : ids) holders.push_back(inner_.holder_of(id));
    return holders;
  }
  std::string describe() const override { return "counting store"; }

  std::atomic<int> holder_of_calls{0};
  std::vector<std::vector<std::string>> holders_of_ids;  // the ids of each holders_of() call

 private:
  test::MemoryBackend inner_;
  std::mutex mutex_;
};

Json three_devices() {
  Json list = Json::array();
  for (const char* id : {"dut-1", "dut-2", "dut-3"}) {
    list.push_back({{"id", id}, {"online", true}, {"hostname", "test-host"}});
  }
  return list;
}

// Holds `id` in `store` as another process would, with a pid that names it in messages.
std::unique_ptr<HeldLock> hold(test::MemoryBackend& store, const std::string& id, long pid) {
  HolderInfo holder;
  holder.pid = pid;
  holder.hostname = "rig-02";
  return store.try_lock(Resource{id, Json{{"id", id}}}, holder);
}

TEST(LockableCoreTest, ProgressLinesAndTheTimeoutAskForAllHoldersInOneCall) {
  test::MemoryBackend store;
  const auto a = hold(store, "dut-1", 101);
  const auto b = hold(store, "dut-2", 102);
  const auto c = hold(store, "dut-3", 103);
  auto backend = std::make_unique<CountingBackend>(store);
  CountingBackend* counting = backend.get();
  Logged logged;
  Lockable lockable(logged.options(), make_list_provider(three_devices()), std::move(backend));
  try {
    lockable.lock("", Seconds(0.5));  // progress every 0.05 s: several lines, then the timeout
    FAIL() << "expected TimeoutError";
  } catch (const TimeoutError& error) {
    ASSERT_EQ(error.busy().size(), 3u);
    EXPECT_EQ(error.busy()[2], "dut-3: held by pid 103 on rig-02");
  }
  std::size_t progress_lines = 0;
  for (const auto& line : logged.lines) {
    if (line.find("lockable: waiting for") == 0) {
      ++progress_lines;
      EXPECT_NE(line.find("dut-1: held by pid 101 on rig-02;"), std::string::npos) << line;
    }
  }
  ASSERT_GE(progress_lines, 1u);
  EXPECT_EQ(counting->holder_of_calls.load(), 0) << "holders asked one by one";
  // One call per progress line and one for the timeout's list, each for all three devices.
  EXPECT_EQ(counting->holders_of_ids.size(), progress_lines + 1);
  for (const auto& ids : counting->holders_of_ids) {
    EXPECT_EQ(ids, (std::vector<std::string>{"dut-1", "dut-2", "dut-3"}));
  }
}

TEST(LockableCoreTest, StatusAsksForTheHoldersOfAllOnlineDevicesInOneCall) {
  test::MemoryBackend store;
  const auto held = hold(store, "dut-2", 202);
  auto backend = std::make_unique<CountingBackend>(store);
  CountingBackend* counting = backend.get();
  Json devices = three_devices();
  devices[0]["online"] = false;
  Lockable lockable(quiet_options(), make_list_provider(devices), std::move(backend));

  const auto status = lockable.status();
  ASSERT_EQ(status.size(), 3u);
  EXPECT_EQ(status[0].state, ResourceStatus::State::kOffline);
  EXPECT_FALSE(status[0].holder.has_value());
  EXPECT_EQ(status[1].state, ResourceStatus::State::kBusy);
  ASSERT_TRUE(status[1].holder.has_value());
  EXPECT_EQ(status[1].holder->pid, 202);
  EXPECT_EQ(status[2].state, ResourceStatus::State::kFree);
  EXPECT_EQ(counting->holder_of_calls.load(), 0) << "holders asked one by one";
  ASSERT_EQ(counting->holders_of_ids.size(), 1u);
  EXPECT_EQ(counting->holders_of_ids[0], (std::vector<std::string>{"dut-2", "dut-3"}));
}

}  // namespace
}  // namespace lockable

namespace lockable {
namespace {

// The implicit filters of the last requirement are kept for the next request. The key is the
// compiled requirement, not its JSON: `ver=11` (a string or the number) and {"ver": "11"} (the
// string only) read as the same JSON, but must never share a query.
TEST(LockableCoreTest, RequirementsWithTheSameJsonButAnotherQueryAreMatchedEachByItsOwn) {
  const Json resources =
      Json::array({{{"id", "dut-1"}, {"online", true}, {"hostname", "test-host"}, {"ver", 11}}});
  Lockable lockable(quiet_options(), make_list_provider(resources),
                    std::make_unique<test::MemoryBackend>());
  const auto pairs = Requirements::parse("ver=11");
  const auto json_form = Requirements::from_json(Json{{"ver", "11"}});
  ASSERT_EQ(pairs.json(), json_form.json());
  lockable.lock(pairs, Seconds(0)).unlock();
  EXPECT_THROW(lockable.lock(json_form, Seconds(0)), NoMatchError);
  lockable.lock(pairs, Seconds(0)).unlock();  // and back
  // The same requirement again still gets its implicit filters (online, this host).
  const Json offline =
      Json::array({{{"id", "dut-2"}, {"online", false}, {"hostname", "test-host"}, {"ver", 11}}});
  Lockable other(quiet_options(), make_list_provider(offline),
                 std::make_unique<test::MemoryBackend>());
  EXPECT_THROW(other.lock(pairs, Seconds(0)), NoMatchError);
  EXPECT_THROW(other.lock(pairs, Seconds(0)), NoMatchError);
}

}  // namespace
}  // namespace lockable
