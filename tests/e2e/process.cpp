#include "process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>

extern char** environ;

namespace lockable::e2e {
namespace {

bool inherited_setting(const std::string& entry) {
  return entry.rfind("LOCKABLE_", 0) == 0 || entry.rfind("GTEST_", 0) == 0;
}

int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

Process::Process(const std::vector<std::string>& argv,
                 const std::map<std::string, std::string>& env, std::filesystem::path output)
    : output_(std::move(output)) {
  std::vector<std::string> environment;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    const std::string text = *entry;
    const auto name = text.substr(0, text.find('='));
    if (inherited_setting(text) || env.count(name) != 0) continue;
    environment.push_back(text);
  }
  for (const auto& [name, value] : env) {
    if (!value.empty()) environment.push_back(name + "=" + value);
  }
  std::vector<char*> argv_ptrs;
  for (const auto& arg : argv) argv_ptrs.push_back(const_cast<char*>(arg.c_str()));
  argv_ptrs.push_back(nullptr);
  std::vector<char*> env_ptrs;
  for (const auto& entry : environment) env_ptrs.push_back(const_cast<char*>(entry.c_str()));
  env_ptrs.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, output_.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  const int rc =
      posix_spawn(&pid_, argv_ptrs[0], &actions, nullptr, argv_ptrs.data(), env_ptrs.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    pid_ = -1;
    throw std::system_error(rc, std::generic_category(), "cannot start " + argv[0]);
  }
}

Process::~Process() {
  if (pid_ > 0 && !exit_code_) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
}

int Process::wait(std::chrono::milliseconds guard) {
  if (exit_code_) return *exit_code_;
  const auto deadline = std::chrono::steady_clock::now() + guard;
  while (true) {
    int status = 0;
    const pid_t done = ::waitpid(pid_, &status, WNOHANG);
    if (done == pid_) {
      exit_code_ = decode_status(status);
      return *exit_code_;
    }
    if (done < 0 && errno != EINTR)
      throw std::system_error(errno, std::generic_category(), "waitpid");
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
      exit_code_ = decode_status(status);
      throw std::runtime_error("child " + std::to_string(pid_) + " still ran after " +
                               std::to_string(guard.count()) + " ms; killed it. Output:\n" +
                               output());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

std::string Process::output() const { return read_text(output_); }

void Process::wait_for_output(const std::string& text, std::chrono::milliseconds guard) {
  const auto deadline = std::chrono::steady_clock::now() + guard;
  while (true) {
    if (output().find(text) != std::string::npos) return;
    int status = 0;
    if (!exit_code_ && ::waitpid(pid_, &status, WNOHANG) == pid_)
      exit_code_ = decode_status(status);
    if (exit_code_ && output().find(text) == std::string::npos) {
      throw std::runtime_error("child exited with " + std::to_string(*exit_code_) +
                               " before printing \"" + text + "\". Output:\n" + output());
    }
    if (std::chrono::steady_clock::now() > deadline) {
      throw std::runtime_error("child did not print \"" + text + "\" within " +
                               std::to_string(guard.count()) + " ms. Output:\n" + output());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

RunResult run(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
              const std::filesystem::path& output, std::chrono::milliseconds guard) {
  Process process(argv, env, output);
  RunResult result;
  result.exit_code = process.wait(guard);
  result.output = process.output();
  return result;
}

TempDir::TempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "lockable-e2e-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    throw std::system_error(errno, std::generic_category(), "mkdtemp " + pattern);
  }
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

void write_file(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace lockable::e2e
