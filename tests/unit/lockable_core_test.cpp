// Lockable's waiting loop against fakes: a provider that is slow to load, a store that is
// unavailable for a moment. The in-memory backend stands in for a real store.

#include <lockable/lockable.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include "lockable/test/memory_backend.hpp"

namespace lockable {
namespace {

using namespace std::chrono_literals;

Json devices() {
  return Json::array({{{"id", "dut-1"}, {"online", true}, {"hostname", "test-host"}}});
}

// A provider whose load() blocks, while armed, until the test lets it go: a remote inventory
// that hangs.
class GatedProvider final : public ResourceProvider {
 public:
  Resources load() override {
    std::unique_lock<std::mutex> lock(mutex_);
    if (armed_) {
      ++blocked_loads_;
      changed_cv_.notify_all();
      open_cv_.wait(lock, [this] { return !armed_; });
    }
    return inner_->load();
  }
  bool changed() override { return true; }  // conservative: every check reloads
  std::string describe() const override { return "gated provider"; }

  void arm() {
    std::lock_guard<std::mutex> lock(mutex_);
    armed_ = true;
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

  std::promise<void> release;
  std::promise<void> locked;
  std::thread holder([&] {
    auto held = lockable.lock("");
    locked.set_value();
    release.get_future().wait();
  });
  locked.get_future().wait();
  auto waiter = std::async(std::launch::async, [&] { return lockable.lock("", Seconds(30)); });
  std::this_thread::sleep_for(100ms);  // the waiter has its list and waits

  // A new request starts a load that hangs.
  gate->arm();
  auto newcomer = std::async(std::launch::async, [&] {
    try {
      return lockable.lock("", Seconds(30)).resource_id();
    } catch (const Error& error) {
      return std::string(error.what());
    }
  });
  ASSERT_TRUE(gate->wait_for_blocked_load(5000ms));
  release.set_value();
  holder.join();
  // The waiter gets the device while the newcomer's load still hangs.
  ASSERT_EQ(waiter.wait_for(5s), std::future_status::ready) << "the waiter stalled behind the load";
  auto allocation = waiter.get();
  EXPECT_EQ(allocation.resource_id(), "dut-1");
  EXPECT_EQ(newcomer.wait_for(0s), std::future_status::timeout);
  allocation.unlock();
  gate->open();
  EXPECT_EQ(newcomer.get(), "dut-1");
}

}  // namespace
}  // namespace lockable
