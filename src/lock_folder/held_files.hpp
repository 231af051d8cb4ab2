#pragma once

// Private to the lock folder backend: noticing that a held lock file was removed or replaced
// (a temp-dir cleaner, `rm -rf` of the lock folder, a hand-made `<id>.pid`). The flock we hold
// then locks a file nobody else can see, and the next locker gets the device too; the holder
// must be told (the loss contract: LockLossSignal) and others must be able to see it (`lockable
// status`).
//
// How: one checker thread per process, started by the first held lock, compares every held
// file's inode (taken when it was locked) with an lstat() of its path every
// kHeldFileCheckInterval: one system call per held lock per interval. On the lock/unlock path:
// linking and unlinking a HeldFileWatch (owned by the lock, no allocation) under a mutex. The
// thread sleeps without waking while no lock is held. Not
// inotify: a watch on the held file sees an unlink only as IN_ATTRIB (IN_DELETE_SELF waits for
// the last descriptor, ours), an instance of its own costs a close() of ~14 ms per lock, and a
// shared one would need watch bookkeeping against the per-user watch limit, to save at most a
// tenth of a second of notice on an event that is a misconfiguration anyway.
//
// A lost lock leaves `<folder>/<id>.pid.lost` (the holder's details and the reason) while its
// holder still runs, so that `lockable status` in another process can say the device may be
// used twice; the holder removes it when it releases.

#include <lockable/backend.hpp>
#include <lockable/lock_loss.hpp>

#include "lock_folder/descriptors.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <sys/types.h>

namespace lockable::folder_backend {

/// How often the checker compares held files with their paths: the longest a removed or
/// replaced lock file goes unnoticed by its holder.
constexpr auto kHeldFileCheckInterval = std::chrono::milliseconds(100);

/// The checker thread's name (/proc/<pid>/task/<tid>/comm).
constexpr const char* kCheckerThreadName = "lockable-check";

/// `<folder>/<id>.pid.lost`.
fs::path lost_note_path(const fs::path& folder, const std::string& id);

/// Checks one held lock file while it exists: the constructor starts (and the checker thread,
/// the first time), stop() or the destructor ends it. The registration allocates nothing, so
/// that the lock/unlock path pays only a mutex. Not copyable: the checker keeps its address.
class HeldFileWatch {
 public:
  /// `path` and `id` are the lock's own: they must outlive this object (declare it after them).
  /// `dev`/`ino` are the locked descriptor's file; the caller keeps that descriptor open and
  /// flock()ed until stop(). `holder_json` is the holder's details as written to
  /// `<id>.pid.json`, kept for the `.lost` note. `signal` is notified once, on the checker thread
  /// (or on the thread of check_held_files_now()).
  HeldFileWatch(const fs::path& path, const std::string& id, dev_t dev, ino_t ino,
                std::string holder_json, std::shared_ptr<LockLossSignal> signal);
  ~HeldFileWatch();
  HeldFileWatch(const HeldFileWatch&) = delete;
  HeldFileWatch& operator=(const HeldFileWatch&) = delete;

  /// Stops checking: after it returns, the checker never touches this object again. Removes
  /// the `.lost` note it wrote for this lock, if any. Idempotent; never throws.
  void stop() noexcept;

 private:
  friend class Checker;
  const fs::path& path_;
  const std::string& id_;
  dev_t dev_;
  ino_t ino_;
  std::string holder_json_;
  std::shared_ptr<LockLossSignal> signal_;
  // The checker's list and state; guarded by the checker's mutex.
  HeldFileWatch* prev_ = nullptr;
  HeldFileWatch* next_ = nullptr;
  bool linked_ = false;
  bool lost_ = false;
  bool note_written_ = false;
  std::string reason_;
};

/// Checks now, on the caller's thread (what the checker thread does each interval).
void check_held_files_now();

/// From now on this process starts no checker thread: its caller promises to call
/// check_held_files_now() at least every kHeldFileCheckInterval while it holds a lock. For a
/// front end that waits in a loop of its own anyway (the CLI while its command runs), whose
/// short runs then never pay for a thread start (cli_bench: about a fifth of a millisecond).
/// A checker thread already started goes on.
void check_held_files_on_callers_thread();

/// The note of a live holder that lost its lock on `id` in `folder` ("pid 4242 on rig-01, ...:
/// <reason>"), or nullopt. A note whose process has ended is ignored.
std::optional<std::string> read_lost_note(const fs::path& folder, const std::string& id);

}  // namespace lockable::folder_backend
