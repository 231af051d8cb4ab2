#include "core/assignment.hpp"

#include <map>

namespace lockable {
namespace {

class Matcher {
 public:
  explicit Matcher(const std::vector<std::vector<std::size_t>>& candidates)
      : candidates_(candidates) {}

  // Tries to give requirement `req` a resource, moving earlier requirements to other
  // candidates of theirs when needed.
  bool augment(std::size_t req, std::map<std::size_t, bool>& visited) {
    for (const auto resource : candidates_[req]) {
      auto& seen = visited[resource];
      if (seen) continue;
      seen = true;
      const auto owner = owner_.find(resource);
      if (owner == owner_.end() || augment(owner->second, visited)) {
        owner_[resource] = req;
        return true;
      }
    }
    return false;
  }

  std::vector<std::size_t> result() const {
    std::vector<std::size_t> assigned(candidates_.size());
    for (const auto& [resource, req] : owner_) assigned[req] = resource;
    return assigned;
  }

 private:
  const std::vector<std::vector<std::size_t>>& candidates_;
  std::map<std::size_t, std::size_t> owner_;  // resource -> requirement
};

}  // namespace

std::optional<std::vector<std::size_t>> assign_distinct(
    const std::vector<std::vector<std::size_t>>& candidates) {
  Matcher matcher(candidates);
  for (std::size_t req = 0; req < candidates.size(); ++req) {
    std::map<std::size_t, bool> visited;
    if (!matcher.augment(req, visited)) return std::nullopt;
  }
  return matcher.result();
}

}  // namespace lockable
