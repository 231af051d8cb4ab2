// The etcd backend against a real etcd on 127.0.0.1 (started here, as the tests do), next to
// the floor of the same server and to the lock folder. Prints medians; asserts nothing.
//   1. throughput: P processes for D devices (any device), hold H us: etcd vs lock folder
//   2. floor: one txn (create-if-absent) over the project's HTTP client on a reused connection
//   3. acquire+release: LockBackend::try_lock + release (two txns), and its ratio to the floor
//   4. handoff: a holder releases, a waiter blocked in Lockable::lock (watch) gets the device
// Usage: etcd_bench [processes=16] [devices=4] [allocations=2000] [hold-us=2000] [rounds=300]
#include <lockable/lockable.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "etcd/etcd_logic.hpp"
#include "http/client.hpp"
#include "lockable/test/etcd_server.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

lockable::Json device_list(int devices) {
  lockable::Json list = lockable::Json::array();
  for (int i = 0; i < devices; ++i) {
    list.push_back({{"id", "dut-" + std::to_string(i)}, {"online", true}, {"hostname", "bench"}});
  }
  return list;
}

// Allocations per second of `processes` forked workers sharing `devices` through `spec`.
double contention(const std::string& spec, int processes, int devices, int allocations, int hold_us,
                  double& median_queue_ms) {
  int results[2];
  if (::pipe(results) != 0) return 0;
  const auto start = Clock::now();
  std::vector<pid_t> children;
  for (int process = 0; process < processes; ++process) {
    const int rounds = allocations / processes + (process < allocations % processes ? 1 : 0);
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::close(results[0]);
      lockable::Options options;
      options.hostname = "bench";
      options.log = [](const std::string&) {};
      lockable::Lockable lockable(options, lockable::make_list_provider(device_list(devices)),
                                  lockable::make_lock_backend(spec, options.log));
      for (int round = 0; round < rounds; ++round) {
        auto allocation = lockable.lock("", lockable::Seconds(300));
        const double queue_ms =
            std::chrono::duration<double, std::milli>(allocation.queue_time()).count();
        if (::write(results[1], &queue_ms, sizeof queue_ms) < 0) ::_exit(1);
        std::this_thread::sleep_for(std::chrono::microseconds(hold_us));
        allocation.unlock();
      }
      ::_exit(0);
    }
    children.push_back(pid);
  }
  ::close(results[1]);
  std::vector<double> queue_ms;
  double value = 0;
  while (::read(results[0], &value, sizeof value) == static_cast<ssize_t>(sizeof value)) {
    queue_ms.push_back(value);
  }
  ::close(results[0]);
  for (const auto pid : children) {
    int status = 0;
    ::waitpid(pid, &status, 0);
  }
  median_queue_ms = median(queue_ms);
  return static_cast<double>(queue_ms.size()) / (ms_since(start) / 1000.0);
}

}  // namespace

int main(int argc, char** argv) {
  const int processes = argc > 1 ? std::atoi(argv[1]) : 16;
  const int devices = argc > 2 ? std::atoi(argv[2]) : 4;
  const int allocations = argc > 3 ? std::atoi(argv[3]) : 2000;
  const int hold_us = argc > 4 ? std::atoi(argv[4]) : 2000;
  const int rounds = argc > 5 ? std::atoi(argv[5]) : 300;
  if (!lockable::test::etcd_program()) {
    std::printf("no etcd on PATH (apt-get install etcd-server)\n");
    return 1;
  }
  lockable::test::EtcdServer server;
  const std::string endpoint = server.endpoint();
  const std::string spec = "etcd://127.0.0.1:" + std::to_string(server.client_port()) + "/bench";
  std::printf("etcd %s, %d processes, %d devices, %d allocations, hold %d us\n", endpoint.c_str(),
              processes, devices, allocations, hold_us);

  // 1. Throughput, first: forked workers before this process starts any library thread.
  std::string pattern = (std::filesystem::temp_directory_path() / "lockable-bench-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) return 1;
  double folder_queue = 0;
  double etcd_queue = 0;
  const double folder_rate =
      contention(pattern, processes, devices, allocations, hold_us, folder_queue);
  const double etcd_rate = contention(spec, processes, devices, allocations, hold_us, etcd_queue);
  std::error_code ignored;
  std::filesystem::remove_all(pattern, ignored);
  std::printf(
      "throughput: lock folder %.0f allocations/s (median queue %.2f ms), etcd %.0f/s "
      "(median queue %.2f ms), ideal %.0f/s\n",
      folder_rate, folder_queue, etcd_rate, etcd_queue, devices * 1e6 / hold_us);

  // 2. The floor: one create-if-absent txn, then (not timed) its delete.
  lockable::http::Client client;
  std::vector<double> floor_ms;
  for (int i = 0; i < rounds; ++i) {
    const std::string key = lockable::etcd::base64_encode("/floor/key");
    lockable::http::Request txn;
    txn.method = "POST";
    txn.url = endpoint + "/v3/kv/txn";
    txn.body =
        lockable::Json{{"compare", lockable::Json::array({{{"key", key},
                                                           {"target", "CREATE"},
                                                           {"result", "EQUAL"},
                                                           {"create_revision", "0"}}})},
                       {"success", lockable::Json::array(
                                       {{{"request_put", {{"key", key}, {"value", "eA=="}}}}})},
                       {"failure", lockable::Json::array({{{"request_range", {{"key", key}}}}})}}
            .dump();
    const auto start = Clock::now();
    client.send(txn, Clock::now() + std::chrono::seconds(10));
    floor_ms.push_back(ms_since(start));
    lockable::http::Request remove = txn;
    remove.url = endpoint + "/v3/kv/deleterange";
    remove.body = lockable::Json{{"key", key}}.dump();
    client.send(remove, Clock::now() + std::chrono::seconds(10));
  }

  // 3. Acquire + release through the backend.
  lockable::EtcdOptions options;
  options.endpoints = {endpoint};
  options.prefix = "/bench-latency";
  options.log = [](const std::string&) {};
  auto backend = lockable::make_etcd_backend(options);
  lockable::Resource device;
  device.id = "dut-0";
  const lockable::HolderInfo holder{static_cast<long>(::getpid()), "bench", "alloc", {}, {}};
  std::vector<double> acquire_ms;
  std::vector<double> cycle_ms;
  for (int i = 0; i < rounds; ++i) {
    const auto start = Clock::now();
    auto lock = backend->try_lock(device, holder);
    acquire_ms.push_back(ms_since(start));
    lock->release();
    cycle_ms.push_back(ms_since(start));
  }
  const double floor = median(floor_ms);
  std::printf("floor: one txn %.3f ms (median of %d)\n", floor, rounds);
  std::printf(
      "acquire %.3f ms (%.2fx the floor), acquire+release %.3f ms (%.2fx the floor, two "
      "txns)\n",
      median(acquire_ms), median(acquire_ms) / floor, median(cycle_ms), median(cycle_ms) / floor);

  // 4. Handoff: release in one backend, grant in a Lockable waiting on its watch.
  lockable::Options waiter_options;
  waiter_options.hostname = "bench";
  waiter_options.log = [](const std::string&) {};
  lockable::Lockable waiter(waiter_options, lockable::make_list_provider(device_list(1)),
                            lockable::make_etcd_backend(options));
  std::vector<double> handoff_ms;
  const int handoffs = std::max(10, rounds / 6);
  for (int i = 0; i < handoffs; ++i) {
    auto lock = backend->try_lock(device, holder);
    if (!lock) continue;
    auto granted = std::async(std::launch::async, [&] {
      auto allocation = waiter.lock("", lockable::Seconds(30));
      return Clock::now();
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(30));  // the waiter is asleep
    const auto released = Clock::now();
    lock->release();
    const auto at = granted.get();
    handoff_ms.push_back(std::chrono::duration<double, std::milli>(at - released).count());
  }
  std::printf("handoff: %.3f ms from release to the waiter's grant (median of %zu)\n",
              median(handoff_ms), handoff_ms.size());
  return 0;
}
