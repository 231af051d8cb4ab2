// Descriptor helpers of the lock folder backend: opening entries safely (no symlink followed, no
// FIFO blocking, only regular files), creating them for every account, read/write loops, and
// messages that say why an entry cannot be used. See descriptors.hpp.

#include "lock_folder/descriptors.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace lockable::folder_backend {
namespace {

std::string kind_of(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISLNK(mode)) return "a symbolic link";
  if (S_ISCHR(mode) || S_ISBLK(mode)) return "a device file";
  return "not a regular file";
}

}  // namespace

std::string errno_text(int error) { return std::strerror(error); }

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool write_all(int fd, const std::string& data) {
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    done += static_cast<std::size_t>(n);
  }
  return true;
}

std::string read_all(int fd) {
  std::string data;
  char buffer[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    data.append(buffer, static_cast<std::size_t>(n));
  }
  return data;
}

bool same_file(const struct stat& a, const struct stat& b) {
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

bool same_inode(int fd, const fs::path& path) {
  struct stat by_fd {};
  struct stat by_path {};
  if (::fstat(fd, &by_fd) != 0 || ::lstat(path.c_str(), &by_path) != 0) return false;
  return same_file(by_fd, by_path);
}

std::string unusable_reason(const fs::path& path, int error) {
  struct stat st {};
  const bool exists = ::lstat(path.c_str(), &st) == 0;
  if (error == ELOOP || (exists && S_ISLNK(st.st_mode))) {
    return path.string() +
           " is a symbolic link; lockable never follows links in the lock folder: remove it";
  }
  if (exists && !S_ISREG(st.st_mode)) {
    return path.string() + " is " + kind_of(st.st_mode) +
           ", not a regular file; lockable only uses regular files there: remove it";
  }
  if (error == EACCES || error == EPERM) {
    char mode[16];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return "cannot open " + path.string() + " (" + errno_text(error) + "; owned by uid " +
           std::to_string(st.st_uid) + " with mode " + mode +
           "): ask its owner or root to remove it or to make it usable by every account "
           "(chmod 0666 " +
           path.string() + ")";
  }
  return "cannot open " + path.string() + " (" + errno_text(error) + "): remove it";
}

UniqueFd open_regular(const fs::path& path, int flags, struct stat& st, int& error) {
  return open_regular_at(AT_FDCWD, path.c_str(), flags, st, error);
}

UniqueFd open_regular_at(int dir, const char* name, int flags, struct stat& st, int& error) {
  UniqueFd fd(::openat(dir, name, flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (!fd) {
    error = errno;
    return UniqueFd();
  }
  if (::fstat(fd.get(), &st) != 0) {
    error = errno;
    return UniqueFd();
  }
  if (!S_ISREG(st.st_mode)) {
    error = kNotRegular;
    return UniqueFd();
  }
  return fd;
}

UniqueFd create_shared(const fs::path& path, int flags, mode_t mode) {
  return create_shared_at(AT_FDCWD, path.c_str(), flags, mode);
}

UniqueFd create_shared_at(int dir, const char* name, int flags, mode_t mode) {
  UniqueFd fd(
      ::openat(dir, name, flags | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, mode));
  if (fd) ::fchmod(fd.get(), mode);
  return fd;
}

UniqueFd open_folder(const fs::path& dir) {
  return UniqueFd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
}

void make_shared_dir(const fs::path& dir) {
  ::mkdir(dir.c_str(), 0777);
  const UniqueFd fd = open_folder(dir);
  struct stat st {};
  if (fd && ::fstat(fd.get(), &st) == 0 && st.st_uid == ::geteuid() &&
      (st.st_mode & 07777) != 01777) {
    ::fchmod(fd.get(), 01777);
  }
}

bool replace_content(int fd, const std::string& content, off_t old_size) {
  std::size_t done = 0;
  while (done < content.size()) {
    const ssize_t n =
        ::pwrite(fd, content.data() + done, content.size() - done, static_cast<off_t>(done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    done += static_cast<std::size_t>(n);
  }
  return old_size <= static_cast<off_t>(content.size()) ||
         ::ftruncate(fd, static_cast<off_t>(content.size())) == 0;
}

bool entry_unusable(int error) {
  return error == ELOOP || error == kNotRegular || error == ENXIO || error == EISDIR;
}

}  // namespace lockable::folder_backend
