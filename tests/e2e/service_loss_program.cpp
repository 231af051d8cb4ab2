// A GoogleTest program without lockable configuration in its code (lockable::gtest_main): run by
// service_e2e_test with resources from a URL and devices locked through a lock service, given by
// the usual variables. Its first test waits while the test rig revokes its device on the service.
#include <lockable/gtest/lockable_test.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>

namespace {

class LosingSuite : public lockable::gtest::LockableTest<LosingSuite> {
 public:
  static constexpr const char* kRequirements = R"({"kind": "lose"})";
};

TEST_F(LosingSuite, A_LosesItsDevice) {
  // Tells the rig which device to revoke, then waits for the loss (the rig's guard bounds it).
  // Written aside and renamed: the rig reads it as soon as the name appears.
  const std::string ready = std::getenv("E2E_READY");
  std::ofstream(ready + ".tmp") << allocation().resource_id();
  std::rename((ready + ".tmp").c_str(), ready.c_str());
  for (int i = 0; i < 6000 && !allocation().lost(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(allocation().lost());
}

TEST_F(LosingSuite, B_MustNotRunAfterTheLoss) { std::puts("B_BODY_RAN"); }

class KeepingSuite : public lockable::gtest::LockableTest<KeepingSuite> {
 public:
  static constexpr const char* kRequirements = R"({"kind": "keep"})";
};

TEST_F(KeepingSuite, KeepsItsDevice) { EXPECT_FALSE(allocation().lost()); }

}  // namespace
