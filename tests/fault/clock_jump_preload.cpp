// LD_PRELOAD shim for the fault harness: shifts the wall clock of the process it is loaded into
// by an offset (seconds, may be negative or fractional) read from the file named by
// FAULT_CLOCK_OFFSET_FILE, which the harness rewrites while the process runs. CLOCK_REALTIME
// (and its _COARSE form), gettimeofday() and time() jump; CLOCK_MONOTONIC and CLOCK_BOOTTIME do
// not. A process whose timeouts or leases are measured on the monotonic clock behaves the same
// whatever the offset; one that measures them on the wall clock times out too early or too late,
// which the history checker rejects.
//
// The file is read again at most every 20 ms of monotonic time (an open/read/close per call
// would slow every clock read down).
#include <fcntl.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <atomic>

namespace {
std::atomic<long long> g_offset_ns{0};
std::atomic<long long> g_next_read_ns{0};

// The real clock, straight from the kernel: never through the symbols this file replaces.
int real_clock_gettime(clockid_t clock, struct timespec* ts) {
  return static_cast<int>(syscall(SYS_clock_gettime, clock, ts));
}

long long parse_seconds_ns(const char* text) {
  return static_cast<long long>(strtod(text, nullptr) * 1e9);
}

long long offset_ns(void) {
  struct timespec now;
  if (real_clock_gettime(CLOCK_MONOTONIC, &now) != 0) return g_offset_ns.load();
  const long long now_ns = static_cast<long long>(now.tv_sec) * 1000000000LL + now.tv_nsec;
  if (now_ns >= g_next_read_ns.load()) {
    g_next_read_ns.store(now_ns + 20000000LL);
    const char* path = getenv("FAULT_CLOCK_OFFSET_FILE");
    if (path != nullptr) {
      const int fd = open(path, O_RDONLY | O_CLOEXEC);
      if (fd >= 0) {
        char text[64];
        const ssize_t n = read(fd, text, sizeof text - 1);
        close(fd);
        if (n > 0) {
          text[n] = '\0';
          g_offset_ns.store(parse_seconds_ns(text));
        }
      }
    }
  }
  return g_offset_ns.load();
}

void shift(struct timespec* ts) {
  long long ns = static_cast<long long>(ts->tv_sec) * 1000000000LL + ts->tv_nsec + offset_ns();
  ts->tv_sec = static_cast<time_t>(ns / 1000000000LL);
  ts->tv_nsec = static_cast<long>(ns % 1000000000LL);
  if (ts->tv_nsec < 0) {
    ts->tv_nsec += 1000000000L;
    ts->tv_sec -= 1;
  }
}

}  // namespace

extern "C" {

int clock_gettime(clockid_t clock, struct timespec* ts) {
  const int result = real_clock_gettime(clock, ts);
  if (result == 0 && (clock == CLOCK_REALTIME || clock == CLOCK_REALTIME_COARSE)) shift(ts);
  return result;
}

int gettimeofday(struct timeval* tv, void* tz) {
  (void)tz;
  struct timespec ts;
  if (real_clock_gettime(CLOCK_REALTIME, &ts) != 0) return -1;
  shift(&ts);
  // glibc declares tv non-null.
  tv->tv_sec = ts.tv_sec;
  tv->tv_usec = ts.tv_nsec / 1000;
  return 0;
}

time_t time(time_t* out) {
  struct timespec ts;
  if (real_clock_gettime(CLOCK_REALTIME, &ts) != 0) return static_cast<time_t>(-1);
  shift(&ts);
  if (out != nullptr) *out = ts.tv_sec;
  return ts.tv_sec;
}

}  // extern "C"
