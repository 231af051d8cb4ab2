#pragma once

// Private to the lock folder backend: opening and checking the entries of a lock folder, and
// small read/write loops over descriptors. Knows nothing of pid files or tickets.
//
// Every entry of the folder is opened with O_NOFOLLOW | O_NONBLOCK and checked to be a regular
// file: a symlink is never followed, and a FIFO never blocks open(). Existing files are opened
// without O_CREAT (fs.protected_regular refuses O_CREAT on another user's file in a sticky
// folder such as /tmp, even when its mode allows the open); new ones are created with O_EXCL and
// then chmod-ed, so that neither the umask nor the first user's account locks others out.

#include "posix/unique_fd.hpp"

#include <sys/stat.h>
#include <sys/types.h>

#include <filesystem>
#include <string>

namespace lockable::folder_backend {

namespace fs = std::filesystem;
using posix::UniqueFd;

/// open_regular's error for an entry that opened but is not a regular file (no errno says that).
constexpr int kNotRegular = -1;

/// strerror(error), for messages.
std::string errno_text(int error);

/// Whether `text` ends with `suffix` (entry names: `.pid`, `.ticket`).
bool ends_with(const std::string& text, const std::string& suffix);

/// Writes all of `data` at the descriptor's offset, retrying on EINTR. False on an error (errno
/// set).
bool write_all(int fd, const std::string& data);

/// Reads from the descriptor's offset to the end; stops quietly at an error (what was read so far
/// is returned: callers treat torn content as absent).
std::string read_all(int fd);

/// Whether two stats describe the same inode.
bool same_file(const struct stat& a, const struct stat& b);

/// Whether `fd` is still the file `path` names (false when the path is gone or replaced).
bool same_inode(int fd, const fs::path& path);

/// Why `path` cannot serve as a lock or details file after opening it failed with `error`
/// (kNotRegular: it opened but is not a regular file), naming the file and the fix.
std::string unusable_reason(const fs::path& path, int error);

/// Opens an existing entry of the lock folder (see the top of this file). On failure returns an
/// invalid UniqueFd and sets `error` to the errno, or to kNotRegular for a directory, FIFO or
/// socket; on success `st` is the entry's fstat.
UniqueFd open_regular(const fs::path& path, int flags, struct stat& st, int& error);
/// open_regular for the entry `name` of the folder open as `dir` (see open_folder).
UniqueFd open_regular_at(int dir, const char* name, int flags, struct stat& st, int& error);

/// Creates `path` (failing with EEXIST when anything is there) with `mode` for every account: the
/// mode is set after creation because the creator's umask (077 on some accounts) must not apply.
/// errno is set when the returned UniqueFd is invalid.
UniqueFd create_shared(const fs::path& path, int flags, mode_t mode);
/// create_shared for the entry `name` of the folder open as `dir` (see open_folder).
UniqueFd create_shared_at(int dir, const char* name, int flags, mode_t mode);

/// Opens the folder `dir` for the *at calls, never through a symlink: in a lock folder every
/// account may write, another account could plant `.lockable-queue -> /etc` to make us create,
/// read and remove entries there. Invalid, with errno set, when `dir` is missing (ENOENT) or is a
/// symlink or not a folder (ELOOP, ENOTDIR).
UniqueFd open_folder(const fs::path& dir);

/// Creates the folder `dir` for every account of the lock folder: mode 1777, like /tmp (anyone may
/// add an entry, only its owner may remove it). Also widens a folder of ours left narrower (an
/// older version, a umask). Another account's folder is left as it is.
void make_shared_dir(const fs::path& dir);

/// Overwrites the file's content from offset 0, truncating only when the old content (`old_size`
/// bytes, from a fstat the caller made anyway) was longer: a truncation costs as much as the write.
bool replace_content(int fd, const std::string& content, off_t old_size);

/// True for an open() error (or kNotRegular) that says the entry itself is unusable (a symlink,
/// a directory, a FIFO, a socket) rather than that we may not write it.
bool entry_unusable(int error);

}  // namespace lockable::folder_backend
