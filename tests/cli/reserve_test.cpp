// `lockable reserve | drain | unreserve | release --force` run as real processes against a lock
// folder, with a locker of the Python package's protocol (tests/integration/python_pid_lock.py)
// in the same folder. Every reservation holder a test starts is ended by the fixture.

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "lockable/test/child.hpp"
#include "lockable/test/etcd_server.hpp"
#include "lockable/test/eventually.hpp"
#include "lockable/test/files.hpp"
#include "lockable/test/lock_service.hpp"

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using lockable::test::read_text;
using lockable::test::RunResult;
using lockable::test::TempDir;
using lockable::test::write_file;

constexpr auto kGuard = std::chrono::seconds(60);

RunResult run_program(std::vector<std::string> argv) {
  lockable::test::ChildOptions options;
  options.drop_env_prefixes = {"LOCKABLE_"};
  options.in = lockable::test::Stream::null();
  options.out = lockable::test::Stream::pipe();
  options.err = lockable::test::Stream::pipe();
  return lockable::test::run(argv, options, kGuard);
}

RunResult run(std::vector<std::string> args) {
  args.insert(args.begin(), LOCKABLE_CLI_PATH);
  return run_program(std::move(args));
}

using lockable::test::eventually;

class ReserveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Reservation holders detach from `lockable reserve`; as their subreaper this test reaps
    // them, so a killed one is gone (a zombie would still count as a live pid).
    ::prctl(PR_SET_CHILD_SUBREAPER, 1);
    resources_ = dir_.path() / "resources.json";
    locks_ = dir_.path() / "locks";
    metrics_ = dir_.path() / "metrics.jsonl";
    write_file(resources_, Json::array({{{"id", "dut-1"}, {"online", true}, {"hostname", "rig"}},
                                        {{"id", "dut-2"}, {"online", true}, {"hostname", "rig"}}})
                               .dump());
  }

  // Ends every reservation holder: its file gone, it lets go within half a second.
  void TearDown() override {
    std::error_code ignored;
    for (const auto& entry : fs::directory_iterator(locks_, ignored)) {
      const std::string name = entry.path().filename().string();
      if (name.find(".reserved.json") != std::string::npos) fs::remove(entry.path(), ignored);
    }
    for (const std::string id : {"dut-1", "dut-2"}) {
      eventually([&] { return !reservation_holder_holds(id); });
    }
    reap();
  }

  static void reap() {
    while (::waitpid(-1, nullptr, WNOHANG) > 0) {
    }
  }

  std::vector<std::string> where(std::vector<std::string> args) const {
    args.insert(args.end(), {"--resources", resources_.string(), "--lock-folder", locks_.string(),
                             "--metrics-file", metrics_.string()});
    return args;
  }

  // `lockable` locking a device of host "rig" and running `true`, giving up after `timeout`.
  RunResult lock_and_run(const std::string& timeout) const {
    return run({"--resources", resources_.string(), "--lock-folder", locks_.string(), "--hostname",
                "rig", "--requirements", "id=dut-1", "--timeout", timeout, "--metrics-file",
                metrics_.string(), "true"});
  }

  // The same through a remote store.
  RunResult lock_and_run_on(const std::string& backend, const std::string& timeout) const {
    return run({"--resources", resources_.string(), "--lock-backend", backend, "--hostname", "rig",
                "--requirements", "id=dut-1", "--timeout", timeout, "true"});
  }

  std::vector<std::string> on(const std::string& backend, std::vector<std::string> args) const {
    args.insert(args.end(), {"--resources", resources_.string(), "--lock-backend", backend,
                             "--metrics-file", metrics_.string()});
    return args;
  }

  // The Python package's protocol: 0 when it could lock `id`, 3 when busy.
  int python_try(const std::string& id) const {
    return run_program({"/usr/bin/python3", LOCKABLE_PYTHON_PID_LOCK, "try",
                        (locks_ / (id + ".pid")).string()})
        .exit_code;
  }

  Json holder_details(const std::string& id) const {
    std::ifstream in(locks_ / (id + ".pid.json"));
    return Json::parse(in, nullptr, false);
  }

  bool reservation_holder_holds(const std::string& id) const {
    if (!lockable::test::is_flocked(locks_ / (id + ".pid"))) return false;
    const Json details = holder_details(id);
    return details.is_object() &&
           details.value("alloc_id", std::string()).rfind("reservation ", 0) == 0;
  }

  long reservation_holder_pid(const std::string& id) const {
    return holder_details(id).value("pid", 0L);
  }

  // Reserves `id`, then kills its holder process as a reboot would (the file stays). Returns the
  // holder's pid, or 0 after a failed assertion.
  long reserve_then_reboot(const std::string& id) {
    const auto reserved = run(where({"reserve", id, "--reason", "flaky USB"}));
    EXPECT_EQ(reserved.exit_code, 0) << reserved;
    const long holder = reservation_holder_pid(id);
    EXPECT_GT(holder, 0);
    if (holder <= 0) return 0;
    EXPECT_NE(::getsid(static_cast<pid_t>(holder)), ::getsid(0)) << "not detached from our session";
    EXPECT_EQ(::kill(static_cast<pid_t>(holder), SIGKILL), 0);
    EXPECT_EQ(::waitpid(static_cast<pid_t>(holder), nullptr, 0), static_cast<pid_t>(holder));
    return holder;
  }

  TempDir dir_;
  fs::path resources_;
  fs::path locks_;
  fs::path metrics_;
};

TEST_F(ReserveTest, ReserveWithoutAReasonIsAUsageError) {
  for (const std::string word : {"reserve", "drain"}) {
    const auto result = run(where({word, "dut-1"}));
    EXPECT_EQ(result.exit_code, 2) << result;
    EXPECT_NE(result.err.find("--reason TEXT is required"), std::string::npos) << result;
  }
  const auto blank = run(where({"reserve", "dut-1", "--reason", "  "}));
  EXPECT_EQ(blank.exit_code, 2) << blank;
  EXPECT_FALSE(fs::exists(locks_ / "dut-1.reserved.json"));
}

TEST_F(ReserveTest, AnUnknownDeviceIsAnErrorNamingIt) {
  for (const auto& args :
       std::vector<std::vector<std::string>>{{"reserve", "dut-9", "--reason", "x"},
                                             {"unreserve", "dut-9"},
                                             {"drain", "dut-9", "--reason", "x"},
                                             {"release", "dut-9", "--force", "--reason", "x"}}) {
    const auto result = run(where(args));
    EXPECT_EQ(result.exit_code, 2) << result;
    EXPECT_NE(result.err.find("unknown device \"dut-9\""), std::string::npos) << result;
  }
}

TEST_F(ReserveTest, ABadUntilIsAnErrorNamingTheFlag) {
  for (const std::string until : {"tomorrow", "2020-01-01T00:00:00Z", "-5m"}) {
    const auto result = run(where({"reserve", "dut-1", "--reason", "x", "--until", until}));
    EXPECT_EQ(result.exit_code, 2) << result;
    EXPECT_NE(result.err.find("--until " + until), std::string::npos) << result;
  }
  EXPECT_FALSE(fs::exists(locks_ / "dut-1.reserved.json"));
}

TEST_F(ReserveTest, ReleaseWithoutForceIsAUsageError) {
  const auto result = run(where({"release", "dut-1", "--reason", "stuck"}));
  EXPECT_EQ(result.exit_code, 2) << result;
  EXPECT_NE(result.err.find("--force is required"), std::string::npos) << result;
}

TEST_F(ReserveTest, AReservedDeviceIsTakenByNeitherLockableNorThePythonPackage) {
  const auto reserved =
      run(where({"reserve", "dut-1", "--reason", "bench rework", "--until", "2h"}));
  ASSERT_EQ(reserved.exit_code, 0) << reserved;
  EXPECT_NE(reserved.err.find("reserved dut-1"), std::string::npos) << reserved;
  EXPECT_TRUE(reservation_holder_holds("dut-1"));

  EXPECT_EQ(python_try("dut-1"), 3) << "the Python protocol took a reserved device";
  EXPECT_EQ(python_try("dut-2"), 0);
  const auto waiter = lock_and_run("1");
  EXPECT_EQ(waiter.exit_code, 6) << waiter;
  EXPECT_NE(waiter.err.find("reserved, \"bench rework\""), std::string::npos) << waiter;

  const auto status = run({"status", "--resources", resources_.string(), "--lock-folder",
                           locks_.string(), "--hostname", "rig"});
  EXPECT_EQ(status.exit_code, 0) << status;
  EXPECT_NE(status.out.find("reserved \"bench rework\" (reserved by "), std::string::npos)
      << status;
  EXPECT_NE(status.out.find(", until 20"), std::string::npos) << status;
  const auto json_status = run({"status", "--json", "--resources", resources_.string(),
                                "--lock-folder", locks_.string(), "--hostname", "rig"});
  ASSERT_EQ(json_status.exit_code, 0) << json_status;
  const auto devices = nlohmann::json::parse(json_status.out).at("devices");
  const auto dut = std::find_if(devices.begin(), devices.end(),
                                [](const auto& device) { return device.at("id") == "dut-1"; });
  ASSERT_NE(dut, devices.end()) << json_status;
  EXPECT_EQ(dut->at("state"), "reserved") << dut->dump();
  EXPECT_EQ(dut->at("reservation").at("reason"), "bench rework") << dut->dump();
  EXPECT_TRUE(dut->at("reservation").at("until").is_string()) << dut->dump();

  const auto unreserved = run(where({"unreserve", "dut-1"}));
  ASSERT_EQ(unreserved.exit_code, 0) << unreserved;
  EXPECT_FALSE(reservation_holder_holds("dut-1"));
  EXPECT_EQ(python_try("dut-1"), 0);
  EXPECT_EQ(lock_and_run("5").exit_code, 0);

  // Both actions are in the allocation log with who and why, and the report still reads it.
  const std::string log = read_text(metrics_);
  EXPECT_NE(log.find(R"("event":"reserved","resource_id":"dut-1","by":")"), std::string::npos)
      << log;
  EXPECT_NE(log.find(R"("reason":"bench rework")"), std::string::npos) << log;
  EXPECT_NE(log.find(R"("event":"unreserved")"), std::string::npos) << log;
  const auto report = run({"report", metrics_.string()});
  EXPECT_EQ(report.exit_code, 0) << report;
  EXPECT_EQ(report.err, "") << "the operators' lines are no problem";
}

// A lab's lock folder shared by several accounts (1777, like /tmp): a reservation made by one
// account keeps every other account off, only its owner or root lifts it, and the refusal says
// why and how. Needs root, to act as a second account (nobody).
TEST_F(ReserveTest, AcrossAccountsAReservationKeepsOthersOffAndOnlyItsOwnerOrRootLiftsIt) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to run lockable as a second account";
  fs::permissions(dir_.path(), fs::perms::all);
  fs::create_directories(locks_);
  fs::permissions(locks_, fs::perms::all | fs::perms::sticky_bit);
  fs::permissions(resources_,
                  fs::perms::owner_all | fs::perms::group_read | fs::perms::others_read);
  fs::permissions(metrics_.parent_path(), fs::perms::all);
  const auto as_nobody = [](std::vector<std::string> args) {
    args.insert(args.begin(), {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534",
                               "--clear-groups", "--", LOCKABLE_CLI_PATH});
    return run_program(std::move(args));
  };
  const std::vector<std::string> lock_dut_1{
      "--resources", resources_.string(), "--lock-folder", locks_.string(), "--hostname",
      "rig",         "--requirements",    "id=dut-1",      "--timeout",     "1",
      "true"};
  const std::vector<std::string> folder{"--resources", resources_.string(), "--lock-folder",
                                        locks_.string()};
  const auto with_folder = [&](std::vector<std::string> args) {
    args.insert(args.end(), folder.begin(), folder.end());
    return args;
  };

  // root reserves dut-1: nobody waits in vain, told why, and may not lift it.
  ASSERT_EQ(run(with_folder({"reserve", "dut-1", "--reason", "bench repair"})).exit_code, 0);
  const auto kept_off = as_nobody(lock_dut_1);
  EXPECT_EQ(kept_off.exit_code, 6) << kept_off;
  EXPECT_NE(kept_off.err.find("reserved, \"bench repair\" (reserved by root@"), std::string::npos)
      << kept_off;
  const auto refused = as_nobody(with_folder({"unreserve", "dut-1"}));
  EXPECT_NE(refused.exit_code, 0) << refused;
  EXPECT_NE(refused.err.find("cannot remove " + (locks_ / "dut-1.reserved.json").string()),
            std::string::npos)
      << refused;
  EXPECT_NE(refused.err.find("only its owner (or root) may remove it"), std::string::npos)
      << refused;
  EXPECT_TRUE(reservation_holder_holds("dut-1")) << "a refused unreserve changed nothing";
  EXPECT_EQ(as_nobody(lock_dut_1).exit_code, 6);

  // root lifts its own reservation: nobody locks the device at once.
  ASSERT_EQ(run(with_folder({"unreserve", "dut-1"})).exit_code, 0);
  EXPECT_TRUE(eventually([&] { return !reservation_holder_holds("dut-1"); }));
  const auto after = as_nobody(lock_dut_1);
  EXPECT_EQ(after.exit_code, 0) << after;

  // nobody reserves dut-2: root's lockers honour it, and root may lift it.
  const auto by_nobody = as_nobody(with_folder({"reserve", "dut-2", "--reason", "night soak"}));
  ASSERT_EQ(by_nobody.exit_code, 0) << by_nobody;
  ASSERT_TRUE(reservation_holder_holds("dut-2"));
  const auto root_waits =
      run({"--resources", resources_.string(), "--lock-folder", locks_.string(), "--hostname",
           "rig", "--requirements", "id=dut-2", "--timeout", "1", "true"});
  EXPECT_EQ(root_waits.exit_code, 6) << root_waits;
  EXPECT_NE(root_waits.err.find("\"night soak\" (reserved by nobody@"), std::string::npos)
      << root_waits;
  ASSERT_EQ(run(with_folder({"unreserve", "dut-2"})).exit_code, 0);
  EXPECT_TRUE(eventually([&] { return !reservation_holder_holds("dut-2"); }))
      << "nobody's holder process did not let go after root's unreserve";
  EXPECT_EQ(run({"--resources", resources_.string(), "--lock-folder", locks_.string(), "--hostname",
                 "rig", "--requirements", "id=dut-2", "--timeout", "5", "true"})
                .exit_code,
            0);
}

TEST_F(ReserveTest, TheReservationHolderSurvivesTheTerminalAndComesBackAfterAReboot) {
  const long holder = reserve_then_reboot("dut-1");
  ASSERT_GT(holder, 0);
  ASSERT_FALSE(lockable::test::is_flocked(locks_ / "dut-1.pid"));
  const auto status = run({"status", "--resources", resources_.string(), "--lock-folder",
                           locks_.string(), "--hostname", "rig"});
  EXPECT_NE(status.out.find("no reservation holder process keeps the Python package off"),
            std::string::npos)
      << status;
  EXPECT_EQ(lock_and_run("0.5").exit_code, 6) << "our lockers still honour the file";
  // That run restarted the holder.
  ASSERT_TRUE(eventually([&] { return reservation_holder_holds("dut-1"); }));
  EXPECT_NE(reservation_holder_pid("dut-1"), holder);
  EXPECT_EQ(python_try("dut-1"), 3);
}

// The folder as an older version leaves it: reservations, no index. The first run reads the
// whole folder once, restarts the missing holder and makes the index.
TEST_F(ReserveTest, AFolderWithoutTheReservationIndexIsReadOnceAndIndexed) {
  const long holder = reserve_then_reboot("dut-1");
  ASSERT_GT(holder, 0);
  const fs::path index = locks_ / ".lockable-reserved";
  ASSERT_TRUE(fs::exists(index / "dut-1")) << "reserve lists the reservation";
  fs::remove_all(index);

  EXPECT_EQ(lock_and_run("0.5").exit_code, 6);
  ASSERT_TRUE(eventually([&] { return reservation_holder_holds("dut-1"); }));
  EXPECT_NE(reservation_holder_pid("dut-1"), holder);
  EXPECT_TRUE(fs::exists(index / "dut-1"));
  EXPECT_FALSE(fs::exists(index / "dut-2"));
}

// Once the index exists, a run reads it, not the lock folder (/tmp by default, thousands of
// entries): a reservation missing from the index (one an older version wrote) gets no holder from
// a run, but the next reserve or unreserve lists it; an entry without its file is dropped.
TEST_F(ReserveTest, ARunFindsReservationsThroughTheIndexOnly) {
  ASSERT_GT(reserve_then_reboot("dut-1"), 0);
  const fs::path index = locks_ / ".lockable-reserved";
  ASSERT_TRUE(fs::remove(index / "dut-1"));
  write_file(index / "dut-2", "");  // listed, but dut-2 has no reservation

  EXPECT_EQ(lock_and_run("0.5").exit_code, 6) << "the file keeps our lockers off all the same";
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_FALSE(reservation_holder_holds("dut-1"))
      << "the run read the whole folder, not only the index";
  EXPECT_FALSE(fs::exists(index / "dut-2")) << "a stale entry was kept";

  ASSERT_EQ(run(where({"reserve", "dut-2", "--reason", "new firmware"})).exit_code, 0);
  EXPECT_TRUE(fs::exists(index / "dut-1")) << "reserve lists every reservation of the folder";
  EXPECT_EQ(lock_and_run("0.5").exit_code, 6);
  EXPECT_TRUE(eventually([&] { return reservation_holder_holds("dut-1"); }));

  ASSERT_EQ(run(where({"unreserve", "dut-2"})).exit_code, 0);
  EXPECT_FALSE(fs::exists(index / "dut-2")) << "unreserve removes its entry";
}

// Another account may plant `.lockable-reserved -> elsewhere` in a lock folder everyone may
// write: nothing is then listed, created or removed there (the entry `victim` would read as the
// stale entry of an id without a reservation), and runs fall back to reading the folder.
TEST_F(ReserveTest, ASymlinkedReservationIndexIsNeverFollowed) {
  const fs::path elsewhere = dir_.path() / "elsewhere";
  fs::create_directories(elsewhere);
  write_file(elsewhere / "victim", "keep me");
  fs::create_directories(locks_);
  fs::create_directory_symlink(elsewhere, locks_ / ".lockable-reserved");

  const long holder = reserve_then_reboot("dut-1");
  ASSERT_GT(holder, 0);
  EXPECT_EQ(lock_and_run("0.5").exit_code, 6);
  EXPECT_TRUE(eventually([&] { return reservation_holder_holds("dut-1"); }))
      << "the run did not fall back to reading the folder";
  ASSERT_EQ(run(where({"unreserve", "dut-1"})).exit_code, 0);

  EXPECT_EQ(read_text(elsewhere / "victim"), "keep me");
  EXPECT_FALSE(fs::exists(elsewhere / "dut-1"));
  EXPECT_TRUE(fs::is_symlink(locks_ / ".lockable-reserved"));
}

TEST_F(ReserveTest, DrainLetsTheHolderFinishThenKeepsEveryoneOff) {
  const fs::path go = dir_.path() / "go";
  const fs::path ready = dir_.path() / "ready";
  lockable::test::ChildOptions options;
  options.drop_env_prefixes = {"LOCKABLE_"};
  options.in = lockable::test::Stream::null();
  options.out = lockable::test::Stream::file(dir_.path() / "holder.log");
  options.err = lockable::test::Stream::same_as_stdout();
  lockable::test::Child holder(
      {LOCKABLE_CLI_PATH, "--resources", resources_.string(), "--lock-folder", locks_.string(),
       "--hostname", "rig", "--requirements", "id=dut-1", "--no-shell", "--", "sh", "-c",
       "touch '" + ready.string() + "'; while [ ! -e '" + go.string() + "' ]; do sleep 0.05; done"},
      options);
  ASSERT_TRUE(eventually([&] { return fs::exists(ready); }));

  const auto drained = run(where({"drain", "dut-1", "--reason", "retire"}));
  ASSERT_EQ(drained.exit_code, 0) << drained;
  EXPECT_NE(drained.err.find("dut-1 is still held"), std::string::npos) << drained;
  EXPECT_FALSE(reservation_holder_holds("dut-1")) << "the holder keeps it";

  write_file(go, "");
  EXPECT_EQ(holder.wait(kGuard), 0) << read_text(dir_.path() / "holder.log");
  ASSERT_TRUE(eventually([&] { return reservation_holder_holds("dut-1"); }));
  EXPECT_EQ(python_try("dut-1"), 3);
  EXPECT_EQ(lock_and_run("0.5").exit_code, 6);
}

TEST_F(ReserveTest, ForcedReleaseOnALockFolderNamesTheHolderAndKillsOnlyWithKill) {
  const fs::path ready = dir_.path() / "ready";
  lockable::test::ChildOptions options;
  options.drop_env_prefixes = {"LOCKABLE_"};
  options.in = lockable::test::Stream::null();
  options.out = lockable::test::Stream::file(dir_.path() / "holder.log");
  options.err = lockable::test::Stream::same_as_stdout();
  lockable::test::Child holder(
      {LOCKABLE_CLI_PATH, "--resources", resources_.string(), "--lock-folder", locks_.string(),
       "--hostname", "rig", "--requirements", "id=dut-1", "--no-shell", "--", "sh", "-c",
       "touch '" + ready.string() + "'; exec sleep 600"},
      options);
  ASSERT_TRUE(eventually([&] { return fs::exists(ready); }));

  const auto named = run(where({"release", "dut-1", "--force", "--reason", "stuck"}));
  EXPECT_EQ(named.exit_code, 7) << named;
  EXPECT_NE(named.err.find("dut-1 is held by pid " + std::to_string(holder.pid())),
            std::string::npos)
      << named;
  EXPECT_NE(named.err.find("--kill"), std::string::npos) << named;
  EXPECT_TRUE(lockable::test::is_flocked(locks_ / "dut-1.pid")) << "nothing was done";

  const auto killed = run(where({"release", "dut-1", "--force", "--reason", "stuck since monday",
                                 "--kill", "--grace", "30"}));
  EXPECT_EQ(killed.exit_code, 0) << killed;
  EXPECT_NE(killed.err.find("sent SIGTERM to pid " + std::to_string(holder.pid())),
            std::string::npos)
      << killed;
  EXPECT_EQ(killed.err.find("SIGKILL"), std::string::npos) << "lockable ends on SIGTERM";
  holder.wait(kGuard);
  EXPECT_EQ(lock_and_run("5").exit_code, 0);
  const std::string log = read_text(metrics_);
  EXPECT_NE(log.find(R"("event":"forced","resource_id":"dut-1")"), std::string::npos) << log;
  EXPECT_NE(log.find(R"("reason":"stuck since monday")"), std::string::npos) << log;
  EXPECT_NE(log.find(R"("holder":"pid )" + std::to_string(holder.pid())), std::string::npos) << log;
}

TEST_F(ReserveTest, OverEtcdAReservationKeepsLockersOffAndStatusShowsIt) {
  if (!lockable::test::etcd_program()) GTEST_SKIP() << "no etcd on PATH";
  lockable::test::EtcdServer etcd;
  const std::string spec =
      "etcd://127.0.0.1:" + std::to_string(etcd.client_port()) + "/reserve-cli";
  const auto reserved = run(on(spec, {"reserve", "dut-1", "--reason", "new firmware"}));
  ASSERT_EQ(reserved.exit_code, 0) << reserved;
  const auto waiter = lock_and_run_on(spec, "1");
  EXPECT_EQ(waiter.exit_code, 6) << waiter;
  EXPECT_NE(waiter.err.find("reserved, \"new firmware\""), std::string::npos) << waiter;
  const auto status = run(
      {"status", "--resources", resources_.string(), "--lock-backend", spec, "--hostname", "rig"});
  EXPECT_NE(status.out.find("reserved \"new firmware\" (reserved by "), std::string::npos)
      << status;
  ASSERT_EQ(run(on(spec, {"unreserve", "dut-1"})).exit_code, 0);
  EXPECT_EQ(lock_and_run_on(spec, "10").exit_code, 0);
}

TEST_F(ReserveTest, OverTheLockServiceAHolderProcessKeepsTheNameUntilUnreserve) {
  lockable::test::LockService service(std::chrono::seconds(2), "svc-token");
  const std::string spec =
      "http://svc-token@" + service.base_url().substr(7) + "?prefix=lab-&lease=2&poll=0.1";
  const auto reserved = run(on(spec, {"reserve", "dut-1", "--reason", "cabling"}));
  ASSERT_EQ(reserved.exit_code, 0) << reserved;
  EXPECT_NE(reserved.err.find("cannot store the reason"), std::string::npos) << reserved;
  // The name outlives `lockable reserve`: its holder process heartbeats it (lease 2 s).
  std::this_thread::sleep_for(std::chrono::seconds(3));
  EXPECT_TRUE(service.held("lab-dut-1"));
  EXPECT_EQ(lock_and_run_on(spec, "1").exit_code, 6);

  const auto unreserved = run(on(spec, {"unreserve", "dut-1"}));
  ASSERT_EQ(unreserved.exit_code, 0) << unreserved;
  // The holder (reparented to this test, the subreaper) ends at its next heartbeat.
  EXPECT_TRUE(eventually([] { return ::waitpid(-1, nullptr, WNOHANG) > 0; }))
      << "the reservation holder process did not end";
  EXPECT_EQ(lock_and_run_on(spec, "10").exit_code, 0);
}

}  // namespace
