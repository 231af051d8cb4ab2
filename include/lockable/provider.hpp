#pragma once

#include <lockable/resource.hpp>

#include <chrono>
#include <filesystem>
#include <functional>
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

/// How resources are fetched from a URL (make_url_provider).
struct UrlProviderOptions {
  /// At most one request per this period while callers wait (`changed()` answers false in
  /// between); each is conditional (If-None-Match / If-Modified-Since) when the server gave an
  /// ETag or Last-Modified, so an unchanged list costs a 304.
  std::chrono::milliseconds refetch_period{2000};
  /// Bound on one fetch (retries of 429/5xx and connection errors included).
  std::chrono::milliseconds timeout{30000};
  /// TLS verification (turning it off logs a warning) and a CA bundle instead of the system's.
  bool verify_tls = true;
  std::string ca_file;
  /// Warnings. Empty: stderr.
  std::function<void(const std::string&)> log;
};

/// Resources from an http(s) URL answering a resources.json array (the Python package's HTTP
/// provider), validated exactly like a file; every error names the URL without credentials.
/// Credentials: `user:password@` in the URL is sent as HTTP basic auth; else the token in
/// $LOCKABLE_RESOURCES_TOKEN, if set, as `Authorization: Bearer <token>`. Neither is ever shown.
/// `changed()` refetches (conditionally, at most once per `refetch_period`) and says whether the
/// list differs; a failed refetch makes `load()` throw, which a waiting Lockable reports once
/// while it keeps the last good list.
std::unique_ptr<ResourceProvider> make_url_provider(std::string url,
                                                    UrlProviderOptions options = {});

}  // namespace lockable
