#pragma once

// Private to the lock folder backend: the pid-file protocol shared with the Python `lockable`
// package. A device is held by an exclusive flock() on `<folder>/<id>.pid`; while held the file
// holds "<pid>\n" and it is emptied on release. A file that names another live process counts as
// held even when nobody flocks it (the `pid` package's rule), unless that pid was provably reused.
// Holder details (HolderInfo as JSON) go to `<folder>/<id>.pid.json`, a courtesy for `status` and
// error messages. What a holder reads or writes in these two files lives here; the locking dance
// (probe, flock, inode checks) is the backend's (lock_folder.cpp).

#include <lockable/backend.hpp>

#include "lock_folder/descriptors.hpp"

#include <optional>
#include <string>

namespace lockable::folder_backend {

/// `<folder>/<id>.pid`: the file whose flock is the lock.
fs::path pid_path(const fs::path& folder, const std::string& id);

/// `<folder>/<id>.pid.json`: the holder details.
fs::path details_path(const fs::path& folder, const std::string& id);

/// Whether a lock folder entry named `name` is a pid file (what waiters watch).
bool is_pid_file_name(const std::string& name);

/// The pid a lock file names when that is a live process other than us whose pid was not provably
/// reused, else 0. Such a file is never taken, however long it stays (the `pid` package's own
/// rule): its process is a Python holder between its close() and unlink(), and were we to take
/// the file, that unlink would leave us holding a nameless file while the next locker creates a
/// new one. `st` is the file's fstat.
long live_other_pid(int fd, const struct stat& st);

/// Writes "<our pid>\n" as the whole content of the pid file open for writing as `fd`, whose
/// content was `old_size` bytes. False on an error (errno set).
bool write_own_pid(int fd, off_t old_size);

/// Empties the pid file open for writing as `fd`, so that the Python package does not take our
/// (live) pid for a holder once we unlock. Best effort: the unlock is what frees the device.
void clear_pid(int fd);

/// What `<id>.pid.json` holds: the text of detail::dump(holder.to_json()), byte for byte, made
/// without building the JSON tree (the lock path writes it on every lock).
std::string holder_details_text(const HolderInfo& holder);

/// Writes the holder details next to the lock, in place: a temp file + rename() would make a
/// reader never see a torn file, but costs a create, a rename and an unlink per allocation (about
/// half of an uncontended lock). Readers treat unparseable details as absent and fall back to the
/// pid, so a torn read only shows less. The details are left in place on release: readers only
/// look at them while the lock is held and check their pid against the pid file, so details of a
/// former holder are never shown for another one. Returns 0, or the error that makes the entry
/// unusable (see entry_unusable); another account's file we may not write is skipped: the details
/// are a courtesy.
int write_details(const fs::path& path, const std::string& content);

/// As write_details, through `cached` when it still names a linked file (kept open across locks
/// of one device: no open() and no close() per lock, so no IN_CLOSE_WRITE that every watcher of
/// the folder would wake for), else through a descriptor opened now and left in `cached`. The
/// file is `details_path(folder, id)`; the path is made only when it is opened.
int write_details(const fs::path& folder, const std::string& id, const std::string& content,
                  UniqueFd& cached);

/// The holder of `<folder>/<id>.pid`, read without writing anything (also for a read-only
/// observer): nullopt when free. A free file that names another live process counts as held by
/// it, as lockers leave such a file alone (see live_other_pid).
std::optional<HolderInfo> read_holder(const fs::path& folder, const std::string& id);

}  // namespace lockable::folder_backend
