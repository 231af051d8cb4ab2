#include <lockable/error.hpp>
#include <lockable/gtest/device.hpp>

namespace lockable::gtest {
namespace {

// The attribute `key`, literally or as a dotted path into nested objects; nullptr when absent.
const Json* find_attribute(const Json& attributes, std::string_view key) {
  if (!attributes.is_object()) return nullptr;
  if (const auto it = attributes.find(std::string(key)); it != attributes.end()) return &*it;
  const Json* node = &attributes;
  std::size_t begin = 0;
  while (true) {
    const auto dot = key.find('.', begin);
    const std::string part(
        key.substr(begin, dot == std::string_view::npos ? key.npos : dot - begin));
    if (!node->is_object()) return nullptr;
    const auto it = node->find(part);
    if (it == node->end()) return nullptr;
    node = &*it;
    if (dot == std::string_view::npos) return node;
    begin = dot + 1;
  }
}

}  // namespace

const Json& Device::operator[](std::string_view key) const {
  if (const Json* value = find_attribute(attributes(), key)) return *value;
  std::string names;
  if (attributes().is_object()) {
    for (const auto& item : attributes().items()) names += (names.empty() ? "" : ", ") + item.key();
  }
  throw Error("device " + id() + " has no attribute \"" + std::string(key) +
              "\"; its attributes are: " + names +
              ". Fix the key, or add the attribute to the device in resources.json");
}

bool Device::has(std::string_view key) const noexcept {
  return find_attribute(attributes(), key) != nullptr;
}

std::string Device::str(std::string_view key) const {
  const Json& value = (*this)[key];
  if (value.is_string()) return value.get<std::string>();
  return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace lockable::gtest
