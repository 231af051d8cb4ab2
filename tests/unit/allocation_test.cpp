#include <lockable/allocation.hpp>

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <ctime>
#include <regex>
#include <set>
#include <thread>

namespace lockable {
namespace {

// Counts releases so tests can see exactly when the device was given back.
class CountingLock final : public HeldLock {
 public:
  explicit CountingLock(std::atomic<int>& releases) : releases_(releases) {}
  void release() noexcept override {
    if (!released_) ++releases_;
    released_ = true;
  }

 private:
  std::atomic<int>& releases_;
  bool released_ = false;
};

Allocation make_allocation(std::atomic<int>& releases, const std::string& id = "dut-1") {
  return Allocation(Json{{"os", "linux"}}, Resource{id, Json{{"id", id}, {"serial", "S1"}}},
                    "alloc-" + id, std::chrono::milliseconds(1500),
                    std::make_unique<CountingLock>(releases));
}

TEST(Allocation, DefaultConstructedHoldsNothing) {
  Allocation allocation;
  EXPECT_FALSE(allocation.held());
  EXPECT_FALSE(allocation.lost());
  allocation.unlock();
  EXPECT_FALSE(allocation.release_time().has_value());
}

TEST(Allocation, ExposesResourceAndRequirements) {
  std::atomic<int> releases{0};
  const auto allocation = make_allocation(releases);
  EXPECT_EQ(allocation.resource_id(), "dut-1");
  EXPECT_EQ(allocation.attributes()["serial"], "S1");
  EXPECT_EQ(allocation.requirements(), (Json{{"os", "linux"}}));
  EXPECT_EQ(allocation.alloc_id(), "alloc-dut-1");
  EXPECT_EQ(allocation.queue_time(), std::chrono::milliseconds(1500));
  EXPECT_FALSE(allocation.fencing_token().has_value());
}

TEST(Allocation, UnlockTwiceReleasesOnce) {
  std::atomic<int> releases{0};
  auto allocation = make_allocation(releases);
  EXPECT_TRUE(allocation.held());
  allocation.unlock();
  allocation.unlock();
  EXPECT_FALSE(allocation.held());
  EXPECT_EQ(releases, 1);
}

TEST(Allocation, DestructionReleases) {
  std::atomic<int> releases{0};
  { auto allocation = make_allocation(releases); }
  EXPECT_EQ(releases, 1);
}

TEST(Allocation, DurationStopsAtRelease) {
  std::atomic<int> releases{0};
  auto allocation = make_allocation(releases);
  const auto before_release = std::chrono::system_clock::now();
  allocation.unlock();
  ASSERT_TRUE(allocation.release_time().has_value());
  EXPECT_GE(*allocation.release_time(), allocation.start_time());
  EXPECT_GE(*allocation.release_time(), before_release);
  const auto frozen = allocation.duration();
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(allocation.duration(), frozen);
}

TEST(Allocation, DurationGrowsWhileHeld) {
  std::atomic<int> releases{0};
  const auto allocation = make_allocation(releases);
  const auto first = allocation.duration();
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  EXPECT_GT(allocation.duration(), first);
}

TEST(Allocation, MoveTransfersOwnershipWithoutReleasing) {
  std::atomic<int> releases{0};
  auto first = make_allocation(releases);
  Allocation second(std::move(first));
  EXPECT_FALSE(first.held());  // NOLINT(bugprone-use-after-move): moved-from state is specified
  EXPECT_TRUE(second.held());
  EXPECT_EQ(second.resource_id(), "dut-1");
  EXPECT_EQ(releases, 0);
  first.unlock();
  EXPECT_EQ(releases, 0);
}

TEST(Allocation, MoveAssignmentReleasesTheOverwrittenDevice) {
  std::atomic<int> releases_a{0};
  std::atomic<int> releases_b{0};
  auto a = make_allocation(releases_a, "dut-a");
  auto b = make_allocation(releases_b, "dut-b");
  a = std::move(b);
  EXPECT_EQ(releases_a, 1);
  EXPECT_EQ(releases_b, 0);
  EXPECT_EQ(a.resource_id(), "dut-b");
  a.unlock();
  EXPECT_EQ(releases_b, 1);
}

TEST(Allocation, ToJsonHasTimesAndIds) {
  std::atomic<int> releases{0};
  auto allocation = make_allocation(releases);
  auto json = allocation.to_json();
  EXPECT_EQ(json["resource_id"], "dut-1");
  EXPECT_EQ(json["alloc_id"], "alloc-dut-1");
  EXPECT_DOUBLE_EQ(json["queue_time"].get<double>(), 1.5);
  EXPECT_TRUE(json["held"].get<bool>());
  EXPECT_TRUE(json["release_time"].is_null());
  EXPECT_TRUE(std::regex_match(json["start_time"].get<std::string>(),
                               std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")))
      << json.dump();
  allocation.unlock();
  json = allocation.to_json();
  EXPECT_FALSE(json["held"].get<bool>());
  EXPECT_TRUE(json["release_time"].is_string());
  EXPECT_GE(json["duration"].get<double>(), 0.0);
}

TEST(FormatIso8601, FormatsUtcWithMilliseconds) {
  const auto time = std::chrono::system_clock::from_time_t(1795082400) +  // 2026-11-19T10:00:00Z
                    std::chrono::milliseconds(123);
  EXPECT_EQ(format_iso8601(time), "2026-11-19T10:00:00.123Z");
}

// Every field at its widest and narrowest, leading zeros, and times before 1970.
TEST(FormatIso8601, PadsEveryFieldAndHandlesTimesBefore1970) {
  using std::chrono::milliseconds;
  const auto epoch = std::chrono::system_clock::from_time_t(0);
  EXPECT_EQ(format_iso8601(epoch), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(format_iso8601(epoch + milliseconds(7)), "1970-01-01T00:00:00.007Z");
  EXPECT_EQ(format_iso8601(epoch - milliseconds(1)), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(format_iso8601(std::chrono::system_clock::from_time_t(4102444799) + milliseconds(99)),
            "2099-12-31T23:59:59.099Z");
  EXPECT_EQ(format_iso8601(std::chrono::system_clock::from_time_t(-2177452800)),
            "1901-01-01T00:00:00.000Z");
}

// The calendar arithmetic against the C library's gmtime_r, around leap days, century years and
// the epoch, over what a system_clock of nanoseconds holds.
TEST(FormatIso8601, AgreesWithGmtimeFrom1700To2260) {
  const auto expected = [](long long seconds) {
    const std::time_t whole = static_cast<std::time_t>(seconds);
    std::tm tm{};
    gmtime_r(&whole, &tm);
    char text[64];
    std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.000Z", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    return std::string(text);
  };
  const long long first = -8520336000LL;  // 1700-01-01
  const long long last = 9183110400LL;    // 2261-01-01
  int compared = 0;
  // A step that is not a multiple of a day or an hour visits every time of day over the span.
  for (long long seconds = first; seconds < last; seconds += 86400 * 3 + 3607, ++compared) {
    ASSERT_EQ(format_iso8601(std::chrono::system_clock::from_time_t(seconds)), expected(seconds))
        << seconds;
  }
  for (const long long day : {-1LL, 0LL, 59LL, 60LL, 789LL, 10957LL, 11016LL, 11017LL, 47540LL,
                              -25509LL, -25508LL, 47541LL, 47542LL}) {
    for (const long long offset : {0LL, 1LL, 86399LL}) {
      const long long seconds = day * 86400 + offset;
      EXPECT_EQ(format_iso8601(std::chrono::system_clock::from_time_t(seconds)), expected(seconds))
          << seconds;
      ++compared;
    }
  }
  EXPECT_GT(compared, 60000);
}

// One form for every duration lockable writes (report properties, plugin, CLI and library
// messages): GoogleTest's `time` form, three decimals at any magnitude.
TEST(FormatSeconds, ThreeDecimalsRoundedToTheMillisecondAtAnyMagnitude) {
  using std::chrono::microseconds;
  using std::chrono::milliseconds;
  const struct {
    std::chrono::nanoseconds duration;
    const char* text;
  } cases[] = {
      {std::chrono::nanoseconds(0), "0.000"}, {milliseconds(1), "0.001"},
      {microseconds(1499), "0.001"},          {microseconds(1501), "0.002"},
      {milliseconds(200), "0.200"},           {milliseconds(9999), "9.999"},
      {std::chrono::seconds(10), "10.000"},   {milliseconds(12345), "12.345"},
      {std::chrono::hours(2), "7200.000"},    {milliseconds(-250), "-0.250"},
      {milliseconds(-1500), "-1.500"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(format_seconds(c.duration), c.text) << c.duration.count() << " ns";
  }
}

TEST(NewUuid, IsCanonicalVersion4AndUnique) {
  const auto a = new_uuid();
  const auto b = new_uuid();
  EXPECT_NE(a, b);
  EXPECT_TRUE(std::regex_match(
      a, std::regex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")))
      << a;
}

// Many in a row (across the batches the random bytes are fetched in) and from several threads:
// all distinct, all version 4.
TEST(NewUuid, ManyFromSeveralThreadsAreDistinct) {
  std::vector<std::vector<std::string>> made(4);
  std::vector<std::thread> threads;
  for (auto& list : made) {
    threads.emplace_back([&list] {
      for (int i = 0; i < 1000; ++i) list.push_back(new_uuid());
    });
  }
  for (auto& thread : threads) thread.join();
  std::set<std::string> distinct;
  const std::regex form("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}");
  for (const auto& list : made) {
    for (const auto& uuid : list) {
      distinct.insert(uuid);
      ASSERT_TRUE(std::regex_match(uuid, form)) << uuid;
    }
  }
  EXPECT_EQ(distinct.size(), 4000u);
}

// The random bytes are fetched in batches: a child made by fork() must not hand out the ones its
// parent buffered, or a parent and its child would lock with the same allocation ids.
TEST(NewUuid, ForkedChildDoesNotRepeatItsParent) {
  new_uuid();  // the parent's batch is fetched and partly used
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(pipe_fds[0]);
    std::string uuids;
    for (int i = 0; i < 3; ++i) uuids += new_uuid();
    const bool written =
        ::write(pipe_fds[1], uuids.data(), uuids.size()) == static_cast<ssize_t>(uuids.size());
    ::_exit(written ? 0 : 1);
  }
  ::close(pipe_fds[1]);
  std::string parent;
  for (int i = 0; i < 3; ++i) parent += new_uuid();
  std::string from_child(parent.size(), '\0');
  std::size_t got = 0;
  while (got < from_child.size()) {
    const ssize_t n = ::read(pipe_fds[0], from_child.data() + got, from_child.size() - got);
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  ::close(pipe_fds[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  ASSERT_EQ(got, from_child.size());
  for (std::size_t i = 0; i < 3; ++i) {
    for (std::size_t j = 0; j < 3; ++j) {
      EXPECT_NE(parent.substr(i * 36, 36), from_child.substr(j * 36, 36)) << i << ", " << j;
    }
  }
}

TEST(HolderInfo, JsonRoundTrip) {
  HolderInfo info{4242, "rig-01", "abc",
                  std::chrono::system_clock::from_time_t(1795082400) + std::chrono::milliseconds(5),
                  Json{{"os", "x"}}};
  const auto back = HolderInfo::from_json(info.to_json());
  EXPECT_EQ(back.pid, 4242);
  EXPECT_EQ(back.hostname, "rig-01");
  EXPECT_EQ(back.alloc_id, "abc");
  EXPECT_EQ(back.since, info.since);
  EXPECT_EQ(back.requirements, (Json{{"os", "x"}}));
  EXPECT_EQ(back.describe(), "pid 4242 on rig-01, allocation abc, since 2026-11-19T10:00:00.005Z");
}

TEST(HolderInfo, FromJsonToleratesMissingAndWrongFields) {
  const auto info = HolderInfo::from_json(Json{{"pid", "x"}, {"since", "yesterday"}});
  EXPECT_EQ(info.pid, 0);
  EXPECT_EQ(info.since, std::chrono::system_clock::time_point{});
  EXPECT_EQ(HolderInfo::from_json(Json::array()).pid, 0);
  EXPECT_EQ(HolderInfo::from_json(Json{{"pid", 7}}).describe(), "pid 7");
}

// A holder file anyone may write: times the clock cannot hold are absent, not an overflow (found
// by fuzz_lock_files; UBSan flagged year -999).
TEST(HolderInfo, FromJsonIgnoresTimesOutsideTheClocksRange) {
  for (const char* since : {"-999-13-45T99:99:99.9999999999Z", "9999-01-01T00:00:00Z",
                            "1200-01-01T00:00:00Z", "2026-00-10T10:00:00Z"}) {
    EXPECT_EQ(HolderInfo::from_json(Json{{"since", since}}).since,
              std::chrono::system_clock::time_point{})
        << since;
  }
}

}  // namespace
}  // namespace lockable
