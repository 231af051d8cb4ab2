#include "core/queue_order.hpp"

#include <algorithm>
#include <climits>
#include <numeric>
#include <unordered_set>

namespace lockable {

std::vector<std::string> claimable_ids(const std::vector<std::string>& mine,
                                       const std::vector<std::vector<std::string>>& earlier) {
  std::unordered_set<std::string> reserved;
  for (const auto& wanted : earlier) reserved.insert(wanted.begin(), wanted.end());
  std::vector<std::string> result;
  for (const auto& id : mine) {
    if (reserved.count(id) == 0) result.push_back(id);
  }
  return result;
}

std::vector<std::size_t> nearest_holding_back(
    const std::vector<std::string>& mine, const std::vector<std::vector<std::string>>& earlier) {
  std::vector<std::size_t> nearest;
  std::unordered_set<std::string> found;
  // From the nearest backwards: the first ticket met wanting an id is the nearest for it.
  for (std::size_t i = earlier.size(); i-- > 0;) {
    bool holds_back = false;
    for (const auto& id : earlier[i]) {
      if (found.count(id) != 0) continue;
      if (std::find(mine.begin(), mine.end(), id) == mine.end()) continue;
      found.insert(id);
      holds_back = true;
    }
    if (holds_back) nearest.push_back(i);
    if (found.size() == mine.size()) break;
  }
  std::reverse(nearest.begin(), nearest.end());
  return nearest;
}

long long effective_priority(const QueuePlace& place, std::chrono::system_clock::time_point now,
                             std::chrono::system_clock::duration aging) {
  const long long base = place.priority;
  // The epoch is an unknown start (a waiter that wrote none): it must not age for decades.
  if (aging.count() <= 0 || place.since == std::chrono::system_clock::time_point{} ||
      now <= place.since) {
    return base;
  }
  // The wait in unsigned ticks: exact for any now > since, where the signed difference of two
  // far-apart times (a foreign "since") could overflow.
  const auto waited = static_cast<unsigned long long>(now.time_since_epoch().count()) -
                      static_cast<unsigned long long>(place.since.time_since_epoch().count());
  const auto steps = waited / static_cast<unsigned long long>(aging.count());
  // Bounded far above any priority difference, so the sum cannot overflow.
  return base + static_cast<long long>(std::min<unsigned long long>(steps, LLONG_MAX / 4));
}

std::vector<std::size_t> queue_order(const std::vector<QueuePlace>& by_arrival,
                                     std::chrono::system_clock::time_point now,
                                     std::chrono::system_clock::duration aging) {
  std::vector<long long> effective(by_arrival.size());
  for (std::size_t i = 0; i < by_arrival.size(); ++i) {
    effective[i] = effective_priority(by_arrival[i], now, aging);
  }
  std::vector<std::size_t> order(by_arrival.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  // Stable: equal effective priorities keep the arrival order.
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return effective[a] > effective[b]; });
  return order;
}

std::vector<std::size_t> served_before(const std::vector<QueuePlace>& by_arrival, std::size_t mine,
                                       std::chrono::system_clock::time_point now,
                                       std::chrono::system_clock::duration aging) {
  std::vector<std::size_t> before;
  for (const auto index : queue_order(by_arrival, now, aging)) {
    if (index == mine) break;
    before.push_back(index);
  }
  return before;
}

}  // namespace lockable
