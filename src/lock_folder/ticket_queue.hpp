#pragma once

// Private to the lock folder backend: the fair queue. Each waiter has a ticket file in
// `<folder>/.lockable-queue/` named `<arrival time in ns>-<pid>-<n>.ticket`, flock-ed by the
// waiter while it waits, holding a JSON array: the ids it wants, then one object with the
// waiter's HolderInfo (pid, host, requirements, since, priority):
//   ["dut-1","dut-2",{"pid":42,"hostname":"rig-01","priority":5,...}]
// Older versions wrote the ids alone and read only the array's strings, so they still find the
// ids of a ticket of this form (and order the queue by arrival alone); their tickets read here as
// priority 0. The waiters served before one (core `queue_order`: priority, aged by the waiting
// time the ticket's name gives, then arrival) keep the ids they want (core `claimable_ids`). A
// ticket whose waiter died is unlocked and swept; one whose waiter stopped (SIGSTOP) goes stale and
// stops holding others back until it runs again. This file owns writing, refreshing, reading and
// removing tickets; waking waiters when the queue changes is the watcher's (watcher.hpp).

#include <lockable/backend.hpp>
#include <lockable/lock_folder.hpp>

#include "lock_folder/descriptors.hpp"
#include "lock_folder/watcher.hpp"

#include <atomic>
#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace lockable::folder_backend {

/// The queue folder's name inside the lock folder.
constexpr const char* kQueueDir = ".lockable-queue";

/// Whether a queue folder entry named `name` is a ticket (what waiters watch and read).
bool is_ticket_name(const std::string& name);

/// Creates the queue folder for every account of the lock folder: mode 1777, like /tmp (anyone
/// may add a ticket, only its owner may remove it). Also widens a folder of ours left 0755 by an
/// older version. Another account's folder is left as it is: a waiter that may not write there
/// waits without a place in the queue (one warning per backend).
void make_queue_dir(const fs::path& dir);

struct TicketState;
class EmptyQueueCache;
struct QueueWarning;
struct ReadTicketCache;

/// The live waiters whose tickets are in `queue_dir`, in arrival order, for `lockable status`:
/// each with the HolderInfo its ticket holds (an older version's ticket: the pid of its name) and
/// `since` its arrival. Changes nothing on disk (a dead waiter's ticket is skipped, not removed);
/// a missing folder is an empty queue.
std::vector<QueuedRequest> read_queue(const fs::path& queue_dir);

/// The tickets of one backend object. Thread-safe.
class TicketQueue {
 public:
  /// Makes `queue_dir` if missing. `log` receives the one warning per backend that this account
  /// cannot queue there.
  TicketQueue(fs::path queue_dir, LockFolderLog log);
  ~TicketQueue();
  TicketQueue(const TicketQueue&) = delete;
  TicketQueue& operator=(const TicketQueue&) = delete;

  const fs::path& dir() const { return queue_dir_; }

  /// A ticket wanting `resource_ids`, its place fixed now (arrival time). Its file is written
  /// only when the calling thread first waits (publish_own_tickets): a request granted at once
  /// never touches the queue folder, which keeps an uncontended lock cheap. Destroying the
  /// ticket removes its file.
  std::unique_ptr<QueueTicket> enqueue(const std::vector<std::string>& resource_ids,
                                       const HolderInfo& waiter);

  /// The aging of priorities in the queue order (LockBackend::set_priority_aging).
  void set_priority_aging(std::chrono::milliseconds aging);

  /// Called by a waiter before it sleeps: writes the calling thread's unwritten tickets and
  /// touches the others once a second, so that other waiters know it still runs. Only the calling
  /// thread's tickets: each waiter publishes its own, so that an error (BackendError: the ticket
  /// cannot be written) reaches the thread whose request it concerns.
  /// Returns how many tickets the calling thread has (0: it waits without one, see may_wake).
  std::size_t publish_own_tickets();

  /// The wake filter (see watcher.hpp): whether `change` may let one of this backend's waiters
  /// take a device it could not take at its last look at the queue. Each ticket remembers that
  /// look (the live tickets served before it, in queue order, and what they want, and the ids it
  /// may claim); a change matters when it is
  ///  - a lock file event (written, created, removed) of an id some waiter may claim: only the
  ///    head of the queue for that device wakes, not the waiters behind it;
  ///  - a ticket removed that was the only earlier ticket wanting an id some waiter wants (that
  ///    waiter moves to the head for it), or a ticket replaced (it may want less now);
  ///  - anything, for a ticket that has not looked yet, or while a thread waits without a ticket.
  /// A new ticket never matters: it can only hold other waiters back (a higher priority puts it
  /// ahead, never behind). Waiters also look again every safety tick (250 ms), which bounds the
  /// cost of any change this misses (a ticket going stale, aging reordering the queue). Any
  /// thread; takes the tickets' locks.
  bool may_wake(const FolderChange& change);

  /// What this backend's waiters must watch (see watcher.hpp), from their last looks at the
  /// queue: the lock folder while one of them may take a device (claimable ids), per device it
  /// waits for the ticket of the nearest earlier waiter that holds it back
  /// (core `nearest_holding_back`), and everything (folder and queue folder) for a ticket not
  /// looked yet or a thread waiting without a ticket. Any thread; takes the tickets' locks.
  WatchPlan watch_plan();

  /// Counts a thread that waits without any ticket (it is woken by every change meanwhile).
  void ticketless_wait_begins() { ++ticketless_waiters_; }
  void ticketless_wait_ends() { --ticketless_waiters_; }

 private:
  fs::path queue_dir_;
  std::shared_ptr<EmptyQueueCache> empty_queue_;
  std::shared_ptr<QueueWarning> queue_warning_;
  std::shared_ptr<ReadTicketCache> read_tickets_;
  // Milliseconds, shared with the tickets.
  std::shared_ptr<std::atomic<long long>> aging_ms_;
  std::mutex mutex_;
  // The tickets of each waiting thread (see publish_own_tickets), swept past this many threads.
  static constexpr std::size_t kMaxTicketThreads = 64;
  std::map<std::thread::id, std::vector<std::weak_ptr<TicketState>>> tickets_;
  std::atomic<int> ticketless_waiters_{0};

  // The tickets still alive, of every thread.
  std::vector<std::shared_ptr<TicketState>> live_states();
};

/// A ticket of a backend that never queues (the read-only observer): it sees no earlier waiter.
std::unique_ptr<QueueTicket> make_no_ticket();

}  // namespace lockable::folder_backend
