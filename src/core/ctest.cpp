// CTest resource allocation: the spec file and the assignment CTest hands a test. Pure: the
// environment comes through an EnvLookup.

#include <lockable/ctest.hpp>
#include <lockable/error.hpp>

#include <cstdlib>
#include <map>

namespace lockable {
namespace {

std::string lower_safe(const std::string& text) {
  std::string out;
  for (const char c : text) {
    if (c >= 'A' && c <= 'Z') {
      out += static_cast<char>(c - 'A' + 'a');
    } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_') {
      out += c;
    } else {
      out += '_';
    }
  }
  return out;
}

// The attribute at a dotted path, or nullptr.
const Json* attribute(const Json& attributes, const std::string& path) {
  const Json* at = &attributes;
  std::size_t from = 0;
  while (at != nullptr) {
    const auto dot = path.find('.', from);
    const std::string key = path.substr(from, dot == std::string::npos ? dot : dot - from);
    if (!at->is_object()) return nullptr;
    const auto it = at->find(key);
    at = it == at->end() ? nullptr : &*it;
    if (dot == std::string::npos) break;
    from = dot + 1;
  }
  return at;
}

std::string upper(std::string text) {
  for (auto& c : text) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return text;
}

}  // namespace

std::string ctest_id(const std::string& resource_id) { return lower_safe(resource_id); }

Json ctest_resource_spec(const Resources& resources, const CtestSpecOptions& options) {
  std::map<std::string, Json> types;
  std::map<std::string, std::string> owner;  // CTest id -> resource id
  for (const auto& resource : resources) {
    if (!options.include_offline && !resource.online()) continue;
    if (!options.hostname.empty() && resource.hostname() != options.hostname) continue;
    std::string type = options.type_name;
    if (!options.by.empty()) {
      if (const Json* value = attribute(resource.attributes, options.by)) {
        type = lower_safe(value->is_string() ? value->get<std::string>() : value->dump());
        if (type.empty() || (type[0] >= '0' && type[0] <= '9')) type = "_" + type;
      }
    }
    const std::string id = ctest_id(resource.id);
    if (const auto [it, fresh] = owner.emplace(id, resource.id); !fresh) {
      throw ConfigError("devices \"" + it->second + "\" and \"" + resource.id +
                        "\" both become the CTest id \"" + id +
                        "\" (CTest allows only a-z 0-9 _); rename one of them");
    }
    types[type].push_back({{"id", id}, {"slots", 1}});
  }
  if (types.empty()) {
    throw ConfigError(
        "no device left for the CTest resource spec (only online devices" +
        (options.hostname.empty() ? std::string() : " of host \"" + options.hostname + "\"") +
        " are listed); check --hostname, or give --include-offline / --all-hosts");
  }
  Json local = Json::object();
  for (auto& [type, devices] : types) local[type] = std::move(devices);
  return Json{{"version", {{"major", 1}, {"minor", 0}}}, {"local", Json::array({local})}};
}

std::vector<std::string> ctest_assigned_ids(const EnvLookup& env) {
  const auto count_text = env("CTEST_RESOURCE_GROUP_COUNT");
  if (!count_text || count_text->empty()) return {};
  char* end = nullptr;
  const long count = std::strtol(count_text->c_str(), &end, 10);
  if (end != count_text->c_str() + count_text->size() || count < 0) {
    throw ConfigError("CTEST_RESOURCE_GROUP_COUNT must be a number, found \"" + *count_text + "\"");
  }
  std::vector<std::string> ids;
  for (long i = 0; i < count; ++i) {
    const std::string group = "CTEST_RESOURCE_GROUP_" + std::to_string(i);
    const auto types = env(group);
    if (!types || types->empty()) throw ConfigError(group + " is not set; run the test with ctest");
    // One type per group (RESOURCE_GROUPS "devices:1"): the first type's first id.
    const std::string type = types->substr(0, types->find(','));
    const std::string variable = group + "_" + upper(type);
    const auto value = env(variable);
    if (!value || value->rfind("id:", 0) != 0) {
      throw ConfigError(variable + " must be \"id:<id>,slots:<n>\", found \"" + value.value_or("") +
                        "\"");
    }
    ids.push_back(value->substr(
        3, value->find(',') == std::string::npos ? std::string::npos : value->find(',') - 3));
  }
  return ids;
}

std::vector<Requirements> restrict_to_ctest_assignment(
    const std::vector<Requirements>& requirements, const std::vector<std::string>& assigned,
    const Resources& resources) {
  if (assigned.empty()) return requirements;
  if (assigned.size() < requirements.size()) {
    throw ConfigError("CTest assigned " + std::to_string(assigned.size()) +
                      " resource group(s) but the test locks " +
                      std::to_string(requirements.size()) +
                      " devices; give the test RESOURCE_GROUPS with one group per device, e.g. "
                      "\"" +
                      std::to_string(requirements.size()) + ",devices:1\"");
  }
  std::vector<Requirements> out;
  for (std::size_t i = 0; i < requirements.size(); ++i) {
    std::string resource_id;
    for (const auto& resource : resources) {
      if (ctest_id(resource.id) == assigned[i]) resource_id = resource.id;
    }
    if (resource_id.empty()) {
      throw ConfigError("CTest assigned the device \"" + assigned[i] + "\" (CTEST_RESOURCE_GROUP_" +
                        std::to_string(i) +
                        "), which no resource has as its id; regenerate the spec file with "
                        "lockable ctest-spec from the same resources file");
    }
    // The other keys stay at the top, where `online`/`hostname` (null) lift the implicit filters.
    Json query = requirements[i].json();
    if (!query.contains("id")) {
      query["id"] = resource_id;
    } else if (query.contains("$and") && query["$and"].is_array()) {
      query["$and"].push_back({{"id", resource_id}});
    } else {
      query["$and"] = Json::array({Json{{"id", resource_id}}});
    }
    out.push_back(Requirements::from_json(query));
  }
  return out;
}

}  // namespace lockable
