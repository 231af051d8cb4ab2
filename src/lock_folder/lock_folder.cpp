// The local lock folder backend. See include/lockable/lock_folder.hpp for what it promises and
// docs in the file for why the file dance looks the way it does.
//
// Waking without feedback loops: waiters learn of releases through inotify. A probe must never
// emit an event that waiters watch, or waiters would wake each other forever. So probes flock()
// a cached O_RDONLY descriptor (its close emits IN_CLOSE_NOWRITE, which nobody watches), and
// only a holder opens the file for writing; the holder's final close() happens after the unlock
// and emits the IN_CLOSE_WRITE that wakes the waiters.

#include <lockable/error.hpp>
#include <lockable/lock_folder.hpp>

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
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <iterator>
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
// How long a locked file that still names another live process is left alone (see
// `releaser_will_unlink`): far longer than a releaser needs from close() to unlink().
constexpr auto kForeignPidPatience = std::chrono::milliseconds(500);

std::string errno_text(int error) { return std::strerror(error); }

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

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

bool same_inode(int fd, const fs::path& path) {
  struct stat by_fd {};
  struct stat by_path {};
  if (::fstat(fd, &by_fd) != 0 || ::lstat(path.c_str(), &by_path) != 0) return false;
  return by_fd.st_dev == by_path.st_dev && by_fd.st_ino == by_path.st_ino;
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

// Overwrites the file's content from offset 0, truncating only when the old content was longer
// (a truncation costs as much as the write; the sizes are usually equal).
bool replace_content(int fd, const std::string& content) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return false;
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
  return st.st_size <= static_cast<off_t>(content.size()) ||
         ::ftruncate(fd, static_cast<off_t>(content.size())) == 0;
}

// Writes the holder details next to the lock, in place: a temp file + rename() would make a
// reader never see a torn file, but costs a create, a rename and an unlink per allocation (about
// half of an uncontended lock). Readers treat unparseable details as absent and fall back to the
// pid, so a torn read only shows less. Returns the open descriptor (invalid on failure).
// The details are left in place on release (each write is a few microseconds of an uncontended
// lock): readers only look at them while the lock is held and check their pid against the pid
// file, so details of a former holder are never shown for another one.
bool write_details(const fs::path& path, const std::string& content) {
  Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0666));
  return fd && replace_content(fd.get(), content);
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

class FolderHeldLock final : public HeldLock {
 public:
  FolderHeldLock(Fd lock_fd, Fd write_fd, std::string registry_key, std::string id,
                 std::weak_ptr<ProbeCache> probes)
      : lock_fd_(std::move(lock_fd)),
        write_fd_(std::move(write_fd)),
        registry_key_(std::move(registry_key)),
        id_(std::move(id)),
        probes_(std::move(probes)) {}
  ~FolderHeldLock() override { release(); }

  void release() noexcept override {
    std::lock_guard<std::mutex> guard(mutex_);
    if (released_) return;
    released_ = true;
    // Empty the pid file so that the Python package does not take our (live) pid for a holder.
    if (::ftruncate(write_fd_.get(), 0) != 0) {
      // Nothing to do: the flock below is what frees the device.
    }
    ::flock(lock_fd_.get(), LOCK_UN);
    // Read-only, so neither keeping nor closing it emits an event that waiters watch.
    if (const auto probes = probes_.lock()) {
      probes->give_back(id_, std::move(lock_fd_));
    } else {
      lock_fd_.reset();
    }
    // Drop the in-process claim before the wake-up event below, or a thread of this process woken
    // by it would still find the id claimed and sleep until the safety tick.
    Registry::instance().drop(registry_key_);
    write_fd_.reset();  // IN_CLOSE_WRITE: wakes the waiters, after the unlock
  }

 private:
  std::mutex mutex_;
  bool released_ = false;
  Fd lock_fd_;
  Fd write_fd_;
  std::string registry_key_;
  std::string id_;
  std::weak_ptr<ProbeCache> probes_;
};

// A waiter's ticket. Its file is written only when the waiter first waits (see
// `LockFolderBackend::wait_for_change`): a request granted at once never touches the queue
// folder, which keeps an uncontended lock cheap. The name (arrival time) is fixed at enqueue, so a
// late write still puts the waiter at its place of arrival.
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

struct TicketState {
  std::mutex mutex;
  std::shared_ptr<EmptyQueueCache> empty_queue;
  fs::path queue_dir;
  std::string name;
  std::vector<std::string> wanted;
  Fd fd;
  bool published = false;
  bool closed = false;

  // Writes the ticket file if it is not there yet. Caller holds `mutex`.
  void publish_locked() {
    if (published || closed) return;
    fd = create_locked(queue_dir, name, wanted);
    published = true;
  }

  // Creates `<queue_dir>/<name>` holding `ids`, locked by the returned descriptor.
  static Fd create_locked(const fs::path& queue_dir, const std::string& name,
                          const std::vector<std::string>& ids) {
    static std::atomic<unsigned long> counter{0};
    const fs::path temp = queue_dir / ("." + name + "." + std::to_string(counter++) + ".tmp");
    Fd fd(::open(temp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666));
    if (!fd && errno == ENOENT) {
      // Someone removed the queue folder (cleaning /tmp); bring it back.
      ::mkdir(queue_dir.c_str(), 0777);
      fd = Fd(::open(temp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666));
    }
    if (!fd) {
      throw BackendError("cannot create a queue ticket in " + queue_dir.string() + " (" +
                         errno_text(errno) +
                         "); make the lock folder and its .lockable-queue writable");
    }
    ::flock(fd.get(), LOCK_EX);  // nobody else knows the temp name: cannot block
    const bool written = write_all(fd.get(), Json(ids).dump());
    if (!written || ::rename(temp.c_str(), (queue_dir / name).c_str()) != 0) {
      const int error = errno;
      ::unlink(temp.c_str());
      throw BackendError("cannot write the queue ticket " + (queue_dir / name).string() + " (" +
                         errno_text(error) + "); make " + queue_dir.string() + " writable");
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
    if (state_->published) {
      ::unlink((queue_dir_ / name_).c_str());  // IN_DELETE: the next waiter moves up
    }
    state_->fd.reset();
  }

  void update_wanted(const std::vector<std::string>& resource_ids) override {
    std::lock_guard<std::mutex> guard(state_->mutex);
    state_->wanted = resource_ids;
    if (state_->published) {
      // Same name (same place in the queue), new inode locked before it becomes visible, so a
      // reader never sees a torn or unlocked ticket.
      state_->fd = TicketState::create_locked(queue_dir_, name_, resource_ids);
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
    std::vector<std::vector<std::string>> wanted;
    for (const auto& name : names) {
      // A ticket read before is still the same while its inode stays locked (a changed ticket
      // is a new inode, and its waiter unlocks the old one): one flock instead of open, flock,
      // read and close, for every earlier waiter, on every wake-up of every waiter.
      const auto cached = read_tickets_.find(name);
      if (cached != read_tickets_.end()) {
        if (::flock(cached->second.fd.get(), LOCK_SH | LOCK_NB) != 0) {
          wanted.push_back(cached->second.wanted);
          continue;
        }
        read_tickets_.erase(cached);  // replaced or abandoned: read the path afresh
      }
      const fs::path path = queue_dir_ / name;
      Fd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
      if (!fd) continue;
      if (::flock(fd.get(), LOCK_SH | LOCK_NB) == 0) {
        // Nobody holds it: its waiter died without cleaning up.
        if (same_inode(fd.get(), path)) ::unlink(path.c_str());
        continue;
      }
      wanted.push_back(parse(read_all(fd.get())));
      if (read_tickets_.size() < kMaxReadTickets) {
        read_tickets_.emplace(name, ReadTicket{std::move(fd), wanted.back()});
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
  };

  std::shared_ptr<TicketState> state_;
  fs::path queue_dir_;
  std::string name_;
  // Used only by the waiting thread that owns this ticket.
  std::map<std::string, ReadTicket> read_tickets_;
};

// One inotify descriptor per backend, shared by every waiting thread: one thread polls, the
// others wait on a condition variable, and a generation counter per thread makes sure no thread
// misses an event another thread read for it.
class Watcher {
 public:
  Watcher(const fs::path& folder, const fs::path& queue_dir) {
    fd_ = Fd(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
    if (!fd_) {
      throw BackendError("cannot watch lock folder " + folder.string() + " (inotify: " +
                         errno_text(errno) + "); raise fs.inotify.max_user_instances");
    }
    folder_wd_ =
        ::inotify_add_watch(fd_.get(), folder.c_str(),
                            IN_CLOSE_WRITE | IN_DELETE | IN_MOVED_TO | IN_CREATE | IN_ATTRIB);
    queue_wd_ = ::inotify_add_watch(fd_.get(), queue_dir.c_str(), IN_DELETE | IN_MOVED_TO);
    if (folder_wd_ < 0 || queue_wd_ < 0) {
      throw BackendError("cannot watch lock folder " + folder.string() + " (inotify: " +
                         errno_text(errno) + "); raise fs.inotify.max_user_watches");
    }
  }

  void wait(Clock::time_point deadline) {
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
  explicit LockFolderBackend(fs::path folder) {
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
                         "); pass a writable --lock-folder or fix its permissions");
    }
    folder_ = fs::canonical(folder, error);
    if (error) folder_ = fs::absolute(folder);
    queue_dir_ = folder_ / kQueueDir;
    if (::mkdir(queue_dir_.c_str(), 0777) != 0 && errno != EEXIST) {
      throw BackendError("cannot create the queue folder " + queue_dir_.string() + " (" +
                         errno_text(errno) +
                         "); pass a writable --lock-folder or fix its permissions");
    }
    watcher_ = std::make_unique<Watcher>(folder_, queue_dir_);
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
    publish_pending_tickets();
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
    state->queue_dir = queue_dir_;
    state->name = name;
    state->wanted = resource_ids;
    {
      std::lock_guard<std::mutex> guard(mutex_);
      pending_.erase(std::remove_if(pending_.begin(), pending_.end(),
                                    [](const auto& weak) { return weak.expired(); }),
                     pending_.end());
      pending_.push_back(state);
    }
    return std::make_unique<FolderTicket>(std::move(state));
  }

  std::optional<HolderInfo> holder_of(const std::string& resource_id) override {
    const fs::path path = pid_path(resource_id);
    Fd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) return std::nullopt;
    if (::flock(fd.get(), LOCK_SH | LOCK_NB) == 0) {
      ::flock(fd.get(), LOCK_UN);
      return std::nullopt;
    }
    HolderInfo info;
    const std::string pid_text = read_all(fd.get());
    const long pid_in_file = std::strtol(pid_text.c_str(), nullptr, 10);
    Fd json_fd(::open(json_path(resource_id).c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (json_fd) {
      info = HolderInfo::from_json(Json::parse(read_all(json_fd.get()), nullptr, false));
      // A details file left by a killed holder must not be shown for a new (e.g. Python) holder.
      if (pid_in_file > 0 && info.pid != pid_in_file) info = HolderInfo{};
    }
    if (info.pid == 0) info.pid = pid_in_file;
    return info;
  }

  std::string describe() const override { return "lock folder " + folder_.string(); }

 private:
  // A waiter becomes visible in the queue before it first sleeps.
  void publish_pending_tickets() {
    std::vector<std::weak_ptr<TicketState>> pending;
    {
      std::lock_guard<std::mutex> guard(mutex_);
      pending.swap(pending_);
    }
    for (const auto& weak : pending) {
      if (const auto state = weak.lock()) {
        std::lock_guard<std::mutex> guard(state->mutex);
        state->publish_locked();
      }
    }
  }

  fs::path pid_path(const std::string& id) const { return folder_ / (id + ".pid"); }
  fs::path json_path(const std::string& id) const { return folder_ / (id + ".pid.json"); }

  [[noreturn]] void throw_open_error(const fs::path& path, int error) const {
    if (error == ELOOP) {
      throw BackendError("lock file " + path.string() +
                         " is a symbolic link; lockable does not follow links in the lock "
                         "folder: remove it");
    }
    throw BackendError("cannot open lock file " + path.string() + " (" + errno_text(error) +
                       "); make " + folder_.string() +
                       " writable for this user or pass another --lock-folder");
  }

  // Opens (and caches) the probe descriptor of `id`. Caller holds the registry claim for `id`,
  // so no other thread of this process uses the same entry meanwhile.
  int probe_fd(const std::string& id) {
    {
      std::lock_guard<std::mutex> guard(probes_->mutex);
      if (const auto it = probes_->fds.find(id); it != probes_->fds.end()) return it->second.get();
    }
    const fs::path path = pid_path(id);
    Fd fd(::open(path.c_str(), probe_flags_ | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0666));
    if (!fd) throw_open_error(path, errno);
    std::lock_guard<std::mutex> guard(probes_->mutex);
    auto& slot = probes_->fds[id];
    slot = std::move(fd);
    return slot.get();
  }

  Fd take_probe(const std::string& id) {
    std::lock_guard<std::mutex> guard(probes_->mutex);
    const auto it = probes_->fds.find(id);
    if (it == probes_->fds.end()) return Fd();
    Fd fd = std::move(it->second);
    probes_->fds.erase(it);
    return fd;
  }

  // The Python package releases with close() and then unlink(), leaving its pid in the file in
  // between. A file we just locked that still names another live process is in that window: were
  // we to keep it, the unlink would leave us holding a nameless file while the next locker creates
  // a new one. So leave it, as the `pid` package itself refuses a file naming a live process.
  // A stale file whose pid was reused by an unrelated process would block forever, so the same
  // file is given up on only for kForeignPidPatience.
  bool releaser_will_unlink(const std::string& id, int fd) {
    char text[32] = {};
    const ssize_t n = ::pread(fd, text, sizeof text - 1, 0);
    const long pid = n > 0 ? std::strtol(text, nullptr, 10) : 0;
    if (pid <= 0 || pid == ::getpid() ||
        (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH)) {
      return false;
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0) return false;
    std::lock_guard<std::mutex> guard(mutex_);
    const auto now = Clock::now();
    auto& seen = foreign_pid_seen_[id];
    if (seen.inode != st.st_ino || seen.pid != pid) seen = ForeignPid{st.st_ino, pid, now};
    return now - seen.since < kForeignPidPatience;
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
      if (!same_inode(fd, path)) {
        // Another program (the Python package) unlinked or replaced the file: our descriptor
        // locks a file nobody else sees. Start over with the file the path names now.
        Fd stale = take_probe(id);
        ::flock(stale.get(), LOCK_UN);
        continue;
      }
      if (releaser_will_unlink(id, fd)) {
        ::flock(fd, LOCK_UN);
        return nullptr;  // its unlink wakes us (IN_DELETE); then we lock the file that replaces it
      }
      Fd lock_fd = take_probe(id);
      Fd write_fd(::open(path.c_str(), O_WRONLY | O_NOFOLLOW | O_CLOEXEC));
      if (!write_fd || !same_inode(write_fd.get(), path)) {
        const int error = write_fd ? ESTALE : errno;
        ::flock(lock_fd.get(), LOCK_UN);
        // The Python package closes, then unlinks: an unlink between our flock and this open
        // removed or replaced the file we locked. Start over with whatever the path names now.
        if (error == ENOENT || error == ESTALE) continue;
        throw_open_error(path, error);
      }
      const std::string pid_line = std::to_string(::getpid()) + "\n";
      if (!replace_content(write_fd.get(), pid_line)) {
        const int error = errno;
        ::flock(lock_fd.get(), LOCK_UN);
        throw BackendError("cannot write " + path.string() + " (" + errno_text(error) +
                           "); free space in " + folder_.string() + " or fix its permissions");
      }
      // The details are a courtesy for `status` and error messages; the lock stands without them.
      write_details(json_path(id), holder.to_json().dump());
      return std::make_unique<FolderHeldLock>(std::move(lock_fd), std::move(write_fd), key, id,
                                              probes_);
    }
    throw BackendError("lock file " + path.string() +
                       " keeps being replaced while locking it; stop the program that deletes it");
  }

  fs::path folder_;
  fs::path queue_dir_;
  std::unique_ptr<Watcher> watcher_;
  std::mutex mutex_;
  std::shared_ptr<ProbeCache> probes_ = std::make_shared<ProbeCache>();
  std::shared_ptr<EmptyQueueCache> empty_queue_ = std::make_shared<EmptyQueueCache>();
  struct ForeignPid {
    ino_t inode = 0;
    long pid = 0;
    Clock::time_point since{};
  };
  std::map<std::string, ForeignPid> foreign_pid_seen_;
  std::vector<std::weak_ptr<TicketState>> pending_;
  std::atomic<int> probe_flags_{O_RDONLY};
};

}  // namespace

std::unique_ptr<LockBackend> make_lock_folder_backend(std::filesystem::path folder) {
  return std::make_unique<LockFolderBackend>(std::move(folder));
}

}  // namespace lockable
