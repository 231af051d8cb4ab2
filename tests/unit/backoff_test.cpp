// Retry delays for a store that is unavailable for a moment: growth, cap, jitter, replay.

#include "core/backoff.hpp"

#include <gtest/gtest.h>

#include <set>

namespace lockable::detail {
namespace {

using std::chrono::milliseconds;

TEST(BackoffTest, DoublesFromInitialUpToTheCapWithinJitterBounds) {
  Backoff backoff(milliseconds(100), milliseconds(1000), 42);
  const milliseconds bases[] = {milliseconds(100), milliseconds(200),  milliseconds(400),
                                milliseconds(800), milliseconds(1000), milliseconds(1000)};
  for (const auto base : bases) {
    const auto delay = backoff.next();
    EXPECT_GE(delay, base / 2);
    EXPECT_LE(delay, base);
  }
  EXPECT_EQ(backoff.failures(), 6u);
}

TEST(BackoffTest, ResetStartsAgainFromInitial) {
  Backoff backoff(milliseconds(100), milliseconds(10000), 7);
  for (int i = 0; i < 5; ++i) backoff.next();
  backoff.reset();
  EXPECT_EQ(backoff.failures(), 0u);
  EXPECT_LE(backoff.next(), milliseconds(100));
}

TEST(BackoffTest, SameSeedReplaysDifferentSeedsSpread) {
  Backoff a(milliseconds(1000), milliseconds(1000), 1);
  Backoff b(milliseconds(1000), milliseconds(1000), 1);
  std::set<Backoff::Duration::rep> seen;
  for (int i = 0; i < 20; ++i) {
    const auto delay = a.next();
    EXPECT_EQ(delay, b.next());
    seen.insert(delay.count());
  }
  EXPECT_GT(seen.size(), 10u) << "no jitter";
}

TEST(BackoffTest, DegenerateArgumentsStillGivePositiveDelays) {
  Backoff backoff(milliseconds(0), milliseconds(0), 0);
  EXPECT_GT(backoff.next().count(), 0);
}

}  // namespace
}  // namespace lockable::detail
