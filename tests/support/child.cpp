#include "lockable/test/child.hpp"

#include "lockable/test/files.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <stdexcept>
#include <system_error>
#include <thread>

extern char** environ;

namespace lockable::test {
namespace {

using Clock = std::chrono::steady_clock;

std::chrono::milliseconds left_until(Clock::time_point deadline) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
}

bool dropped(const std::string& name, const ChildOptions& options) {
  if (options.env.count(name) != 0) return true;
  for (const auto& prefix : options.drop_env_prefixes) {
    if (name.rfind(prefix, 0) == 0) return true;
  }
  return false;
}

std::vector<std::string> environment_for(const ChildOptions& options) {
  std::vector<std::string> environment;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    const std::string text = *entry;
    if (!dropped(text.substr(0, text.find('=')), options)) environment.push_back(text);
  }
  for (const auto& [name, value] : options.env) {
    if (!value.empty()) environment.push_back(name + "=" + value);
  }
  return environment;
}

std::vector<char*> c_strings(const std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  for (const auto& text : strings) pointers.push_back(const_cast<char*>(text.c_str()));
  pointers.push_back(nullptr);
  return pointers;
}

// Both ends close on exec: only the end dup2'ed onto the child's stream survives into it.
std::array<int, 2> make_pipe() {
  int ends[2];
  if (::pipe2(ends, O_CLOEXEC) != 0)
    throw std::system_error(errno, std::generic_category(), "pipe2");
  return {ends[0], ends[1]};
}

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

// posix_spawn file actions that own the pipe ends the child keeps; the parent closes them once
// the child has started.
class SpawnActions {
 public:
  SpawnActions() { ::posix_spawn_file_actions_init(&actions_); }
  ~SpawnActions() {
    ::posix_spawn_file_actions_destroy(&actions_);
    for (int& fd : child_ends_) close_fd(fd);
  }
  SpawnActions(const SpawnActions&) = delete;
  SpawnActions& operator=(const SpawnActions&) = delete;

  // Connects the child's `target` fd as `stream` says; returns the parent's pipe end or -1.
  int connect(int target, const Stream& stream) {
    switch (stream.kind()) {
      case Stream::Kind::inherit:
        return -1;
      case Stream::Kind::null:
        ::posix_spawn_file_actions_addopen(&actions_, target, "/dev/null",
                                           target == 0 ? O_RDONLY : O_WRONLY, 0);
        return -1;
      case Stream::Kind::file:
        ::posix_spawn_file_actions_addopen(&actions_, target, stream.path().c_str(),
                                           target == 0 ? O_RDONLY : O_WRONLY | O_CREAT | O_TRUNC,
                                           0644);
        return -1;
      case Stream::Kind::same_as_stdout:
        if (target != 2) throw std::invalid_argument("same_as_stdout() is for stderr only");
        ::posix_spawn_file_actions_adddup2(&actions_, 1, 2);
        return -1;
      case Stream::Kind::pipe: {
        const auto ends = make_pipe();
        const int child_end = target == 0 ? ends[0] : ends[1];
        child_ends_.push_back(child_end);
        ::posix_spawn_file_actions_adddup2(&actions_, child_end, target);
        return target == 0 ? ends[1] : ends[0];
      }
    }
    return -1;
  }
  void chdir(const std::filesystem::path& dir) {
    ::posix_spawn_file_actions_addchdir_np(&actions_, dir.c_str());
  }
  const posix_spawn_file_actions_t* get() const { return &actions_; }

 private:
  posix_spawn_file_actions_t actions_;
  std::vector<int> child_ends_;
};

}  // namespace

Child::Child(const std::vector<std::string>& argv, const ChildOptions& options) {
  if (argv.empty()) throw std::invalid_argument("Child needs argv[0], the program's path");
  program_ = argv[0];
  const auto environment = environment_for(options);
  const auto argv_ptrs = c_strings(argv);
  const auto env_ptrs = c_strings(environment);
  // A constructor that throws gets no destructor: close our pipe ends by hand then.
  try {
    SpawnActions actions;
    stdin_ = actions.connect(0, options.in);
    pipes_[0] = actions.connect(1, options.out);
    pipes_[1] = actions.connect(2, options.err);
    if (options.out.kind() == Stream::Kind::file) files_[0] = options.out.path();
    if (options.err.kind() == Stream::Kind::file) files_[1] = options.err.path();
    if (!options.cwd.empty()) actions.chdir(options.cwd);
    const int rc = ::posix_spawn(&pid_, argv_ptrs[0], actions.get(), nullptr, argv_ptrs.data(),
                                 env_ptrs.data());
    if (rc != 0) {
      pid_ = -1;
      throw std::system_error(rc, std::generic_category(), "cannot start " + program_);
    }
  } catch (...) {
    close_fd(stdin_);
    for (int& fd : pipes_) close_fd(fd);
    throw;
  }
}

Child::~Child() {
  close_fd(stdin_);
  for (int& fd : pipes_) close_fd(fd);
  if (pid_ > 0 && !reaped_) {
    ::kill(pid_, SIGKILL);
    // Not reap(): a destructor must not throw.
    while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
}

bool Child::reap(bool block) {
  if (reaped_) return true;
  int status = 0;
  pid_t done = -1;
  do {
    done = ::waitpid(pid_, &status, block ? 0 : WNOHANG);
  } while (done < 0 && errno == EINTR);
  if (done == 0) return false;
  if (done < 0) throw std::system_error(errno, std::generic_category(), "waitpid " + program_);
  reaped_ = true;
  if (WIFSIGNALED(status)) {
    signal_ = WTERMSIG(status);
    status_ = 128 + signal_;
  } else {
    status_ = WEXITSTATUS(status);
  }
  return true;
}

bool Child::pump(std::chrono::milliseconds timeout) {
  std::array<pollfd, 2> fds{{{pipes_[0], POLLIN, 0}, {pipes_[1], POLLIN, 0}}};
  if (pipes_[0] < 0 && pipes_[1] < 0) return false;
  // poll() ignores negative descriptors, so a closed stream simply never reports.
  if (::poll(fds.data(), fds.size(), static_cast<int>(std::max<long long>(0, timeout.count()))) <=
      0) {
    return true;
  }
  for (std::size_t i = 0; i < fds.size(); ++i) {
    if (fds[i].fd < 0 || fds[i].revents == 0) continue;
    char chunk[4096];
    const ssize_t n = ::read(fds[i].fd, chunk, sizeof chunk);
    if (n > 0) {
      buffers_[i].append(chunk, static_cast<std::size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      close_fd(pipes_[i]);
    }
  }
  return true;
}

std::optional<std::string> Child::read_line(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    if (const auto newline = buffers_[0].find('\n'); newline != std::string::npos) {
      std::string line = buffers_[0].substr(0, newline);
      buffers_[0].erase(0, newline + 1);
      return line;
    }
    if (pipes_[0] < 0) return std::nullopt;
    const auto left = left_until(deadline);
    if (left.count() <= 0) return std::nullopt;
    pump(left);
  }
}

void Child::write_line(const std::string& line) {
  const std::string data = line + "\n";
  if (stdin_ < 0 || ::write(stdin_, data.data(), data.size()) < 0) {
    // The child may be gone already; the test notices through its output or exit code.
  }
}

void Child::close_stdin() { close_fd(stdin_); }

void Child::send_signal(int signal) {
  if (!reaped_) ::kill(pid_, signal);
}

void Child::kill_now() {
  send_signal(SIGKILL);
  reap(true);
}

int Child::wait(std::chrono::milliseconds guard) {
  const auto deadline = Clock::now() + guard;
  while (!reap(false)) {
    if (Clock::now() > deadline) {
      kill_now();
      throw std::runtime_error(program_ + " (pid " + std::to_string(pid_) + ") still ran after " +
                               std::to_string(guard.count()) + " ms; killed it. Output:\n" +
                               output());
    }
    // Keep pipes flowing: a child blocked on a full pipe would never exit.
    if (!pump(std::chrono::milliseconds(5)))
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return status_;
}

void Child::read_to_end(Clock::time_point deadline) {
  for (;;) {
    const auto left = left_until(deadline);
    if (left.count() <= 0 || !pump(left)) return;
  }
}

std::string Child::text_of(int stream) const {
  const auto index = static_cast<std::size_t>(stream);
  return files_[index] ? read_text(*files_[index]) : buffers_[index];
}

std::string Child::out() const { return text_of(0); }

std::string Child::err() const { return text_of(1); }

void Child::wait_for_output(const std::string& text, std::chrono::milliseconds guard) {
  const auto deadline = Clock::now() + guard;
  for (;;) {
    if (output().find(text) != std::string::npos) return;
    if (reap(false)) {
      read_to_end(deadline);
      if (output().find(text) != std::string::npos) return;
      throw std::runtime_error(program_ + " exited with " + std::to_string(status_) +
                               " before printing \"" + text + "\". Output:\n" + output());
    }
    if (Clock::now() > deadline) {
      throw std::runtime_error(program_ + " did not print \"" + text + "\" within " +
                               std::to_string(guard.count()) + " ms. Output:\n" + output());
    }
    if (!pump(std::chrono::milliseconds(5)))
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

std::ostream& operator<<(std::ostream& stream, const RunResult& result) {
  return stream << "exit " << result.exit_code << "\nstdout:\n"
                << result.out << "\nstderr:\n"
                << result.err;
}

RunResult run(const std::vector<std::string>& argv, const ChildOptions& options,
              std::chrono::milliseconds guard) {
  const auto deadline = Clock::now() + guard;
  Child child(argv, options);
  child.close_stdin();
  child.read_to_end(deadline);
  RunResult result;
  result.exit_code = child.wait(std::max(left_until(deadline), std::chrono::milliseconds(0)));
  result.signal = child.term_signal();
  result.out = child.out();
  result.err = child.err();
  return result;
}

}  // namespace lockable::test
