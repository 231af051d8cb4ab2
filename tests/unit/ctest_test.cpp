// CTest resource allocation: the spec, the CTEST_RESOURCE_GROUP_* variables and the device a
// test process must lock, from plain values.

#include <lockable/ctest.hpp>
#include <lockable/error.hpp>

#include <gtest/gtest.h>

#include <map>

namespace lockable {
namespace {

EnvLookup env_of(std::map<std::string, std::string> values) {
  return [values](const std::string& name) -> std::optional<std::string> {
    const auto it = values.find(name);
    if (it == values.end()) return std::nullopt;
    return it->second;
  };
}

Resources rig() {
  return parse_resources_text(R"([
    {"id": "Pixel-7", "online": true, "hostname": "h", "os": "Android"},
    {"id": "psu", "online": false, "hostname": "h", "type": "power"}])",
                              "rig.json");
}

TEST(CtestTest, IdsAreLowerCaseWithUnderscores) {
  EXPECT_EQ(ctest_id("Pixel-7.01 b"), "pixel_7_01_b");
}

TEST(CtestTest, AssignedIdsComeFromTheGroupVariablesInOrder) {
  EXPECT_TRUE(ctest_assigned_ids(env_of({})).empty());
  EXPECT_TRUE(ctest_assigned_ids(env_of({{"CTEST_RESOURCE_GROUP_COUNT", "0"}})).empty());
  EXPECT_EQ(ctest_assigned_ids(env_of({{"CTEST_RESOURCE_GROUP_COUNT", "2"},
                                       {"CTEST_RESOURCE_GROUP_0", "devices"},
                                       {"CTEST_RESOURCE_GROUP_0_DEVICES", "id:pixel_7,slots:1"},
                                       {"CTEST_RESOURCE_GROUP_1", "power"},
                                       {"CTEST_RESOURCE_GROUP_1_POWER", "id:psu,slots:1"}})),
            (std::vector<std::string>{"pixel_7", "psu"}));
  try {
    ctest_assigned_ids(env_of({{"CTEST_RESOURCE_GROUP_COUNT", "1"},
                               {"CTEST_RESOURCE_GROUP_0", "devices"},
                               {"CTEST_RESOURCE_GROUP_0_DEVICES", "slots:1"}}));
    FAIL() << "no error";
  } catch (const ConfigError& error) {
    EXPECT_NE(std::string(error.what()).find("CTEST_RESOURCE_GROUP_0_DEVICES"), std::string::npos);
  }
}

TEST(CtestTest, RequirementsGainTheAssignedIdAndKeepTheirFilterLifts) {
  const auto out = restrict_to_ctest_assignment(
      {Requirements::parse(R"({"os": "Android"})"), Requirements::parse(R"({"online": null})")},
      {"pixel_7", "psu"}, rig());
  EXPECT_EQ(out[0].json(), Json::parse(R"({"os": "Android", "id": "Pixel-7"})"));
  EXPECT_EQ(out[1].json(), Json::parse(R"({"online": null, "id": "psu"})"));
  EXPECT_TRUE(out[1].with_implicit_filters("h").matches(rig()[1].attributes))
      << "online: null still lifts the filter";
  EXPECT_THROW(restrict_to_ctest_assignment({Requirements::parse("")}, {"ghost"}, rig()),
               ConfigError);
  EXPECT_THROW(restrict_to_ctest_assignment({Requirements::parse(""), Requirements::parse("")},
                                            {"pixel_7"}, rig()),
               ConfigError);
}

TEST(CtestTest, SpecListsOnlineDevicesOfTheHostByDefault) {
  CtestSpecOptions options;
  options.hostname = "h";
  EXPECT_EQ(ctest_resource_spec(rig(), options)["local"][0],
            Json::parse(R"({"devices": [{"id": "pixel_7", "slots": 1}]})"));
  options.include_offline = true;
  options.by = "type";
  EXPECT_EQ(ctest_resource_spec(rig(), options)["local"][0],
            Json::parse(R"({"devices": [{"id": "pixel_7", "slots": 1}],
                            "power": [{"id": "psu", "slots": 1}]})"));
  options.hostname = "elsewhere";
  EXPECT_THROW(ctest_resource_spec(rig(), options), ConfigError);
}

}  // namespace
}  // namespace lockable
