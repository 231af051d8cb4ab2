// Allocation events: what Lockable tells its observers, in which order, with which content.
// Driven through the in-memory backend, whose locks a test can revoke.

#include <lockable/lockable.hpp>

#include <gtest/gtest.h>

#include <future>
#include <mutex>
#include <thread>

#include "lockable/test/held_elsewhere.hpp"
#include "lockable/test/memory_backend.hpp"

namespace lockable {
namespace {

using namespace std::chrono_literals;
using Kind = AllocationEvent::Kind;

Json device(const std::string& id, Json extra = Json::object()) {
  Json json{{"id", id}, {"online", true}, {"hostname", "test-host"}};
  json.update(extra);
  return json;
}

class EventsTest : public ::testing::Test {
 protected:
  void SetUp() override { make(Json::array({device("dut-1", {{"os", "android"}})})); }

  void make(const Json& resources) {
    auto backend = std::make_unique<test::MemoryBackend>();
    backend_ = backend.get();
    Options options;
    options.hostname = "test-host";
    options.progress_interval = Seconds(0.05);
    options.log = [](const std::string&) {};
    lockable_ = std::make_unique<Lockable>(std::move(options), make_list_provider(resources),
                                           std::move(backend));
    lockable_->add_observer([this](const AllocationEvent& event) {
      std::lock_guard<std::mutex> guard(mutex_);
      events_.push_back(event);
    });
  }

  std::vector<AllocationEvent> events() {
    std::lock_guard<std::mutex> guard(mutex_);
    return events_;
  }
  std::vector<Kind> kinds() {
    std::vector<Kind> out;
    for (const auto& event : events()) out.push_back(event.kind);
    return out;
  }

  std::unique_ptr<Lockable> lockable_;
  test::MemoryBackend* backend_ = nullptr;
  std::mutex mutex_;
  std::vector<AllocationEvent> events_;
};

TEST_F(EventsTest, UncontendedLockIsRequestedGrantedReleased) {
  const auto before = std::chrono::system_clock::now();
  auto allocation = lockable_->lock("os=android");
  allocation.unlock();
  ASSERT_EQ(kinds(), (std::vector<Kind>{Kind::kRequested, Kind::kGranted, Kind::kReleased}));
  const auto all = events();
  const auto& requested = all[0];
  const auto& granted = all[1];
  const auto& released = all[2];
  EXPECT_FALSE(requested.request_id.empty());
  EXPECT_EQ(granted.request_id, requested.request_id);
  EXPECT_EQ(released.request_id, requested.request_id);
  EXPECT_EQ(requested.requirements, Json::parse(R"([{"os":"android"}])"));
  EXPECT_EQ(granted.alloc_id, allocation.alloc_id());
  EXPECT_EQ(released.alloc_id, allocation.alloc_id());
  EXPECT_EQ(granted.resource_ids, std::vector<std::string>{"dut-1"});
  EXPECT_EQ(granted.hostname, "test-host");
  EXPECT_EQ(granted.pid, static_cast<long>(::getpid()));
  ASSERT_TRUE(granted.queue_time.has_value());
  EXPECT_FALSE(granted.hold_time.has_value());
  ASSERT_TRUE(released.hold_time.has_value());
  EXPECT_GE(*released.hold_time, std::chrono::steady_clock::duration::zero());
  EXPECT_LE(requested.monotonic_time, granted.monotonic_time);
  EXPECT_LE(granted.monotonic_time, released.monotonic_time);
  EXPECT_GE(requested.wall_time, before);
}

// Events are built only while someone observes (the uncontended lock of a program without
// observers builds none): a device granted before the first observer came has no release
// reported, so an observer never sees half of a grant/release pair; the next grant is whole.
TEST(EventsWithoutObserver, GrantNobodyObservedHasNoReleaseForALaterObserver) {
  Options options;
  options.hostname = "test-host";
  options.log = [](const std::string&) {};
  Lockable lockable(std::move(options), make_list_provider(Json::array({device("dut-1")})),
                    std::make_unique<test::MemoryBackend>());
  auto unobserved = lockable.lock("");
  std::vector<AllocationEvent> seen;
  lockable.add_observer([&seen](const AllocationEvent& event) { seen.push_back(event); });
  unobserved.unlock();
  EXPECT_TRUE(seen.empty()) << to_string(seen.front().kind) << " of an unobserved grant";
  seen.clear();
  auto observed = lockable.lock("");
  observed.unlock();
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[1].kind, Kind::kGranted);
  EXPECT_EQ(seen[2].kind, Kind::kReleased);
  EXPECT_EQ(seen[2].alloc_id, observed.alloc_id());
  EXPECT_EQ(seen[2].resource_ids, std::vector<std::string>{"dut-1"});
}

TEST_F(EventsTest, UnlockingTwiceReportsOneRelease) {
  auto allocation = lockable_->lock("");
  allocation.unlock();
  allocation.unlock();
  EXPECT_EQ(kinds(), (std::vector<Kind>{Kind::kRequested, Kind::kGranted, Kind::kReleased}));
}

TEST_F(EventsTest, WaiterIsQueuedThenGrantedWithItsQueueTime) {
  test::HeldElsewhere holder(*lockable_, "");
  auto waiter = std::async(std::launch::async, [&] { return lockable_->lock("", Seconds(20)); });
  std::this_thread::sleep_for(200ms);
  holder.unlock();
  auto allocation = waiter.get();
  std::vector<AllocationEvent> of_waiter;
  std::string waiter_request;
  for (const auto& event : events()) {
    if (event.kind == Kind::kGranted && event.alloc_id == allocation.alloc_id()) {
      waiter_request = event.request_id;
    }
  }
  ASSERT_FALSE(waiter_request.empty());
  for (const auto& event : events()) {
    if (event.request_id == waiter_request) of_waiter.push_back(event);
  }
  ASSERT_EQ(of_waiter.size(), 3u);
  EXPECT_EQ(of_waiter[0].kind, Kind::kRequested);
  EXPECT_EQ(of_waiter[1].kind, Kind::kQueued);
  EXPECT_EQ(of_waiter[1].resource_ids, std::vector<std::string>{"dut-1"});
  EXPECT_EQ(of_waiter[2].kind, Kind::kGranted);
  EXPECT_GE(*of_waiter[2].queue_time, 150ms);
}

TEST_F(EventsTest, TimeoutNoMatchAndCancelEndTheRequestWithTheReason) {
  test::HeldElsewhere holder(*lockable_, "");
  EXPECT_THROW(lockable_->lock("", Seconds(0.1)), TimeoutError);
  EXPECT_THROW(lockable_->lock("os=ios"), NoMatchError);
  holder.unlock();
  lockable_->cancel();
  EXPECT_THROW(lockable_->lock(""), CancelledError);
  std::vector<Kind> endings;
  for (const auto& event : events()) {
    if (event.kind == Kind::kTimedOut || event.kind == Kind::kNoMatch ||
        event.kind == Kind::kCancelled) {
      endings.push_back(event.kind);
      EXPECT_FALSE(event.reason.empty());
    }
  }
  EXPECT_EQ(endings, (std::vector<Kind>{Kind::kTimedOut, Kind::kNoMatch, Kind::kCancelled}));
}

TEST_F(EventsTest, LostLockIsReportedBeforeItsRelease) {
  auto allocation = lockable_->lock("");
  std::string handler_saw;
  allocation.on_lock_loss([&](const std::string& reason) { handler_saw = reason; });
  ASSERT_TRUE(backend_->revoke("dut-1", "dut-1: lease expired"));
  EXPECT_EQ(handler_saw, "dut-1: lease expired");
  allocation.unlock();
  ASSERT_EQ(kinds(),
            (std::vector<Kind>{Kind::kRequested, Kind::kGranted, Kind::kLost, Kind::kReleased}));
  EXPECT_EQ(events()[2].reason, "dut-1: lease expired");
  EXPECT_EQ(events()[2].alloc_id, allocation.alloc_id());
}

TEST_F(EventsTest, LockManyGrantsEachDeviceWithItsOwnRequirement) {
  make(Json::array({device("a", {{"kind", "a"}}), device("b", {{"kind", "b"}})}));
  auto pair = lockable_->lock_many({Requirements::parse("kind=b"), Requirements::parse("kind=a")});
  std::vector<AllocationEvent> granted;
  for (const auto& event : events()) {
    if (event.kind == Kind::kGranted) granted.push_back(event);
  }
  ASSERT_EQ(granted.size(), 2u);
  EXPECT_EQ(granted[0].resource_ids, std::vector<std::string>{"b"});
  EXPECT_EQ(granted[0].requirements, Json::parse(R"([{"kind":"b"}])"));
  EXPECT_EQ(granted[1].resource_ids, std::vector<std::string>{"a"});
  EXPECT_EQ(granted[0].request_id, granted[1].request_id);
  EXPECT_NE(granted[0].alloc_id, granted[1].alloc_id);
}

TEST_F(EventsTest, ThrowingObserverChangesNothing) {
  lockable_->add_observer([](const AllocationEvent&) { throw std::runtime_error("observer bug"); });
  auto allocation = lockable_->lock("");
  EXPECT_TRUE(allocation.held());
  allocation.unlock();
  EXPECT_EQ(kinds().size(), 3u);
}

TEST_F(EventsTest, KindNamesAreStable) {
  EXPECT_STREQ(to_string(Kind::kTimedOut), "timed_out");
  EXPECT_STREQ(to_string(Kind::kNoMatch), "no_match");
  EXPECT_STREQ(to_string(Kind::kGranted), "granted");
  EXPECT_STREQ(to_string(Kind::kForced), "forced");
  EXPECT_STREQ(to_string(Kind::kReserved), "reserved");
  EXPECT_STREQ(to_string(Kind::kUnreserved), "unreserved");
}

}  // namespace
}  // namespace lockable
