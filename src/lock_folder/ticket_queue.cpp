// The lock folder's fair queue: one ticket file per waiter in `<folder>/.lockable-queue/`, named
// by arrival time, holding the ids the waiter wants and flock-ed by it while it waits. Writing,
// refreshing, reading and sweeping tickets lives here. See ticket_queue.hpp.

#include "lock_folder/ticket_queue.hpp"

#include <lockable/error.hpp>
#include <lockable/lockable.hpp>

#include "core/json_text.hpp"
#include "core/queue_order.hpp"
#include "posix/this_process.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <deque>
#include <iterator>

namespace lockable::folder_backend {
namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kTicketSuffix = ".ticket";

// A waiter touches its ticket (futimens) this often while it waits, and a locked ticket untouched
// for kStaleTicketAge no longer holds later waiters back: its owner is stopped (SIGSTOP, Ctrl-Z)
// or wedged. When the owner runs again its next touch puts it back at its place of arrival.
constexpr auto kTicketRefresh = std::chrono::seconds(1);
constexpr auto kStaleTicketAge = std::chrono::seconds(5);

// A ticket's content: the ids, then the waiter's details as the last element, where older
// versions (which keep only the array's strings) never look.
std::string ticket_text(const std::vector<std::string>& ids, const Json& waiter) {
  Json json(ids);
  if (waiter.is_object()) json.push_back(waiter);
  return detail::dump(json);
}

// The waiter's JSON is made only when its ticket is written: most requests never wait.
std::string ticket_text(const std::vector<std::string>& ids, const HolderInfo& waiter) {
  return ticket_text(ids, waiter.to_json());
}

struct ParsedTicket {
  std::vector<std::string> ids;
  std::optional<HolderInfo> waiter;  // absent in an older version's ticket
};

ParsedTicket parse_ticket(const std::string& text) {
  // A torn or foreign ticket counts as wanting nothing: it must never stall the queue.
  const Json json = Json::parse(text, nullptr, false);
  ParsedTicket ticket;
  if (!json.is_array()) return ticket;
  for (const auto& element : json) {
    if (element.is_string()) {
      ticket.ids.push_back(element.get<std::string>());
    } else if (element.is_object()) {
      ticket.waiter = HolderInfo::from_json(element);
    }
  }
  return ticket;
}

// A ticket's name, `<arrival in ns, 20 digits>-<pid>-<n>.ticket`: its arrival (wall clock), the
// start of the waiter's wait for aging; the epoch for a name of another form.
std::chrono::system_clock::time_point arrival_of(const std::string& name) {
  unsigned long long nanos = 0;
  std::size_t digits = 0;
  for (; digits < name.size() && digits < 20 && name[digits] >= '0' && name[digits] <= '9';
       ++digits) {
    nanos = nanos * 10 + static_cast<unsigned long long>(name[digits] - '0');
  }
  if (digits != 20 || nanos > static_cast<unsigned long long>(LLONG_MAX)) return {};
  return std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::nanoseconds(static_cast<long long>(nanos))));
}

long pid_of(const std::string& name) {
  const auto first = name.find('-');
  if (first == std::string::npos) return 0;
  return std::strtol(name.c_str() + first + 1, nullptr, 10);
}

// The ticket names in the queue folder open as `queue` (see open_folder; invalid: none), in
// arrival order (the names are zero-padded arrival times).
std::vector<std::string> ticket_names(const UniqueFd& queue, bool* any = nullptr) {
  std::vector<std::string> names;
  // A descriptor of its own for the DIR, which owns and closes it; rewound, as a dup shares the
  // reading offset that an earlier listing left at the end.
  const int listed = queue ? ::fcntl(queue.get(), F_DUPFD_CLOEXEC, 0) : -1;
  DIR* dir = listed >= 0 ? ::fdopendir(listed) : nullptr;
  if (dir != nullptr) {
    ::rewinddir(dir);
    while (const dirent* entry = ::readdir(dir)) {
      std::string name = entry->d_name;
      if (is_ticket_name(name)) names.push_back(std::move(name));
    }
    ::closedir(dir);
  } else if (listed >= 0) {
    ::close(listed);
  }
  if (any != nullptr) *any = !names.empty();
  std::sort(names.begin(), names.end());
  return names;
}

// Removes the entry `name` of the queue folder open as `queue` if it is still the file open as
// `fd`: a ticket whose waiter died, or our own. Never another file put in its place.
void remove_ticket(int queue, const std::string& name, int fd) {
  struct stat named {};
  struct stat opened {};
  if (::fstatat(queue, name.c_str(), &named, AT_SYMLINK_NOFOLLOW) == 0 &&
      ::fstat(fd, &opened) == 0 && same_file(named, opened)) {
    ::unlinkat(queue, name.c_str(), 0);
  }
}

}  // namespace

bool is_ticket_name(const std::string& name) { return ends_with(name, kTicketSuffix); }

void make_queue_dir(const fs::path& dir) { make_shared_dir(dir); }

// Remembers that the queue folder held no ticket at a given modification time, so that an
// uncontended lock skips reading the folder (five system calls) while it is provably unchanged.
// Sound only for a modification time older than the file system's coarse clock tick: a ticket
// added later then gets a later time. kQuietAge is far longer than that tick.
class EmptyQueueCache {
 public:
  static constexpr auto kQuietAge = std::chrono::milliseconds(50);

  bool known_empty(const struct stat& folder) const {
    std::lock_guard<std::mutex> guard(mutex_);
    return valid_ && same_time(folder.st_mtim, mtime_);
  }
  // `folder` must be the folder's stat taken before the read that found no ticket.
  void found_empty(const struct stat& folder) {
    timespec now{};
    ::clock_gettime(CLOCK_REALTIME, &now);
    const auto age = std::chrono::seconds(now.tv_sec - folder.st_mtim.tv_sec) +
                     std::chrono::nanoseconds(now.tv_nsec - folder.st_mtim.tv_nsec);
    std::lock_guard<std::mutex> guard(mutex_);
    valid_ = age > kQuietAge;
    mtime_ = folder.st_mtim;
  }

 private:
  static bool same_time(const timespec& a, const timespec& b) {
    return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
  }
  mutable std::mutex mutex_;
  bool valid_ = false;
  timespec mtime_{};
};

// Says once per backend that the queue folder cannot take our tickets.
struct QueueWarning {
  std::atomic<bool> said{false};
  LockFolderLog log;
};

// A ticket served before a waiter's, as the waiter last read it.
struct EarlierTicket {
  std::string name;
  std::vector<std::string> wanted;
  dev_t dev;  // its file, which the waiter may watch
  ino_t ino;
};

// A waiter's ticket. Its file is written only when the waiter first waits (see
// `TicketQueue::publish_own_tickets`): a request granted at once never touches the queue
// folder, which keeps an uncontended lock cheap. The name (arrival time) is fixed at enqueue, so a
// late write still puts the waiter at its place of arrival.
struct TicketState {
  std::mutex mutex;
  std::shared_ptr<EmptyQueueCache> empty_queue;
  std::shared_ptr<QueueWarning> warning;
  fs::path queue_dir;
  std::string name;
  std::vector<std::string> wanted;
  HolderInfo waiter;  // written after the ids
  QueuePlace place;
  std::shared_ptr<const std::atomic<long long>> aging_ms;
  UniqueFd fd;     // invalid while unpublished, and when the queue folder refused the ticket
  UniqueFd queue;  // the queue folder `fd`'s ticket is in (see open_folder), while `fd` is valid
  bool published = false;
  bool closed = false;
  Clock::time_point touched{};
  // The waiter's last look at the queue (see TicketQueue::may_wake): the live tickets served
  // before it, in queue order, and the ids of `wanted` that none of them wants.
  bool looked = false;
  std::vector<EarlierTicket> earlier;
  std::vector<std::string> claimable;

  // Records a look at the queue. Caller holds `mutex`.
  void remember_look(std::vector<EarlierTicket> seen) {
    std::vector<std::vector<std::string>> wants;
    wants.reserve(seen.size());
    for (const auto& ticket : seen) wants.push_back(ticket.wanted);
    claimable = claimable_ids(wanted, wants);
    earlier = std::move(seen);
    looked = true;
  }

  // Adds what this waiter must watch to `plan` (see TicketQueue::watch_plan). Caller holds
  // `mutex`.
  void plan_watches(WatchPlan& plan) const {
    if (closed) return;
    if (!looked) {
      plan.folder = plan.queue = true;
      return;
    }
    if (!claimable.empty()) plan.folder = true;
    std::vector<std::vector<std::string>> wants;
    wants.reserve(earlier.size());
    for (const auto& ticket : earlier) wants.push_back(ticket.wanted);
    for (const auto index : nearest_holding_back(wanted, wants)) {
      const auto& ticket = earlier[index];
      const bool planned = std::any_of(plan.tickets.begin(), plan.tickets.end(),
                                       [&](const auto& t) { return t.name == ticket.name; });
      if (!planned) plan.tickets.push_back(TicketWatch{ticket.name, ticket.dev, ticket.ino});
    }
  }

  // See TicketQueue::may_wake. A removed ticket also leaves the remembered look, which then
  // stays exact without a new look at the folder: the waiters behind it that do not move up to the
  // head keep sleeping, and still wake when they do later. Caller holds `mutex`.
  bool may_wake(const FolderChange& change) {
    if (closed) return false;
    if (!looked) return true;
    if (!change.ticket) {
      const std::string id = change.name.substr(0, change.name.size() - 4);  // less ".pid"
      return std::find(claimable.begin(), claimable.end(), id) != claimable.end();
    }
    const auto gone = std::find_if(earlier.begin(), earlier.end(),
                                   [&](const auto& ticket) { return ticket.name == change.name; });
    if (gone == earlier.end()) return false;  // a later or a new ticket holds nobody back here
    if (!change.removed) return true;         // replaced: it may want less now
    earlier.erase(gone);
    const auto before = claimable.size();
    remember_look(std::move(earlier));
    return claimable.size() > before;
  }

  // Writes the ticket file if it is not there yet, else touches it once per kTicketRefresh so
  // that readers know its waiter still runs. Caller holds `mutex` and is the waiting thread.
  void publish_or_touch_locked() {
    if (closed) return;
    const auto now = Clock::now();
    if (!published) {
      write_locked();
      published = true;
      touched = now;
    } else if (fd && now - touched >= kTicketRefresh) {
      ::futimens(fd.get(), nullptr);  // IN_ATTRIB, which nobody watches on the queue folder
      touched = now;
    }
  }

  // A written ticket: `fd` locks it, in the folder open as `queue`.
  struct Written {
    UniqueFd fd;
    UniqueFd queue;
  };

  // Creates `<queue_dir>/<name>` holding `ids`, locked by the returned descriptor. Returns
  // invalid descriptors, with one warning per backend, when this account may not write the queue
  // folder or it is not a folder of its own (a symlink another account planted): the waiter then
  // waits without a place in the queue rather than not at all.
  static Written create_locked(const fs::path& queue_dir, const std::string& name,
                               const std::string& content, QueueWarning& warning) {
    static std::atomic<unsigned long> counter{0};
    const std::string temp = "." + name + "." + std::to_string(counter++) + ".tmp";
    UniqueFd queue;
    UniqueFd fd;
    for (int attempt = 0; attempt < 2 && !fd; ++attempt) {
      queue = open_folder(queue_dir);
      if (!queue && errno == ENOENT) {
        make_queue_dir(queue_dir);  // someone removed the queue folder (cleaning /tmp)
        queue = open_folder(queue_dir);
      }
      if (!queue) break;
      // 0644: every account reads the queue, only the waiter changes its own ticket. ENOENT:
      // the folder went between the open and this create; once more with the new one.
      fd = create_shared_at(queue.get(), temp.c_str(), O_RDWR, 0644);
      if (!fd && errno != ENOENT) break;
    }
    const int error = errno;
    // A symlink is never followed (another account may have planted it); open_folder says
    // ENOTDIR (or ELOOP) for it. A file in the folder's place is thrown below, as any error.
    struct stat entry {};
    const bool link = !queue && (error == ENOTDIR || error == ELOOP) &&
                      ::lstat(queue_dir.c_str(), &entry) == 0 && S_ISLNK(entry.st_mode);
    if (!fd && (error == EACCES || error == EPERM || error == EROFS || link)) {
      if (!warning.said.exchange(true) && warning.log) {
        warning.log("lockable: warning: cannot queue in " + queue_dir.string() + " (" +
                    (link ? std::string("a symbolic link, not a folder") : errno_text(error)) +
                    "), so waiting without a place in the fair queue: later arrivals may be "
                    "served first; " +
                    (link ? "remove " + queue_dir.string() + " (lockable makes the folder)"
                          : "have its owner or root run chmod 1777 " + queue_dir.string()));
      }
      return Written{};
    }
    if (!fd) {
      throw BackendError("cannot create a queue ticket in " + queue_dir.string() + " (" +
                         errno_text(error) + "); remove " + queue_dir.string() +
                         " if it is not a folder, or pass another --lock-folder");
    }
    ::flock(fd.get(), LOCK_EX);  // nobody else knows the temp name: cannot block
    const bool written = write_all(fd.get(), content);
    if (!written || ::renameat(queue.get(), temp.c_str(), queue.get(), name.c_str()) != 0) {
      const int write_error = errno;
      ::unlinkat(queue.get(), temp.c_str(), 0);
      throw BackendError("cannot write the queue ticket " + (queue_dir / name).string() + " (" +
                         errno_text(write_error) + "); free space in " + queue_dir.string());
    }
    return Written{std::move(fd), std::move(queue)};
  }

  // Writes the ticket anew; on an error (thrown) the one in place stays. Caller holds `mutex`.
  void write_locked() {
    auto written = create_locked(queue_dir, name, ticket_text(wanted, waiter), *warning);
    fd = std::move(written.fd);
    queue = std::move(written.queue);
  }
};

// The tickets a backend's waiters have read, by name, shared by all of its requests: a new
// request (a process asking again right after its release) would otherwise open and read every
// earlier ticket afresh. A ticket read before is still the same while its inode stays locked (a
// changed ticket is a new inode, and its waiter unlocks the old one).
struct ReadTicketCache {
  // Bounds the descriptors one backend keeps open; tickets past it are read each time.
  static constexpr std::size_t kMaxReadTickets = 256;
  struct ReadTicket {
    UniqueFd fd;  // read-only: closing it emits no event that waiters watch
    std::vector<std::string> wanted;
    QueuePlace place;  // its priority and arrival
    timespec mtime;    // as last seen
    dev_t dev;         // its file, which the waiters behind it may watch
    ino_t ino;
  };
  std::mutex mutex;
  std::map<std::string, ReadTicket> tickets;
};

namespace {

class FolderTicket final : public QueueTicket {
 public:
  FolderTicket(std::shared_ptr<TicketState> state, std::shared_ptr<ReadTicketCache> read)
      : state_(std::move(state)),
        queue_dir_(state_->queue_dir),
        name_(state_->name),
        read_(std::move(read)) {}
  ~FolderTicket() override {
    std::lock_guard<std::mutex> guard(state_->mutex);
    state_->closed = true;
    if (state_->fd) {
      remove_ticket(state_->queue.get(), name_, state_->fd.get());  // IN_DELETE: the next moves up
    }
    state_->fd.reset();
    state_->queue.reset();
  }

  void update_wanted(const std::vector<std::string>& resource_ids) override {
    std::lock_guard<std::mutex> guard(state_->mutex);
    state_->wanted = resource_ids;
    if (state_->fd) {
      // Same name (same place in the queue), new inode locked before it becomes visible, so a
      // reader never sees a torn or unlocked ticket.
      state_->write_locked();
      state_->touched = Clock::now();
    }
  }

  std::vector<std::vector<std::string>> wanted_by_earlier_waiters() override {
    struct stat folder {};
    const bool have_folder =
        ::fstatat(AT_FDCWD, queue_dir_.c_str(), &folder, AT_SYMLINK_NOFOLLOW) == 0 &&
        S_ISDIR(folder.st_mode);
    if (have_folder && state_->empty_queue->known_empty(folder)) {
      std::lock_guard<std::mutex> guard(state_->mutex);
      state_->remember_look({});
      return {};
    }
    bool any_ticket = false;
    const UniqueFd queue = open_folder(queue_dir_);
    const auto names = ticket_names(queue, &any_ticket);
    if (have_folder && !any_ticket) state_->empty_queue->found_empty(folder);
    timespec now{};
    ::clock_gettime(CLOCK_REALTIME, &now);
    std::lock_guard<std::mutex> read_guard(read_->mutex);
    auto& read_tickets_ = read_->tickets;
    using ReadTicket = ReadTicketCache::ReadTicket;
    // Tickets past kMaxReadTickets, kept for this call only (std::deque: stable addresses).
    std::deque<ReadTicket> overflow;
    // Every live waiter, later arrivals too (a higher priority may put one ahead), and this one
    // at its place of arrival, published or not.
    std::vector<QueuePlace> places;
    std::vector<const ReadTicket*> ticket_of;
    std::vector<const std::string*> name_of;
    std::size_t mine = 0;
    bool mine_placed = false;
    const auto place_mine = [&] {
      mine = places.size();
      mine_placed = true;
      places.push_back(state_->place);
      ticket_of.push_back(nullptr);
      name_of.push_back(nullptr);
    };
    const auto add = [&](const ReadTicket& ticket, const std::string& name) {
      places.push_back(ticket.place);
      ticket_of.push_back(&ticket);
      name_of.push_back(&name);
    };
    for (const auto& name : names) {
      if (name == name_) continue;
      if (!mine_placed && name > name_) place_mine();
      // A ticket read before is still the same while its inode stays locked (a changed ticket
      // is a new inode, and its waiter unlocks the old one): one flock instead of open, fstat,
      // flock, read and close, for every other waiter, on every wake-up.
      const auto cached = read_tickets_.find(name);
      if (cached != read_tickets_.end()) {
        auto& ticket = cached->second;
        if (::flock(ticket.fd.get(), LOCK_SH | LOCK_NB) != 0) {
          // A touch only moves the time forward: the time seen last proves the ticket fresh
          // until it is kStaleTicketAge old, so most wake-ups need no fstat.
          struct stat st {};
          if (stale(ticket.mtime, now) && ::fstat(ticket.fd.get(), &st) == 0) {
            ticket.mtime = st.st_mtim;
          }
          if (!stale(ticket.mtime, now)) add(ticket, name);
          continue;
        }
        read_tickets_.erase(cached);  // replaced or abandoned: read the path afresh
      }
      struct stat st {};
      int error = 0;
      // Not a regular file (a FIFO, a directory): nobody's ticket, and never opened blocking.
      UniqueFd fd = open_regular_at(queue.get(), name.c_str(), O_RDONLY, st, error);
      if (!fd) continue;
      if (::flock(fd.get(), LOCK_SH | LOCK_NB) == 0) {
        // Nobody holds it: its waiter died without cleaning up.
        remove_ticket(queue.get(), name, fd.get());
        continue;
      }
      auto parsed = parse_ticket(read_all(fd.get()));
      ReadTicket ticket{std::move(fd),
                        std::move(parsed.ids),
                        QueuePlace{parsed.waiter ? parsed.waiter->priority : 0, arrival_of(name)},
                        st.st_mtim,
                        st.st_dev,
                        st.st_ino};
      if (read_tickets_.size() < ReadTicketCache::kMaxReadTickets) {
        const auto [it, inserted] = read_tickets_.emplace(name, std::move(ticket));
        if (!stale(st.st_mtim, now)) add(it->second, name);
      } else {
        overflow.push_back(std::move(ticket));
        if (!stale(st.st_mtim, now)) add(overflow.back(), name);
      }
    }
    if (!mine_placed) place_mine();
    const auto aging = std::chrono::milliseconds(state_->aging_ms->load());
    const auto wall_now = std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(
            std::chrono::seconds(now.tv_sec) + std::chrono::nanoseconds(now.tv_nsec)));
    std::vector<std::vector<std::string>> wanted;
    std::vector<EarlierTicket> seen;
    for (const auto index : served_before(places, mine, wall_now, aging)) {
      const ReadTicket& ticket = *ticket_of[index];
      wanted.push_back(ticket.wanted);
      seen.push_back(EarlierTicket{*name_of[index], ticket.wanted, ticket.dev, ticket.ino});
    }
    // Forget waiters that left (served or gone), closing their descriptors.
    for (auto it = read_tickets_.begin(); it != read_tickets_.end();) {
      it = std::binary_search(names.begin(), names.end(), it->first) ? std::next(it)
                                                                     : read_tickets_.erase(it);
    }
    {
      std::lock_guard<std::mutex> guard(state_->mutex);
      state_->remember_look(std::move(seen));
    }
    return wanted;
  }

 private:
  // A locked ticket its waiter has not touched for kStaleTicketAge: the waiter is stopped or
  // wedged, and must not hold later waiters back until it runs again.
  static bool stale(const timespec& mtime, const timespec& now) {
    const auto age = std::chrono::seconds(now.tv_sec - mtime.tv_sec) +
                     std::chrono::nanoseconds(now.tv_nsec - mtime.tv_nsec);
    return age > kStaleTicketAge;
  }

  std::shared_ptr<TicketState> state_;
  fs::path queue_dir_;
  std::string name_;
  std::shared_ptr<ReadTicketCache> read_;
};

// A ticket of a backend that never queues.
class NoTicket final : public QueueTicket {
 public:
  void update_wanted(const std::vector<std::string>& /*resource_ids*/) override {}
  std::vector<std::vector<std::string>> wanted_by_earlier_waiters() override { return {}; }
};

}  // namespace

TicketQueue::TicketQueue(fs::path queue_dir, LockFolderLog log)
    : queue_dir_(std::move(queue_dir)),
      empty_queue_(std::make_shared<EmptyQueueCache>()),
      queue_warning_(std::make_shared<QueueWarning>()),
      read_tickets_(std::make_shared<ReadTicketCache>()),
      aging_ms_(std::make_shared<std::atomic<long long>>(
          std::chrono::duration_cast<std::chrono::milliseconds>(Options{}.priority_aging)
              .count())) {
  make_queue_dir(queue_dir_);
  queue_warning_->log = std::move(log);
}

TicketQueue::~TicketQueue() = default;

void TicketQueue::set_priority_aging(std::chrono::milliseconds aging) {
  aging_ms_->store(aging.count());
}

std::unique_ptr<QueueTicket> TicketQueue::enqueue(const std::vector<std::string>& resource_ids,
                                                  const HolderInfo& waiter) {
  static std::atomic<unsigned long> counter{0};
  timespec now{};
  ::clock_gettime(CLOCK_REALTIME, &now);
  const unsigned long long nanos = static_cast<unsigned long long>(now.tv_sec) * 1000000000ULL +
                                   static_cast<unsigned long long>(now.tv_nsec);
  char stamp[32];
  std::snprintf(stamp, sizeof stamp, "%020llu", nanos);
  const std::string name = std::string(stamp) + "-" + std::to_string(posix::this_process_id()) +
                           "-" + std::to_string(counter++) + kTicketSuffix;
  auto state = std::make_shared<TicketState>();
  state->empty_queue = empty_queue_;
  state->warning = queue_warning_;
  state->queue_dir = queue_dir_;
  state->name = name;
  state->wanted = resource_ids;
  state->waiter = waiter;
  state->place = QueuePlace{waiter.priority, arrival_of(name)};
  state->aging_ms = aging_ms_;
  {
    std::lock_guard<std::mutex> guard(mutex_);
    auto& mine = tickets_[std::this_thread::get_id()];
    mine.erase(
        std::remove_if(mine.begin(), mine.end(), [](const auto& weak) { return weak.expired(); }),
        mine.end());
    mine.push_back(state);
    // Forget threads whose tickets are all gone (a thread per request leaves one entry each).
    if (tickets_.size() > kMaxTicketThreads) {
      for (auto it = tickets_.begin(); it != tickets_.end();) {
        const bool gone = std::all_of(it->second.begin(), it->second.end(),
                                      [](const auto& weak) { return weak.expired(); });
        it = gone ? tickets_.erase(it) : std::next(it);
      }
    }
  }
  return std::make_unique<FolderTicket>(std::move(state), read_tickets_);
}

std::size_t TicketQueue::publish_own_tickets() {
  std::vector<std::shared_ptr<TicketState>> mine;
  {
    std::lock_guard<std::mutex> guard(mutex_);
    const auto it = tickets_.find(std::this_thread::get_id());
    if (it == tickets_.end()) return 0;
    auto& weaks = it->second;
    for (auto weak = weaks.begin(); weak != weaks.end();) {
      if (auto state = weak->lock()) {
        mine.push_back(std::move(state));
        ++weak;
      } else {
        weak = weaks.erase(weak);
      }
    }
    if (weaks.empty()) tickets_.erase(it);
  }
  for (const auto& state : mine) {
    std::lock_guard<std::mutex> guard(state->mutex);
    state->publish_or_touch_locked();
  }
  return mine.size();
}

WatchPlan TicketQueue::watch_plan() {
  WatchPlan plan;
  plan.folder = plan.queue = ticketless_waiters_.load() > 0;
  for (const auto& state : live_states()) {
    std::lock_guard<std::mutex> guard(state->mutex);
    state->plan_watches(plan);
  }
  return plan;
}

std::vector<std::shared_ptr<TicketState>> TicketQueue::live_states() {
  std::vector<std::shared_ptr<TicketState>> states;
  std::lock_guard<std::mutex> guard(mutex_);
  for (const auto& [thread, weaks] : tickets_) {
    for (const auto& weak : weaks) {
      if (auto state = weak.lock()) states.push_back(std::move(state));
    }
  }
  return states;
}

bool TicketQueue::may_wake(const FolderChange& change) {
  if (ticketless_waiters_.load() > 0) return true;
  for (const auto& state : live_states()) {
    std::lock_guard<std::mutex> guard(state->mutex);
    if (state->may_wake(change)) return true;
  }
  return false;
}

std::unique_ptr<QueueTicket> make_no_ticket() { return std::make_unique<NoTicket>(); }

std::vector<QueuedRequest> read_queue(const fs::path& queue_dir) {
  std::vector<QueuedRequest> queued;
  const UniqueFd queue = open_folder(queue_dir);
  for (const auto& name : ticket_names(queue)) {
    struct stat st {};
    int error = 0;
    UniqueFd fd = open_regular_at(queue.get(), name.c_str(), O_RDONLY, st, error);
    if (!fd) continue;
    if (::flock(fd.get(), LOCK_SH | LOCK_NB) == 0) continue;  // its waiter died; closing unlocks
    auto parsed = parse_ticket(read_all(fd.get()));
    QueuedRequest request;
    if (parsed.waiter) request.waiter = std::move(*parsed.waiter);
    if (request.waiter.pid == 0) request.waiter.pid = pid_of(name);
    request.waiter.since = arrival_of(name);
    request.wanted = std::move(parsed.ids);
    queued.push_back(std::move(request));
  }
  return queued;
}

}  // namespace lockable::folder_backend
