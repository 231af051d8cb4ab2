// The held-file checker of the lock folder backend; see held_files.hpp for why it polls.

#include "lock_folder/held_files.hpp"

#include "core/json_text.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace lockable::folder_backend {
namespace {

bool process_alive(long pid) {
  return pid > 0 && (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM);
}

// The `.lost` note: the holder's details and the reason.
std::string lost_note_text(const std::string& holder_json, const std::string& reason) {
  Json content = Json::parse(holder_json, nullptr, false);
  if (!content.is_object()) content = Json::object();
  content["reason"] = reason;
  return detail::dump(content);
}

std::string alloc_id_of(const Json& holder) {
  return HolderInfo::from_json(holder.is_object() ? holder : Json::object()).alloc_id;
}

}  // namespace

// The process's one checker: a list of the watches of held files, and the thread that checks
// them. Never destroyed: its thread lives until exit.
class Checker {
 public:
  static Checker& instance() {
    static auto* checker = new Checker();
    return *checker;
  }

  void watch(HeldFileWatch& file) {
    bool start = false;
    {
      std::lock_guard<std::mutex> guard(mutex_);
      file.next_ = head_;
      if (head_ != nullptr) head_->prev_ = &file;
      head_ = &file;
      file.linked_ = true;
      if (!started_ && !callers_check_) {
        started_ = start = true;
      } else if (idle_) {
        idle_ = false;
        wake_.notify_one();  // at most once per interval, however often locks come and go
      }
    }
    // Started outside the mutex, which the new thread takes first: started under it, the thread
    // blocked at once and had to be woken (cli_bench: about 3 context switches per run).
    if (start) {
      try {
        std::thread([this] { loop(); }).detach();
      } catch (...) {
        // No thread (out of threads): lost() still checks; the next lock tries again.
        std::lock_guard<std::mutex> guard(mutex_);
        started_ = false;
      }
    }
  }

  void unwatch(HeldFileWatch& file) noexcept {
    std::lock_guard<std::mutex> guard(mutex_);
    if (!file.linked_) return;
    if (file.prev_ != nullptr) file.prev_->next_ = file.next_;
    if (file.next_ != nullptr) file.next_->prev_ = file.prev_;
    if (head_ == &file) head_ = file.next_;
    file.prev_ = file.next_ = nullptr;
    file.linked_ = false;
    if (file.note_written_) {
      try {
        remove_lost_note(file);
      } catch (...) {
        // The note stays; readers ignore it once this process has ended.
      }
    }
  }

  void let_callers_check() {
    std::lock_guard<std::mutex> guard(mutex_);
    callers_check_ = true;
  }

  void check() {
    std::vector<std::pair<std::shared_ptr<LockLossSignal>, std::string>> newly_lost;
    {
      std::lock_guard<std::mutex> guard(mutex_);
      for (HeldFileWatch* file = head_; file != nullptr; file = file->next_) {
        if (!file->lost_ && !still_named(*file)) {
          file->lost_ = true;
          file->reason_ = "lock file " + file->path_.string() + " of " + file->id_ +
                          " was removed or replaced while this process held it, so another "
                          "process may lock " +
                          file->id_ +
                          " now; stop the program that deletes files in the lock folder (a "
                          "temp cleaner?) or use another --lock-folder";
          newly_lost.emplace_back(file->signal_, file->reason_);
        }
        if (file->lost_ && !file->note_written_) file->note_written_ = write_lost_note(*file);
      }
    }
    // Outside the mutex: a handler may take its time, and release() (which unwatches) waits
    // for a running handler.
    for (const auto& [signal, reason] : newly_lost) signal->notify(reason);
  }

 private:
  // Whether the path still names the file that was locked (an lstat: the inode of the locked
  // descriptor cannot change).
  static bool still_named(const HeldFileWatch& file) {
    struct stat st {};
    return ::lstat(file.path_.c_str(), &st) == 0 && st.st_dev == file.dev_ &&
           st.st_ino == file.ino_;
  }

  // Writes the `.lost` note; false while it cannot (the folder itself was removed: the next
  // locker makes it again, and the next check retries).
  static bool write_lost_note(const HeldFileWatch& file) {
    const fs::path note = lost_note_path(file.path_.parent_path(), file.id_);
    const std::string text = lost_note_text(file.holder_json_, file.reason_);
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

  static void remove_lost_note(const HeldFileWatch& file) {
    const fs::path note = lost_note_path(file.path_.parent_path(), file.id_);
    struct stat st {};
    int error = 0;
    UniqueFd fd = open_regular(note, O_RDONLY, st, error);
    if (!fd) return;
    const Json content = Json::parse(read_all(fd.get()), nullptr, false);
    // Only our own: another holder of ours may have lost the device since and written its note.
    if (alloc_id_of(content) == alloc_id_of(Json::parse(file.holder_json_, nullptr, false))) {
      ::unlink(note.c_str());
    }
  }

  void loop() {
    ::pthread_setname_np(::pthread_self(), kCheckerThreadName);  // for ps, top and tests
    for (;;) {
      {
        // Asleep without a deadline while nothing is held: no wake-ups between locks.
        std::unique_lock<std::mutex> lock(mutex_);
        while (head_ == nullptr) {
          idle_ = true;
          wake_.wait(lock);
        }
        idle_ = false;
      }
      std::this_thread::sleep_for(kHeldFileCheckInterval);
      try {
        check();
      } catch (...) {
        // Out of memory for a reason text: try again next time.
      }
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  bool started_ = false;
  bool callers_check_ = false;  // check_held_files_on_callers_thread()
  bool idle_ = false;           // the thread waits on wake_ for a first held file
  HeldFileWatch* head_ = nullptr;
};

HeldFileWatch::HeldFileWatch(const fs::path& path, const std::string& id, dev_t dev, ino_t ino,
                             std::string holder_json, std::shared_ptr<LockLossSignal> signal)
    : path_(path),
      id_(id),
      dev_(dev),
      ino_(ino),
      holder_json_(std::move(holder_json)),
      signal_(std::move(signal)) {
  Checker::instance().watch(*this);
}

HeldFileWatch::~HeldFileWatch() { stop(); }

void HeldFileWatch::stop() noexcept { Checker::instance().unwatch(*this); }

fs::path lost_note_path(const fs::path& folder, const std::string& id) {
  return folder / (id + ".pid.lost");
}

void check_held_files_now() { Checker::instance().check(); }

void check_held_files_on_callers_thread() { Checker::instance().let_callers_check(); }

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
