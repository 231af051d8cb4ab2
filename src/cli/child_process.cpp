#include "child_process.hpp"

#include "exit_codes.hpp"

#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <set>
#include <thread>

namespace lockable::cli {
namespace {

constexpr int kRelayedSignals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};

bool has_shell_syntax(const std::string& word) {
  return word.find_first_of(" \t\n|&;<>()$`\\\"'*?[]#~={}") != std::string::npos;
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

}  // namespace

std::variant<Launch, LaunchError> resolve_command(const std::vector<std::string>& command) {
  auto found = find_executable(command);
  if (std::holds_alternative<LaunchError>(found) && command.size() == 1 &&
      has_shell_syntax(command.front())) {
    return Launch{"/bin/sh", {"sh", "-c", command.front()}};
  }
  return found;
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
  std::thread([this] { relay_loop(); }).detach();
}

void SignalRelay::relay_loop() {
  for (;;) {
    siginfo_t info{};
    const int signal = sigwaitinfo(&relayed_, &info);
    if (signal < 0) continue;  // EINTR
    std::lock_guard<std::mutex> lock(mutex_);
    if (child_ > 0) {
      // SI_KERNEL: the terminal sent it to the whole foreground group, the child included.
      if (info.si_code != SI_KERNEL) kill(child_, signal);
    } else if (deferring_) {
      if (pending_signal_ == 0) pending_signal_ = signal;
    } else {
      std::fprintf(stderr, "lockable: interrupted by %s\n", signal_name(signal).c_str());
      std::fflush(stderr);
      std::_Exit(exit_code_for_signal(signal));
    }
  }
}

void SignalRelay::defer_signals() {
  std::lock_guard<std::mutex> lock(mutex_);
  deferring_ = true;
}

std::variant<int, LaunchError> SignalRelay::run(const Launch& launch,
                                                const std::vector<std::string>& environment) {
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  posix_spawnattr_setsigmask(&attributes, &original_mask_);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK);
  auto argv_strings = launch.argv;
  auto envp = c_strings(environment);

  pid_t pid = 0;
  int error = 0;
  {
    // Held across the spawn so that a signal arriving meanwhile is relayed, not lost.
    std::lock_guard<std::mutex> lock(mutex_);
    if (pending_signal_ != 0) {
      posix_spawnattr_destroy(&attributes);
      return exit_code_for_signal(pending_signal_);
    }
    auto argv = c_strings(argv_strings);
    error = posix_spawn(&pid, launch.path.c_str(), nullptr, &attributes, argv.data(), envp.data());
    if (error == ENOEXEC) {
      // A script without a #! line: shells run it with sh, and so do we.
      argv_strings.insert(argv_strings.begin(), "sh");
      argv_strings[1] = launch.path;
      argv = c_strings(argv_strings);
      error = posix_spawn(&pid, "/bin/sh", nullptr, &attributes, argv.data(), envp.data());
    }
    if (error == 0) child_ = pid;
  }
  posix_spawnattr_destroy(&attributes);
  if (error != 0) {
    return LaunchError{error == ENOENT ? kCommandNotFound : kCannotExecute,
                       "lockable: " + launch.argv.front() + ": " + std::strerror(error)};
  }

  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  std::lock_guard<std::mutex> lock(mutex_);
  child_ = 0;
  if (WIFSIGNALED(status)) return exit_code_for_signal(WTERMSIG(status));
  return WEXITSTATUS(status);
}

}  // namespace lockable::cli
