// `<folder>/<id>.reserved.json`: reading, writing (temp file + rename) and removing a device's
// reservation. See reservation_file.hpp.

#include "lock_folder/reservation_file.hpp"

#include <lockable/error.hpp>
#include <lockable/resource.hpp>

#include "core/json_text.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>

namespace lockable::folder_backend {
namespace {

std::string random_hex() {
  std::random_device device;
  std::string text;
  for (int i = 0; i < 4; ++i) {
    char part[9];
    std::snprintf(part, sizeof part, "%08x", static_cast<unsigned>(device()));
    text += part;
  }
  return text;
}

constexpr const char kReservedSuffix[] = ".reserved.json";

// The ids of every `<id>.reserved.json` in the folder: one pass over its entries, names only.
std::vector<std::string> all_reserved_ids(const fs::path& folder) {
  std::vector<std::string> ids;
  DIR* dir = ::opendir(folder.c_str());
  if (dir == nullptr) return ids;
  const std::size_t suffix_size = sizeof kReservedSuffix - 1;
  while (const dirent* entry = ::readdir(dir)) {
    const std::size_t size = std::strlen(entry->d_name);
    if (size <= suffix_size || entry->d_name[0] == '.' ||
        std::memcmp(entry->d_name + size - suffix_size, kReservedSuffix, suffix_size) != 0) {
      continue;
    }
    std::string id(entry->d_name, size - suffix_size);
    if (invalid_id_reason(id).empty()) ids.push_back(std::move(id));
  }
  ::closedir(dir);
  return ids;
}

// The index folder, never through a symlink: in a lock folder every account may write, another
// account could plant `.lockable-reserved -> /etc` to make us list, create and remove entries
// there. Every entry is then reached relative to this descriptor (the *at calls). Invalid when
// the index is missing (errno ENOENT) or is not a folder of its own.
UniqueFd open_index(const fs::path& folder) { return open_folder(reservation_index_dir(folder)); }

// Best effort: without its entry, a reservation's holder is restarted by `reserve`/`unreserve`
// (which reindex) rather than by any run.
void add_index_entry(int index, const std::string& id) {
  create_shared_at(index, id.c_str(), O_WRONLY, 0644);  // EEXIST: already listed
}

// The index, made when missing; invalid when it cannot be used.
UniqueFd made_index(const fs::path& folder) {
  make_shared_dir(reservation_index_dir(folder));
  return open_index(folder);
}

}  // namespace

fs::path reservation_index_dir(const fs::path& folder) { return folder / ".lockable-reserved"; }

std::vector<std::string> indexed_reservations(const fs::path& folder) {
  UniqueFd index = open_index(folder);
  if (!index) {
    const bool no_index = errno == ENOENT;
    auto ids = all_reserved_ids(folder);
    if (no_index) {
      if (const UniqueFd made = made_index(folder)) {
        for (const auto& id : ids) add_index_entry(made.get(), id);
      }
    }
    return ids;
  }
  DIR* dir = ::fdopendir(index.get());
  if (dir == nullptr) return all_reserved_ids(folder);
  index.release();  // the DIR owns it now
  std::vector<std::string> ids;
  while (const dirent* entry = ::readdir(dir)) {
    std::string id(entry->d_name);
    if (id[0] == '.' || !invalid_id_reason(id).empty()) continue;
    struct stat st {};
    if (::lstat(reservation_path(folder, id).c_str(), &st) != 0 && errno == ENOENT) {
      ::unlinkat(::dirfd(dir), id.c_str(), 0);  // unreserved by an older version, or by hand
      continue;
    }
    ids.push_back(std::move(id));
  }
  ::closedir(dir);
  return ids;
}

void reindex_reservations(const fs::path& folder) {
  const auto ids = all_reserved_ids(folder);
  if (ids.empty()) return;
  if (const UniqueFd index = made_index(folder)) {
    for (const auto& id : ids) add_index_entry(index.get(), id);
  }
}

fs::path reservation_path(const fs::path& folder, const std::string& id) {
  return folder / (id + ".reserved.json");
}

std::string new_reservation_token() { return random_hex(); }

std::string reservation_alloc_id(const std::string& token) { return "reservation " + token; }

void write_reservation(const fs::path& folder, const std::string& id, const ReservationFile& file) {
  const fs::path path = reservation_path(folder, id);
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
    throw ResourceUnusableError(id,
                                unusable_reason(path, S_ISLNK(st.st_mode) ? ELOOP : kNotRegular));
  }
  Json json = file.reservation.to_json();
  json["token"] = file.token;
  const std::string content = detail::dump(json) + "\n";
  // A hidden name the Python package and our scans of `*.pid` never look at.
  const fs::path temp = folder / ("." + id + ".reserved.json." + random_hex() + ".tmp");
  UniqueFd fd = create_shared(temp, O_WRONLY, 0644);
  if (!fd) {
    throw BackendError("cannot write " + temp.string() + " (" + errno_text(errno) +
                       ") to reserve " + id + "; make " + folder.string() +
                       " writable for this account");
  }
  if (!write_all(fd.get(), content) || ::fsync(fd.get()) != 0) {
    const int error = errno;
    ::unlink(temp.c_str());
    throw BackendError("cannot write " + temp.string() + " (" + errno_text(error) +
                       ") to reserve " + id + "; free space in " + folder.string());
  }
  fd.reset();
  // rename() replaces the name itself (a symlink put there meanwhile is replaced, not followed).
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    const int error = errno;
    ::unlink(temp.c_str());
    throw BackendError("cannot rename " + temp.string() + " to " + path.string() + " (" +
                       errno_text(error) + "); in a sticky folder only the owner of " +
                       path.string() + " (or root) may replace it");
  }
  if (const UniqueFd index = made_index(folder)) add_index_entry(index.get(), id);
}

std::optional<ReservationFile> read_reservation(const fs::path& folder, const std::string& id) {
  return read_reservation_at(reservation_path(folder, id), id);
}

std::optional<ReservationFile> read_reservation_at(const fs::path& path, const std::string& id) {
  struct stat st {};
  // Every lock asks, and most devices have no reservation: an lstat() that finds nothing costs
  // half of an open() that finds nothing (which allocates, then frees, a file description).
  if (::lstat(path.c_str(), &st) != 0 && errno == ENOENT) return std::nullopt;
  int error = 0;
  UniqueFd fd = open_regular(path, O_RDONLY, st, error);
  if (!fd && error == ENOENT) return std::nullopt;
  ReservationFile file;
  file.reservation.reason = "unreadable reservation";
  if (!fd) {
    file.reservation.problem = unusable_reason(path, error);
    return file;
  }
  const Json json = Json::parse(read_all(fd.get()), nullptr, false);
  try {
    file.reservation = Reservation::from_json(json);
    if (const auto it = json.find("token"); it != json.end() && it->is_string()) {
      file.token = it->get<std::string>();
    }
  } catch (const std::invalid_argument& bad) {
    file.reservation = Reservation{};
    file.reservation.reason = "unreadable reservation";
    file.reservation.problem = path.string() + " is not a reservation (" + bad.what() +
                               "); run `lockable unreserve " + id + "` or `lockable reserve " + id +
                               " --reason ...` to replace it";
  }
  return file;
}

bool remove_reservation(const fs::path& folder, const std::string& id, const std::string& token) {
  const fs::path path = reservation_path(folder, id);
  if (!token.empty()) {
    const auto current = read_reservation(folder, id);
    if (!current || current->token != token) return false;
  }
  if (::unlink(path.c_str()) == 0) {
    // Best effort: runs drop stale entries.
    if (const UniqueFd index = open_index(folder)) ::unlinkat(index.get(), id.c_str(), 0);
    return true;
  }
  if (errno == ENOENT) return false;
  throw BackendError("cannot remove " + path.string() + " (" + errno_text(errno) +
                     ") to unreserve " + id + "; in a sticky folder only its owner (or root) " +
                     "may remove it");
}

}  // namespace lockable::folder_backend
