#pragma once

// Temporary directories and whole-file reads and writes for tests.

#include <filesystem>
#include <string>

namespace lockable::test {

/// A fresh, empty directory under the system temp dir. The destructor removes it with everything
/// in it, also directories a test made read-only, so a failing test (an assertion that returns
/// early, or an exception) leaves nothing behind.
class TempDir {
 public:
  /// Creates `<temp dir>/<prefix>XXXXXX`; throws std::system_error when that fails.
  explicit TempDir(const std::string& prefix = "lockable-test-");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  /// The directory's absolute path; valid for the object's lifetime.
  const std::filesystem::path& path() const noexcept { return path_; }

 private:
  std::filesystem::path path_;
};

/// Replaces `path` with `content` atomically (a sibling "<path>.tmp" is written, then renamed), so
/// a process watching the file never reads half of it. Throws std::runtime_error naming the file
/// when it cannot be written.
void write_file(const std::filesystem::path& path, const std::string& content);

/// The bytes of `path`, or an empty string when it does not exist or cannot be read.
std::string read_text(const std::filesystem::path& path);

/// True when some process holds an exclusive or shared flock on `path` (probed without blocking
/// and released at once); false when nobody does or the file does not exist. Never blocks, also
/// not on a FIFO (opened non-blocking). This is the lock
/// protocol of lockable's lock folder and of the Python `lockable` package.
bool is_flocked(const std::filesystem::path& path);

/// The state of process `pid` as /proc/<pid>/stat gives it ('R' running, 'S' sleeping, 'T'
/// stopped, 'Z' ended but not reaped, ...), or '?' when there is no such process.
char process_state(int pid);

}  // namespace lockable::test
