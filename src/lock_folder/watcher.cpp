// The lock folder's wake-ups: one inotify instance per backend watching the pid files and the
// queue folder, shared by every waiting thread, and the polling fallback when inotify is not
// available. See watcher.hpp.

#include "lock_folder/watcher.hpp"

#include "lock_folder/pid_file.hpp"
#include "lock_folder/ticket_queue.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace lockable::folder_backend {
namespace {

// The kernel emits the close event of a killed process just before it drops the process's
// flocks, so a waiter woken by it may still find the lock taken: look again shortly after a lock
// folder event, and every kSafetyTick in any case. A watched ticket's event needs no second look:
// its waiter removed or replaced it before the event.
constexpr auto kFollowUp = std::chrono::milliseconds(3);
constexpr auto kSafetyTick = std::chrono::milliseconds(250);

constexpr std::uint32_t kFolderEvents =
    IN_CLOSE_WRITE | IN_DELETE | IN_MOVED_TO | IN_CREATE | IN_ATTRIB;
// A ticket's link count changes when its waiter removes it or renames a new one over it; its
// waiter's touch (once a second) changes its times. Its death (the close before the flock goes)
// is seen by the safety tick, as with the queue folder watch.
constexpr std::uint32_t kTicketEvents = IN_ATTRIB | IN_DONT_FOLLOW;

}  // namespace

Watcher::Watcher(const fs::path& folder, fs::path queue_dir, const LockFolderLog& log,
                 WakeFilter filter, WatchPlanner planner)
    : folder_(folder),
      queue_dir_(std::move(queue_dir)),
      filter_(std::move(filter)),
      planner_(std::move(planner)) {
  fd_ = UniqueFd(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  if (!fd_) {
    fall_back(folder, errno, "raise fs.inotify.max_user_instances", log);
    return;
  }
  // Both watches at first, as an older version keeps them: this says at once when this account
  // has no watch left, and the first plan drops what nobody needs.
  if (!watch_folder() || !watch_queue()) {
    const int error = errno;
    // ENOTDIR: a symlink or a file where .lockable-queue should be (never followed).
    fall_back(folder, error,
              error == ENOSPC    ? "raise fs.inotify.max_user_watches"
              : error == ENOTDIR ? "remove " + queue_dir_.string() +
                                       " if it is a symbolic link or a file (lockable makes the "
                                       "folder)"
                                 : "check that the lock folder and its .lockable-queue exist",
              log);
    return;
  }
  nudge_fd_ = UniqueFd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
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
  bool nudged = false;
  for (;;) {
    if (seen != generation_) {
      seen = generation_;
      return;
    }
    if (Clock::now() >= deadline) return;
    if (polling_) {
      // This thread's ticket may need watches the polling thread has not set up: have it follow
      // the plan again (once per wait).
      if (!nudged && nudge_fd_) {
        const std::uint64_t one = 1;
        if (::write(nudge_fd_.get(), &one, sizeof one) < 0) {
          // Full counter: the polling thread is nudged already.
        }
        nudged = true;
      }
      cv_.wait_until(lock, deadline);
      continue;
    }
    polling_ = true;
    lock.unlock();
    const bool changed = poll_once(deadline);
    lock.lock();
    polling_ = false;
    if (changed) {
      ++generation_;
      if (follow_up_wanted_) follow_up_ = Clock::now() + kFollowUp;
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

bool Watcher::watch_folder() {
  folder_wd_ = ::inotify_add_watch(fd_.get(), folder_.c_str(), kFolderEvents);
  return folder_wd_ >= 0;
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

void Watcher::unwatch(int& wd) {
  if (wd < 0) return;
  ::inotify_rm_watch(fd_.get(), wd);  // queues IN_IGNORED for a wd no longer ours: skipped
  wd = -1;
}

bool Watcher::follow_plan() {
  const WatchPlan plan = planner_ ? planner_() : WatchPlan{};
  bool look_again = false;
  if (plan.folder && folder_wd_ < 0) {
    // Failing that, the safety tick still notices every release.
    look_again = watch_folder();
  } else if (!plan.folder && folder_wd_ >= 0) {
    unwatch(folder_wd_);
  }
  const bool queue = plan.queue || queue_always_;
  if (queue && queue_wd_ < 0) {
    // Also brings the queue folder back when someone removed it (its watch ended).
    look_again = watch_queue() || look_again;
  } else if (!queue && queue_wd_ >= 0) {
    unwatch(queue_wd_);
  }
  // Tickets no longer planned: unwatched. Planned ones: watched, and checked to be the file the
  // waiter read, so that a removal before the watch is not missed.
  for (auto it = ticket_wds_.begin(); it != ticket_wds_.end();) {
    const bool planned = std::any_of(plan.tickets.begin(), plan.tickets.end(), [&](const auto& t) {
      return t.name == it->second.name && t.ino == it->second.ino && t.dev == it->second.dev;
    });
    if (planned) {
      ++it;
      continue;
    }
    int wd = it->first;
    it = ticket_wds_.erase(it);
    unwatch(wd);
  }
  for (const auto& ticket : plan.tickets) {
    const bool watched = std::any_of(ticket_wds_.begin(), ticket_wds_.end(), [&](const auto& w) {
      return w.second.name == ticket.name && w.second.ino == ticket.ino &&
             w.second.dev == ticket.dev;
    });
    if (watched) continue;
    const fs::path path = queue_dir_ / ticket.name;
    int wd = ::inotify_add_watch(fd_.get(), path.c_str(), kTicketEvents);
    if (wd < 0) {
      if (errno == ENOENT) {
        look_again = true;  // gone since the look: the waiter behind it may move up
      } else if (!queue_always_) {
        // No watch left (ENOSPC) or not readable: every ticket change wakes, as before.
        queue_always_ = true;
        if (queue_wd_ < 0) look_again = watch_queue() || look_again;
      }
      continue;
    }
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0 || st.st_ino != ticket.ino || st.st_dev != ticket.dev ||
        st.st_nlink == 0) {
      unwatch(wd);  // removed or replaced since the look
      look_again = true;
      continue;
    }
    // The same inode watched for another name (cannot happen: names are unique) would share wd.
    ticket_wds_[wd] = ticket;
  }
  return look_again;
}

bool Watcher::poll_once(Clock::time_point deadline) {
  follow_up_wanted_ = false;
  for (;;) {
    if (follow_plan()) return true;
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return drain();
    pollfd pfds[2] = {{fd_.get(), POLLIN, 0}, {nudge_fd_.get(), POLLIN, 0}};
    const int ready =
        ::poll(pfds, nudge_fd_ ? 2 : 1, static_cast<int>(std::min<long long>(left.count(), 1000)));
    if (ready > 0 && nudge_fd_ && (pfds[1].revents & POLLIN) != 0) {
      std::uint64_t count = 0;
      if (::read(nudge_fd_.get(), &count, sizeof count) < 0) {
        // Read by nobody else; EAGAIN only if already read.
      }
    }
    if (ready > 0 && drain()) return true;
    if (ready < 0 && errno != EINTR) return true;  // cannot wait: let the caller re-check
  }
}

std::optional<FolderChange> Watcher::ticket_change(int wd, bool inode_gone) {
  const auto it = ticket_wds_.find(wd);
  const TicketWatch ticket = it->second;
  struct stat st {};
  // The kernel reports an unlink (the link count) before the name is gone: a name whose file has
  // no link left is a removed ticket.
  const bool named = ::lstat((queue_dir_ / ticket.name).c_str(), &st) == 0 && st.st_nlink > 0;
  if (!inode_gone && named && st.st_ino == ticket.ino && st.st_dev == ticket.dev) {
    return std::nullopt;  // its waiter touched it
  }
  ticket_wds_.erase(it);
  if (!inode_gone) {
    int gone = wd;
    unwatch(gone);
  }
  FolderChange change;
  change.ticket = true;
  change.removed = !named;
  change.name = ticket.name;
  return change;
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
      if (event->mask & IN_Q_OVERFLOW) {
        interesting = follow_up_wanted_ = true;
        continue;
      }
      const bool ticket_watch = ticket_wds_.count(event->wd) != 0;
      if (event->mask & IN_IGNORED) {
        // The kernel ended a watch: the folder or the queue folder was removed, or a watched
        // ticket's inode is gone. A watch removed here was forgotten first and is skipped.
        if (event->wd == folder_wd_) {
          folder_wd_ = -1;
          interesting = follow_up_wanted_ = true;
        } else if (event->wd == queue_wd_) {
          queue_wd_ = -1;
          interesting = follow_up_wanted_ = true;
        } else if (ticket_watch) {
          const auto change = ticket_change(event->wd, true);
          if (!interesting) interesting = !filter_ || filter_(*change);
        }
        continue;
      }
      if (ticket_watch) {
        // Handled even once decided, so that a gone ticket is no longer watched.
        const auto change = ticket_change(event->wd, false);
        if (change && !interesting) interesting = !filter_ || filter_(*change);
        // The waiter woken now may be the head: watch the releases before it looks, which
        // spares it a second look once it sleeps (see the top of watcher.hpp).
        if (interesting && folder_wd_ < 0) watch_folder();
        continue;
      }
      // Decided, and a follow-up look is due: read the rest only to drain them.
      if (interesting && filter_ && follow_up_wanted_) continue;
      FolderChange change;
      change.name = event->len > 0 ? std::string(event->name) : std::string();
      change.removed = (event->mask & IN_DELETE) != 0;
      bool matters = false;
      if (event->wd == folder_wd_ && is_pid_file_name(change.name)) {
        matters = !filter_ || filter_(change);
      } else if (event->wd == queue_wd_ && is_ticket_name(change.name)) {
        change.ticket = true;
        matters = !filter_ || filter_(change);
      }
      if (matters) interesting = follow_up_wanted_ = true;
    }
  }
  return interesting;
}

}  // namespace lockable::folder_backend
