// Fuzzes read_input, the reader of `lockable report`'s files (GoogleTest XML and JSON reports,
// allocation logs): whatever the bytes, it returns records and problems; nothing may escape,
// every problem names the file, and every record has a device and a start or an end.
#include "core/report.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto input = lockable::metrics::read_input(text, "fuzz");
  for (const auto& problem : input.problems) {
    if (problem.file != "fuzz" || problem.message.empty()) __builtin_trap();
  }
  for (const auto& record : input.records) {
    const bool granted = record.outcome == lockable::metrics::Outcome::kReleased ||
                         record.outcome == lockable::metrics::Outcome::kLost;
    if (granted && (record.resource_id.empty() || !record.start)) __builtin_trap();
    if (!granted && !record.end) __builtin_trap();
  }
  // The figures and their text forms must hold up too.
  const auto report =
      lockable::metrics::compute_report(lockable::metrics::merge_records(input.records));
  (void)lockable::metrics::format_json(report, input.problems);
  (void)lockable::metrics::format_html(report, input.problems);
  return 0;
}
