// The lock-service backend against a fake Lockable.dev service with real leases on 127.0.0.1:
// what the contract suite cannot show (heartbeats past the lease, a service that goes away and
// comes back, a lease that lapses, waiting that polls a lock held on another host).
#include <lockable/lockable.hpp>
#include <lockable/named_lock_backend.hpp>

#include "lockable/test/eventually.hpp"
#include "lockable/test/lock_service.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <future>
#include <mutex>
#include <thread>

namespace lockable {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

using test::eventually;

Resource resource(const std::string& id) {
  Resource r;
  r.id = id;
  r.attributes = Json{{"id", id}, {"online", true}, {"hostname", "h"}};
  return r;
}

HolderInfo holder() { return HolderInfo{static_cast<long>(::getpid()), "h", "alloc", {}, {}}; }

std::unique_ptr<LockBackend> backend_for(test::LockService& service, const std::string& lease,
                                         const std::string& extra = "") {
  return make_lock_backend("http://test-token@" + service.base_url().substr(7) +
                           "?prefix=sb-&lease=" + lease + "&poll=0.05" + extra);
}

TEST(ServiceBackend, HeartbeatsKeepEveryHeldDevicePastSeveralLeases) {
  test::LockService service(1000ms);
  auto backend = backend_for(service, "1", "&heartbeat=0.2");
  auto a = backend->try_lock(resource("a"), holder());
  auto b = backend->try_lock(resource("b"), holder());
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  std::this_thread::sleep_for(3500ms);
  EXPECT_TRUE(service.held("sb-a"));
  EXPECT_TRUE(service.held("sb-b"));
  EXPECT_FALSE(a->lost());
  EXPECT_FALSE(b->lost());
  a->release();
  EXPECT_FALSE(service.held("sb-a"));
  EXPECT_TRUE(service.held("sb-b"));
}

TEST(ServiceBackend, AServiceThatGoesAwayReportsKeepaliveErrorsAndBackInTimeKeepsTheLock) {
  test::LockService service(3000ms);
  auto backend = backend_for(service, "3", "&heartbeat=0.2");
  std::atomic<int> errors{0};
  backend->on_keepalive_error([&](std::exception_ptr error) {
    try {
      std::rethrow_exception(error);
    } catch (const TemporarilyUnavailableError&) {
      ++errors;
    } catch (...) {
    }
  });
  auto lock = backend->try_lock(resource("a"), holder());
  ASSERT_NE(lock, nullptr);
  std::atomic<int> losses{0};
  lock->on_lock_loss([&](const std::string&) { ++losses; });
  service.server().stop();
  ASSERT_TRUE(eventually([&] { return errors.load() >= 2; }, 2500ms));
  service.server().restart();
  const int beats = service.count("heartbeat");
  ASSERT_TRUE(eventually([&] { return service.count("heartbeat") > beats + 2; }));
  EXPECT_EQ(losses, 0);
  EXPECT_FALSE(lock->lost());
}

TEST(ServiceBackend, ALeaseThatLapsesLosesTheDeviceAndALostLockIsNeverReleased) {
  test::LockService service(1000ms);
  auto backend = backend_for(service, "1");
  auto lock = backend->try_lock(resource("a"), holder());
  ASSERT_NE(lock, nullptr);
  std::mutex mutex;
  std::string reason;
  lock->on_lock_loss([&](const std::string& why) {
    std::lock_guard<std::mutex> guard(mutex);
    reason = why;
  });
  service.set_delay(1500ms);  // every beat answers too late
  ASSERT_TRUE(eventually([&] { return lock->lost(); }));
  service.set_delay(0ms);
  {
    std::lock_guard<std::mutex> guard(mutex);
    EXPECT_NE(reason.find("a: "), std::string::npos) << reason;
    EXPECT_NE(reason.find("lease"), std::string::npos) << reason;
  }
  // A beat we abandoned may still renew the name when the service gets to it: wait for the
  // service to free it (our side gave up first, as it must).
  ASSERT_TRUE(eventually([&] { return !service.held("sb-a"); }));
  auto other = backend_for(service, "1");
  auto next = other->try_lock(resource("a"), holder());
  ASSERT_NE(next, nullptr);
  const int releases = service.count("release");
  lock->release();
  EXPECT_EQ(service.count("release"), releases);
  EXPECT_TRUE(service.held("sb-a"));
}

TEST(ServiceBackend, AWaiterGetsADeviceFreedOnAnotherHostByPolling) {
  test::LockService service(2000ms);
  // "Another host": a plain client of the service holds the device's name.
  LockServiceOptions options;
  options.base_url = service.base_url();
  options.token = "test-token";
  options.lease = 2000ms;
  auto elsewhere = std::make_unique<NamedLock>(make_lock_service_store(options), "sb-dut-1");
  Options lockable_options;
  lockable_options.hostname = "h";
  lockable_options.log = [](const std::string&) {};
  Lockable lockable(lockable_options,
                    make_list_provider(Json::array({resource("dut-1").attributes})),
                    backend_for(service, "2"));
  auto waiter = std::async(std::launch::async, [&] { return lockable.lock("", Seconds(30)); });
  EXPECT_EQ(waiter.wait_for(300ms), std::future_status::timeout);
  elsewhere.reset();
  ASSERT_EQ(waiter.wait_for(20s), std::future_status::ready);
  EXPECT_EQ(waiter.get().resource_id(), "dut-1");
}

TEST(ServiceBackend, CancelEndsAPollingWaitAtOnce) {
  test::LockService service(2000ms);
  auto holder_backend = backend_for(service, "2");
  auto held = holder_backend->try_lock(resource("dut-1"), holder());
  ASSERT_NE(held, nullptr);
  Options lockable_options;
  lockable_options.hostname = "h";
  lockable_options.log = [](const std::string&) {};
  Lockable lockable(lockable_options,
                    make_list_provider(Json::array({resource("dut-1").attributes})),
                    make_lock_backend("http://test-token@" + service.base_url().substr(7) +
                                      "?prefix=sb-&lease=2&poll=30"));
  auto waiter = std::async(std::launch::async, [&] { return lockable.lock("", Seconds(60)); });
  std::this_thread::sleep_for(300ms);
  lockable.cancel();
  ASSERT_EQ(waiter.wait_for(10s), std::future_status::ready) << "waited out the 30 s poll";
  EXPECT_THROW(waiter.get(), CancelledError);
}

}  // namespace
}  // namespace lockable
