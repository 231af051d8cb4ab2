// NamedLockBackend: devices locked as named locks on a NamedLockStore (the Lockable.dev service).

#include <lockable/error.hpp>
#include <lockable/lockable.hpp>
#include <lockable/named_lock_backend.hpp>

#include "core/lease.hpp"
#include "core/queue_order.hpp"
#include "http/client.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

#include <unistd.h>

namespace lockable {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

// A single acquire or release: long enough for a slow service and a lost SYN (retransmitted
// after 1 s), short enough that a stalled one does not hang a release for long. Not tied to the
// lease: the lease bounds heartbeats only.
constexpr milliseconds kRequestBound{10000};

}  // namespace

// What the backend objects of one process on one store (URL and prefix) share: the holders and
// waiters of this process, and the wake-ups between them. The service knows neither.
struct NamedLockBackend::Registry {
  std::mutex mutex;
  std::condition_variable changed;
  std::map<std::string, std::pair<HolderInfo, const void*>> holders;  // id -> holder, owner
  struct Waiting {
    std::vector<std::string> wanted;
    QueuePlace place;
  };
  std::map<std::uint64_t, Waiting> queue;  // arrival -> ids wanted, priority
  std::atomic<long long> aging_ms{60000};  // Options::priority_aging's default
  std::uint64_t arrivals = 0;
  std::uint64_t generation = 0;
  std::map<std::thread::id, std::uint64_t> seen;

  void bump() {  // caller holds `mutex`
    ++generation;
    changed.notify_all();
  }

  void forget_holder(const std::string& id, const void* owner) {
    std::lock_guard<std::mutex> lock(mutex);
    const auto found = holders.find(id);
    if (found != holders.end() && found->second.second == owner) holders.erase(found);
    bump();
  }

  static std::shared_ptr<Registry> of(const std::string& key) {
    static std::mutex registries_mutex;
    static std::map<std::string, std::weak_ptr<Registry>> registries;
    std::lock_guard<std::mutex> lock(registries_mutex);
    auto& slot = registries[key];
    auto registry = slot.lock();
    if (!registry) {
      registry = std::make_shared<Registry>();
      slot = registry;
    }
    return registry;
  }
};

namespace {

// One held lock as the keepalive thread sees it.
struct Entry {
  std::string id;
  std::string name;
  std::shared_ptr<LockLossSignal> signal;
  Clock::time_point renewal_sent;
  Clock::time_point last_attempt_end;
  int failures = 0;
  bool in_flight = false;  // a heartbeat request for it is on its way
  bool gone = false;       // released or lost: never beat again
  std::atomic<bool> cancel{false};
};

// The keepalive and notifier threads' state. Shared with the threads, so it outlives the
// backend and its locks until both threads ended.
struct Core {
  std::shared_ptr<NamedLockStore> store;
  std::shared_ptr<NamedLockBackend::Registry> registry;
  milliseconds lease{0};
  milliseconds period{0};

  std::mutex mutex;
  std::condition_variable wake;  // keepalive: new entry, stop, beat_now
  std::condition_variable idle;  // a beat finished, a round finished, a loss delivered
  std::map<std::uint64_t, std::shared_ptr<Entry>> entries;
  std::uint64_t next_key = 0;
  bool stopping = false;
  std::atomic<bool> stop_flag{false};
  std::uint64_t rounds_asked = 0;
  std::uint64_t rounds_done = 0;
  KeepaliveErrorHandler on_error;
  std::deque<std::pair<std::shared_ptr<LockLossSignal>, std::string>> losses;
  bool delivering = false;

  void keepalive_loop();
  void notifier_loop();
  // Caller holds `mutex`: the entry is lost; its loss goes to the notifier thread.
  void lose(Entry& entry, const std::string& reason) {
    entry.gone = true;
    losses.emplace_back(entry.signal, reason);
    wake.notify_all();
  }
};

void Core::keepalive_loop() {
  std::unique_lock<std::mutex> lock(mutex);
  for (;;) {
    auto next = Clock::time_point::max();
    for (const auto& [key, entry] : entries) {
      next = std::min(next, detail::next_heartbeat(entry->renewal_sent, entry->last_attempt_end,
                                                   entry->failures, period, lease));
    }
    const std::uint64_t asked = rounds_asked;
    wake.wait_until(lock, next, [&] {
      // heartbeat_now() may have asked before this wait began: rounds_done lags then.
      if (stopping || rounds_asked != asked || rounds_asked != rounds_done) return true;
      for (const auto& [key, entry] : entries) {
        if (detail::next_heartbeat(entry->renewal_sent, entry->last_attempt_end, entry->failures,
                                   period, lease) < next) {
          return true;  // a new lock
        }
      }
      return false;
    });
    if (stopping) return;
    const bool forced = rounds_asked != rounds_done;
    const std::uint64_t round = rounds_asked;
    const auto now = Clock::now();
    std::vector<std::shared_ptr<Entry>> due;
    for (const auto& [key, entry] : entries) {
      if (forced || detail::next_heartbeat(entry->renewal_sent, entry->last_attempt_end,
                                           entry->failures, period, lease) <= now) {
        due.push_back(entry);
      }
    }
    for (const auto& entry : due) {
      if (entry->gone) continue;
      const auto sent = Clock::now();
      if (detail::lease_lapsed(entry->renewal_sent, lease, sent)) {
        entries.erase(std::find_if(entries.begin(), entries.end(),
                                   [&](const auto& item) { return item.second == entry; }));
        registry->forget_holder(entry->id, entry.get());
        lose(*entry, entry->id + ": no heartbeat of lock \"" + entry->name + "\" on " +
                         store->describe() + " succeeded for a whole lease (" +
                         std::to_string(lease.count()) + " ms); the lease has lapsed");
        continue;
      }
      entry->in_flight = true;
      lock.unlock();
      std::exception_ptr error;
      bool renewed = false;
      try {
        renewed = store->try_heartbeat(
            entry->name, detail::heartbeat_deadline(entry->renewal_sent, sent, period, lease),
            &entry->cancel);
      } catch (...) {
        error = std::current_exception();
      }
      lock.lock();
      entry->in_flight = false;
      entry->last_attempt_end = Clock::now();
      idle.notify_all();
      if (entry->gone || stopping) continue;  // released meanwhile: the answer is moot
      if (error) {
        ++entry->failures;
        if (on_error) {
          const auto handler = on_error;
          lock.unlock();
          try {
            handler(error);
          } catch (...) {
          }
          lock.lock();
        }
      } else if (renewed) {
        entry->renewal_sent = sent;
        entry->failures = 0;
      } else {
        for (auto it = entries.begin(); it != entries.end(); ++it) {
          if (it->second == entry) {
            entries.erase(it);
            break;
          }
        }
        registry->forget_holder(entry->id, entry.get());
        lose(*entry, entry->id + ": " + store->describe() + " says lock \"" + entry->name +
                         "\" is no longer ours (its lease lapsed or someone released it)");
      }
    }
    if (forced) rounds_done = round;
    idle.notify_all();
  }
}

void Core::notifier_loop() {
  std::unique_lock<std::mutex> lock(mutex);
  for (;;) {
    wake.wait(lock, [&] { return stopping || !losses.empty(); });
    if (losses.empty()) return;  // stopping, nothing left to deliver
    auto [signal, reason] = std::move(losses.front());
    losses.pop_front();
    delivering = true;
    lock.unlock();
    signal->notify(reason);  // swallows the handler's exceptions
    lock.lock();
    delivering = false;
    idle.notify_all();
  }
}

}  // namespace

// Owned by the backend and by each of its locks; the last owner stops the threads.
struct NamedLockBackend::Keeper {
  std::shared_ptr<Core> core;
  std::thread keepalive;
  std::thread notifier;

  ~Keeper() {
    {
      std::lock_guard<std::mutex> lock(core->mutex);
      core->stopping = true;
      core->stop_flag = true;
      for (auto& [key, entry] : core->entries) entry->cancel = true;
    }
    core->wake.notify_all();
    core->store->interrupt();
    for (auto* thread : {&keepalive, &notifier}) {
      if (!thread->joinable()) continue;
      // The last lock dropped by a loss handler: the thread ends by itself, holding the core.
      if (thread->get_id() == std::this_thread::get_id()) {
        thread->detach();
      } else {
        thread->join();
      }
    }
  }
};

namespace {

class ServiceHeldLock final : public HeldLock {
 public:
  ServiceHeldLock(std::shared_ptr<NamedLockBackend::Keeper> keeper, std::shared_ptr<Entry> entry,
                  std::uint64_t key)
      : keeper_(std::move(keeper)), entry_(std::move(entry)), key_(key) {}
  ~ServiceHeldLock() override { release(); }

  void release() noexcept override {
    entry_->signal->disarm();
    Core& core = *keeper_->core;
    bool was_lost = false;
    {
      std::unique_lock<std::mutex> lock(core.mutex);
      if (released_) return;
      released_ = true;
      was_lost = entry_->gone;
      entry_->gone = true;
      core.entries.erase(key_);
      // Stop the heartbeat of this lock first: a beat landing after the release could renew
      // the name for whoever takes it next (the service has no owners).
      if (entry_->in_flight) {
        entry_->cancel = true;
        lock.unlock();
        core.store->interrupt();
        lock.lock();
        core.idle.wait(lock, [&] { return !entry_->in_flight; });
      }
    }
    core.registry->forget_holder(entry_->id, entry_.get());
    if (was_lost || entry_->signal->lost()) return;  // may be someone else's by now
    try {
      core.store->try_release(entry_->name, Clock::now() + kRequestBound);
    } catch (...) {
      // Left to the lease, which lapses now that nobody beats.
    }
  }
  bool lost() const noexcept override { return entry_->signal->lost(); }
  void on_lock_loss(LockLossHandler handler) override {
    entry_->signal->set_handler(std::move(handler));
  }

 private:
  std::shared_ptr<NamedLockBackend::Keeper> keeper_;
  std::shared_ptr<Entry> entry_;
  std::uint64_t key_;
  bool released_ = false;  // guarded by the core's mutex
};

class ServiceTicket final : public QueueTicket {
 public:
  ServiceTicket(std::shared_ptr<NamedLockBackend::Registry> registry, std::vector<std::string> ids,
                const HolderInfo& waiter)
      : registry_(std::move(registry)) {
    std::lock_guard<std::mutex> lock(registry_->mutex);
    place_ = registry_->arrivals++;
    registry_->queue[place_] = {std::move(ids), QueuePlace{waiter.priority, waiter.since}};
    registry_->bump();
  }
  ~ServiceTicket() override {
    std::lock_guard<std::mutex> lock(registry_->mutex);
    registry_->queue.erase(place_);
    registry_->bump();
  }
  void update_wanted(const std::vector<std::string>& resource_ids) override {
    std::lock_guard<std::mutex> lock(registry_->mutex);
    registry_->queue[place_].wanted = resource_ids;
    registry_->bump();
  }
  // The service has no queue: this orders the waiters of this process only (core queue_order).
  std::vector<std::vector<std::string>> wanted_by_earlier_waiters() override {
    std::lock_guard<std::mutex> lock(registry_->mutex);
    std::vector<QueuePlace> places;
    std::vector<const std::vector<std::string>*> wanted;
    std::size_t mine = 0;
    for (const auto& [arrival, waiting] : registry_->queue) {
      if (arrival == place_) mine = places.size();
      places.push_back(waiting.place);
      wanted.push_back(&waiting.wanted);
    }
    std::vector<std::vector<std::string>> earlier;
    for (const auto index : served_before(places, mine, std::chrono::system_clock::now(),
                                          std::chrono::milliseconds(registry_->aging_ms.load()))) {
      earlier.push_back(*wanted[index]);
    }
    return earlier;
  }

 private:
  std::shared_ptr<NamedLockBackend::Registry> registry_;
  std::uint64_t place_ = 0;
};

}  // namespace

NamedLockBackend::NamedLockBackend(std::shared_ptr<NamedLockStore> store,
                                   NamedLockBackendOptions options)
    : store_(std::move(store)), options_(std::move(options)) {
  if (!store_) throw ConfigError("lock backend: no named-lock store given");
  if (options_.poll_period.count() <= 0) {
    throw ConfigError(describe() + ": the poll period must be positive");
  }
  registry_ = Registry::of(store_->describe() + "\n" + options_.prefix);
  auto core = std::make_shared<Core>();
  core->store = store_;
  core->registry = registry_;
  core->lease = store_->lease();
  core->period = detail::heartbeat_period(options_.heartbeat_period, core->lease);
  keeper_ = std::make_shared<Keeper>();
  keeper_->core = core;
  keeper_->keepalive = std::thread([core] { core->keepalive_loop(); });
  keeper_->notifier = std::thread([core] { core->notifier_loop(); });
  reserved_ = std::make_shared<Reserved>();
}

// This object's reservations: the named lock that keeps each device out of service.
struct NamedLockBackend::Reserved {
  std::mutex mutex;
  std::map<std::string, std::pair<Reservation, std::unique_ptr<HeldLock>>> held;
};

NamedLockBackend::~NamedLockBackend() = default;

void NamedLockBackend::reserve(const std::string& resource_id, const Reservation& reservation) {
  std::lock_guard<std::mutex> guard(reserved_->mutex);
  auto found = reserved_->held.find(resource_id);
  if (found != reserved_->held.end() && !found->second.second->lost()) {
    found->second.first = reservation;
    return;
  }
  HolderInfo self;
  self.pid = static_cast<long>(::getpid());
  self.hostname = this_hostname();
  self.alloc_id = "reservation";
  self.since = std::chrono::system_clock::now();
  Resource resource;
  resource.id = resource_id;
  auto lock = try_lock(resource, self);
  if (!lock) {
    throw BackendError("cannot reserve " + resource_id + " on " + describe() +
                       ": it is held, and the service cannot queue a reservation; wait for its "
                       "holder (`lockable drain` does) or take it back with `lockable release " +
                       resource_id + " --force`");
  }
  reserved_->held[resource_id] = {reservation, std::move(lock)};
}

void NamedLockBackend::unreserve(const std::string& resource_id) {
  std::unique_ptr<HeldLock> own;
  {
    std::lock_guard<std::mutex> guard(reserved_->mutex);
    const auto found = reserved_->held.find(resource_id);
    if (found != reserved_->held.end()) {
      own = std::move(found->second.second);
      reserved_->held.erase(found);
    }
  }
  if (own) {
    own->release();
    return;
  }
  // Another process's reservation: its holder sees the loss at its next heartbeat and ends.
  store_->try_release(lock_name(resource_id), Clock::now() + kRequestBound);
}

std::vector<std::optional<Reservation>> NamedLockBackend::reservations_of(
    const std::vector<std::string>& ids) {
  std::vector<std::optional<Reservation>> out(ids.size());
  std::lock_guard<std::mutex> guard(reserved_->mutex);
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const auto found = reserved_->held.find(ids[i]);
    if (found == reserved_->held.end() || found->second.second->lost()) continue;
    if (found->second.first.expired(std::chrono::system_clock::now())) continue;
    out[i] = found->second.first;
  }
  return out;
}

std::optional<HolderInfo> NamedLockBackend::force_release(const std::string& resource_id,
                                                          const std::string& /*reason*/) {
  auto holder = holder_of(resource_id);
  if (!store_->try_release(lock_name(resource_id), Clock::now() + kRequestBound)) {
    return std::nullopt;  // it was free
  }
  if (!holder) {
    holder = HolderInfo{};
    holder->hostname = "(a holder the lock service does not name)";
  }
  return holder;
}

std::unique_ptr<HeldLock> NamedLockBackend::try_lock(const Resource& resource,
                                                     const HolderInfo& holder) {
  const std::string name = options_.prefix + resource.id;
  const auto sent = Clock::now();
  if (!store_->try_acquire(name, sent + kRequestBound)) return nullptr;
  auto entry = std::make_shared<Entry>();
  entry->id = resource.id;
  entry->name = name;
  entry->signal = std::make_shared<LockLossSignal>();
  entry->renewal_sent = sent;
  entry->last_attempt_end = Clock::now();
  Core& core = *keeper_->core;
  std::uint64_t key = 0;
  {
    std::lock_guard<std::mutex> lock(core.mutex);
    key = core.next_key++;
    core.entries[key] = entry;
  }
  core.wake.notify_all();
  {
    std::lock_guard<std::mutex> lock(registry_->mutex);
    registry_->holders[resource.id] = {holder, entry.get()};
    registry_->bump();
  }
  return std::make_unique<ServiceHeldLock>(keeper_, std::move(entry), key);
}

void NamedLockBackend::wait_for_change(Clock::time_point deadline) {
  // The service tells nobody about a release: poll, and wake at once for this process's own.
  const auto until = std::min(deadline, Clock::now() + options_.poll_period);
  std::unique_lock<std::mutex> lock(registry_->mutex);
  auto& seen = registry_->seen[std::this_thread::get_id()];
  registry_->changed.wait_until(lock, until, [&] { return seen != registry_->generation; });
  seen = registry_->generation;
}

std::unique_ptr<QueueTicket> NamedLockBackend::enqueue(const std::vector<std::string>& ids,
                                                       const HolderInfo& waiter) {
  return std::make_unique<ServiceTicket>(registry_, ids, waiter);
}

void NamedLockBackend::set_priority_aging(std::chrono::milliseconds aging) {
  registry_->aging_ms = aging.count();
}

std::optional<HolderInfo> NamedLockBackend::holder_of(const std::string& resource_id) {
  std::lock_guard<std::mutex> lock(registry_->mutex);
  const auto found = registry_->holders.find(resource_id);
  if (found == registry_->holders.end()) return std::nullopt;
  return found->second.first;
}

void NamedLockBackend::interrupt_waits() noexcept {
  std::lock_guard<std::mutex> lock(registry_->mutex);
  registry_->bump();
}

void NamedLockBackend::on_keepalive_error(KeepaliveErrorHandler handler) {
  std::lock_guard<std::mutex> lock(keeper_->core->mutex);
  keeper_->core->on_error = std::move(handler);
}

std::string NamedLockBackend::describe() const {
  return store_->describe() + " (lock names \"" + options_.prefix + "<id>\")";
}

void NamedLockBackend::heartbeat_now() {
  Core& core = *keeper_->core;
  std::unique_lock<std::mutex> lock(core.mutex);
  const std::uint64_t round = ++core.rounds_asked;
  core.wake.notify_all();
  core.idle.wait(lock, [&] {
    return core.stopping || (core.rounds_done >= round && core.losses.empty() && !core.delivering);
  });
}

}  // namespace lockable

namespace lockable {

std::unique_ptr<LockBackend> make_lock_service_backend(
    const std::string& spec, std::function<void(const std::string&)> log) {
  const std::string shown = http::redact_url(spec);
  const auto fail = [&](const std::string& why) {
    throw ConfigError("lock backend \"" + shown + "\": " + why);
  };
  std::string base = spec;
  NamedLockBackendOptions options;
  options.prefix = "lockable-";
  LockServiceOptions service;
  service.log = std::move(log);
  const auto query = spec.find('?');
  if (query != std::string::npos) {
    base = spec.substr(0, query);
    std::size_t position = query + 1;
    while (position <= spec.size()) {
      auto amp = spec.find('&', position);
      if (amp == std::string::npos) amp = spec.size();
      const std::string pair = spec.substr(position, amp - position);
      position = amp + 1;
      if (pair.empty()) continue;
      const auto eq = pair.find('=');
      const std::string name = pair.substr(0, eq);
      const std::string value = eq == std::string::npos ? "" : pair.substr(eq + 1);
      const auto seconds = [&] {
        try {
          std::size_t used = 0;
          const double number = std::stod(value, &used);
          if (used == value.size() && number > 0 && number < 1e7) {
            return milliseconds(static_cast<long long>(number * 1000));
          }
        } catch (const std::exception&) {
        }
        fail("parameter \"" + name + "\" is \"" + value +
             "\"; give a positive number of seconds, e.g. " + name + "=30");
        return milliseconds(0);
      };
      if (name == "prefix") {
        options.prefix = value;
      } else if (name == "lease") {
        service.lease = seconds();
      } else if (name == "poll") {
        options.poll_period = seconds();
      } else if (name == "heartbeat") {
        options.heartbeat_period = seconds();
      } else {
        fail("unknown parameter \"" + name + "\"; the parameters are prefix, lease, poll and " +
             "heartbeat");
      }
    }
  }
  if (options.heartbeat_period >= service.lease) {
    fail("the heartbeat (" + std::to_string(options.heartbeat_period.count()) +
         " ms) must be shorter than the lease (" + std::to_string(service.lease.count()) + " ms)");
  }
  service.base_url = base;
  std::shared_ptr<NamedLockStore> store;
  try {
    store = make_lock_service_store(std::move(service));
  } catch (const ConfigError& error) {
    fail(error.what());
  }
  return std::make_unique<NamedLockBackend>(std::move(store), std::move(options));
}

}  // namespace lockable
