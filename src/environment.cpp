#include <lockable/environment.hpp>

#include <algorithm>
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

bool starts_with(const std::string& text, const char* prefix) { return text.rfind(prefix, 0) == 0; }

// One pass over the attributes: what is exported, and what is not and why.
struct Exports {
  std::map<std::string, std::string> variables;
  std::vector<WithheldAttribute> withheld;
};

Exports exports_of(const Resource& resource) {
  Exports result;
  if (!resource.attributes.is_object()) return result;
  std::map<std::string, std::string> key_of_name;
  // nlohmann::json keeps object keys sorted, so the first key of a collision wins.
  for (const auto& [key, value] : resource.attributes.items()) {
    std::string name = environment_name(key);
    if (name.empty()) {
      result.withheld.push_back({key, name, "an empty key names no variable"});
      continue;
    }
    if (const auto reason = protected_variable_reason(name); !reason.empty()) {
      result.withheld.push_back({key, name, reason});
      continue;
    }
    if (const auto it = key_of_name.find(name); it != key_of_name.end()) {
      result.withheld.push_back(
          {key, name, name + " is already set from the attribute \"" + it->second + "\""});
      continue;
    }
    key_of_name.emplace(name, key);
    result.variables.emplace(std::move(name), value_text(value));
  }
  return result;
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

std::string protected_variable_reason(const std::string& name) {
  if (name == "PATH") return "PATH decides which programs the command runs";
  for (const char* session : {"HOME", "SHELL", "USER", "LOGNAME", "PWD", "TMPDIR"}) {
    if (name == session) return name + " is the command's session's own";
  }
  for (const char* shell :
       {"IFS", "ENV", "BASH_ENV", "CDPATH", "PS4", "GLOBIGNORE", "SHELLOPTS", "BASHOPTS"}) {
    if (name == shell) return name + " changes how the shell runs the command";
  }
  for (const char* loads :
       {"GCONV_PATH", "LOCPATH", "NLSPATH", "HOSTALIASES", "GLIBC_TUNABLES", "CLASSPATH",
        "NODE_OPTIONS", "NODE_PATH", "JAVA_TOOL_OPTIONS", "RUBYLIB", "RUBYOPT"}) {
    if (name == loads) return name + " changes what the command loads";
  }
  for (const char* prefix :
       {"LD_", "DYLD_", "MALLOC_", "PYTHON", "PERL5", "PERLLIB", "BASH_FUNC_"}) {
    if (starts_with(name, prefix)) return name + " changes what the command loads";
  }
  if (starts_with(name, "LOCKABLE_")) {
    return "LOCKABLE_* variables are lockable's own (they configure lockable and its plugin in "
           "the command)";
  }
  return {};
}

std::vector<EnvironmentVariable> environment_for(const Resource& resource,
                                                 const std::string& alloc_id) {
  auto variables = exports_of(resource).variables;
  variables["LOCKABLE_RESOURCE_ID"] = resource.id;
  variables["LOCKABLE_ALLOC_ID"] = alloc_id;
  variables["LOCKABLE_RESOURCE"] = value_text(resource.attributes);
  return {variables.begin(), variables.end()};
}

std::vector<WithheldAttribute> withheld_attributes(const Resource& resource) {
  return exports_of(resource).withheld;
}

std::vector<EnvironmentVariable> environment_for(const Allocation& allocation) {
  auto variables = environment_for(allocation.resource(), allocation.alloc_id());
  if (const auto token = allocation.fencing_token()) {
    // A rig helper (flasher, power switch) compares it to refuse a holder that was superseded.
    variables.emplace_back("LOCKABLE_FENCING_TOKEN", std::to_string(*token));
    std::sort(variables.begin(), variables.end());
  }
  return variables;
}

}  // namespace lockable
