// An ordinary GoogleTest program without a line of lockable code; linked with
// lockable::gtest_main, `--lockable_requirements=...` alone gives it a device for its whole run.
#include <gtest/gtest.h>

#include <string>

TEST(PlainTest, Adds) { EXPECT_EQ(2, 1 + 1); }

TEST(PlainTest, Concatenates) { EXPECT_EQ(std::string("ab"), std::string("a") + "b"); }
