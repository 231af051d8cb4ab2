#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace lockable {

/// Called when a lock granted earlier is no longer ours (lease expired, server revoked it), with
/// a reason that names the device and what happened. Runs on the backend's own thread (e.g. its
/// keepalive thread): keep it short, and do not unlock or destroy the allocation from it.
using LockLossHandler = std::function<void(const std::string& reason)>;

/// The lost-or-not state of one held lock, for backend implementers: a backend's keepalive
/// thread calls `notify()`, the HeldLock forwards `on_lock_loss()` to `set_handler()` and calls
/// `disarm()` in `release()`. Thread-safe. The handler runs at most once, and never lags behind
/// what `lost()` says: once `lost()` returns true, the handler (if one was set) has finished.
class LockLossSignal {
 public:
  /// Marks the lock lost. The first call runs the handler (if one is set) on this thread; later
  /// calls only wait for that run to finish (so every caller may act on the loss as reported).
  /// Exceptions from the handler are swallowed: a backend thread cannot act on them.
  void notify(const std::string& reason) noexcept;

  /// Sets (or replaces) the handler. When the loss already happened and no handler has been run
  /// for it, this one runs at once, on the caller's thread.
  void set_handler(LockLossHandler handler);

  /// After this returns the handler is neither running nor ever run again: it waits for a run in
  /// progress on another thread. Called from the handler itself, it returns at once.
  void disarm() noexcept;

  /// True once notified. While the handler runs on another thread this waits for it to finish,
  /// so that a caller who sees true also sees what the handler did (a test already failed).
  bool lost() const noexcept;
  /// The reason given to `notify()`, or "" while not lost.
  std::string reason() const;

 private:
  // Runs `handler` outside the mutex; `lock` is held on entry and on return.
  void run(std::unique_lock<std::mutex>& lock, const LockLossHandler& handler) noexcept;
  // Waits while the handler runs on another thread; `lock` is held on entry and on return.
  void wait_for_other_runner(std::unique_lock<std::mutex>& lock) const noexcept;

  mutable std::mutex mutex_;
  mutable std::condition_variable idle_;
  LockLossHandler handler_;
  std::string reason_;
  bool lost_ = false;
  bool delivered_ = false;
  bool disarmed_ = false;
  bool running_ = false;
  std::thread::id runner_;
};

}  // namespace lockable
