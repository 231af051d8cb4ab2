#pragma once

#include <lockable/gtest/device.hpp>
#include <lockable/requirements.hpp>

#include <gtest/gtest.h>

#include <string>

namespace lockable::gtest {

/// Locks one device for the whole test program (for rigs where every test uses the same device):
/// locks in `SetUp()`, before the first suite, and releases in `TearDown()`, after the last. The
/// allocation is recorded as `lockable_*` properties on the report's top-level `<testsuites>`
/// element, and as `lockable_global_*` (but the duration) on each test. When no device can be
/// had, `lockable_error` is recorded there and every test fails (or is skipped, with
/// `on_unavailable=skip`) with the reason as its message, at its TEST/TEST_F, without running.
///
/// `init()` and `lockable::gtest_main` register it when requirements are configured; register it
/// yourself only if you want a device without the `--lockable_requirements` flag:
///
///     testing::AddGlobalTestEnvironment(new GlobalDeviceEnvironment(R"({"os":"Android"})"));
///
/// Construct it after `InitGoogleTest`. At most one per program.
class GlobalDeviceEnvironment : public ::testing::Environment {
 public:
  /// `requirements` in any form `Requirements::parse` accepts; parsed in `SetUp()`, where a bad
  /// text fails every test with the parse error.
  explicit GlobalDeviceEnvironment(std::string requirements);
  void SetUp() override;
  void TearDown() override;

 private:
  std::string requirements_;
};

/// True while the global environment holds a device.
bool has_global_device() noexcept;

/// The device locked by the global environment. Throws lockable::Error when there is none (no
/// `--lockable_requirements`, or it could not be locked), saying why.
Device global_device();

}  // namespace lockable::gtest
