// A program with its own main() that gives the plugin a Lockable on a revocable in-memory
// backend, so that e2e_test can watch a device be lost mid-suite, as when a lease backend's
// lease expires.
#include <lockable/gtest/init.hpp>
#include <lockable/gtest/lockable_test.hpp>

#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <string>
#include <utility>

#include "lockable/test/memory_backend.hpp"

namespace {

lockable::test::MemoryBackend* g_backend = nullptr;

class LosingSuite : public lockable::gtest::LockableTest<LosingSuite> {
 public:
  static constexpr const char* kRequirements = R"({"kind": "lose"})";
};

TEST_F(LosingSuite, A_LosesItsDevice) {
  const std::string id = allocation().resource_id();
  ASSERT_TRUE(g_backend->revoke(id, id + ": lease expired"));
  EXPECT_TRUE(allocation().lost());
}

TEST_F(LosingSuite, B_MustNotRunAfterTheLoss) { std::puts("B_BODY_RAN"); }

class KeepingSuite : public lockable::gtest::LockableTest<KeepingSuite> {
 public:
  static constexpr const char* kRequirements = R"({"kind": "keep"})";
};

TEST_F(KeepingSuite, KeepsItsDevice) { EXPECT_FALSE(allocation().lost()); }

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  lockable::gtest::init(&argc, argv);
  lockable::Options options;
  options.hostname = "loss-host";
  auto backend = std::make_unique<lockable::test::MemoryBackend>();
  g_backend = backend.get();
  lockable::gtest::use_lockable(std::make_unique<lockable::Lockable>(
      std::move(options), lockable::make_list_provider(lockable::Json::parse(R"([
        {"id": "lose-1", "online": true, "hostname": "loss-host", "kind": "lose"},
        {"id": "keep-1", "online": true, "hostname": "loss-host", "kind": "keep"}
      ])")),
      std::move(backend)));
  return RUN_ALL_TESTS();
}
