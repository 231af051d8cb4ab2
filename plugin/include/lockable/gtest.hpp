#pragma once

/// The GoogleTest plugin in one include: the fixture base `LockableTest`, the global environment,
/// flags and `init()`. Link `lockable::gtest` (own `main()`) or `lockable::gtest_main`.
#include <lockable/gtest/device.hpp>
#include <lockable/gtest/environment.hpp>
#include <lockable/gtest/flags.hpp>
#include <lockable/gtest/init.hpp>
#include <lockable/gtest/lockable_test.hpp>
