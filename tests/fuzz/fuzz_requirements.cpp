// Fuzzes Requirements::parse and then matching of the parsed query against fixed resources:
// parsing may throw RequirementsError only, matching / reasons may never throw, and the column
// index must find exactly what the tree matcher finds.
#include <lockable/error.hpp>
#include <lockable/requirements.hpp>

#include "core/matching.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

namespace {

const lockable::Resources& fixed_resources() {
  static const lockable::Resources resources = [] {
    const auto list = lockable::Json::parse(R"([
      {"id": "a", "online": true, "hostname": "rig-01", "os": "Android", "version": "14",
       "ver": 11, "model": "Pixel 7", "board": {"name": "nRF", "rev": 2},
       "tags": ["ble", "thread"], "usb": [{"hub": 1, "port": 2}, {"hub": 2}], "n": null},
      {"id": "b", "online": false, "os": "iOS", "score": 2.5, "matrix": [[1, 2], [3]],
       "s": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab"},
      {"id": "c"},
      {"id": "d", "online": true, "hostname": "rig-01", "ver": -7, "score": 1.0,
       "big": 18446744073709551615, "text": "Line one\nsecond Line", "tags": [[1, 2], 3, null],
       "board": {"rev": [1, 5], "name": null}, "usb": [{"hub": 1, "port": [2, 3]}]}
    ])");
    std::vector<lockable::Resource> out;
    for (const auto& entry : list) out.push_back({entry["id"].get<std::string>(), entry});
    return lockable::Resources(std::move(out));
  }();
  return resources;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  lockable::Requirements requirements;
  try {
    requirements = lockable::Requirements::parse(text);
  } catch (const lockable::RequirementsError&) {
    return 0;
  }
  const auto filtered = requirements.with_implicit_filters("rig-01");
  for (const auto* query : {static_cast<const lockable::Requirements*>(&requirements), &filtered}) {
    const auto matches = lockable::find_matches(fixed_resources(), *query);
    const auto reasons = lockable::explain_mismatches(fixed_resources(), *query);
    if (matches.size() + reasons.size() != fixed_resources().size()) __builtin_trap();
    if (lockable::detail::indexed_matches(fixed_resources(), *query) !=
        lockable::detail::scan_matches(fixed_resources(), *query)) {
      __builtin_trap();
    }
    (void)query->to_string();
  }
  // Round trip: the JSON form of a parsed requirement parses again.
  try {
    (void)lockable::Requirements::from_json(requirements.json());
  } catch (const lockable::RequirementsError&) {
    __builtin_trap();
  }
  return 0;
}
