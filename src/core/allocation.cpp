#include <lockable/allocation.hpp>

#include <pthread.h>
#include <sys/random.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <ctime>
#include <random>
#include <utility>

namespace lockable {
namespace {

double to_seconds(Allocation::Duration duration) {
  return std::chrono::duration<double>(duration).count();
}

}  // namespace

Allocation::Allocation(Json requirements, Resource resource, std::string alloc_id,
                       Duration queue_time, std::unique_ptr<HeldLock> lock)
    : requirements_(std::move(requirements)),
      resource_(std::move(resource)),
      alloc_id_(std::move(alloc_id)),
      queue_time_(queue_time),
      start_time_(std::chrono::system_clock::now()),
      start_steady_(std::chrono::steady_clock::now()),
      lock_(std::move(lock)) {}

Allocation::Allocation(Allocation&& other) noexcept
    : requirements_(std::move(other.requirements_)),
      resource_(std::move(other.resource_)),
      alloc_id_(std::move(other.alloc_id_)),
      queue_time_(other.queue_time_),
      start_time_(other.start_time_),
      start_steady_(other.start_steady_),
      release_time_(other.release_time_),
      held_for_(other.held_for_),
      lock_(std::move(other.lock_)) {}

Allocation& Allocation::operator=(Allocation&& other) noexcept {
  if (this != &other) {
    // The device held so far must not leak when another allocation is moved in.
    unlock();
    requirements_ = std::move(other.requirements_);
    resource_ = std::move(other.resource_);
    alloc_id_ = std::move(other.alloc_id_);
    queue_time_ = other.queue_time_;
    start_time_ = other.start_time_;
    start_steady_ = other.start_steady_;
    release_time_ = other.release_time_;
    held_for_ = other.held_for_;
    lock_ = std::move(other.lock_);
  }
  return *this;
}

Allocation::~Allocation() { unlock(); }

void Allocation::unlock() noexcept {
  if (!lock_) return;
  lock_->release();
  lock_.reset();
  held_for_ = std::chrono::steady_clock::now() - start_steady_;
  release_time_ = std::chrono::system_clock::now();
}

bool Allocation::held() const noexcept { return lock_ != nullptr; }

bool Allocation::lost() const noexcept { return lock_ != nullptr && lock_->lost(); }

std::optional<std::uint64_t> Allocation::fencing_token() const noexcept {
  return lock_ ? lock_->fencing_token() : std::nullopt;
}

void Allocation::on_lock_loss(LockLossHandler handler) {
  if (lock_) lock_->on_lock_loss(std::move(handler));
}

Allocation::Duration Allocation::duration() const noexcept {
  if (lock_) return std::chrono::steady_clock::now() - start_steady_;
  return held_for_;
}

Json Allocation::to_json() const {
  Json json{{"resource_id", resource_.id},
            {"alloc_id", alloc_id_},
            {"requirements", requirements_},
            {"attributes", resource_.attributes},
            {"queue_time", to_seconds(queue_time_)},
            {"start_time", format_iso8601(start_time_)},
            {"duration", to_seconds(duration())},
            {"held", held()},
            {"release_time", nullptr}};
  if (release_time_) json["release_time"] = format_iso8601(*release_time_);
  if (const auto token = fencing_token()) json["fencing_token"] = *token;
  return json;
}

namespace {

struct CivilTime {
  long long year;
  int month, day, hour, minute, second;
};

// UTC calendar fields of `seconds` since the epoch (proleptic Gregorian). Pure arithmetic
// (H. Hinnant's civil_from_days) instead of gmtime_r: glibc's first gmtime_r reads and parses
// /etc/localtime (six system calls) although UTC needs no zone, and every process pays it at its
// first lock.
CivilTime civil_from_seconds(long long seconds) {
  long long days = seconds / 86400;
  long long rest = seconds % 86400;
  if (rest < 0) {
    rest += 86400;
    --days;
  }
  days += 719468;  // from 1970-01-01 to 0000-03-01
  const long long era = (days >= 0 ? days : days - 146096) / 146097;
  const long long day_of_era = days - era * 146097;
  const long long year_of_era =
      (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
  const long long day_of_year =
      day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
  const long long shifted_month = (5 * day_of_year + 2) / 153;  // March = 0
  CivilTime civil{};
  civil.day = static_cast<int>(day_of_year - (153 * shifted_month + 2) / 5 + 1);
  civil.month = static_cast<int>(shifted_month < 10 ? shifted_month + 3 : shifted_month - 9);
  civil.year = year_of_era + era * 400 + (civil.month <= 2 ? 1 : 0);
  civil.hour = static_cast<int>(rest / 3600);
  civil.minute = static_cast<int>(rest / 60 % 60);
  civil.second = static_cast<int>(rest % 60);
  return civil;
}

}  // namespace

std::string format_iso8601(std::chrono::system_clock::time_point time) {
  const auto since_epoch = time.time_since_epoch();
  auto seconds = std::chrono::duration_cast<std::chrono::seconds>(since_epoch);
  auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch - seconds);
  if (millis.count() < 0) {  // before 1970: keep the fraction positive
    seconds -= std::chrono::seconds(1);
    millis += std::chrono::seconds(1);
  }
  const CivilTime civil = civil_from_seconds(static_cast<long long>(seconds.count()));
  if (civil.year < 0 || civil.year > 9999) {
    char text[96];
    std::snprintf(text, sizeof text, "%04lld-%02d-%02dT%02d:%02d:%02d.%03dZ", civil.year,
                  civil.month, civil.day, civil.hour, civil.minute, civil.second,
                  static_cast<int>(millis.count()));
    return text;
  }
  // Digit by digit: every lock writes one (the holder details), and snprintf costs more than the
  // rest of the details text together.
  std::string text = "0000-00-00T00:00:00.000Z";
  const auto put = [&text](std::size_t at, int value, int digits) {
    for (int i = digits - 1; i >= 0; --i, value /= 10) {
      text[at + static_cast<std::size_t>(i)] = static_cast<char>('0' + value % 10);
    }
  };
  put(0, static_cast<int>(civil.year), 4);
  put(5, civil.month, 2);
  put(8, civil.day, 2);
  put(11, civil.hour, 2);
  put(14, civil.minute, 2);
  put(17, civil.second, 2);
  put(20, static_cast<int>(millis.count()), 3);
  return text;
}

std::string format_seconds(std::chrono::nanoseconds duration) {
  const auto ms = std::chrono::round<std::chrono::milliseconds>(duration).count();
  const auto magnitude = ms < 0 ? -ms : ms;
  char text[48];
  std::snprintf(text, sizeof text, "%s%lld.%03lld", ms < 0 ? "-" : "",
                static_cast<long long>(magnitude / 1000), static_cast<long long>(magnitude % 1000));
  return text;
}

namespace {

// Counts fork()s in this process's line: a child must never hand out the random bytes its parent
// had buffered (the same allocation ids in both), so a pool filled before the fork is refilled.
std::atomic<unsigned long> g_forks{0};
void count_fork() noexcept { g_forks.fetch_add(1, std::memory_order_relaxed); }

// Random bytes for UUIDs, fetched from the kernel a batch at a time: one getrandom() per 32 UUIDs
// instead of one per UUID (a system call on every lock).
struct UuidPool {
  static constexpr std::size_t kSize = 512;
  unsigned char bytes[kSize];
  std::size_t used = kSize;
  unsigned long forks = 0;

  void refill() {
    std::size_t done = 0;
    while (done < kSize) {
      const ssize_t n = ::getrandom(bytes + done, kSize - done, 0);
      if (n > 0) {
        done += static_cast<std::size_t>(n);
      } else if (n < 0 && errno != EINTR) {
        break;  // no getrandom (an old kernel, a seccomp filter): the random_device below
      }
    }
    if (done < kSize) {
      std::random_device device;
      for (; done < kSize; ++done) bytes[done] = static_cast<unsigned char>(device());
    }
    used = 0;
  }
};

}  // namespace

std::string new_uuid() {
  static const bool registered = ::pthread_atfork(nullptr, nullptr, &count_fork) == 0;
  (void)registered;
  thread_local UuidPool pool;  // per thread: no lock on the lock path
  const unsigned long forks = g_forks.load(std::memory_order_relaxed);
  if (pool.used + 16 > UuidPool::kSize || pool.forks != forks) {
    pool.refill();
    pool.forks = forks;
  }
  unsigned char* uuid = pool.bytes + pool.used;
  pool.used += 16;
  uuid[6] = static_cast<unsigned char>((uuid[6] & 0x0F) | 0x40);  // version 4
  uuid[8] = static_cast<unsigned char>((uuid[8] & 0x3F) | 0x80);  // variant 10 (RFC 4122)
  static constexpr char kHex[] = "0123456789abcdef";
  std::string text(36, '-');
  std::size_t at = 0;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) ++at;
    text[at++] = kHex[uuid[i] >> 4];
    text[at++] = kHex[uuid[i] & 0x0F];
  }
  return text;
}

}  // namespace lockable
