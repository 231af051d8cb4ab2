#pragma once

// One finished allocation (or a request that got nothing), as the allocation log stores it and
// as `lockable report` counts it. Pure: text in, values out.

#include <lockable/resource.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lockable::metrics {

/// How an allocation or a request ended.
enum class Outcome { kReleased, kLost, kTimedOut, kNoMatch, kCancelled, kFailed };

/// "released", "lost", "timed_out", "no_match", "cancelled", "failed".
const char* to_string(Outcome outcome) noexcept;
/// The reverse of to_string; nullopt for any other text.
std::optional<Outcome> outcome_from_string(std::string_view text) noexcept;

/// One line of the allocation log. Times are wall-clock seconds since the Unix epoch (UTC),
/// durations seconds; both with microsecond precision in the log, millisecond in test reports.
struct AllocationRecord {
  Outcome outcome = Outcome::kReleased;
  /// The device; empty when the request got none (timed out, no match, cancelled, failed).
  std::string resource_id;
  /// A request that got nothing: every device it could have used.
  std::vector<std::string> candidates;
  std::string alloc_id;
  std::string request_id;
  /// The device's requirement as compact JSON (a request for several devices that got nothing:
  /// the array of them).
  std::string requirements;
  std::string host;
  long pid = 0;
  /// The lock store (LockBackend::describe()).
  std::string backend;
  /// What held the device: a command line or a program name (the log), a suite (reports).
  std::string label;
  /// The request had to wait in the queue (false when unknown and the queue time was 0).
  bool queued = false;
  /// From the request to the grant, or to the end of a request that got nothing.
  double queue_time = 0;
  std::optional<double> requested;
  /// The grant.
  std::optional<double> start;
  /// The release, or the end of a request that got nothing.
  std::optional<double> end;
  /// From the grant to the release; unset where a report holds no duration.
  std::optional<double> duration;
  std::optional<std::uint64_t> fencing_token;
  /// Why a request ended without a device, or why a lock was lost.
  std::string reason;
  /// Where this record was read (`file:line`), for messages.
  std::string source;
  /// Read from a test report (label: the suite) rather than an allocation log.
  bool from_report = false;
};

/// The record as one log line: compact JSON ending in '\n' (see README "Metrics").
std::string to_log_line(const AllocationRecord& record);

/// An operator's action on a device (kForced, kReserved, kUnreserved) as one log line: compact
/// JSON ending in '\n' with `"event"` ("forced", "reserved", "unreserved") instead of
/// `"outcome"`, `resource_id`, `by`, `reason`, `holder` (forced), `host`, `pid`, `backend` and
/// `time`. `lockable report` skips such lines (they are no allocation) and counts them.
std::string admin_log_line(const std::string& event, const std::string& resource_id,
                           const std::string& by, const std::string& reason,
                           const std::string& holder, const std::string& host, long pid,
                           const std::string& backend, double unix_seconds);

/// Whether a parsed log line is one of admin_log_line's.
bool is_admin_line(const Json& line);

/// Reads one parsed log line. Throws std::invalid_argument naming the missing or malformed field.
AllocationRecord record_from_json(const Json& line);

/// "2026-12-01T15:20:44.587123Z" (UTC, microseconds).
std::string format_timestamp(double unix_seconds);
/// Reads an ISO 8601 time: `YYYY-MM-DDTHH:MM:SS[.fraction][Z|+hh:mm|-hh:mm]`; no zone means UTC.
/// nullopt when the text is not one.
std::optional<double> parse_timestamp(std::string_view text) noexcept;

}  // namespace lockable::metrics
