#pragma once

// `lockable report`: reading allocation logs and GoogleTest reports (text in, records out) and
// the figures computed from them (records in, figures out). Pure: the CLI reads the files.

#include "core/allocation_record.hpp"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lockable::metrics {

/// Something in an input that was not counted, and why; `line` 0 means the whole file.
struct InputProblem {
  std::string file;
  std::size_t line = 0;
  std::string message;
  /// "FILE:LINE: message" (or "FILE: message").
  std::string to_string() const;
};

/// What one input gave.
struct ParsedInput {
  std::vector<AllocationRecord> records;
  std::vector<InputProblem> problems;
  /// Operators' actions read from an allocation log (forced releases, reservations): no
  /// allocation, so not in `records`, and no problem.
  std::size_t admin_events = 0;
};

/// Reads an allocation log: one JSON object per line. A corrupt line, a line with a bad field
/// and an incomplete last line (no newline: a writer was killed or is still writing) are
/// problems naming their line; every other line is counted (operators' lines in admin_events).
ParsedInput read_allocation_log(std::string_view text, const std::string& file);

/// Reads a GoogleTest XML report: `lockable_*` properties as attributes of <testsuite> and
/// <testsuites> (GoogleTest up to 1.15) or as <properties> children (1.16+), and on each
/// <testcase> (used where the suite has none). Each allocation is counted once (by alloc id);
/// the suite names it. Not well-formed XML, a foreign document and a report without any
/// lockable property are problems.
ParsedInput read_gtest_xml(std::string_view text, const std::string& file);

/// Reads a GoogleTest JSON report (flat `lockable_*` keys on the top level, each suite and each
/// test).
ParsedInput read_gtest_json(std::string_view text, const std::string& file);

/// Tells the kind of `text` by its content (XML, a JSON document, JSON lines) and reads it.
ParsedInput read_input(std::string_view text, const std::string& file);

/// Merges records of several inputs: an allocation found in a log and in a report (same alloc
/// id) is counted once, with the log's figures (microseconds, outcome) and the report's suite as
/// its label.
std::vector<AllocationRecord> merge_records(std::vector<AllocationRecord> records);

/// Limits of the report; unset ends take the earliest / latest time in the records.
struct Window {
  std::optional<double> since;
  std::optional<double> until;
};

/// Median, 95th percentile (nearest rank) and maximum of some durations, in seconds. The median
/// of an even count is the mean of the two middle values. All 0 when `count` is 0.
struct Distribution {
  std::size_t count = 0;
  double sum = 0;
  double median = 0;
  double p95 = 0;
  double max = 0;
};
Distribution distribution_of(std::vector<double> values);

struct DeviceFigures {
  std::string resource_id;
  /// Granted allocations (released or lost) whose hold overlaps the window.
  std::size_t allocations = 0;
  /// Seconds held inside the window.
  double total_hold = 0;
  /// total_hold / allocations.
  double mean_hold = 0;
  /// total_hold / the window's length (0 for an empty window).
  double utilization = 0;
  Distribution queue_time;
  std::size_t losses = 0;
  /// Requests that timed out while this device was one they could have used.
  std::size_t timeouts = 0;
};

/// A suite (from reports) or a command / program (from logs), or a requirement.
struct GroupFigures {
  std::string name;
  std::size_t requests = 0;  ///< allocations plus requests that got nothing
  std::size_t allocations = 0;
  std::vector<std::string> devices;  ///< sorted
  std::size_t waited = 0;            ///< requests that had to queue
  Distribution queue_time;           ///< of every request, served or not
  std::size_t losses = 0;
  std::size_t timeouts = 0;
  std::size_t failures = 0;  ///< no match, cancelled, failed
};

struct Report {
  /// The covered window (Unix seconds); both 0 when there is nothing to report.
  double window_start = 0;
  double window_end = 0;
  std::vector<DeviceFigures> devices;      ///< by resource id
  std::vector<GroupFigures> suites;        ///< by name
  std::vector<GroupFigures> requirements;  ///< by requirement text
  Distribution queue_time;                 ///< of every granted allocation
  /// The records inside the window, by start (granted) or end: the timeline's bars.
  std::vector<AllocationRecord> records;
};

/// The figures of `records` (merged already) inside `window`; the records inside it move into
/// Report::records.
Report compute_report(std::vector<AllocationRecord> records, const Window& window = {});

/// The report as text tables, JSON, CSV (one row per device, suite and requirement, with a
/// `section` column) or OpenMetrics text (for a pushgateway or a textfile collector). `problems`
/// go into the JSON (and nowhere else: the CLI prints them on stderr).
std::string format_text(const Report& report);
std::string format_json(const Report& report, const std::vector<InputProblem>& problems);
std::string format_csv(const Report& report);
std::string format_openmetrics(const Report& report);
/// One self-contained HTML page (inline SVG and CSS, nothing fetched, no script): a timeline per
/// device, a utilization bar per device and a queue-time histogram.
std::string format_html(const Report& report, const std::vector<InputProblem>& problems);

}  // namespace lockable::metrics
