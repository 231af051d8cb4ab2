#pragma once

// Names value-parameterised tests after their table row.

#include <gtest/gtest.h>

#include <string>

namespace lockable::test {

/// The name generator for INSTANTIATE_TEST_SUITE_P over a table whose rows have a `name` member
/// (std::string or const char*): the test is called after the row, e.g.
/// `INSTANTIATE_TEST_SUITE_P(Errors, ParserTest, ::testing::ValuesIn(kErrors), CaseName());`.
struct CaseName {
  template <typename T>
  std::string operator()(const ::testing::TestParamInfo<T>& row) const {
    return row.param.name;
  }
};

}  // namespace lockable::test
