// The Lockable.dev named-lock client against a fake service with real leases on 127.0.0.1
// (tests/support lock_service): contention, heartbeats, a lapsed lease, a service that stops and
// comes back, a wrong token.
#include <lockable/error.hpp>
#include <lockable/named_lock.hpp>

#include "lockable/test/eventually.hpp"
#include "lockable/test/lock_service.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <thread>

namespace lockable {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

using test::eventually;

std::shared_ptr<NamedLockStore> store_for(test::LockService& service,
                                          const std::string& token = "test-token",
                                          std::chrono::milliseconds lease = 1500ms) {
  LockServiceOptions options;
  options.base_url = service.base_url();
  options.token = token;
  options.lease = lease;
  options.connect_timeout = 1000ms;
  return make_lock_service_store(options);
}

NamedLockOptions quick(bool blocking = true) {
  NamedLockOptions options;
  options.blocking = blocking;
  options.poll_period = 50ms;
  return options;
}

TEST(LockServiceStore, TryCallsAnswerAsTheServiceDoes) {
  test::LockService service(1500ms);
  auto store = store_for(service);
  const auto deadline = [] { return Clock::now() + 10s; };
  EXPECT_TRUE(store->try_acquire("bench/1 ü", deadline()));
  EXPECT_TRUE(service.held("bench/1 ü")) << "the name is percent-encoded and decoded intact";
  EXPECT_FALSE(store->try_acquire("bench/1 ü", deadline()));
  EXPECT_TRUE(store->try_heartbeat("bench/1 ü", deadline()));
  EXPECT_TRUE(store->try_release("bench/1 ü", deadline()));
  EXPECT_FALSE(store->try_heartbeat("bench/1 ü", deadline()));
  EXPECT_FALSE(service.held("bench/1 ü"));
}

TEST(LockServiceStore, AWrongTokenGets401AndAClearError) {
  test::LockService service(1500ms, "right");
  auto store = store_for(service, "wrong");
  try {
    store->try_acquire("x", Clock::now() + 10s);
    FAIL() << "no error";
  } catch (const BackendError& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("401"), std::string::npos) << message;
    EXPECT_NE(message.find("LOCKABLE_AUTH_TOKEN"), std::string::npos) << message;
    EXPECT_EQ(message.find("wrong"), std::string::npos) << "the token is shown: " << message;
  }
  EXPECT_EQ(service.unauthorized(), 1);
}

TEST(LockServiceStore, AMissingTokenFailsBeforeAnyRequest) {
  test::LockService service(1500ms);
  ::unsetenv("LOCKABLE_AUTH_TOKEN");
  try {
    store_for(service, "");
    FAIL() << "no error";
  } catch (const ConfigError& error) {
    EXPECT_NE(std::string(error.what()).find("LOCKABLE_AUTH_TOKEN"), std::string::npos);
  }
  EXPECT_EQ(service.server().requests(), 0);
}

TEST(LockServiceStore, TokenAndUrlComeFromTheEnvironmentOrTheUrlsUserinfo) {
  test::LockService service(1500ms, "env-token");
  ::setenv("LOCKABLE_SERVICE_URL", service.base_url().c_str(), 1);
  ::setenv("LOCKABLE_AUTH_TOKEN", "env-token", 1);
  LockServiceOptions options;
  options.lease = 1500ms;
  auto from_env = make_lock_service_store(options);
  EXPECT_TRUE(from_env->try_acquire("a", Clock::now() + 10s));
  EXPECT_EQ(from_env->describe().find("env-token"), std::string::npos);
  ::unsetenv("LOCKABLE_AUTH_TOKEN");
  ::unsetenv("LOCKABLE_SERVICE_URL");
  options.base_url =
      "http://env-token@127.0.0.1:" + std::to_string(service.server().port()) + "/v1";
  auto from_url = make_lock_service_store(options);
  EXPECT_TRUE(from_url->try_acquire("b", Clock::now() + 10s));
  EXPECT_EQ(from_url->describe().find("env-token"), std::string::npos) << from_url->describe();
}

TEST(LockServiceStore, TheDefaultServiceIsLockableDev) {
  ::unsetenv("LOCKABLE_SERVICE_URL");
  LockServiceOptions options;
  options.token = "t";
  EXPECT_EQ(make_lock_service_store(options)->describe(),
            "lock service https://api.lockable.dev/v1");
}

TEST(NamedLock, TwoClientsContendAndTheSecondGetsItAfterTheRelease) {
  test::LockService service(1500ms);
  auto first_store = store_for(service);
  auto second_store = store_for(service);
  auto first = std::make_unique<NamedLock>(first_store, "rig", quick());
  EXPECT_THROW(NamedLock(second_store, "rig", quick(false)), LockTakenError);
  auto options = quick();
  options.timeout = 200ms;
  EXPECT_THROW(NamedLock(second_store, "rig", options), TimeoutError);
  auto waiter = std::async(std::launch::async, [&] {
    return std::make_unique<NamedLock>(second_store, "rig", quick());
  });
  EXPECT_EQ(waiter.wait_for(300ms), std::future_status::timeout) << "granted while held";
  first.reset();
  ASSERT_EQ(waiter.wait_for(20s), std::future_status::ready);
  auto second = waiter.get();
  EXPECT_TRUE(service.held("rig"));
  EXPECT_FALSE(second->lost());
}

TEST(NamedLock, HeartbeatsKeepTheLockPastSeveralLeases) {
  test::LockService service(1000ms);
  std::atomic<int> losses{0};
  auto options = quick();
  options.heartbeat_period = 200ms;  // a beat late by most of a second still keeps the lease
  options.on_lock_loss = [&](const std::string&) { ++losses; };
  NamedLock lock(store_for(service, "test-token", 1000ms), "long", options);
  std::this_thread::sleep_for(3500ms);
  EXPECT_TRUE(service.held("long"));
  EXPECT_FALSE(lock.lost());
  EXPECT_EQ(losses, 0);
  EXPECT_GE(service.count("heartbeat"), 3)
      << "the heartbeat kept beating (the Python client's stops after one)";
}

TEST(NamedLock, AClientThatStopsHeartbeatingLosesTheLockAfterTheLease) {
  // The service stalls every answer past the lease: heartbeats cannot succeed, the lease
  // lapses on the service, and our side declares the loss once a lease went by without a beat.
  test::LockService service(1000ms);
  std::mutex mutex;
  std::vector<std::string> reasons;
  std::atomic<int> failures{0};
  auto options = quick();
  options.on_lock_loss = [&](const std::string& reason) {
    std::lock_guard<std::mutex> lock(mutex);
    reasons.push_back(reason);
  };
  options.on_heartbeat_exception = [&](std::exception_ptr) { ++failures; };
  NamedLock lock(store_for(service, "test-token", 1000ms), "stalled", options);
  service.set_delay(1500ms);
  ASSERT_TRUE(eventually([&] { return lock.lost(); }));
  EXPECT_TRUE(eventually([&] {
    std::lock_guard<std::mutex> guard(mutex);
    return reasons.size() == 1;
  }));
  EXPECT_GE(failures, 1) << "each failed beat is reported";
  EXPECT_NE(reasons.at(0).find("stalled"), std::string::npos) << reasons.at(0);
  service.set_delay(0ms);
  // Our side gives up one lease after the last good beat was sent, which is never later than
  // the service lets it lapse (a beat we abandoned may still renew it when the service gets to
  // it): the service frees it soon after.
  ASSERT_TRUE(eventually([&] { return !service.held("stalled"); }));
  // Someone else takes it; our release must not free theirs.
  auto other = make_lock_service_store([&] {
    LockServiceOptions o;
    o.base_url = service.base_url();
    o.token = "test-token";
    o.lease = 1000ms;
    return o;
  }());
  NamedLock next(other, "stalled", quick(false));
  const int releases = service.count("release");
  lock.release();
  EXPECT_EQ(service.count("release"), releases) << "a lost lock was released";
  EXPECT_TRUE(service.held("stalled"));
}

TEST(NamedLock, TheServiceSayingFalseFiresOnLockLossOnce) {
  test::LockService service(1000ms);
  std::atomic<int> losses{0};
  auto options = quick();
  options.heartbeat_period = 100ms;
  options.on_lock_loss = [&](const std::string&) { ++losses; };
  NamedLock lock(store_for(service, "test-token", 1000ms), "revoked", options);
  ASSERT_TRUE(service.revoke("revoked"));
  ASSERT_TRUE(eventually([&] { return losses.load() == 1; }));
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(losses, 1);
  EXPECT_TRUE(lock.lost());
}

TEST(NamedLock, AServerStoppedMidHoldReportsEachFailureAndRestartedInTimeKeepsTheLock) {
  test::LockService service(3000ms);
  std::atomic<int> failures{0};
  std::atomic<int> losses{0};
  auto options = quick();
  options.heartbeat_period = 200ms;
  options.on_heartbeat_exception = [&](std::exception_ptr error) {
    try {
      std::rethrow_exception(error);
    } catch (const TemporarilyUnavailableError&) {
      ++failures;
    } catch (...) {
    }
  };
  options.on_lock_loss = [&](const std::string&) { ++losses; };
  NamedLock lock(store_for(service, "test-token", 3000ms), "restart", options);
  service.server().stop();
  ASSERT_TRUE(eventually([&] { return failures.load() >= 2; }, 2500ms))
      << "failures are reported while the lease may still be alive";
  service.server().restart();
  const int beats = service.count("heartbeat");
  ASSERT_TRUE(eventually([&] { return service.count("heartbeat") > beats + 2; }))
      << "the heartbeat kept going after the failures";
  EXPECT_EQ(losses, 0);
  EXPECT_FALSE(lock.lost());
  EXPECT_TRUE(service.held("restart"));
}

TEST(NamedLock, ReleaseStopsTheHeartbeatThenReleasesAndNoHandlerRunsAfter) {
  test::LockService service(1000ms);
  std::atomic<int> calls{0};
  auto options = quick();
  options.heartbeat_period = 50ms;
  options.on_lock_loss = [&](const std::string&) { ++calls; };
  options.on_heartbeat_exception = [&](std::exception_ptr) { ++calls; };
  NamedLock lock(store_for(service, "test-token", 1000ms), "tidy", options);
  std::this_thread::sleep_for(200ms);
  lock.release();
  EXPECT_FALSE(service.held("tidy"));
  const int beats = service.count("heartbeat");
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(service.count("heartbeat"), beats) << "beats after release";
  EXPECT_EQ(service.count("release"), 1);
  lock.release();
  EXPECT_EQ(service.count("release"), 1) << "release is idempotent";
  EXPECT_EQ(calls, 0);
}

}  // namespace
}  // namespace lockable
