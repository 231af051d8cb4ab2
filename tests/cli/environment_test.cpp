#include <lockable/environment.hpp>
#include <lockable/settings.hpp>

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <optional>

namespace lockable {
namespace {

std::map<std::string, std::string> as_map(const std::vector<EnvironmentVariable>& variables) {
  return {variables.begin(), variables.end()};
}

Resource make_resource(Json attributes) {
  Resource resource;
  resource.id = attributes.at("id").get<std::string>();
  resource.attributes = std::move(attributes);
  return resource;
}

struct NameCase {
  std::string key;
  std::string name;
};

class EnvironmentNameTest : public ::testing::TestWithParam<NameCase> {};

TEST_P(EnvironmentNameTest, UpperCasesAndReplacesCharactersOutsideTheShellSet) {
  EXPECT_EQ(environment_name(GetParam().key), GetParam().name);
}

INSTANTIATE_TEST_SUITE_P(Keys, EnvironmentNameTest,
                         ::testing::Values(NameCase{"os", "OS"}, NameCase{"serial", "SERIAL"},
                                           NameCase{"serial-port", "SERIAL_PORT"},
                                           NameCase{"usb.hub", "USB_HUB"},
                                           NameCase{"Already_OK_9", "ALREADY_OK_9"},
                                           NameCase{"with space", "WITH_SPACE"},
                                           NameCase{"ä", "__"},  // two UTF-8 bytes
                                           NameCase{"", ""}));

TEST(EnvironmentForTest, StringsAsTheyAreOtherValuesAsCompactJson) {
  const auto resource = make_resource({{"id", "dut-1"},
                                       {"online", true},
                                       {"os", "Android"},
                                       {"version", 14},
                                       {"ratio", 0.5},
                                       {"usb", {{"hub", 1}, {"port", 2}}},
                                       {"tags", {"ble", "thread"}},
                                       {"note", nullptr},
                                       {"serial-port", "/dev/ttyACM0"}});
  const auto env = as_map(environment_for(resource, "alloc-1"));
  EXPECT_EQ(env.at("ID"), "dut-1");
  EXPECT_EQ(env.at("ONLINE"), "true");
  EXPECT_EQ(env.at("OS"), "Android");
  EXPECT_EQ(env.at("VERSION"), "14");
  EXPECT_EQ(env.at("RATIO"), "0.5");
  EXPECT_EQ(env.at("USB"), R"({"hub":1,"port":2})");
  EXPECT_EQ(env.at("TAGS"), R"(["ble","thread"])");
  EXPECT_EQ(env.at("NOTE"), "null");
  EXPECT_EQ(env.at("SERIAL_PORT"), "/dev/ttyACM0");
}

TEST(EnvironmentForTest, AddsResourceIdAllocIdAndWholeResourceAsJson) {
  const Json attributes = {{"id", "dut-1"}, {"os", "iOS"}, {"usb", {{"hub", 2}}}};
  const auto env = as_map(environment_for(make_resource(attributes), "1b4e28ba-2fa1"));
  EXPECT_EQ(env.at("LOCKABLE_RESOURCE_ID"), "dut-1");
  EXPECT_EQ(env.at("LOCKABLE_ALLOC_ID"), "1b4e28ba-2fa1");
  EXPECT_EQ(Json::parse(env.at("LOCKABLE_RESOURCE")), attributes);
  EXPECT_EQ(env.size(), 6u);
}

TEST(EnvironmentForTest, LockableVariablesWinOverAttributesOfTheSameName) {
  const auto resource = make_resource(
      {{"id", "dut-1"}, {"lockable_resource_id", "spoofed"}, {"LOCKABLE_ALLOC_ID", 3}});
  const auto env = as_map(environment_for(resource, "real-alloc"));
  EXPECT_EQ(env.at("LOCKABLE_RESOURCE_ID"), "dut-1");
  EXPECT_EQ(env.at("LOCKABLE_ALLOC_ID"), "real-alloc");
}

TEST(EnvironmentForTest, NamesAreUniqueAndTheKeySortingFirstWins) {
  const auto resource =
      make_resource({{"id", "dut-1"}, {"serial-port", "dash"}, {"serial_port", "underscore"}});
  const auto variables = environment_for(resource, "a");
  std::size_t count = 0;
  for (const auto& [name, value] : variables) {
    if (name == "SERIAL_PORT") {
      ++count;
      EXPECT_EQ(value, "dash");  // '-' sorts before '_'
    }
  }
  EXPECT_EQ(count, 1u);
}

TEST(EnvironmentForTest, EmptyKeyIsNotExportedAndNulInStringGivesJson) {
  const auto resource =
      make_resource({{"id", "dut-1"}, {"", "nameless"}, {"weird", std::string("a\0b", 3)}});
  const auto variables = environment_for(resource, "a");
  for (const auto& [name, value] : variables) EXPECT_FALSE(name.empty()) << value;
  EXPECT_EQ(as_map(variables).at("WEIRD"), R"("a\u0000b")");
}

TEST(EnvironmentForTest, SortedByName) {
  const auto resource = make_resource({{"id", "dut-1"}, {"zeta", 1}, {"alpha", 2}});
  const auto variables = environment_for(resource, "a");
  for (std::size_t i = 1; i < variables.size(); ++i) {
    EXPECT_LT(variables[i - 1].first, variables[i].first);
  }
}

TEST(EnvironmentForTest, AttributesNeverSetWhatACommandRunsOrLoads) {
  const auto resource = make_resource({{"id", "dut-1"},
                                       {"path", "/evil"},
                                       {"Home", "/nohome"},
                                       {"ld_preload", "x.so"},
                                       {"ld-library-path", "/lib"},
                                       {"pythonpath", "/py"},
                                       {"ifs", "x"},
                                       {"lockable_lock_folder", "/elsewhere"},
                                       {"os", "Android"}});
  const auto env = as_map(environment_for(resource, "a"));
  for (const char* name : {"PATH", "HOME", "LD_PRELOAD", "LD_LIBRARY_PATH", "PYTHONPATH", "IFS",
                           "LOCKABLE_LOCK_FOLDER"}) {
    EXPECT_EQ(env.count(name), 0u) << name;
  }
  EXPECT_EQ(env.at("OS"), "Android");
  EXPECT_EQ(env.at("ID"), "dut-1");
}

TEST(EnvironmentForTest, WithheldAttributesSayWhichAndWhy) {
  const auto resource = make_resource({{"id", "dut-1"},
                                       {"", "nameless"},
                                       {"PATH", "/evil"},
                                       {"serial-port", "dash"},
                                       {"serial_port", "underscore"},
                                       {"os", "Android"}});
  const auto withheld = withheld_attributes(resource);
  ASSERT_EQ(withheld.size(), 3u);
  EXPECT_EQ(withheld[0].key, "");
  EXPECT_EQ(withheld[0].reason, "an empty key names no variable");
  EXPECT_EQ(withheld[1].key, "PATH");
  EXPECT_EQ(withheld[1].reason, "PATH decides which programs the command runs");
  EXPECT_EQ(withheld[2].key, "serial_port");
  EXPECT_EQ(withheld[2].name, "SERIAL_PORT");
  EXPECT_EQ(withheld[2].reason, "SERIAL_PORT is already set from the attribute \"serial-port\"");
}

TEST(ProtectedVariableTest, OrdinaryDeviceNamesAreFree) {
  for (const char* name : {"OS", "SERIAL", "HOSTNAME", "ONLINE", "ID", "USB_PORT", "PATHS",
                           "HOMEPAGE", "LD", "LOCKABLE"}) {
    EXPECT_EQ(protected_variable_reason(name), "") << name;
  }
  for (const char* name : {"PATH", "HOME", "SHELL", "LD_AUDIT", "BASH_ENV", "BASH_FUNC_X%%",
                           "GLIBC_TUNABLES", "LOCKABLE_TIMEOUT"}) {
    EXPECT_NE(protected_variable_reason(name), "") << name;
  }
}

TEST(EnvironmentSettingsTest, ReadsEveryLockableVariableAndTreatsEmptyAsUnset) {
  const std::map<std::string, std::string> variables{
      {"LOCKABLE_RESOURCES", "lab.json"}, {"LOCKABLE_REQUIREMENTS", "os=iOS"},
      {"LOCKABLE_TIMEOUT", "5"},          {"LOCKABLE_LOCK_FOLDER", "/locks"},
      {"LOCKABLE_HOSTNAME", ""},          {"LOCKABLE_ON_UNAVAILABLE", "skip"}};
  const auto settings = environment_settings([&](const std::string& name) {
    const auto it = variables.find(name);
    return it == variables.end() ? std::nullopt : std::optional<std::string>(it->second);
  });
  ASSERT_TRUE(settings.resources);
  EXPECT_EQ(settings.resources->value, "lab.json");
  EXPECT_EQ(settings.resources->source, "LOCKABLE_RESOURCES");
  EXPECT_EQ(settings.requirements->value, "os=iOS");
  EXPECT_EQ(settings.timeout->value, "5");
  EXPECT_EQ(settings.lock_folder->source, "LOCKABLE_LOCK_FOLDER");
  EXPECT_FALSE(settings.hostname);
  EXPECT_EQ(settings.on_unavailable->value, "skip");
  EXPECT_FALSE(environment_settings(nullptr).resources);
}

class NoopLock : public HeldLock {
 public:
  void release() noexcept override {}
};

TEST(EnvironmentForTest, AllocationOverloadUsesItsResourceAndAllocId) {
  const auto resource = make_resource({{"id", "dut-9"}, {"os", "Android"}});
  Allocation allocation(Json::object(), resource, "alloc-9", std::chrono::seconds(0),
                        std::make_unique<NoopLock>());
  const auto env = as_map(environment_for(allocation));
  EXPECT_EQ(env.at("OS"), "Android");
  EXPECT_EQ(env.at("LOCKABLE_RESOURCE_ID"), "dut-9");
  EXPECT_EQ(env.at("LOCKABLE_ALLOC_ID"), "alloc-9");
  EXPECT_EQ(env.count("LOCKABLE_FENCING_TOKEN"), 0u) << "a lock without fencing has no token";
}

class FencedLock : public HeldLock {
 public:
  void release() noexcept override {}
  std::optional<std::uint64_t> fencing_token() const noexcept override { return 4242; }
};

TEST(EnvironmentForTest, AFencingTokenIsExportedWhenTheBackendIssuesOne) {
  const auto resource = make_resource({{"id", "dut-9"}, {"fencing_token", "from-attrs"}});
  Allocation allocation(Json::object(), resource, "alloc-9", std::chrono::seconds(0),
                        std::make_unique<FencedLock>());
  const auto variables = environment_for(allocation);
  const auto env = as_map(variables);
  EXPECT_EQ(env.at("LOCKABLE_FENCING_TOKEN"), "4242");
  EXPECT_TRUE(std::is_sorted(variables.begin(), variables.end(),
                             [](const auto& a, const auto& b) { return a.first < b.first; }));
}

}  // namespace
}  // namespace lockable
