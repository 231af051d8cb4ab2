#pragma once
// Devices locked through a named-lock store (the Lockable.dev service): the lock of device <id>
// is the named lock `<prefix><id>`, so hosts that share the service share the devices.

#include <lockable/backend.hpp>
#include <lockable/named_lock.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>

namespace lockable {

struct NamedLockBackendOptions {
  /// Lock name of device <id>: prefix + id (e.g. "lab1-" for lab1-dut-7).
  std::string prefix;
  /// The store has no queue and no notifications: a waiter tries again this often (and at once
  /// when a lock of this process is released).
  std::chrono::milliseconds poll_period{1000};
  /// Heartbeat period of the held locks; zero: a third of the store's lease.
  std::chrono::milliseconds heartbeat_period{0};
};

/// A LockBackend over `store`. What it gives and what it cannot (the service has no queue, no
/// holder records and no notifications):
///   - exclusivity across hosts, from the store;
///   - one keepalive thread per backend object heartbeats every held lock; a failed beat goes to
///     on_keepalive_error and is retried while the lease may be alive; a lock is lost (its
///     HeldLock's loss handler runs, on a thread of this backend that never delays the beats)
///     when the store answers false or no beat succeeded for a whole lease;
///   - a released lock is never renewed afterwards, and a lost one is never released (anyone
///     can release any name on the service: by then it may be someone else's);
///   - waiting polls every `poll_period`; the queue (priorities, FIFO within one, aging: core
///     queue_order) and `holder_of` cover the waiters and holders of this process only (other
///     hosts' holders and waiters are unknown to it), so fairness and priorities are per process.
class NamedLockBackend final : public LockBackend {
 public:
  NamedLockBackend(std::shared_ptr<NamedLockStore> store, NamedLockBackendOptions options);
  ~NamedLockBackend() override;

  std::unique_ptr<HeldLock> try_lock(const Resource& resource, const HolderInfo& holder) override;
  void wait_for_change(std::chrono::steady_clock::time_point deadline) override;
  std::unique_ptr<QueueTicket> enqueue(const std::vector<std::string>& resource_ids,
                                       const HolderInfo& waiter) override;
  std::optional<HolderInfo> holder_of(const std::string& resource_id) override;
  void interrupt_waits() noexcept override;
  void set_priority_aging(std::chrono::milliseconds aging) override;
  void on_keepalive_error(KeepaliveErrorHandler handler) override;
  std::string describe() const override;

  /// The service has no place for a reservation: this object holds the device's named lock
  /// (with its heartbeat) until `unreserve` or its destruction, so nobody on the service gets
  /// it; the reason is known to this object only (`reservations_of` of other processes cannot
  /// show it). `lockable reserve` runs such an object in a detached holder process. Throws
  /// BackendError when someone holds the device (the service cannot queue a reservation).
  void reserve(const std::string& resource_id, const Reservation& reservation) override;
  /// Releases this object's reservation; without one, releases the device's named lock on the
  /// service, whoever holds it (the service cannot tell a reservation from a hold).
  void unreserve(const std::string& resource_id) override;
  /// This object's own reservations.
  std::vector<std::optional<Reservation>> reservations_of(
      const std::vector<std::string>& ids) override;
  /// Releases the named lock on the service: the holder's next heartbeat is answered false, which
  /// is its loss. Returns the holder when this process knows it, else a HolderInfo that says the
  /// service does not name holders; nullopt when the name was free.
  std::optional<HolderInfo> force_release(const std::string& resource_id,
                                          const std::string& reason) override;

  /// The named lock of device `resource_id`: prefix + id.
  std::string lock_name(const std::string& resource_id) const {
    return options_.prefix + resource_id;
  }

  /// Runs a heartbeat round for every held lock now and returns when it is done and the loss
  /// handlers it caused have run (tests and diagnostics; the thread beats on its own anyway).
  void heartbeat_now();

  struct Registry;
  struct Keeper;

 private:
  std::shared_ptr<NamedLockStore> store_;
  NamedLockBackendOptions options_;
  std::shared_ptr<Registry> registry_;
  std::shared_ptr<Keeper> keeper_;
  struct Reserved;
  std::shared_ptr<Reserved> reserved_;
};

}  // namespace lockable

namespace lockable {

/// The lock-service backend a spec names (what `make_lock_backend` does for http(s)://):
/// `https://api.lockable.dev/v1?prefix=lab1-&lease=60&poll=1&heartbeat=20` — the service's base
/// URL, then optional parameters: `prefix` of the lock names (default "lockable-"), `lease` (the
/// service's lease in seconds, default 60), `poll` (seconds between tries while waiting, default
/// 1), `heartbeat` (seconds, default a third of the lease). The token comes from
/// LOCKABLE_AUTH_TOKEN, else from the URL's user name. Errors (ConfigError) name the URL without
/// its credentials.
std::unique_ptr<LockBackend> make_lock_service_backend(
    const std::string& spec, std::function<void(const std::string&)> log = {});

}  // namespace lockable
