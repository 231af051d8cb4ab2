#include <lockable/factory.hpp>
#include <lockable/lock_folder.hpp>
#include <lockable/lockable.hpp>

#include "core/assignment.hpp"
#include "core/backoff.hpp"
#include "core/json_text.hpp"
#include "core/queue_order.hpp"
#include "posix/this_process.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <thread>
#include <unordered_map>
#include <unordered_set>

namespace lockable {
namespace {

using Clock = std::chrono::steady_clock;

// Seconds as a steady-clock duration, saturated so that "wait forever" values cannot overflow.
Clock::duration to_duration(Seconds seconds) {
  const double capped = std::min(seconds.count(), 1e9);  // ~30 years
  return std::chrono::duration_cast<Clock::duration>(Seconds(std::max(capped, 0.0)));
}

// The implicit filters that `requirements` (as the user gave them) did not lift or name, for a
// no-match message: only those that were really added.
std::string implicit_filters_text(const Json& requirements, const std::string& hostname) {
  std::vector<std::string> added;
  if (!requirements.contains("online")) added.push_back("online=true");
  if (!requirements.contains("hostname")) added.push_back("hostname=" + hostname);
  if (added.empty()) return "; fix the requirement or the resources";
  std::string text =
      added.size() == 1 ? " (with the implicit filter " : " (with the implicit filters ";
  for (std::size_t i = 0; i < added.size(); ++i) text += (i > 0 ? " and " : "") + added[i];
  return text + "); fix the requirement or the resources, or set " +
         (added.size() == 1 ? added.front().substr(0, added.front().find('='))
                            : "online/hostname") +
         " to null in the requirement to lift " + (added.size() == 1 ? "the filter" : "a filter");
}

std::string describe_requirements(const std::vector<Requirements>& requirements) {
  if (requirements.size() == 1) return requirements.front().to_string();
  std::string text = "[";
  for (std::size_t i = 0; i < requirements.size(); ++i) {
    if (i > 0) text += ", ";
    text += requirements[i].to_string();
  }
  return text + "]";
}

// The observers of one Lockable, shared with its locks (which may outlive it) so that a release
// is reported wherever it happens.
class EventHub {
 public:
  void add(AllocationObserver observer) {
    std::lock_guard<std::mutex> guard(mutex_);
    observers_.push_back(std::move(observer));
    active_ = true;
  }
  // Cheap check so that an unobserved Lockable builds no events on its fast path.
  bool active() const noexcept { return active_.load(std::memory_order_relaxed); }
  void emit(AllocationEvent event) const noexcept {
    std::vector<AllocationObserver> observers;
    try {
      std::lock_guard<std::mutex> guard(mutex_);
      observers = observers_;
    } catch (...) {
      return;  // out of memory while reporting: the lock or release itself stands
    }
    event.monotonic_time = Clock::now();
    event.wall_time = std::chrono::system_clock::now();
    for (const auto& observer : observers) {
      try {
        observer(event);
      } catch (...) {
        // An observer must not change the outcome of a lock or a release.
      }
    }
  }

 private:
  mutable std::mutex mutex_;
  std::vector<AllocationObserver> observers_;
  std::atomic<bool> active_{false};
};

// Devices held through any Lockable of this process, by the thread that locked them. A thread
// that asks for a device only it holds would wait for itself for ever (the plugin's global device
// and a suite of the same program both wanting it), so such a request fails at once. Another
// thread's device is waited for as usual: that thread may release it.
class SelfHeldDevices {
 public:
  struct Entry {
    std::string alloc_id;
    Json requirements;  // as text only in the message that names it
    std::chrono::system_clock::time_point since;
    // Valid while the entry exists: the lock removes its entry before it goes away.
    const HeldLock* lock = nullptr;
  };
  // Lock key (SelfHeldDevices::key) -> entry.
  using Held = std::unordered_map<std::string, Entry>;

  static SelfHeldDevices& instance() {
    static auto* devices = new SelfHeldDevices();  // never destroyed: locks may outlive statics
    return *devices;
  }
  static std::string key(const std::string& backend, const std::string& id) {
    return backend + '\0' + id;
  }
  // Returns a token for remove(): the locking thread (the lock may be released by another).
  std::thread::id add(std::string key, Entry entry) {
    const auto thread = std::this_thread::get_id();
    std::lock_guard<std::mutex> guard(mutex_);
    by_thread_[thread][std::move(key)] = std::move(entry);
    return thread;
  }
  void remove(std::thread::id thread, const std::string& key) {
    std::lock_guard<std::mutex> guard(mutex_);
    const auto it = by_thread_.find(thread);
    if (it == by_thread_.end()) return;
    it->second.erase(key);
    if (it->second.empty()) by_thread_.erase(it);
  }
  // A lost lock (lease expired) no longer keeps the device from this thread.
  Held held_by_this_thread() const {
    std::lock_guard<std::mutex> guard(mutex_);
    const auto it = by_thread_.find(std::this_thread::get_id());
    Held held;
    if (it == by_thread_.end()) return held;
    for (const auto& [key, entry] : it->second) {
      if (!entry.lock->lost()) held.emplace(key, entry);
    }
    return held;
  }

 private:
  mutable std::mutex mutex_;
  std::unordered_map<std::thread::id, Held> by_thread_;
};

// The backend's lock, plus its entry in SelfHeldDevices for as long as it is held, and the
// kLost / kReleased events of its allocation.
class TrackedLock final : public HeldLock {
 public:
  // `granted` is the kGranted event when it was reported, else nullopt: a grant nobody observed
  // has no release or loss reported either (an observer added meanwhile never sees half a pair).
  TrackedLock(std::unique_ptr<HeldLock> lock, std::string key, SelfHeldDevices::Entry entry,
              std::shared_ptr<const EventHub> events, std::optional<AllocationEvent> granted)
      : lock_(std::move(lock)),
        key_(std::move(key)),
        events_(std::move(events)),
        event_(std::move(granted)),
        granted_at_(Clock::now()) {
    entry.lock = this;
    thread_ = SelfHeldDevices::instance().add(key_, std::move(entry));
    lock_->on_lock_loss([this](const std::string& reason) {
      // Runs on the backend's thread, never after lock_->release() has returned.
      emit(AllocationEvent::Kind::kLost, reason);
      loss_.notify(reason);
    });
  }
  ~TrackedLock() override { release(); }
  void release() noexcept override {
    // Before the unlock: a hold must end before the next holder's grant (metrics timelines).
    const auto unlocking = Clock::now();
    lock_->release();
    loss_.disarm();
    if (released_.exchange(true)) return;
    SelfHeldDevices::instance().remove(thread_, key_);
    emit(AllocationEvent::Kind::kReleased, {}, unlocking);
  }
  bool lost() const noexcept override { return lock_->lost(); }
  std::optional<std::uint64_t> fencing_token() const noexcept override {
    return lock_->fencing_token();
  }
  void on_lock_loss(LockLossHandler handler) override { loss_.set_handler(std::move(handler)); }

 private:
  void emit(AllocationEvent::Kind kind, const std::string& reason,
            std::optional<Clock::time_point> until = {}) const noexcept {
    if (!event_ || !events_->active()) return;
    try {
      AllocationEvent event = *event_;
      event.kind = kind;
      event.queue_time.reset();
      event.hold_time = until.value_or(Clock::now()) - granted_at_;
      event.reason = reason;
      events_->emit(std::move(event));
    } catch (...) {
      // Out of memory while reporting: the release itself has happened.
    }
  }

  std::unique_ptr<HeldLock> lock_;
  std::string key_;
  std::thread::id thread_;
  std::shared_ptr<const EventHub> events_;
  std::optional<AllocationEvent> event_;  // the kGranted event: ids, requirements, host
  Clock::time_point granted_at_;
  LockLossSignal loss_;
  std::atomic<bool> released_{false};
};

}  // namespace

struct Lockable::Impl {
  Options options;
  std::string hostname;
  std::unique_ptr<ResourceProvider> provider;
  std::unique_ptr<LockBackend> backend;

  static constexpr auto kRecheckInterval = std::chrono::milliseconds(50);
  // Guards `loaded` and `last_check`; held only to copy them, never while loading.
  std::mutex resources_mutex;
  // Shared, never mutated: a waiter re-reading it on every wake-up must not copy every resource.
  std::shared_ptr<const Resources> loaded;
  Clock::time_point last_check{};
  // One loader at a time; guards the provider and `load_problem`.
  std::mutex load_mutex;
  // The last load error reported while waiting: said once, not on every wake-up.
  std::string load_problem;
  // Set by cancel(), for good: like a stop token, it ends waits in progress and refuses new ones.
  std::atomic<bool> cancelled{false};

  void log(const std::string& line) const {
    if (options.log) {
      options.log(line);
    } else {
      std::cerr << line << '\n';
    }
  }

  // Current resources: loaded once, reloaded when the provider says they may have changed. While
  // waiting (`tolerate_errors`), a list that turns invalid (an editor half-way through a save)
  // keeps the previous one instead of aborting the wait.
  //
  // Loading and change checks run under `load_mutex` only, never under `resources_mutex`, so a
  // slow (remote) provider stalls nobody who already has a list: a waiter uses the list it has
  // while another thread loads, and checks for changes at most every kRecheckInterval. A new
  // request always checks, so it sees a file written just before it.
  std::shared_ptr<const Resources> current_resources(bool tolerate_errors) {
    std::unique_lock<std::mutex> loading(load_mutex, std::defer_lock);
    if (tolerate_errors) {
      std::lock_guard<std::mutex> guard(resources_mutex);
      if (loaded && (Clock::now() - last_check < kRecheckInterval || !loading.try_lock())) {
        return loaded;
      }
    }
    if (!loading.owns_lock()) loading.lock();
    std::shared_ptr<const Resources> current;
    {
      std::lock_guard<std::mutex> guard(resources_mutex);
      current = loaded;
      last_check = Clock::now();
    }
    if (current && !provider->changed()) return current;
    try {
      current = std::make_shared<const Resources>(provider->load());
      if (!load_problem.empty()) {
        load_problem.clear();
        log("lockable: " + provider->describe() + " is valid again; using it");
      }
    } catch (const Error& error) {
      if (!tolerate_errors || !current) throw;
      if (load_problem != error.what()) {
        load_problem = error.what();
        log("lockable: keeping the previous resources until this is fixed: " + load_problem);
      }
      return current;
    }
    std::lock_guard<std::mutex> guard(resources_mutex);
    loaded = current;
    return current;
  }

  // backend->describe(), kept: it names the store in SelfHeldDevices' keys.
  std::string backend_name;

  // The last requirement given and its form with the implicit filters: a program asks for the
  // same requirement again and again, and adding the filters compiles a query. Keyed by the
  // compiled query's identity (Requirements made from the same text by `parse` twice are two
  // keys): `effective_of` keeps its query alive, so its address is never reused meanwhile.
  std::mutex effective_mutex;
  std::optional<Requirements> effective_of;
  std::shared_ptr<const Requirements> effective;
  std::shared_ptr<const Requirements> with_implicit_filters(const Requirements& requirement) {
    {
      std::lock_guard<std::mutex> guard(effective_mutex);
      if (effective_of && &detail::query_of(*effective_of) == &detail::query_of(requirement)) {
        return effective;
      }
    }
    auto made = std::make_shared<const Requirements>(requirement.with_implicit_filters(hostname));
    std::lock_guard<std::mutex> guard(effective_mutex);
    effective_of = requirement;
    effective = made;
    return made;
  }

  // Drops the devices this thread holds already from `candidates`; throws NoMatchError when the
  // request could then never be served, since it would wait for the caller itself.
  void exclude_own_devices(const Resources& resources,
                           const std::vector<Requirements>& requirements,
                           std::vector<std::vector<std::size_t>>& candidates) const;

  std::shared_ptr<EventHub> events = std::make_shared<EventHub>();

  // One lock()/lock_many() call, for its events.
  struct Request {
    std::string id;  // empty when nobody observes
    Json requirements = Json::array();
  };
  AllocationEvent event_of(const Request& request, AllocationEvent::Kind kind) const {
    AllocationEvent event;
    event.kind = kind;
    event.request_id = request.id;
    event.requirements = request.requirements;
    event.hostname = hostname;
    event.pid = static_cast<long>(posix::this_process_id());
    return event;
  }

  class Wait;

  // Reports the request and how it ended around wait_and_lock().
  std::vector<Allocation> acquire(const std::vector<Requirements>& requirements,
                                  std::optional<Seconds> timeout);
  std::vector<Allocation> wait_and_lock(const std::vector<Requirements>& requirements,
                                        std::optional<Seconds> timeout, const Request& request);
};

std::vector<Allocation> Lockable::Impl::acquire(const std::vector<Requirements>& requirements,
                                                std::optional<Seconds> timeout) {
  if (!events->active()) return wait_and_lock(requirements, timeout, Request{});
  Request request{new_uuid(), Json::array()};
  for (const auto& requirement : requirements) request.requirements.push_back(requirement.json());
  events->emit(event_of(request, AllocationEvent::Kind::kRequested));
  const auto ended = [&](AllocationEvent::Kind kind, const char* what) {
    auto event = event_of(request, kind);
    event.reason = what;
    events->emit(std::move(event));
  };
  try {
    return wait_and_lock(requirements, timeout, request);
  } catch (const TimeoutError& error) {
    ended(AllocationEvent::Kind::kTimedOut, error.what());
    throw;
  } catch (const NoMatchError& error) {
    ended(AllocationEvent::Kind::kNoMatch, error.what());
    throw;
  } catch (const CancelledError& error) {
    ended(AllocationEvent::Kind::kCancelled, error.what());
    throw;
  } catch (const std::exception& error) {
    ended(AllocationEvent::Kind::kFailed, error.what());
    throw;
  }
}

void Lockable::Impl::exclude_own_devices(const Resources& resources,
                                         const std::vector<Requirements>& requirements,
                                         std::vector<std::vector<std::size_t>>& candidates) const {
  const auto held = SelfHeldDevices::instance().held_by_this_thread();
  if (held.empty()) return;
  std::vector<std::string> own;  // "id: held by this very thread since ..., allocation ..."
  std::set<std::size_t> own_indexes;
  for (const auto& list : candidates) {
    for (const auto index : list) {
      if (own_indexes.count(index) != 0) continue;
      const std::string& id = resources[index].id;
      const auto entry = held.find(SelfHeldDevices::key(backend_name, id));
      if (entry == held.end()) continue;
      own_indexes.insert(index);
      own.push_back(id + ": held by this very thread since " + format_iso8601(entry->second.since) +
                    ", allocation " + entry->second.alloc_id + " for " +
                    detail::dump(entry->second.requirements));
    }
  }
  if (own.empty()) return;
  for (auto& list : candidates) {
    list.erase(std::remove_if(list.begin(), list.end(),
                              [&](std::size_t index) { return own_indexes.count(index) != 0; }),
               list.end());
  }
  const bool servable =
      std::none_of(candidates.begin(), candidates.end(), [](const auto& l) { return l.empty(); }) &&
      assign_distinct(candidates).has_value();
  if (servable) return;
  throw NoMatchError(provider->describe() + ": " + describe_requirements(requirements) +
                         " can only be served by devices this thread already holds; waiting "
                         "would wait for itself. Release the earlier allocation first (e.g. a "
                         "program-wide --lockable_requirements device), ask for another device, "
                         "or add one to the resources",
                     own);
}

// One lock()/lock_many() call while it waits: the state kept across attempts and the steps of
// one attempt, in the order wait_and_lock() runs them.
class Lockable::Impl::Wait {
 public:
  using Candidates = std::vector<std::vector<std::size_t>>;

  Wait(Impl& impl, const std::vector<Requirements>& requirements, std::optional<Seconds> timeout,
       const Request& request)
      : impl_(impl),
        requirements_(requirements),
        request_(request),
        requested_(Clock::now()),
        limit_(timeout.value_or(impl.options.default_timeout)),
        backoff_(std::chrono::milliseconds(50), std::chrono::seconds(5),
                 static_cast<std::uint64_t>(posix::this_process_id()) ^
                     static_cast<std::uint64_t>(requested_.time_since_epoch().count())) {
    if (!(limit_.count() >= 0)) {
      throw ConfigError("timeout " + std::to_string(limit_.count()) +
                        " s is negative; pass a timeout of 0 or more seconds");
    }
    deadline_ = requested_ + to_duration(limit_);
    interval_ = to_duration(impl.options.progress_interval);
    next_progress_ = requested_ + interval_;
    effective_.reserve(requirements.size());
    for (const auto& requirement : requirements) {
      effective_.push_back(impl.with_implicit_filters(requirement));
    }
  }

  // The request as text, for messages only: made when one is, not on every lock.
  std::string wanted_text() const { return describe_requirements(requirements_); }

  void throw_if_cancelled() const {
    if (!impl_.cancelled.load()) return;
    throw CancelledError("the wait for " + wanted_text() + " was cancelled after " +
                         format_seconds(Clock::now() - requested_) +
                         " s; nothing is held and the queue entry is gone");
  }

  // The resources to match against: a fresh load for a new request, the list in hand while
  // waiting unless it is due for a change check (see current_resources).
  std::shared_ptr<const Resources> load_resources_if_due() {
    return impl_.current_resources(waiting_);
  }

  // For each requirement, the indexes of the devices that may serve it. Throws NoMatchError when
  // the request can never be served from `resources`.
  Candidates match(const Resources& resources) const {
    Candidates candidates;
    for (std::size_t i = 0; i < requirements_.size(); ++i) {
      candidates.push_back(find_matches(resources, *effective_[i]));
      if (candidates.back().empty()) {
        throw NoMatchError(impl_.provider->describe() + ": no resource matches " +
                               requirements_[i].to_string() +
                               implicit_filters_text(requirements_[i].json(), impl_.hostname),
                           explain_mismatches(resources, *effective_[i]));
      }
    }
    impl_.exclude_own_devices(resources, requirements_, candidates);
    if (!assign_distinct(candidates)) {
      throw NoMatchError(impl_.provider->describe() + ": requirements " + wanted_text() + " need " +
                             std::to_string(requirements_.size()) +
                             " distinct devices, but the matching devices cannot be shared out "
                             "one per requirement; add devices or relax a requirement",
                         {});
    }
    return candidates;
  }

  // Every id any requirement may use, in resource order.
  static std::vector<std::string> wanted_ids(const Resources& resources,
                                             const Candidates& candidates) {
    std::set<std::size_t> indexes;
    for (const auto& list : candidates) indexes.insert(list.begin(), list.end());
    std::vector<std::string> wanted;
    for (const auto index : indexes) wanted.push_back(resources[index].id);
    return wanted;
  }

  // Joins the fair queue (or updates what this waiter wants there) and returns the ids of
  // `wanted` that no earlier waiter is owed.
  std::unordered_set<std::string> enter_queue(const std::vector<std::string>& wanted) {
    if (!ticket_) {
      const long pid = posix::this_process_id();
      ticket_ = impl_.backend->enqueue(wanted, HolderInfo{pid,
                                                          impl_.hostname,
                                                          {},
                                                          std::chrono::system_clock::now(),
                                                          requirements_.front().json(),
                                                          impl_.options.priority,
                                                          {}});
      ticket_ids_ = wanted;
    } else if (ticket_ids_ != wanted) {
      ticket_->update_wanted(wanted);
      ticket_ids_ = wanted;
    }
    const auto claimable = claimable_ids(wanted, ticket_->wanted_by_earlier_waiters());
    return std::unordered_set<std::string>(claimable.begin(), claimable.end());
  }

  // Never hold and wait: takes a full set with non-blocking attempts, or nothing. Returns the
  // allocations, or nullopt when every assignment of the claimable devices met a busy one.
  std::optional<std::vector<Allocation>> try_claim(
      const Resources& resources, const Candidates& candidates,
      const std::unordered_set<std::string>& claimable) {
    std::set<std::size_t> busy;
    for (;;) {
      Candidates usable(candidates.size());
      for (std::size_t i = 0; i < candidates.size(); ++i) {
        for (const auto index : candidates[i]) {
          if (claimable.count(resources[index].id) != 0 && busy.count(index) == 0 &&
              unusable_.count(resources[index].id) == 0) {
            usable[i].push_back(index);
          }
        }
      }
      const auto assignment = assign_distinct(usable);
      if (!assignment) return std::nullopt;
      std::vector<std::size_t> order;
      for (std::size_t i = 0; i < assignment->size(); ++i) order.push_back(i);
      std::stable_partition(order.begin(), order.end(), [&](std::size_t i) {
        return found_busy_.count(resources[(*assignment)[i]].id) != 0;
      });
      std::vector<std::unique_ptr<HeldLock>> locks(assignment->size());
      std::vector<HolderInfo> holders(assignment->size());
      bool complete = true;
      for (const auto i : order) {
        const Resource& resource = resources[(*assignment)[i]];
        HolderInfo holder{static_cast<long>(posix::this_process_id()),
                          impl_.hostname,
                          new_uuid(),
                          std::chrono::system_clock::now(),
                          requirements_[i].json(),
                          impl_.options.priority,
                          {}};
        try {
          locks[i] = impl_.backend->try_lock(resource, holder);
        } catch (const ResourceUnusableError& error) {
          if (unusable_.emplace(resource.id, error.what()).second) {
            impl_.log("lockable: warning: skipping " + resource.id + ": " + error.what());
          }
          complete = false;
          break;
        }
        if (!locks[i]) {
          busy.insert((*assignment)[i]);
          found_busy_.insert(resource.id);
          complete = false;
          break;
        }
        found_busy_.erase(resource.id);
        holders[i] = std::move(holder);
      }
      if (!complete) {
        for (auto& lock : locks) {
          if (lock) lock->release();
        }
        continue;
      }
      ticket_.reset();  // leave the queue at once: the next waiter may move up
      return grant(resources, *assignment, locks, holders);
    }
  }

  // Throws BackendError when the devices whose lock files are unusable leave no way to serve
  // the request: waiting could never end well.
  void fail_if_only_unusable_left(const Resources& resources, const Candidates& candidates) const {
    if (unusable_.empty()) return;
    Candidates usable(candidates.size());
    for (std::size_t i = 0; i < candidates.size(); ++i) {
      for (const auto index : candidates[i]) {
        if (unusable_.count(resources[index].id) == 0) usable[i].push_back(index);
      }
    }
    if (assign_distinct(usable)) return;
    std::string text = "no usable device for " + wanted_text() + " in " +
                       impl_.backend->describe() +
                       ": the lock files of the matching devices cannot be used:";
    for (const auto& entry : unusable_) text += "\n  " + entry.first + ": " + entry.second;
    throw BackendError(text);
  }

  // At the deadline throws TimeoutError naming each wanted device's holder; when a progress line
  // is due, logs one. Both ask the store for every holder in one holders_of() call (one round
  // trip for a remote store).
  void report_progress(const std::vector<std::string>& wanted,
                       const std::unordered_set<std::string>& claimable) {
    const auto now = Clock::now();
    if (now < deadline_ && now < next_progress_) return;
    const auto holders = impl_.backend->holders_of(wanted);
    // Waiters whose devices are out of service are told why (lockable reserve / drain).
    std::vector<std::optional<Reservation>> reservations;
    try {
      reservations = impl_.backend->reservations_of(wanted);
    } catch (const Error&) {
      // The reasons are a courtesy: the holders above still name who has the devices.
    }
    std::vector<std::string> busy_lines;
    std::size_t held = 0;
    for (std::size_t i = 0; i < wanted.size(); ++i) {
      const auto& id = wanted[i];
      if (i < reservations.size() && reservations[i]) {
        busy_lines.push_back(id + ": reserved, " + reservations[i]->describe());
        ++held;
      } else if (i < holders.size() && holders[i]) {
        busy_lines.push_back(id + ": held by " + holders[i]->describe());
        ++held;
      } else if (claimable.count(id) == 0) {
        busy_lines.push_back(id + ": free, but an earlier waiter in the queue gets it first");
      } else {
        // Released since the attempt above: the next attempt (right after this line) takes it.
        busy_lines.push_back(id + ": released just now, trying it again");
      }
    }
    if (now >= deadline_) {
      throw TimeoutError("no device for " + wanted_text() + " became free within " +
                             format_seconds(to_duration(limit_)) + " s (" +
                             std::to_string(wanted.size()) + " matching in " +
                             impl_.backend->describe() +
                             "); raise the timeout or free a device held by:",
                         busy_lines);
    }
    std::string line = "lockable: waiting for " + wanted_text() + ": " +
                       std::to_string(wanted.size()) + " matching, " + std::to_string(held) +
                       " held:";
    for (const auto& busy_line : busy_lines) line += " " + busy_line + ";";
    line += " waited " + format_seconds(now - requested_) + " s, " +
            format_seconds(std::max(deadline_ - now, Clock::duration::zero())) + " s left";
    impl_.log(line);
    while (next_progress_ <= now) next_progress_ += std::max(interval_, Clock::duration(1));
  }

  // Sleeps until the store says something may have changed, the next progress line, or the
  // deadline. The first time, reports the request as queued.
  void wait_for_change(const std::vector<std::string>& wanted) {
    if (!waiting_ && impl_.events->active()) {
      auto queued = impl_.event_of(request_, AllocationEvent::Kind::kQueued);
      queued.resource_ids = wanted;
      impl_.events->emit(std::move(queued));
    }
    waiting_ = true;
    impl_.backend->wait_for_change(std::min(deadline_, next_progress_));
    backoff_.reset();
  }

  // A store that cannot answer for a moment: retry with capped, jittered backoff inside the
  // caller's timeout (a TimeoutError naming `error` once it has passed). Anything held in the
  // failed attempt was released by the unwinding.
  void back_off(const TemporarilyUnavailableError& error) {
    const auto now = Clock::now();
    if (now >= deadline_) {
      throw TimeoutError("no device for " + wanted_text() + " within " +
                             format_seconds(to_duration(limit_)) + " s: " + impl_.backend_name +
                             " stayed unavailable (" + error.what() +
                             "); check the lock store, or raise the timeout",
                         {});
    }
    const auto delay = std::min<Clock::duration>(backoff_.next(), deadline_ - now);
    impl_.log("lockable: " + impl_.backend_name + " is unavailable for a moment (" + error.what() +
              "); retry " + std::to_string(backoff_.failures()) + " in " + format_seconds(delay) +
              " s, " + format_seconds(deadline_ - now) + " s left");
    const auto retry_at = now + delay;
    while (!impl_.cancelled.load() && Clock::now() < retry_at) {
      std::this_thread::sleep_for(
          std::min<Clock::duration>(retry_at - Clock::now(), std::chrono::milliseconds(50)));
    }
  }

 private:
  // The allocations of a complete set of locks, each reported as granted.
  std::vector<Allocation> grant(const Resources& resources,
                                const std::vector<std::size_t>& assignment,
                                std::vector<std::unique_ptr<HeldLock>>& locks,
                                std::vector<HolderInfo>& holders) const {
    const auto queue_time = Clock::now() - requested_;
    std::vector<Allocation> allocations;
    for (std::size_t i = 0; i < locks.size(); ++i) {
      const Resource& resource = resources[assignment[i]];
      std::optional<AllocationEvent> granted;
      if (impl_.events->active()) {  // built only for an observer: most programs have none
        granted = impl_.event_of(request_, AllocationEvent::Kind::kGranted);
        granted->alloc_id = holders[i].alloc_id;
        granted->resource_ids = {resource.id};
        granted->requirements = Json::array({requirements_[i].json()});
        granted->queue_time = queue_time;
        granted->fencing_token = locks[i]->fencing_token();
        impl_.events->emit(*granted);
      }
      auto lock = std::make_unique<TrackedLock>(
          std::move(locks[i]), SelfHeldDevices::key(impl_.backend_name, resource.id),
          SelfHeldDevices::Entry{holders[i].alloc_id, requirements_[i].json(), holders[i].since},
          impl_.events, std::move(granted));
      allocations.emplace_back(requirements_[i].json(), resource, holders[i].alloc_id, queue_time,
                               std::move(lock));
    }
    return allocations;
  }

  Impl& impl_;
  const std::vector<Requirements>& requirements_;
  const Request& request_;
  const Clock::time_point requested_;
  const Seconds limit_;
  Clock::time_point deadline_{};
  Clock::duration interval_{};
  Clock::time_point next_progress_{};
  // The requirements with the implicit filters (online, this host) added.
  std::vector<std::shared_ptr<const Requirements>> effective_;
  std::unique_ptr<QueueTicket> ticket_;
  std::vector<std::string> ticket_ids_;
  // Ids found busy at the last attempt. A set is tried busy-first: locking (then releasing) a free
  // part before failing on a busy one writes its lock file, and that write wakes this very waiter,
  // which would spin for as long as the busy part stays busy.
  std::set<std::string> found_busy_;
  // Devices whose lock file is unusable (a symlink, a FIFO...): skipped for this request, with one
  // warning each.
  std::map<std::string, std::string> unusable_;
  // True once the request has waited: later loads keep the previous list when the new one is
  // invalid, and the kQueued event has been sent.
  bool waiting_ = false;
  detail::Backoff backoff_;
};

std::vector<Allocation> Lockable::Impl::wait_and_lock(const std::vector<Requirements>& requirements,
                                                      std::optional<Seconds> timeout,
                                                      const Request& request) {
  Wait wait(*this, requirements, timeout, request);
  for (;;) {
    wait.throw_if_cancelled();
    try {
      const auto resources = wait.load_resources_if_due();
      const auto candidates = wait.match(*resources);
      const auto wanted = Wait::wanted_ids(*resources, candidates);
      const auto claimable = wait.enter_queue(wanted);
      if (auto allocations = wait.try_claim(*resources, candidates, claimable)) {
        return std::move(*allocations);
      }
      wait.fail_if_only_unusable_left(*resources, candidates);
      wait.report_progress(wanted, claimable);
      wait.wait_for_change(wanted);
    } catch (const TemporarilyUnavailableError& error) {
      wait.back_off(error);
    }
  }
}

namespace {

// Checked before anything touches the disk: a bad option must change nothing.
void validate(const Options& options) {
  if (!options.lock_backend.empty() && !options.lock_folder.empty() &&
      options.lock_backend != options.lock_folder.string()) {
    throw ConfigError("both a lock folder (" + options.lock_folder.string() +
                      ") and a lock backend (" + options.lock_backend +
                      ") are given; they name different stores, so give only one");
  }
  if (!(options.default_timeout.count() >= 0) || !std::isfinite(options.default_timeout.count())) {
    throw ConfigError("Options::default_timeout must be a finite number of seconds >= 0, got " +
                      std::to_string(options.default_timeout.count()));
  }
  if (options.priority < kMinPriority || options.priority > kMaxPriority) {
    throw ConfigError("Options::priority must be from " + std::to_string(kMinPriority) + " to " +
                      std::to_string(kMaxPriority) + ", got " + std::to_string(options.priority));
  }
  if (!(options.priority_aging.count() >= 0.001) ||
      !std::isfinite(options.priority_aging.count())) {
    throw ConfigError(
        "Options::priority_aging must be a finite number of seconds >= 0.001 (aging is what "
        "keeps low priorities from starving), got " +
        std::to_string(options.priority_aging.count()));
  }
  if (!(options.progress_interval.count() > 0)) {
    throw ConfigError("Options::progress_interval must be > 0 seconds, got " +
                      std::to_string(options.progress_interval.count()));
  }
}

}  // namespace

Lockable::Lockable(Options options) : impl_(std::make_unique<Impl>()) {
  validate(options);
  std::unique_ptr<ResourceProvider> provider;
  if (const auto* path = std::get_if<std::filesystem::path>(&options.resources)) {
    // A resources URL's first fetch retries a sick server; it must not outlast the wait the user
    // asked for (at least a second for one attempt, at most the provider's 30 s).
    const Seconds bound =
        std::clamp(options.default_timeout, Seconds(1.0), Seconds(UrlProviderOptions{}.timeout));
    const auto fetch_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(bound);
    provider = make_resource_provider(path->string(), fetch_timeout);
  } else {
    provider = make_list_provider(std::get<Json>(options.resources));
  }
  auto backend = make_lock_backend(
      options.lock_backend.empty() ? options.lock_folder.string() : options.lock_backend,
      options.log);
  Lockable tmp(std::move(options), std::move(provider), std::move(backend));
  impl_ = std::move(tmp.impl_);
}

Lockable::Lockable(Options options, std::unique_ptr<ResourceProvider> provider,
                   std::unique_ptr<LockBackend> backend)
    : impl_(std::make_unique<Impl>()) {
  validate(options);
  if (!provider || !backend) {
    throw ConfigError("Lockable needs a resource provider and a lock backend; pass both");
  }
  impl_->hostname = options.hostname.empty() ? this_hostname() : options.hostname;
  impl_->options = std::move(options);
  impl_->provider = std::move(provider);
  impl_->backend = std::move(backend);
  impl_->backend_name = impl_->backend->describe();
  impl_->backend->set_priority_aging(
      std::chrono::duration_cast<std::chrono::milliseconds>(impl_->options.priority_aging));
  if (!impl_->options.metrics_file.empty()) {
    // A copy of the log function: a lock (and its release event) may outlive this object.
    add_observer(make_allocation_log(impl_->options.metrics_file, impl_->backend_name,
                                     impl_->options.metrics_label,
                                     [log = impl_->options.log](const std::string& line) {
                                       if (log) {
                                         log(line);
                                       } else {
                                         std::cerr << line << '\n';
                                       }
                                     }));
  }
}

Lockable::~Lockable() = default;

Allocation Lockable::lock(const Requirements& requirements, std::optional<Seconds> timeout) {
  auto allocations = impl_->acquire({requirements}, timeout);
  return std::move(allocations.front());
}

Allocation Lockable::lock(std::string_view requirements, std::optional<Seconds> timeout) {
  return lock(Requirements::parse(requirements), timeout);
}

std::vector<Allocation> Lockable::lock_many(const std::vector<Requirements>& requirements,
                                            std::optional<Seconds> timeout) {
  if (requirements.empty()) return {};
  return impl_->acquire(requirements, timeout);
}

void Lockable::cancel() noexcept {
  impl_->cancelled = true;
  // A remote backend's wait (a watch) may block until its deadline; wake it to see the flag.
  impl_->backend->interrupt_waits();
}

void Lockable::add_observer(AllocationObserver observer) {
  if (!observer)
    throw ConfigError("Lockable::add_observer: the observer is empty; pass a function");
  impl_->events->add(std::move(observer));
}

const char* to_string(AllocationEvent::Kind kind) noexcept {
  switch (kind) {
    case AllocationEvent::Kind::kRequested:
      return "requested";
    case AllocationEvent::Kind::kQueued:
      return "queued";
    case AllocationEvent::Kind::kGranted:
      return "granted";
    case AllocationEvent::Kind::kReleased:
      return "released";
    case AllocationEvent::Kind::kLost:
      return "lost";
    case AllocationEvent::Kind::kTimedOut:
      return "timed_out";
    case AllocationEvent::Kind::kNoMatch:
      return "no_match";
    case AllocationEvent::Kind::kCancelled:
      return "cancelled";
    case AllocationEvent::Kind::kFailed:
      return "failed";
    case AllocationEvent::Kind::kForced:
      return "forced";
    case AllocationEvent::Kind::kReserved:
      return "reserved";
    case AllocationEvent::Kind::kUnreserved:
      return "unreserved";
  }
  return "unknown";
}

std::vector<Allocation> Lockable::lock_many(std::initializer_list<std::string_view> requirements,
                                            std::optional<Seconds> timeout) {
  std::vector<Requirements> parsed;
  parsed.reserve(requirements.size());
  for (const auto text : requirements) parsed.push_back(Requirements::parse(text));
  return lock_many(parsed, timeout);
}

std::vector<ResourceStatus> Lockable::status() {
  const auto resources = impl_->current_resources(false);
  // The holders of every online device in one holders_of() call: one round trip for a remote
  // store, however many devices the lab has.
  std::vector<std::string> online_ids;
  for (const auto& resource : *resources) {
    if (resource.online()) online_ids.push_back(resource.id);
  }
  auto holders = online_ids.empty() ? std::vector<std::optional<HolderInfo>>()
                                    : impl_->backend->holders_of(online_ids);
  std::vector<ResourceStatus> result;
  std::size_t next_holder = 0;
  for (const auto& resource : *resources) {
    ResourceStatus status;
    if (!resource.online()) {
      status.state = ResourceStatus::State::kOffline;
    } else if (const auto at = next_holder++; at < holders.size() && holders[at]) {
      status.state = ResourceStatus::State::kBusy;
      status.holder = std::move(holders[at]);
    }
    if (resource.online()) status.lost = impl_->backend->lost_hold(resource.id).value_or("");
    status.resource = resource;
    result.push_back(std::move(status));
  }
  return result;
}

Resources Lockable::resources() { return *impl_->current_resources(false); }

const std::string& Lockable::hostname() const noexcept { return impl_->hostname; }

const LockBackend& Lockable::backend() const noexcept { return *impl_->backend; }

std::string this_hostname() {
  char name[HOST_NAME_MAX + 1] = {};
  if (::gethostname(name, sizeof name - 1) != 0 || name[0] == '\0') return "localhost";
  return name;
}

}  // namespace lockable
