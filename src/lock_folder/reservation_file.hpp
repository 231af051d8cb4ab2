#pragma once

// Private to the lock folder backend (and to the CLI's reservation holder):
// `<folder>/<id>.reserved.json`, the file that takes a device out of service. Written atomically (a
// temp file renamed over it), so a reader sees the old or the new reservation, never a torn one.
// Besides the Reservation it holds a token: the reservation holder process locks the device with
// alloc id `reservation <token>`, which is how `status` tells that the holder still runs.

#include <lockable/backend.hpp>

#include "lock_folder/descriptors.hpp"

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace lockable::folder_backend {

/// `<folder>/<id>.reserved.json`.
fs::path reservation_path(const fs::path& folder, const std::string& id);

/// What the file holds.
struct ReservationFile {
  Reservation reservation;
  /// Random; names this reservation's holder process (`reservation <token>` as its alloc id).
  std::string token;
};

/// A new random token.
std::string new_reservation_token();

/// The alloc id the holder process of `token` locks with.
std::string reservation_alloc_id(const std::string& token);

/// Writes the reservation of `id` atomically. Throws ResourceUnusableError when the entry is not
/// a regular file (a symlink, a directory, a FIFO: never followed or replaced), BackendError when
/// the folder cannot be written.
void write_reservation(const fs::path& folder, const std::string& id, const ReservationFile& file);

/// The reservation of `id`, expired ones included (the caller decides); nullopt when there is
/// none. A file that cannot be read or parsed counts as a reservation whose reason says what is
/// wrong with it and how to fix it: a device is never handed out because its reservation is
/// damaged.
std::optional<ReservationFile> read_reservation(const fs::path& folder, const std::string& id);

/// read_reservation of `id` whose file is `path` (reservation_path(folder, id), made once by a
/// caller that asks on every lock).
std::optional<ReservationFile> read_reservation_at(const fs::path& path, const std::string& id);

/// Removes the reservation of `id` when its token is `token` (any token when empty). True when a
/// file was removed. Throws BackendError when it cannot be removed.
bool remove_reservation(const fs::path& folder, const std::string& id, const std::string& token);

/// `<folder>/.lockable-reserved`: one empty entry per reserved id, named by the id, beside the
/// `<id>.reserved.json` files, which stay the truth. A `lockable COMMAND` run restarts missing
/// reservation holders (after a reboot) from this short list instead of reading the whole lock
/// folder, which is /tmp by default and may hold thousands of unrelated entries (measured: about
/// 1 ms of CPU per 1,000 entries on every run).
fs::path reservation_index_dir(const fs::path& folder);

/// The ids whose reservation a holder may have to be restarted for: the index's entries whose
/// reservation file still exists (stale entries are removed, best effort). A folder without an
/// index (written by an older version, or never reserved in) is read whole once, and the index is
/// made from what it holds.
std::vector<std::string> indexed_reservations(const fs::path& folder);

/// Reads the whole folder and adds every `<id>.reserved.json` missing from the index (one an older
/// version wrote after the index existed). Best effort; for the rare reservation commands.
void reindex_reservations(const fs::path& folder);

/// Locks `id` for its reservation holder: what `backend.try_lock` does, except that the
/// reservation file does not stop it. `backend` must be a lock folder backend (else
/// BackendError). nullptr when someone else holds the device.
std::unique_ptr<HeldLock> lock_for_reservation(LockBackend& backend, const std::string& id,
                                               const HolderInfo& holder);

/// The folder of a lock folder backend (BackendError for another backend).
fs::path folder_of(LockBackend& backend);

}  // namespace lockable::folder_backend
