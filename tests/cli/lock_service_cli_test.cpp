// The `lockable` binary with HTTP: --lock-name against a fake Lockable.dev service, resources
// from a URL, devices locked through the lock service, and credentials that never show. Every
// server runs on 127.0.0.1 in this process; every child is reaped by RAII.

#include <gtest/gtest.h>

#include <signal.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "lockable/test/child.hpp"
#include "lockable/test/files.hpp"
#include "lockable/test/lock_service.hpp"

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using lockable::test::Child;
using lockable::test::ChildOptions;
using lockable::test::HttpServer;
using lockable::test::LockService;
using lockable::test::RunResult;
using lockable::test::TempDir;

constexpr int kTimeout = 6;
constexpr int kBackendError = 7;
constexpr int kResourcesInvalid = 3;
constexpr int kLockLost = 9;
const std::string kToken = "tok-s3cret-4e1d";

ChildOptions options_with(const std::map<std::string, std::string>& env) {
  ChildOptions options;
  options.env = env;
  options.drop_env_prefixes = {"LOCKABLE_"};
  options.in = lockable::test::Stream::null();
  options.out = lockable::test::Stream::pipe();
  options.err = lockable::test::Stream::same_as_stdout();
  return options;
}

std::vector<std::string> argv_of(std::vector<std::string> args) {
  args.insert(args.begin(), {LOCKABLE_CLI_PATH, "--no-shell"});
  return args;
}

class LockServiceCli : public ::testing::Test {
 protected:
  LockService service_{2000ms, kToken};
  TempDir dir_;
  fs::path ready_ = dir_.path() / "ready";

  std::map<std::string, std::string> env(const std::string& token = kToken) const {
    return {{"LOCKABLE_SERVICE_URL", service_.base_url()},
            {"LOCKABLE_AUTH_TOKEN", token},
            {"LOCKABLE_SERVICE_LEASE", "2"},
            {"LOCKABLE_STOP_GRACE", "0.5"},
            {"READY", ready_.string()}};
  }

  RunResult run(std::vector<std::string> args, const std::string& token = kToken) {
    return lockable::test::run(argv_of(std::move(args)), options_with(env(token)), 60s);
  }

  bool wait_ready() {
    const auto end = std::chrono::steady_clock::now() + 30s;
    while (!fs::exists(ready_)) {
      if (std::chrono::steady_clock::now() > end) return false;
      std::this_thread::sleep_for(10ms);
    }
    return true;
  }
};

TEST_F(LockServiceCli, RunsTheCommandHoldingTheNamedLockAndPassesItsStatus) {
  const auto result = run({"--lock-name", "rig 1", "--", "sh", "-c", "exit 3"});
  EXPECT_EQ(result.exit_code, 3) << result;
  EXPECT_EQ(service_.count("acquire"), 1);
  EXPECT_EQ(service_.count("release"), 1);
  EXPECT_FALSE(service_.held("rig 1"));
  EXPECT_NE(result.output().find("locked \"rig 1\""), std::string::npos) << result;
}

TEST_F(LockServiceCli, ASecondCommandWaitsForTheNameAndTimesOut) {
  Child holder(
      argv_of({"--lock-name", "rig", "--", "sh", "-c", "touch \"$READY\"; exec sleep 600"}),
      options_with(env()));
  ASSERT_TRUE(wait_ready()) << holder.output();
  const auto second = run({"--lock-name", "rig", "--timeout", "0.5", "--", "true"});
  EXPECT_EQ(second.exit_code, kTimeout) << second;
  EXPECT_NE(second.output().find("\"rig\""), std::string::npos) << second;
  holder.send_signal(SIGTERM);
  holder.wait(30s);
  EXPECT_FALSE(service_.held("rig")) << "released after the command ended";
}

TEST_F(LockServiceCli, KeepsTheLockPastTheLeaseWhileTheCommandRuns) {
  const auto result = run({"--lock-name", "long", "--", "sh", "-c", "sleep 4.5"});
  EXPECT_EQ(result.exit_code, 0) << result;
  EXPECT_GE(service_.count("heartbeat"), 3);
}

TEST_F(LockServiceCli, ALostLockStopsTheCommandAndExits9) {
  // The command ignores SIGTERM: SIGKILL follows after the grace period.
  Child holder(argv_of({"--lock-name", "rig", "--", "sh", "-c",
                        "trap '' TERM; touch \"$READY\"; sleep 600"}),
               options_with(env()));
  ASSERT_TRUE(wait_ready()) << holder.output();
  const int releases = service_.count("release");
  ASSERT_TRUE(service_.revoke("rig"));
  const int code = holder.wait(30s);
  holder.read_to_end(std::chrono::steady_clock::now() + 5s);
  EXPECT_EQ(code, kLockLost) << holder.output();
  EXPECT_NE(holder.output().find("lost"), std::string::npos) << holder.output();
  EXPECT_EQ(service_.count("release"), releases) << "a lost lock was released";
}

TEST_F(LockServiceCli, AWrongTokenIsAClearErrorThatNeverShowsTheToken) {
  const auto result = run({"--lock-name", "rig", "--", "true"}, "wrong-s3cret-token");
  EXPECT_EQ(result.exit_code, kBackendError) << result;
  EXPECT_NE(result.output().find("401"), std::string::npos) << result;
  EXPECT_NE(result.output().find("LOCKABLE_AUTH_TOKEN"), std::string::npos) << result;
  EXPECT_EQ(result.output().find("wrong-s3cret-token"), std::string::npos) << result;
}

TEST_F(LockServiceCli, DeviceOptionsWithLockNameAreAUsageError) {
  const auto result = run({"--lock-name", "rig", "--requirements", "os=Android", "--", "true"});
  EXPECT_EQ(result.exit_code, 2) << result;
  EXPECT_NE(result.output().find("--requirements does not apply to --lock-name"), std::string::npos)
      << result;
  EXPECT_EQ(service_.server().requests(), 0);
}

TEST_F(LockServiceCli, AMissingTokenFailsBeforeAnyRequest) {
  const auto result = run({"--lock-name", "rig", "--", "true"}, "");
  EXPECT_NE(result.exit_code, 0) << result;
  EXPECT_NE(result.output().find("LOCKABLE_AUTH_TOKEN"), std::string::npos) << result;
  EXPECT_EQ(service_.server().requests(), 0);
}

// Devices through the lock service, resources from a URL: the CLI works unchanged.
class HttpCli : public LockServiceCli {
 protected:
  HttpServer inventory_{[](httplib::Server& server) {
    server.Get("/lab.json", [](const httplib::Request&, httplib::Response& response) {
      response.set_content(
          R"([{"id": "dut-a", "online": true, "hostname": "localhost", "os": "Android"}])",
          "application/json");
    });
  }};

  std::string resources_url(const std::string& path = "/lab.json") const {
    return "http://inv:pw-s3cret@127.0.0.1:" + std::to_string(inventory_.port()) + path;
  }
  std::string backend_spec() const {
    return "http://" + kToken + "@" + service_.base_url().substr(7) + "?prefix=lab-&lease=2";
  }
  std::vector<std::string> base(std::vector<std::string> more) const {
    std::vector<std::string> args{"--resources",  resources_url(), "--lock-backend",
                                  backend_spec(), "--hostname",    "localhost"};
    args.insert(args.end(), more.begin(), more.end());
    return args;
  }
};

TEST_F(HttpCli, LocksADeviceFromAUrlThroughTheLockService) {
  const auto result = run(base({"--", "sh", "-c", "test \"$ID\" = dut-a"}));
  EXPECT_EQ(result.exit_code, 0) << result;
  EXPECT_EQ(service_.count("acquire"), 1);
  EXPECT_EQ(service_.count("release"), 1);
  const auto valid = run({"--resources", resources_url(), "--validate-only"});
  EXPECT_EQ(valid.exit_code, 0) << valid;
  EXPECT_NE(valid.output().find("1 resource, valid"), std::string::npos) << valid;
}

TEST_F(HttpCli, ALostDeviceStopsTheCommandAndExits9) {
  Child holder(argv_of(base({"--", "sh", "-c", "touch \"$READY\"; exec sleep 600"})),
               options_with(env()));
  ASSERT_TRUE(wait_ready()) << holder.output();
  ASSERT_TRUE(service_.revoke("lab-dut-a"));
  const int code = holder.wait(30s);
  holder.read_to_end(std::chrono::steady_clock::now() + 5s);
  EXPECT_EQ(code, kLockLost) << holder.output();
  EXPECT_NE(holder.output().find("dut-a"), std::string::npos) << holder.output();
}

TEST_F(HttpCli, AnHttpRunLoadsLibcurl) {
  // libcurl is dlopen()ed on first use (a lock folder run never loads it: cli_test): here it
  // must be there, the same check as cli_test's seeing it.
  Child holder(argv_of(base({"--", "sh", "-c", "touch \"$READY\"; exec sleep 600"})),
               options_with(env()));
  ASSERT_TRUE(wait_ready()) << holder.output();
  const std::string maps =
      lockable::test::read_text("/proc/" + std::to_string(holder.pid()) + "/maps");
  EXPECT_NE(maps.find("/libcurl.so.4"), std::string::npos);
  holder.send_signal(SIGTERM);
  EXPECT_EQ(holder.wait(30s), 128 + SIGTERM) << holder.output();
}

TEST_F(HttpCli, CredentialsNeverAppearInAnyOutput) {
  std::vector<RunResult> results;
  results.push_back(run({"--resources", resources_url("/missing.json"), "--validate-only"}));
  results.push_back(run(base({"--", "true"})));  // success: locked/released lines
  results.push_back(run({"--resources", resources_url("/missing.json"), "--", "true"}));
  results.push_back(run({"--resources", resources_url(), "--hostname", "localhost",
                         "--lock-backend", backend_spec() + "&colour=red", "--", "true"}));
  results.push_back(run({"--lock-name", "x", "--", "true"}, kToken + "-wrong"));
  results.push_back(run({"--help"}));
  for (const auto& result : results) {
    for (const std::string& secret : {kToken, std::string("pw-s3cret")}) {
      EXPECT_EQ(result.output().find(secret), std::string::npos) << result;
    }
  }
  EXPECT_EQ(results[0].exit_code, 1) << results[0];
  EXPECT_NE(results[0].output().find("404"), std::string::npos) << results[0];
  EXPECT_EQ(results[2].exit_code, kResourcesInvalid) << results[2];
  EXPECT_NE(results[2].output().find("127.0.0.1"), std::string::npos) << results[2];
}

}  // namespace
