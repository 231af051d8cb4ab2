#pragma once

// Private to the lock folder backend: noticing that a held lock file was removed or replaced
// (a temp-dir cleaner, `rm -rf` of the lock folder, a hand-made `<id>.pid`). The flock we hold
// then locks a file nobody else can see, and the next locker gets the device too; the holder
// must be told (the loss contract: LockLossSignal) and others must be able to see it (`lockable
// status`).
//
// How: one checker thread per process, started by the first held lock, compares every held
// file's fstat() with an lstat() of its path every kHeldFileCheckInterval. Two system calls per
// held lock per interval, and nothing on the lock/unlock path but a map insert and erase. Not
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

namespace lockable::folder_backend {

/// How often the checker compares held files with their paths: the longest a removed or
/// replaced lock file goes unnoticed by its holder.
constexpr auto kHeldFileCheckInterval = std::chrono::milliseconds(100);

/// One held lock file to check.
struct HeldFile {
  int fd = -1;        ///< the flock()ed descriptor; the caller keeps it open until unwatched
  fs::path path;      ///< `<folder>/<id>.pid`
  std::string id;     ///< the resource id, for the reason
  HolderInfo holder;  ///< written to the `.lost` note
  std::shared_ptr<LockLossSignal> signal;  ///< notified once, on the checker thread
};

/// `<folder>/<id>.pid.lost`.
fs::path lost_note_path(const fs::path& folder, const std::string& id);

/// Starts checking `file` (and the checker thread, the first time). Returns a key for unwatch.
std::uint64_t watch_held_file(HeldFile file);

/// Stops checking: after it returns, the checker never touches the descriptor again. Removes
/// the `.lost` note it wrote for this lock, if any. Never throws.
void unwatch_held_file(std::uint64_t key) noexcept;

/// Checks now, on the caller's thread (what the checker thread does each interval); for tests.
void check_held_files_now();

/// The note of a live holder that lost its lock on `id` in `folder` ("pid 4242 on rig-01, ...:
/// <reason>"), or nullopt. A note whose process has ended is ignored.
std::optional<std::string> read_lost_note(const fs::path& folder, const std::string& id);

}  // namespace lockable::folder_backend
