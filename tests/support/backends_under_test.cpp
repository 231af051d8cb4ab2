#include "lockable/test/backends_under_test.hpp"

#include <dirent.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stdexcept>
#include <system_error>

#include "lockable/test/files.hpp"

namespace lockable::test {
namespace {

namespace fs = std::filesystem;

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Counts IN_CLOSE_WRITE events on one file of a folder: each is a wake-up for every waiter of
// the lock folder.
class CloseWriteCounter {
 public:
  CloseWriteCounter(const fs::path& folder, std::string file) : file_(std::move(file)) {
    fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd_ < 0 || ::inotify_add_watch(fd_, folder.c_str(), IN_CLOSE_WRITE) < 0) {
      const int error = errno;
      if (fd_ >= 0) ::close(fd_);
      throw std::system_error(error, std::generic_category(),
                              "cannot watch " + folder.string() + " with inotify");
    }
  }
  ~CloseWriteCounter() { ::close(fd_); }
  CloseWriteCounter(const CloseWriteCounter&) = delete;
  CloseWriteCounter& operator=(const CloseWriteCounter&) = delete;

  int count() {
    alignas(inotify_event) char buffer[16384];
    for (ssize_t n; (n = ::read(fd_, buffer, sizeof buffer)) > 0;) {
      for (ssize_t offset = 0; offset < n;) {
        const auto* event = reinterpret_cast<const inotify_event*>(buffer + offset);
        offset += static_cast<ssize_t>(sizeof(inotify_event) + event->len);
        if (event->len > 0 && file_ == event->name) ++count_;
      }
    }
    return count_;
  }

 private:
  int fd_ = -1;
  std::string file_;
  int count_ = 0;
};

// The local lock folder: `<id>.pid` files held with flock, tickets in `.lockable-queue/` named
// `<arrival>-<pid>-<n>.ticket` and touched every second while their waiter waits.
class LockFolderStore final : public StoreUnderTest {
 public:
  explicit LockFolderStore(fs::path folder) : folder_(std::move(folder)) {
    // Made now so that watches on it can start before the first process locks there.
    fs::create_directories(folder_);
  }

  std::string spec() const override { return "file://" + folder_.string(); }

  bool has_queued(long pid) const override { return ticket_of(pid).has_value(); }

  bool is_locked(const std::string& resource_id) const override {
    return is_flocked(folder_ / (resource_id + ".pid"));
  }

  bool refreshes_queue_entries() const override { return true; }

  std::optional<double> queue_refreshed_at(long pid) const override {
    const auto ticket = ticket_of(pid);
    struct stat st {};
    if (!ticket || ::stat(ticket->c_str(), &st) != 0) return std::nullopt;
    return static_cast<double>(st.st_mtim.tv_sec) + static_cast<double>(st.st_mtim.tv_nsec) / 1e9;
  }

  std::function<int()> count_lock_writes(const std::string& resource_id) override {
    auto counter = std::make_shared<CloseWriteCounter>(folder_, resource_id + ".pid");
    return [counter] { return counter->count(); };
  }

 private:
  // The ticket of process `pid` (its name holds "-<pid>-"); temp files start with '.'.
  std::optional<fs::path> ticket_of(long pid) const {
    const fs::path queue = folder_ / ".lockable-queue";
    const std::string tag = "-" + std::to_string(pid) + "-";
    std::optional<fs::path> found;
    if (DIR* dir = ::opendir(queue.c_str())) {
      while (const dirent* entry = ::readdir(dir)) {
        const std::string name = entry->d_name;
        if (name.front() != '.' && name.find(tag) != std::string::npos &&
            ends_with(name, ".ticket")) {
          found = queue / name;
        }
      }
      ::closedir(dir);
    }
    return found;
  }

  fs::path folder_;
};

}  // namespace

const std::vector<BackendUnderTest>& backends_under_test() {
  static const std::vector<BackendUnderTest> backends = {
      {"LockFolder",
       [](const fs::path& dir) -> std::unique_ptr<StoreUnderTest> {
         return std::make_unique<LockFolderStore>(dir / "locks");
       }},
  };
  return backends;
}

}  // namespace lockable::test
