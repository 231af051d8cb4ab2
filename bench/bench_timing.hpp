#pragma once

// Timing helpers shared by the benchmarks that measure whole processes (their own loops, not
// Google Benchmark's): one monotonic clock and one percentile rule, so that their figures compare.

#include <time.h>

#include <algorithm>
#include <cstddef>
#include <vector>

namespace lockable::bench {

/// CLOCK_MONOTONIC in nanoseconds: system-wide, so it orders events across processes.
inline long long monotonic_ns() {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<long long>(now.tv_sec) * 1000000000LL + now.tv_nsec;
}

/// The value below which a share `p` (0..1) of `values` lies, nearest rank; 0 for none.
inline double percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  return values[static_cast<std::size_t>(p * static_cast<double>(values.size() - 1))];
}

}  // namespace lockable::bench
