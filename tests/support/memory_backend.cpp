#include "lockable/test/memory_backend.hpp"

#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>
#include <utility>

namespace lockable::test {

struct MemoryBackend::State {
  struct Entry {
    HolderInfo holder;
    std::shared_ptr<LockLossSignal> signal;
  };
  std::mutex mutex;
  std::condition_variable changed;
  std::map<std::string, Entry> held;
};

namespace {

class MemoryHeldLock final : public HeldLock {
 public:
  MemoryHeldLock(std::shared_ptr<MemoryBackend::State> state, std::string id,
                 std::shared_ptr<LockLossSignal> signal)
      : state_(std::move(state)), id_(std::move(id)), signal_(std::move(signal)) {}
  ~MemoryHeldLock() override { release(); }

  void release() noexcept override {
    signal_->disarm();
    std::lock_guard<std::mutex> lock(state_->mutex);
    if (released_) return;
    released_ = true;
    // A revoked lock may already belong to someone else: free only our own entry.
    const auto it = state_->held.find(id_);
    if (it != state_->held.end() && it->second.signal == signal_) state_->held.erase(it);
    state_->changed.notify_all();
  }
  bool lost() const noexcept override { return signal_->lost(); }
  void on_lock_loss(LockLossHandler handler) override { signal_->set_handler(std::move(handler)); }

 private:
  std::shared_ptr<MemoryBackend::State> state_;
  std::string id_;
  std::shared_ptr<LockLossSignal> signal_;
  bool released_ = false;  // guarded by state_->mutex
};

class NoQueueTicket final : public QueueTicket {
 public:
  void update_wanted(const std::vector<std::string>& /*resource_ids*/) override {}
  std::vector<std::vector<std::string>> wanted_by_earlier_waiters() override { return {}; }
};

}  // namespace

MemoryBackend::MemoryBackend() : state_(std::make_shared<State>()) {}
MemoryBackend::~MemoryBackend() = default;

std::unique_ptr<HeldLock> MemoryBackend::try_lock(const Resource& resource,
                                                  const HolderInfo& holder) {
  std::lock_guard<std::mutex> lock(state_->mutex);
  if (state_->held.count(resource.id) != 0) return nullptr;
  auto signal = std::make_shared<LockLossSignal>();
  state_->held[resource.id] = State::Entry{holder, signal};
  return std::make_unique<MemoryHeldLock>(state_, resource.id, std::move(signal));
}

void MemoryBackend::wait_for_change(std::chrono::steady_clock::time_point deadline) {
  std::unique_lock<std::mutex> lock(state_->mutex);
  state_->changed.wait_until(lock, deadline);
}

std::unique_ptr<QueueTicket> MemoryBackend::enqueue(const std::vector<std::string>& /*ids*/,
                                                    const HolderInfo& /*waiter*/) {
  return std::make_unique<NoQueueTicket>();
}

std::optional<HolderInfo> MemoryBackend::holder_of(const std::string& resource_id) {
  std::lock_guard<std::mutex> lock(state_->mutex);
  const auto it = state_->held.find(resource_id);
  if (it == state_->held.end()) return std::nullopt;
  return it->second.holder;
}

bool MemoryBackend::revoke(const std::string& resource_id, const std::string& reason) {
  std::shared_ptr<LockLossSignal> signal;
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    const auto it = state_->held.find(resource_id);
    if (it == state_->held.end()) return false;
    signal = it->second.signal;
    state_->held.erase(it);
    state_->changed.notify_all();
  }
  std::thread keepalive([&] { signal->notify(reason); });
  keepalive.join();
  return true;
}

}  // namespace lockable::test
