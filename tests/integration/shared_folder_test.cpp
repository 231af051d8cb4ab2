// A lock folder shared by several user accounts (nobody and daemon, each with umask 077), a
// read-only observer (`lockable status`), and an account with no inotify instance left. Switching
// accounts needs root (CI runs the tests as root); the tests skip, saying so, otherwise. What the
// other accounts run is copied into a 0755 folder: the build tree may sit under a 0700 home.

#include <lockable/lockable.hpp>

#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "lockable/test/child.hpp"
#include "lockable/test/files.hpp"

namespace lockable {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using test::Child;
using test::RunResult;
using test::TempDir;
using Args = std::vector<std::string>;

constexpr auto kGuard = 60s;

struct Account {
  std::string name;
  uid_t uid;
  gid_t gid;
};
const Account kNobody{"nobody", 65534, 65534};
const Account kDaemon{"daemon", 1, 1};
// No passwd entry needed: an account of its own for the inotify test, so that using up its
// instances never starves another test running at the same time.
const Account kNoInotify{"uid 4242", 4242, 4242};

Json device(const std::string& id, const std::string& host = "test-host") {
  return Json{{"id", id}, {"online", true}, {"hostname", host}};
}

std::size_t count(const std::string& text, const std::string& part) {
  std::size_t found = 0;
  for (auto at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++found;
  return found;
}

class SharedFolder : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) {
      GTEST_SKIP() << "running as other user accounts needs root; CI runs these tests as root";
    }
    fs::permissions(dir_.path(), fs::perms(0755));
    fs::create_directory(bin_);
    for (const fs::path& program : {fs::path(LOCKABLE_TEST_HELPER), fs::path(LOCKABLE_CLI),
                                    fs::path(LOCKABLE_PYTHON_PID_LOCK)}) {
      fs::copy_file(program, bin_ / program.filename());
      fs::permissions(bin_ / program.filename(), fs::perms(0755));
    }
    fs::create_directory(locks_);
    fs::permissions(locks_, fs::perms(01777));  // like /tmp
    write_resources(Json::array({device("d1"), device("d2")}));
  }

  void write_resources(const Json& list) {
    test::write_file(resources_, list.dump(2));
    fs::permissions(resources_, fs::perms(0644));
  }

  // `argv` run as `who` with umask `mask`.
  static Args as(const Account& who, const Args& argv, const std::string& mask = "077") {
    Args full{"/usr/bin/setpriv",
              "--reuid=" + std::to_string(who.uid),
              "--regid=" + std::to_string(who.gid),
              "--clear-groups",
              "/bin/sh",
              "-c",
              "umask " + mask + " && exec \"$@\"",
              "sh"};
    full.insert(full.end(), argv.begin(), argv.end());
    return full;
  }

  Args cli(const Args& args, const fs::path& folder = {}) const {
    Args argv{(bin_ / "lockable").string(),
              "--resources",
              resources_.string(),
              "--lock-folder",
              (folder.empty() ? locks_ : folder).string(),
              "--hostname",
              "test-host"};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }

  Args helper(const Args& args) const {
    Args argv{(bin_ / "lockable_test_helper").string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }

  Args hold(const std::string& requirement) const {
    return helper({"hold", resources_.string(), locks_.string(), requirement});
  }

  test::ChildOptions options() const {
    test::ChildOptions options;
    options.cwd = dir_.path();
    options.err = test::Stream::pipe();
    options.drop_env_prefixes = {"LOCKABLE_", "GTEST_"};
    return options;
  }

  RunResult run(const Args& argv) const { return test::run(argv, options(), kGuard); }

  std::unique_ptr<Child> start(const Args& argv) const {
    return std::make_unique<Child>(argv, options());
  }

  // Every entry under `folder` with its size and modification time.
  static std::map<std::string, std::string> snapshot(const fs::path& folder) {
    std::map<std::string, std::string> entries;
    for (const auto& entry : fs::recursive_directory_iterator(folder)) {
      struct stat st {};
      ::lstat(entry.path().c_str(), &st);
      entries[entry.path().string()] = std::to_string(st.st_size) + " " +
                                       std::to_string(st.st_mtim.tv_sec) + "." +
                                       std::to_string(st.st_mtim.tv_nsec);
    }
    return entries;
  }

  bool any_ticket() const {
    const fs::path queue = locks_ / ".lockable-queue";
    std::error_code error;
    for (const auto& entry : fs::directory_iterator(queue, error)) {
      const std::string name = entry.path().filename().string();
      if (name.front() != '.' && name.size() > 7 && name.substr(name.size() - 7) == ".ticket") {
        return true;
      }
    }
    return false;
  }

  TempDir dir_;
  fs::path bin_ = dir_.path() / "bin";
  fs::path locks_ = dir_.path() / "locks";
  fs::path resources_ = dir_.path() / "resources.json";
};

TEST_F(SharedFolder, AccountsTakeTheSameDevicesInTurnThroughTheCliAndTheLibrary) {
  struct Turn {
    Account who;
    bool through_cli;
  };
  const std::vector<Turn> turns{{kNobody, true},  {kDaemon, true}, {kNobody, false},
                                {kDaemon, false}, {kNobody, true}, {kDaemon, false}};
  for (const auto& turn : turns) {
    for (const std::string id : {"d1", "d2"}) {
      SCOPED_TRACE(turn.who.name +
                   (turn.through_cli ? " through the CLI" : " through the library") + " locking " +
                   id);
      if (turn.through_cli) {
        const auto result =
            run(as(turn.who, cli({"--requirements", "id=" + id, "--timeout", "10", "--", "true"})));
        EXPECT_EQ(result.exit_code, 0) << result;
      } else {
        const auto result = run(as(turn.who, hold("id=" + id)));
        EXPECT_EQ(result.out, "locked " + id + "\nreleased\n") << result;
      }
    }
  }
  // Made for everyone despite the umask; the queue folder is sticky like /tmp.
  struct stat st {};
  ASSERT_EQ(::stat((locks_ / "d1.pid").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0666u);
  ASSERT_EQ(::stat((locks_ / ".lockable-queue").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 01777u);
}

TEST_F(SharedFolder, WaiterOfAnotherAccountQueuesAndGetsTheDevice) {
  auto holder = start(as(kNobody, hold("id=d1")));
  ASSERT_EQ(holder->read_line(kGuard), "locked d1") << holder->output();
  auto waiter =
      start(as(kDaemon, cli({"--requirements", "id=d1", "--timeout", "60", "--", "true"})));
  const auto deadline = std::chrono::steady_clock::now() + kGuard;
  while (!any_ticket() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  ASSERT_TRUE(any_ticket()) << "daemon never queued";
  holder->write_line("");
  EXPECT_EQ(holder->read_line(kGuard), "released");
  EXPECT_EQ(waiter->wait(), 0) << waiter->output();
  EXPECT_EQ(waiter->output().find("warning"), std::string::npos) << waiter->output();
}

TEST_F(SharedFolder, ReadOnlyLeftoverOfAnotherAccountIsLockedWithoutRewritingIt) {
  // A killed Python holder's file: 0644, its owner's, naming a dead process.
  pid_t dead = 0;
  {
    Child gone({"/bin/true"});
    dead = gone.pid();
    gone.wait();
  }
  const auto file = locks_ / "d1.pid";
  test::write_file(file, std::to_string(dead) + "\n");
  ASSERT_EQ(::chown(file.c_str(), kNobody.uid, kNobody.gid), 0);
  fs::permissions(file, fs::perms(0644));

  const auto result =
      run(as(kDaemon, cli({"--requirements", "id=d1", "--timeout", "10", "--", "true"})));
  EXPECT_EQ(result.exit_code, 0) << result;
  EXPECT_EQ(test::read_text(file), std::to_string(dead) + "\n");
  // While held that way, status names the holder from its details, not the dead pid.
  auto holder = start(as(kDaemon, hold("id=d1")));
  ASSERT_EQ(holder->read_line(kGuard), "locked d1") << holder->output();
  const auto status = run(cli({"status", "--json"}));
  ASSERT_EQ(status.exit_code, 0) << status;
  EXPECT_EQ(Json::parse(status.out).at("devices")[0].at("holder").at("pid"), holder->pid())
      << status;
  holder->write_line("");
  EXPECT_EQ(holder->read_line(kGuard), "released");
  // Its owner, with the Python package, can still take it.
  const auto python = run(as(
      kNobody, {"/usr/bin/python3", (bin_ / "python_pid_lock.py").string(), "try", file.string()}));
  EXPECT_EQ(python.exit_code, 0) << python;
}

TEST_F(SharedFolder, QueueFolderThisAccountMayNotWriteMeansWaitingWithOneWarning) {
  const auto queue = locks_ / ".lockable-queue";
  fs::create_directory(queue);
  fs::permissions(queue, fs::perms(0755));  // as an older version run by root left it
  auto holder = start(as(kNobody, hold("id=d1")));
  ASSERT_EQ(holder->read_line(kGuard), "locked d1") << holder->output();
  auto waiter =
      start(as(kDaemon, cli({"--requirements", "id=d1", "--timeout", "60", "--", "true"})));
  waiter->wait_for_output("cannot queue in " + queue.string());
  holder->write_line("");
  EXPECT_EQ(holder->read_line(kGuard), "released");
  EXPECT_EQ(waiter->wait(), 0) << waiter->output();
  EXPECT_EQ(count(waiter->output(), "cannot queue in"), 1u) << waiter->output();
  EXPECT_NE(waiter->output().find("chmod 1777 " + queue.string()), std::string::npos)
      << waiter->output();
}

TEST_F(SharedFolder, StatusOfAReadOnlyObserverChangesNothing) {
  write_resources(Json::array({device("d1"), device("d2"), device("d3", "other-host")}));
  fs::permissions(locks_, fs::perms(0755));  // only root may write it
  auto holder = start(hold("id=d1"));        // root's
  ASSERT_EQ(holder->read_line(kGuard), "locked d1") << holder->output();
  fs::remove_all(locks_ / ".lockable-queue");
  const auto before = snapshot(locks_);

  const auto table = run(as(kNobody, cli({"status"})));
  ASSERT_EQ(table.exit_code, 0) << table;
  EXPECT_NE(table.out.find("held"), std::string::npos) << table;
  EXPECT_NE(table.out.find("pid " + std::to_string(holder->pid())), std::string::npos) << table;
  const auto json = run(as(kNobody, cli({"status", "--json"})));
  ASSERT_EQ(json.exit_code, 0) << json;
  const Json list = Json::parse(json.out).at("devices");
  ASSERT_EQ(list.size(), 3u) << json;
  EXPECT_EQ(list[0].at("state"), "held");
  EXPECT_EQ(list[1].at("state"), "free");
  EXPECT_EQ(list[2].at("for_this_host"), false);
  EXPECT_EQ(list[1].at("for_this_host"), true);
  EXPECT_EQ(snapshot(locks_), before);

  const auto missing = locks_ / "missing";
  fs::permissions(locks_, fs::perms(01777));  // it could be created: it must not be
  const auto none = run(as(kNobody, cli({"status"}, missing)));
  EXPECT_EQ(none.exit_code, 0) << none;
  EXPECT_FALSE(fs::exists(missing));
}

TEST_F(SharedFolder, StatusSaysADeviceOfAnotherHostIsNotForThisHost) {
  write_resources(Json::array({device("d1"), device("d3", "other-host")}));
  const auto result = run(as(kNobody, cli({"status"})));
  ASSERT_EQ(result.exit_code, 0) << result;
  std::string d3_line;
  std::string d1_line;
  std::istringstream lines(result.out);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("d3 ", 0) == 0) d3_line = line;
    if (line.rfind("d1 ", 0) == 0) d1_line = line;
  }
  EXPECT_NE(d3_line.find("other-host"), std::string::npos) << result;
  EXPECT_NE(d3_line.find("not for this host (test-host)"), std::string::npos) << result;
  EXPECT_EQ(d1_line.find("not for this host"), std::string::npos) << result;
}

TEST_F(SharedFolder, NoInotifyInstanceLeftMeansPollingWithAWarning) {
  auto holder = start(hold("id=d1"));
  ASSERT_EQ(holder->read_line(kGuard), "locked d1") << holder->output();
  auto waiter =
      start(as(kNoInotify,
               helper({"exhaust-inotify", "hold", resources_.string(), locks_.string(), "id=d1"})));
  waiter->wait_for_output("cannot watch lock folder");
  holder->write_line("");
  EXPECT_EQ(holder->read_line(kGuard), "released");
  EXPECT_EQ(waiter->read_line(kGuard), "locked d1") << waiter->output();
  waiter->write_line("");
  EXPECT_EQ(waiter->read_line(kGuard), "released");
  EXPECT_NE(waiter->output().find("raise fs.inotify.max_user_instances"), std::string::npos)
      << waiter->output();
  EXPECT_EQ(waiter->output().find("took 0 inotify"), std::string::npos) << waiter->output();
}

}  // namespace
}  // namespace lockable
