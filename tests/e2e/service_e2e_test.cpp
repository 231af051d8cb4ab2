// The GoogleTest plugin over HTTP: resources from a URL and devices locked through a fake
// Lockable.dev service on 127.0.0.1, configured only by the LOCKABLE_* variables. A device
// revoked on the service mid-suite fails the running test (lockable_lost recorded); a wrong
// token fails the program without its token or URL credentials in any output or report.
#include "report_reader.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include "lockable/test/child.hpp"
#include "lockable/test/files.hpp"
#include "lockable/test/lock_service.hpp"

namespace lockable::e2e {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

const std::string kToken = "e2e-tok-s3cret";
const std::string kInventoryPassword = "inv-pw-s3cret";

class ServiceE2eTest : public ::testing::Test {
 protected:
  test::LockService service_{2000ms, kToken};
  test::HttpServer inventory_{[](httplib::Server& server) {
    server.Get("/lab.json", [](const httplib::Request& request, httplib::Response& response) {
      if (request.get_header_value("Authorization").empty()) {
        response.status = 401;
        return;
      }
      response.set_content(R"([
        {"id": "lose-1", "online": true, "hostname": "e2e-host", "kind": "lose"},
        {"id": "keep-1", "online": true, "hostname": "e2e-host", "kind": "keep"}])",
                           "application/json");
    });
  }};
  test::TempDir dir_;

  std::map<std::string, std::string> env(const std::string& token) const {
    const std::string inventory = "http://inv:" + kInventoryPassword +
                                  "@127.0.0.1:" + std::to_string(inventory_.port()) + "/lab.json";
    return {{"LOCKABLE_RESOURCES", inventory},
            {"LOCKABLE_LOCK_BACKEND",
             "http://" + token + "@" + service_.base_url().substr(7) + "?prefix=e2e-&lease=2"},
            {"LOCKABLE_HOSTNAME", "e2e-host"},
            {"E2E_READY", (dir_.path() / "ready").string()}};
  }

  test::ChildOptions options(const std::string& token, const std::string& name) const {
    test::ChildOptions options;
    options.env = env(token);
    options.drop_env_prefixes = {"LOCKABLE_", "GTEST_"};
    options.in = test::Stream::null();
    options.out = test::Stream::file(dir_.path() / (name + ".txt"));
    options.err = test::Stream::same_as_stdout();
    return options;
  }

  fs::path xml(const std::string& name) const { return dir_.path() / (name + ".xml"); }
};

TEST_F(ServiceE2eTest, ADeviceRevokedOnTheServiceFailsTheRunningTestAndIsRecorded) {
  test::Child program({SERVICE_LOSS_PROGRAM, "--gtest_output=xml:" + xml("loss").string()},
                      options(kToken, "loss"));
  const fs::path ready = dir_.path() / "ready";
  const auto end = std::chrono::steady_clock::now() + 60s;
  while (!fs::exists(ready) && std::chrono::steady_clock::now() < end) {
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_TRUE(fs::exists(ready)) << program.output();
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(test::read_text(ready), "lose-1");
  ASSERT_TRUE(service_.revoke("e2e-lose-1"));
  const int code = program.wait(60s);
  const std::string output = test::read_text(dir_.path() / "loss.txt");
  EXPECT_EQ(code, 1) << output;
  EXPECT_EQ(output.find("B_BODY_RAN"), std::string::npos) << output;
  EXPECT_NE(output.find("lost device lose-1"), std::string::npos) << output;

  const auto report = read_xml_report(xml("loss"));
  const auto& losing = report.suite("LosingSuite");
  ASSERT_EQ(losing.tests.size(), 2u);
  for (const auto& test : losing.tests) EXPECT_TRUE(test.failed) << test.name;
  EXPECT_NE(losing.get("lockable_lost").find("lose-1"), std::string::npos);
  const auto& keeping = report.suite("KeepingSuite");
  ASSERT_EQ(keeping.tests.size(), 1u);
  EXPECT_FALSE(keeping.tests.front().failed) << keeping.tests.front().message;
  EXPECT_FALSE(service_.held("e2e-keep-1")) << "released at the end";
  EXPECT_EQ(output.find(kToken), std::string::npos) << output;
  EXPECT_EQ(output.find(kInventoryPassword), std::string::npos) << output;
}

// The same program on the local lock folder: a lock file removed under its holder (a temp
// cleaner) is a lost device too, reported by the held-file checker (lock_folder/held_files.hpp).
TEST(LockFolderLossE2eTest, ALockFileRemovedUnderItsHolderFailsTheRunningTestAndIsRecorded) {
  test::TempDir dir;
  const fs::path locks = dir.path() / "locks";
  const fs::path ready = dir.path() / "ready";
  test::write_file(dir.path() / "resources.json", R"([
    {"id": "lose-1", "online": true, "hostname": "e2e-host", "kind": "lose"},
    {"id": "keep-1", "online": true, "hostname": "e2e-host", "kind": "keep"}])");
  test::ChildOptions options;
  options.env = {{"LOCKABLE_RESOURCES", (dir.path() / "resources.json").string()},
                 {"LOCKABLE_LOCK_FOLDER", locks.string()},
                 {"LOCKABLE_HOSTNAME", "e2e-host"},
                 {"E2E_READY", ready.string()}};
  options.drop_env_prefixes = {"LOCKABLE_", "GTEST_"};
  options.in = test::Stream::null();
  options.out = test::Stream::file(dir.path() / "loss.txt");
  options.err = test::Stream::same_as_stdout();
  const fs::path xml = dir.path() / "loss.xml";
  test::Child program({SERVICE_LOSS_PROGRAM, "--gtest_output=xml:" + xml.string()}, options);
  const auto end = std::chrono::steady_clock::now() + 60s;
  while (!fs::exists(ready) && std::chrono::steady_clock::now() < end) {
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_TRUE(fs::exists(ready)) << program.output();
  std::this_thread::sleep_for(50ms);
  ASSERT_EQ(test::read_text(ready), "lose-1");
  fs::remove(locks / "lose-1.pid");
  const int code = program.wait(60s);
  const std::string output = test::read_text(dir.path() / "loss.txt");
  EXPECT_EQ(code, 1) << output;
  EXPECT_EQ(output.find("B_BODY_RAN"), std::string::npos) << output;
  EXPECT_NE(output.find("lost device lose-1"), std::string::npos) << output;

  const auto report = read_xml_report(xml);
  const auto& losing = report.suite("LosingSuite");
  ASSERT_EQ(losing.tests.size(), 2u);
  for (const auto& test : losing.tests) EXPECT_TRUE(test.failed) << test.name;
  EXPECT_NE(losing.get("lockable_lost").find("lose-1.pid of lose-1 was removed or replaced"),
            std::string::npos)
      << losing.get("lockable_lost");
  const auto& keeping = report.suite("KeepingSuite");
  ASSERT_EQ(keeping.tests.size(), 1u);
  EXPECT_FALSE(keeping.tests.front().failed) << keeping.tests.front().message;
  EXPECT_FALSE(fs::exists(locks / "lose-1.pid.lost")) << "the holder removes its note";
}

TEST_F(ServiceE2eTest, AWrongTokenFailsTheProgramAndNoOutputOrReportShowsACredential) {
  test::Child program({SERVICE_LOSS_PROGRAM, "--gtest_output=xml:" + xml("token").string()},
                      options(kToken + "-wrong", "token"));
  const int code = program.wait(60s);
  const std::string output = test::read_text(dir_.path() / "token.txt");
  EXPECT_NE(code, 0) << output;
  EXPECT_NE(output.find("401"), std::string::npos) << output;
  ASSERT_TRUE(fs::exists(xml("token"))) << output;
  const std::string report = test::read_text(xml("token"));
  EXPECT_NE(report.find("401"), std::string::npos) << report;
  for (const std::string& secret : {kToken, kInventoryPassword}) {
    EXPECT_EQ(output.find(secret), std::string::npos) << output;
    EXPECT_EQ(report.find(secret), std::string::npos) << report;
  }
}

}  // namespace
}  // namespace lockable::e2e
