#pragma once

// Ledgers that locker processes append to while they hold a device (test_helper stress, the
// Python and older-protocol lockers): per device, "enter <pid> <stamp>" when a hold starts and
// "leave <pid> <stamp>" when it ends, with CLOCK_MONOTONIC stamps comparable across processes.

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace lockable::test {

struct Hold {
  long long start;
  long long end;
  std::string pid;
};

struct HoldLedger {
  std::vector<Hold> holds;                // ended holds, in file order
  std::map<std::string, long long> open;  // pid -> start of a hold that never ended
};

/// Reads `<dir>/<id>.ledger`. A pid that enters twice without leaving, or leaves without
/// entering, fails the current test (naming the device and pid).
HoldLedger read_hold_ledger(const std::filesystem::path& dir, const std::string& id);

/// Fails the current test for every two holds of device `id` that overlap in time.
void expect_no_overlapping_holds(std::vector<Hold> holds, const std::string& id);

}  // namespace lockable::test
