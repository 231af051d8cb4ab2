#include "core/queue_order.hpp"

#include <gtest/gtest.h>

namespace lockable {
namespace {

using Ids = std::vector<std::string>;

struct QueueCase {
  const char* name;
  Ids mine;
  std::vector<Ids> earlier;
  Ids expected;
};

class ClaimableIds : public ::testing::TestWithParam<QueueCase> {};

TEST_P(ClaimableIds, LeavesDevicesWantedByEarlierWaitersToThem) {
  const auto& param = GetParam();
  EXPECT_EQ(claimable_ids(param.mine, param.earlier), param.expected);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ClaimableIds,
    ::testing::Values(
        QueueCase{"OldestWaiterMayTryEverything", {"a", "b"}, {}, {"a", "b"}},
        QueueCase{"EarlierWaiterWantingTheSameDeviceGoesFirst", {"a"}, {{"a"}}, {}},
        QueueCase{"UnrelatedEarlierWaitersDoNotBlock", {"a", "b"}, {{"c"}, {"d"}}, {"a", "b"}},
        QueueCase{"OnlyTheOverlapIsLeft", {"a", "b", "c"}, {{"b"}, {"x", "c"}}, {"a"}},
        QueueCase{"KeepsMyOrder", {"c", "a", "b"}, {{"a"}}, {"c", "b"}},
        QueueCase{"TornTicketWantingNothingBlocksNothing", {"a"}, {{}}, {"a"}},
        QueueCase{"NothingWantedNothingClaimable", {}, {{"a"}}, {}}),
    [](const ::testing::TestParamInfo<QueueCase>& param_info) { return param_info.param.name; });

}  // namespace
}  // namespace lockable
