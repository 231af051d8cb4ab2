#include "core/assignment.hpp"

#include <gtest/gtest.h>

#include <set>

namespace lockable {
namespace {

using Candidates = std::vector<std::vector<std::size_t>>;

struct AssignmentCase {
  const char* name;
  Candidates candidates;
  std::optional<std::vector<std::size_t>> expected;
};

class AssignDistinct : public ::testing::TestWithParam<AssignmentCase> {};

TEST_P(AssignDistinct, GivesEachRequirementOneOfItsOwnCandidates) {
  const auto& param = GetParam();
  EXPECT_EQ(assign_distinct(param.candidates), param.expected);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, AssignDistinct,
    ::testing::Values(
        AssignmentCase{"NoRequirements", {}, std::vector<std::size_t>{}},
        AssignmentCase{
            "OneRequirementTakesItsFirstCandidate", {{4, 2}}, std::vector<std::size_t>{4}},
        AssignmentCase{"DisjointCandidates", {{0}, {1}}, std::vector<std::size_t>{0, 1}},
        // Req A matches X(0) and Y(1), req B only X(0): a greedy first fit would give X to A and
        // fail B; augmenting moves A to Y.
        AssignmentCase{"SwapFreesTheOnlyDeviceOfALaterRequirement",
                       {{0, 1}, {0}},
                       std::vector<std::size_t>{1, 0}},
        AssignmentCase{"ChainOfSwaps", {{0, 1}, {1, 2}, {0}}, std::vector<std::size_t>{1, 2, 0}},
        AssignmentCase{"TwoRequirementsOneDevice", {{3}, {3}}, std::nullopt},
        AssignmentCase{"RequirementWithoutCandidates", {{0}, {}}, std::nullopt},
        AssignmentCase{"ThreeRequirementsTwoDevices", {{0, 1}, {0, 1}, {0, 1}}, std::nullopt}),
    [](const ::testing::TestParamInfo<AssignmentCase>& param_info) {
      return param_info.param.name;
    });

TEST(AssignDistinctLarge, FindsAPerfectMatchingWhenOneExists) {
  // Requirement i matches devices i and i+1 (mod n); the only full answers are rotations.
  constexpr std::size_t kCount = 50;
  Candidates candidates(kCount);
  for (std::size_t i = 0; i < kCount; ++i) candidates[i] = {(i + 1) % kCount, i};
  const auto result = assign_distinct(candidates);
  ASSERT_TRUE(result.has_value());
  std::set<std::size_t> used;
  for (std::size_t i = 0; i < kCount; ++i) {
    const auto device = (*result)[i];
    EXPECT_TRUE(device == i || device == (i + 1) % kCount) << "requirement " << i;
    used.insert(device);
  }
  EXPECT_EQ(used.size(), kCount);
}

}  // namespace
}  // namespace lockable
