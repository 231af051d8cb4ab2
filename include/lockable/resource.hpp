#pragma once

#include <nlohmann/json.hpp>

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

using Resources = std::vector<Resource>;

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
