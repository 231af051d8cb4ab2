#include "child_process.hpp"

#include "exit_codes.hpp"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <thread>

extern char** environ;

namespace lockable::cli {
namespace {

constexpr int kRelayedSignals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};

bool has_shell_syntax(const std::string& word) {
  return word.find_first_of(" \t\n|&;<>()$`\\\"'*?[]#~={}") != std::string::npos;
}

// Builtins and keywords of the shells /bin/sh may be (dash, bash, busybox ash, ksh, zsh): a
// first word among them stays with the shell, whose builtin may differ from the program of that
// name in PATH (dash's echo and /bin/echo do not take the same options).
bool maybe_shell_builtin(const std::string& word) {
  static const std::set<std::string> kNames{
      ".",       ":",        "[",       "[[",       "]]",       "!",       "{",         "}",
      "alias",   "autoload", "bg",      "bind",     "break",    "builtin", "caller",    "case",
      "cd",      "chdir",    "command", "compgen",  "complete", "compopt", "continue",  "coproc",
      "declare", "dirs",     "disown",  "do",       "done",     "echo",    "elif",      "else",
      "enable",  "esac",     "eval",    "exec",     "exit",     "export",  "false",     "fc",
      "fg",      "fi",       "for",     "function", "getopts",  "hash",    "help",      "history",
      "if",      "in",       "jobs",    "kill",     "let",      "local",   "logout",    "mapfile",
      "popd",    "print",    "printf",  "pushd",    "pwd",      "read",    "readarray", "readonly",
      "return",  "select",   "set",     "setopt",   "shift",    "shopt",   "source",    "suspend",
      "test",    "then",     "time",    "times",    "trap",     "true",    "type",      "typeset",
      "ulimit",  "umask",    "unalias", "unset",    "until",    "wait",    "whence",    "while"};
  return kNames.count(word) != 0;
}

// Whether exec runs `path` itself: an ELF binary or a `#!` script. Anything else (a script
// without `#!`) the shell would run in a shell of its own, so it stays with the shell.
bool exec_runs_itself(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) return false;
  char head[4] = {};
  const ssize_t got = read(fd, head, sizeof head);
  close(fd);
  constexpr char kElf[4] = {0x7f, 'E', 'L', 'F'};
  const bool script = got >= 2 && head[0] == '#' && head[1] == '!';
  return script || (got == 4 && std::memcmp(head, kElf, 4) == 0);
}

// The shell's PWD: the inherited one when it is absolute and names the current directory (a
// path through a symlink stays as the user typed it), else the physical path; empty when the
// current directory has none (removed), as dash.
std::string shell_pwd() {
  const char* inherited = std::getenv("PWD");
  struct stat named {};
  struct stat here {};
  if (inherited != nullptr && inherited[0] == '/' && stat(inherited, &named) == 0 &&
      stat(".", &here) == 0 && named.st_dev == here.st_dev && named.st_ino == here.st_ino) {
    return inherited;
  }
  std::string path(4096, '\0');
  if (getcwd(path.data(), path.size()) == nullptr) return "";
  path.resize(std::strlen(path.c_str()));
  return path;
}

// Whether `command`, found at `path`, runs the same without `/bin/sh -c` (see resolve_command).
bool runs_alike_without_shell(const std::vector<std::string>& command, const std::string& path) {
  for (const auto& word : command) {
    // An empty word disappears when the words are joined and split again.
    if (word.empty() || has_shell_syntax(word)) return false;
  }
  const std::string& first = command.front();
  if (first.find('/') == std::string::npos) {
    if (maybe_shell_builtin(first)) return false;
    // Unset, each shell searches its own default PATH, not the one find_executable assumes.
    if (std::getenv("PATH") == nullptr) return false;
  }
  char cwd[4096];
  if (getcwd(cwd, sizeof cwd) == nullptr) return false;  // dash complains, and sets PWD empty
  return exec_runs_itself(path);
}

enum class FileCheck { kExecutable, kMissing, kDirectory, kNotExecutable };

FileCheck check_file(const std::string& path) {
  struct stat info {};
  if (stat(path.c_str(), &info) != 0) return FileCheck::kMissing;
  if (S_ISDIR(info.st_mode)) return FileCheck::kDirectory;
  if (access(path.c_str(), X_OK) != 0) return FileCheck::kNotExecutable;
  return FileCheck::kExecutable;
}

std::variant<Launch, LaunchError> find_executable(const std::vector<std::string>& command) {
  const std::string& name = command.front();
  const auto error = [&](int code, const std::string& why) -> std::variant<Launch, LaunchError> {
    return LaunchError{code, "lockable: " + name + ": " + why};
  };
  if (name.empty()) return error(kCommandNotFound, "command not found");
  if (name.find('/') != std::string::npos) {
    switch (check_file(name)) {
      case FileCheck::kExecutable:
        return Launch{name, command};
      case FileCheck::kMissing:
        return error(kCommandNotFound, "No such file or directory");
      case FileCheck::kDirectory:
        return error(kCannotExecute, "Is a directory");
      case FileCheck::kNotExecutable:
        return error(kCannotExecute, "Permission denied");
    }
  }
  const char* path_variable = std::getenv("PATH");
  // glibc's execvp default when PATH is unset.
  const std::string search = path_variable != nullptr ? path_variable : "/bin:/usr/bin";
  std::optional<LaunchError> not_executable;
  std::size_t start = 0;
  while (start <= search.size()) {
    const std::size_t end = std::min(search.find(':', start), search.size());
    std::string dir = search.substr(start, end - start);
    start = end + 1;
    if (dir.empty()) dir = ".";  // An empty PATH entry means the current directory.
    const std::string candidate = dir + "/" + name;
    const FileCheck check = check_file(candidate);
    if (check == FileCheck::kExecutable) return Launch{candidate, command};
    if (check == FileCheck::kNotExecutable && !not_executable) {
      not_executable = LaunchError{kCannotExecute, "lockable: " + name + ": Permission denied"};
    }
  }
  if (not_executable) return *not_executable;
  return error(kCommandNotFound, "command not found");
}

std::vector<char*> c_strings(const std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  pointers.reserve(strings.size() + 1);
  for (const auto& text : strings) pointers.push_back(const_cast<char*>(text.c_str()));
  pointers.push_back(nullptr);
  return pointers;
}

std::string signal_name(int signal) {
  switch (signal) {
    case SIGINT:
      return "SIGINT";
    case SIGTERM:
      return "SIGTERM";
    case SIGHUP:
      return "SIGHUP";
    case SIGQUIT:
      return "SIGQUIT";
    default:
      return "signal " + std::to_string(signal);
  }
}

// Whether /bin/sh knows `word` as a builtin, keyword or program: `command -v` asked of the
// shell itself, so the answer is exactly the shell's, whichever shell /bin/sh is.
bool shell_knows(const std::string& word) {
  std::vector<std::string> argv{"sh", "-c", "command -v -- \"$1\" >/dev/null 2>&1", "sh", word};
  auto pointers = c_strings(argv);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  pid_t pid = 0;
  const int error = posix_spawn(&pid, "/bin/sh", &actions, nullptr, pointers.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (error != 0) return true;  // Cannot ask: let the shell decide when it runs the command.
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return !(WIFEXITED(status) && WEXITSTATUS(status) != 0);
}

// Whether lockable's process group is the foreground group of its controlling terminal.
bool in_terminal_foreground() {
  const int tty = open("/dev/tty", O_RDONLY | O_NOCTTY | O_CLOEXEC);
  if (tty < 0) return false;
  const bool foreground = tcgetpgrp(tty) == getpgrp();
  close(tty);
  return foreground;
}

// ---- the keeper ------------------------------------------------------------------------------
//
// lockable does not start the command itself: it forks a keeper, and the keeper forks the
// command. The keeper exists so that the command, and everything it started, dies before the
// device can be locked again when lockable itself is killed (SIGKILL, the OOM killer):
//   - it is a child subreaper (PR_SET_CHILD_SUBREAPER): a process the command left behind
//     (`cmd &`, a daemon that double-forks, `setsid`) becomes the keeper's child when its parent
//     dies, instead of init's, so the keeper can find and kill it;
//   - it inherited lockable's descriptors, the lock folder's flock()ed ones included (a flock
//     belongs to the open file description, not to a process), so the lock stays held until the
//     keeper exits;
//   - it learns of lockable's death by the end of a pipe only lockable writes to (EOF whenever
//     lockable's process is gone, however it died: no race with a signal or a thread), then
//     SIGKILLs the command's group and every descendant it can reach, reaps them all, and only
//     then exits, dropping the lock.
// The command also has PR_SET_PDEATHSIG(SIGKILL) towards the keeper, should the keeper itself be
// killed. Lease backends (etcd, the lock service) keep the lease until it expires after lockable
// stopped renewing it: the keeper kills the command at once, long before that.
//
// The keeper is a forked copy of a threaded process: it only makes async-signal-safe calls
// (system calls, no allocation, no locks) and never returns into lockable's code.

enum class KeeperMessage : int { kExecError = 1, kStatus = 2 };

struct KeeperReport {
  KeeperMessage kind;
  int value;  // errno for kExecError, a wait status for kStatus
};

void keeper_report(int fd, KeeperMessage kind, int value) {
  const KeeperReport report{kind, value};
  // Atomic (at most PIPE_BUF); EPIPE when lockable is gone (SIGPIPE is blocked in the keeper).
  (void)!write(fd, &report, sizeof report);
}

// SIGKILLs every direct child of the keeper listed in /proc (the command and the orphans of its
// descendants). False when the list cannot be read (a kernel without CONFIG_PROC_CHILDREN).
bool kill_listed_children() {
  const int fd = open("/proc/thread-self/children", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buffer[4096];
  long pid = 0;
  bool in_number = false;
  for (;;) {
    const ssize_t got = read(fd, buffer, sizeof buffer);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    for (ssize_t i = 0; i < got; ++i) {
      if (buffer[i] >= '0' && buffer[i] <= '9') {
        pid = pid * 10 + (buffer[i] - '0');
        in_number = true;
      } else if (in_number) {
        kill(static_cast<pid_t>(pid), SIGKILL);
        pid = 0;
        in_number = false;
      }
    }
  }
  if (in_number) kill(static_cast<pid_t>(pid), SIGKILL);
  close(fd);
  return true;
}

// lockable is gone (or gave up on the command): kill the command's group and every descendant
// that reaches the keeper, until none is left. A process of another account (a setuid program's
// child) cannot be killed; the keeper, and so the lock, then waits for it to end.
[[noreturn]] void keeper_kill_all(pid_t command, bool command_has_group, int report_fd) {
  kill(command_has_group ? -command : command, SIGKILL);
  for (;;) {
    kill_listed_children();
    int status = 0;
    const pid_t reaped = waitpid(-1, &status, 0);
    if (reaped < 0) {
      if (errno == EINTR) continue;
      break;  // ECHILD: every descendant is dead and reaped
    }
    if (reaped == command) keeper_report(report_fd, KeeperMessage::kStatus, status);
  }
  _exit(0);
}

// The keeper's fork: glibc's _Fork (2.34 and later) where there is one, which skips the atfork
// handlers. fork() runs them, and glibc's own take malloc's and stdio's locks around the fork and
// reset them in the child, writing pages that lockable and the keeper then each copy (cli_bench:
// 15 of the round trip's 258 page faults, about 0.1 ms of CPU). The keeper never allocates, never
// uses stdio and never calls into the library, so it needs none of them.
// Sanitizer builds keep fork(): their runtimes take their own locks around it, and a keeper
// forked past them could find one held by another thread.
#if defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define LOCKABLE_KEEPER_PLAIN_FORK 1
#endif
#endif
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define LOCKABLE_KEEPER_PLAIN_FORK 1
#endif
pid_t fork_keeper() {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34)) && \
    !defined(LOCKABLE_KEEPER_PLAIN_FORK)
  return _Fork();
#else
  return fork();
#endif
}

struct KeeperSetup {
  const char* path;
  char* const* argv;
  char* const* sh_argv;
  char* const* envp;
  bool share_group;
  pid_t lockable;
  int lockable_gone_fd;  // read end: EOF once lockable is gone or asks for the kill
  int report_fd;
  const sigset_t* relayed;
  const sigset_t* command_mask;  // the mask lockable started with
};

[[noreturn]] void keeper_main(const KeeperSetup& setup) {
  // Alone in its group: a SIGKILL sent to lockable's whole group (`kill -KILL -PGID`) leaves the
  // keeper to clean up. In a terminal's foreground it stays in lockable's group with the command.
  if (!setup.share_group) setpgid(0, 0);
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  sigset_t watched = *setup.relayed;
  sigaddset(&watched, SIGCHLD);
  sigset_t blocked = watched;
  sigaddset(&blocked, SIGPIPE);  // a write to a dead lockable gives EPIPE, not death
  sigprocmask(SIG_BLOCK, &blocked, nullptr);
  const int signals = signalfd(-1, &watched, SFD_CLOEXEC);
  const pid_t keeper = getpid();
  // vfork, not fork: the command borrows the keeper's memory until execve instead of copying
  // lockable's page tables (cli_bench: a fifth of the round trip), and the keeper sleeps
  // meanwhile. The child below only makes system calls and never returns.
  const pid_t command = vfork();
  if (command == 0) {
    if (!setup.share_group) setpgid(0, 0);
    // Without the lock, the command must not go on using the device.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != keeper) _exit(kCannotExecute);  // the keeper died before prctl()
    sigprocmask(SIG_SETMASK, setup.command_mask, nullptr);
    execve(setup.path, setup.argv, setup.envp);
    if (errno == ENOEXEC) execve("/bin/sh", setup.sh_argv, setup.envp);
    keeper_report(setup.report_fd, KeeperMessage::kExecError, errno);
    _exit(kCannotExecute);
  }
  if (command < 0) {
    keeper_report(setup.report_fd, KeeperMessage::kExecError, errno);
    _exit(kCannotExecute);
  }
  if (!setup.share_group) setpgid(command, command);  // before any signal is passed on
  if (signals < 0) {
    // Cannot watch signals: still wait for the command, and still kill it if lockable dies.
    for (;;) {
      pollfd gone{setup.lockable_gone_fd, POLLIN, 0};
      if (poll(&gone, 1, 100) > 0) keeper_kill_all(command, !setup.share_group, setup.report_fd);
      int status = 0;
      if (waitpid(command, &status, WNOHANG) == command) {
        keeper_report(setup.report_fd, KeeperMessage::kStatus, status);
        _exit(0);
      }
    }
  }
  for (;;) {
    pollfd fds[2] = {{setup.lockable_gone_fd, POLLIN, 0}, {signals, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) continue;  // EINTR
    if (fds[0].revents != 0) keeper_kill_all(command, !setup.share_group, setup.report_fd);
    if (fds[1].revents == 0) continue;
    signalfd_siginfo info{};
    if (read(signals, &info, sizeof info) != static_cast<ssize_t>(sizeof info)) continue;
    const int signal = static_cast<int>(info.ssi_signo);
    if (signal == SIGCHLD) {
      // Reap the command and any orphan that ended; leave the rest as lockable always has.
      for (;;) {
        int status = 0;
        const pid_t reaped = waitpid(-1, &status, WNOHANG);
        if (reaped <= 0) break;
        if (reaped == command) {
          keeper_report(setup.report_fd, KeeperMessage::kStatus, status);
          _exit(0);
        }
      }
    } else if (static_cast<pid_t>(info.ssi_pid) == setup.lockable) {
      // Passed on by lockable's relay; a signal someone else sent the keeper is not the
      // command's (in a terminal, the terminal reached the command itself).
      kill(setup.share_group ? command : -command, signal);
    }
  }
}

}  // namespace

std::variant<Launch, LaunchError> resolve_command(const std::vector<std::string>& command,
                                                  bool shell) {
  auto found = find_executable(command);
  if (!shell) return found;
  if (auto* launch = std::get_if<Launch>(&found)) {
    if (runs_alike_without_shell(command, launch->path)) {
      launch->as_the_shell_would = true;
      return found;
    }
  }
  std::string line;
  for (const auto& word : command) line += (line.empty() ? "" : " ") + word;
  const std::string& first = command.front();
  const auto* error = std::get_if<LaunchError>(&found);
  // Only a plain first word can be judged before the shell expands anything; the shell itself
  // says whether it is a builtin or keyword (cd, exec, if, ...).
  // A path (with a `/`) is never a builtin, and is judged exactly as exec would.
  if (error != nullptr && !first.empty() && !has_shell_syntax(first) &&
      (first.find('/') != std::string::npos || !shell_knows(first))) {
    return *error;
  }
  return Launch{"/bin/sh", {"sh", "-c", line}};
}

std::optional<LaunchError> check_exec_size(const Launch& launch,
                                           const std::vector<std::string>& environment,
                                           const std::string& resource_id) {
  // Linux refuses one string longer than MAX_ARG_STRLEN (32 pages) and all of them, with their
  // pointers, over a quarter of the stack limit (what sysconf(_SC_ARG_MAX) reports). The margin
  // leaves room for what a shell adds (PWD, OLDPWD, ...) before it execs the command.
  constexpr std::size_t kMaxOneString = 32 * 4096;
  constexpr std::size_t kMargin = 4096;
  const long arg_max = sysconf(_SC_ARG_MAX);
  const std::size_t limit = arg_max > 0 ? static_cast<std::size_t>(arg_max) : 2097152;
  std::size_t total = 0;
  std::vector<std::pair<std::size_t, std::string>> too_long;
  std::vector<std::pair<std::size_t, std::string>> sizes;
  for (const auto& text : launch.argv) {
    total += text.size() + 1 + sizeof(char*);
    if (text.size() + 1 > kMaxOneString) {
      too_long.emplace_back(text.size() + 1, "the command line");
      sizes.emplace_back(text.size() + 1, "the command line");
    }
  }
  for (const auto& text : environment) {
    total += text.size() + 1 + sizeof(char*);
    const std::string name = text.substr(0, text.find('='));
    sizes.emplace_back(text.size() + 1, name);
    if (text.size() + 1 > kMaxOneString) too_long.emplace_back(text.size() + 1, name);
  }
  if (too_long.empty() && total + kMargin <= limit) return std::nullopt;
  std::sort(sizes.rbegin(), sizes.rend());
  std::string largest;
  for (std::size_t i = 0; i < sizes.size() && i < 3; ++i) {
    largest +=
        (i == 0 ? "" : ", ") + sizes[i].second + " " + std::to_string(sizes[i].first) + " bytes";
  }
  std::string why;
  if (!too_long.empty()) {
    why = "one argument or variable may hold at most " + std::to_string(kMaxOneString) + " bytes";
  } else {
    why = "the command line and environment total " + std::to_string(total) +
          " bytes, the limit is " + std::to_string(limit - kMargin);
  }
  return LaunchError{kCannotExecute,
                     "lockable: cannot run the command: the environment for " + resource_id +
                         " is too large for exec (" + why + "; largest: " + largest +
                         "); shorten those attributes of " + resource_id +
                         " in the resources file, or unset large variables before lockable"};
}

std::vector<std::string> shell_exported_environment(const std::vector<std::string>& environment,
                                                    const std::string& pwd) {
  const auto shell_name = [](const std::string& name) {
    if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0])) != 0) return false;
    return std::all_of(name.begin(), name.end(), [](char c) {
      return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    });
  };
  std::vector<std::string> result;
  std::map<std::string, std::size_t> index;  // name -> its entry in result
  const auto put = [&](const std::string& name, const std::string& entry) {
    const auto [at, added] = index.emplace(name, result.size());
    if (added) {
      result.push_back(entry);
    } else {
      result[at->second] = entry;  // the shell keeps the last value of a name
    }
  };
  for (const auto& entry : environment) {
    const auto eq = entry.find('=');
    if (eq == std::string::npos) continue;
    const std::string name = entry.substr(0, eq);
    if (shell_name(name)) put(name, entry);
  }
  put("PWD", "PWD=" + pwd);
  return result;
}

std::vector<std::string> child_environment(const char* const* environ_entries,
                                           const std::vector<EnvironmentVariable>& overrides) {
  std::set<std::string> replaced;
  for (const auto& variable : overrides) replaced.insert(variable.first);
  std::vector<std::string> result;
  for (const char* const* entry = environ_entries; entry != nullptr && *entry != nullptr; ++entry) {
    const std::string text = *entry;
    if (replaced.count(text.substr(0, text.find('='))) != 0) continue;
    result.push_back(text);
  }
  for (const auto& [name, value] : overrides) result.push_back(name + "=" + value);
  return result;
}

SignalRelay::SignalRelay() {
  sigemptyset(&relayed_);
  for (const int signal : kRelayedSignals) sigaddset(&relayed_, signal);
  pthread_sigmask(SIG_BLOCK, &relayed_, &original_mask_);
  // waitpid() needs SIGCHLD not ignored: with SIG_IGN inherited, children are reaped by the
  // kernel and their status is lost.
  std::signal(SIGCHLD, SIG_DFL);
  pending_fd_ = signalfd(-1, &relayed_, SFD_NONBLOCK | SFD_CLOEXEC);
  if (pending_fd_ < 0) start_thread();
}

void SignalRelay::start_thread() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (thread_started_) return;
  thread_started_ = true;
  std::thread([this] { relay_loop(); }).detach();
}

void SignalRelay::relay_loop() {
  for (;;) {
    siginfo_t info{};
    const int signal = sigwaitinfo(&relayed_, &info);
    if (signal < 0) continue;  // EINTR
    std::lock_guard<std::mutex> lock(mutex_);
    handle_locked(signal, info.si_code);
  }
}

void SignalRelay::take_pending_signals() {
  if (pending_fd_ < 0) return;
  for (;;) {
    signalfd_siginfo info{};
    if (read(pending_fd_, &info, sizeof info) != static_cast<ssize_t>(sizeof info)) return;
    std::lock_guard<std::mutex> lock(mutex_);
    handle_locked(static_cast<int>(info.ssi_signo), info.ssi_code);
  }
}

void SignalRelay::handle_locked(int signal, int code) {
  if (child_ > 0) {
    // To the keeper, which passes it to the command's whole group (or, in a terminal's
    // foreground, to the command). SI_KERNEL in the foreground: the terminal sent it to the
    // whole foreground group, the command included.
    if (!(child_in_our_group_ && code == SI_KERNEL)) kill(child_, signal);
  } else if (deferring_) {
    if (pending_signal_ == 0) pending_signal_ = signal;
    interrupted_.notify_all();
  } else if (cancel_) {
    // Waiting for a device: unwind through the library, which leaves the queue (a lease
    // backend's lock and queue entry would otherwise stay on the server until they expire).
    if (pending_signal_ == 0) {
      pending_signal_ = signal;
      std::fprintf(stderr, "lockable: interrupted by %s; leaving the queue\n",
                   signal_name(signal).c_str());
      std::fflush(stderr);
    }
    cancel_();
    interrupted_.notify_all();
  } else {
    std::fprintf(stderr, "lockable: interrupted by %s\n", signal_name(signal).c_str());
    std::fflush(stderr);
    std::_Exit(exit_code_for_signal(signal));
  }
}

void SignalRelay::signal_command(int signal) {
  if (signal != SIGKILL) {
    kill(child_, signal);  // the keeper passes it on
  } else if (keeper_gone_fd_ >= 0) {
    // The keeper kills the command's group and every descendant, as when lockable dies.
    close(keeper_gone_fd_);
    keeper_gone_fd_ = -1;
  }
}

void SignalRelay::stop_command(std::chrono::milliseconds grace) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (child_ <= 0) {
    // Not started yet (or already ended): run() must not start it without the lock.
    if (pending_signal_ == 0) pending_signal_ = SIGTERM;
    return;
  }
  signal_command(SIGTERM);
  const pid_t target = child_;
  // child_ is cleared before the command is reaped, so a pid seen here is never a reused one.
  std::thread([this, target, grace] {
    std::this_thread::sleep_for(grace);
    std::lock_guard<std::mutex> guard(mutex_);
    if (child_ == target) signal_command(SIGKILL);
  }).detach();
}

void SignalRelay::cancel_with(std::function<void()> cancel) {
  // One that came while nothing was to be cancelled ends lockable now, as it would have then.
  if (cancel) take_pending_signals();
  std::lock_guard<std::mutex> lock(mutex_);
  cancel_ = std::move(cancel);
}

int SignalRelay::interrupted_exit_code() {
  std::lock_guard<std::mutex> lock(mutex_);
  return pending_signal_ != 0 ? exit_code_for_signal(pending_signal_) : 0;
}

bool SignalRelay::sleep_unless_interrupted(std::chrono::milliseconds duration) {
  start_thread();
  std::unique_lock<std::mutex> lock(mutex_);
  return interrupted_.wait_for(lock, duration, [this] { return pending_signal_ != 0; });
}

void SignalRelay::defer_signals() {
  // A signal from the wait (no relay thread yet, or not yet taken by it) cancels it still.
  take_pending_signals();
  std::lock_guard<std::mutex> lock(mutex_);
  deferring_ = true;
}

std::variant<int, LaunchError> SignalRelay::run(const Launch& launch,
                                                const std::vector<std::string>& environment,
                                                const PeriodicCall& every_interval) {
  // Everything the child needs is built before fork(): between fork and exec only
  // async-signal-safe calls are allowed in a threaded process.
  auto argv = c_strings(launch.argv);
  const std::vector<std::string> exported =
      launch.as_the_shell_would ? shell_exported_environment(environment, shell_pwd())
                                : std::vector<std::string>{};
  std::vector<std::string> sh_strings = launch.argv;
  // A script without a #! line: shells run it with sh, and so do we.
  sh_strings.insert(sh_strings.begin(), "sh");
  sh_strings[1] = launch.path;
  auto sh_argv = c_strings(sh_strings);
  auto envp = c_strings(launch.as_the_shell_would ? exported : environment);
  // The shell starts its commands with no signal blocked; --no-shell passes lockable's own mask.
  sigset_t no_signals;
  sigemptyset(&no_signals);
  const bool share_group = in_terminal_foreground();
  const pid_t parent = getpid();

  const auto cannot_start = [](int error) {
    return LaunchError{kCannotExecute,
                       std::string("lockable: cannot start the command: ") + std::strerror(error)};
  };
  int report[2];
  if (pipe2(report, O_CLOEXEC) != 0) return cannot_start(errno);
  int gone[2];
  if (pipe2(gone, O_CLOEXEC) != 0) {
    const int error = errno;
    close(report[0]);
    close(report[1]);
    return cannot_start(error);
  }
  take_pending_signals();
  pid_t pid = 0;
  {
    // Held across the fork so that a signal arriving meanwhile is relayed, not lost.
    std::lock_guard<std::mutex> lock(mutex_);
    if (pending_signal_ != 0) {
      for (const int fd : {report[0], report[1], gone[0], gone[1]}) close(fd);
      return exit_code_for_signal(pending_signal_);
    }
    const KeeperSetup setup{launch.path.c_str(),
                            argv.data(),
                            sh_argv.data(),
                            envp.data(),
                            share_group,
                            parent,
                            gone[0],
                            report[1],
                            &relayed_,
                            launch.as_the_shell_would ? &no_signals : &original_mask_};
    pid = fork_keeper();
    if (pid == 0) {
      close(report[0]);
      close(gone[1]);
      keeper_main(setup);
    }
    if (pid > 0) {
      // Also here, so that the group exists before any relay reaches for it.
      if (!share_group) setpgid(pid, pid);
      child_ = pid;
      child_in_our_group_ = share_group;
      keeper_gone_fd_ = gone[1];
    } else {
      close(gone[1]);
    }
  }
  close(gone[0]);
  close(report[1]);
  if (pid < 0) {
    const int error = errno;
    close(report[0]);
    return cannot_start(error);
  }
  // Until EOF: the keeper holds its end until it exits, the command until it execs.
  int exec_error = 0;
  std::optional<int> command_status;
  const bool periodic = every_interval.call && every_interval.interval.count() > 0;
  auto next_call = std::chrono::steady_clock::now() + every_interval.interval;
  for (;;) {
    int timeout_ms = -1;
    if (periodic) {
      const auto now = std::chrono::steady_clock::now();
      if (now >= next_call) {
        every_interval.call();
        next_call = now + every_interval.interval;
      }
      // Rounded up: a wake-up just before the time would only come back at once.
      timeout_ms =
          static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(next_call - now).count());
    }
    // Without a relay thread, this thread passes signals on while the command runs.
    pollfd ready[2] = {{report[0], POLLIN, 0}, {pending_fd_, POLLIN, 0}};
    const int polled = poll(ready, pending_fd_ >= 0 ? 2 : 1, timeout_ms);
    if (polled <= 0) continue;  // EINTR, or time for every_interval.call
    if (ready[1].revents != 0) take_pending_signals();
    if (ready[0].revents == 0) continue;
    KeeperReport message{};
    const ssize_t got = read(report[0], &message, sizeof message);
    if (got < 0 && errno == EINTR) continue;
    if (got != static_cast<ssize_t>(sizeof message)) break;
    if (message.kind == KeeperMessage::kExecError) exec_error = message.value;
    if (message.kind == KeeperMessage::kStatus) command_status = message.value;
  }
  close(report[0]);
  // Wait without reaping: while the child is a zombie its pid cannot be reused, so a relay that
  // still sees child_ set signals the right process (or a zombie). Reap only once it is cleared.
  siginfo_t info{};
  while (waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT) < 0 && errno == EINTR) {
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    child_ = 0;
    if (keeper_gone_fd_ >= 0) close(keeper_gone_fd_);
    keeper_gone_fd_ = -1;
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  // The keeper's own status only when it could not say the command's (it was killed).
  if (command_status) status = *command_status;
  if (exec_error != 0) {
    return LaunchError{exec_error == ENOENT ? kCommandNotFound : kCannotExecute,
                       "lockable: " + launch.argv.front() + ": " + std::strerror(exec_error)};
  }
  if (WIFSIGNALED(status)) return exit_code_for_signal(WTERMSIG(status));
  return WEXITSTATUS(status);
}

}  // namespace lockable::cli
