// The held-file checker of the lock folder backend; see held_files.hpp for why it polls.

#include "lock_folder/held_files.hpp"

#include "core/json_text.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

namespace lockable::folder_backend {
namespace {

struct Entry {
  HeldFile file;
  bool lost = false;
  bool note_written = false;
  std::string reason;
};

bool process_alive(long pid) {
  return pid > 0 && (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM);
}

// Writes the `.lost` note; false while it cannot (the folder itself was removed: the next
// locker makes it again, and the next check retries).
bool write_lost_note(const Entry& entry) {
  const fs::path note = lost_note_path(entry.file.path.parent_path(), entry.file.id);
  Json content = entry.file.holder.to_json();
  content["reason"] = entry.reason;
  const std::string text = detail::dump(content);
  UniqueFd fd = create_shared(note, O_WRONLY, 0666);
  if (!fd && errno == EEXIST) {
    struct stat st {};
    int error = 0;
    fd = open_regular(note, O_WRONLY, st, error);
    if (fd && !replace_content(fd.get(), text, st.st_size)) return false;
    return static_cast<bool>(fd);
  }
  return fd && write_all(fd.get(), text);
}

void remove_lost_note(const Entry& entry) {
  const fs::path note = lost_note_path(entry.file.path.parent_path(), entry.file.id);
  struct stat st {};
  int error = 0;
  UniqueFd fd = open_regular(note, O_RDONLY, st, error);
  if (!fd) return;
  const Json content = Json::parse(read_all(fd.get()), nullptr, false);
  // Only our own: another holder of ours may have lost the device since and written its note.
  if (HolderInfo::from_json(content).alloc_id == entry.file.holder.alloc_id) {
    ::unlink(note.c_str());
  }
}

class Checker {
 public:
  static Checker& instance() {
    static auto* checker = new Checker();  // never destroyed: its thread lives until exit
    return *checker;
  }

  std::uint64_t watch(HeldFile file) {
    std::lock_guard<std::mutex> guard(mutex_);
    if (!started_) {
      std::thread([this] { loop(); }).detach();
      started_ = true;
    }
    const std::uint64_t key = next_key_++;
    entries_[key].file = std::move(file);
    return key;
  }

  void unwatch(std::uint64_t key) noexcept {
    std::lock_guard<std::mutex> guard(mutex_);
    const auto it = entries_.find(key);
    if (it == entries_.end()) return;
    if (it->second.note_written) {
      try {
        remove_lost_note(it->second);
      } catch (...) {
        // The note stays; readers ignore it once this process has ended.
      }
    }
    entries_.erase(it);
  }

  void check() {
    std::vector<std::pair<std::shared_ptr<LockLossSignal>, std::string>> newly_lost;
    {
      std::lock_guard<std::mutex> guard(mutex_);
      for (auto& [key, entry] : entries_) {
        if (!entry.lost && !same_inode(entry.file.fd, entry.file.path)) {
          entry.lost = true;
          entry.reason = "lock file " + entry.file.path.string() + " of " + entry.file.id +
                         " was removed or replaced while this process held it, so another "
                         "process may lock " +
                         entry.file.id +
                         " now; stop the program that deletes files in the lock folder (a temp "
                         "cleaner?) or use another --lock-folder";
          newly_lost.emplace_back(entry.file.signal, entry.reason);
        }
        if (entry.lost && !entry.note_written) entry.note_written = write_lost_note(entry);
      }
    }
    // Outside the mutex: a handler may take its time, and release() (which unwatches) waits
    // for a running handler.
    for (const auto& [signal, reason] : newly_lost) signal->notify(reason);
  }

 private:
  void loop() {
    for (;;) {
      std::this_thread::sleep_for(kHeldFileCheckInterval);
      try {
        check();
      } catch (...) {
        // Out of memory for a reason text: try again next time.
      }
    }
  }

  std::mutex mutex_;
  bool started_ = false;
  std::uint64_t next_key_ = 1;
  std::map<std::uint64_t, Entry> entries_;
};

}  // namespace

fs::path lost_note_path(const fs::path& folder, const std::string& id) {
  return folder / (id + ".pid.lost");
}

std::uint64_t watch_held_file(HeldFile file) { return Checker::instance().watch(std::move(file)); }

void unwatch_held_file(std::uint64_t key) noexcept { Checker::instance().unwatch(key); }

void check_held_files_now() { Checker::instance().check(); }

std::optional<std::string> read_lost_note(const fs::path& folder, const std::string& id) {
  struct stat st {};
  int error = 0;
  UniqueFd fd = open_regular(lost_note_path(folder, id), O_RDONLY, st, error);
  if (!fd) return std::nullopt;
  const Json content = Json::parse(read_all(fd.get()), nullptr, false);
  if (!content.is_object()) return std::nullopt;
  const HolderInfo holder = HolderInfo::from_json(content);
  if (!process_alive(holder.pid)) return std::nullopt;
  const auto reason = content.find("reason");
  return holder.describe() + ": " +
         (reason != content.end() && reason->is_string() ? reason->get<std::string>()
                                                         : std::string("lost its lock"));
}

}  // namespace lockable::folder_backend
