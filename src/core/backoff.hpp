#pragma once

#include <chrono>
#include <cstdint>

namespace lockable::detail {

/// Delays between retries of a call that failed for a moment (a remote store that timed out or
/// answered 503): exponential from `initial` up to `cap`, each with "full jitter" (a uniform draw
/// in [delay/2, delay]) so that many waiters retrying one store do not retry in step. Pure: the
/// randomness comes from a seed, so a test replays a sequence exactly. `initial` is at least 1 ms.
class Backoff {
 public:
  using Duration = std::chrono::steady_clock::duration;

  Backoff(Duration initial, Duration cap, std::uint64_t seed) noexcept;

  /// The delay before the next retry; each call doubles the base delay up to the cap.
  Duration next() noexcept;
  /// After a success: the next failure starts again from `initial`.
  void reset() noexcept;
  /// Failures in a row since the last reset().
  unsigned failures() const noexcept { return failures_; }

 private:
  Duration initial_;
  Duration cap_;
  Duration base_;
  std::uint64_t state_;
  unsigned failures_ = 0;
};

}  // namespace lockable::detail
