// SIGINT/SIGTERM while a device is held: release it, then die by the signal.
//
// The release is the library's own unlock (for a lease backend it is network I/O), which is not
// async-signal-safe, so it cannot run in the handler. Nor is sigwait() right in a test program:
// it only works with the signals blocked in every thread, and a blocked mask is inherited by the
// user's threads created earlier (which would not block them) and by every process the tests
// exec (an `adb` that ignores Ctrl-C). So the handler only writes the signal number to a pipe
// (async-signal-safe), and a watcher thread reading that pipe does the release, restores the
// default action and re-raises.
#include "signals.hpp"

#include "runtime.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>

namespace lockable::gtest::detail {
namespace {

constexpr int kSignals[] = {SIGINT, SIGTERM};

int g_pipe[2] = {-1, -1};
pid_t g_owner = 0;
// Lock-free, so the handler may read it.
std::atomic<bool> g_active{false};
std::atomic<bool> g_installed[2] = {false, false};
static_assert(std::atomic<bool>::is_always_lock_free);

const char* signal_name(int signal) {
  switch (signal) {
    case SIGINT:
      return "SIGINT";
    case SIGTERM:
      return "SIGTERM";
    default:
      return "signal";
  }
}

[[noreturn]] void die_by(int signal) {
  ::signal(signal, SIG_DFL);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, signal);
  pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
  ::raise(signal);
  ::_exit(128 + signal);  // not reached: the default action ends the process
}

extern "C" void on_signal(int signal) {
  const int saved_errno = errno;
  // A forked child (a death test) inherits the handler but not the watcher thread, and a signal
  // after stop_releasing_on_signals() must not reach a runtime that is going away.
  if (::getpid() != g_owner || !g_active.load()) {
    ::signal(signal, SIG_DFL);
    ::raise(signal);
    errno = saved_errno;
    return;
  }
  const unsigned char number = static_cast<unsigned char>(signal);
  [[maybe_unused]] const auto written = ::write(g_pipe[1], &number, 1);
  errno = saved_errno;
}

void write_stderr(const std::string& text) {
  std::size_t done = 0;
  while (done < text.size()) {
    const auto n = ::write(STDERR_FILENO, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += static_cast<std::size_t>(n);
  }
}

void watch() {
  unsigned char number = 0;
  while (true) {
    const auto n = ::read(g_pipe[0], &number, 1);
    if (n == 1) break;
    if (n < 0 && errno == EINTR) continue;
    return;  // the pipe is gone: nothing to watch
  }
  const int signal = number;
  std::string line = std::string("lockable: ") + signal_name(signal) + ": ";
  if (g_active.load()) {
    const auto released = Runtime::instance().release_all();
    if (released.empty()) {
      line += "no device was held";
    } else {
      line += "released ";
      for (std::size_t i = 0; i < released.size(); ++i) {
        line += (i == 0 ? "" : ", ") + released[i];
      }
    }
  } else {
    line += "the program was already exiting";
  }
  line += "; no report is written\n";
  write_stderr(line);
  die_by(signal);
}

}  // namespace

void release_devices_on_signals() noexcept {
  static std::once_flag once;
  std::call_once(once, [] {
    if (::pipe2(g_pipe, O_CLOEXEC) != 0) return;
    g_owner = ::getpid();
    try {
      std::thread(watch).detach();
    } catch (...) {
      return;  // no thread: keep the default behaviour
    }
    g_active.store(true);
    for (std::size_t i = 0; i < std::size(kSignals); ++i) {
      struct sigaction current {};
      if (::sigaction(kSignals[i], nullptr, &current) != 0) continue;
      const bool program_handles_it =
          (current.sa_flags & SA_SIGINFO) != 0 || current.sa_handler != SIG_DFL;
      if (program_handles_it) continue;
      struct sigaction ours {};
      ours.sa_handler = on_signal;
      sigemptyset(&ours.sa_mask);
      ours.sa_flags = SA_RESTART;
      if (::sigaction(kSignals[i], &ours, nullptr) == 0) g_installed[i].store(true);
    }
  });
}

void stop_releasing_on_signals() noexcept {
  g_active.store(false);
  for (std::size_t i = 0; i < std::size(kSignals); ++i) {
    if (!g_installed[i].exchange(false)) continue;
    struct sigaction current {};
    // Leave a handler the program set after ours.
    if (::sigaction(kSignals[i], nullptr, &current) == 0 && (current.sa_flags & SA_SIGINFO) == 0 &&
        current.sa_handler == on_signal) {
      ::signal(kSignals[i], SIG_DFL);
    }
  }
}

}  // namespace lockable::gtest::detail
