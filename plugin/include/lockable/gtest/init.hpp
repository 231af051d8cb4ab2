#pragma once

#include <lockable/gtest/flags.hpp>
#include <lockable/lockable.hpp>

#include <memory>

namespace lockable::gtest {

/// Configures the plugin for a program with its own `main()`. Call it after
/// `testing::InitGoogleTest(&argc, argv)` and before `RUN_ALL_TESTS()`:
///
///     testing::InitGoogleTest(&argc, argv);
///     lockable::gtest::init(&argc, argv);
///     return RUN_ALL_TESTS();
///
/// Parses and removes the `--lockable_*` flags (see `parse_flags`), registers a listener that
/// reports a missing global device on every test, and, when requirements were given, registers
/// the global environment that locks one device for the whole program. Throws ConfigError naming
/// the flag or variable at fault. May be called once per program; a second call throws
/// ConfigError.
void init(int* argc, char** argv);

/// As `init(argc, argv)` with a configuration built by the caller (e.g. from its own flags).
void init(Config config);

/// The configuration in use: the one given to `init()`, else read once from the `LOCKABLE_*`
/// environment variables and defaults. Throws ConfigError for a bad environment variable.
const Config& config();

/// The program's one Lockable, built on first use from `config()` and shared by every suite and
/// the global environment. Lives until the program exits; any device still held then is released
/// first. Throws lockable::Error when the configuration is unusable.
Lockable& shared_lockable();

/// Makes every suite and the global environment lock through `lockable`, built by the caller
/// with any provider and backend (`Lockable(options, provider, backend)`), instead of the one
/// the flags describe. Call it in `main()` after `init()` and before `RUN_ALL_TESTS()`. Throws
/// ConfigError when a suite already locked a device.
void use_lockable(std::unique_ptr<Lockable> lockable);

}  // namespace lockable::gtest
