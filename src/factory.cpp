// The one place where specs become backends and providers. A new backend adds a row to a table.

#include <lockable/error.hpp>
#include <lockable/factory.hpp>
#include <lockable/lock_folder.hpp>
#include <lockable/named_lock_backend.hpp>

#include "http/client.hpp"

#include <cctype>
#include <optional>

namespace lockable {
namespace {

using Log = std::function<void(const std::string&)>;

template <class Made>
struct Entry {
  SpecScheme info;
  // Gets the spec without "scheme://" ("" scheme: the whole spec) and the warning sink; null
  // when reserved.
  std::unique_ptr<Made> (*make)(const std::string& rest, const Log& log);
  // The read-only form for `status`; null when the scheme has none.
  std::unique_ptr<Made> (*observe)(const std::string& rest, const Log& log) = nullptr;
};

std::unique_ptr<LockBackend> lock_folder(const std::string& path, const Log& log) {
  return make_lock_folder_backend(
      path.empty() ? default_lock_folder() : std::filesystem::path(path), log);
}

std::unique_ptr<LockBackend> lock_folder_observer(const std::string& path, const Log& /*log*/) {
  return make_lock_folder_observer(path);
}

std::unique_ptr<ResourceProvider> resources_file(const std::string& path, const Log& /*log*/) {
  if (path.empty()) {
    throw ConfigError("no resources given; pass a resources.json path (--resources) or a list");
  }
  return make_file_provider(path);
}

std::unique_ptr<LockBackend> lock_service_http(const std::string& rest, const Log& log) {
  return make_lock_service_backend("http://" + rest, log);
}

std::unique_ptr<LockBackend> lock_service_https(const std::string& rest, const Log& log) {
  return make_lock_service_backend("https://" + rest, log);
}

std::unique_ptr<ResourceProvider> resources_http(const std::string& rest, const Log& log) {
  UrlProviderOptions options;
  options.log = log;
  return make_url_provider("http://" + rest, options);
}

std::unique_ptr<ResourceProvider> resources_https(const std::string& rest, const Log& log) {
  UrlProviderOptions options;
  options.log = log;
  return make_url_provider("https://" + rest, options);
}

const std::vector<Entry<LockBackend>>& backends() {
  static const std::vector<Entry<LockBackend>> table = {
      {{"", "a local lock folder path (the Python lockable package's <id>.pid files)", true},
       &lock_folder,
       &lock_folder_observer},
      {{"file", "file://PATH, the same for a path that reads like a URL", true},
       &lock_folder,
       &lock_folder_observer},
      {{"etcd", "etcd://HOST:PORT/PREFIX, locks in an etcd cluster (not in this version yet)",
        false},
       nullptr},
      {{"https",
        "https://HOST/PATH?prefix=P, a Lockable.dev lock service (device <id> is the named lock "
        "P<id>; e.g. https://api.lockable.dev/v1?prefix=lab1-; token from LOCKABLE_AUTH_TOKEN)",
        true},
       &lock_service_https},
      {{"http", "http://HOST/PATH?prefix=P, the same without TLS", true}, &lock_service_http},
  };
  return table;
}

const std::vector<Entry<ResourceProvider>>& providers() {
  static const std::vector<Entry<ResourceProvider>> table = {
      {{"", "a resources.json path", true}, &resources_file},
      {{"file", "file://PATH, the same for a path that reads like a URL", true}, &resources_file},
      {{"http", "http://HOST/resources.json, fetched again while waiting (ETag-aware)", true},
       &resources_http},
      {{"https", "https://HOST/resources.json, the same over TLS", true}, &resources_https},
  };
  return table;
}

// "etcd" for "etcd://host", nullopt for a plain path. RFC 3986: ALPHA *( ALPHA / DIGIT / + - . ).
std::optional<std::string> scheme_of(const std::string& spec) {
  const auto colon = spec.find("://");
  if (colon == std::string::npos || colon == 0) return std::nullopt;
  for (std::size_t i = 0; i < colon; ++i) {
    const auto c = static_cast<unsigned char>(spec[i]);
    const bool ok =
        i == 0 ? std::isalpha(c) != 0 : std::isalnum(c) != 0 || c == '+' || c == '-' || c == '.';
    if (!ok) return std::nullopt;
  }
  std::string scheme = spec.substr(0, colon);
  for (auto& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return scheme;
}

template <class Made>
std::unique_ptr<Made> make(const std::vector<Entry<Made>>& table, const std::string& spec,
                           const std::string& what, const Log& log, bool observer = false) {
  const auto scheme = scheme_of(spec);
  const std::string rest = scheme ? spec.substr(scheme->size() + 3) : spec;
  for (const auto& entry : table) {
    if (entry.info.scheme != scheme.value_or("")) continue;
    // A URL may carry credentials: messages show it without them.
    const std::string shown = http::redact_url(spec);
    if (entry.make == nullptr) {
      throw ConfigError(what + " \"" + shown + "\": " + entry.info.description +
                        "; use a path for now");
    }
    if (observer) {
      if (entry.observe == nullptr) {
        throw ConfigError(what + " \"" + shown +
                          "\" cannot be observed read-only (a lock service has no query API); "
                          "use a path");
      }
      return entry.observe(rest, log);
    }
    return entry.make(rest, log);
  }
  std::string known;
  for (const auto& entry : table) {
    if (entry.info.scheme.empty()) continue;
    known += (known.empty() ? "" : ", ") + entry.info.scheme + "://" +
             (entry.info.available ? "" : " (not yet)");
  }
  throw ConfigError(what + " \"" + http::redact_url(spec) + "\": unknown scheme \"" + *scheme +
                    "://\"; give a path, or one of " + known);
}

template <class Made>
std::vector<SpecScheme> schemes(const std::vector<Entry<Made>>& table) {
  std::vector<SpecScheme> out;
  for (const auto& entry : table) out.push_back(entry.info);
  return out;
}

}  // namespace

std::unique_ptr<LockBackend> make_lock_backend(const std::string& spec, Log log) {
  return make(backends(), spec, "lock backend", log);
}

std::unique_ptr<LockBackend> make_lock_observer(const std::string& spec) {
  return make(backends(), spec, "lock backend", Log{}, true);
}

std::unique_ptr<ResourceProvider> make_resource_provider(const std::string& spec) {
  return make(providers(), spec, "resources", Log{});
}

std::vector<SpecScheme> lock_backend_schemes() { return schemes(backends()); }
std::vector<SpecScheme> resource_provider_schemes() { return schemes(providers()); }

}  // namespace lockable
