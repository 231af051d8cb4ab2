#pragma once

// A device held from another thread, as another user of the process would hold it, until
// unlock() or destruction. The same thread would be told at once that it waits for itself.

#include <lockable/lockable.hpp>

#include <future>
#include <string>
#include <thread>

namespace lockable::test {

class HeldElsewhere {
 public:
  /// Returns once the other thread holds a device matching `requirements`.
  HeldElsewhere(Lockable& lockable, const std::string& requirements) {
    std::promise<std::string> locked;
    auto id = locked.get_future();
    thread_ = std::thread([&lockable, requirements, &locked, this] {
      auto held = lockable.lock(requirements);
      locked.set_value(held.resource_id());
      release_.get_future().wait();
    });
    id_ = id.get();
  }
  ~HeldElsewhere() { unlock(); }
  HeldElsewhere(const HeldElsewhere&) = delete;
  HeldElsewhere& operator=(const HeldElsewhere&) = delete;

  void unlock() {
    if (!thread_.joinable()) return;
    release_.set_value();
    thread_.join();
  }
  const std::string& id() const { return id_; }

 private:
  std::promise<void> release_;
  std::thread thread_;
  std::string id_;
};

}  // namespace lockable::test
