#pragma once

// Private to the lock folder backend: how waiters learn that something changed. One inotify
// instance per backend watches the lock folder (pid files: IN_CLOSE_WRITE after a holder's
// unlock, IN_DELETE/IN_MOVED_TO/IN_CREATE when files come and go, IN_ATTRIB) and the queue folder
// (tickets coming and going); every waiting thread of the backend shares it. Without inotify (no
// instance or watch left for this account) waiters poll every kPollInterval instead. A probe
// never emits an event watched here (see lock_folder.cpp), so waiters never wake each other in
// a loop.

#include <lockable/lock_folder.hpp>

#include "lock_folder/descriptors.hpp"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>

namespace lockable::folder_backend {

using Clock = std::chrono::steady_clock;

/// How often waiters look again when inotify is not available (no instance left), and how often
/// the read-only observer looks.
constexpr auto kPollInterval = std::chrono::milliseconds(100);

/// One inotify descriptor per backend, shared by every waiting thread: one thread polls, the
/// others wait on a condition variable, and a generation counter per thread makes sure no thread
/// misses an event another thread read for it. Without inotify it says so once through `log` and
/// waiters look again every kPollInterval instead.
class Watcher {
 public:
  /// Watches `folder` and `queue_dir` (making `queue_dir` again when it is missing).
  Watcher(const fs::path& folder, fs::path queue_dir, const LockFolderLog& log);

  /// Blocks until a pid file or a ticket changed since this thread's last return, or `deadline`,
  /// or a safety tick (250 ms): spurious returns are allowed, a missed change is not. Any thread.
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
  UniqueFd fd_;
  int folder_wd_ = -1;
  int queue_wd_ = -1;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool polling_ = false;
  std::uint64_t generation_ = 0;
  Clock::time_point follow_up_{};
  std::unordered_map<std::thread::id, std::uint64_t> seen_;
};

}  // namespace lockable::folder_backend
