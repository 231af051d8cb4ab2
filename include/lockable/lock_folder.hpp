#pragma once

#include <lockable/backend.hpp>

#include <filesystem>
#include <functional>
#include <memory>
#include <string>

namespace lockable {

/// Receives the lock folder backend's warnings, one line each starting with "lockable: warning:"
/// (no inotify left, a queue folder this account may not write, a lock file removed while held).
/// Called on the thread that locks, waits or releases.
using LockFolderLog = std::function<void(const std::string&)>;

/// The local backend: `<folder>/<id>.pid` files held with an exclusive flock(), holding
/// "<pid>\n" while held and emptied on release, compatible with the Python `lockable` package.
/// Holder details go to `<folder>/<id>.pid.json`; the fair queue lives in
/// `<folder>/.lockable-queue/`. A reservation (LockBackend::reserve) is
/// `<folder>/<id>.reserved.json`, which this library's lockers honour; to keep the Python package
/// off too, a process must hold `<id>.pid` (the holder `lockable reserve` starts); `force_release`
/// only names the holder (a flock cannot be taken from a living process). Waiters learn of
/// releases through inotify (polling when no inotify instance is left). Files are usable by every
/// account that may write the folder. Creates the folder if missing; throws BackendError naming the
/// folder and the fix when it cannot be used, and try_lock throws ResourceUnusableError for one
/// device whose lock file is a symlink, a directory, a FIFO or a file this account may not open.
/// Warnings go to stderr.
/// A held lock whose file is removed or replaced (a temp cleaner, `rm -rf` of the folder) is
/// lost: lost() says so at once, the loss handler runs within about 100 ms (on a checker
/// thread, or on the thread whose lost() noticed first), and `<folder>/<id>.pid.lost` tells
/// `lockable status` (lost_hold) until the holder releases.
std::unique_ptr<LockBackend> make_lock_folder_backend(std::filesystem::path folder);

/// The same, with the warnings sent to `log` (stderr when empty).
std::unique_ptr<LockBackend> make_lock_folder_backend(std::filesystem::path folder,
                                                      LockFolderLog log);

/// A read-only observer of a lock folder, for `lockable status`: holder_of() and queued() work as
/// in the backend above, but nothing on disk is created or changed (a missing folder stays missing
/// and all its devices read as free), no inotify instance is used, try_lock() throws BackendError
/// and enqueue() returns a ticket that sees no earlier waiter. Works without write permission.
std::unique_ptr<LockBackend> make_lock_folder_observer(std::filesystem::path folder);

/// The default lock folder: the system temp dir as Python's `tempfile.gettempdir()` finds it
/// (the Python package's and its pytest plugin's default): the first of TMPDIR, TEMP, TMP, /tmp,
/// /var/tmp, /usr/tmp that is an existing directory this user can write in, else the working
/// directory. Absolute. Never creates a folder.
std::filesystem::path default_lock_folder();

}  // namespace lockable
