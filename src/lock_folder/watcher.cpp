// The lock folder's wake-ups: one inotify instance per backend watching the pid files and the
// queue folder, shared by every waiting thread, and the polling fallback when inotify is not
// available. See watcher.hpp.

#include "lock_folder/watcher.hpp"

#include "lock_folder/pid_file.hpp"
#include "lock_folder/ticket_queue.hpp"

#include <poll.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace lockable::folder_backend {
namespace {

// The kernel emits the close event of a killed process just before it drops the process's
// flocks, so a waiter woken by it may still find the lock taken: look again shortly after any
// event, and every kSafetyTick in any case.
constexpr auto kFollowUp = std::chrono::milliseconds(3);
constexpr auto kSafetyTick = std::chrono::milliseconds(250);

}  // namespace

Watcher::Watcher(const fs::path& folder, fs::path queue_dir, const LockFolderLog& log,
                 WakeFilter filter)
    : queue_dir_(std::move(queue_dir)), filter_(std::move(filter)) {
  fd_ = UniqueFd(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  if (!fd_) {
    fall_back(folder, errno, "raise fs.inotify.max_user_instances", log);
    return;
  }
  folder_wd_ = ::inotify_add_watch(
      fd_.get(), folder.c_str(), IN_CLOSE_WRITE | IN_DELETE | IN_MOVED_TO | IN_CREATE | IN_ATTRIB);
  if (folder_wd_ < 0 || !watch_queue()) {
    const int error = errno;
    fall_back(folder, error,
              error == ENOSPC ? "raise fs.inotify.max_user_watches"
                              : "check that the lock folder and its .lockable-queue exist",
              log);
  }
}

void Watcher::wait(Clock::time_point deadline) {
  if (!fd_) {
    std::this_thread::sleep_until(std::min(deadline, Clock::now() + kPollInterval));
    return;
  }
  std::unique_lock<std::mutex> lock(mutex_);
  auto& seen = seen_[std::this_thread::get_id()];
  const auto now = Clock::now();
  deadline = std::min(deadline, now + kSafetyTick);
  if (follow_up_ > now) deadline = std::min(deadline, follow_up_);
  for (;;) {
    if (seen != generation_) {
      seen = generation_;
      return;
    }
    if (Clock::now() >= deadline) return;
    if (polling_) {
      cv_.wait_until(lock, deadline);
      continue;
    }
    polling_ = true;
    lock.unlock();
    // The queue folder was removed (its watch ended): bring both back. Failing that, the
    // safety tick still notices every change.
    if (queue_wd_ < 0) watch_queue();
    const bool changed = poll_once(deadline);
    lock.lock();
    polling_ = false;
    if (changed) {
      ++generation_;
      follow_up_ = Clock::now() + kFollowUp;
    }
    cv_.notify_all();
  }
}

void Watcher::fall_back(const fs::path& folder, int error, const std::string& fix,
                        const LockFolderLog& log) {
  fd_.reset();
  if (log) {
    log("lockable: warning: cannot watch lock folder " + folder.string() +
        " (inotify: " + errno_text(error) + "), so waiters look again every " +
        std::to_string(kPollInterval.count()) + " ms instead; " + fix);
  }
}

bool Watcher::watch_queue() {
  for (int attempt = 0; attempt < 100; ++attempt) {
    queue_wd_ = ::inotify_add_watch(fd_.get(), queue_dir_.c_str(),
                                    IN_DELETE | IN_MOVED_TO | IN_DONT_FOLLOW | IN_ONLYDIR);
    if (queue_wd_ >= 0) return true;
    if (errno != ENOENT) return false;
    make_queue_dir(queue_dir_);
  }
  return false;
}

bool Watcher::poll_once(Clock::time_point deadline) {
  for (;;) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return drain();
    pollfd pfd{fd_.get(), POLLIN, 0};
    const int ready = ::poll(&pfd, 1, static_cast<int>(std::min<long long>(left.count(), 1000)));
    if (ready > 0 && drain()) return true;
    if (ready < 0 && errno != EINTR) return true;  // cannot wait: let the caller re-check
  }
}

bool Watcher::drain() {
  bool interesting = false;
  alignas(inotify_event) char buffer[16384];
  for (;;) {
    const ssize_t n = ::read(fd_.get(), buffer, sizeof buffer);
    if (n <= 0) break;
    for (ssize_t offset = 0; offset < n;) {
      const auto* event = reinterpret_cast<const inotify_event*>(buffer + offset);
      offset += static_cast<ssize_t>(sizeof(inotify_event) + event->len);
      if (event->mask & (IN_Q_OVERFLOW | IN_IGNORED)) {
        if ((event->mask & IN_IGNORED) && event->wd == queue_wd_) queue_wd_ = -1;
        interesting = true;
        continue;
      }
      if (interesting && filter_) continue;  // decided: read the rest only to drain them
      FolderChange change;
      change.name = event->len > 0 ? std::string(event->name) : std::string();
      change.removed = (event->mask & IN_DELETE) != 0;
      if (event->wd == folder_wd_ && is_pid_file_name(change.name)) {
        interesting = !filter_ || filter_(change);
      } else if (event->wd == queue_wd_ && is_ticket_name(change.name)) {
        change.ticket = true;
        interesting = !filter_ || filter_(change);
      }
    }
  }
  return interesting;
}

}  // namespace lockable::folder_backend
