#pragma once

#include <lockable/backend.hpp>

#include <filesystem>
#include <memory>

namespace lockable {

/// The local backend: `<folder>/<id>.pid` files held with an exclusive flock(), holding
/// "<pid>\n" while held and emptied on release, compatible with the Python `lockable` package.
/// Holder details go to `<folder>/<id>.pid.json`; the fair queue lives in
/// `<folder>/.lockable-queue/`. Waiters learn of releases through inotify. Creates the folder if
/// missing; throws BackendError naming the folder and the fix when it cannot be used.
std::unique_ptr<LockBackend> make_lock_folder_backend(std::filesystem::path folder);

/// The default lock folder: the system temp dir as Python's `tempfile.gettempdir()` finds it
/// (the Python package's and its pytest plugin's default): the first of TMPDIR, TEMP, TMP, /tmp,
/// /var/tmp, /usr/tmp that is an existing directory this user can write in, else the working
/// directory. Absolute. Never creates a folder.
std::filesystem::path default_lock_folder();

}  // namespace lockable
