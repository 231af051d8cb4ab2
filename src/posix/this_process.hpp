#pragma once

// Private to the library: this process's id without a system call per use. glibc no longer
// caches getpid(), and the uncontended lock asked for it six times (strace of lock_bench).

#include <pthread.h>
#include <unistd.h>

#include <atomic>

namespace lockable::posix {

namespace detail {
inline std::atomic<pid_t> g_this_process_id{0};
inline void forget_process_id() noexcept { g_this_process_id.store(0, std::memory_order_relaxed); }
}  // namespace detail

/// getpid(), cached. A child made by fork() (which runs the pthread_atfork handlers) asks the
/// kernel again; a child made by vfork()/posix_spawn() or a raw clone() must only exec or _exit.
inline pid_t this_process_id() noexcept {
  pid_t pid = detail::g_this_process_id.load(std::memory_order_relaxed);
  if (pid != 0) return pid;
  static const bool registered =
      ::pthread_atfork(nullptr, nullptr, &detail::forget_process_id) == 0;
  (void)registered;
  pid = ::getpid();
  detail::g_this_process_id.store(pid, std::memory_order_relaxed);
  return pid;
}

}  // namespace lockable::posix
