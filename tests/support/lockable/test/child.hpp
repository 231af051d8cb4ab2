#pragma once

// Child processes for tests: start a program with its own argv, environment, working directory
// and redirections, talk to it through pipes or read its output files, signal it, and wait for
// it with a failure guard. A Child always kills and reaps its process when destroyed, so a
// failing test never leaves a process (or the lock it holds) behind.

#include <sys/types.h>

#include <array>
#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace lockable::test {

/// How long waits last by default. Only a failure guard: a child that needs it has hung.
inline constexpr std::chrono::milliseconds kDefaultGuard = std::chrono::seconds(60);

/// Where one of a child's standard streams is connected.
class Stream {
 public:
  enum class Kind { inherit, null, pipe, file, same_as_stdout };

  /// The test process's own stream.
  static Stream inherit() { return Stream(Kind::inherit); }
  /// /dev/null.
  static Stream null() { return Stream(Kind::null); }
  /// A pipe to the test: it writes stdin (Child::write_line) and reads stdout and stderr
  /// (Child::read_line, run()).
  static Stream pipe() { return Stream(Kind::pipe); }
  /// A file: read for stdin; created or truncated for stdout and stderr (Child::output() reads
  /// it). To send stdout and stderr to one file, give stderr same_as_stdout().
  static Stream file(std::filesystem::path path) { return Stream(Kind::file, std::move(path)); }
  /// For stderr only: wherever stdout goes (the shell's 2>&1).
  static Stream same_as_stdout() { return Stream(Kind::same_as_stdout); }

  Kind kind() const noexcept { return kind_; }
  const std::filesystem::path& path() const noexcept { return path_; }

 private:
  explicit Stream(Kind kind, std::filesystem::path path = {})
      : kind_(kind), path_(std::move(path)) {}
  Kind kind_;
  std::filesystem::path path_;
};

/// How a child starts. The defaults suit a line-based conversation: the test writes lines to the
/// child's stdin and reads lines from its stdout; stderr lands in the test's own log.
struct ChildOptions {
  /// Variables set on top of the inherited environment; an empty value removes the variable.
  std::map<std::string, std::string> env;
  /// Inherited variables whose names start with one of these are not passed on (a program under
  /// test must not see the rig's own LOCKABLE_* or GTEST_* settings).
  std::vector<std::string> drop_env_prefixes;
  /// The child's working directory; empty: the test's.
  std::filesystem::path cwd;
  Stream in = Stream::pipe();
  Stream out = Stream::pipe();
  Stream err = Stream::inherit();
};

/// A running (or finished) child process.
class Child {
 public:
  /// Starts the program at path `argv[0]` (no PATH search) with `argv`. Throws std::system_error
  /// naming the program when it cannot be started, and std::invalid_argument for an empty argv
  /// or same_as_stdout() given for stdin or stdout.
  explicit Child(const std::vector<std::string>& argv, const ChildOptions& options = {});
  /// Kills (SIGKILL) and reaps the child unless it was already reaped; closes the pipes.
  ~Child();
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  pid_t pid() const noexcept { return pid_; }

  /// The next line of the child's stdout (a pipe), without its newline; nullopt at end of file or
  /// when no full line arrived within `timeout`.
  std::optional<std::string> read_line(std::chrono::milliseconds timeout);
  /// Writes `line` and a newline to the child's stdin (a pipe). A child that has gone is not an
  /// error here: the test notices through its output or exit code.
  void write_line(const std::string& line);
  /// Closes the test's end of the stdin pipe, so the child reads end of file.
  void close_stdin();

  /// Sends `signal` to the child; does nothing once the child has been reaped.
  void send_signal(int signal);
  /// Kills the child with SIGKILL and reaps it.
  void kill_now();

  /// Waits for the child to exit and returns its exit status, or 128 + N when signal N ended it
  /// (the shell's convention). Past `guard` it kills and reaps the child and throws
  /// std::runtime_error with the child's output.
  int wait(std::chrono::milliseconds guard = kDefaultGuard);
  /// The signal that ended the child, 0 when it exited by itself or has not been reaped yet.
  int term_signal() const noexcept { return signal_; }

  /// Reads the stdout and stderr pipes until both reach end of file or `deadline` passes.
  void read_to_end(std::chrono::steady_clock::time_point deadline);
  /// What the child wrote to stdout so far: the file's content, or what was read from the pipe
  /// (minus the lines read_line returned). Empty when stdout is inherited or /dev/null.
  std::string out() const;
  /// The same for stderr; empty when stderr follows stdout.
  std::string err() const;
  /// out() followed by err().
  std::string output() const { return out() + err(); }
  /// Waits until output() contains `text`. Throws std::runtime_error with the output when the
  /// child exits first or `guard` passes.
  void wait_for_output(const std::string& text, std::chrono::milliseconds guard = kDefaultGuard);

 private:
  // Reads whatever the open pipes offer within `timeout`; returns false when none is open.
  bool pump(std::chrono::milliseconds timeout);
  bool reap(bool block);
  std::string text_of(int stream) const;

  std::string program_;
  pid_t pid_ = -1;
  bool reaped_ = false;
  int status_ = -1;
  int signal_ = 0;
  int stdin_ = -1;
  std::array<int, 2> pipes_{-1, -1};                           // stdout, stderr
  std::array<std::string, 2> buffers_;                         // read from pipes_
  std::array<std::optional<std::filesystem::path>, 2> files_;  // stdout, stderr files
};

/// What run() saw.
struct RunResult {
  /// The exit status, or 128 + N when signal N ended the child.
  int exit_code = -1;
  /// N when signal N ended the child, else 0.
  int signal = 0;
  /// stdout (and stderr with it when stderr followed stdout).
  std::string out;
  /// stderr when it was captured on its own.
  std::string err;
  /// out followed by err.
  std::string output() const { return out + err; }
};

/// Prints the exit status and both streams, for assertion messages.
std::ostream& operator<<(std::ostream& stream, const RunResult& result);

/// Runs a program to completion: starts it like Child, closes its stdin if that is a pipe, reads
/// stdout and stderr pipes as they fill (so a chatty child never blocks) and waits for it. Past
/// `guard` it kills the child and throws std::runtime_error.
RunResult run(const std::vector<std::string>& argv, const ChildOptions& options = {},
              std::chrono::milliseconds guard = kDefaultGuard);

}  // namespace lockable::test
