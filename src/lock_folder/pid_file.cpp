// The pid-file protocol of the lock folder: what `<id>.pid` and `<id>.pid.json` hold, the rule
// that a file naming another live process is held (unless its pid was reused), and reading a
// holder without writing anything. See pid_file.hpp.

#include "lock_folder/pid_file.hpp"

#include <lockable/allocation.hpp>

#include "core/json_text.hpp"
#include "posix/this_process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <ctime>
#include <limits>
#include <optional>

namespace lockable::folder_backend {
namespace {

// A pid named by a lock file counts as reused only when its process started this long after the
// file was last written: room for the coarse clocks of file times and of /proc start times.
constexpr double kReuseMarginSeconds = 1.0;

// The boot time on the kernel's wall clock, the one file times are on: /proc/stat's "btime"
// (whole seconds, rounded down, so a start time computed from it is never later than the real
// one: the safe side). Not CLOCK_REALTIME minus CLOCK_BOOTTIME: a process whose own wall clock
// is shifted (libfaketime, an LD_PRELOAD shim) would then see a live holder's process as started
// after its file was written, call its pid reused, and take the file from a Python holder between
// its close() and its unlink() (found by the fault harness's clock jumps).
std::optional<long long> kernel_boot_time() {
  UniqueFd fd(::open("/proc/stat", O_RDONLY | O_CLOEXEC));
  if (!fd) return std::nullopt;
  const std::string text = read_all(fd.get());
  const auto at = text.find("\nbtime ");
  if (at == std::string::npos) return std::nullopt;
  const long long seconds = std::strtoll(text.c_str() + at + 7, nullptr, 10);
  return seconds > 0 ? std::optional<long long>(seconds) : std::nullopt;
}

// True when process `pid` provably started after `written` (a lock file's modification time):
// the file then names a pid that an unrelated process reused. False when unsure.
bool started_after(long pid, const timespec& written) {
  UniqueFd fd(::open(("/proc/" + std::to_string(pid) + "/stat").c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return false;
  const std::string text = read_all(fd.get());
  // The command (field 2) may hold spaces and parentheses; the fields after its last ')' start
  // with the state (field 3). starttime is field 22, in clock ticks since boot.
  std::size_t at = text.rfind(')');
  if (at == std::string::npos) return false;
  for (int field = 3; field <= 22; ++field) {
    at = text.find_first_not_of(' ', at + 1);
    if (at == std::string::npos) return false;
    if (field < 22) at = text.find(' ', at);
    if (at == std::string::npos) return false;
  }
  const double ticks = std::strtod(text.c_str() + at, nullptr);
  const long hz = ::sysconf(_SC_CLK_TCK);
  const auto boot_wall = kernel_boot_time();
  if (hz <= 0 || !boot_wall) return false;
  const double started = static_cast<double>(*boot_wall) + ticks / static_cast<double>(hz);
  const double file_time =
      static_cast<double>(written.tv_sec) + static_cast<double>(written.tv_nsec) / 1e9;
  return started > file_time + kReuseMarginSeconds;
}

bool alive(long pid) {
  return pid > 0 && pid <= std::numeric_limits<pid_t>::max() &&
         (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM);
}

}  // namespace

fs::path pid_path(const fs::path& folder, const std::string& id) { return folder / (id + ".pid"); }

fs::path details_path(const fs::path& folder, const std::string& id) {
  return folder / (id + ".pid.json");
}

bool is_pid_file_name(const std::string& name) { return ends_with(name, ".pid"); }

long live_other_pid(int fd, const struct stat& st) {
  if (st.st_size == 0) return 0;  // emptied on release: the common case costs no read
  char text[32] = {};
  const ssize_t n = ::pread(fd, text, sizeof text - 1, 0);
  const long pid = n > 0 ? std::strtol(text, nullptr, 10) : 0;
  if (pid <= 0 || pid > std::numeric_limits<pid_t>::max() || pid == posix::this_process_id())
    return 0;
  if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) return 0;
  if (started_after(pid, st.st_mtim)) return 0;
  return pid;
}

bool write_own_pid(int fd, off_t old_size) {
  return replace_content(fd, std::to_string(posix::this_process_id()) + "\n", old_size);
}

void clear_pid(int fd) {
  if (::ftruncate(fd, 0) != 0) {
    // Nothing to do: the caller's flock(LOCK_UN) is what frees the device.
  }
}

std::string holder_details_text(const HolderInfo& holder) {
  // The keys in nlohmann::json's order (std::map: alphabetical), strings escaped by its dumper.
  std::string text;
  text.reserve(160 + holder.hostname.size());
  text += "{\"alloc_id\":";
  text += detail::in_quotes(holder.alloc_id);
  if (holder.fencing_token) {
    text += ",\"fencing_token\":";
    text += std::to_string(*holder.fencing_token);
  }
  text += ",\"hostname\":";
  text += detail::in_quotes(holder.hostname);
  text += ",\"pid\":";
  text += std::to_string(holder.pid);
  text += ",\"priority\":";
  text += std::to_string(holder.priority);
  text += ",\"requirements\":";
  text += detail::dump(holder.requirements);
  text += ",\"since\":";
  text += detail::in_quotes(format_iso8601(holder.since));
  text += '}';
  return text;
}

int write_details(const fs::path& path, const std::string& content) {
  struct stat st {};
  int error = 0;
  UniqueFd fd = open_regular(path, O_WRONLY, st, error);
  if (!fd && error == ENOENT) {
    fd = create_shared(path, O_WRONLY, 0666);
    st.st_size = 0;
    if (!fd) return 0;  // another locker just created it, or we may not: no details this time
  }
  if (!fd) return entry_unusable(error) ? error : 0;
  replace_content(fd.get(), content, st.st_size);
  return 0;
}

int write_details(const fs::path& folder, const std::string& id, const std::string& content,
                  UniqueFd& cached) {
  struct stat st {};
  // Removed or replaced (renamed over) since: its inode has no link left; open the path afresh.
  if (cached && (::fstat(cached.get(), &st) != 0 || st.st_nlink == 0)) cached.reset();
  if (!cached) {
    const fs::path path = details_path(folder, id);
    int error = 0;
    cached = open_regular(path, O_WRONLY, st, error);
    if (!cached && error == ENOENT) {
      cached = create_shared(path, O_WRONLY, 0666);
      st.st_size = 0;
      if (!cached) return 0;  // another locker just created it, or we may not: no details this time
    }
    if (!cached) return entry_unusable(error) ? error : 0;
  }
  replace_content(cached.get(), content, st.st_size);
  return 0;
}

std::optional<HolderInfo> read_holder(const fs::path& folder, const std::string& id) {
  struct stat st {};
  int error = 0;
  UniqueFd fd = open_regular(pid_path(folder, id), O_RDONLY, st, error);
  if (!fd) return std::nullopt;
  long pid_in_file = 0;
  if (::flock(fd.get(), LOCK_SH | LOCK_NB) == 0) {
    pid_in_file = live_other_pid(fd.get(), st);
    ::flock(fd.get(), LOCK_UN);
    if (pid_in_file == 0) return std::nullopt;
  } else {
    pid_in_file = std::strtol(read_all(fd.get()).c_str(), nullptr, 10);
  }
  HolderInfo info;
  struct stat json_st {};
  UniqueFd json_fd = open_regular(details_path(folder, id), O_RDONLY, json_st, error);
  if (json_fd) {
    info = HolderInfo::from_json(Json::parse(read_all(json_fd.get()), nullptr, false));
    // A details file left by a killed holder must not be shown for a new (e.g. Python) holder.
    // But a holder of another account's read-only file could not write its pid there: when the
    // file names a dead process and the details a live one, the details are the holder's.
    if (pid_in_file > 0 && info.pid != pid_in_file && !(alive(info.pid) && !alive(pid_in_file))) {
      info = HolderInfo{};
    }
  }
  if (info.pid == 0) info.pid = pid_in_file;
  return info;
}

}  // namespace lockable::folder_backend
