// The Device view tests use to read a locked device's attributes.
#include <lockable/error.hpp>
#include <lockable/gtest/device.hpp>

#include <gtest/gtest.h>

namespace lockable::gtest {
namespace {

Allocation make_allocation() {
  Resource resource{"pixel-7-01", Json::parse(R"({"id": "pixel-7-01", "os": "Android",
      "version": "14", "usb": {"hub": 1, "port": 2}, "a.b": "literal"})")};
  return Allocation(Json::parse(R"({"os":"Android"})"), resource, "alloc-1",
                    Allocation::Duration::zero(), nullptr);
}

TEST(DeviceTest, ReadsTopLevelAndDottedAttributes) {
  const Allocation allocation = make_allocation();
  const Device device(allocation);
  EXPECT_EQ(device.id(), "pixel-7-01");
  EXPECT_EQ(device["os"], "Android");
  EXPECT_EQ(device["usb.port"], 2);
  EXPECT_EQ(device["a.b"], "literal");
  EXPECT_EQ(device.str("version"), "14");
  EXPECT_EQ(device.str("usb"), R"({"hub":1,"port":2})");
  EXPECT_TRUE(device.has("usb.hub"));
  EXPECT_FALSE(device.has("usb.speed"));
  EXPECT_EQ(&device.allocation(), &allocation);
}

TEST(DeviceTest, MissingAttributeThrowsNamingDeviceKeyAndAttributes) {
  const Allocation allocation = make_allocation();
  const Device device(allocation);
  try {
    (void)device["serial"];
    FAIL() << "no exception";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("device pixel-7-01 has no attribute \"serial\""), std::string::npos)
        << message;
    EXPECT_NE(message.find("its attributes are: a.b, id, os, usb, version"), std::string::npos)
        << message;
  }
}

}  // namespace
}  // namespace lockable::gtest
