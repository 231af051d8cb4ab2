// A suite with a LockableTest fixture, registered with lockable_discover_tests(): each test runs
// in its own ctest process and locks an Android phone of sample_resources/resources.json.
#include <lockable/gtest.hpp>

#include <gtest/gtest.h>

#include <string>

class ConsumerPhoneTest : public lockable::gtest::LockableTest<ConsumerPhoneTest> {
 public:
  static constexpr const char* kRequirements = R"({"os": "Android"})";
};

TEST_F(ConsumerPhoneTest, HoldsAnAndroidPhone) { EXPECT_EQ(device()["os"], "Android"); }

TEST_F(ConsumerPhoneTest, SeesItsSerial) { EXPECT_FALSE(device().str("serial").empty()); }
