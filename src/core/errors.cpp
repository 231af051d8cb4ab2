#include <lockable/error.hpp>

#include <utility>

namespace lockable {
namespace {

std::string join_lines(const std::string& head, const std::vector<std::string>& lines) {
  std::string text = head;
  for (const auto& line : lines) {
    text += "\n  ";
    text += line;
  }
  return text;
}

std::string describe_problems(const std::string& source, const std::vector<Problem>& problems) {
  std::vector<std::string> lines;
  lines.reserve(problems.size());
  for (const auto& problem : problems) lines.push_back(problem.to_string());
  const auto count = problems.size();
  return join_lines(source + ": " + std::to_string(count) +
                        (count == 1 ? " problem" : " problems") + " in the resources:",
                    lines);
}

}  // namespace

ResourcesError::ResourcesError(std::string source, std::vector<Problem> problems)
    : Error(describe_problems(source, problems)),
      source_(std::move(source)),
      problems_(std::move(problems)) {}

NoMatchError::NoMatchError(const std::string& message, std::vector<std::string> reasons)
    : Error(join_lines(message, reasons)), reasons_(std::move(reasons)) {}

TimeoutError::TimeoutError(const std::string& message, std::vector<std::string> busy)
    : Error(join_lines(message, busy)), busy_(std::move(busy)) {}

}  // namespace lockable
