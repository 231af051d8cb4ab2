#include "core/backoff.hpp"

#include <algorithm>

namespace lockable::detail {

Backoff::Backoff(Duration initial, Duration cap, std::uint64_t seed) noexcept
    : initial_(std::max(initial, Duration(std::chrono::milliseconds(1)))),
      cap_(std::max(cap, initial_)),
      base_(initial_),
      state_(seed == 0 ? 0x9E3779B97F4A7C15ULL : seed) {}

Backoff::Duration Backoff::next() noexcept {
  // xorshift64*: enough to spread retries, no dependency on <random>'s unspecified distributions.
  state_ ^= state_ >> 12;
  state_ ^= state_ << 25;
  state_ ^= state_ >> 27;
  const std::uint64_t draw = state_ * 0x2545F4914F6CDD1DULL;
  const auto half = base_ / 2;
  const auto span = static_cast<std::uint64_t>((base_ - half).count()) + 1;
  const Duration delay = half + Duration(static_cast<Duration::rep>(draw % span));
  base_ = std::min(cap_, base_ * 2);
  ++failures_;
  return delay;
}

void Backoff::reset() noexcept {
  base_ = initial_;
  failures_ = 0;
}

}  // namespace lockable::detail
