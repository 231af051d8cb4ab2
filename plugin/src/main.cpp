// main() of lockable::gtest_main: GoogleTest's gtest_main plus the lockable flags. Link this
// instead of GTest::gtest_main (never both: the archive listed first would silently win).
#include <lockable/error.hpp>
#include <lockable/gtest/flags.hpp>
#include <lockable/gtest/init.hpp>

#include <gtest/gtest.h>

#include <cstdio>
#include <string_view>

namespace {

// GoogleTest prints its help for these and runs nothing; we add ours below it.
bool wants_help(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--") break;
    if (arg == "--help" || arg == "-h" || arg == "-?" || arg == "/?" || arg == "--gtest_help") {
      return true;
    }
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  const bool help = wants_help(argc, argv);
  testing::InitGoogleTest(&argc, argv);
  if (help) {
    std::fputs(lockable::gtest::flags_help().c_str(), stdout);
    return 0;
  }
  try {
    lockable::gtest::init(&argc, argv);
  } catch (const lockable::Error& e) {
    std::fprintf(stderr, "lockable: %s\n", e.what());
    return 2;
  }
  return RUN_ALL_TESTS();
}
