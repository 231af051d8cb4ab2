#pragma once
// Named locks with a lease: the Lockable.dev service's model (`with Lock('my-lock-name'):` in its
// Python client). A store grants a name to one caller at a time; the grant is a lease that a
// heartbeat renews and that lapses without one. NamedLock holds one name for its lifetime and
// keeps the lease alive from a thread of its own.

#include <lockable/error.hpp>

#include <atomic>
#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace lockable {

/// A non-blocking NamedLock found the name held by someone else.
class LockTakenError : public Error {
 public:
  using Error::Error;
};

/// Where named locks live. The Lockable.dev HTTP service is one implementation
/// (make_lock_service_store); an etcd store can be another. Implementations are thread-safe and
/// make exactly one request per call (no hidden retries of a call that must not be repeated:
/// callers decide about retries, because a blind retry of `release` may free a lock that was
/// granted to someone else meanwhile).
///
/// Every call takes a deadline for the request and an optional cancel flag (checked while the
/// request runs; interrupt() makes it be checked at once), and throws:
///   - TemporarilyUnavailableError when the store could not be reached or answered an error a
///     retry may cure (timeouts, connection refused, 429/5xx); the state of the lock is unknown;
///   - BackendError when no retry cures it (401/403: the message names the token variable; a
///     malformed answer; an unknown host);
///   - CancelledError when `*cancel` became true.
class NamedLockStore {
 public:
  using Clock = std::chrono::steady_clock;
  virtual ~NamedLockStore() = default;

  /// Asks once for `name`. True: granted to us, its lease starts now. False: someone holds it.
  virtual bool try_acquire(const std::string& name, Clock::time_point deadline,
                           const std::atomic<bool>* cancel = nullptr) = 0;
  /// Renews the lease of a name we hold. True: renewed for a full lease from now. False: the
  /// store says the name is not ours any more (the lease lapsed, someone released it).
  virtual bool try_heartbeat(const std::string& name, Clock::time_point deadline,
                             const std::atomic<bool>* cancel = nullptr) = 0;
  /// Frees `name`. True when the store confirmed. Anyone can release any name on a store without
  /// owner tokens: never call it for a lock known to be lost.
  virtual bool try_release(const std::string& name, Clock::time_point deadline,
                           const std::atomic<bool>* cancel = nullptr) = 0;

  /// How long a grant or a renewal keeps the name ours without a heartbeat, counted from when the
  /// request was sent (60 s on the public Lockable.dev service).
  virtual std::chrono::milliseconds lease() const = 0;
  /// Wakes every call in progress so that it checks its cancel flag now. Never throws.
  virtual void interrupt() noexcept = 0;
  /// Where the locks live, without credentials, for messages (`lock service https://...`).
  virtual std::string describe() const = 0;
};

/// The Lockable.dev service (or one that speaks its API) at `base_url`:
/// `GET <base>/acquire/<name>`, `GET <base>/heartbeat/<name>`, `GET <base>/release/<name>`, names
/// percent-encoded, answers `{"response": true|false}`.
struct LockServiceOptions {
  /// Empty: $LOCKABLE_SERVICE_URL, else kDefaultServiceUrl. Userinfo in the URL (`user:pw@`) is
  /// used as basic credentials when no token is given, and never shown.
  std::string base_url;
  /// HTTP basic user name (empty password). Empty: $LOCKABLE_AUTH_TOKEN. When neither gives one
  /// (nor the URL's userinfo), construction throws ConfigError naming LOCKABLE_AUTH_TOKEN.
  std::string token;
  /// The service's lease; the public service's is 60 s.
  std::chrono::milliseconds lease{60000};
  /// Bound on connecting; each call's deadline bounds the whole request.
  std::chrono::milliseconds connect_timeout{5000};
  /// TLS verification (turning it off logs a warning) and a CA bundle instead of the system's.
  bool verify_tls = true;
  std::string ca_file;
  /// Warnings. Empty: stderr.
  std::function<void(const std::string&)> log;
};

constexpr const char* kDefaultServiceUrl = "https://api.lockable.dev/v1";

/// A NamedLockStore talking to the Lockable.dev HTTP API (see LockServiceOptions).
std::shared_ptr<NamedLockStore> make_lock_service_store(LockServiceOptions options = {});

/// Called on the heartbeat thread when a heartbeat request failed while the lease may still be
/// alive; the NamedLock keeps beating. Keep it short.
using HeartbeatErrorHandler = std::function<void(std::exception_ptr error)>;
/// Called on the heartbeat thread, at most once, when the lock is lost: the store answered false
/// to a heartbeat, or no heartbeat succeeded for a whole lease. `reason` names the lock.
using NamedLockLossHandler = std::function<void(const std::string& reason)>;

struct NamedLockOptions {
  /// True: wait until the name is free (polling every `poll_period`), at most `timeout` when set.
  /// False: one attempt; the constructor throws LockTakenError when the name is held.
  bool blocking = true;
  std::chrono::milliseconds poll_period{1000};
  std::optional<std::chrono::milliseconds> timeout;
  /// Heartbeat period; zero means a third of the store's lease. Must be shorter than the lease.
  std::chrono::milliseconds heartbeat_period{0};
  NamedLockLossHandler on_lock_loss;
  HeartbeatErrorHandler on_heartbeat_exception;
};

/// A named lock held for the object's lifetime (RAII). The constructor acquires (see
/// NamedLockOptions) and starts a heartbeat thread. Not copyable or movable.
class NamedLock {
 public:
  /// Throws TimeoutError (blocking, timed out), LockTakenError (non-blocking, held), or the
  /// store's errors (ConfigError, BackendError) — a store temporarily unavailable is retried
  /// while waiting.
  NamedLock(std::shared_ptr<NamedLockStore> store, std::string name, NamedLockOptions options = {});
  /// Releases (see release()).
  ~NamedLock();
  NamedLock(const NamedLock&) = delete;
  NamedLock& operator=(const NamedLock&) = delete;

  /// Stops the heartbeat first (its handlers never run after this returns), then asks the store
  /// to release, unless the lock is known lost (it may be someone else's by then). Idempotent,
  /// never throws: a failed release leaves the lease to lapse.
  void release() noexcept;
  /// True once the lock is known lost (the handler may still be running).
  bool lost() const noexcept;
  const std::string& name() const noexcept;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace lockable
