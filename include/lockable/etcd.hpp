#pragma once

#include <lockable/backend.hpp>
#include <lockable/named_lock.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace lockable {

/// Where and how to reach etcd for device locks (see README, "etcd").
struct EtcdOptions {
  /// "http://host:port" (or https) per cluster member, in failover order; at least one.
  std::vector<std::string> endpoints;
  /// Key prefix of this lab ("/lab1"); "" means "/lockable". Several labs share a cluster with
  /// different prefixes.
  std::string prefix;
  /// The lease time-to-live: a holder that stops (killed, frozen, cut off) loses its devices
  /// this long after its last keepalive. etcd grants at least 2 s.
  std::chrono::seconds ttl{5};
  /// etcd user and password (etcd's own authentication); empty user: none. The password is
  /// never logged or shown in a message.
  std::string user;
  std::string password;
  /// Warnings; empty: stderr.
  std::function<void(const std::string&)> log;
};

/// Locks in etcd through its v3 JSON gateway (etcd 3.4 or later): one lease per backend object,
/// kept alive by one keepalive thread; a device's lock is the key `<prefix>/locks/<id>`, created
/// only if absent, on that lease, holding the holder's HolderInfo; its create revision is the
/// fencing token. Waiters queue under `<prefix>/queue/` (FIFO by revision, across hosts) and wait
/// on a watch. Connects at once: throws BackendError naming the endpoints and the fix when etcd
/// cannot be reached, refuses the credentials or is not an etcd gateway.
std::unique_ptr<LockBackend> make_etcd_backend(EtcdOptions options);

/// Reads holders and changes nothing (no lease, no key), for `lockable status`.
std::unique_ptr<LockBackend> make_etcd_observer(EtcdOptions options);

/// Named locks (NamedLock, the Lockable.dev model) stored in etcd: the name is the key
/// `<prefix>/names/<name>`, created only if absent on a lease of its own (TTL `options.ttl`, the
/// store's lease()), renewed by the heartbeat, deleted and revoked on release; a release never
/// frees a grant that is no longer ours. Makes no request until used.
std::shared_ptr<NamedLockStore> make_etcd_named_lock_store(EtcdOptions options);

/// EtcdOptions from the part of a spec after "etcd://" (`HOST:PORT[,HOST:PORT...]/PREFIX[?ttl=N]`)
/// and the environment: LOCKABLE_ETCD_ENDPOINTS (comma-separated URLs, used when the spec names
/// no host: `etcd:///lab1`), LOCKABLE_ETCD_USER and LOCKABLE_ETCD_PASSWORD. Throws ConfigError
/// naming the spec and the fix.
EtcdOptions etcd_options_from_spec(const std::string& rest);

}  // namespace lockable
