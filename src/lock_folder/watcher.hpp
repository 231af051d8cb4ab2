#pragma once

// Private to the lock folder backend: how waiters learn that something changed. One inotify
// instance per backend watches the lock folder (pid files: IN_CLOSE_WRITE after a holder's
// unlock, IN_DELETE/IN_MOVED_TO/IN_CREATE when files come and go, IN_ATTRIB) and the queue folder
// (tickets coming and going); every waiting thread of the backend shares it. Without inotify (no
// instance or watch left for this account) waiters poll every kPollInterval instead. A probe
// never emits an event watched here (see lock_folder.cpp), so waiters never wake each other in
// a loop.
//
// Targeted wake-ups: the kernel tells every process watching the folder about every release, but
// the watcher asks its backend's WakeFilter whether an event can matter to one of its waiters
// (the device is one a waiter may take now, or the queue moved up for it; see
// TicketQueue::may_wake). Only then are the waiting threads woken to look at the folder again;
// every other process's watcher reads the event and goes back to sleep without looking.

#include <lockable/lock_folder.hpp>

#include "lock_folder/descriptors.hpp"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>

namespace lockable::folder_backend {

using Clock = std::chrono::steady_clock;

/// How often waiters look again when inotify is not available (no instance left), and how often
/// the read-only observer looks.
constexpr auto kPollInterval = std::chrono::milliseconds(100);

/// One event the watcher saw: on a lock folder entry (`<id>.pid`) or on a queue ticket.
struct FolderChange {
  bool ticket = false;   // in the queue folder, else in the lock folder
  bool removed = false;  // IN_DELETE (the entry is gone), else written, created, renamed in
  std::string name;      // the entry's name
};

/// Whether `change` can matter to a waiter of this backend (then its waiting threads look
/// again). Called on the polling thread, without the watcher's lock held.
using WakeFilter = std::function<bool(const FolderChange& change)>;

/// One inotify descriptor per backend, shared by every waiting thread: one thread polls, the
/// others wait on a condition variable, and a generation counter per thread makes sure no thread
/// misses an event another thread read for it. Without inotify it says so once through `log` and
/// waiters look again every kPollInterval instead.
class Watcher {
 public:
  /// Watches `folder` and `queue_dir` (making `queue_dir` again when it is missing). Wakes the
  /// waiting threads for the events that `filter` accepts (every event when it is empty), and
  /// for lost events (queue overflow, a watch removed).
  Watcher(const fs::path& folder, fs::path queue_dir, const LockFolderLog& log,
          WakeFilter filter = {});

  /// Blocks until a pid file or a ticket changed since this thread's last return, or `deadline`,
  /// or a safety tick (250 ms): spurious returns are allowed, a missed change is not. Any thread.
  /// A thread's first wait on a watcher returns at once: the watch may be younger than the
  /// caller's last look at the folder, so the caller must look again before it sleeps.
  void wait(Clock::time_point deadline);

 private:
  void fall_back(const fs::path& folder, int error, const std::string& fix,
                 const LockFolderLog& log);

  // Watches the queue folder, making it again when someone removed it (a temp cleaner, or a
  // `rmdir` between our mkdir and this watch). Only the constructor and the polling thread call
  // it. False with errno set when it cannot.
  bool watch_queue();

  // Polls until an interesting event or `deadline`; true when one arrived.
  bool poll_once(Clock::time_point deadline);

  // Reads every queued event; true when one names a lock file or a ticket.
  bool drain();

  fs::path queue_dir_;
  WakeFilter filter_;
  UniqueFd fd_;
  int folder_wd_ = -1;
  int queue_wd_ = -1;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool polling_ = false;
  // Starts ahead of every thread's `seen_` (0), so that each thread's first wait returns at once.
  std::uint64_t generation_ = 1;
  Clock::time_point follow_up_{};
  std::unordered_map<std::thread::id, std::uint64_t> seen_;
};

}  // namespace lockable::folder_backend
