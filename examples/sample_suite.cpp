// A sample GoogleTest program using lockable: each suite states what device it needs, gets one
// locked for its whole run, and reads the device's attributes. Run it against the sample rig:
//
//   cmake --build build --target run_sample
//
// or by hand:
//
//   build/examples/sample_suite --lockable_resources=sample_resources/resources.json
//       --lockable_hostname=localhost --gtest_output=xml:build/sample_report.xml
//   (one line; LOCKABLE_RESOURCES and LOCKABLE_HOSTNAME work as well)
//
// The report's <testsuite> elements then carry lockable_resource_id, lockable_alloc_id,
// lockable_requirements, lockable_allocation_queue_time, lockable_allocation_start_time and
// lockable_allocation_duration, and each <testcase> the same but the duration as <property>
// elements. With --lockable_hostname=nohost no device matches: every test fails with the reason.
#include <lockable/gtest.hpp>

#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <string>

namespace {

using lockable::gtest::LockableTest;

// Any online Android phone attached to this host.
class AndroidPhoneTest : public LockableTest<AndroidPhoneTest> {
 public:
  static constexpr const char* kRequirements = R"({"os": "Android"})";
};

TEST_F(AndroidPhoneTest, RunsOnAnAndroidPhone) {
  EXPECT_EQ(device()["os"], "Android");
  EXPECT_EQ(device()["type"], "phone");
}

TEST_F(AndroidPhoneTest, KnowsWhichSerialToTalkTo) {
  const std::string serial = device().str("serial");
  ASSERT_FALSE(serial.empty());
  // A real suite would run adb here; the sample only shows the command.
  std::printf("would run: adb -s %s shell getprop ro.build.version.release\n", serial.c_str());
  EXPECT_TRUE(device().has("usb.port"));
}

// A board of revision 2 or later, with a MongoDB-style operator on a nested attribute.
class BoardTest : public LockableTest<BoardTest> {
 public:
  static lockable::Requirements requirements() {
    return lockable::Requirements::parse(R"({"type": "board", "board.rev": {"$gte": 2}})");
  }
};

TEST_F(BoardTest, IsRevisionTwoOrLater) { EXPECT_GE(device()["board.rev"].get<int>(), 2); }

TEST_F(BoardTest, HasASerialPort) {
  EXPECT_EQ(device().str("serial_port").rfind("/dev/tty", 0), 0u) << device().str("serial_port");
}

// Two devices at once, all or nothing: a phone and the power switch that can power-cycle it.
class PhoneWithPowerSwitchTest : public LockableTest<PhoneWithPowerSwitchTest> {
 public:
  static constexpr std::array<const char*, 2> kRequirements = {R"({"os": "Android"})",
                                                               "type=power_switch"};
};

TEST_F(PhoneWithPowerSwitchTest, HoldsBothDevices) {
  ASSERT_EQ(device_count(), 2u);
  EXPECT_EQ(device(0)["os"], "Android");
  EXPECT_EQ(device(1)["type"], "power_switch");
  EXPECT_NE(device(0).id(), device(1).id());
}

TEST_F(PhoneWithPowerSwitchTest, CanPowerCycleThePhone) {
  EXPECT_GT(device(1)["outlets"].get<int>(), 0);
  std::printf("would power-cycle %s through %s at %s\n", device(0).id().c_str(),
              device(1).id().c_str(), device(1).str("address").c_str());
}

}  // namespace
