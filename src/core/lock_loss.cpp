#include <lockable/lock_loss.hpp>

#include <utility>

namespace lockable {

void LockLossSignal::notify(const std::string& reason) noexcept {
  std::unique_lock<std::mutex> lock(mutex_);
  if (lost_) {
    wait_for_other_runner(lock);
    return;
  }
  lost_ = true;
  try {
    reason_ = reason;
  } catch (...) {
    // Out of memory for the text: the loss itself still counts.
  }
  if (handler_ && !disarmed_) {
    delivered_ = true;
    const LockLossHandler handler = handler_;
    run(lock, handler);
  }
}

void LockLossSignal::set_handler(LockLossHandler handler) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (disarmed_) return;
  handler_ = std::move(handler);
  if (lost_ && !delivered_ && handler_) {
    delivered_ = true;
    const LockLossHandler copy = handler_;
    run(lock, copy);
  }
}

void LockLossSignal::disarm() noexcept {
  std::unique_lock<std::mutex> lock(mutex_);
  disarmed_ = true;
  handler_ = nullptr;
  wait_for_other_runner(lock);
}

bool LockLossSignal::lost() const noexcept {
  std::unique_lock<std::mutex> lock(mutex_);
  wait_for_other_runner(lock);
  return lost_;
}

void LockLossSignal::wait_for_other_runner(std::unique_lock<std::mutex>& lock) const noexcept {
  // The runner itself may ask (a handler that calls lost()): it must not wait for itself.
  idle_.wait(lock, [this] { return !running_ || runner_ == std::this_thread::get_id(); });
}

std::string LockLossSignal::reason() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return reason_;
}

void LockLossSignal::run(std::unique_lock<std::mutex>& lock,
                         const LockLossHandler& handler) noexcept {
  running_ = true;
  runner_ = std::this_thread::get_id();
  lock.unlock();
  try {
    // reason_ is written only before `lost_` is set, so reading it unlocked is safe here.
    handler(reason_);
  } catch (...) {
    // See notify(): nobody on this thread could act on it.
  }
  lock.lock();
  running_ = false;
  idle_.notify_all();
}

}  // namespace lockable
