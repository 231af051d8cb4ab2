#include <lockable/error.hpp>
#include <lockable/lockable.hpp>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <string>

namespace lockable {

Seconds parse_timeout(std::string_view text, const std::string& name) {
  const std::string copy(text);
  const auto fail = [&](const std::string& why) -> Seconds {
    throw ConfigError(name + ": " + why + ", found \"" + copy +
                      "\"; give the timeout in seconds, e.g. 30 or 0.5");
  };
  if (copy.empty()) return fail("must be a number of seconds");
  char* end = nullptr;
  errno = 0;
  const double value = std::strtod(copy.c_str(), &end);
  if (end != copy.c_str() + copy.size() || errno == ERANGE) {
    return fail("must be a number of seconds");
  }
  if (!std::isfinite(value)) return fail("must be finite");
  if (value < 0) return fail("must not be negative");
  return Seconds(value);
}

}  // namespace lockable
