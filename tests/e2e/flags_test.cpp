// The --lockable_* flags: forms, precedence over the environment, removal from argv, errors.
#include <lockable/error.hpp>
#include <lockable/gtest/flags.hpp>

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

namespace lockable::gtest {
namespace {

using Variables = std::map<std::string, std::string>;

EnvLookup fake_env(Variables variables) {
  return [variables](const std::string& name) -> std::optional<std::string> {
    const auto it = variables.find(name);
    if (it == variables.end()) return std::nullopt;
    return it->second;
  };
}

// argv as a program gets it, with storage that outlives the call.
struct Argv {
  explicit Argv(std::vector<std::string> args) : storage(std::move(args)) {
    storage.insert(storage.begin(), "prog");
    for (auto& arg : storage) pointers.push_back(arg.data());
    pointers.push_back(nullptr);
    argc = static_cast<int>(storage.size());
  }
  std::vector<std::string> left() const { return {pointers.begin() + 1, pointers.begin() + argc}; }

  std::vector<std::string> storage;
  std::vector<char*> pointers;
  int argc = 0;
};

Config parse(Argv& argv, Variables env = {}) {
  return parse_flags(&argv.argc, argv.pointers.data(), fake_env(std::move(env)));
}

TEST(FlagsTest, LockBackendFromTheFlagOrTheVariableReachesTheOptions) {
  Argv with_flag({"--lockable_lock_backend", "file:///srv/locks"});
  const Config config = parse(with_flag);
  EXPECT_EQ(config.lock_backend, "file:///srv/locks");
  EXPECT_EQ(to_options(config).lock_backend, "file:///srv/locks");
  Argv none({});
  EXPECT_EQ(parse(none, {{"LOCKABLE_LOCK_BACKEND", "/srv/other"}}).lock_backend, "/srv/other");
}

TEST(FlagsTest, DefaultsWithoutFlagsOrEnvironment) {
  Argv argv({});
  const Config config = parse(argv);
  EXPECT_EQ(config.resources, "resources.json");
  EXPECT_EQ(config.requirements, "");
  EXPECT_FALSE(config.timeout.has_value());
  EXPECT_EQ(config.lock_folder, "");
  EXPECT_EQ(config.hostname, "");
  EXPECT_EQ(config.on_unavailable, OnUnavailable::kFail);
}

TEST(FlagsTest, AcceptsBothFormsAndRemovesOnlyItsOwnArguments) {
  Argv argv({"--lockable_requirements={\"os\":\"Android\"}", "-v", "--lockable_timeout", "30",
             "positional", "--lockable_resources=lab.json", "--lockable_lock_folder", "/tmp/l",
             "--lockable_hostname=rig-01", "--lockable_on_unavailable", "skip", "--other"});
  const Config config = parse(argv);
  EXPECT_EQ(config.requirements, R"({"os":"Android"})");
  ASSERT_TRUE(config.timeout.has_value());
  EXPECT_DOUBLE_EQ(config.timeout->count(), 30.0);
  EXPECT_EQ(config.resources, "lab.json");
  EXPECT_EQ(config.lock_folder, "/tmp/l");
  EXPECT_EQ(config.hostname, "rig-01");
  EXPECT_EQ(config.on_unavailable, OnUnavailable::kSkip);
  EXPECT_EQ(argv.left(), (std::vector<std::string>{"-v", "positional", "--other"}));
  EXPECT_EQ(argv.pointers[static_cast<std::size_t>(argv.argc)], nullptr);
}

TEST(FlagsTest, EnvironmentFillsWhatFlagsLeaveOut) {
  Argv argv({"--lockable_timeout=5"});
  const Config config = parse(argv, {{"LOCKABLE_TIMEOUT", "99"},
                                     {"LOCKABLE_RESOURCES", "env.json"},
                                     {"LOCKABLE_REQUIREMENTS", "os=iOS"},
                                     {"LOCKABLE_LOCK_FOLDER", "/locks"},
                                     {"LOCKABLE_HOSTNAME", "env-host"},
                                     {"LOCKABLE_ON_UNAVAILABLE", "skip"}});
  EXPECT_DOUBLE_EQ(config.timeout->count(), 5.0);
  EXPECT_EQ(config.resources, "env.json");
  EXPECT_EQ(config.requirements, "os=iOS");
  EXPECT_EQ(config.lock_folder, "/locks");
  EXPECT_EQ(config.hostname, "env-host");
  EXPECT_EQ(config.on_unavailable, OnUnavailable::kSkip);
}

TEST(FlagsTest, EmptyEnvironmentVariableCountsAsUnset) {
  Argv argv({});
  const Config config = parse(argv, {{"LOCKABLE_TIMEOUT", ""}, {"LOCKABLE_RESOURCES", ""}});
  EXPECT_FALSE(config.timeout.has_value());
  EXPECT_EQ(config.resources, "resources.json");
}

TEST(FlagsTest, LastOccurrenceWins) {
  Argv argv({"--lockable_hostname=a", "--lockable_hostname=b"});
  EXPECT_EQ(parse(argv).hostname, "b");
}

TEST(FlagsTest, ArgumentsAfterDoubleDashAreLeftAlone) {
  Argv argv({"--", "--lockable_bogus=1"});
  EXPECT_NO_THROW(parse(argv));
  EXPECT_EQ(argv.left(), (std::vector<std::string>{"--", "--lockable_bogus=1"}));
}

struct ErrorCase {
  const char* name;
  std::vector<std::string> args;
  Variables env;
  const char* message;
};

class FlagErrorTest : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(FlagErrorTest, ThrowsConfigErrorNamingTheFlagAndLeavesArgvAlone) {
  Argv argv(GetParam().args);
  const auto before = argv.left();
  try {
    parse(argv, GetParam().env);
    FAIL() << "no ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(GetParam().message), std::string::npos) << e.what();
  }
  EXPECT_EQ(argv.left(), before);
}

INSTANTIATE_TEST_SUITE_P(
    Errors, FlagErrorTest,
    ::testing::Values(
        ErrorCase{"Unknown",
                  {"--lockable_bogus=1"},
                  {},
                  "unknown flag --lockable_bogus; the lockable flags are --lockable_resources"},
        ErrorCase{"Dashes",
                  {"--lockable-lock-folder=x"},
                  {},
                  "lockable flags use underscores, e.g. --lockable_lock_folder"},
        ErrorCase{"MissingValue", {"--lockable_hostname"}, {}, "--lockable_hostname needs a value"},
        ErrorCase{"TimeoutNotANumber",
                  {"--lockable_timeout=soon"},
                  {},
                  "--lockable_timeout: must be a number of seconds"},
        ErrorCase{"TimeoutNegativeInEnvironment",
                  {},
                  {{"LOCKABLE_TIMEOUT", "-3"}},
                  "LOCKABLE_TIMEOUT: must not be negative"},
        ErrorCase{"OnUnavailable",
                  {"--lockable_on_unavailable=ignore"},
                  {},
                  "--lockable_on_unavailable: must be \"fail\" or \"skip\", found \"ignore\""},
        ErrorCase{"OnUnavailableInEnvironment",
                  {},
                  {{"LOCKABLE_ON_UNAVAILABLE", "FAIL"}},
                  "LOCKABLE_ON_UNAVAILABLE: must be"},
        ErrorCase{"Requirements",
                  {"--lockable_requirements={\"os\":"},
                  {},
                  "--lockable_requirements: invalid requirements"},
        ErrorCase{"RequirementsInEnvironment",
                  {},
                  {{"LOCKABLE_REQUIREMENTS", "os"}},
                  "LOCKABLE_REQUIREMENTS: invalid requirements"},
        ErrorCase{"EmptyResources",
                  {"--lockable_resources="},
                  {},
                  "--lockable_resources: must name a resources file"},
        ErrorCase{"PriorityNotAWholeNumber",
                  {"--lockable_priority=high"},
                  {},
                  "--lockable_priority: must be a whole number, found \"high\"; give a whole "
                  "number from -1000 to 1000"},
        ErrorCase{"PriorityWithAFraction", {"--lockable_priority", "1.5"}, {}, "whole number"},
        ErrorCase{"PriorityOutOfRangeInEnvironment",
                  {},
                  {{"LOCKABLE_PRIORITY", "5000"}},
                  "LOCKABLE_PRIORITY: is out of range, found \"5000\"; give a whole number from "
                  "-1000 to 1000 (higher is served first, default 0), e.g. LOCKABLE_PRIORITY=10"}),
    [](const auto& test_case) { return std::string(test_case.param.name); });

TEST(FlagsTest, OptionsCarryTheConfiguration) {
  Config config;
  config.resources = "lab.json";
  config.hostname = "rig";
  config.lock_folder = "/locks";
  config.timeout = Seconds(2.5);
  const Options options = to_options(config);
  EXPECT_EQ(std::get<std::filesystem::path>(options.resources), "lab.json");
  EXPECT_EQ(options.hostname, "rig");
  EXPECT_EQ(options.lock_folder, "/locks");
  EXPECT_DOUBLE_EQ(options.default_timeout.count(), 2.5);
  EXPECT_TRUE(static_cast<bool>(options.log));
}

TEST(FlagsTest, PriorityFromTheFlagOrTheVariableReachesTheOptions) {
  Argv none({});
  EXPECT_EQ(parse(none).priority, 0);
  EXPECT_EQ(to_options(parse(none)).priority, 0);
  Argv from_env({});
  EXPECT_EQ(parse(from_env, {{"LOCKABLE_PRIORITY", "-7"}}).priority, -7);
  Argv with_flag({"--lockable_priority", "12"});
  const Config config = parse(with_flag, {{"LOCKABLE_PRIORITY", "3"}});
  EXPECT_EQ(config.priority, 12) << "the flag wins over the variable";
  EXPECT_EQ(to_options(config).priority, 12);
  EXPECT_TRUE(with_flag.left().empty());
}

TEST(FlagsTest, HelpListsEveryFlagWithItsVariable) {
  const std::string help = flags_help();
  for (const char* text : {"--lockable_resources", "LOCKABLE_RESOURCES", "--lockable_requirements",
                           "LOCKABLE_REQUIREMENTS", "--lockable_timeout", "LOCKABLE_TIMEOUT",
                           "--lockable_lock_folder", "LOCKABLE_LOCK_FOLDER", "--lockable_hostname",
                           "LOCKABLE_HOSTNAME", "--lockable_on_unavailable",
                           "LOCKABLE_ON_UNAVAILABLE", "--lockable_priority", "LOCKABLE_PRIORITY"}) {
    EXPECT_NE(help.find(text), std::string::npos) << text;
  }
}

}  // namespace
}  // namespace lockable::gtest
