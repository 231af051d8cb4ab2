// The allocation log: the observer that turns allocation events into one appended line per
// finished allocation. The line's content is core/allocation_record's; this file owns the I/O.

#include <lockable/metrics.hpp>

#include "core/allocation_record.hpp"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>

namespace lockable {
namespace {

using Kind = AllocationEvent::Kind;
using metrics::AllocationRecord;
using metrics::Outcome;

double unix_seconds(std::chrono::system_clock::time_point time) {
  return std::chrono::duration<double>(time.time_since_epoch()).count();
}

double seconds(std::chrono::steady_clock::duration duration) {
  return std::chrono::duration<double>(duration).count();
}

std::string compact(const Json& json) {
  return json.dump(-1, ' ', false, Json::error_handler_t::replace);
}

// glibc's program_invocation_short_name (errno.h, _GNU_SOURCE, which g++ defines).
std::string program_name() {
  return program_invocation_short_name != nullptr ? program_invocation_short_name : "";
}

class AllocationLog {
 public:
  AllocationLog(std::filesystem::path file, std::string backend, std::string label,
                std::function<void(const std::string&)> warn)
      : file_(std::move(file)),
        backend_(std::move(backend)),
        label_(label.empty() ? program_name() : std::move(label)),
        warn_(std::move(warn)) {}

  void operator()(const AllocationEvent& event) {
    if (event.kind == Kind::kForced || event.kind == Kind::kReserved ||
        event.kind == Kind::kUnreserved) {
      // An operator's action stands alone: one line at once, no request to follow.
      append(metrics::admin_log_line(to_string(event.kind),
                                     event.resource_ids.empty() ? "" : event.resource_ids.front(),
                                     event.by, event.reason, event.holder, event.hostname,
                                     event.pid, backend_, unix_seconds(event.wall_time)));
      return;
    }
    std::optional<AllocationRecord> record;
    {
      std::lock_guard<std::mutex> guard(mutex_);
      record = update(event);
    }
    if (record) append(metrics::to_log_line(*record));
  }

 private:
  struct Request {
    std::chrono::steady_clock::time_point monotonic;
    std::chrono::system_clock::time_point wall;
    bool queued = false;
    std::size_t devices_left = 0;
    std::vector<std::string> candidates;  // from kQueued
  };
  struct Granted {
    AllocationRecord record;
    std::optional<std::chrono::system_clock::time_point> lost_at;
  };

  AllocationRecord base(const AllocationEvent& event) const {
    AllocationRecord record;
    record.request_id = event.request_id;
    record.host = event.hostname;
    record.pid = event.pid;
    record.backend = backend_;
    record.label = label_;
    return record;
  }

  // Keeps what later events need; returns the record of an allocation or request that ended.
  std::optional<AllocationRecord> update(const AllocationEvent& event) {
    switch (event.kind) {
      case Kind::kRequested:
        requests_[event.request_id] =
            Request{event.monotonic_time, event.wall_time, false, event.requirements.size(), {}};
        return std::nullopt;
      case Kind::kQueued:
        if (auto it = requests_.find(event.request_id); it != requests_.end()) {
          it->second.queued = true;
          it->second.candidates = event.resource_ids;
        }
        return std::nullopt;
      case Kind::kGranted: {
        Granted granted{base(event), std::nullopt};
        auto& record = granted.record;
        record.resource_id = event.resource_ids.empty() ? "" : event.resource_ids.front();
        record.alloc_id = event.alloc_id;
        record.requirements = compact(event.requirements.size() == 1 ? event.requirements.front()
                                                                     : event.requirements);
        record.queue_time = event.queue_time ? seconds(*event.queue_time) : 0;
        record.start = unix_seconds(event.wall_time);
        record.fencing_token = event.fencing_token;
        if (auto it = requests_.find(event.request_id); it != requests_.end()) {
          record.queued = it->second.queued;
          record.requested = unix_seconds(it->second.wall);
          if (it->second.devices_left <= 1) {
            requests_.erase(it);
          } else {
            --it->second.devices_left;
          }
        }
        granted_[event.alloc_id] = std::move(granted);
        return std::nullopt;
      }
      case Kind::kLost:
        if (auto it = granted_.find(event.alloc_id); it != granted_.end()) {
          it->second.record.outcome = Outcome::kLost;
          it->second.record.reason = event.reason;
          it->second.lost_at = event.wall_time;
        }
        return std::nullopt;
      case Kind::kReleased: {
        const auto it = granted_.find(event.alloc_id);
        if (it == granted_.end()) return std::nullopt;  // granted before the log was added
        AllocationRecord record = std::move(it->second.record);
        granted_.erase(it);
        // The release as start + hold: both measured around the lock itself, so that holds of
        // one device never overlap in the log (the event's own time comes after the unlock).
        record.duration = event.hold_time ? seconds(*event.hold_time)
                                          : unix_seconds(event.wall_time) - *record.start;
        record.end = *record.start + *record.duration;
        return record;
      }
      case Kind::kTimedOut:
      case Kind::kNoMatch:
      case Kind::kCancelled:
      case Kind::kFailed: {
        AllocationRecord record = base(event);
        record.outcome = event.kind == Kind::kTimedOut    ? Outcome::kTimedOut
                         : event.kind == Kind::kNoMatch   ? Outcome::kNoMatch
                         : event.kind == Kind::kCancelled ? Outcome::kCancelled
                                                          : Outcome::kFailed;
        record.candidates = event.resource_ids;
        record.requirements = compact(event.requirements.size() == 1 ? event.requirements.front()
                                                                     : event.requirements);
        record.reason = event.reason;
        record.end = unix_seconds(event.wall_time);
        if (auto it = requests_.find(event.request_id); it != requests_.end()) {
          record.queued = it->second.queued;
          record.requested = unix_seconds(it->second.wall);
          record.queue_time = seconds(event.monotonic_time - it->second.monotonic);
          // The ending event may not repeat the devices the request waited for.
          if (record.candidates.empty()) record.candidates = std::move(it->second.candidates);
          requests_.erase(it);
        }
        return record;
      }
      case Kind::kForced:
      case Kind::kReserved:
      case Kind::kUnreserved:
        return std::nullopt;  // written by operator() at once
    }
    return std::nullopt;
  }

  // One write() of the whole line on an O_APPEND descriptor: the kernel moves to the end and
  // writes in one step, so appends of many processes never interleave or overwrite each other.
  // POSIX promises that atomicity only up to PIPE_BUF for pipes; on a regular file Linux holds
  // the inode's lock for the whole write(), so a line longer than PIPE_BUF (a long requirement
  // or reason) still lands in one piece. Not on NFS, whose O_APPEND is emulated by each client:
  // keep the metrics file on a local disk. Opened per line so that a rotated or removed file is
  // simply started again.
  void append(const std::string& line) {
    const int fd =
        ::open(file_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0666);
    if (fd < 0) return warn_once("cannot open it: " + std::string(std::strerror(errno)));
    ssize_t written = -1;
    do {
      written = ::write(fd, line.data(), line.size());
    } while (written < 0 && errno == EINTR);
    const int error = errno;
    ::close(fd);
    if (written < 0) return warn_once("cannot write it: " + std::string(std::strerror(error)));
    if (static_cast<std::size_t>(written) != line.size()) {
      warn_once("only " + std::to_string(written) + " of " + std::to_string(line.size()) +
                " bytes of a line were written (disk full?)");
    }
  }

  void warn_once(const std::string& why) {
    if (warned_.exchange(true)) return;
    if (!warn_) return;
    warn_("lockable: warning: metrics file " + file_.string() + ": " + why +
          "; allocations go on without their log lines. Fix the path or its permissions, or "
          "unset LOCKABLE_METRICS_FILE / --metrics-file");
  }

  const std::filesystem::path file_;
  const std::string backend_;
  const std::string label_;
  const std::function<void(const std::string&)> warn_;
  std::atomic<bool> warned_{false};
  std::mutex mutex_;
  std::map<std::string, Request> requests_;
  std::map<std::string, Granted> granted_;
};

}  // namespace

AllocationObserver make_allocation_log(std::filesystem::path file, std::string backend,
                                       std::string label,
                                       std::function<void(const std::string&)> warn) {
  auto log = std::make_shared<AllocationLog>(std::move(file), std::move(backend), std::move(label),
                                             std::move(warn));
  return [log](const AllocationEvent& event) { (*log)(event); };
}

}  // namespace lockable
