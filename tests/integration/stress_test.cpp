// Many processes, few devices, random SIGKILLs, over every backend under test (tests/support
// backends_under_test): no two holds of one device may overlap, and no lock may stay held once
// everyone is gone. Holders write "enter"/"leave" records with
// CLOCK_MONOTONIC stamps (comparable across processes) to a ledger per device.

#include <lockable/resource.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <sstream>
#include <thread>

#include "lockable/test/backends_under_test.hpp"
#include "lockable/test/case_name.hpp"
#include "lockable/test/child.hpp"
#include "lockable/test/files.hpp"
#include "lockable/test/hold_ledger.hpp"

namespace lockable {
namespace {

using namespace std::chrono_literals;
using test::Child;
using test::TempDir;

constexpr int kWorkers = 12;
constexpr int kKilled = 4;
constexpr int kRounds = 150;
const std::vector<std::string> kDevices{"dut-a", "dut-b", "dut-c"};

long long monotonic_ns() {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<long long>(now.tv_sec) * 1000000000LL + now.tv_nsec;
}

class Stress : public ::testing::TestWithParam<test::BackendUnderTest> {
 protected:
  TempDir dir_;
  // Declared after dir_: stopped before its files are removed.
  std::unique_ptr<test::StoreUnderTest> store_ = GetParam().start(dir_.path() / "store");
};

TEST_P(Stress, HoldsOfOneDeviceNeverOverlapDespiteKilledHolders) {
  const auto resources = dir_.path() / "resources.json";
  const auto ledgers = dir_.path() / "ledgers";
  std::filesystem::create_directories(ledgers);
  Json list = Json::array();
  for (const auto& id : kDevices)
    list.push_back({{"id", id}, {"online", true}, {"hostname", "test-host"}});
  test::write_file(resources, list.dump());

  std::mt19937 random(std::random_device{}());
  std::vector<std::unique_ptr<Child>> workers;
  for (int i = 0; i < kWorkers; ++i) {
    workers.push_back(std::make_unique<Child>(std::vector<std::string>{
        LOCKABLE_TEST_HELPER, "stress", resources.string(), store_->spec(), ledgers.string(),
        std::to_string(kRounds), std::to_string(random())}));
  }
  // Kill workers at random moments, preferring one that the ledgers show holding a device.
  std::map<std::string, long long> killed_at;
  std::vector<bool> killed(kWorkers, false);
  std::uniform_int_distribution<int> delay_ms(20, 200);
  for (int kill = 0; kill < kKilled; ++kill) {
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(random)));
    int victim = -1;
    for (int attempt = 0; attempt < 200 && victim < 0; ++attempt) {
      std::map<std::string, int> balance;  // pid -> enters minus leaves
      for (const auto& id : kDevices) {
        std::ifstream in(ledgers / (id + ".ledger"));
        std::string kind, pid;
        long long stamp = 0;
        while (in >> kind >> pid >> stamp) balance[pid] += kind == "enter" ? 1 : -1;
      }
      for (int i = 0; i < kWorkers && victim < 0; ++i) {
        if (!killed[i] && balance[std::to_string(workers[i]->pid())] > 0) victim = i;
      }
    }
    if (victim < 0) {
      victim = static_cast<int>(std::find(killed.begin(), killed.end(), false) - killed.begin());
    }
    killed_at[std::to_string(workers[victim]->pid())] = monotonic_ns();
    workers[victim]->kill_now();
    killed[victim] = true;
  }
  for (int i = 0; i < kWorkers; ++i) {
    if (killed[i]) continue;
    EXPECT_EQ(workers[i]->read_line(120s), "done") << "worker " << i;
    EXPECT_EQ(workers[i]->wait(), 0) << "worker " << i;
  }

  int total_holds = 0;
  int killed_while_holding = 0;
  for (const auto& id : kDevices) {
    auto [holds, open] = test::read_hold_ledger(ledgers, id);
    // A hold without "leave" belongs to a killed worker: the lock was held until the kill.
    for (const auto& [holder, start] : open) {
      ASSERT_EQ(killed_at.count(holder), 1u) << id << ": live pid " << holder << " never left";
      holds.push_back({start, killed_at[holder], holder});
      ++killed_while_holding;
    }
    total_holds += static_cast<int>(holds.size());
    test::expect_no_overlapping_holds(std::move(holds), id);
    EXPECT_FALSE(store_->is_locked(id)) << id << " is still locked in " << store_->spec();
  }
  EXPECT_GE(total_holds, (kWorkers - kKilled) * kRounds);
  std::cout << total_holds << " holds checked, " << killed_while_holding
            << " of them ended by SIGKILL\n";
}

INSTANTIATE_TEST_SUITE_P(AllBackends, Stress, ::testing::ValuesIn(test::backends_under_test()),
                         test::CaseName());

}  // namespace
}  // namespace lockable
