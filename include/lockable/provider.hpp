#pragma once

#include <lockable/resource.hpp>

#include <filesystem>
#include <memory>
#include <string>

namespace lockable {

/// Supplies the resource list. May be slow or remote; the library calls `load()` once per
/// allocation attempt and again when `changed()` says so while waiting.
class ResourceProvider {
 public:
  virtual ~ResourceProvider() = default;
  /// Returns validated resources or throws ResourcesError / Error naming the source.
  virtual Resources load() = 0;
  /// Cheap check: may the resources differ from the last `load()`? Conservative `true` is allowed.
  virtual bool changed() = 0;
  /// The source for messages: a path, "<list>", a URL.
  virtual std::string describe() const = 0;
};

/// Resources from a resources.json file; `changed()` compares the file's mtime, size and inode.
std::unique_ptr<ResourceProvider> make_file_provider(std::filesystem::path path);

/// Resources from an in-memory list of JSON objects (validated once, at construction).
std::unique_ptr<ResourceProvider> make_list_provider(Json list, std::string source = "<list>");

}  // namespace lockable
