// Fuzzes parse_resources_text: it either returns validated resources or throws ResourcesError
// with at least one problem; nothing else may escape. The library's own JSON builder must also
// agree with nlohmann's parser on every document within the nesting limit.
#include <lockable/error.hpp>
#include <lockable/resource.hpp>

#include "core/json_text.hpp"

#include <cstddef>
#include <cstdint>
#include <set>
#include <string>

namespace {

void compare_with_nlohmann(const std::string& text) {
  lockable::detail::SyntaxError error;
  const auto ours = lockable::detail::parse_json(text, 64, error);
  if (!ours && error.line == 0) return;  // deeper than the limit: nlohmann has none
  bool theirs_ok = true;
  lockable::Json theirs;
  try {
    theirs = lockable::Json::parse(text);
  } catch (const lockable::Json::exception&) {
    theirs_ok = false;
  }
  if (ours.has_value() != theirs_ok) __builtin_trap();
  const auto replace = lockable::Json::error_handler_t::replace;
  if (ours && ours->dump(-1, ' ', false, replace) != theirs.dump(-1, ' ', false, replace)) {
    __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  compare_with_nlohmann(text);
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
