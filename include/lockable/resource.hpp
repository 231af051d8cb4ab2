#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

namespace lockable {

using Json = nlohmann::json;

/// One device from resources.json, already validated: `attributes` is a JSON object that holds a
/// non-empty, file-name-safe string `id`, and `online` (bool) / `hostname` (string) where present.
struct Resource {
  std::string id;
  Json attributes;

  /// `online` attribute; a resource without it counts as offline for the implicit filter.
  bool online() const;
  /// `hostname` attribute, or "" when absent.
  std::string hostname() const;
};

class Resources;

namespace detail {
class ResourceIndex;
/// Private to the library: the match index of `resources`, built on first use.
const ResourceIndex& index_of(const Resources& resources);
/// Private to the library: `list` as Resources, for a list whose blocks were allocated entry
/// after entry (the resources.json reader), which is then freed in reverse (faster).
Resources resources_in_reading_order(std::vector<Resource> list);
}  // namespace detail

/// An immutable list of resources, cheap to copy: copies share one list and one match index.
/// The index (a column per attribute path, built on the first `find_matches` over a large list)
/// lets matching run each condition once per distinct value instead of once per resource.
class Resources {
 public:
  using value_type = Resource;
  using const_iterator = std::vector<Resource>::const_iterator;
  using iterator = const_iterator;
  using size_type = std::size_t;

  Resources();
  // Implicit, so that a vector or a braced list of resources reads as a Resources.
  Resources(std::vector<Resource> list);  // NOLINT(google-explicit-constructor)
  Resources(std::initializer_list<Resource> list);

  const std::vector<Resource>& list() const noexcept;
  std::size_t size() const noexcept { return list().size(); }
  bool empty() const noexcept { return list().empty(); }
  const_iterator begin() const noexcept { return list().begin(); }
  const_iterator end() const noexcept { return list().end(); }
  const Resource& operator[](std::size_t index) const { return list()[index]; }
  /// Throws std::out_of_range past the end.
  const Resource& at(std::size_t index) const { return list().at(index); }
  const Resource& front() const { return list().front(); }
  const Resource& back() const { return list().back(); }

 private:
  friend const detail::ResourceIndex& detail::index_of(const Resources& resources);
  friend Resources detail::resources_in_reading_order(std::vector<Resource> list);
  struct Shared;
  explicit Resources(std::shared_ptr<Shared> shared) : shared_(std::move(shared)) {}
  std::shared_ptr<Shared> shared_;
};

/// Why `id` is not a usable resource id (it becomes a file name: `<lock-folder>/<id>.pid`), or ""
/// when it is fine. Rejects empty, longer than 200 bytes, `/`, `\`, NUL, and a leading `.`.
std::string invalid_id_reason(const std::string& id);

/// Validates a parsed resources document (a JSON array of objects). `source` names it in
/// messages (a file path, "<list>", a URL). Throws ResourcesError listing every problem.
Resources parse_resources(const Json& document, const std::string& source);

/// Parses and validates resources.json text. Syntax errors are reported as `source:line:column`.
/// Throws ResourcesError.
Resources parse_resources_text(const std::string& text, const std::string& source);

}  // namespace lockable
