#pragma once

// Private to the library: the one owner of a POSIX file descriptor, used by every part that
// opens files (the lock folder backend, the resources file provider). Outside src/core, which
// does no I/O.

#include <unistd.h>

#include <utility>

namespace lockable::posix {

/// Owns a file descriptor and closes it on destruction or reset(). Move-only. A negative value
/// means "none" (what a failed open() returns), so `UniqueFd fd(::open(...)); if (!fd) ...`
/// reads errno straight after the open.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  /// The descriptor, still owned; -1 when none.
  int get() const { return fd_; }
  /// Gives up ownership without closing: the caller closes the returned descriptor.
  int release() { return std::exchange(fd_, -1); }
  /// Whether a descriptor is held.
  explicit operator bool() const { return fd_ >= 0; }
  /// Closes the held descriptor, if any. close() errors are ignored: the descriptor is gone
  /// either way on Linux, and retrying could close a descriptor another thread just opened.
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

}  // namespace lockable::posix
