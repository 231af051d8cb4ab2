// Specs to backends and providers: the one table every front end goes through.

#include <lockable/lockable.hpp>

#include <gtest/gtest.h>
#include <stdlib.h>

#include "lockable/test/files.hpp"

namespace lockable {
namespace {

using test::TempDir;

std::string error_of(const std::function<void()>& call) {
  try {
    call();
  } catch (const ConfigError& error) {
    return error.what();
  }
  return "";
}

TEST(FactoryTest, PathAndFileUrlBothMakeTheLockFolder) {
  TempDir dir;
  const auto folder = dir.path() / "locks";
  EXPECT_EQ(make_lock_backend(folder.string())->describe(), "lock folder " + folder.string());
  EXPECT_EQ(make_lock_backend("file://" + folder.string())->describe(),
            "lock folder " + folder.string());
}

TEST(FactoryTest, ReservedSchemesSayTheyAreNotInThisVersion) {
  for (const std::string spec : {"etcd://127.0.0.1:2379/lab"}) {
    const auto what = error_of([&] { make_lock_backend(spec); });
    EXPECT_NE(what.find("\"" + spec + "\""), std::string::npos) << what;
    EXPECT_NE(what.find("not in this version yet"), std::string::npos) << what;
  }
}

TEST(FactoryTest, HttpSpecsNameALockServiceAndItsErrorsHideCredentials) {
  ::unsetenv("LOCKABLE_AUTH_TOKEN");
  // Nothing is sent when the backend is made: no server needed.
  const auto backend = make_lock_backend("https://t0ken@lock.example/v1?prefix=lab1-&lease=30");
  EXPECT_EQ(backend->describe(), "lock service https://lock.example/v1 (lock names \"lab1-<id>\")");
  for (const std::string spec :
       {"https://s3cret:pw@lock.example/v1?colour=red", "http://s3cret@lock.example/v1?lease=-1",
        "http://s3cret@lock.example/v1?lease=10&heartbeat=20"}) {
    const auto what = error_of([&] { make_lock_backend(spec); });
    EXPECT_NE(what.find("lock.example/v1"), std::string::npos) << what;
    EXPECT_EQ(what.find("s3cret"), std::string::npos) << what;
  }
  const auto no_token = error_of([] { make_lock_backend("https://lock.example/v1"); });
  EXPECT_NE(no_token.find("LOCKABLE_AUTH_TOKEN"), std::string::npos) << no_token;
  const auto observed = error_of([] { make_lock_observer("https://s3cret@lock.example/v1"); });
  EXPECT_NE(observed.find("cannot be observed"), std::string::npos) << observed;
  EXPECT_EQ(observed.find("s3cret"), std::string::npos) << observed;
  EXPECT_EQ(make_resource_provider("https://u:s3cret@inventory.example/lab.json")->describe(),
            "https://inventory.example/lab.json");
}

TEST(FactoryTest, UnknownSchemeNamesTheValueAndTheSchemesThatExist) {
  const auto what = error_of([] { make_lock_backend("zookeeper://127.0.0.1:2181"); });
  EXPECT_NE(what.find("\"zookeeper://127.0.0.1:2181\""), std::string::npos) << what;
  EXPECT_NE(what.find("unknown scheme \"zookeeper://\""), std::string::npos) << what;
  EXPECT_NE(what.find("file://"), std::string::npos) << what;
  EXPECT_NE(what.find("etcd:// (not yet)"), std::string::npos) << what;
}

TEST(FactoryTest, EveryRegisteredSchemeIsDescribedForHelp) {
  const auto schemes = lock_backend_schemes();
  ASSERT_GE(schemes.size(), 2u);
  EXPECT_EQ(schemes.front().scheme, "");
  EXPECT_TRUE(schemes.front().available);
  for (const auto& scheme : schemes) EXPECT_FALSE(scheme.description.empty());
}

TEST(FactoryTest, ObserverOfAPathCreatesNothingAndReservedSchemesSaySo) {
  TempDir dir;
  const auto missing = dir.path() / "missing";
  const auto observer = make_lock_observer("file://" + missing.string());
  EXPECT_FALSE(observer->holder_of("dut-1").has_value());
  EXPECT_FALSE(std::filesystem::exists(missing));
  EXPECT_NE(
      error_of([] { make_lock_observer("etcd://127.0.0.1:2379"); }).find("not in this version"),
      std::string::npos);
}

TEST(FactoryTest, EmptyResourcesSpecIsAClearError) {
  EXPECT_NE(error_of([] { make_resource_provider(""); }).find("no resources given"),
            std::string::npos);
}

TEST(FactoryTest, OptionsTakeTextAsAResourcesPathAndLockManyTakesTexts) {
  TempDir dir;
  const auto resources = dir.path() / "lab.json";
  test::write_file(resources, R"([{"id": "a", "online": true, "hostname": "h", "kind": "a"},
                                  {"id": "b", "online": true, "hostname": "h", "kind": "b"}])");
  Options options;
  options.resources = resources.string().c_str();  // text means a path
  options.lock_backend = (dir.path() / "locks").string();
  options.hostname = "h";
  options.log = [](const std::string&) {};
  Lockable lockable(std::move(options));
  const auto pair = lockable.lock_many({"kind=b", "kind=a"}, Seconds(1));
  ASSERT_EQ(pair.size(), 2u);
  EXPECT_EQ(pair[0].resource_id(), "b");
  EXPECT_EQ(pair[1].resource_id(), "a");
}

TEST(FactoryTest, LockFolderAndADifferentLockBackendTogetherAreRefused) {
  TempDir dir;
  Options options;
  options.resources = "resources.json";
  options.lock_folder = dir.path() / "one";
  options.lock_backend = (dir.path() / "two").string();
  const auto what = error_of([&] { Lockable lockable(options); });
  EXPECT_NE(what.find("give only one"), std::string::npos) << what;
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "one"));
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "two"));
}

}  // namespace
}  // namespace lockable
