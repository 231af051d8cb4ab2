#include <lockable/allocation.hpp>

#include <boost/uuid/random_generator.hpp>
#include <boost/uuid/uuid_io.hpp>

#include <cstdio>
#include <ctime>
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

std::string format_iso8601(std::chrono::system_clock::time_point time) {
  const auto since_epoch = time.time_since_epoch();
  auto seconds = std::chrono::duration_cast<std::chrono::seconds>(since_epoch);
  auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch - seconds);
  if (millis.count() < 0) {  // before 1970: keep the fraction positive
    seconds -= std::chrono::seconds(1);
    millis += std::chrono::seconds(1);
  }
  const std::time_t whole = static_cast<std::time_t>(seconds.count());
  std::tm tm{};
  gmtime_r(&whole, &tm);
  char text[96];
  std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(millis.count()));
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

std::string new_uuid() {
  // One generator per thread: boost's generator is not thread-safe, and constructing one per call
  // would reopen the entropy source each time.
  thread_local boost::uuids::random_generator generator;
  return boost::uuids::to_string(generator());
}

}  // namespace lockable
