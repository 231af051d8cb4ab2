// The one place where specs become backends and providers. A new backend adds a row to a table.

#include <lockable/error.hpp>
#include <lockable/etcd.hpp>
#include <lockable/factory.hpp>
#include <lockable/lock_folder.hpp>
#include <lockable/named_lock_backend.hpp>

#include "http/client.hpp"

#include <cctype>
#include <optional>

namespace lockable {
namespace {

using Log = std::function<void(const std::string&)>;

// What a maker gets besides the spec.
struct Context {
  Log log;  // warnings; empty: stderr
  // Bound on a resources URL's fetch, its retries included.
  std::chrono::milliseconds fetch_timeout = UrlProviderOptions{}.timeout;
};

template <class Made>
struct Entry {
  SpecScheme info;
  // Gets the spec without "scheme://" ("" scheme: the whole spec) and the context; null when
  // reserved.
  std::unique_ptr<Made> (*make)(const std::string& rest, const Context& context);
  // The read-only form for `status`; null when the scheme has none.
  std::unique_ptr<Made> (*observe)(const std::string& rest, const Context& context) = nullptr;
};

std::unique_ptr<LockBackend> lock_folder(const std::string& path, const Context& context) {
  return make_lock_folder_backend(
      path.empty() ? default_lock_folder() : std::filesystem::path(path), context.log);
}

std::unique_ptr<LockBackend> lock_folder_observer(const std::string& path,
                                                  const Context& /*context*/) {
  return make_lock_folder_observer(path);
}

std::unique_ptr<LockBackend> etcd_backend(const std::string& rest, const Context& context) {
  auto options = etcd_options_from_spec(rest);
  options.log = context.log;
  return make_etcd_backend(std::move(options));
}

std::unique_ptr<LockBackend> etcd_observer(const std::string& rest, const Context& /*context*/) {
  return make_etcd_observer(etcd_options_from_spec(rest));
}

std::unique_ptr<ResourceProvider> resources_file(const std::string& path,
                                                 const Context& /*context*/) {
  if (path.empty()) {
    throw ConfigError("no resources given; pass a resources.json path (--resources) or a list");
  }
  return make_file_provider(path);
}

std::unique_ptr<LockBackend> lock_service_http(const std::string& rest, const Context& context) {
  return make_lock_service_backend("http://" + rest, context.log);
}

std::unique_ptr<LockBackend> lock_service_https(const std::string& rest, const Context& context) {
  return make_lock_service_backend("https://" + rest, context.log);
}

std::unique_ptr<ResourceProvider> resources_http(const std::string& rest, const Context& context) {
  UrlProviderOptions options;
  options.log = context.log;
  options.timeout = context.fetch_timeout;
  return make_url_provider("http://" + rest, options);
}

std::unique_ptr<ResourceProvider> resources_https(const std::string& rest, const Context& context) {
  UrlProviderOptions options;
  options.log = context.log;
  options.timeout = context.fetch_timeout;
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
      {{"etcd",
        "etcd://HOST:PORT[,HOST:PORT...]/PREFIX[?ttl=SECONDS], locks in an etcd cluster "
        "(etcd:///PREFIX "
        "takes the endpoints from LOCKABLE_ETCD_ENDPOINTS; LOCKABLE_ETCD_USER and "
        "LOCKABLE_ETCD_PASSWORD for etcd's authentication)",
        true},
       &etcd_backend,
       &etcd_observer},
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
                           const std::string& what, const Context& context, bool observer = false) {
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
      return entry.observe(rest, context);
    }
    return entry.make(rest, context);
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
  return make(backends(), spec, "lock backend", Context{log});
}

std::unique_ptr<LockBackend> make_lock_observer(const std::string& spec) {
  return make(backends(), spec, "lock backend", Context{}, true);
}

std::unique_ptr<ResourceProvider> make_resource_provider(const std::string& spec) {
  return make(providers(), spec, "resources", Context{});
}

std::unique_ptr<ResourceProvider> make_resource_provider(const std::string& spec,
                                                         std::chrono::milliseconds fetch_timeout) {
  Context context;
  context.fetch_timeout = fetch_timeout;
  return make(providers(), spec, "resources", context);
}

std::vector<SpecScheme> lock_backend_schemes() { return schemes(backends()); }
std::vector<SpecScheme> resource_provider_schemes() { return schemes(providers()); }

}  // namespace lockable
