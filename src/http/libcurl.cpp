#include "http/libcurl.hpp"

#include <lockable/error.hpp>

#include <dlfcn.h>

#include <mutex>
#include <string>
#include <type_traits>

namespace lockable::http {
namespace {

constexpr const char* kSoname = "libcurl.so.4";
// CURLOPT_PROTOCOLS_STR, which keeps redirects on http(s), came with 7.85.
constexpr unsigned int kOldestVersion = 0x075500;

std::string cannot_load(const std::string& why) {
  return std::string("cannot load libcurl (") + kSoname + "), which lockable needs for HTTP " +
         "(resources from a URL, the lock service, etcd): " + why +
         "; install it (Debian/Ubuntu: apt-get install libcurl4)";
}

struct Loaded {
  Libcurl functions{};
  std::string error;  // empty when loaded
};

Loaded load() {
  Loaded loaded;
  // RTLD_LOCAL: its symbols do not leak into the process (another libcurl a program links stays
  // its own). RTLD_NOW: a missing symbol is seen here, not mid-request.
  void* handle = ::dlopen(kSoname, RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = ::dlerror();
    loaded.error = cannot_load(why != nullptr ? why : "dlopen failed");
    return loaded;
  }
  std::string missing;
  const auto find = [&](auto& pointer, const char* name) {
    void* symbol = ::dlsym(handle, name);
    if (symbol == nullptr) missing += (missing.empty() ? "" : ", ") + std::string(name);
    // POSIX guarantees that a function's address survives the round trip through void*.
    pointer = reinterpret_cast<std::remove_reference_t<decltype(pointer)>>(symbol);
  };
  Libcurl& f = loaded.functions;
  find(f.easy_init, "curl_easy_init");
  find(f.easy_cleanup, "curl_easy_cleanup");
  find(f.easy_reset, "curl_easy_reset");
  find(f.easy_setopt, "curl_easy_setopt");
  find(f.easy_getinfo, "curl_easy_getinfo");
  find(f.easy_strerror, "curl_easy_strerror");
  find(f.multi_init, "curl_multi_init");
  find(f.multi_cleanup, "curl_multi_cleanup");
  find(f.multi_add_handle, "curl_multi_add_handle");
  find(f.multi_remove_handle, "curl_multi_remove_handle");
  find(f.multi_perform, "curl_multi_perform");
  find(f.multi_info_read, "curl_multi_info_read");
  find(f.multi_poll, "curl_multi_poll");
  find(f.multi_wakeup, "curl_multi_wakeup");
  find(f.multi_strerror, "curl_multi_strerror");
  find(f.slist_append, "curl_slist_append");
  find(f.slist_free_all, "curl_slist_free_all");
  find(f.getdate, "curl_getdate");
  CURLcode (*global_init)(long) = nullptr;
  curl_version_info_data* (*version_info)(CURLversion) = nullptr;
  find(global_init, "curl_global_init");
  find(version_info, "curl_version_info");
  if (!missing.empty()) {
    loaded.error = cannot_load("it lacks " + missing + " (too old a libcurl)");
    return loaded;
  }
  const curl_version_info_data* version = version_info(CURLVERSION_NOW);
  if (version == nullptr || version->version_num < kOldestVersion) {
    loaded.error = cannot_load(std::string("it is version ") +
                               (version != nullptr ? version->version : "unknown") +
                               ", this build needs 7.85 or newer");
    return loaded;
  }
  // Once per process, before any handle; not thread-safe in libcurl itself, hence here.
  if (const CURLcode code = global_init(CURL_GLOBAL_DEFAULT); code != CURLE_OK) {
    loaded.error = cannot_load("curl_global_init failed with code " + std::to_string(code));
  }
  return loaded;
}

}  // namespace

const Libcurl& libcurl() {
  static std::once_flag once;
  static Loaded* loaded = nullptr;  // never freed: libcurl stays loaded until exit
  std::call_once(once, [] { loaded = new Loaded(load()); });
  if (!loaded->error.empty()) throw BackendError(loaded->error);
  return loaded->functions;
}

}  // namespace lockable::http
