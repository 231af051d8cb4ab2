// Runs the built `lockable` binary as a real process against temporary resources files and lock
// folders. Every child is killed and reaped by RAII, also when a test fails.

#include <lockable/factory.hpp>
#include <lockable/version.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "lockable/test/case_name.hpp"
#include "lockable/test/child.hpp"
#include "lockable/test/etcd_server.hpp"
#include "lockable/test/eventually.hpp"
#include "lockable/test/files.hpp"

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using lockable::test::CaseName;
using lockable::test::eventually;
using lockable::test::is_flocked;
using lockable::test::read_text;
using lockable::test::RunResult;
using lockable::test::TempDir;
using lockable::test::write_file;

// Failure guard only: nothing here should come near it.
constexpr auto kGuard = std::chrono::seconds(60);

const std::string kSecretEnvValue = "s3cr3t-env-value-7f3a";
const std::string kSecretAttribute = "hunter2-attribute-91c";

// The built binary followed by `args`.
std::vector<std::string> lockable_argv(std::vector<std::string> args) {
  args.insert(args.begin(), LOCKABLE_CLI_PATH);
  return args;
}

// This process's environment with `env` (NAME=value) replacing variables of the same name, stdin
// from /dev/null, in `cwd` unless empty.
lockable::test::ChildOptions lockable_options(const std::vector<std::string>& env, fs::path cwd) {
  lockable::test::ChildOptions options;
  for (const auto& variable : env) {
    const auto eq = variable.find('=');
    options.env[variable.substr(0, eq)] = variable.substr(eq + 1);
  }
  options.cwd = std::move(cwd);
  options.in = lockable::test::Stream::null();
  return options;
}

// The exit code the assertions see: lockable itself killed by signal N gives 1000 + N, which no
// test expects, so it never passes for a command's forwarded 128 + N.
int checked_exit_code(int exit_code, int signal) { return signal != 0 ? 1000 + signal : exit_code; }

// Runs lockable to completion, capturing stdout and stderr.
RunResult run(std::vector<std::string> args, std::vector<std::string> env = {}, fs::path cwd = {}) {
  auto options = lockable_options(env, std::move(cwd));
  options.out = lockable::test::Stream::pipe();
  options.err = lockable::test::Stream::pipe();
  auto result = lockable::test::run(lockable_argv(std::move(args)), options, kGuard);
  result.exit_code = checked_exit_code(result.exit_code, result.signal);
  return result;
}

bool wait_for_file(const fs::path& path) {
  return eventually([&] { return fs::exists(path); }, kGuard);
}

// A waiter is in the fair queue once its ticket exists in `locks`/.lockable-queue
// (lock_folder.hpp).
bool wait_until_queued(const fs::path& locks) {
  return eventually(
      [&] {
        std::error_code ignored;
        for (const auto& entry : fs::directory_iterator(locks / ".lockable-queue", ignored)) {
          if (entry.path().extension() == ".ticket") return true;
        }
        return false;
      },
      kGuard);
}

// A lockable process that holds a device while its command waits; killed and reaped on
// destruction if the test did not finish it.
class Holder {
 public:
  Holder(const fs::path& dir, std::vector<std::string> args, const std::string& script,
         const std::string& name = "holder", std::vector<std::string> env = {},
         std::vector<std::string> wrapper = {})
      : ready_(dir / (name + ".ready")),
        child_(wrapped(std::move(wrapper), lockable_argv(with_command(std::move(args), script))),
               log_options(ready_, dir / (name + ".log"), std::move(env))) {}

  /// The command runs (so the device is locked) once it has touched $READY.
  bool wait_until_locked() const { return wait_for_file(ready_); }
  pid_t pid() const { return child_.pid(); }
  int signal_and_wait(int signal) {
    child_.send_signal(signal);
    return wait();
  }
  int wait() {
    const int code = child_.wait(kGuard);
    return checked_exit_code(code, child_.term_signal());
  }
  std::string log() const { return child_.output(); }

 private:
  static std::vector<std::string> with_command(std::vector<std::string> args,
                                               const std::string& script) {
    args.insert(args.end(), {"--no-shell", "--", "sh", "-c", script});
    return args;
  }
  static std::vector<std::string> wrapped(std::vector<std::string> wrapper,
                                          std::vector<std::string> argv) {
    wrapper.insert(wrapper.end(), argv.begin(), argv.end());
    return wrapper;
  }
  static lockable::test::ChildOptions log_options(const fs::path& ready, fs::path log,
                                                  std::vector<std::string> env) {
    env.push_back("READY=" + ready.string());
    auto options = lockable_options(env, {});
    options.out = lockable::test::Stream::file(std::move(log));
    options.err = lockable::test::Stream::same_as_stdout();
    return options;
  }

  fs::path ready_;
  lockable::test::Child child_;
};

// A command that holds until it is sent SIGTERM/SIGINT (signals reach `sh` between sleeps).
const std::string kWaitForever = "touch \"$READY\"; exec sleep 600";

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    resources_ = dir_.path() / "resources.json";
    locks_ = dir_.path() / "locks";
    const Json resources = Json::array({
        {{"id", "dut-a"},
         {"online", true},
         {"hostname", "localhost"},
         {"os", "Android"},
         {"serial", "SER-A"},
         {"usb", {{"hub", 1}, {"port", 2}}},
         {"api-key", kSecretAttribute}},
        {{"id", "dut-b"}, {"online", true}, {"hostname", "localhost"}, {"os", "iOS"}},
        {{"id", "dut-off"}, {"online", false}, {"hostname", "localhost"}, {"os", "Android"}},
    });
    write_file(resources_, resources.dump(2));
  }

  // Options every run shares; the test's own follow.
  std::vector<std::string> base(std::vector<std::string> more = {}) const {
    std::vector<std::string> args{"--resources",   resources_.string(), "--lock-folder",
                                  locks_.string(), "--hostname",        "localhost"};
    args.insert(args.end(), more.begin(), more.end());
    return args;
  }

  fs::path lock_file(const std::string& id) const { return locks_ / (id + ".pid"); }

  TempDir dir_;
  fs::path resources_;
  fs::path locks_;
};

// ---- running a command ---------------------------------------------------------------------

TEST_F(CliTest, CommandSeesDeviceAttributesAndItsExitStatusIsLockables) {
  const auto result =
      run(base({"--requirements", "os=Android", "--no-shell", "--", "sh", "-c",
                R"(test "$OS" = Android && test "$ID" = dut-a && test "$SERIAL" = SER-A &&)"
                R"( test "$LOCKABLE_RESOURCE_ID" = dut-a && test "$USB" = '{"hub":1,"port":2}')"
                R"( && exit 7; exit 1)"}));
  EXPECT_EQ(result.exit_code, 7) << result;
  EXPECT_NE(result.err.find("lockable: locked dut-a (alloc "), std::string::npos) << result;
  EXPECT_NE(result.err.find("lockable: released dut-a after "), std::string::npos) << result;
}

TEST_F(CliTest, CommandEnvironmentHoldsAllocIdResourceJsonAndInheritedVariables) {
  const auto env_file = dir_.path() / "env.txt";
  const auto result =
      run(base({"--requirements", "id=dut-a", "--no-shell", "--", "sh", "-c", "env > \"$OUT\""}),
          {"OUT=" + env_file.string(), "INHERITED_VAR=kept"});
  ASSERT_EQ(result.exit_code, 0) << result;
  std::map<std::string, std::string> env;
  std::istringstream lines(read_text(env_file));
  for (std::string line; std::getline(lines, line);) {
    const auto eq = line.find('=');
    if (eq != std::string::npos) env[line.substr(0, eq)] = line.substr(eq + 1);
  }
  EXPECT_EQ(env["INHERITED_VAR"], "kept");
  EXPECT_EQ(env["API_KEY"], kSecretAttribute);
  EXPECT_EQ(env["ONLINE"], "true");
  const auto alloc_id = env["LOCKABLE_ALLOC_ID"];
  ASSERT_FALSE(alloc_id.empty());
  EXPECT_NE(result.err.find("(alloc " + alloc_id + ")"), std::string::npos) << result;
  const Json resource = Json::parse(env["LOCKABLE_RESOURCE"]);
  EXPECT_EQ(resource.at("id"), "dut-a");
  EXPECT_EQ(resource.at("usb").at("port"), 2);
}

TEST_F(CliTest, CommandKilledBySignalGives128PlusSignal) {
  const auto result = run(base({"--no-shell", "--", "sh", "-c", "kill -KILL $$"}));
  EXPECT_EQ(result.exit_code, 128 + SIGKILL) << result;
  EXPECT_NE(result.err.find("lockable: released"), std::string::npos) << result;
}

TEST_F(CliTest, CommandOptionsAfterTheCommandNameBelongToTheCommand) {
  const auto direct = run(base({"--no-shell", "sh", "-c", "exit 3", "--timeout", "-1"}));
  EXPECT_EQ(direct.exit_code, 3) << direct;
  const auto shell = run(base({"exit", "4", "--timeout", "-1"}));
  EXPECT_EQ(shell.exit_code, 4) << shell;
}

TEST_F(CliTest, OneQuotedWordWithShellSyntaxRunsInAShellLikeThePythonCli) {
  const auto result = run(base({"--requirements", "os=iOS", R"(test "$OS" = iOS && exit 9)"}));
  EXPECT_EQ(result.exit_code, 9) << result;
}

TEST_F(CliTest, ResourcesJsonInTheCurrentDirectoryIsTheDefault) {
  const auto result =
      run({"--lock-folder", locks_.string(), "--hostname", "localhost", "--requirements", "os=iOS",
           "--no-shell", "sh", "-c", R"(test "$ID" = dut-b)"},
          {}, dir_.path());
  EXPECT_EQ(result.exit_code, 0) << result;
}

TEST_F(CliTest, EmptyRequirementsInEitherSpellingMatchAnyDevice) {
  for (const auto& spelling : std::vector<std::vector<std::string>>{
           {"--requirements", ""}, {"--requirements="}, {"--requirements", "{}"}}) {
    auto args = base(spelling);
    args.insert(args.end(), {"-q", "test", "-n", "\"$LOCKABLE_RESOURCE_ID\""});
    const auto result = run(args);
    EXPECT_EQ(result.exit_code, 0) << spelling.front() << "\n" << result;
  }
}

TEST_F(CliTest, QuietPrintsNothingOfItsOwn) {
  const auto result = run(base({"--quiet", "true"}));
  EXPECT_EQ(result.exit_code, 0) << result;
  EXPECT_EQ(result.output(), "");
}

TEST_F(CliTest, DoubleDashRunsACommandNamedStatus) {
  const auto bin = dir_.path() / "bin";
  fs::create_directories(bin);
  write_file(bin / "status", "#!/bin/sh\necho i-am-the-status-command\n");
  fs::permissions(bin / "status", fs::perms::owner_all);
  const std::string path = "PATH=" + bin.string() + ":" + std::getenv("PATH");
  const auto command = run(base({"--", "status"}), {path});
  EXPECT_EQ(command.exit_code, 0) << command;
  EXPECT_NE(command.out.find("i-am-the-status-command"), std::string::npos) << command;
  const auto subcommand = run(base({"status"}), {path});
  EXPECT_EQ(subcommand.exit_code, 0) << subcommand;
  EXPECT_EQ(subcommand.out.find("i-am-the-status-command"), std::string::npos) << subcommand;
  EXPECT_NE(subcommand.out.find("dut-b"), std::string::npos) << subcommand;
}

// ---- the Python CLI's command form ------------------------------------------------------------

TEST_F(CliTest, CommandWordsAreJoinedAndRunByTheShellAsThePythonCliRunsThem) {
  // The Python CLI's own usage example, word for word.
  const auto result =
      run(base({"--requirements", R"({"online":true})", "echo", "using", "resource:", "$ID"}));
  EXPECT_EQ(result.exit_code, 0) << result;
  EXPECT_EQ(result.out, "using resource: dut-a\n") << result;
  const auto pipe = run(base({"--requirements", "os=iOS", "echo", "$OS", "|", "tr", "a-z", "A-Z"}));
  EXPECT_EQ(pipe.out, "IOS\n") << pipe;
}

TEST_F(CliTest, NoShellExecutesTheWordsUntouched) {
  const auto result = run(base({"--requirements", "os=iOS", "--no-shell", "echo", "$OS", "a  b"}));
  EXPECT_EQ(result.exit_code, 0) << result;
  EXPECT_EQ(result.out, "$OS a  b\n") << result;
}

TEST_F(CliTest, ShellBuiltinsAndKeywordsAreNotMistakenForMissingCommands) {
  const auto result = run(base({"if", "test", "$OS", "=", "Android;", "then", "exit", "5;", "fi"}));
  EXPECT_EQ(result.exit_code, 5) << result;
  const auto builtin = run(base({"cd", "/", "&&", "exit", "6"}));
  EXPECT_EQ(builtin.exit_code, 6) << builtin;
}

TEST_F(CliTest, PlainWordsRunWithoutAShellInBetween) {
  // The command's parent: lockable's keeper for plain words, a shell when there is syntax.
  const auto script = dir_.path() / "parent.sh";
  write_file(script, "#!/bin/sh\ncat /proc/$PPID/comm\n");
  fs::permissions(script, fs::perms::owner_all);
  const auto plain = run(base({"-q", script.string()}));
  EXPECT_EQ(plain.exit_code, 0) << plain;
  EXPECT_EQ(plain.out, "lockable\n") << plain;
  const auto shell = run(base({"-q", script.string(), ">&1"}));
  EXPECT_EQ(shell.exit_code, 0) << shell;
  EXPECT_EQ(shell.out, "sh\n") << shell;
  // A builtin's name stays with the shell: dash's echo prints -e, /bin/echo takes it.
  const auto builtin = run(base({"-q", "echo", "-e", "x"}));
  EXPECT_EQ(builtin.out, "-e x\n") << builtin;
  const auto status = run(base({"-q", "ls", (dir_.path() / "missing").string()}));
  EXPECT_EQ(status.exit_code, 2) << status;
}

TEST_F(CliTest, PlainWordsGetTheEnvironmentAndSignalMaskTheShellWouldGive) {
  // Started with SIGUSR1 blocked, a name no shell variable can have, and PWD through a symlink:
  // the shell drops the name, keeps the symlinked PWD and clears the mask; so must lockable.
  const auto real = dir_.path() / "real";
  fs::create_directory(real);
  fs::create_directory_symlink(real, dir_.path() / "link");
  const auto link = dir_.path() / "link";
  const auto run_blocked = [&](std::vector<std::string> command) {
    std::vector<std::string> argv{"/usr/bin/python3", "-c",
                                  "import os, signal, sys\n"
                                  "signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1])\n"
                                  "os.execv(sys.argv[1], sys.argv[1:])\n",
                                  LOCKABLE_CLI_PATH};
    for (const auto& word : base({"-q", "--requirements", "id=dut-b"})) argv.push_back(word);
    argv.insert(argv.end(), command.begin(), command.end());
    auto options = lockable_options({"A-B=1", "PWD=" + link.string()}, link);
    options.out = lockable::test::Stream::pipe();
    options.err = lockable::test::Stream::pipe();
    return lockable::test::run(argv, options, kGuard);
  };
  const auto sorted_without_alloc_id = [](const std::string& text) {
    std::istringstream lines(text);
    std::vector<std::string> kept;
    for (std::string line; std::getline(lines, line);) {
      if (line.rfind("LOCKABLE_ALLOC_ID=", 0) != 0) kept.push_back(line);
    }
    std::sort(kept.begin(), kept.end());
    std::string joined;
    for (const auto& line : kept) joined += line + "\n";
    return joined;
  };
  const auto plain = run_blocked({"env"});
  const auto shell = run_blocked({"env", ">&1"});
  ASSERT_EQ(plain.exit_code, 0) << plain;
  ASSERT_EQ(shell.exit_code, 0) << shell;
  EXPECT_EQ(sorted_without_alloc_id(plain.out), sorted_without_alloc_id(shell.out));
  EXPECT_EQ(plain.out.find("A-B="), std::string::npos) << plain;
  EXPECT_NE(plain.out.find("\nPWD=" + link.string() + "\n"), std::string::npos) << plain;
  const auto plain_mask = run_blocked({"grep", "SigBlk", "/proc/self/status"});
  const auto shell_mask = run_blocked({"grep", "SigBlk", "/proc/self/status", ">&1"});
  EXPECT_EQ(plain_mask.out, shell_mask.out);
  EXPECT_EQ(plain_mask.out, "SigBlk:\t0000000000000000\n") << plain_mask;
}

TEST_F(CliTest, ValidateOnlyAcceptsACommandLikeThePythonCliAndDoesNotRunIt) {
  const auto mark = dir_.path() / "ran";
  const auto result = run(base({"--validate-only", "touch", mark.string()}));
  EXPECT_EQ(result.exit_code, 0) << result;
  EXPECT_EQ(result.out, resources_.string() + ": 3 resources, valid\n") << result;
  EXPECT_FALSE(fs::exists(mark));
  EXPECT_FALSE(fs::exists(locks_)) << "validation touches no lock folder";
}

TEST(CliHelpTest, HelpShowsEveryDefaultAndVariable) {
  const auto temp = TempDir();
  const auto result = run({"--help"}, {"TMPDIR=" + temp.path().string()});
  EXPECT_EQ(result.exit_code, 0) << result;
  for (const std::string& text : std::vector<std::string>{
           "default: 1000", "the Python CLI's default is 1)", temp.path().string(),
           "the Python CLI's default is .)", "default: resources.json", "--no-shell", "/bin/sh -c",
           "LOCKABLE_LOCK_FOLDER", "LOCKABLE_RESOURCES", "LOCKABLE_TIMEOUT", "LOCKABLE_HOSTNAME",
           "LOCKABLE_REQUIREMENTS", "USB_PORT", "PATH, HOME", "--lock-backend",
           "LOCKABLE_LOCK_BACKEND", "etcd://"}) {
    EXPECT_NE(result.out.find(text), std::string::npos) << text << "\n" << result;
  }
  for (const char* text : {"--priority N", "LOCKABLE_PRIORITY", "--watch", "--count N"}) {
    EXPECT_NE(result.out.find(text), std::string::npos) << text << "\n" << result;
  }
}

// ---- LOCKABLE_* variables, shared with the plugin -----------------------------------------------

TEST_F(CliTest, LockableVariablesConfigureTheCliAsThePlugin) {
  const auto shared = dir_.path() / "shared-locks";
  const std::vector<std::string> env{
      "LOCKABLE_LOCK_FOLDER=" + shared.string(), "LOCKABLE_RESOURCES=" + resources_.string(),
      "LOCKABLE_HOSTNAME=localhost", "LOCKABLE_REQUIREMENTS=os=iOS", "LOCKABLE_TIMEOUT=0"};
  const auto result = run({"test", "$ID", "=", "dut-b"}, env);
  EXPECT_EQ(result.exit_code, 0) << result;
  EXPECT_TRUE(fs::exists(shared / "dut-b.pid")) << "locked in LOCKABLE_LOCK_FOLDER";

  // A device held through the variables is busy for a run given the same folder as a flag.
  auto holder_env = env;
  Holder holder(dir_.path(), {}, kWaitForever, "env-holder", holder_env);
  ASSERT_TRUE(holder.wait_until_locked()) << holder.log();
  EXPECT_TRUE(is_flocked(shared / "dut-b.pid"));
  const auto busy = run(base(
      {"--lock-folder", shared.string(), "--requirements", "os=iOS", "--timeout", "0", "true"}));
  EXPECT_EQ(busy.exit_code, 6) << busy;
}

TEST_F(CliTest, FlagsWinOverLockableVariables) {
  const auto result = run(base({"--requirements", "os=Android", "test", "$ID", "=", "dut-a"}),
                          {"LOCKABLE_LOCK_FOLDER=" + (dir_.path() / "not-this").string(),
                           "LOCKABLE_REQUIREMENTS=os=iOS", "LOCKABLE_RESOURCES=/nonexistent"});
  EXPECT_EQ(result.exit_code, 0) << result;
  EXPECT_TRUE(fs::exists(lock_file("dut-a")));
  EXPECT_FALSE(fs::exists(dir_.path() / "not-this"));
}

TEST_F(CliTest, BadLockableVariableIsAnErrorNamingIt) {
  const auto result = run(base({"true"}), {"LOCKABLE_TIMEOUT=-1"});
  EXPECT_EQ(result.exit_code, 2) << result;
  EXPECT_NE(result.err.find("LOCKABLE_TIMEOUT: must not be negative"), std::string::npos) << result;
  const auto requirements = run(base({"true"}), {"LOCKABLE_REQUIREMENTS={\"os\":"});
  EXPECT_EQ(requirements.exit_code, 4) << requirements;
  EXPECT_EQ(requirements.err.rfind("lockable: LOCKABLE_REQUIREMENTS: ", 0), 0u) << requirements;
  EXPECT_FALSE(fs::exists(locks_));
}

std::string line_of(const std::string& text, const std::string& id);

// ---- the lock backend spec ---------------------------------------------------------------------

TEST_F(CliTest, LockBackendSpecFromTheFlagOrTheVariableNamesTheStore) {
  const auto store = dir_.path() / "store";
  const std::vector<std::string> args{"--resources", resources_.string(), "--hostname",
                                      "localhost",   "--requirements",    "os=iOS"};
  auto with_flag = args;
  with_flag.insert(with_flag.end(), {"--lock-backend", "file://" + store.string(), "true"});
  EXPECT_EQ(run(with_flag).exit_code, 0);
  EXPECT_TRUE(fs::exists(store / "dut-b.pid")) << "locked in the --lock-backend folder";

  const auto other = dir_.path() / "other-store";
  auto with_variable = args;
  with_variable.push_back("true");
  const auto result = run(with_variable, {"LOCKABLE_LOCK_BACKEND=" + other.string()});
  EXPECT_EQ(result.exit_code, 0) << result;
  EXPECT_TRUE(fs::exists(other / "dut-b.pid")) << "locked in LOCKABLE_LOCK_BACKEND";

  const std::vector<std::string> status{
      "--resources",    resources_.string(), "--hostname", "localhost",
      "--lock-backend", other.string(),      "status",     "--json"};
  const auto listed = run(status);
  EXPECT_EQ(listed.exit_code, 0) << listed;
  EXPECT_NE(listed.out.find("dut-b"), std::string::npos) << listed;
}

TEST_F(CliTest, OverEtcdTheCommandGetsItsFencingTokenAndStatusNamesOtherHosts) {
  if (!lockable::test::etcd_program())
    GTEST_SKIP() << "no etcd on PATH (apt-get install etcd-server)";
  lockable::test::EtcdServer etcd;
  const std::string spec = "etcd://127.0.0.1:" + std::to_string(etcd.client_port()) + "/cli";
  const std::vector<std::string> common{"--resources", resources_.string(), "--hostname",
                                        "localhost",   "--lock-backend",    spec};
  auto with = [&](std::vector<std::string> more) {
    auto args = common;
    args.insert(args.end(), more.begin(), more.end());
    return args;
  };
  const auto ran = run(with({"--requirements", "os=iOS", "echo token=$LOCKABLE_FENCING_TOKEN"}));
  EXPECT_EQ(ran.exit_code, 0) << ran;
  EXPECT_TRUE(std::regex_search(ran.out, std::regex("token=[0-9]+\n"))) << ran;
  // A holder on another host, as status sees it through etcd.
  auto backend = lockable::make_lock_backend(spec);
  lockable::Resource dut_b;
  dut_b.id = "dut-b";
  auto held = backend->try_lock(dut_b, lockable::HolderInfo{4242, "rig-far", "alloc-far", {}, {}});
  ASSERT_NE(held, nullptr);
  // And a request waiting for it on a third host, in the queue.
  auto ticket =
      backend->enqueue({"dut-b"}, lockable::HolderInfo{5151, "rig-waiting", "alloc-w", {}, {}});
  backend->wait_for_change(std::chrono::steady_clock::now());  // a waiter is queued once it waits
  const auto status = run(with({"status"}));
  EXPECT_EQ(status.exit_code, 0) << status;
  EXPECT_NE(status.out.find("rig-far"), std::string::npos) << status;
  EXPECT_NE(status.out.find("queue, next served first (higher priority first, aged +1 per aging "
                            "period of waiting):\n  1. priority 0: pid 5151 on rig-waiting"),
            std::string::npos)
      << status;
  EXPECT_NE(status.out.find("wants dut-b"), std::string::npos) << status;
  // The holder's fencing token: the lock key's create revision, as the holder got it.
  const auto token = std::to_string(held->fencing_token().value_or(0));
  EXPECT_NE(line_of(status.out, "dut-b").find("fencing token " + token), std::string::npos)
      << status;
  const auto json = run(with({"status", "--json"}));
  ASSERT_EQ(json.exit_code, 0) << json;
  const Json parsed = Json::parse(json.out);
  for (const auto& device : parsed.at("devices")) {
    if (device.at("id") == "dut-b") {
      EXPECT_EQ(device.at("holder").at("fencing_token"), held->fencing_token().value_or(0));
    }
  }
}

TEST_F(CliTest, OverEtcdALostLockStopsTheCommandWithItsOwnStatus) {
  if (!lockable::test::etcd_program())
    GTEST_SKIP() << "no etcd on PATH (apt-get install etcd-server)";
  lockable::test::EtcdServer etcd;
  const auto ready = dir_.path() / "ready";
  // Once the command runs, every lease is revoked (as when etcd expires a silent holder's).
  std::thread revoker([&] {
    if (!wait_for_file(ready)) return;
    const auto leases =
        lockable::test::http_call(etcd.client_port(), "POST", "/v3/lease/leases", "{}");
    if (!leases) return;
    const auto listed = Json::parse(leases->body, nullptr, false);
    if (!listed.contains("leases")) return;
    for (const auto& lease : listed["leases"]) {
      lockable::test::http_call(etcd.client_port(), "POST", "/v3/lease/revoke",
                                Json{{"ID", lease["ID"]}}.dump());
    }
  });
  const auto result =
      run({"--resources", resources_.string(), "--hostname", "localhost", "--lock-backend",
           "etcd://127.0.0.1:" + std::to_string(etcd.client_port()) + "/cli?ttl=2",
           "--requirements", "os=iOS", "touch \"" + ready.string() + "\"; exec sleep 60"});
  revoker.join();
  EXPECT_EQ(result.exit_code, 9) << result;
  EXPECT_NE(result.err.find("dut-b was lost while the command ran"), std::string::npos) << result;
}

TEST_F(CliTest, UnreachableOrUnknownLockBackendFailsAndChangesNothing) {
  // An etcd that is not there (nothing listens on port 1): the lock store is unusable.
  const auto unreachable =
      run({"--resources", resources_.string(), "--lock-backend", "etcd://127.0.0.1:1/lab", "true"});
  EXPECT_EQ(unreachable.exit_code, 7) << unreachable;
  EXPECT_NE(unreachable.err.find("cannot reach etcd at http://127.0.0.1:1"), std::string::npos)
      << unreachable;
  const auto unknown = run(
      {"--resources", resources_.string(), "--lock-backend", "zookeeper://127.0.0.1:2181", "true"});
  EXPECT_EQ(unknown.exit_code, 2) << unknown;
  EXPECT_NE(unknown.err.find("unknown scheme \"zookeeper://\""), std::string::npos) << unknown;
  // --lock-folder (from base) and a different --lock-backend name two stores.
  const auto both = run(base({"--lock-backend", (dir_.path() / "elsewhere").string(), "true"}));
  EXPECT_EQ(both.exit_code, 2) << both;
  EXPECT_NE(both.err.find("give only one"), std::string::npos) << both;
  EXPECT_FALSE(fs::exists(locks_));
  EXPECT_FALSE(fs::exists(dir_.path() / "elsewhere"));
}

// ---- the default lock folder --------------------------------------------------------------------

TEST_F(CliTest, DefaultLockFolderIsPythonsTempDirAndABadTmpdirIsNeverCreated) {
  const auto missing = dir_.path() / "no-such-tmp" / "sub";
  const auto temp = dir_.path() / "temp";
  fs::create_directories(temp);
  const std::vector<std::string> args{"--resources", resources_.string(), "--hostname",
                                      "localhost",   "--requirements",    "os=iOS",
                                      "true"};
  // TMPDIR unusable: the next of TEMP, TMP, /tmp ... is used, as Python's tempfile does.
  const auto result = run(args, {"TMPDIR=" + missing.string(), "TEMP=" + temp.string(), "TMP="});
  EXPECT_EQ(result.exit_code, 0) << result;
  EXPECT_FALSE(fs::exists(dir_.path() / "no-such-tmp"));
  EXPECT_TRUE(fs::exists(temp / "dut-b.pid"));
}

TEST_F(CliTest, BadOptionChangesNothingOnDisk) {
  const auto fresh = dir_.path() / "new-lock-folder";
  for (const auto& bad : std::vector<std::vector<std::string>>{{"--timeout", "-1", "true"},
                                                               {"--requirements", "{", "true"},
                                                               {"no-such-command-4f1e"}}) {
    auto args = base({"--lock-folder", fresh.string()});
    args.insert(args.end(), bad.begin(), bad.end());
    const auto result = run(args);
    EXPECT_NE(result.exit_code, 0) << result;
    EXPECT_FALSE(fs::exists(fresh)) << bad.front() << "\n" << result;
  }
}

// ---- the command's environment ------------------------------------------------------------------

TEST_F(CliTest, AttributesNeverReplaceWhatTheCommandRunsOrLoads) {
  write_file(resources_, Json::array({{{"id", "dut-p"},
                                       {"online", true},
                                       {"hostname", "localhost"},
                                       {"path", "/nowhere"},
                                       {"HOME", "/nohome"},
                                       {"Ld_Preload", "/evil.so"},
                                       {"usb-port", "3"},
                                       {"größe", "L"}}})
                             .dump());
  const auto out_file = dir_.path() / "seen.txt";
  const auto result =
      run(base({"--no-shell", "--", "sh", "-c",
                "printf '%s|%s|%s|%s|%s\\n' \"$PATH\" \"$HOME\" \"${LD_PRELOAD-unset}\" "
                "\"$USB_PORT\" \"$GR____E\" > \"$OUT\""}),
          {"OUT=" + out_file.string(), "HOME=/home/tester", "LD_PRELOAD="});
  ASSERT_EQ(result.exit_code, 0) << result;
  EXPECT_EQ(read_text(out_file), std::string(std::getenv("PATH")) + "|/home/tester|unset|3|L\n");
  // Said once, naming each attribute and why.
  const std::string said = "lockable: dut-p: attributes not exported to the command: ";
  ASSERT_NE(result.err.find(said), std::string::npos) << result;
  EXPECT_EQ(result.err.find(said), result.err.rfind(said)) << result;
  for (const std::string text :
       {"\"HOME\"", "\"Ld_Preload\"", "\"path\"", "PATH decides which programs the command runs",
        "LD_PRELOAD changes what the command loads"}) {
    EXPECT_NE(result.err.find(text), std::string::npos) << text << "\n" << result;
  }

  const auto check = run({"--validate-only", "--resources", resources_.string()});
  EXPECT_EQ(check.exit_code, 0) << check;
  EXPECT_NE(check.err.find("warning: " + resources_.string() + ": dut-p: attributes not exported"),
            std::string::npos)
      << check;
  EXPECT_NE(check.err.find("\"path\" (PATH decides"), std::string::npos) << check;
}

TEST_F(CliTest, EnvironmentTooLargeForExecIsLockablesErrorAndTheDeviceIsReleased) {
  write_file(resources_, Json::array({{{"id", "dut-big"},
                                       {"online", true},
                                       {"hostname", "localhost"},
                                       {"big", std::string(200000, 'x')}}})
                             .dump());
  const auto result = run(base({"echo", "never"}));
  EXPECT_EQ(result.exit_code, 126) << result.err.substr(0, 2000);
  EXPECT_EQ(result.out, "");
  EXPECT_NE(result.err.find("lockable: cannot run the command: the environment for dut-big is "
                            "too large for exec"),
            std::string::npos)
      << result.err.substr(0, 2000);
  EXPECT_NE(result.err.find("BIG 200005 bytes"), std::string::npos) << result.err.substr(0, 2000);
  EXPECT_EQ(result.err.find("sh:"), std::string::npos) << result.err.substr(0, 2000);
  EXPECT_NE(result.err.find("lockable: released dut-big"), std::string::npos);
  EXPECT_FALSE(is_flocked(lock_file("dut-big")));
}

// ---- the resources file -------------------------------------------------------------------------

TEST_F(CliTest, FifoAsResourcesFileIsRefusedAtOnce) {
  const auto fifo = dir_.path() / "resources.fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const auto validate = run({"--validate-only", "--resources", fifo.string()});
  EXPECT_EQ(validate.exit_code, 1) << validate;
  EXPECT_NE(validate.err.find(fifo.string() + ": is not a regular file"), std::string::npos)
      << validate;
  const auto command = run(base({"--resources", fifo.string(), "true"}));
  EXPECT_EQ(command.exit_code, 3) << command;
  EXPECT_NE(command.err.find("is not a regular file"), std::string::npos) << command;
}

TEST_F(CliTest, UnreadableResourcesFileSaysHowToFixThePermission) {
  fs::permissions(resources_, fs::perms::owner_write);
  std::vector<std::string> args{"--validate-only", "--resources", resources_.string()};
  if (::geteuid() == 0) {
    // Root reads any file: run lockable as nobody, which may not read it.
    fs::permissions(dir_.path(), fs::perms::all);
    args = {"--reuid=65534",   "--regid=65534",   "--clear-groups", "--",
            LOCKABLE_CLI_PATH, "--validate-only", "--resources",    resources_.string()};
    auto options = lockable_options({}, {});
    options.out = lockable::test::Stream::pipe();
    options.err = lockable::test::Stream::pipe();
    args.insert(args.begin(), "/usr/bin/setpriv");
    const auto result = lockable::test::run(args, options, kGuard);
    EXPECT_EQ(result.exit_code, 1) << result;
    EXPECT_NE(result.err.find("Permission denied; make it readable by this user (e.g. chmod a+r"),
              std::string::npos)
        << result;
    EXPECT_EQ(result.err.find("give its path with --resources"), std::string::npos) << result;
    return;
  }
  const auto result = run(args);
  EXPECT_EQ(result.exit_code, 1) << result;
  EXPECT_NE(result.err.find("Permission denied; make it readable by this user (e.g. chmod a+r"),
            std::string::npos)
      << result;
}

bool valid_utf8(const std::string& text) {
  std::size_t i = 0;
  while (i < text.size()) {
    const auto byte = static_cast<unsigned char>(text[i]);
    const std::size_t length = byte < 0x80           ? 1
                               : (byte >> 5) == 0x6  ? 2
                               : (byte >> 4) == 0xE  ? 3
                               : (byte >> 3) == 0x1E ? 4
                                                     : 0;
    if (length == 0 || i + length > text.size()) return false;
    for (std::size_t k = 1; k < length; ++k) {
      if ((static_cast<unsigned char>(text[i + k]) & 0xC0) != 0x80) return false;
    }
    i += length;
  }
  return true;
}

TEST_F(CliTest, ShortenedIdsInMessagesNeverCutACharacterInHalf) {
  std::string id;
  for (int i = 0; i < 40; ++i) id += "ä";  // 80 bytes: the 60-byte cut falls inside one
  write_file(resources_, Json::array({{{"id", id}, {"online", "yes"}}}).dump());
  const auto result = run({"--validate-only", "--resources", resources_.string()});
  EXPECT_EQ(result.exit_code, 1) << result;
  EXPECT_NE(result.err.find("(id \"ää"), std::string::npos) << result;
  EXPECT_TRUE(valid_utf8(result.err)) << result;
}

// ---- --validate-only ------------------------------------------------------------------------

TEST(CliValidateTest, SampleResourcesAreValid) {
  const std::string file = std::string(LOCKABLE_SOURCE_DIR) + "/sample_resources/resources.json";
  const auto result = run({"--validate-only", "--resources", file});
  EXPECT_EQ(result.exit_code, 0) << result;
  EXPECT_EQ(result.out, file + ": 9 resources, valid\n") << result;
}

class CliBrokenResourcesTest : public ::testing::TestWithParam<std::string> {};

TEST_P(CliBrokenResourcesTest, ValidateOnlyExits1AndNamesTheFileInEveryProblem) {
  const std::string file =
      std::string(LOCKABLE_SOURCE_DIR) + "/sample_resources/broken/" + GetParam();
  const auto result = run({"--validate-only", "--resources", file});
  EXPECT_EQ(result.exit_code, 1) << result;
  EXPECT_EQ(result.err.rfind("lockable: " + file, 0), 0u) << result;
  EXPECT_EQ(result.out, "") << result;
  EXPECT_EQ(result.err.find("what()"), std::string::npos) << result;
}

INSTANTIATE_TEST_SUITE_P(BrokenFiles, CliBrokenResourcesTest,
                         ::testing::Values("bad_fields.json", "not_an_array.json",
                                           "syntax_error.json"),
                         [](const auto& test_info) {
                           return test_info.param.substr(0, test_info.param.find('.'));
                         });

TEST(CliValidateTest, BadFieldsListsEveryProblem) {
  const std::string file =
      std::string(LOCKABLE_SOURCE_DIR) + "/sample_resources/broken/bad_fields.json";
  const auto result = run({"--validate-only", "--resources", file});
  EXPECT_EQ(result.exit_code, 1) << result;
  // dut-2 online "yes", duplicate dut-1, missing id, bad id, hostname 42, not an object.
  std::size_t lines = 0;
  std::istringstream text(result.err);
  for (std::string line; std::getline(text, line);) {
    if (line.find(file + ":") != std::string::npos) ++lines;
  }
  EXPECT_GE(lines, 6u) << result;
}

// One rule for --validate-only: any problem with the file, missing or invalid, exits 1 (as the
// Python CLI); 3 is for runs only.
TEST(CliValidateTest, MissingFileExits1LikeAnInvalidOne) {
  const auto result = run({"--validate-only", "--resources", "/nonexistent/resources.json"});
  EXPECT_EQ(result.exit_code, 1) << result;
  EXPECT_NE(result.err.find("lockable: /nonexistent/resources.json"), std::string::npos) << result;
  EXPECT_NE(result.err.find("--resources"), std::string::npos) << result;
}

// ---- lockable's own errors ------------------------------------------------------------------

struct ErrorCase {
  std::string name;
  std::vector<std::string> args;  // after the shared options
  int exit_code;
  std::vector<std::string> messages;  // each must appear on stderr
};

void PrintTo(const ErrorCase& error_case, std::ostream* stream) { *stream << error_case.name; }

class CliErrorTest : public CliTest, public ::testing::WithParamInterface<ErrorCase> {};

TEST_P(CliErrorTest, PrintsOnePrefixedMessageAndItsDocumentedExitCode) {
  const auto& param = GetParam();
  auto args = base(param.args);
  const auto result = run(args);
  EXPECT_EQ(result.exit_code, param.exit_code) << result;
  EXPECT_EQ(result.err.rfind("lockable: ", 0), 0u) << result;
  for (const auto& message : param.messages) {
    EXPECT_NE(result.err.find(message), std::string::npos) << "missing: " << message << "\n"
                                                           << result;
  }
  EXPECT_EQ(result.err.find("terminate called"), std::string::npos) << result;
  EXPECT_EQ(result.err.find("lockable: locked"), std::string::npos) << result;
  EXPECT_EQ(result.out, "") << result;
}

INSTANTIATE_TEST_SUITE_P(
    Errors, CliErrorTest,
    ::testing::Values(
        ErrorCase{"UnknownOption", {"--bogus", "true"}, 2, {"--bogus", "lockable --help"}},
        ErrorCase{"OptionWithoutValue", {"--timeout"}, 2, {"--timeout"}},
        ErrorCase{"NoCommand", {}, 2, {"no command given"}},
        ErrorCase{"NegativeTimeout",
                  {"--timeout", "-1", "true"},
                  2,
                  {"--timeout", "must not be negative", "\"-1\""}},
        ErrorCase{"NonNumericTimeout",
                  {"--timeout", "soon", "true"},
                  2,
                  {"--timeout", "number of seconds", "\"soon\""}},
        ErrorCase{"JsonOutsideStatus", {"--json", "true"}, 2, {"--json"}},
        ErrorCase{"WatchOutsideStatus", {"--watch", "true"}, 2, {"--watch only applies to status"}},
        ErrorCase{"CountWithoutWatch",
                  {"status", "--count", "2"},
                  2,
                  {"--count only applies to status --watch"}},
        ErrorCase{"WatchTooOften",
                  {"status", "--watch", "0.01"},
                  2,
                  {"--watch: must be at least 0.1 seconds"}},
        ErrorCase{"CountNotANumber",
                  {"status", "--watch", "--count", "many"},
                  2,
                  {"--count: must be a whole number of snapshots"}},
        ErrorCase{"PriorityOutOfRange",
                  {"--priority", "-1001", "true"},
                  2,
                  {"--priority: is out of range, found \"-1001\"", "e.g. --priority 10"}},
        ErrorCase{"StatusWithCommand", {"status", "ls"}, 2, {"lockable [OPTIONS] -- status"}},
        ErrorCase{"MissingResourcesFile",
                  {"--resources", "/nonexistent/r.json", "true"},
                  3,
                  {"/nonexistent/r.json", "--resources"}},
        ErrorCase{"MalformedJsonRequirement", {"--requirements", R"({"os": )", "true"}, 4, {}},
        ErrorCase{"UnknownOperator",
                  {"--requirements", R"({"os": {"$bogus": 1}})", "true"},
                  4,
                  {"$bogus"}},
        ErrorCase{"NothingMatches",
                  {"--requirements", "os=Windows", "true"},
                  5,
                  {"dut-a", "dut-b", "dut-off"}},
        ErrorCase{"UnknownCommand",
                  {"no-such-command-4f1e"},
                  127,
                  {"lockable: no-such-command-4f1e: command not found"}},
        ErrorCase{"MissingCommandPath",
                  {"./no/such/file"},
                  127,
                  {"lockable: ./no/such/file: No such file or directory"}},
        ErrorCase{"DirectoryAsCommand", {"/"}, 126, {"lockable: /: Is a directory"}},
        ErrorCase{"EmptyHostname", {"--hostname", "", "true"}, 2, {"--hostname must not be empty"}},
        ErrorCase{"EmptyLockFolder",
                  {"--lock-folder", "", "true"},
                  2,
                  {"--lock-folder must not be empty"}},
        ErrorCase{"EmptyResources", {"--resources=", "true"}, 2, {"--resources must not be empty"}},
        ErrorCase{"OptionAsAnOptionsValue",
                  {"--resources", "--lock-folder", "L", "true"},
                  2,
                  {"--resources needs a value, found the option --lock-folder",
                   "--resources=--lock-folder"}},
        ErrorCase{"DoubleDashAsAnOptionsValue",
                  {"--requirements", "--", "true"},
                  2,
                  {"--requirements needs a value"}},
        ErrorCase{"StatusFlagWithCommand",
                  {"--status", "--", "true"},
                  2,
                  {"--status takes no command, found \"true\"", "leave out --status"}},
        ErrorCase{"UnknownCommandInTheShell",
                  {"no-such-command-4f1e", "--flag", "'$ID'"},
                  127,
                  {"lockable: no-such-command-4f1e: command not found"}}),
    CaseName());

TEST_F(CliTest, NonExecutableCommandExits126) {
  const auto script = dir_.path() / "script.sh";
  write_file(script, "#!/bin/sh\nexit 0\n");
  fs::permissions(script, fs::perms::owner_read | fs::perms::owner_write);
  const auto result = run(base({script.string()}));
  EXPECT_EQ(result.exit_code, 126) << result;
  EXPECT_NE(result.err.find("lockable: " + script.string() + ": Permission denied"),
            std::string::npos)
      << result;
}

TEST_F(CliTest, InvalidResourcesFileExits3WithItsProblems) {
  write_file(resources_, R"([{"id": "dut-1", "online": "yes"}])");
  const auto result = run(base({"true"}));
  EXPECT_EQ(result.exit_code, 3) << result;
  EXPECT_NE(result.err.find(resources_.string()), std::string::npos) << result;
  EXPECT_NE(result.err.find("online"), std::string::npos) << result;
}

TEST_F(CliTest, UnusableLockFolderExits7) {
  const auto not_a_folder = dir_.path() / "plain-file";
  write_file(not_a_folder, "x");
  const auto result = run({"--resources", resources_.string(), "--lock-folder",
                           not_a_folder.string(), "--hostname", "localhost", "true"});
  EXPECT_EQ(result.exit_code, 7) << result;
  EXPECT_EQ(result.err.rfind("lockable: ", 0), 0u) << result;
  EXPECT_NE(result.err.find(not_a_folder.string()), std::string::npos) << result;
}

TEST_F(CliTest, TimeoutWhileAnotherProcessHoldsTheOnlyMatchExits6NamingTheHolder) {
  Holder holder(dir_.path(), base({"--requirements", "id=dut-b"}), kWaitForever);
  ASSERT_TRUE(holder.wait_until_locked()) << holder.log();
  const auto result = run(base({"--requirements", "os=iOS", "--timeout", "0.2", "true"}));
  EXPECT_EQ(result.exit_code, 6) << result;
  EXPECT_EQ(result.err.rfind("lockable: ", 0), 0u) << result;
  EXPECT_NE(result.err.find("dut-b"), std::string::npos) << result;
  EXPECT_NE(result.err.find("pid " + std::to_string(holder.pid())), std::string::npos) << result;
}

// ---- signals and lock release -----------------------------------------------------------------

struct SignalCase {
  std::string name;
  int signal;
  std::string script;
  int exit_code;
};

void PrintTo(const SignalCase& signal_case, std::ostream* stream) { *stream << signal_case.name; }

class CliSignalTest : public CliTest, public ::testing::WithParamInterface<SignalCase> {};

TEST_P(CliSignalTest, SignalReachesTheCommandAndTheDeviceIsReleased) {
  const auto& param = GetParam();
  const auto mark = dir_.path() / "mark";
  Holder holder(dir_.path(), base({"--requirements", "id=dut-b"}),
                "MARK='" + mark.string() + "'; " + param.script);
  ASSERT_TRUE(holder.wait_until_locked()) << holder.log();
  EXPECT_TRUE(is_flocked(lock_file("dut-b")));
  EXPECT_EQ(holder.signal_and_wait(param.signal), param.exit_code) << holder.log();
  if (param.script.find("trap") != std::string::npos) {
    EXPECT_TRUE(fs::exists(mark));
  }
  EXPECT_FALSE(is_flocked(lock_file("dut-b")));
  EXPECT_NE(holder.log().find("lockable: released dut-b"), std::string::npos) << holder.log();
  const auto again = run(base({"--requirements", "id=dut-b", "--timeout", "0", "true"}));
  EXPECT_EQ(again.exit_code, 0) << again;
}

INSTANTIATE_TEST_SUITE_P(
    Signals, CliSignalTest,
    ::testing::Values(SignalCase{"TermKillsCommand", SIGTERM, kWaitForever, 128 + SIGTERM},
                      SignalCase{"IntKillsCommand", SIGINT, kWaitForever, 128 + SIGINT},
                      SignalCase{"TermTrappedByCommand", SIGTERM,
                                 "trap 'touch \"$MARK\"; exit 42' TERM; touch \"$READY\"; "
                                 "while :; do sleep 0.05; done",
                                 42}),
    CaseName());

// Each signal the command receives, as "<signal> <sender pid>" lines in $MARK; ends on SIGTERM.
const std::string kSignalRecorder =
    "exec /usr/bin/python3 -c '\n"
    "import os, signal\n"
    "wanted = {signal.SIGHUP, signal.SIGTERM}\n"
    "signal.pthread_sigmask(signal.SIG_BLOCK, wanted)\n"
    "open(os.environ[\"READY\"], \"w\").close()\n"
    "while True:\n"
    "    info = signal.sigwaitinfo(wanted)\n"
    "    with open(os.environ[\"MARK\"], \"a\") as mark:\n"
    "        sender = \"parent\" if info.si_pid == os.getppid() else str(info.si_pid)\n"
    "        mark.write(\"%d %s\\n\" % (info.si_signo, sender))\n"
    "    if info.si_signo == signal.SIGTERM:\n"
    "        break\n"
    "'";

TEST_F(CliTest, SignalSentToLockablesWholeProcessGroupReachesTheCommandOnce) {
  const auto mark = dir_.path() / "signals";
  // setsid: lockable leads its own process group, as a shell job or a CI step would.
  Holder holder(dir_.path(), base({"--requirements", "id=dut-b"}), kSignalRecorder, "holder",
                {"MARK=" + mark.string()}, {"/usr/bin/setsid"});
  ASSERT_TRUE(holder.wait_until_locked()) << holder.log();
  ASSERT_EQ(::kill(-holder.pid(), SIGHUP), 0);
  const auto deadline = Clock::now() + kGuard;
  while (read_text(mark).empty() && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  // Then SIGTERM to lockable alone; relayed after any pending SIGHUP, it ends the command.
  EXPECT_EQ(holder.signal_and_wait(SIGTERM), 0) << holder.log();
  // Relayed by lockable through the command's parent, lockable's keeper (child_process.cpp).
  // Had the group's SIGHUP reached the command directly, a line would name this test's pid
  // (and a second SIGHUP would follow, relayed).
  EXPECT_EQ(read_text(mark),
            std::to_string(SIGHUP) + " parent\n" + std::to_string(SIGTERM) + " parent\n")
      << holder.log();
  EXPECT_FALSE(is_flocked(lock_file("dut-b")));
}

TEST_F(CliTest, CtrlCInATerminalReachesTheCommandOnceFromTheTerminal) {
  // `script` gives lockable a terminal whose foreground group it leads; the command shares it.
  const auto mark = dir_.path() / "signals";
  const auto ready = dir_.path() / "ready";
  const auto pid_file = dir_.path() / "command.pid";
  const auto recorder = dir_.path() / "recorder.py";
  write_file(recorder,
             "import os, signal\n"
             "wanted = {signal.SIGINT, signal.SIGTERM}\n"
             "signal.pthread_sigmask(signal.SIG_BLOCK, wanted)\n"
             "open(os.environ['PIDFILE'], 'w').write(str(os.getpid()))\n"
             "open(os.environ['READY'], 'w').close()\n"
             "while True:\n"
             "    info = signal.sigwaitinfo(wanted)\n"
             "    with open(os.environ['MARK'], 'a') as mark:\n"
             "        mark.write('%d %d\\n' % (info.si_signo, info.si_code))\n"
             "    if info.si_signo == signal.SIGTERM:\n"
             "        break\n");
  // `exec`: script runs the line with $SHELL, and a shell left waiting in the foreground group
  // would take the Ctrl-C itself (dash dies of it, bash does not).
  std::string command = std::string("exec ") + LOCKABLE_CLI_PATH;
  for (const auto& word :
       base({"--requirements", "id=dut-b", "--no-shell", "/usr/bin/python3", recorder.string()})) {
    command += " '" + word + "'";
  }
  auto options = lockable_options({"MARK=" + mark.string(), "READY=" + ready.string(),
                                   "PIDFILE=" + pid_file.string(), "SHELL=/bin/sh"},
                                  {});
  options.in = lockable::test::Stream::pipe();
  options.out = lockable::test::Stream::file(dir_.path() / "script.log");
  lockable::test::Child terminal({"/usr/bin/script", "-qec", command, "/dev/null"}, options);
  ASSERT_TRUE(wait_for_file(ready)) << read_text(dir_.path() / "script.log");
  terminal.write_line("\x03");  // Ctrl-C typed at the terminal
  const auto deadline = Clock::now() + kGuard;
  while (read_text(mark).empty() && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(::kill(std::stoi(read_text(pid_file)), SIGTERM), 0);
  EXPECT_EQ(terminal.wait(kGuard), 0) << read_text(dir_.path() / "script.log");
  // SIGINT once, from the terminal (SI_KERNEL): lockable passed on no second copy.
  EXPECT_EQ(read_text(mark), std::to_string(SIGINT) + " " + std::to_string(SI_KERNEL) + "\n" +
                                 std::to_string(SIGTERM) + " " + std::to_string(SI_USER) + "\n");
}

TEST_F(CliTest, CommandDiesWhenLockableIsKilled) {
  const auto pid_file = dir_.path() / "command.pid";
  Holder holder(dir_.path(), base({"--requirements", "id=dut-b"}),
                "echo $$ > \"$PIDFILE\"; touch \"$READY\"; exec sleep 600", "holder",
                {"PIDFILE=" + pid_file.string()});
  ASSERT_TRUE(holder.wait_until_locked()) << holder.log();
  const pid_t command = std::stoi(read_text(pid_file));
  // SIGKILL cannot be passed on, and the device is free once lockable is gone: the command must
  // not go on using it.
  EXPECT_EQ(holder.signal_and_wait(SIGKILL), 1000 + SIGKILL);
  const auto deadline = Clock::now() + kGuard;
  const auto alive = [command] {
    const std::string stat = read_text("/proc/" + std::to_string(command) + "/stat");
    const auto close = stat.rfind(')');
    return close != std::string::npos && stat.size() > close + 2 && stat[close + 2] != 'Z';
  };
  while (alive() && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_FALSE(alive()) << "the command outlived lockable";
  if (alive()) ::kill(command, SIGKILL);
}

// Whether `pid` runs (a zombie has ended).
bool process_runs(pid_t pid) {
  const std::string stat = read_text("/proc/" + std::to_string(pid) + "/stat");
  const auto close = stat.rfind(')');
  return close != std::string::npos && stat.size() > close + 2 && stat[close + 2] != 'Z';
}

// lockable's exit status when the device was lost while the command ran (exit_codes.hpp).
constexpr int kLockLostExit = 9;

std::string line_of(const std::string& text, const std::string& id);

// A command that ignores SIGTERM (and so do its children), recording its pid and its child's.
const std::string kIgnoresTerm =
    "trap '' TERM; sleep 600 & echo $! >> \"$PIDS\"; echo $$ >> \"$PIDS\"; touch \"$READY\"; "
    "while :; do sleep 0.05; done";

std::vector<pid_t> read_pids(const fs::path& file) {
  std::vector<pid_t> pids;
  std::istringstream lines(read_text(file));
  for (std::string line; std::getline(lines, line);) pids.push_back(std::stoi(line));
  return pids;
}

TEST_F(CliTest, LockFileRemovedUnderTheHolderStopsTheCommandWithExit9AndStatusShowsIt) {
  const auto pids = dir_.path() / "pids";
  Holder holder(dir_.path(), base({"--requirements", "id=dut-b"}), kIgnoresTerm, "holder",
                {"PIDS=" + pids.string(), "LOCKABLE_STOP_GRACE=60"});
  ASSERT_TRUE(holder.wait_until_locked()) << holder.log();
  fs::remove(lock_file("dut-b"));  // a temp cleaner
  // Until the command ends, `lockable status` in another process says the device may be used
  // twice, naming the holder.
  std::string line;
  const auto deadline = Clock::now() + kGuard;
  while (line.find("LOST") == std::string::npos && Clock::now() < deadline) {
    line = line_of(run(base({"--status"})).out, "dut-b");
  }
  EXPECT_NE(line.find("LOST, may still be in use by pid " + std::to_string(holder.pid())),
            std::string::npos)
      << line;
  EXPECT_NE(line.find("dut-b.pid of dut-b was removed or replaced"), std::string::npos) << line;
  const auto json = Json::parse(run(base({"--status", "--json"})).out);
  bool listed = false;
  for (const auto& entry : json.at("devices")) {
    if (entry["id"] == "dut-b") {
      listed = true;
      EXPECT_TRUE(entry["lost"].is_string()) << entry.dump();
    }
  }
  EXPECT_TRUE(listed) << json.dump();
  // The command was sent SIGTERM (ignored here); end it without waiting for the grace period.
  for (const pid_t pid : read_pids(pids)) ::kill(pid, SIGKILL);
  EXPECT_EQ(holder.wait(), kLockLostExit) << holder.log();
  EXPECT_NE(holder.log().find("was removed or replaced while this process held it"),
            std::string::npos)
      << holder.log();
  EXPECT_NE(holder.log().find("stopping the command"), std::string::npos) << holder.log();
  EXPECT_EQ(line_of(run(base({"--status"})).out, "dut-b").find("LOST"), std::string::npos);
}

TEST_F(CliTest, CommandThatIgnoresSigtermIsKilledWithEverythingItStartedAfterTheGrace) {
  const auto pids = dir_.path() / "pids";
  Holder holder(dir_.path(), base({"--requirements", "id=dut-b"}), kIgnoresTerm, "holder",
                {"PIDS=" + pids.string(), "LOCKABLE_STOP_GRACE=0.2"});
  ASSERT_TRUE(holder.wait_until_locked()) << holder.log();
  fs::remove(lock_file("dut-b"));
  EXPECT_EQ(holder.wait(), kLockLostExit) << holder.log();
  for (const pid_t pid : read_pids(pids)) {
    EXPECT_FALSE(process_runs(pid)) << "pid " << pid << " outlived lockable";
    ::kill(pid, SIGKILL);
  }
}

TEST_F(CliTest, EverythingTheCommandStartedDiesBeforeTheDeviceIsFreeWhenLockableIsKilled) {
  // A command with a child in its group and one that left it (setsid), as a flasher that
  // spawns helpers or a tool that starts a server might.
  const auto pids = dir_.path() / "pids";
  Holder holder(dir_.path(), base({"--requirements", "id=dut-b"}),
                "sleep 600 & echo $! >> \"$PIDS\"; "
                "setsid sleep 600 </dev/null >/dev/null 2>&1 & echo $! >> \"$PIDS\"; "
                "echo $$ >> \"$PIDS\"; touch \"$READY\"; wait",
                "holder", {"PIDS=" + pids.string()});
  ASSERT_TRUE(holder.wait_until_locked()) << holder.log();
  std::vector<pid_t> started;
  std::istringstream lines(read_text(pids));
  for (std::string line; std::getline(lines, line);) started.push_back(std::stoi(line));
  ASSERT_EQ(started.size(), 3u) << read_text(pids);
  EXPECT_EQ(holder.signal_and_wait(SIGKILL), 1000 + SIGKILL);
  // The moment another process can lock the device, nothing the command started may still run.
  const int fd = ::open(lock_file("dut-b").c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  const auto deadline = Clock::now() + kGuard;
  while (::flock(fd, LOCK_EX | LOCK_NB) != 0 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  std::vector<pid_t> running;
  for (const pid_t pid : started) {
    if (process_runs(pid)) running.push_back(pid);
  }
  ::close(fd);
  for (const pid_t pid : running) {
    ADD_FAILURE() << "pid " << pid << " still ran when the device became free";
    ::kill(pid, SIGKILL);
  }
}

TEST_F(CliTest, SignalWhileWaitingForADeviceEndsLockableWithoutRunningTheCommand) {
  Holder holder(dir_.path(), base({"--requirements", "id=dut-b"}), kWaitForever);
  ASSERT_TRUE(holder.wait_until_locked()) << holder.log();
  const auto mark = dir_.path() / "ran";
  Holder waiter(dir_.path(), base({"--requirements", "id=dut-b", "--timeout", "60"}),
                "touch \"$READY\" '" + mark.string() + "'", "waiter");
  ASSERT_TRUE(wait_until_queued(locks_));
  EXPECT_EQ(waiter.signal_and_wait(SIGTERM), 128 + SIGTERM) << waiter.log();
  EXPECT_NE(waiter.log().find("lockable: interrupted by SIGTERM"), std::string::npos)
      << waiter.log();
  EXPECT_FALSE(fs::exists(mark));
  EXPECT_TRUE(is_flocked(lock_file("dut-b"))) << "the holder keeps its device";
}

// Nothing of `pid` is left in the lock folder: no queue ticket, no lock, no pid in a lock file.
void expect_no_trace(const fs::path& locks, pid_t pid) {
  std::error_code ignored;
  for (const auto& entry : fs::directory_iterator(locks / ".lockable-queue", ignored)) {
    ADD_FAILURE() << "left in the queue: " << entry.path();
  }
  for (const auto& entry : fs::directory_iterator(locks, ignored)) {
    if (entry.path().extension() != ".pid") continue;
    EXPECT_FALSE(is_flocked(entry.path())) << entry.path() << " is still locked";
    const std::string content = read_text(entry.path());
    EXPECT_EQ(content.find(std::to_string(pid)), std::string::npos)
        << entry.path() << " still names " << pid;
  }
}

TEST_F(CliTest, SigintWhileQueuedLeavesTheQueueAndNothingBehind) {
  auto holder =
      std::make_unique<Holder>(dir_.path(), base({"--requirements", "id=dut-b"}), kWaitForever);
  ASSERT_TRUE(holder->wait_until_locked()) << holder->log();
  const auto mark = dir_.path() / "ran";
  Holder waiter(dir_.path(), base({"--requirements", "id=dut-b", "--timeout", "60"}),
                "touch \"$READY\" '" + mark.string() + "'", "waiter");
  ASSERT_TRUE(wait_until_queued(locks_));
  const pid_t waiter_pid = waiter.pid();
  EXPECT_EQ(waiter.signal_and_wait(SIGINT), 128 + SIGINT) << waiter.log();
  EXPECT_NE(waiter.log().find("interrupted by SIGINT; leaving the queue"), std::string::npos)
      << waiter.log();
  EXPECT_FALSE(fs::exists(mark));
  EXPECT_EQ(holder->signal_and_wait(SIGTERM), 128 + SIGTERM);
  holder.reset();
  expect_no_trace(locks_, waiter_pid);
}

TEST_F(CliTest, SigtermBetweenLockAndCommandStartReleasesAndRunsNothing) {
  const auto mark = dir_.path() / "ran";
  Holder locker(dir_.path(), base({"--requirements", "id=dut-b"}),
                "touch \"$READY\" '" + mark.string() + "'", "locker",
                {"LOCKABLE_TEST_PAUSE_BEFORE_COMMAND_MS=60000"});
  const auto deadline = Clock::now() + kGuard;
  while (locker.log().find("locked dut-b") == std::string::npos && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_NE(locker.log().find("locked dut-b"), std::string::npos) << locker.log();
  EXPECT_TRUE(is_flocked(lock_file("dut-b")));
  const pid_t pid = locker.pid();
  EXPECT_EQ(locker.signal_and_wait(SIGTERM), 128 + SIGTERM) << locker.log();
  EXPECT_NE(locker.log().find("released dut-b"), std::string::npos) << locker.log();
  EXPECT_FALSE(fs::exists(mark)) << "the command started after the signal";
  expect_no_trace(locks_, pid);
}

TEST_F(CliTest, BackgroundGrandchildDoesNotKeepTheLock) {
  const auto pid_file = dir_.path() / "grandchild.pid";
  const auto result = run(base({"--requirements", "id=dut-b", "--no-shell", "--", "sh", "-c",
                                "sleep 600 </dev/null >/dev/null 2>&1 & echo $! > \"$PIDFILE\""}),
                          {"PIDFILE=" + pid_file.string()});
  ASSERT_EQ(result.exit_code, 0) << result;
  const pid_t grandchild = std::stoi(read_text(pid_file));
  EXPECT_EQ(kill(grandchild, 0), 0) << "the grandchild should still run";
  EXPECT_FALSE(is_flocked(lock_file("dut-b")));
  const auto again = run(base({"--requirements", "id=dut-b", "--timeout", "0", "true"}));
  EXPECT_EQ(again.exit_code, 0) << again;
  kill(grandchild, SIGKILL);
}

TEST_F(CliTest, CommandInheritsNoDescriptorIntoTheLockFolder) {
  const auto fds_file = dir_.path() / "fds.txt";
  const auto result =
      run(base({"--no-shell", "--", "sh", "-c",
                "for f in /proc/$$/fd/*; do readlink \"$f\" || true; done > \"$FDS\""}),
          {"FDS=" + fds_file.string()});
  ASSERT_EQ(result.exit_code, 0) << result;
  const auto fds = read_text(fds_file);
  EXPECT_FALSE(fds.empty());
  EXPECT_EQ(fds.find(locks_.string()), std::string::npos) << fds;
  EXPECT_EQ(fds.find("inotify"), std::string::npos) << fds;
}

// ---- start-up: what a run loads -------------------------------------------------------------

// The shared libraries mapped into process `pid`, one path per line.
std::string mapped_libraries(pid_t pid) {
  std::istringstream maps(read_text("/proc/" + std::to_string(pid) + "/maps"));
  std::string libraries;
  for (std::string line; std::getline(maps, line);) {
    const auto slash = line.find('/');
    if (slash != std::string::npos && line.find(".so", slash) != std::string::npos) {
      libraries += line.substr(slash) + "\n";
    }
  }
  return libraries;
}

TEST_F(CliTest, ALockFolderRunLoadsNeitherLibcurlNorIcu) {
  // libcurl and its ~30 libraries cost ~4 ms of every start; only HTTP runs load it (dlopen).
  // ICU came with the shared Boost.Regex; lockable links its static archive instead. The C++
  // runtime is linked into the command unless a build turned LOCKABLE_CLI_STATIC_RUNTIME off.
  Holder holder(dir_.path(), base({"--requirements", "id=dut-b"}), kWaitForever);
  ASSERT_TRUE(holder.wait_until_locked()) << holder.log();
  const std::string libraries = mapped_libraries(holder.pid());
  EXPECT_NE(libraries.find("libc.so"), std::string::npos) << libraries;  // the check sees maps
  EXPECT_EQ(libraries.find("libcurl"), std::string::npos) << libraries;
  EXPECT_EQ(libraries.find("libicu"), std::string::npos) << libraries;
  if (std::string(LOCKABLE_CLI_LINK_OPTIONS).find("-static-libstdc++") != std::string::npos) {
    EXPECT_EQ(libraries.find("libstdc++"), std::string::npos) << libraries;
  }
  EXPECT_EQ(holder.signal_and_wait(SIGTERM), 128 + SIGTERM) << holder.log();
}

// The names of `pid`'s threads, one per line.
std::string thread_names(pid_t pid) {
  std::string names;
  std::error_code ignored;
  for (const auto& task :
       fs::directory_iterator("/proc/" + std::to_string(pid) + "/task", ignored)) {
    names += read_text(task.path() / "comm");
  }
  return names;
}

std::size_t threads_not_named(const std::string& names, const std::string& name) {
  std::istringstream lines(names);
  std::size_t count = 0;
  for (std::string line; std::getline(lines, line);) count += line != name ? 1 : 0;
  return count;
}

TEST_F(CliTest, ALockWithoutWaitStartsNoThreadAtAllYetSignalsStillReachTheCommand) {
  // A thread costs every start (and every unmap after it, in IPIs); the main thread passes
  // signals on while the command runs, and the relay thread starts only for a wait. The main
  // thread also checks the held lock file meanwhile, instead of the lock folder's checker thread
  // (LockFileRemovedUnderTheHolder... shows that the check still works).
  Holder holder(dir_.path(), base({"--requirements", "id=dut-b"}), kWaitForever);
  ASSERT_TRUE(holder.wait_until_locked()) << holder.log();
  const std::string names = thread_names(holder.pid());
  EXPECT_EQ(threads_not_named(names, "lockable-check"), 1u) << names;
  EXPECT_EQ(names.find("lockable-check"), std::string::npos) << names;

  const auto mark = dir_.path() / "ran";
  Holder waiter(dir_.path(), base({"--requirements", "id=dut-b", "--timeout", "60"}),
                "touch \"$READY\" '" + mark.string() + "'", "waiter");
  ASSERT_TRUE(wait_until_queued(locks_));
  // Queued: the relay thread is there to end the wait on a signal.
  const auto deadline = Clock::now() + kGuard;
  while (threads_not_named(thread_names(waiter.pid()), "lockable-check") < 2 &&
         Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(threads_not_named(thread_names(waiter.pid()), "lockable-check"), 2u)
      << thread_names(waiter.pid());
  EXPECT_EQ(waiter.signal_and_wait(SIGINT), 128 + SIGINT) << waiter.log();
  EXPECT_FALSE(fs::exists(mark));

  // The holder's command gets SIGTERM through lockable's main thread.
  EXPECT_EQ(holder.signal_and_wait(SIGTERM), 128 + SIGTERM) << holder.log();
  EXPECT_FALSE(is_flocked(lock_file("dut-b")));
}

TEST_F(CliTest, ALockFolderRunReadsNoTimeZone) {
  // Timestamps are UTC: reading and parsing the zone file (glibc does, at the first gmtime_r)
  // is six system calls for nothing. A zone "file" that is a FIFO without a writer would hang
  // any process that opens it.
  const auto zone = dir_.path() / "zone.fifo";
  ASSERT_EQ(::mkfifo(zone.c_str(), 0600), 0);
  const auto result = run(base({"--requirements", "id=dut-b", "true"}), {"TZ=:" + zone.string()});
  EXPECT_EQ(result.exit_code, 0) << result;
  EXPECT_NE(result.err.find("released dut-b"), std::string::npos) << result;
}

TEST_F(CliTest, WithoutLibcurlLockFolderRunsWorkAndHttpNamesThePackageToInstall) {
  // A libcurl.so.4 that cannot be loaded, found first through LD_LIBRARY_PATH.
  const auto libraries = dir_.path() / "lib";
  fs::create_directory(libraries);
  write_file(libraries / "libcurl.so.4", "not a shared library\n");
  const std::string env = "LD_LIBRARY_PATH=" + libraries.string();
  const auto local = run(base({"--requirements", "id=dut-b", "true"}), {env});
  EXPECT_EQ(local.exit_code, 0) << local;
  const auto http = run(base({"--resources", "http://127.0.0.1:9/lab.json", "true"}), {env});
  EXPECT_EQ(http.exit_code, 7) << http;
  EXPECT_EQ(http.err.rfind("lockable: cannot load libcurl (libcurl.so.4)", 0), 0u) << http;
  EXPECT_NE(http.err.find("apt-get install libcurl4"), std::string::npos) << http;
  EXPECT_EQ(http.err.find("terminate called"), std::string::npos) << http;
  EXPECT_FALSE(is_flocked(lock_file("dut-a")));
  EXPECT_FALSE(is_flocked(lock_file("dut-b")));
}

// ---- status -----------------------------------------------------------------------------------

std::string line_of(const std::string& text, const std::string& id) {
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(id + " ", 0) == 0) return line;
  }
  return "";
}

TEST_F(CliTest, StatusListsFreeHeldWithHolderAndOffline) {
  Holder holder(dir_.path(), base({"--requirements", "id=dut-a"}), kWaitForever);
  ASSERT_TRUE(holder.wait_until_locked()) << holder.log();
  for (const std::string form : {"status", "--status"}) {
    const auto result = run(base({form}));
    ASSERT_EQ(result.exit_code, 0) << result;
    const auto held = line_of(result.out, "dut-a");
    EXPECT_NE(held.find(" held "), std::string::npos) << result;
    EXPECT_NE(held.find("by pid " + std::to_string(holder.pid()) + " on localhost since "),
              std::string::npos)
        << result;
    EXPECT_NE(held.find(", for {\"id\":\"dut-a\"}"), std::string::npos) << result;
    EXPECT_NE(line_of(result.out, "dut-b").find("free"), std::string::npos) << result;
    EXPECT_NE(line_of(result.out, "dut-off").find("offline"), std::string::npos) << result;
    EXPECT_NE(result.out.find("\nqueue: empty\n"), std::string::npos) << result;
  }
}

// What another account (or a careless admin) may leave in a shared lock folder, said by status
// with each fix: the library itself never follows the links, so it only works worse.
TEST_F(CliTest, StatusNamesWhatIsWrongWithTheLockFolderAndEachFix) {
  const auto queue = locks_ / ".lockable-queue";
  const auto index = locks_ / ".lockable-reserved";
  std::filesystem::create_directories(locks_);
  std::filesystem::remove_all(queue);
  std::filesystem::remove_all(index);
  std::filesystem::create_directory_symlink(dir_.path(), queue);
  lockable::test::write_file(index, "");
  std::filesystem::permissions(locks_, std::filesystem::perms::all);  // 0777: not sticky
  const auto result = run(base({"status"}));
  ASSERT_EQ(result.exit_code, 0) << result;
  EXPECT_NE(result.out.find("\nwarning: " + queue.string() +
                            " is a symbolic link (never followed), so waiters cannot queue "
                            "fairly: later arrivals may be served first; remove it (lockable "
                            "makes the folder)\n"),
            std::string::npos)
      << result;
  EXPECT_NE(result.out.find("\nwarning: " + index.string() +
                            " is not a folder, so every run reads the whole "
                            "lock folder to find reservations; remove it"),
            std::string::npos)
      << result;
  EXPECT_NE(result.out.find("\nwarning: " + locks_.string() +
                            " is writable by every account but not sticky, so any account can "
                            "remove or replace the lock files of others and get their devices; "
                            "make it sticky: chmod +t " +
                            locks_.string() + "\n"),
            std::string::npos)
      << result;
  const auto json = run(base({"status", "--json"}));
  ASSERT_EQ(json.exit_code, 0) << json;
  EXPECT_EQ(Json::parse(json.out).at("problems").size(), 3u) << json;
  // Put right, status says nothing more.
  std::filesystem::remove(queue);
  std::filesystem::remove(index);
  std::filesystem::permissions(locks_, std::filesystem::perms::sticky_bit,
                               std::filesystem::perm_options::add);
  const auto fixed = run(base({"status"}));
  ASSERT_EQ(fixed.exit_code, 0) << fixed;
  EXPECT_EQ(fixed.out.find("warning:"), std::string::npos) << fixed;
}

TEST_F(CliTest, StatusJsonGivesTheDocumentedSchema) {
  Holder holder(dir_.path(), base({"--requirements", "id=dut-a"}), kWaitForever);
  ASSERT_TRUE(holder.wait_until_locked()) << holder.log();
  const auto result = run(base({"status", "--json"}));
  ASSERT_EQ(result.exit_code, 0) << result;
  const Json status = Json::parse(result.out);
  EXPECT_EQ(status.at("schema"), 1);
  EXPECT_EQ(status.at("hostname"), "localhost");
  EXPECT_NE(status.at("backend").get<std::string>().find(locks_.string()), std::string::npos);
  EXPECT_TRUE(status.at("time").is_string());
  EXPECT_EQ(status.at("queue"), Json::array());
  EXPECT_EQ(status.at("problems"), Json::array());
  std::map<std::string, Json> by_id;
  for (const auto& entry : status.at("devices")) by_id[entry.at("id").get<std::string>()] = entry;
  ASSERT_EQ(by_id.size(), 3u) << result;
  const Json& held = by_id["dut-a"];
  EXPECT_EQ(held.at("state"), "held");
  EXPECT_EQ(held.at("hostname"), "localhost");
  EXPECT_EQ(held.at("for_this_host"), true);
  EXPECT_EQ(held.at("holder").at("pid"), holder.pid());
  EXPECT_EQ(held.at("holder").at("hostname"), "localhost");
  EXPECT_EQ(held.at("holder").at("requirements"), (Json{{"id", "dut-a"}}));
  EXPECT_EQ(held.at("holder").at("priority"), 0);
  EXPECT_TRUE(held.at("holder").at("since").is_string());
  EXPECT_GE(held.at("holder").at("held_for").get<double>(), 0.0);
  EXPECT_FALSE(held.at("holder").at("alloc_id").get<std::string>().empty());
  EXPECT_FALSE(held.at("holder").contains("fencing_token")) << "the lock folder issues none";
  EXPECT_EQ(by_id["dut-b"].at("state"), "free");
  EXPECT_TRUE(by_id["dut-b"].at("holder").is_null());
  EXPECT_EQ(by_id["dut-off"].at("state"), "offline");
}

// The number of waiters with a ticket in `locks`/.lockable-queue.
std::size_t queued_count(const fs::path& locks) {
  std::size_t count = 0;
  std::error_code ignored;
  for (const auto& entry : fs::directory_iterator(locks / ".lockable-queue", ignored)) {
    if (entry.path().extension() == ".ticket") ++count;
  }
  return count;
}

bool wait_until_queued(const fs::path& locks, std::size_t count) {
  const auto deadline = Clock::now() + kGuard;
  while (queued_count(locks) < count) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

TEST_F(CliTest, StatusListsTheQueueWithPrioritiesInServiceOrder) {
  Holder holder(dir_.path(), base({"--requirements", "os=iOS"}), kWaitForever);
  ASSERT_TRUE(holder.wait_until_locked()) << holder.log();
  const auto waiter_options = [] {
    auto options = lockable_options({}, {});
    options.out = lockable::test::Stream::null();
    options.err = lockable::test::Stream::null();
    return options;
  };
  // First a waiter of the default priority, then one of priority 7 (from the variable).
  lockable::test::Child plain(lockable_argv(base({"--requirements", "os=iOS", "true"})),
                              waiter_options());
  ASSERT_TRUE(wait_until_queued(locks_, 1));
  auto urgent_options = waiter_options();
  urgent_options.env["LOCKABLE_PRIORITY"] = "7";
  lockable::test::Child urgent(lockable_argv(base({"--requirements", "os=iOS", "true"})),
                               urgent_options);
  ASSERT_TRUE(wait_until_queued(locks_, 2));

  const auto result = run(base({"status", "--json"}));
  ASSERT_EQ(result.exit_code, 0) << result;
  const Json status = Json::parse(result.out);
  const Json& queue = status.at("queue");
  ASSERT_EQ(queue.size(), 2u) << result;
  EXPECT_EQ(queue[0].at("position"), 1);
  EXPECT_EQ(queue[0].at("pid"), urgent.pid()) << "priority 7 is served first";
  EXPECT_EQ(queue[0].at("priority"), 7);
  EXPECT_EQ(queue[0].at("effective_priority"), 7);
  EXPECT_EQ(queue[1].at("pid"), plain.pid());
  EXPECT_EQ(queue[1].at("priority"), 0);
  for (const auto& entry : queue) {
    EXPECT_EQ(entry.at("wants"), Json::array({"dut-b"})) << entry;
    EXPECT_EQ(entry.at("hostname"), "localhost") << entry;
    EXPECT_EQ(entry.at("requirements"), (Json{{"os", "iOS"}})) << entry;
    EXPECT_GE(entry.at("waited").get<double>(), 0.0) << entry;
    EXPECT_TRUE(entry.at("since").is_string()) << entry;
  }
  for (const auto& device : status.at("devices")) {
    if (device.at("id") == "dut-b") {
      EXPECT_EQ(device.at("state"), "held");
      EXPECT_EQ(device.at("holder").at("pid"), holder.pid());
    }
  }

  const auto text = run(base({"status"}));
  ASSERT_EQ(text.exit_code, 0) << text;
  const auto first = text.out.find("  1. priority 7: pid " + std::to_string(urgent.pid()));
  const auto second = text.out.find("  2. priority 0: pid " + std::to_string(plain.pid()));
  EXPECT_NE(first, std::string::npos) << text;
  EXPECT_NE(second, std::string::npos) << text;
  EXPECT_NE(text.out.find("wants dut-b, for {\"os\":\"iOS\"}"), std::string::npos) << text;
}

TEST_F(CliTest, PriorityFromTheFlagOrTheVariableAndBadOnesNamed) {
  const auto flag = run(base({"--priority", "high", "true"}));
  EXPECT_EQ(flag.exit_code, 2) << flag;
  EXPECT_NE(flag.err.find("lockable: --priority: must be a whole number, found \"high\"; give a "
                          "whole number from -1000 to 1000"),
            std::string::npos)
      << flag;
  const auto variable = run(base({"true"}), {"LOCKABLE_PRIORITY=1001"});
  EXPECT_EQ(variable.exit_code, 2) << variable;
  EXPECT_NE(variable.err.find("LOCKABLE_PRIORITY: is out of range, found \"1001\""),
            std::string::npos)
      << variable;
  EXPECT_FALSE(fs::exists(locks_)) << "a bad priority changes nothing";
  EXPECT_EQ(run(base({"--priority", "-5", "true"}), {"LOCKABLE_PRIORITY=1001"}).exit_code, 0)
      << "the flag wins over the variable";
}

TEST_F(CliTest, StatusWatchPrintsSnapshotsApartByABlankLineUpToCount) {
  Holder holder(dir_.path(), base({"--requirements", "id=dut-a"}), kWaitForever);
  ASSERT_TRUE(holder.wait_until_locked()) << holder.log();
  const auto text = run(base({"status", "--watch", "0.1", "--count", "3"}));
  ASSERT_EQ(text.exit_code, 0) << text;
  EXPECT_EQ(text.out.find("\033["), std::string::npos) << "no escapes when not a terminal";
  std::size_t headers = 0;
  for (auto at = text.out.find("ID "); at != std::string::npos; at = text.out.find("ID ", at + 1)) {
    ++headers;
    if (at > 0) {
      EXPECT_EQ(text.out.substr(at - 2, 2), "\n\n") << text;
    }
  }
  EXPECT_EQ(headers, 3u) << text;

  const auto json = run(base({"status", "--json", "--watch=0.1", "--count", "2"}));
  ASSERT_EQ(json.exit_code, 0) << json;
  const auto split = json.out.find("}\n\n{");
  ASSERT_NE(split, std::string::npos) << json;
  EXPECT_EQ(Json::parse(json.out.substr(0, split + 1)).at("devices").size(), 3u);
  EXPECT_EQ(Json::parse(json.out.substr(split + 3)).at("devices").size(), 3u);
}

TEST_F(CliTest, StatusWatchStopsOnSigintWithExitZero) {
  auto options = lockable_options({}, {});
  options.out = lockable::test::Stream::pipe();
  options.err = lockable::test::Stream::pipe();
  lockable::test::Child watch(lockable_argv(base({"status", "--watch"})), options);
  ASSERT_EQ(watch.read_line(kGuard).value_or("").rfind("ID ", 0), 0u) << watch.output();
  watch.send_signal(SIGINT);
  EXPECT_EQ(watch.wait(kGuard), 0) << watch.output();
  EXPECT_EQ(watch.term_signal(), 0);
}

TEST_F(CliTest, StatusWatchClearsTheScreenOnATerminal) {
  int master = -1;
  const pid_t child = ::forkpty(&master, nullptr, nullptr, nullptr);
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto args = lockable_argv(base({"status", "--watch", "0.1", "--count", "2"}));
    std::vector<char*> argv;
    for (auto& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  std::string out;
  char buffer[4096];
  for (;;) {
    const auto count = ::read(master, buffer, sizeof buffer);
    if (count <= 0) break;  // EIO once the child has exited and closed the terminal
    out.append(buffer, static_cast<std::size_t>(count));
  }
  ::close(master);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << out;
  std::size_t clears = 0;
  for (auto at = out.find("\033[H\033[2J"); at != std::string::npos;
       at = out.find("\033[H\033[2J", at + 1)) {
    ++clears;
  }
  EXPECT_EQ(clears, 2u) << out;
  EXPECT_NE(out.find("dut-a"), std::string::npos) << out;
}

// ---- Ctrl-Z in a job-control shell -------------------------------------------------------------

// An interactive bash on a terminal of its own, as a user at a rig has: lockable runs as a job of
// it, in the job's process group with its keeper and command, and Ctrl-Z and `fg` are typed.
class JobShell {
 public:
  explicit JobShell(const fs::path& dir) : transcript_(dir / "terminal.log") {
    shell_ = ::forkpty(&master_, nullptr, nullptr, nullptr);
    if (shell_ == 0) {
      ::setenv("PS1", "$ ", 1);
      ::setenv("TERM", "dumb", 1);
      ::execl("/bin/bash", "bash", "--norc", "--noprofile", "-i", static_cast<char*>(nullptr));
      ::_exit(127);
    }
  }
  ~JobShell() {
    if (shell_ > 0) {
      ::kill(shell_, SIGKILL);
      ::waitpid(shell_, nullptr, 0);
    }
    if (master_ >= 0) ::close(master_);
  }
  JobShell(const JobShell&) = delete;
  JobShell& operator=(const JobShell&) = delete;

  bool started() const { return shell_ > 0; }
  pid_t pid() const { return shell_; }
  void type(const std::string& text) {
    drain();
    (void)!::write(master_, text.data(), text.size());
  }
  // What the terminal showed so far (read as it comes, so the shell never blocks on output).
  std::string shown() {
    drain();
    return shown_;
  }
  int exit_and_wait() {
    type("exit\n");
    int status = 0;
    const auto deadline = Clock::now() + kGuard;
    while (::waitpid(shell_, &status, WNOHANG) == 0) {
      if (Clock::now() > deadline) return -1;
      drain();
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    shell_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

 private:
  void drain() {
    pollfd ready{master_, POLLIN, 0};
    char buffer[4096];
    while (::poll(&ready, 1, 0) > 0 && (ready.revents & POLLIN) != 0) {
      const auto count = ::read(master_, buffer, sizeof buffer);
      if (count <= 0) break;
      shown_.append(buffer, static_cast<std::size_t>(count));
    }
    write_file(transcript_, shown_);
  }

  fs::path transcript_;
  int master_ = -1;
  pid_t shell_ = -1;
  std::string shown_;
};

// The state letter of /proc/<pid>/stat ('T' stopped), or 0 when there is no such process.
char process_state(pid_t pid) {
  const std::string stat = read_text("/proc/" + std::to_string(pid) + "/stat");
  const auto close = stat.rfind(')');
  return close != std::string::npos && stat.size() > close + 2 ? stat[close + 2] : '\0';
}

pid_t parent_of(pid_t pid) {
  const std::string stat = read_text("/proc/" + std::to_string(pid) + "/stat");
  const auto close = stat.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream fields(stat.substr(close + 2));
  char state = 0;
  pid_t parent = -1;
  fields >> state >> parent;
  return parent;
}

// Writes `<dir>/job.sh`: `lockable <args> --no-shell -- sh <script>`, then lockable's exit code
// into <rc_file>; returns the line that runs it as a job. A script, not a list typed at the
// prompt: bash goes on with the rest of a list as soon as its first job stops.
std::string job_line(const fs::path& dir, const std::vector<std::string>& args,
                     const fs::path& script, const fs::path& rc_file) {
  std::string line = LOCKABLE_CLI_PATH;
  for (const auto& word : args) line += " '" + word + "'";
  line += " --no-shell -- /bin/sh '" + script.string() + "'\necho \"rc=$?\" > '" +
          rc_file.string() + "'\n";
  write_file(dir / "job.sh", line);
  return "/bin/sh '" + (dir / "job.sh").string() + "'\n";
}

// The lockable process the shell's job runs (the job itself, or a child of the job's sh).
pid_t lockable_of_job(pid_t shell) {
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t pid = std::stoi(name);
    if (read_text(entry.path() / "comm") == "lockable\n" &&
        (parent_of(pid) == shell || parent_of(parent_of(pid)) == shell)) {
      return pid;
    }
  }
  return -1;
}

TEST_F(CliTest, CtrlZStopsLockableItsKeeperAndTheCommandWithTheDeviceHeldAndFgResumesThem) {
  const auto script = dir_.path() / "command.sh";
  const auto go = dir_.path() / "go";
  const auto pid_file = dir_.path() / "command.pid";
  const auto rc_file = dir_.path() / "rc";
  write_file(script, "echo $$ > '" + pid_file.string() + "'\nwhile [ ! -e '" + go.string() +
                         "' ]; do sleep 0.02; done\nexit 3\n");
  JobShell shell(dir_.path());
  ASSERT_TRUE(shell.started());
  shell.type(job_line(dir_.path(), base({"--requirements", "id=dut-b"}), script, rc_file));
  ASSERT_TRUE(eventually([&] { return !read_text(pid_file).empty(); })) << shell.shown();
  const pid_t command = std::stoi(read_text(pid_file));
  const pid_t keeper = parent_of(command);
  const pid_t lockable = parent_of(keeper);
  ASSERT_EQ(lockable, lockable_of_job(shell.pid())) << "lockable is not the shell's job";

  shell.type("\x1a");  // Ctrl-Z
  ASSERT_TRUE(eventually([&] {
    return process_state(lockable) == 'T' && process_state(keeper) == 'T' &&
           process_state(command) == 'T';
  })) << "states "
      << process_state(lockable) << process_state(keeper) << process_state(command) << "\n"
      << shell.shown();
  // Stopped, not ended: the device stays held, and nobody else is given it meanwhile.
  EXPECT_TRUE(is_flocked(lock_file("dut-b")));
  const auto other = run(base({"--requirements", "id=dut-b", "--timeout", "0.3", "true"}));
  EXPECT_NE(other.exit_code, 0) << other;

  shell.type("fg\n");
  ASSERT_TRUE(eventually([&] {
    return process_state(lockable) != 'T' && process_state(keeper) != 'T' &&
           process_state(command) != 'T';
  })) << shell.shown();
  write_file(go, "");
  ASSERT_TRUE(eventually([&] { return !read_text(rc_file).empty(); })) << shell.shown();
  EXPECT_EQ(read_text(rc_file), "rc=3\n") << shell.shown();
  EXPECT_FALSE(is_flocked(lock_file("dut-b")));
  EXPECT_EQ(shell.exit_and_wait(), 0) << shell.shown();
}

TEST_F(CliTest, CtrlZWhileQueuedLetsTheNextWaiterPassAndFgPutsTheJobBackInLine) {
  Holder holder(dir_.path(), base({"--requirements", "id=dut-b"}), kWaitForever);
  ASSERT_TRUE(holder.wait_until_locked()) << holder.log();
  const auto script = dir_.path() / "command.sh";
  const auto rc_file = dir_.path() / "rc";
  const auto ran = dir_.path() / "ran";
  write_file(script, "echo job >> '" + ran.string() + "'\nexit 4\n");
  JobShell shell(dir_.path());
  ASSERT_TRUE(shell.started());
  shell.type(job_line(dir_.path(), base({"--requirements", "id=dut-b"}), script, rc_file));
  ASSERT_TRUE(wait_until_queued(locks_)) << shell.shown();
  const pid_t lockable = lockable_of_job(shell.pid());
  ASSERT_GT(lockable, 0) << shell.shown();

  shell.type("\x1a");  // Ctrl-Z while it waits in line
  ASSERT_TRUE(eventually([&] { return process_state(lockable) == 'T'; })) << shell.shown();
  EXPECT_EQ(holder.signal_and_wait(SIGTERM), 128 + SIGTERM) << holder.log();
  // The stopped job must not keep the device from the next waiter for good (its ticket goes
  // stale; lock_folder.hpp), nor take it while stopped.
  const auto next = run(base({"--requirements", "id=dut-b", "--timeout", "30", "--no-shell", "--",
                              "/bin/sh", "-c", "echo next >> '" + ran.string() + "'"}));
  EXPECT_EQ(next.exit_code, 0) << next;
  EXPECT_EQ(read_text(ran), "next\n");

  shell.type("fg\n");
  ASSERT_TRUE(eventually([&] { return !read_text(rc_file).empty(); })) << shell.shown();
  EXPECT_EQ(read_text(rc_file), "rc=4\n") << shell.shown();
  EXPECT_EQ(read_text(ran), "next\njob\n");
  EXPECT_FALSE(is_flocked(lock_file("dut-b")));
  EXPECT_EQ(shell.exit_and_wait(), 0) << shell.shown();
}

TEST_F(CliTest, CtrlZStopsStatusWatchAndFgRedrawsAtOnceAndCtrlCEndsIt) {
  const auto rc_file = dir_.path() / "rc";
  // Typed at the prompt, a job of its own: a non-interactive sh around it would die of the
  // Ctrl-C that lockable takes as "stop watching".
  std::string line = LOCKABLE_CLI_PATH;
  for (const auto& word : base({"status", "--watch", "0.2"})) line += " '" + word + "'";
  JobShell shell(dir_.path());
  ASSERT_TRUE(shell.started());
  const auto clears = [&shell] {
    const std::string shown = shell.shown();
    std::size_t count = 0;
    for (auto at = shown.find("\033[H\033[2J"); at != std::string::npos;
         at = shown.find("\033[H\033[2J", at + 1)) {
      ++count;
    }
    return count;
  };
  shell.type(line + "\n");
  ASSERT_TRUE(eventually([&] { return clears() >= 2; })) << shell.shown();
  const pid_t watcher = lockable_of_job(shell.pid());
  ASSERT_GT(watcher, 0) << shell.shown();

  shell.type("\x1a");  // Ctrl-Z
  ASSERT_TRUE(eventually([&] { return process_state(watcher) == 'T'; })) << shell.shown();
  // A frame written just before the stop may still be on its way through the terminal.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const auto stopped_at = clears();
  std::this_thread::sleep_for(std::chrono::milliseconds(600));  // three refresh periods
  EXPECT_EQ(clears(), stopped_at) << "a stopped watch drew on the terminal";

  shell.type("fg\n");
  ASSERT_TRUE(eventually([&] { return clears() >= stopped_at + 2; })) << shell.shown();
  EXPECT_NE(shell.shown().rfind("dut-a"), std::string::npos);
  shell.type("\x03");  // Ctrl-C ends the watch, as it does when never stopped
  ASSERT_TRUE(eventually([&] { return process_state(watcher) == '\0'; })) << shell.shown();
  shell.type("echo \"rc=$?\" > '" + rc_file.string() + "'\n");
  ASSERT_TRUE(eventually([&] { return !read_text(rc_file).empty(); })) << shell.shown();
  EXPECT_EQ(read_text(rc_file), "rc=0\n") << shell.shown();
  EXPECT_EQ(shell.exit_and_wait(), 0) << shell.shown();
}

// ---- never the environment ----------------------------------------------------------------------

TEST_F(CliTest, OutputNeverContainsTheEnvironmentOrAttributeValues) {
  const std::string secret = "LOCKABLE_TEST_SECRET=" + kSecretEnvValue;
  Holder holder(dir_.path(), base({"--requirements", "id=dut-b"}), kWaitForever);
  ASSERT_TRUE(holder.wait_until_locked()) << holder.log();
  const std::vector<std::vector<std::string>> runs = {
      base({"--requirements", "id=dut-a", "true"}),
      base({"--requirements", "id=dut-a", "--no-shell", "--", "sh", "-c", "exit 5"}),
      base({"--requirements", "os=Windows", "true"}),
      base({"--requirements", "id=dut-b", "--timeout", "0.1", "true"}),
      base({"status"}),
      base({"status", "--json"}),
      {"--validate-only", "--resources", resources_.string()},
  };
  for (const auto& args : runs) {
    const auto result = run(args, {secret});
    EXPECT_EQ(result.output().find(kSecretEnvValue), std::string::npos) << result;
    EXPECT_EQ(result.output().find(kSecretAttribute), std::string::npos) << result;
  }
}

// ---- help and version --------------------------------------------------------------------------

TEST(CliHelpTest, HelpDocumentsUsageAndEveryExitCode) {
  const auto result = run({"--help"});
  EXPECT_EQ(result.exit_code, 0) << result;
  for (const std::string text : {"--validate-only", "--lock-folder", "--resources", "--timeout",
                                 "--hostname", "--requirements", "status", "Exit status", "126",
                                 "127", "128+N", "timeout", "never prints the environment"}) {
    EXPECT_NE(result.out.find(text), std::string::npos) << text << "\n" << result;
  }
  for (int code = 1; code <= 8; ++code) {
    EXPECT_NE(result.out.find("\n  " + std::to_string(code) + " "), std::string::npos)
        << code << "\n"
        << result;
  }
}

TEST(CliHelpTest, VersionPrintsTheLibraryVersion) {
  const auto result = run({"--version"});
  EXPECT_EQ(result.exit_code, 0) << result;
  EXPECT_EQ(result.out, std::string("lockable ") + lockable::kVersion + "\n");
}

}  // namespace
