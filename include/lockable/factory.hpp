#pragma once

#include <lockable/backend.hpp>
#include <lockable/provider.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace lockable {

/// One way to name a lock store or a resources source in a spec string, for `--help` and errors.
struct SpecScheme {
  /// "" for a plain path, else the URL scheme ("etcd", "https").
  std::string scheme;
  /// What it selects, e.g. "a local lock folder (the Python lockable package's files)".
  std::string description;
  /// False for schemes reserved for backends this version does not have yet.
  bool available = true;
};

/// The lock store a spec names:
///   - a folder path, absolute or relative (`/var/lock/lab`, `locks`): the local lock folder,
///     exactly what `--lock-folder` gives; "" means the default folder (the system temp dir);
///   - `file://PATH`: the same, for a path that would otherwise read as a URL;
///   - `http(s)://HOST/PATH?prefix=P&lease=S&poll=S&heartbeat=S`: a Lockable.dev lock service;
///     device <id> is the named lock P<id> (see make_lock_service_backend); it has no read-only
///     observer (the service has no query API);
///   - `etcd://HOST:PORT[,HOST:PORT...]/PREFIX[?ttl=SECONDS]`: locks in etcd (see
///     make_etcd_backend and etcd_options_from_spec: LOCKABLE_ETCD_ENDPOINTS for `etcd:///PREFIX`,
///     LOCKABLE_ETCD_USER and LOCKABLE_ETCD_PASSWORD); etcd unreachable is a BackendError.
/// Any other `scheme://` is a ConfigError naming the value and the schemes that exist.
/// Backends are registered in one table (src/factory.cpp); front ends never name a backend class.
/// `log` receives the backend's warnings (stderr when empty).
std::unique_ptr<LockBackend> make_lock_backend(const std::string& spec,
                                               std::function<void(const std::string&)> log = {});

/// A read-only observer of the store a spec names, for `lockable status`: holder_of() works,
/// nothing is created or changed (see make_lock_folder_observer). Same specs and errors as
/// make_lock_backend.
std::unique_ptr<LockBackend> make_lock_observer(const std::string& spec);

/// The resources source a spec names: a resources.json path or `file://PATH`, or an `http(s)://`
/// URL (make_url_provider). Empty: ConfigError. Messages show URLs without credentials.
std::unique_ptr<ResourceProvider> make_resource_provider(const std::string& spec);
/// The same, bounding an `http(s)://` URL's fetch, its retries included, by `fetch_timeout`
/// (default 30 s); Lockable passes its timeout, so a sick server fails a short wait in time.
std::unique_ptr<ResourceProvider> make_resource_provider(const std::string& spec,
                                                         std::chrono::milliseconds fetch_timeout);

/// The schemes each factory knows, in the order `--help` lists them.
std::vector<SpecScheme> lock_backend_schemes();
std::vector<SpecScheme> resource_provider_schemes();

}  // namespace lockable
