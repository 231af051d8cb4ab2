// When a heartbeat-kept lease is surely ours, when the next beat goes out, how long one may take.
#include "core/lease.hpp"

#include <gtest/gtest.h>

namespace lockable::detail {
namespace {

using namespace std::chrono_literals;
const LeaseClock::time_point t0{};

TEST(Lease, LapsesOneLeaseAfterTheLastSuccessfulRenewalWasSent) {
  EXPECT_FALSE(lease_lapsed(t0, 60s, t0 + 59999ms));
  EXPECT_TRUE(lease_lapsed(t0, 60s, t0 + 60s));
  EXPECT_EQ(lease_end(t0 + 5s, 60s), t0 + 65s);
}

TEST(Lease, HeartbeatPeriodIsAThirdOfTheLeaseByDefaultAndAtMostHalf) {
  EXPECT_EQ(heartbeat_period(0ms, 60s), 20s);
  EXPECT_EQ(heartbeat_period(5s, 60s), 5s);
  EXPECT_EQ(heartbeat_period(50s, 60s), 30s);
  EXPECT_EQ(heartbeat_period(0ms, 3ms), 10ms);
}

TEST(Lease, NextBeatIsOnePeriodAfterASuccessAndSoonerAfterAFailure) {
  EXPECT_EQ(next_heartbeat(t0, t0 + 100ms, 0, 20s, 60s), t0 + 20s);
  // Failed at 20.5 s: again a quarter period later, while the lease may still be alive.
  EXPECT_EQ(next_heartbeat(t0, t0 + 20500ms, 1, 20s, 60s), t0 + 25500ms);
  // Close to the end: the last chance is a tenth of the lease before it.
  EXPECT_EQ(next_heartbeat(t0, t0 + 52s, 3, 20s, 60s), t0 + 54s);
  // Past the last chance: at once.
  EXPECT_EQ(next_heartbeat(t0, t0 + 55s, 4, 20s, 60s), t0 + 55s);
}

TEST(Lease, ABeatNeverWaitsPastTheLeaseEndNorLongerThanAPeriod) {
  EXPECT_EQ(heartbeat_deadline(t0, t0 + 20s, 20s, 60s), t0 + 40s);
  EXPECT_EQ(heartbeat_deadline(t0, t0 + 50s, 20s, 60s), t0 + 60s);
}

}  // namespace
}  // namespace lockable::detail
