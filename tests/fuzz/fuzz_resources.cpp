// Fuzzes parse_resources_text: it either returns validated resources or throws ResourcesError
// with at least one problem; nothing else may escape. The library's own JSON builder must also
// agree with nlohmann's parser on every document within the nesting limit, and the quick reader
// of resources.json with the thorough path on every text it takes.
#include <lockable/error.hpp>
#include <lockable/resource.hpp>

#include "core/json_text.hpp"
#include "core/resources_text.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
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

// The value with the type of every number spelled out: == and dump() do not tell 0 from -0's 0.
void typed(const lockable::Json& value, std::string& out) {
  out += std::to_string(static_cast<int>(value.type()));
  if (value.is_object()) {
    for (const auto& [key, element] : value.items()) {
      out += key;
      typed(element, out);
    }
  } else if (value.is_array()) {
    for (const auto& element : value) typed(element, out);
  } else {
    out += value.dump(-1, ' ', false, lockable::Json::error_handler_t::replace);
  }
  out += ';';
}

std::string outcome(const std::function<lockable::Resources()>& load) {
  std::string out;
  try {
    for (const auto& resource : load()) {
      out += resource.id + "\n";
      typed(resource.attributes, out);
    }
  } catch (const lockable::ResourcesError& e) {
    out = "error " + e.source();
    for (const auto& problem : e.problems()) out += "\n" + problem.to_string();
  }
  return out;
}

void compare_quick_with_thorough(const std::string& text) {
  bool taken = true;
  const auto quick = outcome([&] {
    auto resources = lockable::detail::parse_resources_text_quick(text, "fuzz.json");
    taken = resources.has_value();
    return resources ? *resources : lockable::Resources();
  });
  if (!taken) return;
  const auto thorough =
      outcome([&] { return lockable::detail::parse_resources_text_thorough(text, "fuzz.json"); });
  if (quick != thorough) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  compare_with_nlohmann(text);
  compare_quick_with_thorough(text);
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
