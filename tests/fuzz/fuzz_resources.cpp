// Fuzzes parse_resources_text: it either returns validated resources or throws ResourcesError
// with at least one problem; nothing else may escape.
#include <lockable/error.hpp>
#include <lockable/resource.hpp>

#include <cstddef>
#include <cstdint>
#include <set>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const auto resources = lockable::parse_resources_text(text, "fuzz.json");
    std::set<std::string> ids;
    for (const auto& resource : resources) {
      // What validation promises to later users of a resource.
      if (!lockable::invalid_id_reason(resource.id).empty()) __builtin_trap();
      if (!ids.insert(resource.id).second) __builtin_trap();
      if (resource.attributes.at("id") != resource.id) __builtin_trap();
      (void)resource.online();
      (void)resource.hostname();
    }
  } catch (const lockable::ResourcesError& e) {
    if (e.problems().empty()) __builtin_trap();
  }
  return 0;
}
