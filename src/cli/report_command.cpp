// `lockable report`: the files are read here; everything else is core/report's.

#include "report_command.hpp"

#include "core/report.hpp"
#include "exit_codes.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <vector>

namespace lockable::cli {
namespace {

// Opened non-blocking and checked to be a regular file: a FIFO would never end.
std::optional<std::string> read_file(const std::string& path, std::string& error) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    error = std::string("cannot read it: ") + std::strerror(errno);
    return std::nullopt;
  }
  struct stat info {};
  if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    ::close(fd);
    error = "not a regular file; give a log or report file";
    return std::nullopt;
  }
  std::string text;
  text.reserve(static_cast<std::size_t>(info.st_size));
  std::vector<char> chunk(1 << 16);
  for (;;) {
    const auto count = ::read(fd, chunk.data(), chunk.size());
    if (count < 0 && errno == EINTR) continue;
    if (count < 0) {
      error = std::string("cannot read it: ") + std::strerror(errno);
      ::close(fd);
      return std::nullopt;
    }
    if (count == 0) break;
    text.append(chunk.data(), static_cast<std::size_t>(count));
  }
  ::close(fd);
  return text;
}

std::optional<double> parse_time_option(const std::string& text) {
  if (text.size() == 10) return metrics::parse_timestamp(text + "T00:00:00Z");
  return metrics::parse_timestamp(text);
}

}  // namespace

int run_report(const CommandLine& line) {
  metrics::Window window;
  for (const auto& [name, text, target] : {std::tuple{"--since", &line.since, &window.since},
                                           std::tuple{"--until", &line.until, &window.until}}) {
    if (!*text) continue;
    *target = parse_time_option(**text);
    if (!*target) {
      std::cerr << "lockable: report: " << name << " must be an ISO 8601 time such as "
                << "2026-12-01T08:00:00Z or a date such as 2026-12-01, found \"" << **text
                << "\"\n";
      return kUsage;
    }
  }
  if (window.since && window.until && *window.until < *window.since) {
    std::cerr << "lockable: report: --until is before --since; swap them\n";
    return kUsage;
  }

  std::vector<metrics::AllocationRecord> records;
  std::vector<metrics::InputProblem> problems;
  for (const auto& file : line.report_files) {
    std::string error;
    const auto text = read_file(file, error);
    if (!text) {
      problems.push_back({file, 0, error});
      continue;
    }
    auto input = metrics::read_input(*text, file);
    records.insert(records.end(), std::make_move_iterator(input.records.begin()),
                   std::make_move_iterator(input.records.end()));
    problems.insert(problems.end(), input.problems.begin(), input.problems.end());
  }
  for (const auto& problem : problems) {
    std::cerr << "lockable: report: " << problem.to_string() << "\n";
  }
  const auto report = metrics::compute_report(metrics::merge_records(std::move(records)), window);

  if (line.html) {
    std::ofstream out(*line.html, std::ios::binary | std::ios::trunc);
    out << metrics::format_html(report, problems);
    out.close();
    if (!out) {
      std::cerr << "lockable: report: cannot write " << *line.html << ": " << std::strerror(errno)
                << "; give --html a path in a writable folder\n";
      return kUsage;
    }
  }
  if (line.report_format == "json") {
    std::cout << metrics::format_json(report, problems);
  } else if (line.report_format == "csv") {
    std::cout << metrics::format_csv(report);
  } else if (line.report_format == "openmetrics") {
    std::cout << metrics::format_openmetrics(report);
  } else {
    std::cout << metrics::format_text(report);
  }
  std::cout << std::flush;
  return problems.empty() ? kOk : kValidationFailed;
}

}  // namespace lockable::cli
