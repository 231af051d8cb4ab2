#pragma once

// Child processes for end-to-end tests: start a program with arguments and extra environment,
// capture stdout and stderr together in a file, wait with a guard timeout.

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace lockable::e2e {

/// A running (or finished) child. Kills and reaps the child on destruction if it still runs, so
/// a failing test never leaves a process (and its lock) behind.
class Process {
 public:
  /// Starts `argv[0]` with `argv`; the environment is ours without LOCKABLE_* and GTEST_*
  /// variables, plus `env` (an empty value unsets). Output goes to `output`.
  Process(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
          std::filesystem::path output);
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const noexcept { return pid_; }
  /// Waits for exit; returns the exit code (128 + signal when killed). Kills the child and throws
  /// std::runtime_error after `guard`.
  int wait(std::chrono::milliseconds guard = std::chrono::seconds(30));
  /// Everything the child printed so far.
  std::string output() const;
  /// Waits until the output contains `text`; throws std::runtime_error (with the output) if the
  /// child exits first or `guard` passes.
  void wait_for_output(const std::string& text,
                       std::chrono::milliseconds guard = std::chrono::seconds(30));

 private:
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
  std::filesystem::path output_;
};

/// Runs a program to completion.
struct RunResult {
  int exit_code = -1;
  std::string output;
};
RunResult run(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
              const std::filesystem::path& output,
              std::chrono::milliseconds guard = std::chrono::seconds(30));

/// A fresh directory under the system temp dir, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const noexcept { return path_; }

 private:
  std::filesystem::path path_;
};

/// Writes `text` to `path`.
void write_file(const std::filesystem::path& path, const std::string& text);
std::string read_text(const std::filesystem::path& path);

}  // namespace lockable::e2e
