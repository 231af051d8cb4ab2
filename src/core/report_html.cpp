// `lockable report --html`: one self-contained page.

#include "core/report.hpp"

namespace lockable::metrics {

std::string format_html(const Report& /*report*/, const std::vector<InputProblem>& /*problems*/) {
  return "<!DOCTYPE html><html><body></body></html>\n";
}

}  // namespace lockable::metrics
