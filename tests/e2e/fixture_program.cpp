// A test program built with lockable::gtest and its own main() (calling lockable::gtest::init),
// run as a child by the end-to-end tests. Environment variables steer what its tests do:
//   E2E_REQUIREMENTS  requirements of HeldSuite (default: any device)
//   E2E_RELEASE_FILE  HeldSuite.HoldsTheDevice waits until this file exists
//   E2E_HOLD_MS       HeldSuite.HoldsTheDevice and ParallelSuite tests sleep this long
//   E2E_EXIT          ExitingSuite.ExitsMidSuite calls std::exit(3)
//   E2E_OWN_SIGTERM   main() installs its own SIGTERM handler (prints, exits with 7)
//   E2E_READ_WHILE_HOLDING  HeldSuite.HoldsTheDevice reads its allocation without pause while it
//                     holds (a signal's release then runs while the test uses the device)
#include <lockable/error.hpp>
#include <lockable/gtest.hpp>

#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>

namespace {

using lockable::gtest::LockableTest;

void hold() {
  if (const char* file = std::getenv("E2E_RELEASE_FILE")) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!std::filesystem::exists(file) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  if (const char* ms = std::getenv("E2E_HOLD_MS")) {
    std::this_thread::sleep_for(std::chrono::milliseconds(std::atoi(ms)));
  }
}

// The method form, so that each e2e test can choose the requirements.
class HeldSuite : public LockableTest<HeldSuite> {
 public:
  static std::string requirements() {
    const char* text = std::getenv("E2E_REQUIREMENTS");
    return text != nullptr ? text : "{}";
  }
};

TEST_F(HeldSuite, ReadsTheLockedDevice) {
  EXPECT_EQ(device().id(), allocation().resource_id());
  EXPECT_EQ(device()["id"], device().id());
  EXPECT_EQ(device_count(), 1u);
  EXPECT_TRUE(allocation().held());
}

TEST_F(HeldSuite, HoldsTheDevice) {
  if (std::getenv("E2E_READ_WHILE_HOLDING") != nullptr) {
    std::puts("READING");
    std::fflush(stdout);
    // What a test checks of its device, through a reference as tests keep one: whether it is
    // still ours, its token, how long it has been held.
    const lockable::Allocation& held = allocation();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      EXPECT_FALSE(held.lost());
      (void)held.fencing_token();
      EXPECT_GE(held.duration().count(), 0);
    }
  }
  hold();
  EXPECT_TRUE(allocation().held());
}

// Two devices at once, in the constant form.
class TwoDeviceSuite : public LockableTest<TwoDeviceSuite> {
 public:
  static constexpr std::array<const char*, 2> kRequirements = {R"({"kind": "a"})", "kind=b"};
};

TEST_F(TwoDeviceSuite, HoldsOneDevicePerRequirement) {
  ASSERT_EQ(device_count(), 2u);
  EXPECT_EQ(device(0)["kind"], "a");
  EXPECT_EQ(device(1)["kind"], "b");
  EXPECT_THROW(device(2), lockable::Error);
}

class ExitingSuite : public LockableTest<ExitingSuite> {
 public:
  static constexpr const char* kRequirements = "kind=a";
};

TEST_F(ExitingSuite, ExitsMidSuite) {
  ASSERT_TRUE(allocation().held());
  std::printf("ExitingSuite holds %s\n", device().id().c_str());
  std::fflush(stdout);
  if (std::getenv("E2E_EXIT") != nullptr) std::exit(3);
}

// Run under `ctest -j4`: every test is its own process and locks one of the kind "p" devices.
class ParallelSuite : public LockableTest<ParallelSuite> {
 public:
  static constexpr const char* kRequirements = R"({"kind": "p"})";
};

TEST_F(ParallelSuite, T1) { hold(); }
TEST_F(ParallelSuite, T2) { hold(); }
TEST_F(ParallelSuite, T3) { hold(); }
TEST_F(ParallelSuite, T4) { hold(); }
TEST_F(ParallelSuite, T5) { hold(); }
TEST_F(ParallelSuite, T6) { hold(); }
TEST_F(ParallelSuite, T7) { hold(); }
TEST_F(ParallelSuite, T8) { hold(); }

TEST(GlobalDeviceTest, ReadsTheGlobalDevice) {
  if (!lockable::gtest::has_global_device()) GTEST_SKIP() << "no --lockable_requirements";
  EXPECT_FALSE(lockable::gtest::global_device().str("kind").empty());
}

}  // namespace

// Built a second time with E2E_NO_MAIN and GTest::gtest_main: suites then configure themselves
// from LOCKABLE_* variables, without init().
#ifndef E2E_NO_MAIN
extern "C" void own_sigterm_handler(int) {
  static const char text[] = "own SIGTERM handler\n";
  [[maybe_unused]] const auto written = ::write(STDOUT_FILENO, text, sizeof text - 1);
  ::_exit(7);
}

int main(int argc, char** argv) {
  if (std::getenv("E2E_OWN_SIGTERM") != nullptr) ::signal(SIGTERM, own_sigterm_handler);
  testing::InitGoogleTest(&argc, argv);
  try {
    lockable::gtest::init(&argc, argv);
  } catch (const lockable::Error& e) {
    std::fprintf(stderr, "own main: %s\n", e.what());
    return 2;
  }
  // init() must have removed every --lockable_* argument (both forms).
  if (argc != 1) {
    std::fprintf(stderr, "own main: argument left over: %s\n", argv[1]);
    return 4;
  }
  return RUN_ALL_TESTS();
}
#endif
