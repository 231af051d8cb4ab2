#include <lockable/error.hpp>

#include <algorithm>
#include <map>
#include <string>
#include <utility>
#include <vector>

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

// A message lists this many resources at most: a list of thousands would bury the reason in a
// terminal or a test report. The full lists stay available from reasons() and busy().
constexpr std::size_t kMaxListedLines = 20;

// The lines after the first kMaxListedLines, summarised by their most common text after the
// resource id ("offline"), so that a large lab still shows why most of it did not qualify.
std::string summarise_rest(const std::vector<std::string>& lines) {
  const auto rest = lines.size() - kMaxListedLines;
  std::map<std::string, std::size_t> counts;
  for (std::size_t i = kMaxListedLines; i < lines.size(); ++i) {
    const auto colon = lines[i].find(": ");
    ++counts[colon == std::string::npos ? lines[i] : lines[i].substr(colon + 2)];
  }
  std::vector<std::pair<std::string, std::size_t>> common(counts.begin(), counts.end());
  std::stable_sort(common.begin(), common.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  std::string text = "... and " + std::to_string(rest) + " more";
  constexpr std::size_t kShownGroups = 3;
  for (std::size_t i = 0; i < common.size() && i < kShownGroups; ++i) {
    text += (i == 0 ? ": " : "; ") + std::to_string(common[i].second) + " " + common[i].first;
  }
  if (common.size() > kShownGroups) text += "; ...";
  return text;
}

// `by_reason`: the lines read "<id>: <reason>" and the rest is summed up by reason.
std::string join_capped(const std::string& head, const std::vector<std::string>& lines,
                        bool by_reason) {
  if (lines.size() <= kMaxListedLines) return join_lines(head, lines);
  std::vector<std::string> shown(lines.begin(), lines.begin() + kMaxListedLines);
  shown.push_back(by_reason
                      ? summarise_rest(lines)
                      : "... and " + std::to_string(lines.size() - kMaxListedLines) + " more");
  return join_lines(head, shown);
}

}  // namespace

ResourcesError::ResourcesError(std::string source, std::vector<Problem> problems)
    : Error(describe_problems(source, problems)),
      source_(std::move(source)),
      problems_(std::move(problems)) {}

NoMatchError::NoMatchError(const std::string& message, std::vector<std::string> reasons)
    : Error(join_capped(message, reasons, true)), reasons_(std::move(reasons)) {}

TimeoutError::TimeoutError(const std::string& message, std::vector<std::string> busy)
    : Error(join_capped(message, busy, false)), busy_(std::move(busy)) {}

}  // namespace lockable
