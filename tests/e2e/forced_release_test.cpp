// `lockable release ID --force` on the lease backends, end to end: a GoogleTest program built
// with lockable::gtest_main holds a device through etcd (or the lock service); the operator's
// CLI takes it back; the program's running test fails with its loss reason, and the next holder
// gets a larger fencing token (etcd). Real processes, a real etcd and a fake service on 127.0.0.1.
#include "report_reader.hpp"

#include <lockable/etcd.hpp>
#include <lockable/lockable.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <string>
#include <thread>

#include "lockable/test/child.hpp"
#include "lockable/test/etcd_server.hpp"
#include "lockable/test/files.hpp"
#include "lockable/test/lock_service.hpp"

namespace lockable::e2e {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class ForcedReleaseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    test::write_file(resources_, R"([
      {"id": "lose-1", "online": true, "hostname": "e2e-host", "kind": "lose"},
      {"id": "keep-1", "online": true, "hostname": "e2e-host", "kind": "keep"}])");
  }

  // Starts the program holding lose-1 through `backend`, and waits until its test runs.
  std::unique_ptr<test::Child> start_holder(const std::string& backend) {
    test::ChildOptions options;
    options.env = {{"LOCKABLE_RESOURCES", resources_.string()},
                   {"LOCKABLE_LOCK_BACKEND", backend},
                   {"LOCKABLE_HOSTNAME", "e2e-host"},
                   {"E2E_READY", ready_.string()}};
    options.drop_env_prefixes = {"LOCKABLE_", "GTEST_"};
    options.in = test::Stream::null();
    options.out = test::Stream::file(dir_.path() / "program.txt");
    options.err = test::Stream::same_as_stdout();
    auto program = std::make_unique<test::Child>(
        std::vector<std::string>{SERVICE_LOSS_PROGRAM, "--gtest_output=xml:" + xml_.string()},
        options);
    const auto end = std::chrono::steady_clock::now() + 60s;
    while (!fs::exists(ready_) && std::chrono::steady_clock::now() < end) {
      std::this_thread::sleep_for(10ms);
    }
    return program;
  }

  test::RunResult force_release(const std::string& backend) {
    test::ChildOptions options;
    options.drop_env_prefixes = {"LOCKABLE_"};
    options.in = test::Stream::null();
    options.out = test::Stream::pipe();
    options.err = test::Stream::pipe();
    return test::run(
        {LOCKABLE_CLI, "release", "lose-1", "--force", "--reason", "rig stuck", "--lock-backend",
         backend, "--resources", resources_.string(), "--metrics-file", metrics_.string()},
        options, 60s);
  }

  // The program's exit code and output once the loss ended its suite.
  std::string check_the_holder_failed(test::Child& program) {
    const int code = program.wait(60s);
    const std::string output = test::read_text(dir_.path() / "program.txt");
    EXPECT_EQ(code, 1) << output;
    EXPECT_EQ(output.find("B_BODY_RAN"), std::string::npos) << output;
    EXPECT_NE(output.find("lost device lose-1"), std::string::npos) << output;
    const auto report = read_xml_report(xml_);
    const auto& losing = report.suite("LosingSuite");
    EXPECT_FALSE(losing.tests.empty());
    for (const auto& test : losing.tests) EXPECT_TRUE(test.failed) << test.name;
    EXPECT_NE(losing.get("lockable_lost").find("lose-1"), std::string::npos);
    EXPECT_FALSE(report.suite("KeepingSuite").tests.front().failed);
    const std::string log = test::read_text(metrics_);
    EXPECT_NE(log.find(R"("event":"forced","resource_id":"lose-1")"), std::string::npos) << log;
    EXPECT_NE(log.find(R"("reason":"rig stuck")"), std::string::npos) << log;
    return losing.get("lockable_fencing_token");
  }

  test::TempDir dir_;
  fs::path resources_ = dir_.path() / "resources.json";
  fs::path ready_ = dir_.path() / "ready";
  fs::path xml_ = dir_.path() / "program.xml";
  fs::path metrics_ = dir_.path() / "metrics.jsonl";
};

TEST_F(ForcedReleaseTest, OverEtcdTheHolderFailsWithItsLossAndTheNextTokenIsLarger) {
  if (!test::etcd_program()) GTEST_SKIP() << "no etcd on PATH (apt-get install etcd-server)";
  test::EtcdServer etcd;
  const std::string spec =
      "etcd://127.0.0.1:" + std::to_string(etcd.client_port()) + "/forced?ttl=2";
  auto program = start_holder(spec);
  ASSERT_TRUE(fs::exists(ready_)) << test::read_text(dir_.path() / "program.txt");

  const auto released = force_release(spec);
  EXPECT_EQ(released.exit_code, 0) << released;
  EXPECT_NE(released.err.find("took lose-1 from pid " + std::to_string(program->pid())),
            std::string::npos)
      << released;

  const std::string old_token = check_the_holder_failed(*program);
  // The holder is told who took the device and why, not only that its lease is gone.
  EXPECT_NE(test::read_text(dir_.path() / "program.txt")
                .find("an operator took lose-1 (lockable release --force): rig stuck"),
            std::string::npos)
      << test::read_text(dir_.path() / "program.txt");
  ASSERT_FALSE(old_token.empty()) << "the holder's report has its fencing token";

  EtcdOptions options;
  options.endpoints = {etcd.endpoint()};
  options.prefix = "/forced";
  auto backend = make_etcd_backend(options);
  Resource resource;
  resource.id = "lose-1";
  auto next = backend->try_lock(resource, HolderInfo{});
  ASSERT_NE(next, nullptr) << "the device is free again";
  ASSERT_TRUE(next->fencing_token().has_value());
  EXPECT_GT(*next->fencing_token(), std::stoull(old_token));
}

TEST_F(ForcedReleaseTest, OverTheLockServiceTheHolderFailsWithItsLoss) {
  test::LockService service(2000ms, "e2e-token");
  const std::string spec =
      "http://e2e-token@" + service.base_url().substr(7) + "?prefix=e2e-&lease=2";
  auto program = start_holder(spec);
  ASSERT_TRUE(fs::exists(ready_)) << test::read_text(dir_.path() / "program.txt");
  ASSERT_TRUE(service.held("e2e-lose-1"));

  const auto released = force_release(spec);
  EXPECT_EQ(released.exit_code, 0) << released;
  EXPECT_NE(released.err.find("took lose-1 from"), std::string::npos) << released;

  check_the_holder_failed(*program);
  EXPECT_FALSE(service.held("e2e-lose-1")) << "the lost holder did not take it again";
}

}  // namespace
}  // namespace lockable::e2e
