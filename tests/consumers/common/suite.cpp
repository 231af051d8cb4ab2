// An ordinary GoogleTest program with no lockable code: linking lockable::gtest_main and passing
// --lockable_requirements is all it takes to hold a device for the whole run.
#include <gtest/gtest.h>

#include <cstdlib>
#include <iostream>

TEST(ConsumerSuite, RunsWhileTheDeviceIsHeld) {
  const char* id = std::getenv("LOCKABLE_RESOURCE_ID");
  std::cout << "device " << (id ? id : "(none in env)") << "\n";
  SUCCEED();
}
