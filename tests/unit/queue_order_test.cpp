#include "core/queue_order.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <optional>

namespace lockable {
namespace {

using Ids = std::vector<std::string>;

struct QueueCase {
  const char* name;
  Ids mine;
  std::vector<Ids> earlier;
  Ids expected;
};

class ClaimableIds : public ::testing::TestWithParam<QueueCase> {};

TEST_P(ClaimableIds, LeavesDevicesWantedByEarlierWaitersToThem) {
  const auto& param = GetParam();
  EXPECT_EQ(claimable_ids(param.mine, param.earlier), param.expected);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ClaimableIds,
    ::testing::Values(
        QueueCase{"OldestWaiterMayTryEverything", {"a", "b"}, {}, {"a", "b"}},
        QueueCase{"EarlierWaiterWantingTheSameDeviceGoesFirst", {"a"}, {{"a"}}, {}},
        QueueCase{"UnrelatedEarlierWaitersDoNotBlock", {"a", "b"}, {{"c"}, {"d"}}, {"a", "b"}},
        QueueCase{"OnlyTheOverlapIsLeft", {"a", "b", "c"}, {{"b"}, {"x", "c"}}, {"a"}},
        QueueCase{"KeepsMyOrder", {"c", "a", "b"}, {{"a"}}, {"c", "b"}},
        QueueCase{"TornTicketWantingNothingBlocksNothing", {"a"}, {{}}, {"a"}},
        QueueCase{"NothingWantedNothingClaimable", {}, {{"a"}}, {}}),
    [](const ::testing::TestParamInfo<QueueCase>& param_info) { return param_info.param.name; });

// ---- nearest_holding_back: whom a waiter behind others watches ----------------------------------

using Indexes = std::vector<std::size_t>;

TEST(NearestHoldingBack, OneTicketPerDeviceTheNearestWantingIt) {
  // Everybody wants every device (contention_bench): only the previous waiter.
  EXPECT_EQ(nearest_holding_back({"a", "b"}, {{"a", "b"}, {"a", "b"}, {"a", "b"}}), Indexes{2});
  // Per device its own nearest; unrelated waiters never.
  EXPECT_EQ(nearest_holding_back({"a", "b"}, {{"b"}, {"a"}, {"x"}}), (Indexes{0, 1}));
  EXPECT_EQ(nearest_holding_back({"a", "b"}, {{"a"}, {"a", "b"}, {"x"}}), Indexes{1});
  EXPECT_EQ(nearest_holding_back({"a"}, {{"x"}, {}}), Indexes{});
  EXPECT_EQ(nearest_holding_back({}, {{"a"}}), Indexes{});
  EXPECT_EQ(nearest_holding_back({"a"}, {}), Indexes{});
}

// The promise that makes watching only those tickets safe: whatever other earlier waiters leave,
// and in whatever order, the claimable ids stay the same while the nearest ones stay.
TEST(NearestHoldingBack, OthersLeavingNeverMakesMoreClaimable) {
  const Ids pool{"a", "b", "c", "d"};
  unsigned seed = 12345;
  const auto next = [&seed](unsigned bound) {
    seed = seed * 1103515245u + 12345u;
    return (seed >> 16) % bound;
  };
  for (int round = 0; round < 2000; ++round) {
    Ids mine;
    for (const auto& id : pool) {
      if (next(2) == 0) mine.push_back(id);
    }
    std::vector<Ids> earlier(next(6));
    for (auto& wants : earlier) {
      for (const auto& id : pool) {
        if (next(3) == 0) wants.push_back(id);
      }
    }
    const auto nearest = nearest_holding_back(mine, earlier);
    const auto claimable = claimable_ids(mine, earlier);
    // Every subset of the others leaving.
    Indexes others;
    for (std::size_t i = 0; i < earlier.size(); ++i) {
      if (std::find(nearest.begin(), nearest.end(), i) == nearest.end()) others.push_back(i);
    }
    for (unsigned mask = 0; mask < (1u << others.size()); ++mask) {
      std::vector<Ids> left;
      for (std::size_t i = 0; i < earlier.size(); ++i) {
        const auto at = std::find(others.begin(), others.end(), i);
        if (at != others.end() && (mask & (1u << (at - others.begin()))) != 0) continue;
        left.push_back(earlier[i]);
      }
      ASSERT_EQ(claimable_ids(mine, left), claimable) << "round " << round;
    }
    // And one of them leaving can: each nearest one is the last holding some id back.
    for (const auto index : nearest) {
      std::vector<Ids> left = earlier;
      left.erase(left.begin() + static_cast<std::ptrdiff_t>(index));
      bool only_one = false;
      for (const auto& id : earlier[index]) {
        if (std::find(mine.begin(), mine.end(), id) == mine.end()) continue;
        only_one = only_one ||
                   std::none_of(left.begin() + static_cast<std::ptrdiff_t>(index), left.end(),
                                [&](const Ids& wants) {
                                  return std::find(wants.begin(), wants.end(), id) != wants.end();
                                });
      }
      EXPECT_TRUE(only_one) << "round " << round;
    }
  }
}

// ---- queue_order: priority, FIFO within one, aging ----------------------------------------------

using namespace std::chrono_literals;
using Time = std::chrono::system_clock::time_point;
using Order = std::vector<std::size_t>;

// A fake clock: times are offsets from a fixed start, so nothing depends on the real clock.
const Time kStart = Time(std::chrono::hours(24 * 365 * 50));
Time at(std::chrono::system_clock::duration offset) { return kStart + offset; }
constexpr std::chrono::system_clock::duration kAging = 60s;

TEST(QueueOrder, HigherPriorityFirstAndArrivalOrderWithinOne) {
  // By arrival: two of priority 0, one of 5, one of 0, one of 5, one of -3.
  const std::vector<QueuePlace> places{{0, at(0s)}, {0, at(1s)}, {5, at(2s)},
                                       {0, at(3s)}, {5, at(4s)}, {-3, at(5s)}};
  EXPECT_EQ(queue_order(places, at(10s), kAging), (Order{2, 4, 0, 1, 3, 5}));
}

TEST(QueueOrder, WithoutPrioritiesItIsArrivalOrder) {
  const std::vector<QueuePlace> places{{0, at(0s)}, {0, at(1s)}, {0, at(2s)}};
  EXPECT_EQ(queue_order(places, at(0s), kAging), (Order{0, 1, 2}));
  // Waiting longer only ever helps the older ones: still arrival order hours later.
  EXPECT_EQ(queue_order(places, at(5h), kAging), (Order{0, 1, 2}));
}

TEST(QueueOrder, AgingRaisesAWaiterOneStepPerAgingPeriod) {
  EXPECT_EQ(effective_priority({0, at(0s)}, at(59s), kAging), 0);
  EXPECT_EQ(effective_priority({0, at(0s)}, at(60s), kAging), 1);
  EXPECT_EQ(effective_priority({-2, at(0s)}, at(181s), kAging), 1);
  // Another host's clock ahead of ours: no wait, never a lower priority.
  EXPECT_EQ(effective_priority({3, at(10s)}, at(0s), kAging), 3);
  // An unknown start (the epoch: a waiter that wrote none) does not age.
  EXPECT_EQ(effective_priority({2, Time{}}, at(10h), kAging), 2);
  // Aging off (zero): the priority as given.
  EXPECT_EQ(effective_priority({3, at(0s)}, at(10h), std::chrono::seconds(0)), 3);
}

TEST(QueueOrder, ALowPriorityWaiterIsServedWithinThePriorityGapTimesTheAging) {
  // One device serves the first waiter every 10 s; a newcomer of priority 2 arrives just before
  // each grant, so without aging the priority-0 waiter would starve for ever. With aging it ties
  // the newest priority-2 waiter after (2 - 0) * aging = 120 s and goes first by arrival.
  std::vector<QueuePlace> places{{0, at(0s)}};
  std::vector<bool> served{false};
  std::optional<std::chrono::seconds> low_served_at;
  for (int second = 10; second <= 600 && !low_served_at; second += 10) {
    places.push_back({2, at(std::chrono::seconds(second))});
    served.push_back(false);
    std::vector<QueuePlace> waiting;
    std::vector<std::size_t> index_of;
    for (std::size_t i = 0; i < places.size(); ++i) {
      if (served[i]) continue;
      waiting.push_back(places[i]);
      index_of.push_back(i);
    }
    const auto next = index_of[queue_order(waiting, at(std::chrono::seconds(second)), kAging)[0]];
    served[next] = true;
    if (next == 0) low_served_at = std::chrono::seconds(second);
  }
  ASSERT_TRUE(low_served_at.has_value()) << "the low-priority waiter starved";
  EXPECT_EQ(*low_served_at, 2 * kAging);
}

TEST(QueueOrder, HigherPrioritiesArrivingLaterThanTheGapTimesTheAgingNeverOvertake) {
  // Aging raises every waiter alike: a priority-7 waiter that came with the old one stays ahead
  // of it, one arriving 7 * 60 s after it ties and stays behind it (arrival order).
  const std::vector<QueuePlace> places{{0, at(0s)}, {7, at(1s)}, {7, at(7 * 60s)}};
  EXPECT_EQ(queue_order(places, at(7 * 60s), kAging), (Order{1, 0, 2}));
  // One arriving a second sooner goes first when it arrives.
  const std::vector<QueuePlace> sooner{{0, at(0s)}, {7, at(7 * 60s - 1s)}};
  EXPECT_EQ(queue_order(sooner, at(7 * 60s - 1s), kAging), (Order{1, 0}));
}

TEST(QueueOrder, ServedBeforeListsTheWaitersAheadInQueueOrder) {
  const std::vector<QueuePlace> places{{0, at(0s)}, {1, at(1s)}, {5, at(2s)}, {0, at(3s)}};
  EXPECT_EQ(served_before(places, 2, at(4s), kAging), Order{});
  EXPECT_EQ(served_before(places, 0, at(4s), kAging), (Order{2, 1}));
  EXPECT_EQ(served_before(places, 3, at(4s), kAging), (Order{2, 1, 0}));
}

TEST(QueueOrder, ExtremeWaitsDoNotOverflow) {
  EXPECT_GT(effective_priority({1000, Time::min()}, Time::max(), std::chrono::nanoseconds(1)),
            1000);
}

}  // namespace
}  // namespace lockable
