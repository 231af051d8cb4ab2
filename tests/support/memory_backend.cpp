#include "lockable/test/memory_backend.hpp"

#include "core/queue_order.hpp"

#include <condition_variable>
#include <cstdint>
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
  // The queue: arrival number -> ids wanted and priority, ordered by core queue_order.
  struct Waiting {
    std::vector<std::string> wanted;
    QueuePlace place;
  };
  std::map<std::uint64_t, Waiting> queue;
  std::chrono::milliseconds aging{60000};
  std::uint64_t arrivals = 0;
  // Bumped on every release and queue change; each waiting thread remembers the last it saw, so
  // a change between its attempt and its wait is never missed.
  std::uint64_t generation = 0;
  std::map<std::thread::id, std::uint64_t> seen;

  // Caller holds `mutex`.
  void bump() {
    ++generation;
    changed.notify_all();
  }
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
    state_->bump();
  }
  bool lost() const noexcept override { return signal_->lost(); }
  void on_lock_loss(LockLossHandler handler) override { signal_->set_handler(std::move(handler)); }

 private:
  std::shared_ptr<MemoryBackend::State> state_;
  std::string id_;
  std::shared_ptr<LockLossSignal> signal_;
  bool released_ = false;  // guarded by state_->mutex
};

// A place in the store's FIFO queue, visible to other waiters from enqueue() on.
class MemoryTicket final : public QueueTicket {
 public:
  MemoryTicket(std::shared_ptr<MemoryBackend::State> state, std::vector<std::string> ids,
               const HolderInfo& waiter)
      : state_(std::move(state)) {
    std::lock_guard<std::mutex> lock(state_->mutex);
    place_ = state_->arrivals++;
    state_->queue[place_] = {std::move(ids), QueuePlace{waiter.priority, waiter.since}};
    state_->bump();
  }
  ~MemoryTicket() override {
    std::lock_guard<std::mutex> lock(state_->mutex);
    state_->queue.erase(place_);
    state_->bump();
  }
  void update_wanted(const std::vector<std::string>& resource_ids) override {
    std::lock_guard<std::mutex> lock(state_->mutex);
    state_->queue[place_].wanted = resource_ids;
    state_->bump();
  }
  std::vector<std::vector<std::string>> wanted_by_earlier_waiters() override {
    std::lock_guard<std::mutex> lock(state_->mutex);
    std::vector<QueuePlace> places;
    std::vector<const std::vector<std::string>*> wanted;
    std::size_t mine = 0;
    for (const auto& [arrival, waiting] : state_->queue) {
      if (arrival == place_) mine = places.size();
      places.push_back(waiting.place);
      wanted.push_back(&waiting.wanted);
    }
    std::vector<std::vector<std::string>> earlier;
    for (const auto index :
         served_before(places, mine, std::chrono::system_clock::now(), state_->aging)) {
      earlier.push_back(*wanted[index]);
    }
    return earlier;
  }

 private:
  std::shared_ptr<MemoryBackend::State> state_;
  std::uint64_t place_ = 0;
};

}  // namespace

MemoryBackend::MemoryBackend() : state_(std::make_shared<State>()) {}
MemoryBackend::MemoryBackend(const MemoryBackend& store) : state_(store.state_) {}
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
  auto& seen = state_->seen[std::this_thread::get_id()];
  state_->changed.wait_until(lock, deadline, [&] { return seen != state_->generation; });
  seen = state_->generation;
}

std::unique_ptr<QueueTicket> MemoryBackend::enqueue(const std::vector<std::string>& ids,
                                                    const HolderInfo& waiter) {
  return std::make_unique<MemoryTicket>(state_, ids, waiter);
}

void MemoryBackend::set_priority_aging(std::chrono::milliseconds aging) {
  std::lock_guard<std::mutex> lock(state_->mutex);
  state_->aging = aging;
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
    state_->bump();
  }
  std::thread keepalive([&] { signal->notify(reason); });
  keepalive.join();
  return true;
}

}  // namespace lockable::test
