// Device locks in etcd (see include/lockable/etcd.hpp and README "etcd"). The moving parts:
//   Session  one lease, the keepalive thread, the locks taken on the lease (loss reporting) and
//            deletes that failed and are retried; shared by the backend and every HeldLock, so a
//            lock outlives its backend and keeps its lease alive until released.
//   Watcher  one streaming /v3/watch over the lab's prefix per backend; waiters sleep until it
//            has seen an event newer than what they read in their last attempt.
//   tickets  queue keys written when their waiter first waits, ordered by create revision.

#include <lockable/error.hpp>
#include <lockable/etcd.hpp>
#include <lockable/lockable.hpp>

#include "core/backoff.hpp"
#include "etcd/etcd_client.hpp"
#include "etcd/etcd_logic.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

namespace lockable {
namespace {

using etcd::Clock;
using Log = std::function<void(const std::string&)>;

// Calls that a waiter or a holder makes wait at most this long for etcd; the core retries a
// TemporarilyUnavailableError inside the caller's timeout.
constexpr auto kCallBudget = std::chrono::seconds(5);
// Waits return this often even without an event: a slow safety net should a watch miss one.
constexpr auto kSafetyRecheck = std::chrono::seconds(30);

std::string seconds_text(Clock::duration duration) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f s", std::chrono::duration<double>(duration).count());
  return text;
}

Json b64(const std::string& bytes) { return etcd::base64_encode(bytes); }

std::string decoded(const Json& kv, const char* field) {
  if (!kv.is_object() || !kv.contains(field) || !kv[field].is_string()) return {};
  return etcd::base64_decode(kv[field].get<std::string>()).value_or(std::string());
}

std::int64_t revision_of(const Json& response) {
  if (!response.contains("header")) return 0;
  return etcd::int64_field(response["header"], "revision").value_or(0);
}

// A range response's kvs, also from inside a txn's response list.
const Json& kvs_of(const Json& range) {
  static const Json empty = Json::array();
  if (!range.is_object() || !range.contains("kvs") || !range["kvs"].is_array()) return empty;
  return range["kvs"];
}

[[noreturn]] void unexpected(const etcd::Client& client, const std::string& what,
                             const Json& answer) {
  throw BackendError(
      client.describe() + " answered " + what + " with something the etcd gateway never sends (" +
      http::body_excerpt(answer.dump(-1, ' ', false, Json::error_handler_t::replace)) +
      "); check that the endpoint is an etcd v3 server (3.4 or later)");
}

// A txn's "succeeded"; a value that is not a bool is a BackendError naming the endpoint, not a
// JSON type error (which would surface as an internal error).
bool succeeded(const etcd::Client& client, const std::string& what, const Json& answer) {
  const auto flag = etcd::bool_field(answer, "succeeded");
  if (!flag) unexpected(client, what, answer);
  return *flag;
}

// Queue keys whose tickets were destroyed in this process: every backend object in the process
// counts them as gone at once (the contract: a destroyed ticket is gone), also while a failed
// delete waits for its retry, and for a while after, until every watch in the process has seen
// the delete. Queue key names are never reused, so remembering one longer than needed is
// harmless.
class LeavingTickets {
 public:
  static LeavingTickets& instance() {
    static LeavingTickets* const leaving = new LeavingTickets();  // never destroyed: threads
    return *leaving;
  }
  void add(const std::string& key) {
    std::lock_guard<std::mutex> guard(mutex_);
    const auto now = Clock::now();
    for (auto it = keys_.begin(); it != keys_.end();) {
      it = it->second && now - *it->second > kRemembered ? keys_.erase(it) : std::next(it);
    }
    keys_[key] = std::nullopt;
  }
  // The delete is done: forget the key once watches have long seen it.
  void deleted(const std::string& key) {
    std::lock_guard<std::mutex> guard(mutex_);
    if (const auto it = keys_.find(key); it != keys_.end()) it->second = Clock::now();
  }
  bool contains(const std::string& key) {
    std::lock_guard<std::mutex> guard(mutex_);
    return keys_.count(key) != 0;
  }

 private:
  static constexpr auto kRemembered = std::chrono::seconds(60);
  std::mutex mutex_;
  std::map<std::string, std::optional<Clock::time_point>> keys_;
};

// The newest revision of a change this process made under each lab's prefix (key: endpoints and
// prefix). A waiter reads the queue from its backend's watch only once the watch has caught up
// with it, so a change made through one backend object is seen at once through every other one
// in the process (read-your-writes, as a range read would give).
class OwnWrites {
 public:
  static OwnWrites& instance() {
    static OwnWrites* const writes = new OwnWrites();  // never destroyed: threads
    return *writes;
  }
  void note(const std::string& space, std::int64_t revision) {
    std::lock_guard<std::mutex> guard(mutex_);
    auto& latest = latest_[space];
    latest = std::max(latest, revision);
  }
  std::int64_t latest(const std::string& space) {
    std::lock_guard<std::mutex> guard(mutex_);
    const auto it = latest_.find(space);
    return it == latest_.end() ? 0 : it->second;
  }

 private:
  std::mutex mutex_;
  std::map<std::string, std::int64_t> latest_;
};

// One held lock's state, shared by the HeldLock and the session's loss bookkeeping.
struct LockState {
  std::string id;
  std::string key;
  std::int64_t token = 0;  // the key's create revision
  std::int64_t lease = 0;
  // Set with the lease's loss (Session::take_lost_locked), under the session's mutex.
  std::string loss_reason;
  LockLossSignal signal;
  std::atomic<bool> released{false};
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(std::shared_ptr<etcd::Client> client, etcd::KeyLayout layout, Clock::duration ttl,
          Log log)
      : client_(std::move(client)),
        layout_(std::move(layout)),
        space_(client_->describe() + '\0' + layout_.root()),
        wanted_ttl_(ttl),
        log_(std::move(log)) {}

  // Where OwnWrites keeps this session's changes.
  const std::string& space() const { return space_; }
  void note_write(std::int64_t revision) { OwnWrites::instance().note(space_, revision); }

  ~Session() {
    {
      std::lock_guard<std::mutex> guard(mutex_);
      stop_ = true;
    }
    woken_.notify_all();
    stop_flag_.store(true);
    client_->interrupt();
    if (thread_.joinable()) thread_.join();
    for (const auto& entry : pending_deletes_) {
      LeavingTickets::instance().deleted(leaving_name(entry.first));
    }
    // Our keys go with the lease at once instead of a TTL later.
    const std::int64_t lease = lease_;
    if (lease != 0) {
      try {
        client_->call("/v3/lease/revoke", Json{{"ID", std::to_string(lease)}},
                      Clock::now() + std::chrono::seconds(1));
      } catch (const std::exception&) {
        // It expires by itself.
      }
    }
  }

  etcd::Client& client() { return *client_; }
  const std::shared_ptr<etcd::Client>& shared_client() { return client_; }

  void on_keepalive_error(KeepaliveErrorHandler handler) {
    std::lock_guard<std::mutex> guard(mutex_);
    keepalive_error_ = std::move(handler);
  }

  // The current lease, granted when there is none (or it may have lapsed).
  std::int64_t lease(Clock::time_point deadline) {
    std::unique_lock<std::mutex> lock(mutex_);
    if (lease_ != 0 &&
        etcd::lease_maybe_lapsed(last_ok_sent_, ttl_, etcd::loss_margin(ttl_), Clock::now())) {
      take_lost_locked(lease_,
                       "no keepalive succeeded for " + seconds_text(Clock::now() - last_ok_sent_));
    }
    while (lease_ == 0) {
      if (granting_) {
        granted_.wait(lock);
        continue;
      }
      granting_ = true;
      lock.unlock();
      const auto sent = Clock::now();
      Json answer;
      try {
        answer = client_->call(
            "/v3/lease/grant",
            Json{{"TTL", std::chrono::duration_cast<std::chrono::seconds>(wanted_ttl_).count()}},
            deadline);
      } catch (...) {
        lock.lock();
        granting_ = false;
        granted_.notify_all();
        throw;
      }
      const auto id = etcd::int64_field(answer, "ID").value_or(0);
      const auto ttl = etcd::int64_field(answer, "TTL").value_or(0);
      lock.lock();
      granting_ = false;
      granted_.notify_all();
      if (id == 0 || ttl <= 0) unexpected(*client_, "a lease grant", answer);
      lease_ = id;
      ttl_ = std::chrono::seconds(ttl);
      last_ok_sent_ = sent;
      if (!thread_.joinable()) thread_ = std::thread([this] { keepalive_loop(); });
      woken_.notify_all();
    }
    return lease_;
  }

  // The server said the lease is gone: every lock on it is lost.
  void lease_gone(std::int64_t lease, const std::string& why) {
    const std::string cause = loss_cause(lease, why);
    std::lock_guard<std::mutex> guard(mutex_);
    take_lost_locked(lease, cause);
  }

  // Why `lease` is gone: the operator's reason when `lockable release --force` revoked it
  // (EtcdBackend::force_release records it first), else `why`. Without `mutex_`: it asks etcd.
  std::string loss_cause(std::int64_t lease, const std::string& why) {
    try {
      const Json answer =
          client_->call("/v3/kv/range", Json{{"key", b64(layout_.revocation_key(lease))}},
                        Clock::now() + std::chrono::seconds(2), &stop_flag_);
      const Json& kvs = kvs_of(answer);
      if (!kvs.empty()) {
        if (auto text = etcd::revocation_text(decoded(kvs[0], "value"))) return *text;
      }
    } catch (const std::exception&) {
      // Unreachable now: the loss is reported all the same, without the operator's words.
    }
    return why;
  }

  // Keeps `state` for loss reporting, unless its lease may have lapsed while the lock
  // transaction was under way (a slow or stalled member answered after the TTL): then another
  // holder may have the device already, so the lease counts as lost (and is revoked, freeing the
  // key), and false says the lock must not be handed out.
  bool add_if_alive(const std::shared_ptr<LockState>& state) {
    std::lock_guard<std::mutex> guard(mutex_);
    const auto now = Clock::now();
    if (state->lease != lease_ ||
        etcd::lease_maybe_lapsed(last_ok_sent_, ttl_, etcd::loss_margin(ttl_), now)) {
      if (state->lease == lease_) {
        take_lost_locked(lease_, "no keepalive succeeded for " + seconds_text(now - last_ok_sent_) +
                                     " while a lock transaction was under way");
      }
      return false;
    }
    locks_.push_back(state);
    return true;
  }

  void remove(const LockState* state) {
    std::lock_guard<std::mutex> guard(mutex_);
    locks_.erase(std::remove_if(locks_.begin(), locks_.end(),
                                [&](const auto& weak) {
                                  const auto locked = weak.lock();
                                  return !locked || locked.get() == state;
                                }),
                 locks_.end());
  }

  // The TTL the server granted (the wanted one before the first grant).
  Clock::duration ttl() {
    std::lock_guard<std::mutex> guard(mutex_);
    return ttl_ != Clock::duration{} ? ttl_ : wanted_ttl_;
  }

  // Why the lock `state` is lost, when its lease is gone or may have lapsed (marking every lock
  // on it lost, as the keepalive thread would a moment later); nullopt while it holds.
  std::optional<std::string> loss_of(const LockState& state) {
    std::lock_guard<std::mutex> guard(mutex_);
    const auto now = Clock::now();
    if (state.lease == lease_ &&
        etcd::lease_maybe_lapsed(last_ok_sent_, ttl_, etcd::loss_margin(ttl_), now)) {
      take_lost_locked(lease_, "no keepalive succeeded for " + seconds_text(now - last_ok_sent_) +
                                   ", the lease's TTL is " + seconds_text(ttl_));
    }
    if (!state.loss_reason.empty()) return state.loss_reason;
    if (state.lease == lease_) return std::nullopt;
    return state.id + ": the etcd lease " + etcd::lease_hex(state.lease) +
           " of this lock is gone at " + client_->describe() +
           "; the device may be in use by someone else now";
  }

  // Deletes a destroyed ticket's queue key now (as delete_key: retried by the keepalive thread
  // when etcd does not answer), and has every backend object of the process count it gone at
  // once, also where its watch has not delivered the delete yet.
  void delete_ticket_key(const std::string& key, std::int64_t revision) noexcept {
    try {
      LeavingTickets::instance().add(leaving_name(key));
      delete_now(key, revision, Clock::now() + std::chrono::seconds(2));
      LeavingTickets::instance().deleted(leaving_name(key));
    } catch (const std::exception&) {
      std::lock_guard<std::mutex> guard(mutex_);
      pending_deletes_.emplace_back(key, revision);
      woken_.notify_all();
    }
  }

  // A key's name in LeavingTickets: keys of different clusters never mix.
  std::string leaving_name(const std::string& key) const {
    return client_->describe() + '\0' + key;
  }

  // Deletes `key` if its create revision is still `revision` (0: whatever it is). Never throws:
  // a failed delete is retried by the keepalive thread, because the lease that would otherwise
  // clean up keeps being renewed while this session lives.
  void delete_key(const std::string& key, std::int64_t revision) noexcept {
    try {
      delete_now(key, revision, Clock::now() + std::chrono::seconds(2));
    } catch (const std::exception&) {
      std::lock_guard<std::mutex> guard(mutex_);
      pending_deletes_.emplace_back(key, revision);
      woken_.notify_all();
    }
  }

 private:
  void delete_now(const std::string& key, std::int64_t revision, Clock::time_point deadline) {
    Json compare = Json::array();
    if (revision != 0) {
      compare.push_back({{"key", b64(key)},
                         {"target", "CREATE"},
                         {"result", "EQUAL"},
                         {"create_revision", std::to_string(revision)}});
    }
    const Json answer = client_->call(
        "/v3/kv/txn",
        Json{{"compare", compare},
             {"success", Json::array({{{"request_delete_range", {{"key", b64(key)}}}}})}},
        deadline);
    if (succeeded(*client_, "a release transaction", answer)) note_write(revision_of(answer));
  }

  // Marks every lock on `lease` lost; their handlers run on the keepalive thread (the
  // contract), which this wakes. Callers hold `mutex_`.
  void take_lost_locked(std::int64_t lease, const std::string& why) {
    if (lease == lease_) {
      lease_ = 0;
      revoke_.push_back(lease);  // should it still live on the server, free its keys now
    }
    for (auto it = locks_.begin(); it != locks_.end();) {
      auto state = it->lock();
      if (!state) {
        it = locks_.erase(it);
      } else if (state->lease == lease) {
        std::string reason = state->id + ": the etcd lease " + etcd::lease_hex(state->lease) +
                             " of this lock is gone (" + why + ") at " + client_->describe() +
                             "; the device may be in use by someone else now (fencing token " +
                             std::to_string(state->token) + ")";
        state->loss_reason = reason;
        to_notify_.emplace_back(std::move(state), std::move(reason));
        it = locks_.erase(it);
      } else {
        ++it;
      }
    }
    woken_.notify_all();
  }

  // Runs the loss handlers queued by take_lost_locked; on the keepalive thread, `lock` held on
  // entry and return, released while handlers run.
  void deliver_losses(std::unique_lock<std::mutex>& lock) {
    while (!to_notify_.empty()) {
      auto batch = std::move(to_notify_);
      to_notify_.clear();
      lock.unlock();
      for (const auto& [state, reason] : batch) state->signal.notify(reason);
      lock.lock();
    }
  }

  void keepalive_loop() {
    std::unique_lock<std::mutex> lock(mutex_);
    Clock::time_point next = Clock::now();
    std::int64_t seen_lease = 0;
    while (!stop_) {
      if (lease_ != seen_lease) {
        // A new lease: its first renewal is due a third of its TTL after the grant.
        seen_lease = lease_;
        if (lease_ != 0) next = last_ok_sent_ + etcd::refresh_interval(ttl_);
      }
      if (lease_ != 0) {
        next = std::min(next, last_ok_sent_ + ttl_ - etcd::loss_margin(ttl_));
      }
      woken_.wait_until(lock, next, [&] {
        return stop_ || !pending_deletes_.empty() || !revoke_.empty() || !to_notify_.empty() ||
               lease_ != seen_lease || (lease_ != 0 && Clock::now() >= next);
      });
      if (stop_) break;
      deliver_losses(lock);
      if (lease_ != seen_lease) continue;
      const auto now = Clock::now();
      if (lease_ == 0) {
        next = now + std::chrono::seconds(1);
      } else if (etcd::lease_maybe_lapsed(last_ok_sent_, ttl_, etcd::loss_margin(ttl_), now)) {
        // Stopped (SIGSTOP), starved or cut off past the TTL: whatever the server did, another
        // holder may have the devices now.
        take_lost_locked(lease_, "no keepalive succeeded for " + seconds_text(now - last_ok_sent_) +
                                     ", the lease's TTL is " + seconds_text(ttl_));
        continue;
      } else if (now >= next) {
        const std::int64_t lease = lease_;
        const auto ttl = ttl_;
        const auto give_up = last_ok_sent_ + ttl - etcd::loss_margin(ttl);
        lock.unlock();
        const auto sent = Clock::now();
        std::exception_ptr failure;
        bool gone = false;
        std::int64_t granted = 0;
        try {
          // One short attempt round: a failure is reported (and retried) while the lease lives.
          const auto attempt_until =
              std::min(give_up, sent + std::max<Clock::duration>(etcd::refresh_interval(ttl) / 2,
                                                                 std::chrono::milliseconds(500)));
          const Json answer = client_->call(
              "/v3/lease/keepalive", Json{{"ID", std::to_string(lease)}},
              std::max(attempt_until, sent + std::chrono::milliseconds(100)), &stop_flag_);
          const Json& result = answer.contains("result") ? answer["result"] : answer;
          granted = etcd::int64_field(result, "TTL").value_or(0);
          gone = granted <= 0;
        } catch (const CancelledError&) {
          lock.lock();
          break;
        } catch (const std::exception&) {
          failure = std::current_exception();
        }
        lock.lock();
        if (lease_ != lease) {
          next = Clock::now();
          continue;
        }
        if (gone) {
          lock.unlock();
          const std::string why = loss_cause(lease, "etcd says the lease expired or was revoked");
          lock.lock();
          take_lost_locked(lease, why);  // nothing more, should another path have taken them
          continue;
        }
        if (failure) {
          auto handler = keepalive_error_;
          next = Clock::now() + std::min<Clock::duration>(etcd::refresh_interval(ttl_) / 2,
                                                          std::chrono::milliseconds(500));
          if (handler) {
            lock.unlock();
            try {
              handler(failure);
            } catch (...) {
              // A handler's failure must not stop the keepalive.
            }
            lock.lock();
          }
        } else {
          last_ok_sent_ = sent;
          ttl_ = std::chrono::seconds(granted);
          next = sent + etcd::refresh_interval(ttl_);
        }
      }
      // Housekeeping: deletes that failed before, leases given up.
      auto deletes = std::move(pending_deletes_);
      pending_deletes_.clear();
      auto revokes = std::move(revoke_);
      revoke_.clear();
      if (deletes.empty() && revokes.empty()) continue;
      lock.unlock();
      std::vector<std::pair<std::string, std::int64_t>> failed;
      for (const auto& [key, revision] : deletes) {
        try {
          delete_now(key, revision, Clock::now() + std::chrono::seconds(1));
          LeavingTickets::instance().deleted(leaving_name(key));
        } catch (const std::exception&) {
          failed.emplace_back(key, revision);
        }
      }
      for (const auto lease : revokes) {
        try {
          client_->call("/v3/lease/revoke", Json{{"ID", std::to_string(lease)}},
                        Clock::now() + std::chrono::seconds(1));
        } catch (const std::exception&) {
          // Not found (already expired) or unreachable: the lease expires by itself.
        }
      }
      lock.lock();
      for (auto& entry : failed) pending_deletes_.push_back(std::move(entry));
      if (!failed.empty()) next = std::min(next, Clock::now() + std::chrono::seconds(1));
    }
  }

  std::shared_ptr<etcd::Client> client_;
  etcd::KeyLayout layout_;
  std::string space_;
  Clock::duration wanted_ttl_;
  Log log_;
  std::mutex mutex_;
  std::condition_variable woken_;
  std::condition_variable granted_;
  bool granting_ = false;
  bool stop_ = false;
  std::atomic<bool> stop_flag_{false};
  std::int64_t lease_ = 0;
  Clock::duration ttl_{};
  Clock::time_point last_ok_sent_{};
  std::vector<std::pair<std::shared_ptr<LockState>, std::string>> to_notify_;
  std::vector<std::weak_ptr<LockState>> locks_;
  std::vector<std::pair<std::string, std::int64_t>> pending_deletes_;
  std::vector<std::int64_t> revoke_;
  KeepaliveErrorHandler keepalive_error_;
  std::thread thread_;
};

class EtcdHeldLock final : public HeldLock {
 public:
  EtcdHeldLock(std::shared_ptr<Session> session, std::shared_ptr<LockState> state)
      : session_(std::move(session)), state_(std::move(state)) {}
  ~EtcdHeldLock() override { EtcdHeldLock::release(); }

  void release() noexcept override {
    if (state_->released.exchange(true)) return;
    state_->signal.disarm();
    session_->remove(state_.get());
    // Only our own key: compared by create revision, so a later holder's key stays.
    session_->delete_key(state_->key, state_->token);
  }
  // Whoever learns of the loss first reports it, on its own thread: the handler never lags
  // behind a lost() that said true (a suite must not run its next test on a lost device).
  bool lost() const noexcept override {
    if (state_->signal.lost()) return true;
    if (state_->released.load()) return false;
    try {
      const auto why = session_->loss_of(*state_);
      if (!why) return false;
      state_->signal.notify(*why);
    } catch (...) {
      // Out of memory for the reason: the keepalive thread reports it.
    }
    return true;
  }
  std::optional<std::uint64_t> fencing_token() const noexcept override {
    return static_cast<std::uint64_t>(state_->token);
  }
  void on_lock_loss(LockLossHandler handler) override {
    if (state_->released.load()) return;
    state_->signal.set_handler(std::move(handler));
  }

 private:
  std::shared_ptr<Session> session_;
  std::shared_ptr<LockState> state_;
};

// One watch over the lab's prefix for the life of a backend, started by the first wait.
class Watcher {
 public:
  Watcher(std::shared_ptr<etcd::Client> client, etcd::KeyLayout layout)
      : client_(std::move(client)), layout_(std::move(layout)) {}
  ~Watcher() {
    {
      std::lock_guard<std::mutex> guard(mutex_);
      stop_ = true;
    }
    cancel_.store(true);
    changed_.notify_all();
    client_->interrupt();
    if (thread_.joinable()) thread_.join();
  }

  // Returns once an event newer than `floor` (a store revision the caller read) was seen that
  // may matter to the caller, at `deadline`, on interrupt(), or after the safety interval.
  // A waiter `queued` (its ticket published) is not woken by a newer waiter joining the queue:
  // that never changes what it may claim.
  void wait(std::int64_t floor, bool queued, Clock::time_point deadline) {
    std::unique_lock<std::mutex> lock(mutex_);
    if (!thread_.joinable()) {
      resume_ = floor + 1;
      thread_ = std::thread([this] { run(); });
    }
    const auto interrupts = interrupts_;
    const auto resets = resets_;
    const auto start = resume_start_;
    changed_.wait_until(lock, std::min(deadline, Clock::now() + kSafetyRecheck), [&] {
      return stop_ || latest_ > floor || (!queued && latest_new_waiter_ > floor) ||
             interrupts_ != interrupts || resets_ != resets || floor + 1 < start;
    });
  }

  void interrupt() {
    {
      std::lock_guard<std::mutex> guard(mutex_);
      ++interrupts_;
    }
    changed_.notify_all();
  }

  // The queue as the watch has it (every queue change up to revision `applied` applied in
  // order), oldest first; nullopt while the watch is not in step (not started, reconnecting).
  // Waiters read it instead of asking etcd on every wake-up: with many waiters, those reads were
  // what bounded throughput.
  // The snapshot once it includes every change up to `revision` (waiting at most `patience`
  // for the watch to deliver them).
  std::optional<std::pair<std::vector<etcd::QueueEntry>, std::int64_t>> queue_snapshot(
      std::int64_t revision, Clock::duration patience) {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait_for(lock, patience, [&] { return stop_ || !synced_ || applied_ >= revision; });
    if (!synced_ || applied_ < revision) return std::nullopt;
    std::vector<etcd::QueueEntry> entries;
    entries.reserve(queue_.size());
    for (const auto& entry : queue_) entries.push_back(entry.second);
    std::sort(entries.begin(), entries.end(),
              [](const auto& a, const auto& b) { return a.create_revision < b.create_revision; });
    return std::make_pair(std::move(entries), applied_);
  }

 private:
  void run() {
    detail::Backoff backoff(std::chrono::milliseconds(50), std::chrono::seconds(2),
                            static_cast<std::uint64_t>(::getpid()));
    const std::string root = layout_.root();
    const std::string locks_dir = layout_.locks_dir();
    const std::string queue_dir = layout_.queue_dir();
    while (!cancel_.load()) {
      std::int64_t from = 0;
      bool compacted = false;
      try {
        // The queue as of revision H, then every change after H from the watch.
        const Json answer = client_->call(
            "/v3/kv/range",
            Json{{"key", b64(queue_dir)}, {"range_end", b64(etcd::prefix_range_end(queue_dir))}},
            Clock::now() + kCallBudget, &cancel_);
        const auto synced_at = revision_of(answer);
        {
          std::lock_guard<std::mutex> guard(mutex_);
          queue_.clear();
          for (auto& entry : etcd::parse_queue(kvs_of(answer))) {
            const std::string key = entry.key;
            queue_.emplace(key, std::move(entry));
          }
          applied_ = synced_at;
          synced_ = true;
          // Events before the snapshot are not replayed: waiters look again once.
          resume_ = std::max(resume_, synced_at + 1);
          from = resume_;
          resume_start_ = from;
          ++resets_;
        }
        changed_.notify_all();
        client_->stream(
            "/v3/watch",
            Json{{"create_request",
                  {{"key", b64(root)},
                   {"range_end", b64(etcd::prefix_range_end(root))},
                   {"start_revision", std::to_string(from)}}}},
            Clock::now() + std::chrono::minutes(10),
            [&](const Json& result) {
              backoff.reset();
              if (etcd::bool_field(result, "canceled").value_or(false)) {
                compacted = etcd::int64_field(result, "compact_revision").value_or(0) != 0;
                std::lock_guard<std::mutex> guard(mutex_);
                if (compacted) {
                  resume_ = etcd::int64_field(result, "compact_revision").value_or(0);
                }
                if (result.contains("cancel_reason")) client_->forget_token();
                return false;
              }
              if (!result.contains("events")) return true;
              // What each event can change for a waiter. A lock taken (a PUT of a lock key) frees
              // nothing; a new queue key only matters to waiters not queued yet; anything else (a
              // release, a waiter leaving or changing what it wants) wakes every waiter.
              std::int64_t newest = 0;
              std::int64_t newest_waiter = 0;
              std::int64_t seen = 0;
              for (const auto& event : result["events"]) {
                if (!event.contains("kv")) continue;
                const Json& kv = event["kv"];
                const auto revision = etcd::int64_field(kv, "mod_revision").value_or(0);
                seen = std::max(seen, revision);
                const bool put =
                    !(event.is_object() && event.contains("type") && event["type"] == "DELETE");
                const std::string key = decoded(kv, "key");
                if (key.rfind(queue_dir, 0) == 0) {
                  std::lock_guard<std::mutex> guard(mutex_);
                  if (!put) {
                    queue_.erase(key);
                  } else {
                    auto parsed = etcd::parse_queue(Json::array({kv}));
                    if (!parsed.empty()) queue_[key] = std::move(parsed.front());
                  }
                }
                if (put && key.rfind(locks_dir, 0) == 0) continue;
                if (put && key.rfind(queue_dir, 0) == 0 &&
                    etcd::int64_field(kv, "version").value_or(0) == 1) {
                  newest_waiter = std::max(newest_waiter, revision);
                  continue;
                }
                newest = std::max(newest, revision);
              }
              {
                std::lock_guard<std::mutex> guard(mutex_);
                latest_ = std::max(latest_, newest);
                latest_new_waiter_ = std::max(latest_new_waiter_, newest_waiter);
                resume_ = std::max(resume_, seen + 1);
                applied_ = std::max(applied_, seen);
              }
              changed_.notify_all();
              return true;
            },
            &cancel_);
      } catch (const CancelledError&) {
        return;
      } catch (const std::exception&) {
        // etcd down or restarting: reconnect below, from the last event seen.
      }
      if (cancel_.load()) return;
      {
        // A compaction skipped events, and a reconnect may follow a gap: waiters look again,
        // and ask etcd for the queue until the watch is in step again.
        std::lock_guard<std::mutex> guard(mutex_);
        synced_ = false;
        ++resets_;
      }
      changed_.notify_all();
      const auto until = Clock::now() + (compacted ? Clock::duration(0) : backoff.next());
      std::unique_lock<std::mutex> lock(mutex_);
      changed_.wait_until(lock, until, [&] { return stop_; });
    }
  }

  std::shared_ptr<etcd::Client> client_;
  etcd::KeyLayout layout_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::atomic<bool> cancel_{false};
  bool stop_ = false;
  std::int64_t latest_ = 0;
  std::int64_t latest_new_waiter_ = 0;
  bool synced_ = false;
  std::int64_t applied_ = 0;
  std::map<std::string, etcd::QueueEntry> queue_;
  std::int64_t resume_ = 0;
  std::int64_t resume_start_ = 0;
  std::uint64_t interrupts_ = 0;
  std::uint64_t resets_ = 0;
  std::thread thread_;
};

// The lowest store revision each thread read since it last waited: its wait must end on any
// event after that read (see LockBackend::wait_for_change).
class Floors {
 public:
  void note(std::int64_t revision) {
    if (revision <= 0) return;
    std::lock_guard<std::mutex> guard(mutex_);
    auto& floor = floors_[std::this_thread::get_id()];
    floor = floor == 0 ? revision : std::min(floor, revision);
  }
  std::int64_t take() {
    std::lock_guard<std::mutex> guard(mutex_);
    const auto it = floors_.find(std::this_thread::get_id());
    if (it == floors_.end()) return 0;
    const auto floor = it->second;
    floors_.erase(it);
    return floor;
  }

 private:
  std::mutex mutex_;
  std::map<std::thread::id, std::int64_t> floors_;
};

struct TicketState {
  std::mutex mutex;
  std::string key;
  std::vector<std::string> wanted;
  Json holder;
  QueuePlace place;  // the waiter's priority and since
  // Options::priority_aging in milliseconds, shared with the backend.
  std::shared_ptr<const std::atomic<long long>> aging_ms;
  std::int64_t create_revision = 0;  // 0 while unpublished
  bool published = false;
  bool closed = false;

  std::string value() const {
    Json json = holder;
    json["wanted"] = wanted;
    return json.dump();
  }
};

// What the backend and the observer share: reading holders.
std::vector<std::optional<HolderInfo>> read_holders(etcd::Client& client,
                                                    const etcd::KeyLayout& layout,
                                                    const std::vector<std::string>& ids,
                                                    Floors* floors) {
  std::vector<std::optional<HolderInfo>> holders(ids.size());
  if (ids.empty()) return holders;
  Json answer;
  if (ids.size() == 1) {
    answer = client.call("/v3/kv/range", Json{{"key", b64(layout.lock_key(ids[0]))}},
                         Clock::now() + kCallBudget);
  } else {
    const std::string dir = layout.locks_dir();
    answer = client.call("/v3/kv/range",
                         Json{{"key", b64(dir)}, {"range_end", b64(etcd::prefix_range_end(dir))}},
                         Clock::now() + kCallBudget);
  }
  if (floors != nullptr) floors->note(revision_of(answer));
  std::map<std::string, std::size_t> index;
  for (std::size_t i = 0; i < ids.size(); ++i) index.emplace(ids[i], i);
  for (const auto& kv : kvs_of(answer)) {
    const auto id = layout.id_of_lock_key(decoded(kv, "key"));
    if (!id) continue;
    const auto it = index.find(*id);
    if (it == index.end()) continue;
    const std::string value = decoded(kv, "value");
    if (const auto json = etcd::parse_holder_value(value)) {
      auto holder = HolderInfo::from_json(*json);
      // The lock key's create revision is the holder's fencing token.
      if (const auto revision = etcd::int64_field(kv, "create_revision");
          revision && *revision > 0) {
        holder.fencing_token = static_cast<std::uint64_t>(*revision);
      }
      holders[it->second] = std::move(holder);
    } else {
      HolderInfo foreign;
      foreign.hostname = "(not a lockable lock: etcd key " + layout.lock_key(*id) + " holds " +
                         http::body_excerpt(value, 60) + ")";
      holders[it->second] = foreign;
    }
  }
  return holders;
}

// The standing reservations of `ids` (one range over the reservations; what the backend and
// the observer share). Expired ones are gone with their lease; an unparseable value still counts
// (a device is never handed out because its reservation is damaged).
std::vector<std::optional<Reservation>> read_reservations(etcd::Client& client,
                                                          const etcd::KeyLayout& layout,
                                                          const std::vector<std::string>& ids) {
  std::vector<std::optional<Reservation>> out(ids.size());
  if (ids.empty()) return out;
  const std::string dir = layout.reserved_dir();
  const Json answer = client.call(
      "/v3/kv/range", Json{{"key", b64(dir)}, {"range_end", b64(etcd::prefix_range_end(dir))}},
      Clock::now() + kCallBudget);
  std::map<std::string, std::size_t> index;
  for (std::size_t i = 0; i < ids.size(); ++i) index.emplace(layout.reserved_key(ids[i]), i);
  const auto now = std::chrono::system_clock::now();
  for (const auto& kv : kvs_of(answer)) {
    const std::string key = decoded(kv, "key");
    const auto it = index.find(key);
    if (it == index.end()) continue;
    Reservation reservation;
    try {
      reservation = Reservation::from_json(Json::parse(decoded(kv, "value")));
    } catch (const std::exception& error) {
      reservation.reason = "unreadable reservation";
      reservation.problem = "etcd key " + key + " is not a reservation (" + error.what() +
                            "); run `lockable unreserve` or `lockable reserve` to replace it";
    }
    if (reservation.expired(now)) continue;
    out[it->second] = std::move(reservation);
  }
  return out;
}

class EtcdTicket final : public QueueTicket {
 public:
  EtcdTicket(std::shared_ptr<Session> session, std::shared_ptr<TicketState> state,
             etcd::KeyLayout layout, std::shared_ptr<Floors> floors, std::weak_ptr<Watcher> watcher)
      : session_(std::move(session)),
        state_(std::move(state)),
        layout_(std::move(layout)),
        floors_(std::move(floors)),
        watcher_(std::move(watcher)) {}
  ~EtcdTicket() override {
    std::lock_guard<std::mutex> guard(state_->mutex);
    state_->closed = true;
    if (state_->published) session_->delete_ticket_key(state_->key, state_->create_revision);
  }

  void update_wanted(const std::vector<std::string>& resource_ids) override {
    std::lock_guard<std::mutex> guard(state_->mutex);
    state_->wanted = resource_ids;
    if (state_->published) write_locked(*session_, *state_, floors_.get());
  }

  std::vector<std::vector<std::string>> wanted_by_earlier_waiters() override {
    std::vector<etcd::QueueEntry> queue;
    std::int64_t as_of = 0;  // the revision the queue was read at
    const auto watcher = watcher_.lock();
    auto snapshot = watcher
                        ? watcher->queue_snapshot(OwnWrites::instance().latest(session_->space()),
                                                  std::chrono::milliseconds(100))
                        : std::nullopt;
    if (snapshot) {
      queue = std::move(snapshot->first);
      as_of = snapshot->second;
    } else {
      const std::string dir = layout_.queue_dir();
      const Json answer =
          session_->client().call("/v3/kv/range",
                                  Json{{"key", b64(dir)},
                                       {"range_end", b64(etcd::prefix_range_end(dir))},
                                       {"sort_order", "ASCEND"},
                                       {"sort_target", "CREATE"}},
                                  Clock::now() + kCallBudget);
      as_of = revision_of(answer);
      queue = etcd::parse_queue(kvs_of(answer));
    }
    // A wait after this must end on any change the read did not see.
    floors_->note(as_of);
    queue.erase(std::remove_if(queue.begin(), queue.end(),
                               [&](const etcd::QueueEntry& entry) {
                                 return LeavingTickets::instance().contains(
                                     session_->leaving_name(entry.key));
                               }),
                queue.end());
    std::lock_guard<std::mutex> guard(state_->mutex);
    if (state_->published && as_of >= state_->create_revision) {
      const bool present = std::any_of(queue.begin(), queue.end(), [&](const auto& entry) {
        return entry.key == state_->key && entry.create_revision == state_->create_revision;
      });
      // Our lease lapsed and took the key: queue again (at the end; the loss was ours).
      if (!present) write_locked(*session_, *state_, floors_.get());
    }
    return etcd::wanted_before(queue, state_->published ? state_->create_revision : 0, state_->key,
                               state_->place, std::chrono::system_clock::now(),
                               std::chrono::milliseconds(state_->aging_ms->load()));
  }

  // Writes the ticket's key on the session's lease; sets its create revision when new.
  static void write_locked(Session& session, TicketState& state, Floors* floors) {
    for (int attempt = 0;; ++attempt) {
      const std::int64_t lease = session.lease(Clock::now() + kCallBudget);
      try {
        const Json answer = session.client().call("/v3/kv/put",
                                                  Json{{"key", b64(state.key)},
                                                       {"value", b64(state.value())},
                                                       {"lease", std::to_string(lease)},
                                                       {"prev_kv", true}},
                                                  Clock::now() + kCallBudget);
        const auto revision = revision_of(answer);
        if (floors != nullptr) floors->note(revision);
        const bool existed = answer.contains("prev_kv");
        state.create_revision =
            existed ? etcd::int64_field(answer["prev_kv"], "create_revision").value_or(revision)
                    : revision;
        state.published = true;
        session.note_write(revision);
        return;
      } catch (const etcd::LeaseNotFoundError& error) {
        session.lease_gone(lease, error.what());
        if (attempt > 0) throw;
      }
    }
  }

 private:
  std::shared_ptr<Session> session_;
  std::shared_ptr<TicketState> state_;
  etcd::KeyLayout layout_;
  std::shared_ptr<Floors> floors_;
  std::weak_ptr<Watcher> watcher_;
};

std::vector<QueuedRequest> read_queue(etcd::Client& client, const etcd::KeyLayout& layout) {
  const std::string dir = layout.queue_dir();
  const Json answer = client.call(
      "/v3/kv/range", Json{{"key", b64(dir)}, {"range_end", b64(etcd::prefix_range_end(dir))}},
      Clock::now() + kCallBudget);
  std::vector<QueuedRequest> requests;
  for (auto& entry : etcd::parse_queue(kvs_of(answer))) {
    requests.push_back(QueuedRequest{HolderInfo::from_json(entry.holder), std::move(entry.wanted)});
  }
  return requests;
}

class NoTicket final : public QueueTicket {
 public:
  void update_wanted(const std::vector<std::string>&) override {}
  std::vector<std::vector<std::string>> wanted_by_earlier_waiters() override { return {}; }
};

std::shared_ptr<etcd::Client> make_client(const EtcdOptions& options) {
  etcd::ClientConfig config;
  config.endpoints = options.endpoints;
  config.user = options.user;
  config.password = options.password;
  config.log = options.log;
  return std::make_shared<etcd::Client>(std::move(config));
}

// Proves at once that etcd is there, is an etcd gateway, takes our credentials and lets us read
// the prefix, so a wrong spec fails at start and not at the first lock.
void probe(etcd::Client& client, const etcd::KeyLayout& layout) {
  try {
    const std::string root = layout.root();
    client.call("/v3/kv/range",
                Json{{"key", b64(root)},
                     {"range_end", b64(etcd::prefix_range_end(root))},
                     {"count_only", true}},
                Clock::now() + std::chrono::seconds(3));
  } catch (const TemporarilyUnavailableError& error) {
    throw BackendError(std::string("cannot reach ") + client.describe() + ": " + error.what() +
                       "; start etcd there, or fix the endpoints (etcd://HOST:PORT/PREFIX or "
                       "LOCKABLE_ETCD_ENDPOINTS)");
  }
}

class EtcdBackend final : public LockBackend {
 public:
  explicit EtcdBackend(EtcdOptions options)
      : layout_(etcd::make_layout(options.prefix)),
        log_(options.log ? options.log
                         : Log([](const std::string& text) { std::cerr << text << std::endl; })) {
    auto client = make_client(options);
    probe(*client, layout_);
    session_ = std::make_shared<Session>(client, layout_, options.ttl, log_);
    watcher_ = std::make_shared<Watcher>(client, layout_);
    session_->lease(Clock::now() + std::chrono::seconds(3));
  }

  ~EtcdBackend() override { watcher_.reset(); }

  std::unique_ptr<HeldLock> try_lock(const Resource& resource, const HolderInfo& holder) override {
    const std::string key = layout_.lock_key(resource.id);
    if (resource.id.empty()) {
      throw BackendError("an empty resource id cannot name an etcd key; fix the resources");
    }
    const std::string value = holder.to_json().dump();
    for (int attempt = 0;; ++attempt) {
      const std::int64_t lease = session_->lease(Clock::now() + kCallBudget);
      Json answer;
      try {
        answer = session_->client().call(
            "/v3/kv/txn",
            // The reservation is compared in the same txn: a reserve and a grant never interleave.
            Json{{"compare", Json::array({{{"key", b64(key)},
                                           {"target", "CREATE"},
                                           {"result", "EQUAL"},
                                           {"create_revision", "0"}},
                                          {{"key", b64(layout_.reserved_key(resource.id))},
                                           {"target", "CREATE"},
                                           {"result", "EQUAL"},
                                           {"create_revision", "0"}}})},
                 {"success", Json::array({{{"request_put",
                                            {{"key", b64(key)},
                                             {"value", b64(value)},
                                             {"lease", std::to_string(lease)}}}}})},
                 {"failure", Json::array({{{"request_range", {{"key", b64(key)}}}}})}},
            Clock::now() + kCallBudget);
      } catch (const etcd::LeaseNotFoundError& error) {
        session_->lease_gone(lease, error.what());
        if (attempt > 0) throw TemporarilyUnavailableError(error.what());
        continue;
      }
      const auto revision = revision_of(answer);
      floors_->note(revision);
      if (succeeded(session_->client(), "a lock transaction", answer)) {
        session_->note_write(revision);
        if (revision <= 0) unexpected(session_->client(), "a lock transaction", answer);
        auto state = std::make_shared<LockState>();
        state->id = resource.id;
        state->key = key;
        state->token = revision;
        state->lease = lease;
        if (!session_->add_if_alive(state)) {
          // Granted on a lease that may be gone: try once more on a fresh lease (the old key
          // goes with the old lease); a second such answer means etcd is too slow for the TTL.
          if (attempt > 0) {
            throw TemporarilyUnavailableError(
                "etcd at " + session_->client().describe() +
                " answered a lock transaction only after the lease's TTL (" +
                seconds_text(session_->ttl()) +
                ") had nearly run out; it is overloaded or a member is down: retrying, or give "
                "a longer ?ttl= in the backend spec");
          }
          continue;
        }
        return std::make_unique<EtcdHeldLock>(session_, std::move(state));
      }
      const Json responses = answer.value("responses", Json::array());
      if (!responses.is_array() || responses.empty() || !responses[0].is_object()) {
        unexpected(session_->client(), "a failed lock transaction", answer);
      }
      const Json range = responses[0].value("response_range", Json::object());
      const Json& kvs = kvs_of(range);
      if (!kvs.empty()) {
        const std::string existing = decoded(kvs[0], "value");
        if (!etcd::parse_holder_value(existing)) {
          throw ResourceUnusableError(
              resource.id, "etcd key " + key + " at " + session_->client().describe() +
                               " holds data that is not a lockable lock (" +
                               http::body_excerpt(existing, 60) +
                               "): another program writes under this prefix; delete the key "
                               "(etcdctl del " +
                               key + ") if it is stale, or give lockable a prefix of its own");
        }
      }
      return nullptr;
    }
  }

  void wait_for_change(Clock::time_point deadline) override {
    const bool queued = publish_own_tickets();
    std::int64_t floor = floors_->take();
    if (floor == 0) {
      const Json answer = session_->client().call(
          "/v3/kv/range", Json{{"key", b64(layout_.root())}, {"count_only", true}},
          Clock::now() + kCallBudget);
      floor = revision_of(answer);
    }
    watcher_->wait(floor, queued, deadline);
  }

  std::unique_ptr<QueueTicket> enqueue(const std::vector<std::string>& resource_ids,
                                       const HolderInfo& waiter) override {
    static std::atomic<unsigned long> counter{0};
    auto state = std::make_shared<TicketState>();
    char suffix[64];
    std::snprintf(suffix, sizeof suffix, "%d-%lu", static_cast<int>(::getpid()), counter++);
    state->key = layout_.queue_dir() +
                 etcd::lease_hex(session_->lease(Clock::now() + kCallBudget)) + "-" + suffix;
    state->wanted = resource_ids;
    state->holder = waiter.to_json();
    state->place = QueuePlace{waiter.priority, waiter.since};
    state->aging_ms = aging_ms_;
    {
      std::lock_guard<std::mutex> guard(mutex_);
      auto& mine = tickets_[std::this_thread::get_id()];
      mine.erase(
          std::remove_if(mine.begin(), mine.end(), [](const auto& weak) { return weak.expired(); }),
          mine.end());
      mine.push_back(state);
      if (tickets_.size() > 64) {
        for (auto it = tickets_.begin(); it != tickets_.end();) {
          const bool gone = std::all_of(it->second.begin(), it->second.end(),
                                        [](const auto& weak) { return weak.expired(); });
          it = gone ? tickets_.erase(it) : std::next(it);
        }
      }
    }
    return std::make_unique<EtcdTicket>(session_, std::move(state), layout_, floors_, watcher_);
  }

  std::optional<HolderInfo> holder_of(const std::string& resource_id) override {
    return read_holders(session_->client(), layout_, {resource_id}, floors_.get()).front();
  }

  std::vector<std::optional<HolderInfo>> holders_of(const std::vector<std::string>& ids) override {
    return read_holders(session_->client(), layout_, ids, floors_.get());
  }

  void interrupt_waits() noexcept override { watcher_->interrupt(); }

  std::vector<QueuedRequest> queued() override { return read_queue(session_->client(), layout_); }

  void set_priority_aging(std::chrono::milliseconds aging) override {
    aging_ms_->store(aging.count());
  }

  void on_keepalive_error(KeepaliveErrorHandler handler) override {
    session_->on_keepalive_error(std::move(handler));
  }

  std::string describe() const override {
    return session_->client().describe() + ", prefix " + layout_.root();
  }

  void reserve(const std::string& resource_id, const Reservation& reservation) override {
    if (resource_id.empty()) throw BackendError("an empty resource id cannot be reserved");
    Json put{{"key", b64(layout_.reserved_key(resource_id))},
             {"value", b64(reservation.to_json().dump())}};
    if (reservation.until) {
      // A lease of its own ends the reservation at `until`, also when no process is left.
      const auto left = std::chrono::ceil<std::chrono::seconds>(*reservation.until -
                                                                std::chrono::system_clock::now())
                            .count();
      if (left <= 0) return;  // over already: nothing stands
      const Json grant = session_->client().call("/v3/lease/grant", Json{{"TTL", left}},
                                                 Clock::now() + kCallBudget);
      const auto id = etcd::int64_field(grant, "ID").value_or(0);
      if (id == 0) unexpected(session_->client(), "a lease grant", grant);
      put["lease"] = std::to_string(id);
    }
    const Json answer = session_->client().call("/v3/kv/put", put, Clock::now() + kCallBudget);
    session_->note_write(revision_of(answer));
  }

  void unreserve(const std::string& resource_id) override {
    const Json answer = session_->client().call(
        "/v3/kv/deleterange", Json{{"key", b64(layout_.reserved_key(resource_id))}},
        Clock::now() + kCallBudget);
    session_->note_write(revision_of(answer));
  }

  std::vector<std::optional<Reservation>> reservations_of(
      const std::vector<std::string>& ids) override {
    return read_reservations(session_->client(), layout_, ids);
  }

  // Revokes the holder's lease: its keepalive learns of that (a key deleted alone would go
  // unnoticed until the holder releases), so the holder sees a loss, and the lease's keys (this
  // lock, and any other lock or queue key of the holder's session) go with it. The next grant
  // creates the key anew: a larger create revision, the fencing token.
  std::optional<HolderInfo> force_release(const std::string& resource_id,
                                          const std::string& reason) override {
    const std::string key = layout_.lock_key(resource_id);
    const Json answer = session_->client().call("/v3/kv/range", Json{{"key", b64(key)}},
                                                Clock::now() + kCallBudget);
    const Json& kvs = kvs_of(answer);
    if (kvs.empty()) return std::nullopt;
    const std::string value = decoded(kvs[0], "value");
    HolderInfo holder;
    if (const auto json = etcd::parse_holder_value(value)) holder = HolderInfo::from_json(*json);
    const auto lease = etcd::int64_field(kvs[0], "lease").value_or(0);
    const auto revision = etcd::int64_field(kvs[0], "create_revision").value_or(0);
    if (lease != 0) {
      record_revocation(lease, resource_id, reason);
      try {
        session_->client().call("/v3/lease/revoke", Json{{"ID", std::to_string(lease)}},
                                Clock::now() + kCallBudget);
      } catch (const BackendError&) {
        // Expired meanwhile (lease not found): the key is gone with it, or deleted below.
      }
    }
    // A key without a lease (written by hand), or one the revoke did not take: delete it, but
    // only this holder's (compared by create revision).
    session_->delete_key(key, revision);
    return holder;
  }

  // Leaves the operator's reason where the holder looks when its lease is gone
  // (Session::loss_cause), on a lease of its own so that it goes away by itself. The device is
  // taken all the same when this fails; the operator is told the holder will not see why.
  void record_revocation(std::int64_t lease, const std::string& resource_id,
                         const std::string& reason) {
    try {
      const Json grant = session_->client().call("/v3/lease/grant", Json{{"TTL", "600"}},
                                                 Clock::now() + kCallBudget);
      const auto id = etcd::int64_field(grant, "ID").value_or(0);
      if (id == 0) unexpected(session_->client(), "a lease grant", grant);
      const Json answer =
          session_->client().call("/v3/kv/put",
                                  Json{{"key", b64(layout_.revocation_key(lease))},
                                       {"value", b64(etcd::revocation_value(resource_id, reason))},
                                       {"lease", std::to_string(id)}},
                                  Clock::now() + kCallBudget);
      session_->note_write(revision_of(answer));
    } catch (const BackendError& error) {
      log_("lockable: warning: the holder of " + resource_id +
           " will lose it without the reason: it could not be stored (" + error.what() + ")");
    }
  }

 private:
  // A waiter becomes visible in the queue when it first waits; a request granted at once never
  // writes a queue key. Only the calling thread's tickets, so errors reach their own waiter.
  // Returns whether the thread has a ticket in the queue.
  bool publish_own_tickets() {
    std::vector<std::shared_ptr<TicketState>> mine;
    {
      std::lock_guard<std::mutex> guard(mutex_);
      const auto it = tickets_.find(std::this_thread::get_id());
      if (it == tickets_.end()) return false;
      for (auto weak = it->second.begin(); weak != it->second.end();) {
        if (auto state = weak->lock()) {
          mine.push_back(std::move(state));
          ++weak;
        } else {
          weak = it->second.erase(weak);
        }
      }
      if (it->second.empty()) tickets_.erase(it);
    }
    bool queued = false;
    for (const auto& state : mine) {
      std::lock_guard<std::mutex> guard(state->mutex);
      if (!state->published && !state->closed) {
        EtcdTicket::write_locked(*session_, *state, nullptr);
      }
      queued = queued || (state->published && !state->closed);
    }
    return queued;
  }

  etcd::KeyLayout layout_;
  Log log_;
  std::shared_ptr<Session> session_;
  std::shared_ptr<Watcher> watcher_;
  std::shared_ptr<Floors> floors_ = std::make_shared<Floors>();
  std::shared_ptr<std::atomic<long long>> aging_ms_ = std::make_shared<std::atomic<long long>>(
      std::chrono::duration_cast<std::chrono::milliseconds>(Options{}.priority_aging).count());
  std::mutex mutex_;
  std::map<std::thread::id, std::vector<std::weak_ptr<TicketState>>> tickets_;
};

class EtcdObserver final : public LockBackend {
 public:
  explicit EtcdObserver(EtcdOptions options)
      : layout_(etcd::make_layout(options.prefix)), client_(make_client(options)) {
    probe(*client_, layout_);
  }
  std::unique_ptr<HeldLock> try_lock(const Resource& resource, const HolderInfo&) override {
    throw BackendError("cannot lock " + resource.id + " through a read-only observer of " +
                       describe() + "; use make_etcd_backend to lock");
  }
  void wait_for_change(Clock::time_point deadline) override {
    std::this_thread::sleep_until(std::min(deadline, Clock::now() + std::chrono::seconds(1)));
  }
  std::unique_ptr<QueueTicket> enqueue(const std::vector<std::string>&,
                                       const HolderInfo&) override {
    return std::make_unique<NoTicket>();
  }
  std::optional<HolderInfo> holder_of(const std::string& resource_id) override {
    return read_holders(*client_, layout_, {resource_id}, nullptr).front();
  }
  std::vector<std::optional<HolderInfo>> holders_of(const std::vector<std::string>& ids) override {
    return read_holders(*client_, layout_, ids, nullptr);
  }
  std::vector<QueuedRequest> queued() override { return read_queue(*client_, layout_); }
  std::vector<std::optional<Reservation>> reservations_of(
      const std::vector<std::string>& ids) override {
    return read_reservations(*client_, layout_, ids);
  }
  std::string describe() const override {
    return client_->describe() + ", prefix " + layout_.root();
  }

 private:
  etcd::KeyLayout layout_;
  std::shared_ptr<etcd::Client> client_;
};

std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : "";
}

}  // namespace

std::unique_ptr<LockBackend> make_etcd_backend(EtcdOptions options) {
  return std::make_unique<EtcdBackend>(std::move(options));
}

std::unique_ptr<LockBackend> make_etcd_observer(EtcdOptions options) {
  return std::make_unique<EtcdObserver>(std::move(options));
}

EtcdOptions etcd_options_from_spec(const std::string& rest) {
  const auto parts = etcd::parse_spec(rest, env("LOCKABLE_ETCD_ENDPOINTS"));
  EtcdOptions options;
  options.endpoints = parts.endpoints;
  options.prefix = parts.prefix;
  if (parts.ttl) options.ttl = *parts.ttl;
  options.user = env("LOCKABLE_ETCD_USER");
  options.password = env("LOCKABLE_ETCD_PASSWORD");
  if (!options.user.empty() && options.password.empty()) {
    throw ConfigError("LOCKABLE_ETCD_USER is set (" + options.user +
                      ") but LOCKABLE_ETCD_PASSWORD is not; set both, or neither for an etcd "
                      "without authentication");
  }
  return options;
}

}  // namespace lockable
