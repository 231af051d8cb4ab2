#include <lockable/environment.hpp>

#include <map>

namespace lockable {
namespace {

std::string value_text(const Json& value) {
  if (value.is_string()) {
    auto text = value.get<std::string>();
    // An environment string ends at the first NUL; JSON keeps such a value whole.
    if (text.find('\0') == std::string::npos) return text;
  }
  // Invalid UTF-8 in a string nested in an object must not throw here: the resource was
  // accepted, so the child still gets a value.
  return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace

std::string environment_name(const std::string& key) {
  std::string name;
  name.reserve(key.size());
  for (const char c : key) {
    if (c >= 'a' && c <= 'z') {
      name.push_back(static_cast<char>(c - 'a' + 'A'));
    } else if ((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_') {
      name.push_back(c);
    } else {
      name.push_back('_');
    }
  }
  return name;
}

std::vector<EnvironmentVariable> environment_for(const Resource& resource,
                                                 const std::string& alloc_id) {
  std::map<std::string, std::string> variables;
  if (resource.attributes.is_object()) {
    // nlohmann::json keeps object keys sorted, so emplace() keeps the first key of a collision.
    for (const auto& [key, value] : resource.attributes.items()) {
      std::string name = environment_name(key);
      if (name.empty()) continue;
      variables.emplace(std::move(name), value_text(value));
    }
  }
  variables["LOCKABLE_RESOURCE_ID"] = resource.id;
  variables["LOCKABLE_ALLOC_ID"] = alloc_id;
  variables["LOCKABLE_RESOURCE"] = value_text(resource.attributes);
  return {variables.begin(), variables.end()};
}

std::vector<EnvironmentVariable> environment_for(const Allocation& allocation) {
  return environment_for(allocation.resource(), allocation.alloc_id());
}

}  // namespace lockable
