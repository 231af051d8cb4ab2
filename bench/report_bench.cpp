// `lockable report` over 100,000 allocations, from an allocation log and from a GoogleTest XML
// report: the median run time of the command (a child process, as a user runs it) and of the
// same pipeline in process, next to the time to merely parse those files (JSON per line; the
// XML reader with a handler that does nothing). Prints medians; asserts nothing about time.
//   report_bench [allocations]     (default 100000)

#include "core/report.hpp"
#include "core/xml_reader.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
using lockable::metrics::AllocationRecord;
using Clock = std::chrono::steady_clock;

constexpr double kEpoch = 1796112000;  // 2026-12-01T08:00:00Z
constexpr int kDevices = 200;

// Deterministic: 200 devices, one allocation after another on each, some waits, a few losses.
std::vector<AllocationRecord> records(std::size_t count) {
  std::vector<AllocationRecord> out;
  out.reserve(count);
  std::vector<double> free_at(kDevices, kEpoch);
  for (std::size_t i = 0; i < count; ++i) {
    const int device = static_cast<int>((i * 7919) % kDevices);
    AllocationRecord r;
    r.outcome =
        i % 997 == 0 ? lockable::metrics::Outcome::kLost : lockable::metrics::Outcome::kReleased;
    r.resource_id = "board-" + std::to_string(device);
    r.alloc_id = "alloc-" + std::to_string(i);
    r.request_id = "req-" + std::to_string(i);
    r.requirements = R"({"type":"board","rev":)" + std::to_string(i % 4) + "}";
    r.host = "rig-01";
    r.pid = 1000 + static_cast<long>(i % 50);
    r.backend = "lock folder /tmp";
    r.label = "Suite" + std::to_string(i % 40);
    r.queue_time = static_cast<double>(i % 13) * 0.125;
    r.queued = r.queue_time > 0;
    r.start = free_at[static_cast<std::size_t>(device)] + r.queue_time;
    r.requested = *r.start - r.queue_time;
    r.duration = 1 + static_cast<double>(i % 17) * 0.5;
    r.end = *r.start + *r.duration;
    free_at[static_cast<std::size_t>(device)] = *r.end;
    if (r.outcome == lockable::metrics::Outcome::kLost) r.reason = "lease expired";
    out.push_back(std::move(r));
  }
  return out;
}

std::string seconds3(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.3f", value);
  return text;
}

std::string iso_ms(double t) {
  return lockable::metrics::format_timestamp(std::round(t * 1000) / 1000).substr(0, 23) + "Z";
}

// GoogleTest 1.12's form: one suite per allocation, properties as attributes, and the same on
// its test as <property> elements.
std::string xml_of(const std::vector<AllocationRecord>& all) {
  std::string xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites tests=\"" +
                    std::to_string(all.size()) + "\" name=\"AllTests\">\n";
  for (const auto& r : all) {
    std::string req;
    for (const char c : r.requirements) req += c == '"' ? std::string("&quot;") : std::string(1, c);
    const std::string props = "lockable_requirements=\"" + req + "\" lockable_resource_id=\"" +
                              r.resource_id + "\" lockable_alloc_id=\"" + r.alloc_id +
                              "\" lockable_allocation_queue_time=\"" + seconds3(r.queue_time) +
                              "\" lockable_allocation_start_time=\"" + iso_ms(*r.start) + "\"";
    // 40 suites, run again and again (as reports of many runs hold them).
    xml += "  <testsuite name=\"" + r.label +
           "\" tests=\"1\" failures=\"0\" disabled=\"0\" skipped=\"0\" errors=\"0\" time=\"0\" "
           "timestamp=\"2026-12-01T08:00:00.000\" " +
           props + " lockable_allocation_duration=\"" + seconds3(*r.duration) +
           "\">\n    <testcase name=\"Runs\" file=\"t.cpp\" line=\"1\" status=\"run\" "
           "result=\"completed\" time=\"0\" timestamp=\"2026-12-01T08:00:00.000\" classname=\"S\">"
           "\n      <properties>\n        <property name=\"lockable_resource_id\" value=\"" +
           r.resource_id + "\"/>\n        <property name=\"lockable_alloc_id\" value=\"" +
           r.alloc_id + "\"/>\n      </properties>\n    </testcase>\n  </testsuite>\n";
  }
  return xml + "</testsuites>\n";
}

std::string read(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

double median_seconds(int runs, const std::function<void()>& work) {
  std::vector<double> times;
  for (int i = 0; i < runs; ++i) {
    const auto start = Clock::now();
    work();
    times.push_back(std::chrono::duration<double>(Clock::now() - start).count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

class NoOp : public lockable::xml::Handler {
 public:
  void start_element(std::string_view, const lockable::xml::Attributes&, std::size_t) override {
    ++elements;
  }
  void end_element(std::string_view) override {}
  std::size_t elements = 0;
};

}  // namespace

int main(int argc, char** argv) {
  const std::size_t count = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 100000;
  const fs::path dir = fs::temp_directory_path() / "lockable-report-bench";
  fs::create_directories(dir);
  const auto all = records(count);
  const fs::path log = dir / "allocations.jsonl";
  const fs::path xml = dir / "report.xml";
  {
    std::ofstream out(log, std::ios::binary | std::ios::trunc);
    for (const auto& r : all) out << lockable::metrics::to_log_line(r);
    std::ofstream x(xml, std::ios::binary | std::ios::trunc);
    x << xml_of(all);
  }
  std::printf("%zu allocations on %d devices: log %.1f MB, XML %.1f MB (in %s)\n", count, kDevices,
              static_cast<double>(fs::file_size(log)) / 1e6,
              static_cast<double>(fs::file_size(xml)) / 1e6, dir.c_str());
  constexpr int kRuns = 5;
  std::size_t sink = 0;
  for (const fs::path& file : {log, xml}) {
    const bool is_log = file == log;
    const double parse = median_seconds(kRuns, [&] {
      const std::string text = read(file);
      if (is_log) {
        std::size_t pos = 0;
        while (pos < text.size()) {
          const auto end = text.find('\n', pos);
          sink += lockable::Json::parse(text.substr(pos, end - pos)).size();
          pos = end + 1;
        }
      } else {
        NoOp handler;
        lockable::xml::parse(text, handler);
        sink += handler.elements;
      }
    });
    const double in_process = median_seconds(kRuns, [&] {
      const std::string text = read(file);
      auto input = lockable::metrics::read_input(text, file.string());
      const auto report = lockable::metrics::compute_report(
          lockable::metrics::merge_records(std::move(input.records)));
      sink += lockable::metrics::format_json(report, input.problems).size();
    });
#ifdef LOCKABLE_CLI_PATH
    const std::string command =
        std::string(LOCKABLE_CLI_PATH) + " report --format json '" + file.string() + "' >/dev/null";
    const double cli = median_seconds(kRuns, [&] {
      if (std::system(command.c_str()) != 0) std::fprintf(stderr, "failed: %s\n", command.c_str());
    });
#else
    const double cli = 0;
#endif
    std::printf(
        "%-4s  lockable report --format json: %.3f s (in process %.3f s)   parse only: %.3f s\n",
        is_log ? "log" : "XML", cli, in_process, parse);
  }
  if (std::getenv("KEEP")) return 0;
  fs::remove_all(dir);
  return sink == 0 ? 1 : 0;
}
