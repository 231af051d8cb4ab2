#pragma once

#include <lockable/lock_loss.hpp>
#include <lockable/resource.hpp>

#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace lockable {

/// Who holds (or asks for) a device. Written next to the lock so that `lockable status` and
/// timeout errors can name the holder.
struct HolderInfo {
  long pid = 0;
  std::string hostname;
  std::string alloc_id;
  std::chrono::system_clock::time_point since{};
  Json requirements = Json::object();
  /// The request's priority (Options::priority): among waiters a device can serve, a higher one
  /// goes first. 0 for holders and waiters that carry none (older versions, the Python package).
  int priority = 0;
  /// The lock's fencing token where the backend issues one (etcd: the lock key's create
  /// revision), filled in by `holder_of`/`holders_of`; never stored by the holder itself.
  std::optional<std::uint64_t> fencing_token = std::nullopt;

  /// {"pid", "hostname", "alloc_id", "since", "requirements", "priority"} and "fencing_token"
  /// when set.
  Json to_json() const;
  /// Tolerant: missing fields stay default (files written by other tools may lack them).
  static HolderInfo from_json(const Json& json);
  /// `pid 4242 on rig-01, allocation 1b4e..., since 2026-11-22T10:00:00.123Z`.
  std::string describe() const;
};

/// A lock on one device, held until `release()` or destruction. Implementations must make
/// `release()` idempotent and safe from any thread; it never throws.
class HeldLock {
 public:
  virtual ~HeldLock() = default;
  virtual void release() noexcept = 0;
  /// True when the backend knows the lock is no longer ours (lease expired, server said so).
  /// The lock folder's flock is lost when its file is removed or replaced under the holder.
  /// Never ahead of the handler: when it returns true, the loss handler has run to its end (on
  /// this thread if this call noticed the loss first), so a caller that acts on `true` finds
  /// what the handler did already done.
  virtual bool lost() const noexcept { return false; }
  /// Monotonic token issued with the lock by backends that support fencing (etcd revision).
  virtual std::optional<std::uint64_t> fencing_token() const noexcept { return std::nullopt; }
  /// Sets the handler run when the backend learns the lock is lost (see LockLossHandler; a
  /// LockLossSignal implements the contract): at most once, at once if already lost, never
  /// after `release()` returns. The default (a backend that cannot lose a lock) keeps none.
  virtual void on_lock_loss(LockLossHandler handler) { (void)handler; }
};

/// A device taken out of service (`lockable reserve` / `drain`). While a reservation stands,
/// `try_lock` of the device returns nullptr for everyone, and waiters that could use only
/// reserved devices are told `reason`.
struct Reservation {
  /// Why, as the operator gave it; shown by status, progress lines and timeout errors. Required.
  std::string reason;
  /// Who reserved it: `user@host`.
  std::string by;
  std::chrono::system_clock::time_point since{};
  /// The reservation ends on its own at this time (unset: until `unreserve`).
  std::optional<std::chrono::system_clock::time_point> until;
  /// Made by `drain`: the holder at that time keeps the device; nobody else gets it.
  bool draining = false;
  /// Empty when the store keeps every locker off. Otherwise what is missing, for `status`: the
  /// lock folder's reservation holder process that keeps the Python package off is gone (after
  /// a reboot) and `lockable reserve` must start it again.
  std::string problem;

  Json to_json() const;
  /// Throws std::invalid_argument naming the field when `json` is not a reservation.
  static Reservation from_json(const Json& json);
  /// `"bench rework" (by ann@rig-01 since 2026-12-01T10:00:00Z, until 2026-12-02T08:00:00Z)`.
  std::string describe() const;
  /// Whether `until` has passed at `now` (an expired reservation no longer counts).
  bool expired(std::chrono::system_clock::time_point now) const;
};

/// A request waiting in a backend's queue, as `lockable status` lists it: `waiter.since` is when
/// it joined the queue, `waiter.priority` its priority.
struct QueuedRequest {
  HolderInfo waiter;
  std::vector<std::string> wanted;
};

/// A waiter's place in the backend's fair queue; leaving the queue happens on destruction.
class QueueTicket {
 public:
  virtual ~QueueTicket() = default;
  /// Replace the ids this waiter wants (the resource list may change while it waits).
  virtual void update_wanted(const std::vector<std::string>& resource_ids) = 0;
  /// The ids wanted by live waiters served before this one, in queue order: higher priority
  /// first, arrival order within one priority, priorities aged by waiting (core `queue_order`
  /// with the aging given to LockBackend::set_priority_aging). A backend without priorities
  /// lists the waiters that arrived earlier. A waiter must leave those devices to them (see core
  /// `claimable_ids`).
  virtual std::vector<std::vector<std::string>> wanted_by_earlier_waiters() = 0;
};

/// Called when a backend's keepalive (heartbeat) fails without losing a lock yet: the store timed
/// out or answered an error while a lease still runs. Runs on the backend's keepalive thread
/// with the error; keep it short. A loss that follows is reported separately, through each
/// HeldLock's loss handler.
using KeepaliveErrorHandler = std::function<void(std::exception_ptr error)>;

/// Where locks live (a local folder, an HTTP lock service, etcd). Backends never parse
/// requirements; they lock resources by id. Thread-safe; may own a background thread.
///
/// The contract every backend keeps (tests/contract runs it over each one):
/// - Exclusivity: at most one HeldLock per resource id is unreleased at any time across every
///   backend object, thread and process on one store. A lease backend that loses a lock reports
///   the loss (below) before anyone else can be granted it, or issues a higher fencing token.
/// - Lifetime: a HeldLock may outlive its backend; `release()` then still frees the device (or
///   leaves it to the lease to expire) and never touches the destroyed backend.
/// - Fencing: where a backend issues fencing tokens, the tokens of successive holders of one
///   device strictly increase.
/// - Loss: loss handlers run on the backend's own (keepalive) thread, at most once per lock, never
///   after `release()` returned (LockLossSignal implements this). A slow handler must not delay
///   the keepalive of other locks: run handlers off the thread that renews leases, or bound them.
/// - Queue: a QueueTicket is visible to other waiters at the latest once its waiter first waits
///   (`wait_for_change`; the lock folder waits until then, so an uncontended lock never writes
///   one); from then on until it is destroyed, `wanted_by_earlier_waiters()` of every later
///   waiter lists its ids, in arrival order, unless its owner stopped making progress (a
///   backend may then skip it for a bounded time; see the backend). A destroyed ticket is gone.
/// - Wake-ups: `wait_for_change` must return after any release of a lock and any change of the
///   queue that happened after the caller's last attempt; it may return spuriously.
/// - Reservations (where a backend offers them, see `reserve`): once `reserve` returns,
///   `try_lock` of the id returns nullptr everywhere on the store until `unreserve` or `until`;
///   a forced release is a loss for a lease holder, and the next fencing token is larger.
/// - Errors: calls throw BackendError when the store is unusable, TemporarilyUnavailableError when
///   a retry may cure it, ResourceUnusableError (from try_lock) when one device's lock cannot be
///   used while the others can; `release()` and destructors never throw.
class LockBackend {
 public:
  virtual ~LockBackend() = default;

  /// Try once, without waiting, to lock `resource`. Returns nullptr if someone else holds it.
  /// Two calls in one process (any thread, any backend object on the same store) never both
  /// succeed for one id. Throws BackendError when the store itself is unusable.
  virtual std::unique_ptr<HeldLock> try_lock(const Resource& resource,
                                             const HolderInfo& holder) = 0;

  /// Blocks until something may have changed (a lock was released, the queue moved) or until
  /// `deadline`. Spurious returns are allowed; missing a release is not.
  virtual void wait_for_change(std::chrono::steady_clock::time_point deadline) = 0;

  /// Joins the fair queue wanting `resource_ids`.
  virtual std::unique_ptr<QueueTicket> enqueue(const std::vector<std::string>& resource_ids,
                                               const HolderInfo& waiter) = 0;

  /// Current holder of `resource_id` if it is held (by anyone, including us), else nullopt. The
  /// HolderInfo may be partial (only a pid) for locks taken by other tools.
  virtual std::optional<HolderInfo> holder_of(const std::string& resource_id) = 0;

  /// `holder_of` for many ids at once, in the same order: one round trip for a remote store
  /// (status, progress lines). The default asks `holder_of` once per id.
  virtual std::vector<std::optional<HolderInfo>> holders_of(const std::vector<std::string>& ids) {
    std::vector<std::optional<HolderInfo>> holders;
    holders.reserve(ids.size());
    for (const auto& id : ids) holders.push_back(holder_of(id));
    return holders;
  }

  /// Wakes every `wait_for_change` in progress on this backend object at once, from any thread
  /// (Lockable::cancel() calls it so that a cancelled wait ends now, not at its deadline). Waits
  /// that start afterwards behave as usual. A backend whose waits end within a fraction of a
  /// second anyway (the lock folder rechecks every 250 ms) may keep the default, which does
  /// nothing. Never throws.
  virtual void interrupt_waits() noexcept {}

  /// The requests waiting in the queue, in arrival order (oldest first), for `lockable status`.
  /// A backend whose queue says nothing about its waiters keeps the default: none listed.
  virtual std::vector<QueuedRequest> queued() { return {}; }

  /// Sets how fast waiting raises a waiter's priority in this backend's queue order
  /// (Options::priority_aging: one step per `aging`; see core `queue_order`). Lockable calls it
  /// once, before its first request. Backends whose queue ignores priorities keep the default,
  /// which does nothing.
  virtual void set_priority_aging(std::chrono::milliseconds aging) { (void)aging; }

  /// Sets the handler for keepalive failures that have not (yet) cost a lock; replaces an earlier
  /// one. Backends without a keepalive never call it, so the default keeps no handler.
  virtual void on_keepalive_error(KeepaliveErrorHandler handler) { (void)handler; }

  /// What is known of a holder that lost its lock on `resource_id` and still runs (the lock
  /// folder: its lock file was removed or replaced under it, so the device may be in use twice),
  /// for `lockable status`: the holder and the reason, or nullopt. The default knows nothing.
  virtual std::optional<std::string> lost_hold(const std::string& resource_id) {
    (void)resource_id;
    return std::nullopt;
  }

  /// Where the locks live, for messages (`lock folder /tmp`).
  virtual std::string describe() const = 0;

  /// What is wrong with the store that makes it work worse than it should, each a sentence that
  /// names the entry and the fix (the lock folder: a symlink where its queue folder belongs, so
  /// waiters cannot queue fairly), for `lockable status`. The default: nothing known.
  virtual std::vector<std::string> problems() const { return {}; }

  /// Takes `resource_id` out of service until `unreserve` or `reservation.until`: once this
  /// returns, `try_lock` of it returns nullptr on every backend object, thread and process of the
  /// store (the lock folder: of this library; see make_lock_folder_backend for the Python
  /// package). A present holder keeps the device (that is `drain`; `force_release` takes it).
  /// Replaces an earlier reservation of the id. Survives restarts of every process. The default
  /// throws BackendError naming the backend: it cannot reserve.
  virtual void reserve(const std::string& resource_id, const Reservation& reservation);

  /// Ends the reservation of `resource_id`; nothing happens when there is none. The default
  /// throws BackendError naming the backend.
  virtual void unreserve(const std::string& resource_id);

  /// The standing (not expired) reservation of each id, in the same order; nullopt for one that
  /// is not reserved. The default: none (a backend that cannot reserve has no reservations).
  virtual std::vector<std::optional<Reservation>> reservations_of(
      const std::vector<std::string>& ids) {
    return std::vector<std::optional<Reservation>>(ids.size());
  }

  /// Takes `resource_id` from its holder, for an operator (`lockable release --force`); `reason`
  /// is for the holder's loss message where the store can carry it. Returns who held it (nullopt:
  /// it was free). Lease backends end the holder's lock at once: the holder sees a loss (its
  /// keepalive/heartbeat), and the next grant gets a larger fencing token. The lock folder cannot
  /// take a flock from a living process: it only names the holder (the CLI's `--kill` ends it).
  /// The default throws BackendError naming the backend.
  virtual std::optional<HolderInfo> force_release(const std::string& resource_id,
                                                  const std::string& reason);
};

}  // namespace lockable
