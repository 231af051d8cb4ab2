// The local lock folder backend. See include/lockable/lock_folder.hpp for what it promises and
// the README section "Lock folder protocol" for the file dance and why it looks the way it does.
//
// Waking without feedback loops: waiters learn of releases through inotify. A probe must never
// emit an event that waiters watch, or waiters would wake each other forever. So probes flock()
// a cached O_RDONLY descriptor (its close emits IN_CLOSE_NOWRITE, which nobody watches), and
// only a holder opens the file for writing; the holder's final close() happens after the unlock
// and emits the IN_CLOSE_WRITE that wakes the waiters.
//
// The parts, each in its own file next to this one (the template for other file-based backends):
//   descriptors.{hpp,cpp}   opening and checking folder entries, read/write loops
//   pid_file.{hpp,cpp}      the `<id>.pid` / `<id>.pid.json` protocol and the pid-reuse rule
//   ticket_queue.{hpp,cpp}  the fair queue's ticket files
//   watcher.{hpp,cpp}       inotify wake-ups and the polling fallback
// This file is the backend itself: the in-process claim registry, the probe descriptors, the
// locking dance (flock, inode checks against a concurrent unlink), held locks and the observer.

#include <lockable/error.hpp>
#include <lockable/lock_folder.hpp>

#include "core/json_text.hpp"
#include "lock_folder/descriptors.hpp"
#include "lock_folder/held_files.hpp"
#include "lock_folder/pid_file.hpp"
#include "lock_folder/reservation_file.hpp"
#include "lock_folder/ticket_queue.hpp"
#include "lock_folder/watcher.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <utility>

namespace lockable::folder_backend {
namespace {

void warn_stderr(const std::string& line) { std::cerr << line << std::endl; }

// Ids held by this process, per lock folder: flock() excludes other open file descriptions even in
// one process, but this makes the in-process answer immediate and independent of which backend
// object (and cached descriptor) a thread uses.
class Registry {
 public:
  static Registry& instance() {
    static auto* registry = new Registry();  // never destroyed: held locks may outlive statics
    return *registry;
  }
  bool claim(const std::string& key) {
    std::lock_guard<std::mutex> guard(mutex_);
    return held_.insert(key).second;
  }
  void drop(const std::string& key) {
    std::lock_guard<std::mutex> guard(mutex_);
    held_.erase(key);
  }

 private:
  std::mutex mutex_;
  std::set<std::string> held_;
};

// A probe descriptor and the file it opened: the inode of a descriptor never changes, so the
// lock compares the path's file with it without an fstat() of the probe.
struct Probe {
  UniqueFd fd;
  dev_t dev = 0;
  ino_t ino = 0;
};

using Log = LockFolderLog;

// What a backend keeps of one id across locks: its names, made once rather than on every lock,
// and the descriptors a released lock hands back instead of closing them, which spares the next
// lock an open() and a close(). The descriptors are used only by the thread that holds the id's
// claim in Registry (a held lock gives its probe back before it drops the claim).
struct IdFiles {
  IdFiles(const fs::path& folder, const std::string& id_, Log log_)
      : id(id_),
        pid(pid_path(folder, id_)),
        reservation(reservation_path(folder, id_)),
        key(folder.string() + '\0' + id_),
        log(std::move(log_)) {}
  const std::string id;
  const fs::path pid;          // `<id>.pid`
  const fs::path reservation;  // `<id>.reserved.json`
  const std::string key;       // in Registry
  const Log log;
  Probe probe;       // invalid while a lock holds it (and before the first lock)
  UniqueFd details;  // the write descriptor of `<id>.pid.json` (see write_details)
};

// The backend's IdFiles by id, shared with held locks, which hand their probe back to it.
struct ProbeCache {
  std::mutex mutex;  // guards the map; the IdFiles themselves go by the claim
  std::map<std::string, std::shared_ptr<IdFiles>> ids;

  std::shared_ptr<IdFiles> files_of(const fs::path& folder, const std::string& id, const Log& log) {
    std::lock_guard<std::mutex> guard(mutex);
    auto& slot = ids[id];
    if (!slot) slot = std::make_shared<IdFiles>(folder, id, log);
    return slot;
  }
};

// A folder every account may write without the sticky bit lets any account delete or replace
// another's lock files, and so take its devices (and, with rename(), plant any file there). The
// sentence `lockable status` and the first backend say of it, else "".
std::string not_sticky_problem(const fs::path& folder) {
  struct stat st {};
  if (::stat(folder.c_str(), &st) != 0 || (st.st_mode & S_IWOTH) == 0 ||
      (st.st_mode & S_ISVTX) != 0) {
    return "";
  }
  return folder.string() +
         " is writable by every account but not sticky, so any account can remove or replace "
         "the lock files of others and get their devices; make it sticky: chmod +t " +
         folder.string();
}

// Said once per folder per process: a program makes many backends on one folder.
void warn_if_not_sticky(const fs::path& folder, const Log& log) {
  const auto problem = not_sticky_problem(folder);
  if (problem.empty()) return;
  static std::mutex mutex;
  static auto* warned = new std::set<std::string>();  // never destroyed, as the registry
  {
    std::lock_guard<std::mutex> guard(mutex);
    if (!warned->insert(folder.string()).second) return;
  }
  log("lockable: warning: lock folder " + problem);
}

// What `lockable status` says is wrong with `folder` (LockBackend::problems): the entries this
// library makes there, found to be something else (another account may have planted a symlink,
// which is never followed), and a folder every account may write without the sticky bit.
std::vector<std::string> folder_problems(const fs::path& folder) {
  std::vector<std::string> problems;
  if (auto problem = not_sticky_problem(folder); !problem.empty()) {
    problems.push_back(std::move(problem));
  }
  // A symlink is never followed; a file in the queue folder's place fails every wait instead.
  const auto not_a_folder = [&](const fs::path& path, const std::string& link_effect,
                                const std::string& file_effect) {
    struct stat entry {};
    if (::lstat(path.c_str(), &entry) != 0 || S_ISDIR(entry.st_mode)) return;
    const bool link = S_ISLNK(entry.st_mode);
    problems.push_back(path.string() +
                       (link ? " is a symbolic link (never followed), so " + link_effect
                             : " is not a folder, so " + file_effect) +
                       "; remove it (lockable makes the folder)");
  };
  not_a_folder(folder / kQueueDir,
               "waiters cannot queue fairly: later arrivals may be served first",
               "every wait for a busy device fails with an error");
  const std::string read_all = "every run reads the whole lock folder to find reservations";
  not_a_folder(reservation_index_dir(folder), read_all, read_all);
  return problems;
}

// The standing reservations of `ids`; each says when its holder process (which keeps the Python
// package off) is missing: nobody holds the device although it is reserved.
std::vector<std::optional<Reservation>> read_reservations(const fs::path& folder,
                                                          const std::vector<std::string>& ids) {
  std::vector<std::optional<Reservation>> out;
  out.reserve(ids.size());
  const auto now = std::chrono::system_clock::now();
  for (const auto& id : ids) {
    if (!invalid_id_reason(id).empty()) {
      out.emplace_back();
      continue;
    }
    auto file = read_reservation(folder, id);
    if (!file || file->reservation.expired(now)) {
      out.emplace_back();
      continue;
    }
    if (file->reservation.problem.empty() && !read_holder(folder, id)) {
      file->reservation.problem =
          "no reservation holder process keeps the Python package off it (it ended, e.g. at a "
          "reboot); any lockable run on this host, or `lockable reserve " +
          id + " --reason ...` again, starts it";
    }
    out.push_back(std::move(file->reservation));
  }
  return out;
}

class FolderHeldLock final : public HeldLock {
 public:
  // `write_fd` is invalid when the file belongs to another account that left it read-only for us
  // (see LockFolderBackend::lock_file).
  // `locked` is the file `lock_fd` locks; `holder_json` the details written for it. `files` is
  // the id's entry in `probes`, which takes the probe back on release while it lives.
  FolderHeldLock(UniqueFd lock_fd, const struct stat& locked, UniqueFd write_fd,
                 std::shared_ptr<IdFiles> files, std::string holder_json,
                 std::weak_ptr<ProbeCache> probes)
      : lock_fd_(std::move(lock_fd)),
        write_fd_(std::move(write_fd)),
        files_(std::move(files)),
        path_(files_->pid),
        id_(files_->id),
        probes_(std::move(probes)),
        watch_(path_, id_, locked.st_dev, locked.st_ino, std::move(holder_json), loss_) {}
  ~FolderHeldLock() override { release(); }

  // The file we lock is no longer the one the path names: someone removed or replaced it, and
  // the next locker locks the new file. Costs two system calls per call, none while locking;
  // the held-file checker (held_files.hpp) asks the same question every 100 ms. Whoever notices
  // first reports the loss, so that the handler never lags behind a lost() that said true.
  bool lost() const noexcept override {
    if (loss_->lost()) return true;
    {
      std::lock_guard<std::mutex> guard(mutex_);
      if (released_ || same_inode(lock_fd_.get(), path_)) return false;
    }
    try {
      check_held_files_now();  // the handler runs on this thread
    } catch (...) {
      // Out of memory for the reason: the checker thread reports it.
    }
    return true;
  }

  void on_lock_loss(LockLossHandler handler) override {
    handler_set_ = true;
    loss_->set_handler(std::move(handler));
  }

  void release() noexcept override {
    // Before taking mutex_: a loss handler running now may call lost().
    loss_->disarm();
    watch_.stop();  // the checker no longer looks at this lock
    std::lock_guard<std::mutex> guard(mutex_);
    if (released_) return;
    released_ = true;
    // A removed or replaced file has no link left (one fstat; the full check is in lost()).
    struct stat st {};
    const bool removed = ::fstat(lock_fd_.get(), &st) == 0 && st.st_nlink == 0;
    // Empty the pid file so that the Python package does not take our (live) pid for a holder.
    if (write_fd_) clear_pid(write_fd_.get());
    ::flock(lock_fd_.get(), LOCK_UN);
    // Read-only, so neither keeping nor closing it emits an event that waiters watch.
    const auto probes = probes_.lock();
    if (probes && !removed && !files_->probe.fd) {
      files_->probe = Probe{std::move(lock_fd_), st.st_dev, st.st_ino};  // we hold the claim
    } else {
      lock_fd_.reset();
    }
    // Drop the in-process claim before the wake-up event below, or a thread of this process woken
    // by it would still find the id claimed and sleep until the safety tick.
    Registry::instance().drop(files_->key);
    write_fd_.reset();  // IN_CLOSE_WRITE: wakes the waiters, after the unlock
    // A loss the checker reported to a loss handler was said there; this is for a holder
    // without one, and a removal in the last moments before the release.
    if (removed && !(handler_set_ && loss_->lost()) && files_->log) {
      try {
        files_->log("lockable: warning: " + path_.string() +
                    " was removed or replaced while this process held " + id_ +
                    ", so another process may have used " + id_ +
                    " at the same time; stop the program that deletes files in the lock folder (a "
                    "temp cleaner?) or use another --lock-folder");
      } catch (...) {
        // release() never throws; the warning is lost.
      }
    }
  }

 private:
  mutable std::mutex mutex_;
  bool released_ = false;
  UniqueFd lock_fd_;
  UniqueFd write_fd_;
  std::shared_ptr<IdFiles> files_;  // keeps path_ and id_ (which the checker reads) alive
  const fs::path& path_;
  const std::string& id_;
  std::weak_ptr<ProbeCache> probes_;
  std::shared_ptr<LockLossSignal> loss_ = std::make_shared<LockLossSignal>();
  std::atomic<bool> handler_set_{false};
  HeldFileWatch watch_;  // last: it refers to path_, id_ and loss_
};

class LockFolderBackend final : public LockBackend {
 public:
  LockFolderBackend(fs::path folder, Log log) : log_(log ? std::move(log) : Log(warn_stderr)) {
    if (folder.empty()) folder = default_lock_folder();
    std::error_code error;
    fs::create_directories(folder, error);
    if (error || !fs::is_directory(folder)) {
      throw BackendError("cannot create lock folder " + folder.string() + " (" +
                         (error ? error.message() : std::string("not a directory")) +
                         "); pass a writable --lock-folder or create it");
    }
    if (::access(folder.c_str(), W_OK | X_OK) != 0) {
      throw BackendError("lock folder " + folder.string() + " is not writable (" +
                         errno_text(errno) +
                         "); pass another --lock-folder, or have its owner make it writable for "
                         "every account that locks there (chmod 1777 " +
                         folder.string() + ")");
    }
    folder_ = fs::canonical(folder, error);
    if (error) folder_ = fs::absolute(folder);
    warn_if_not_sticky(folder_, log_);
    queue_ = std::make_unique<TicketQueue>(folder_ / kQueueDir, log_);
  }

  std::unique_ptr<HeldLock> try_lock(const Resource& resource, const HolderInfo& holder) override {
    return lock(resource.id, holder, true);
  }

  // try_lock; `honour_reservation` false for the reservation's own holder process.
  std::unique_ptr<HeldLock> lock(const std::string& id, const HolderInfo& holder,
                                 bool honour_reservation) {
    if (const auto why = invalid_id_reason(id); !why.empty()) {
      // As JSON, shortened: the id may hold a NUL (which would end what()) or be very long.
      throw BackendError("resource id " + detail::shown(Json(id)) +
                         " cannot name a lock file: " + why + "; fix the id in the resources");
    }
    auto files = probes_->files_of(folder_, id, log_);
    if (!Registry::instance().claim(files->key)) return nullptr;
    try {
      auto lock = lock_file(files, holder, honour_reservation);
      if (!lock) Registry::instance().drop(files->key);
      return lock;
    } catch (...) {
      Registry::instance().drop(files->key);
      throw;
    }
  }

  void wait_for_change(Clock::time_point deadline) override {
    if (queue_->publish_own_tickets() > 0) {
      watcher().wait(deadline);
      return;
    }
    queue_->ticketless_wait_begins();
    try {
      watcher().wait(deadline);
    } catch (...) {
      queue_->ticketless_wait_ends();
      throw;
    }
    queue_->ticketless_wait_ends();
  }

  std::unique_ptr<QueueTicket> enqueue(const std::vector<std::string>& resource_ids,
                                       const HolderInfo& waiter) override {
    return queue_->enqueue(resource_ids, waiter);
  }

  std::optional<HolderInfo> holder_of(const std::string& resource_id) override {
    return read_holder(folder_, resource_id);
  }

  std::vector<QueuedRequest> queued() override { return read_queue(queue_->dir()); }

  void set_priority_aging(std::chrono::milliseconds aging) override {
    queue_->set_priority_aging(aging);
  }

  std::optional<std::string> lost_hold(const std::string& resource_id) override {
    return read_lost_note(folder_, resource_id);
  }

  std::string describe() const override { return "lock folder " + folder_.string(); }
  std::vector<std::string> problems() const override { return folder_problems(folder_); }

  void reserve(const std::string& resource_id, const Reservation& reservation) override {
    check_id(resource_id);
    ReservationFile file{reservation, ""};
    // A standing reservation keeps its token, so that its holder process keeps the device.
    if (const auto current = read_reservation(folder_, resource_id)) file.token = current->token;
    if (file.token.empty()) file.token = new_reservation_token();
    write_reservation(folder_, resource_id, file);
    reindex_reservations(folder_);  // one an older version wrote: its holder is restarted too
  }

  void unreserve(const std::string& resource_id) override {
    check_id(resource_id);
    remove_reservation(folder_, resource_id, "");
    reindex_reservations(folder_);
  }

  std::vector<std::optional<Reservation>> reservations_of(
      const std::vector<std::string>& ids) override {
    return read_reservations(folder_, ids);
  }

  std::optional<HolderInfo> force_release(const std::string& resource_id,
                                          const std::string& /*reason*/) override {
    // A flock cannot be taken from a living process: name it (the CLI's --kill ends it).
    check_id(resource_id);
    return read_holder(folder_, resource_id);
  }

  const fs::path& folder() const { return folder_; }

 private:
  static void check_id(const std::string& id) {
    if (const auto why = invalid_id_reason(id); !why.empty()) {
      throw BackendError("resource id \"" + id + "\" cannot name a lock file: " + why +
                         "; fix the id in the resources");
    }
  }

  // Opens (and caches) the probe descriptor of `files`, creating the file when missing; sets
  // `st`'s st_dev and st_ino to its file. Caller holds the registry claim for the id, so no other
  // thread of this process uses the same entry meanwhile. Throws ResourceUnusableError when the
  // entry is not a usable regular file.
  int probe_fd(IdFiles& files, struct stat& st) {
    if (files.probe.fd) {
      st.st_dev = files.probe.dev;
      st.st_ino = files.probe.ino;
      return files.probe.fd.get();
    }
    const fs::path& path = files.pid;
    for (int attempt = 0; attempt < 10; ++attempt) {
      int error = 0;
      UniqueFd fd = open_regular(path, probe_flags_, st, error);
      if (fd) {
        files.probe = Probe{std::move(fd), st.st_dev, st.st_ino};
        return files.probe.fd.get();
      }
      if (error != ENOENT) throw ResourceUnusableError(files.id, unusable_reason(path, error));
      // Created writable for every account, then reopened read-only as every probe is: this
      // one close emits IN_CLOSE_WRITE, once per file's life, not per probe.
      if (!create_shared(path, O_RDWR, 0666) && errno != EEXIST) {
        throw BackendError("cannot create lock file " + path.string() + " (" + errno_text(errno) +
                           "); pass another --lock-folder, or have its " + "owner make " +
                           folder_.string() +
                           " writable for every account that locks there (chmod 1777)");
      }
    }
    throw BackendError("lock file " + path.string() +
                       " keeps being removed while locking it; stop the program that deletes it");
  }

  // The inotify instance is made by the first wait, not with the backend: closing an inotify
  // descriptor waits for a kernel grace period (about 10-15 ms, measured with strace -T), which a
  // process that never waited (an uncontended CLI run, a test program) must not pay at exit. A
  // fresh watcher's first wait returns at once (see Watcher), so a release between this thread's
  // last try and the watch being set up is not missed.
  Watcher& watcher() {
    std::call_once(watcher_made_, [this] {
      TicketQueue* queue = queue_.get();
      watcher_ = std::make_unique<Watcher>(
          folder_, queue->dir(), log_,
          [queue](const FolderChange& change) { return queue->may_wake(change); },
          [queue] { return queue->watch_plan(); });
    });
    return *watcher_;
  }

  // Caller holds the registry claim for the id: the probe is its alone.
  static UniqueFd take_probe(IdFiles& files) { return std::move(files.probe.fd); }

  std::unique_ptr<HeldLock> lock_file(const std::shared_ptr<IdFiles>& files,
                                      const HolderInfo& holder, bool honour_reservation) {
    const std::string& id = files->id;
    const fs::path& path = files->pid;
    for (int attempt = 0; attempt < 100; ++attempt) {
      struct stat locked {};  // st_dev and st_ino: the probe's file, which we lock
      const int fd = probe_fd(*files, locked);
      if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK || errno == EINTR) return nullptr;
        if (errno == EBADF && probe_flags_ == O_RDONLY) {
          // Some file systems (NFS) only grant exclusive locks on descriptors open for writing.
          probe_flags_ = O_RDWR;
          take_probe(*files);
          continue;
        }
        throw BackendError("cannot lock " + path.string() + " (" + errno_text(errno) +
                           "); use a local lock folder that supports flock()");
      }
      // The common case, a file emptied on release, costs one pread() here: whether the path
      // still names the locked file is then asked once, by the fstat() of the write descriptor
      // below. A file naming a pid is checked first, as that check may end the attempt.
      char first = 0;
      if (::pread(fd, &first, 1, 0) != 0) {
        struct stat named {};
        if (::fstat(fd, &locked) != 0 || ::lstat(path.c_str(), &named) != 0 ||
            !same_file(locked, named)) {
          // Another program (the Python package) unlinked or replaced the file: our descriptor
          // locks a file nobody else sees. Start over with the file the path names now.
          UniqueFd stale = take_probe(*files);
          ::flock(stale.get(), LOCK_UN);
          continue;
        }
        if (live_other_pid(fd, locked) != 0) {
          ::flock(fd, LOCK_UN);
          return nullptr;  // its unlink wakes us (IN_DELETE); then we lock the file replacing it
        }
      }
      // Checked under the flock: a reservation whose holder process is gone (a reboot) or has
      // not taken the flock yet (drain) still keeps this library's lockers off.
      if (honour_reservation) {
        const auto reserved = read_reservation_at(files->reservation, id);
        if (reserved && !reserved->reservation.expired(std::chrono::system_clock::now())) {
          ::flock(fd, LOCK_UN);
          return nullptr;
        }
      }
      UniqueFd lock_fd = take_probe(*files);
      struct stat opened {};
      int error = 0;
      UniqueFd write_fd = open_regular(path, O_WRONLY, opened, error);
      if ((write_fd && !same_file(opened, locked)) || (!write_fd && error == ENOENT) ||
          (!write_fd && entry_unusable(error))) {
        // The Python package closes, then unlinks: an unlink between our flock and this open
        // removed or replaced the file we locked. Start over with whatever the path names now.
        ::flock(lock_fd.get(), LOCK_UN);
        continue;
      }
      if (!write_fd && error != EACCES && error != EPERM && error != EROFS) {
        ::flock(lock_fd.get(), LOCK_UN);
        throw ResourceUnusableError(id, unusable_reason(path, error));
      }
      struct stat named {};
      if (!write_fd && (::lstat(path.c_str(), &named) != 0 || !same_file(named, locked))) {
        ::flock(lock_fd.get(), LOCK_UN);  // as above, seen without a write descriptor
        continue;
      }
      // Without write_fd: another account's file that we may not write (left 0644 by an older
      // version, or by a killed Python holder, in a sticky folder where we may not replace it).
      // The flock on the read-only descriptor is the lock; the pid in the file stays the one
      // just checked by live_other_pid: a dead process or a provably reused pid, never ours. So
      // our hold never leaves our live pid behind to block a later locker: the rule above skips
      // reused pids for us, and the Python package (only the file's owner can use it) finds the
      // dead pid, exactly as with any file a killed Python holder leaves.
      if (write_fd) {
        if (!write_own_pid(write_fd.get(), opened.st_size)) {
          const int write_error = errno;
          ::flock(lock_fd.get(), LOCK_UN);
          throw BackendError("cannot write " + path.string() + " (" + errno_text(write_error) +
                             "); free space in " + folder_.string());
        }
      }
      // The details are a courtesy for `status` and error messages; the lock stands without them,
      // but a symlink or a FIFO in their place is a device to leave alone, like one at the pid.
      std::string holder_json = holder_details_text(holder);
      // Caller holds the claim: no other thread of this process writes these details.
      if (const int details_error = write_details(folder_, id, holder_json, files->details)) {
        if (write_fd) clear_pid(write_fd.get());
        ::flock(lock_fd.get(), LOCK_UN);
        throw ResourceUnusableError(id, unusable_reason(details_path(folder_, id), details_error));
      }
      return std::make_unique<FolderHeldLock>(std::move(lock_fd), locked, std::move(write_fd),
                                              files, std::move(holder_json), probes_);
    }
    throw BackendError("lock file " + path.string() +
                       " keeps being replaced while locking it; stop the program that deletes it");
  }

  Log log_;
  fs::path folder_;
  std::unique_ptr<TicketQueue> queue_;
  std::once_flag watcher_made_;
  std::unique_ptr<Watcher> watcher_;
  std::shared_ptr<ProbeCache> probes_ = std::make_shared<ProbeCache>();
  std::atomic<int> probe_flags_{O_RDONLY};
};

// Reads the lock folder and changes nothing: no folder made, no file created or written, no
// inotify instance.
class FolderObserver final : public LockBackend {
 public:
  explicit FolderObserver(fs::path folder)
      : folder_(folder.empty() ? default_lock_folder() : std::move(folder)) {}

  std::unique_ptr<HeldLock> try_lock(const Resource& resource, const HolderInfo&) override {
    throw BackendError("cannot lock " + resource.id + " through a read-only observer of " +
                       describe() + "; use make_lock_folder_backend to lock");
  }
  void wait_for_change(Clock::time_point deadline) override {
    std::this_thread::sleep_until(std::min(deadline, Clock::now() + kPollInterval));
  }
  std::unique_ptr<QueueTicket> enqueue(const std::vector<std::string>&,
                                       const HolderInfo&) override {
    return make_no_ticket();
  }
  std::optional<HolderInfo> holder_of(const std::string& resource_id) override {
    return read_holder(folder_, resource_id);
  }
  std::vector<QueuedRequest> queued() override { return read_queue(folder_ / kQueueDir); }
  std::optional<std::string> lost_hold(const std::string& resource_id) override {
    return read_lost_note(folder_, resource_id);
  }

  std::vector<std::optional<Reservation>> reservations_of(
      const std::vector<std::string>& ids) override {
    return read_reservations(folder_, ids);
  }
  std::string describe() const override { return "lock folder " + folder_.string(); }
  std::vector<std::string> problems() const override { return folder_problems(folder_); }

 private:
  fs::path folder_;
};

}  // namespace
}  // namespace lockable::folder_backend

namespace lockable::folder_backend {

std::unique_ptr<HeldLock> lock_for_reservation(LockBackend& backend, const std::string& id,
                                               const HolderInfo& holder) {
  auto* folder = dynamic_cast<LockFolderBackend*>(&backend);
  if (folder == nullptr) {
    throw BackendError("a reservation holder needs a lock folder, not " + backend.describe());
  }
  return folder->lock(id, holder, false);
}

fs::path folder_of(LockBackend& backend) {
  auto* folder = dynamic_cast<LockFolderBackend*>(&backend);
  if (folder == nullptr) throw BackendError(backend.describe() + " is not a lock folder");
  return folder->folder();
}

}  // namespace lockable::folder_backend

namespace lockable {

std::unique_ptr<LockBackend> make_lock_folder_backend(std::filesystem::path folder) {
  return make_lock_folder_backend(std::move(folder), nullptr);
}

std::unique_ptr<LockBackend> make_lock_folder_backend(std::filesystem::path folder,
                                                      LockFolderLog log) {
  return std::make_unique<folder_backend::LockFolderBackend>(std::move(folder), std::move(log));
}

std::unique_ptr<LockBackend> make_lock_folder_observer(std::filesystem::path folder) {
  return std::make_unique<folder_backend::FolderObserver>(std::move(folder));
}

}  // namespace lockable
