#include "core/queue_order.hpp"

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

}  // namespace lockable
