// The local lock folder backend. See include/lockable/lock_folder.hpp for what it promises and
// the README section "Lock folder protocol" for the file dance and why it looks the way it does.
//
// Waking without feedback loops: waiters learn of releases through inotify. A probe must never
// emit an event that waiters watch, or waiters would wake each other forever. So probes flock()
// a cached O_RDONLY descriptor (its close emits IN_CLOSE_NOWRITE, which nobody watches), and
// only a holder opens the file for writing; the holder's final close() happens after the unlock
// and emits the IN_CLOSE_WRITE that wakes the waiters.
//
// Every entry of the folder is opened with O_NOFOLLOW | O_NONBLOCK and checked to be a regular
// file: a symlink is never followed, and a FIFO never blocks open(). Existing files are opened
// without O_CREAT (fs.protected_regular refuses O_CREAT on another user's file in a sticky
// folder such as /tmp, even when its mode allows the open); new ones are created with O_EXCL and
// then chmod-ed, so that neither the umask nor the first user's account locks others out.

#include <lockable/error.hpp>
#include <lockable/lock_folder.hpp>

#include "core/json_text.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <iostream>
#include <iterator>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>
#include <utility>

namespace lockable {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr const char* kQueueDir = ".lockable-queue";
constexpr const char* kTicketSuffix = ".ticket";
// The kernel emits the close event of a killed process just before it drops the process's
// flocks, so a waiter woken by it may still find the lock taken: look again shortly after any
// event, and every kSafetyTick in any case.
constexpr auto kFollowUp = std::chrono::milliseconds(3);
constexpr auto kSafetyTick = std::chrono::milliseconds(250);
// How often waiters look again when inotify is not available (no instance left).
constexpr auto kPollInterval = std::chrono::milliseconds(100);
// A waiter touches its ticket (futimens) this often while it waits, and a locked ticket untouched
// for kStaleTicketAge no longer holds later waiters back: its owner is stopped (SIGSTOP, Ctrl-Z)
// or wedged. When the owner runs again its next touch puts it back at its place of arrival.
constexpr auto kTicketRefresh = std::chrono::seconds(1);
constexpr auto kStaleTicketAge = std::chrono::seconds(5);
// A pid named by a lock file counts as reused only when its process started this long after the
// file was last written: room for the coarse clocks of file times and of /proc start times.
constexpr double kReuseMarginSeconds = 1.0;
// open_regular's error for an entry that opened but is not a regular file (no errno says that).
constexpr int kNotRegular = -1;

std::string errno_text(int error) { return std::strerror(error); }

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

void warn_stderr(const std::string& line) { std::cerr << line << std::endl; }

// Closes a descriptor on scope exit.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }
  explicit operator bool() const { return fd_ >= 0; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

bool write_all(int fd, const std::string& data) {
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    done += static_cast<std::size_t>(n);
  }
  return true;
}

std::string read_all(int fd) {
  std::string data;
  char buffer[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    data.append(buffer, static_cast<std::size_t>(n));
  }
  return data;
}

bool same_file(const struct stat& a, const struct stat& b) {
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

bool same_inode(int fd, const fs::path& path) {
  struct stat by_fd {};
  struct stat by_path {};
  if (::fstat(fd, &by_fd) != 0 || ::lstat(path.c_str(), &by_path) != 0) return false;
  return same_file(by_fd, by_path);
}

std::string kind_of(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISLNK(mode)) return "a symbolic link";
  if (S_ISCHR(mode) || S_ISBLK(mode)) return "a device file";
  return "not a regular file";
}

// Why `path` cannot serve as a lock or details file after opening it failed with `error`
// (kNotRegular: it opened but is not a regular file), naming the file and the fix.
std::string unusable_reason(const fs::path& path, int error) {
  struct stat st {};
  const bool exists = ::lstat(path.c_str(), &st) == 0;
  if (error == ELOOP || (exists && S_ISLNK(st.st_mode))) {
    return path.string() +
           " is a symbolic link; lockable never follows links in the lock folder: remove it";
  }
  if (exists && !S_ISREG(st.st_mode)) {
    return path.string() + " is " + kind_of(st.st_mode) +
           ", not a regular file; lockable only uses regular files there: remove it";
  }
  if (error == EACCES || error == EPERM) {
    char mode[16];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return "cannot open " + path.string() + " (" + errno_text(error) + "; owned by uid " +
           std::to_string(st.st_uid) + " with mode " + mode +
           "): ask its owner or root to remove it or to make it usable by every account "
           "(chmod 0666 " +
           path.string() + ")";
  }
  return "cannot open " + path.string() + " (" + errno_text(error) + "): remove it";
}

// Opens an existing entry of the lock folder (see the top of the file). On failure returns an
// invalid Fd and sets `error` to the errno, or to kNotRegular for a directory, FIFO or socket.
Fd open_regular(const fs::path& path, int flags, struct stat& st, int& error) {
  Fd fd(::open(path.c_str(), flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (!fd) {
    error = errno;
    return Fd();
  }
  if (::fstat(fd.get(), &st) != 0) {
    error = errno;
    return Fd();
  }
  if (!S_ISREG(st.st_mode)) {
    error = kNotRegular;
    return Fd();
  }
  return fd;
}

// Creates `path` (failing with EEXIST when anything is there) with `mode` for every account: the
// mode is set after creation because the creator's umask (077 on some accounts) must not apply.
Fd create_shared(const fs::path& path, int flags, mode_t mode) {
  Fd fd(::open(path.c_str(), flags | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, mode));
  if (fd) ::fchmod(fd.get(), mode);
  return fd;
}

// Creates the queue folder for every account of the lock folder: mode 1777, like /tmp (anyone
// may add a ticket, only its owner may remove it). Also widens a folder of ours left 0755 by an
// older version. Another account's folder is left as it is (see create_ticket for the fallback).
void make_queue_dir(const fs::path& dir) {
  ::mkdir(dir.c_str(), 0777);
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  struct stat st {};
  if (fd && ::fstat(fd.get(), &st) == 0 && st.st_uid == ::geteuid() &&
      (st.st_mode & 07777) != 01777) {
    ::fchmod(fd.get(), 01777);
  }
}

// True when process `pid` provably started after `written` (a lock file's modification time):
// the file then names a pid that an unrelated process reused. False when unsure.
bool started_after(long pid, const timespec& written) {
  Fd fd(::open(("/proc/" + std::to_string(pid) + "/stat").c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return false;
  const std::string text = read_all(fd.get());
  // The command (field 2) may hold spaces and parentheses; the fields after its last ')' start
  // with the state (field 3). starttime is field 22, in clock ticks since boot.
  std::size_t at = text.rfind(')');
  if (at == std::string::npos) return false;
  for (int field = 3; field <= 22; ++field) {
    at = text.find_first_not_of(' ', at + 1);
    if (at == std::string::npos) return false;
    if (field < 22) at = text.find(' ', at);
    if (at == std::string::npos) return false;
  }
  const double ticks = std::strtod(text.c_str() + at, nullptr);
  const long hz = ::sysconf(_SC_CLK_TCK);
  timespec real{};
  timespec boot{};
  if (hz <= 0 || ::clock_gettime(CLOCK_REALTIME, &real) != 0 ||
      ::clock_gettime(CLOCK_BOOTTIME, &boot) != 0) {
    return false;
  }
  const double boot_wall = static_cast<double>(real.tv_sec - boot.tv_sec) +
                           static_cast<double>(real.tv_nsec - boot.tv_nsec) / 1e9;
  const double started = boot_wall + ticks / static_cast<double>(hz);
  const double file_time =
      static_cast<double>(written.tv_sec) + static_cast<double>(written.tv_nsec) / 1e9;
  return started > file_time + kReuseMarginSeconds;
}

// The pid a lock file names when that is a live process other than us whose pid was not provably
// reused, else 0. Such a file is never taken, however long it stays (the `pid` package's own
// rule): its process is a Python holder between its close() and unlink(), and were we to take
// the file, that unlink would leave us holding a nameless file while the next locker creates a
// new one. `st` is the file's fstat.
long live_other_pid(int fd, const struct stat& st) {
  if (st.st_size == 0) return 0;  // emptied on release: the common case costs no read
  char text[32] = {};
  const ssize_t n = ::pread(fd, text, sizeof text - 1, 0);
  const long pid = n > 0 ? std::strtol(text, nullptr, 10) : 0;
  if (pid <= 0 || pid > std::numeric_limits<pid_t>::max() || pid == ::getpid()) return 0;
  if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) return 0;
  if (started_after(pid, st.st_mtim)) return 0;
  return pid;
}

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

// Overwrites the file's content from offset 0, truncating only when the old content (`old_size`
// bytes, from a fstat the caller made anyway) was longer: a truncation costs as much as the write.
bool replace_content(int fd, const std::string& content, off_t old_size) {
  std::size_t done = 0;
  while (done < content.size()) {
    const ssize_t n =
        ::pwrite(fd, content.data() + done, content.size() - done, static_cast<off_t>(done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    done += static_cast<std::size_t>(n);
  }
  return old_size <= static_cast<off_t>(content.size()) ||
         ::ftruncate(fd, static_cast<off_t>(content.size())) == 0;
}

// True for an open() error (or kNotRegular) that says the entry itself is unusable (a symlink,
// a directory, a FIFO, a socket) rather than that we may not write it.
bool entry_unusable(int error) {
  return error == ELOOP || error == kNotRegular || error == ENXIO || error == EISDIR;
}

// Writes the holder details next to the lock, in place: a temp file + rename() would make a
// reader never see a torn file, but costs a create, a rename and an unlink per allocation (about
// half of an uncontended lock). Readers treat unparseable details as absent and fall back to the
// pid, so a torn read only shows less. The details are left in place on release: readers only
// look at them while the lock is held and check their pid against the pid file, so details of a
// former holder are never shown for another one. Returns 0, or the error that makes the entry
// unusable (see entry_unusable); another account's file we may not write is skipped: the details
// are a courtesy.
int write_details(const fs::path& path, const std::string& content) {
  struct stat st {};
  int error = 0;
  Fd fd = open_regular(path, O_WRONLY, st, error);
  if (!fd && error == ENOENT) {
    fd = create_shared(path, O_WRONLY, 0666);
    st.st_size = 0;
    if (!fd) return 0;  // another locker just created it, or we may not: no details this time
  }
  if (!fd) return entry_unusable(error) ? error : 0;
  replace_content(fd.get(), content, st.st_size);
  return 0;
}

bool alive(long pid) {
  return pid > 0 && pid <= std::numeric_limits<pid_t>::max() &&
         (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM);
}

// The holder of `<folder>/<id>.pid`, read without writing anything (also for a read-only
// observer): nullopt when free. A free file that names another live process counts as held by
// it, as lockers leave such a file alone (see live_other_pid).
std::optional<HolderInfo> read_holder(const fs::path& folder, const std::string& id) {
  struct stat st {};
  int error = 0;
  Fd fd = open_regular(folder / (id + ".pid"), O_RDONLY, st, error);
  if (!fd) return std::nullopt;
  long pid_in_file = 0;
  if (::flock(fd.get(), LOCK_SH | LOCK_NB) == 0) {
    pid_in_file = live_other_pid(fd.get(), st);
    ::flock(fd.get(), LOCK_UN);
    if (pid_in_file == 0) return std::nullopt;
  } else {
    pid_in_file = std::strtol(read_all(fd.get()).c_str(), nullptr, 10);
  }
  HolderInfo info;
  struct stat json_st {};
  Fd json_fd = open_regular(folder / (id + ".pid.json"), O_RDONLY, json_st, error);
  if (json_fd) {
    info = HolderInfo::from_json(Json::parse(read_all(json_fd.get()), nullptr, false));
    // A details file left by a killed holder must not be shown for a new (e.g. Python) holder.
    // But a holder of another account's read-only file could not write its pid there: when the
    // file names a dead process and the details a live one, the details are the holder's.
    if (pid_in_file > 0 && info.pid != pid_in_file && !(alive(info.pid) && !alive(pid_in_file))) {
      info = HolderInfo{};
    }
  }
  if (info.pid == 0) info.pid = pid_in_file;
  return info;
}

// The backend's probe descriptors by id, shared with held locks: a released lock hands its
// descriptor back instead of closing it, which spares the next lock an open() and a close().
struct ProbeCache {
  std::mutex mutex;
  std::map<std::string, Fd> fds;

  // Keeps `fd` as the probe of `id`, or closes it when another one is cached already.
  void give_back(const std::string& id, Fd fd) {
    std::lock_guard<std::mutex> guard(mutex);
    fds.try_emplace(id, std::move(fd));
  }
};

using Log = std::function<void(const std::string&)>;

class FolderHeldLock final : public HeldLock {
 public:
  // `write_fd` is invalid when the file belongs to another account that left it read-only for us
  // (see LockFolderBackend::lock_file).
  FolderHeldLock(Fd lock_fd, Fd write_fd, fs::path path, std::string registry_key, std::string id,
                 std::weak_ptr<ProbeCache> probes, Log log)
      : lock_fd_(std::move(lock_fd)),
        write_fd_(std::move(write_fd)),
        path_(std::move(path)),
        registry_key_(std::move(registry_key)),
        id_(std::move(id)),
        probes_(std::move(probes)),
        log_(std::move(log)) {}
  ~FolderHeldLock() override { release(); }

  // The file we lock is no longer the one the path names: someone removed or replaced it, and
  // the next locker locks the new file. Costs two system calls per call, none while locking.
  bool lost() const noexcept override {
    std::lock_guard<std::mutex> guard(mutex_);
    return !released_ && !same_inode(lock_fd_.get(), path_);
  }

  void release() noexcept override {
    std::lock_guard<std::mutex> guard(mutex_);
    if (released_) return;
    released_ = true;
    // A removed or replaced file has no link left (one fstat; the full check is in lost()).
    struct stat st {};
    const bool removed = ::fstat(lock_fd_.get(), &st) == 0 && st.st_nlink == 0;
    // Empty the pid file so that the Python package does not take our (live) pid for a holder.
    if (write_fd_ && ::ftruncate(write_fd_.get(), 0) != 0) {
      // Nothing to do: the flock below is what frees the device.
    }
    ::flock(lock_fd_.get(), LOCK_UN);
    // Read-only, so neither keeping nor closing it emits an event that waiters watch.
    const auto probes = probes_.lock();
    if (probes && !removed) {
      probes->give_back(id_, std::move(lock_fd_));
    } else {
      lock_fd_.reset();
    }
    // Drop the in-process claim before the wake-up event below, or a thread of this process woken
    // by it would still find the id claimed and sleep until the safety tick.
    Registry::instance().drop(registry_key_);
    write_fd_.reset();  // IN_CLOSE_WRITE: wakes the waiters, after the unlock
    if (removed && log_) {
      try {
        log_("lockable: warning: " + path_.string() + " was removed or replaced while this " +
             "process held " + id_ + ", so another process may have used " + id_ +
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
  Fd lock_fd_;
  Fd write_fd_;
  fs::path path_;
  std::string registry_key_;
  std::string id_;
  std::weak_ptr<ProbeCache> probes_;
  Log log_;
};

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
  Log log;
};

// A waiter's ticket. Its file is written only when the waiter first waits (see
// `LockFolderBackend::wait_for_change`): a request granted at once never touches the queue
// folder, which keeps an uncontended lock cheap. The name (arrival time) is fixed at enqueue, so a
// late write still puts the waiter at its place of arrival.
struct TicketState {
  std::mutex mutex;
  std::shared_ptr<EmptyQueueCache> empty_queue;
  std::shared_ptr<QueueWarning> warning;
  fs::path queue_dir;
  std::string name;
  std::vector<std::string> wanted;
  Fd fd;  // invalid while unpublished, and when the queue folder refused the ticket
  bool published = false;
  bool closed = false;
  Clock::time_point touched{};

  // Writes the ticket file if it is not there yet, else touches it once per kTicketRefresh so
  // that readers know its waiter still runs. Caller holds `mutex` and is the waiting thread.
  void publish_or_touch_locked() {
    if (closed) return;
    const auto now = Clock::now();
    if (!published) {
      fd = create_locked(queue_dir, name, wanted, *warning);
      published = true;
      touched = now;
    } else if (fd && now - touched >= kTicketRefresh) {
      ::futimens(fd.get(), nullptr);  // IN_ATTRIB, which nobody watches on the queue folder
      touched = now;
    }
  }

  // Creates `<queue_dir>/<name>` holding `ids`, locked by the returned descriptor. Returns an
  // invalid Fd, with one warning per backend, when this account may not write the queue folder:
  // the waiter then waits without a place in the queue rather than not at all.
  static Fd create_locked(const fs::path& queue_dir, const std::string& name,
                          const std::vector<std::string>& ids, QueueWarning& warning) {
    static std::atomic<unsigned long> counter{0};
    const fs::path temp = queue_dir / ("." + name + "." + std::to_string(counter++) + ".tmp");
    // 0644: every account reads the queue, only the waiter changes its own ticket.
    Fd fd = create_shared(temp, O_RDWR, 0644);
    if (!fd && errno == ENOENT) {
      make_queue_dir(queue_dir);  // someone removed the queue folder (cleaning /tmp)
      fd = create_shared(temp, O_RDWR, 0644);
    }
    if (!fd && (errno == EACCES || errno == EPERM || errno == EROFS)) {
      const int error = errno;
      if (!warning.said.exchange(true) && warning.log) {
        warning.log("lockable: warning: cannot queue in " + queue_dir.string() + " (" +
                    errno_text(error) +
                    "), so waiting without a place in the fair queue: later arrivals may be "
                    "served first; have its owner or root run chmod 1777 " +
                    queue_dir.string());
      }
      return Fd();
    }
    if (!fd) {
      throw BackendError("cannot create a queue ticket in " + queue_dir.string() + " (" +
                         errno_text(errno) + "); remove " + queue_dir.string() +
                         " if it is not a folder, or pass another --lock-folder");
    }
    ::flock(fd.get(), LOCK_EX);  // nobody else knows the temp name: cannot block
    const bool written = write_all(fd.get(), detail::dump(Json(ids)));
    if (!written || ::rename(temp.c_str(), (queue_dir / name).c_str()) != 0) {
      const int error = errno;
      ::unlink(temp.c_str());
      throw BackendError("cannot write the queue ticket " + (queue_dir / name).string() + " (" +
                         errno_text(error) + "); free space in " + queue_dir.string());
    }
    return fd;
  }
};

class FolderTicket final : public QueueTicket {
 public:
  explicit FolderTicket(std::shared_ptr<TicketState> state)
      : state_(std::move(state)), queue_dir_(state_->queue_dir), name_(state_->name) {}
  ~FolderTicket() override {
    std::lock_guard<std::mutex> guard(state_->mutex);
    state_->closed = true;
    if (state_->fd) {
      ::unlink((queue_dir_ / name_).c_str());  // IN_DELETE: the next waiter moves up
    }
    state_->fd.reset();
  }

  void update_wanted(const std::vector<std::string>& resource_ids) override {
    std::lock_guard<std::mutex> guard(state_->mutex);
    state_->wanted = resource_ids;
    if (state_->fd) {
      // Same name (same place in the queue), new inode locked before it becomes visible, so a
      // reader never sees a torn or unlocked ticket.
      state_->fd = TicketState::create_locked(queue_dir_, name_, resource_ids, *state_->warning);
      state_->touched = Clock::now();
    }
  }

  std::vector<std::vector<std::string>> wanted_by_earlier_waiters() override {
    struct stat folder {};
    const bool have_folder = ::stat(queue_dir_.c_str(), &folder) == 0;
    if (have_folder && state_->empty_queue->known_empty(folder)) return {};
    std::vector<std::string> names;
    bool any_ticket = false;
    if (DIR* dir = ::opendir(queue_dir_.c_str())) {
      while (const dirent* entry = ::readdir(dir)) {
        std::string name = entry->d_name;
        if (!ends_with(name, kTicketSuffix)) continue;
        any_ticket = true;
        if (name < name_) names.push_back(std::move(name));
      }
      ::closedir(dir);
    }
    if (have_folder && !any_ticket) state_->empty_queue->found_empty(folder);
    std::sort(names.begin(), names.end());
    timespec now{};
    ::clock_gettime(CLOCK_REALTIME, &now);
    std::vector<std::vector<std::string>> wanted;
    for (const auto& name : names) {
      // A ticket read before is still the same while its inode stays locked (a changed ticket
      // is a new inode, and its waiter unlocks the old one): one flock instead of open, fstat,
      // flock, read and close, for every earlier waiter, on every wake-up.
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
          if (!stale(ticket.mtime, now)) wanted.push_back(ticket.wanted);
          continue;
        }
        read_tickets_.erase(cached);  // replaced or abandoned: read the path afresh
      }
      const fs::path path = queue_dir_ / name;
      struct stat st {};
      int error = 0;
      // Not a regular file (a FIFO, a directory): nobody's ticket, and never opened blocking.
      Fd fd = open_regular(path, O_RDONLY, st, error);
      if (!fd) continue;
      if (::flock(fd.get(), LOCK_SH | LOCK_NB) == 0) {
        // Nobody holds it: its waiter died without cleaning up.
        if (same_inode(fd.get(), path)) ::unlink(path.c_str());
        continue;
      }
      auto ids = parse(read_all(fd.get()));
      if (!stale(st.st_mtim, now)) wanted.push_back(ids);
      if (read_tickets_.size() < kMaxReadTickets) {
        read_tickets_.emplace(name, ReadTicket{std::move(fd), std::move(ids), st.st_mtim});
      }
    }
    // Forget waiters that left (served or gone), closing their descriptors.
    for (auto it = read_tickets_.begin(); it != read_tickets_.end();) {
      it = std::binary_search(names.begin(), names.end(), it->first) ? std::next(it)
                                                                     : read_tickets_.erase(it);
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

  static std::vector<std::string> parse(const std::string& text) {
    // A torn or foreign ticket counts as wanting nothing: it must never stall the queue.
    const Json json = Json::parse(text, nullptr, false);
    std::vector<std::string> ids;
    if (!json.is_array()) return ids;
    for (const auto& id : json) {
      if (id.is_string()) ids.push_back(id.get<std::string>());
    }
    return ids;
  }

  // Bounds the descriptors one waiter keeps open; tickets past it are read each time.
  static constexpr std::size_t kMaxReadTickets = 256;
  struct ReadTicket {
    Fd fd;  // read-only: closing it emits no event that waiters watch
    std::vector<std::string> wanted;
    timespec mtime;  // as last seen
  };

  std::shared_ptr<TicketState> state_;
  fs::path queue_dir_;
  std::string name_;
  // Used only by the waiting thread that owns this ticket.
  std::map<std::string, ReadTicket> read_tickets_;
};

// One inotify descriptor per backend, shared by every waiting thread: one thread polls, the
// others wait on a condition variable, and a generation counter per thread makes sure no thread
// misses an event another thread read for it. Without inotify (no instance or watch left for
// this account) it says so once and waiters look again every kPollInterval instead.
class Watcher {
 public:
  Watcher(const fs::path& folder, fs::path queue_dir, const Log& log)
      : queue_dir_(std::move(queue_dir)) {
    fd_ = Fd(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
    if (!fd_) {
      fall_back(folder, errno, "raise fs.inotify.max_user_instances", log);
      return;
    }
    folder_wd_ =
        ::inotify_add_watch(fd_.get(), folder.c_str(),
                            IN_CLOSE_WRITE | IN_DELETE | IN_MOVED_TO | IN_CREATE | IN_ATTRIB);
    if (folder_wd_ < 0 || !watch_queue()) {
      const int error = errno;
      fall_back(folder, error,
                error == ENOSPC ? "raise fs.inotify.max_user_watches"
                                : "check that the lock folder and its .lockable-queue exist",
                log);
    }
  }

  void wait(Clock::time_point deadline) {
    if (!fd_) {
      std::this_thread::sleep_until(std::min(deadline, Clock::now() + kPollInterval));
      return;
    }
    std::unique_lock<std::mutex> lock(mutex_);
    auto& seen = seen_[std::this_thread::get_id()];
    const auto now = Clock::now();
    deadline = std::min(deadline, now + kSafetyTick);
    if (follow_up_ > now) deadline = std::min(deadline, follow_up_);
    for (;;) {
      if (seen != generation_) {
        seen = generation_;
        return;
      }
      if (Clock::now() >= deadline) return;
      if (polling_) {
        cv_.wait_until(lock, deadline);
        continue;
      }
      polling_ = true;
      lock.unlock();
      // The queue folder was removed (its watch ended): bring both back. Failing that, the
      // safety tick still notices every change.
      if (queue_wd_ < 0) watch_queue();
      const bool changed = poll_once(deadline);
      lock.lock();
      polling_ = false;
      if (changed) {
        ++generation_;
        follow_up_ = Clock::now() + kFollowUp;
      }
      cv_.notify_all();
    }
  }

 private:
  void fall_back(const fs::path& folder, int error, const std::string& fix, const Log& log) {
    fd_.reset();
    if (log) {
      log("lockable: warning: cannot watch lock folder " + folder.string() +
          " (inotify: " + errno_text(error) + "), so waiters look again every " +
          std::to_string(kPollInterval.count()) + " ms instead; " + fix);
    }
  }

  // Watches the queue folder, making it again when someone removed it (a temp cleaner, or a
  // `rmdir` between our mkdir and this watch). Only the constructor and the polling thread call
  // it. False with errno set when it cannot.
  bool watch_queue() {
    for (int attempt = 0; attempt < 100; ++attempt) {
      queue_wd_ = ::inotify_add_watch(fd_.get(), queue_dir_.c_str(),
                                      IN_DELETE | IN_MOVED_TO | IN_DONT_FOLLOW | IN_ONLYDIR);
      if (queue_wd_ >= 0) return true;
      if (errno != ENOENT) return false;
      make_queue_dir(queue_dir_);
    }
    return false;
  }

  // Polls until an interesting event or `deadline`; true when one arrived.
  bool poll_once(Clock::time_point deadline) {
    for (;;) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) return drain();
      pollfd pfd{fd_.get(), POLLIN, 0};
      const int ready = ::poll(&pfd, 1, static_cast<int>(std::min<long long>(left.count(), 1000)));
      if (ready > 0 && drain()) return true;
      if (ready < 0 && errno != EINTR) return true;  // cannot wait: let the caller re-check
    }
  }

  // Reads every queued event; true when one names a lock file or a ticket.
  bool drain() {
    bool interesting = false;
    alignas(inotify_event) char buffer[16384];
    for (;;) {
      const ssize_t n = ::read(fd_.get(), buffer, sizeof buffer);
      if (n <= 0) break;
      for (ssize_t offset = 0; offset < n;) {
        const auto* event = reinterpret_cast<const inotify_event*>(buffer + offset);
        offset += static_cast<ssize_t>(sizeof(inotify_event) + event->len);
        if (event->mask & (IN_Q_OVERFLOW | IN_IGNORED)) {
          if ((event->mask & IN_IGNORED) && event->wd == queue_wd_) queue_wd_ = -1;
          interesting = true;
          continue;
        }
        const std::string name = event->len > 0 ? std::string(event->name) : std::string();
        if (event->wd == folder_wd_ && ends_with(name, ".pid")) interesting = true;
        if (event->wd == queue_wd_ && ends_with(name, kTicketSuffix)) interesting = true;
      }
    }
    return interesting;
  }

  fs::path queue_dir_;
  Fd fd_;
  int folder_wd_ = -1;
  int queue_wd_ = -1;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool polling_ = false;
  std::uint64_t generation_ = 0;
  Clock::time_point follow_up_{};
  std::unordered_map<std::thread::id, std::uint64_t> seen_;
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
    queue_dir_ = folder_ / kQueueDir;
    make_queue_dir(queue_dir_);
    queue_warning_->log = log_;
    watcher_ = std::make_unique<Watcher>(folder_, queue_dir_, log_);
  }

  std::unique_ptr<HeldLock> try_lock(const Resource& resource, const HolderInfo& holder) override {
    const std::string& id = resource.id;
    if (const auto why = invalid_id_reason(id); !why.empty()) {
      throw BackendError("resource id \"" + id + "\" cannot name a lock file: " + why +
                         "; fix the id in the resources");
    }
    const std::string key = folder_.string() + '\0' + id;
    if (!Registry::instance().claim(key)) return nullptr;
    try {
      auto lock = lock_file(id, holder, key);
      if (!lock) Registry::instance().drop(key);
      return lock;
    } catch (...) {
      Registry::instance().drop(key);
      throw;
    }
  }

  void wait_for_change(Clock::time_point deadline) override {
    publish_own_tickets();
    watcher_->wait(deadline);
  }

  std::unique_ptr<QueueTicket> enqueue(const std::vector<std::string>& resource_ids,
                                       const HolderInfo& /*waiter*/) override {
    static std::atomic<unsigned long> counter{0};
    timespec now{};
    ::clock_gettime(CLOCK_REALTIME, &now);
    const unsigned long long nanos = static_cast<unsigned long long>(now.tv_sec) * 1000000000ULL +
                                     static_cast<unsigned long long>(now.tv_nsec);
    char stamp[32];
    std::snprintf(stamp, sizeof stamp, "%020llu", nanos);
    const std::string name = std::string(stamp) + "-" + std::to_string(::getpid()) + "-" +
                             std::to_string(counter++) + kTicketSuffix;
    auto state = std::make_shared<TicketState>();
    state->empty_queue = empty_queue_;
    state->warning = queue_warning_;
    state->queue_dir = queue_dir_;
    state->name = name;
    state->wanted = resource_ids;
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
    return std::make_unique<FolderTicket>(std::move(state));
  }

  std::optional<HolderInfo> holder_of(const std::string& resource_id) override {
    return read_holder(folder_, resource_id);
  }

  std::string describe() const override { return "lock folder " + folder_.string(); }

 private:
  // A waiter becomes visible in the queue before it first sleeps, and shows that it still runs
  // while it waits. Only the calling thread's tickets: each waiter publishes its own, so that an
  // error reaches the thread whose request it concerns.
  void publish_own_tickets() {
    std::vector<std::shared_ptr<TicketState>> mine;
    {
      std::lock_guard<std::mutex> guard(mutex_);
      const auto it = tickets_.find(std::this_thread::get_id());
      if (it == tickets_.end()) return;
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
  }

  fs::path pid_path(const std::string& id) const { return folder_ / (id + ".pid"); }
  fs::path json_path(const std::string& id) const { return folder_ / (id + ".pid.json"); }

  // Opens (and caches) the probe descriptor of `id`, creating the file when missing. Caller holds
  // the registry claim for `id`, so no other thread of this process uses the same entry meanwhile.
  // Throws ResourceUnusableError when the entry is not a usable regular file.
  int probe_fd(const std::string& id) {
    {
      std::lock_guard<std::mutex> guard(probes_->mutex);
      if (const auto it = probes_->fds.find(id); it != probes_->fds.end()) return it->second.get();
    }
    const fs::path path = pid_path(id);
    for (int attempt = 0; attempt < 10; ++attempt) {
      struct stat st {};
      int error = 0;
      Fd fd = open_regular(path, probe_flags_, st, error);
      if (fd) {
        std::lock_guard<std::mutex> guard(probes_->mutex);
        auto& slot = probes_->fds[id];
        slot = std::move(fd);
        return slot.get();
      }
      if (error != ENOENT) throw ResourceUnusableError(id, unusable_reason(path, error));
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

  Fd take_probe(const std::string& id) {
    std::lock_guard<std::mutex> guard(probes_->mutex);
    const auto it = probes_->fds.find(id);
    if (it == probes_->fds.end()) return Fd();
    Fd fd = std::move(it->second);
    probes_->fds.erase(it);
    return fd;
  }

  std::unique_ptr<HeldLock> lock_file(const std::string& id, const HolderInfo& holder,
                                      const std::string& key) {
    const fs::path path = pid_path(id);
    for (int attempt = 0; attempt < 100; ++attempt) {
      const int fd = probe_fd(id);
      if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK || errno == EINTR) return nullptr;
        if (errno == EBADF && probe_flags_ == O_RDONLY) {
          // Some file systems (NFS) only grant exclusive locks on descriptors open for writing.
          probe_flags_ = O_RDWR;
          take_probe(id);
          continue;
        }
        throw BackendError("cannot lock " + path.string() + " (" + errno_text(errno) +
                           "); use a local lock folder that supports flock()");
      }
      struct stat locked {};
      struct stat named {};
      if (::fstat(fd, &locked) != 0 || ::lstat(path.c_str(), &named) != 0 ||
          !same_file(locked, named)) {
        // Another program (the Python package) unlinked or replaced the file: our descriptor
        // locks a file nobody else sees. Start over with the file the path names now.
        Fd stale = take_probe(id);
        ::flock(stale.get(), LOCK_UN);
        continue;
      }
      if (live_other_pid(fd, locked) != 0) {
        ::flock(fd, LOCK_UN);
        return nullptr;  // its unlink wakes us (IN_DELETE); then we lock the file that replaces it
      }
      Fd lock_fd = take_probe(id);
      struct stat opened {};
      int error = 0;
      Fd write_fd = open_regular(path, O_WRONLY, opened, error);
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
      // Without write_fd: another account's file that we may not write (left 0644 by an older
      // version, or by a killed Python holder, in a sticky folder where we may not replace it).
      // The flock on the read-only descriptor is the lock; the pid in the file stays the one
      // just checked by live_other_pid: a dead process or a provably reused pid, never ours. So
      // our hold never leaves our live pid behind to block a later locker: the rule above skips
      // reused pids for us, and the Python package (only the file's owner can use it) finds the
      // dead pid, exactly as with any file a killed Python holder leaves.
      if (write_fd) {
        const std::string pid_line = std::to_string(::getpid()) + "\n";
        if (!replace_content(write_fd.get(), pid_line, opened.st_size)) {
          const int write_error = errno;
          ::flock(lock_fd.get(), LOCK_UN);
          throw BackendError("cannot write " + path.string() + " (" + errno_text(write_error) +
                             "); free space in " + folder_.string());
        }
      }
      // The details are a courtesy for `status` and error messages; the lock stands without them,
      // but a symlink or a FIFO in their place is a device to leave alone, like one at the pid.
      if (const int details_error = write_details(json_path(id), detail::dump(holder.to_json()))) {
        if (write_fd) ::ftruncate(write_fd.get(), 0);
        ::flock(lock_fd.get(), LOCK_UN);
        throw ResourceUnusableError(id, unusable_reason(json_path(id), details_error));
      }
      return std::make_unique<FolderHeldLock>(std::move(lock_fd), std::move(write_fd), path, key,
                                              id, probes_, log_);
    }
    throw BackendError("lock file " + path.string() +
                       " keeps being replaced while locking it; stop the program that deletes it");
  }

  Log log_;
  fs::path folder_;
  fs::path queue_dir_;
  std::unique_ptr<Watcher> watcher_;
  std::mutex mutex_;
  std::shared_ptr<ProbeCache> probes_ = std::make_shared<ProbeCache>();
  std::shared_ptr<EmptyQueueCache> empty_queue_ = std::make_shared<EmptyQueueCache>();
  std::shared_ptr<QueueWarning> queue_warning_ = std::make_shared<QueueWarning>();
  // The tickets of each waiting thread (see publish_own_tickets), swept past this many threads.
  static constexpr std::size_t kMaxTicketThreads = 64;
  std::map<std::thread::id, std::vector<std::weak_ptr<TicketState>>> tickets_;
  std::atomic<int> probe_flags_{O_RDONLY};
};

// A ticket of a backend that never queues.
class NoTicket final : public QueueTicket {
 public:
  void update_wanted(const std::vector<std::string>& /*resource_ids*/) override {}
  std::vector<std::vector<std::string>> wanted_by_earlier_waiters() override { return {}; }
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
    return std::make_unique<NoTicket>();
  }
  std::optional<HolderInfo> holder_of(const std::string& resource_id) override {
    return read_holder(folder_, resource_id);
  }
  std::string describe() const override { return "lock folder " + folder_.string(); }

 private:
  fs::path folder_;
};

}  // namespace

std::unique_ptr<LockBackend> make_lock_folder_backend(std::filesystem::path folder) {
  return make_lock_folder_backend(std::move(folder), nullptr);
}

std::unique_ptr<LockBackend> make_lock_folder_backend(std::filesystem::path folder,
                                                      LockFolderLog log) {
  return std::make_unique<LockFolderBackend>(std::move(folder), std::move(log));
}

std::unique_ptr<LockBackend> make_lock_folder_observer(std::filesystem::path folder) {
  return std::make_unique<FolderObserver>(std::move(folder));
}

}  // namespace lockable
