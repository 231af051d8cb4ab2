#pragma once

// Private to the lock folder backend: how waiters learn that something changed. One inotify
// instance per backend, shared by every waiting thread of the backend; without inotify (no
// instance or watch left for this account) waiters poll every kPollInterval instead. A probe
// never emits an event watched here (see lock_folder.cpp), so waiters never wake each other in
// a loop.
//
// Targeted wake-ups. The kernel wakes every process whose inotify instance watches a file that
// changed, so what a process watches decides which releases wake it. The backend's WatchPlan says
// what its waiters need, given their last look at the queue (see TicketQueue::watch_plan):
//  - the lock folder (pid files: IN_CLOSE_WRITE after a holder's unlock, IN_DELETE/IN_MOVED_TO/
//    IN_CREATE when files come and go, IN_ATTRIB) only while a waiter may take a device now (the
//    head of the queue for that device). Releases by the Python package and by older versions of
//    this library change nothing but pid files, and the head sees them there;
//  - for a waiter behind others, the ticket file of the nearest earlier waiter that holds it back,
//    per device (as etcd's lock recipe watches only the previous key): removing or replacing a
//    ticket changes its link count (IN_ATTRIB), which wakes only the waiter right behind it. When
//    that one was the last ticket holding it back, the waiter moves up to the head;
//  - the whole queue folder only for a thread that waits without a ticket or before its first
//    look at the queue (then everything matters).
// A process with no waiter at the head sleeps through every release. Within a woken process the
// backend's WakeFilter still asks whether the event can matter to one of its waiters (see
// TicketQueue::may_wake) before waking its threads.
//
// A watch added after a waiter's look could miss a change made between the two, so adding the
// folder or queue watch makes every waiting thread look again once (a spurious return), and a
// ticket watch is checked against the inode read at the look. When the nearest ticket goes and
// the waiter may move up, the folder watch is added before the waiter looks again, which spares
// the new head that second look.

#include <lockable/lock_folder.hpp>

#include "lock_folder/descriptors.hpp"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <sys/types.h>

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

/// A ticket file a waiter watches: the nearest earlier waiter holding it back. `dev` and `ino`
/// are the file's as read at the waiter's last look.
struct TicketWatch {
  std::string name;
  dev_t dev = 0;
  ino_t ino = 0;
};

/// What the backend's waiters need to watch now (see the top of this file). The default watches
/// the folder and the queue folder: every change wakes.
struct WatchPlan {
  bool folder = true;  // the pid files
  bool queue = true;   // every ticket coming and going
  std::vector<TicketWatch> tickets;
};

/// Asked on the polling thread, without the watcher's lock held, before each sleep.
using WatchPlanner = std::function<WatchPlan()>;

/// One inotify descriptor per backend, shared by every waiting thread: one thread polls, the
/// others wait on a condition variable, and a generation counter per thread makes sure no thread
/// misses an event another thread read for it. Without inotify it says so once through `log` and
/// waiters look again every kPollInterval instead.
class Watcher {
 public:
  /// Watches what `planner` asks for (the folder and `queue_dir` when it is empty), making
  /// `queue_dir` again when it is missing. Wakes the waiting threads for the events that `filter`
  /// accepts (every event when it is empty), and for lost events (queue overflow, a watch
  /// removed).
  Watcher(const fs::path& folder, fs::path queue_dir, const LockFolderLog& log,
          WakeFilter filter = {}, WatchPlanner planner = {});

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

  // Polls until an interesting event or `deadline`; true when one arrived. Only the polling
  // thread calls it, and the functions below.
  bool poll_once(Clock::time_point deadline);

  // Makes the watches what the planner asks for. True when a watch was added that the waiters'
  // last looks may predate, or a watched ticket is already gone: they must look again.
  bool follow_plan();

  // Adds the folder watch; false (errno set) when it cannot.
  bool watch_folder();

  // Removes watch `wd` (its IN_IGNORED event is then ignored).
  void unwatch(int& wd);

  // Reads every queued event; true when one names a lock file or a ticket.
  bool drain();

  // The change an event on watched ticket `wd` made: removed or replaced, or nothing (the
  // waiter touched its ticket). Stops watching it unless nothing changed.
  std::optional<FolderChange> ticket_change(int wd, bool inode_gone);

  fs::path folder_;
  fs::path queue_dir_;
  WakeFilter filter_;
  WatchPlanner planner_;
  UniqueFd fd_;
  // Written by a thread that starts waiting while another polls: its ticket may need other
  // watches now, which the polling thread sets up.
  UniqueFd nudge_fd_;
  int folder_wd_ = -1;
  int queue_wd_ = -1;
  // The queue folder is watched whatever the plan says: a ticket watch could not be added (no
  // watch left for this account).
  bool queue_always_ = false;
  std::map<int, TicketWatch> ticket_wds_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool polling_ = false;
  // Starts ahead of every thread's `seen_` (0), so that each thread's first wait returns at once.
  std::uint64_t generation_ = 1;
  Clock::time_point follow_up_{};
  // Set by the polling thread when a lock folder event (or a lost one) woke the waiters: they
  // look again after kFollowUp (see watcher.cpp).
  bool follow_up_wanted_ = false;
  std::unordered_map<std::thread::id, std::uint64_t> seen_;
};

}  // namespace lockable::folder_backend
