// Child process for the integration tests and benchmarks: locks through the library the way a
// test suite would.
//
//   test_helper hold <resources.json> <backend-spec> <requirement> [<requirement>...]
//       Locks (lock_many when several), prints "locked <id> [<id>...]", waits for a line on
//       stdin (or EOF), releases, prints "released".
//   test_helper many <resources.json> <backend-spec> <rounds> <requirement>...
//       Runs lock_many `rounds` times, holding each set briefly; prints "done".
//   test_helper stress <resources.json> <backend-spec> <ledger-dir> <rounds> <seed>
//       Runs `rounds` allocations of any device; while holding, appends "enter"/"leave" records
//       (CLOCK_MONOTONIC ns) to <ledger-dir>/<id>.ledger; prints "done".
//   test_helper ledger <resources.json> <backend-spec> <ledger-file> <name> <hold-ms> <req>...
//       Locks once (lock_many when several), appends "<name>\n" to <ledger-file> while holding,
//       holds <hold-ms> more, releases, prints "done". The ledger lists the grant order.
//   test_helper exhaust-inotify <mode> <args...>
//       Takes every inotify instance this account may still create (as when
//       fs.inotify.max_user_instances is reached), then runs <mode> as above.
// LOCKABLE_PRIORITY gives the requests' priority, LOCKABLE_TEST_PRIORITY_AGING_MS its aging.
// <backend-spec> names the lock store as Options::lock_backend does (make_lock_backend): a lock
// folder path, file://PATH, or a remote store's URL. The library's warnings and progress lines
// go to stderr.
#include <lockable/lockable.hpp>

#include <fcntl.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cstdlib>
#include <ctime>
#include <iostream>
#include <random>
#include <string>
#include <thread>

namespace {

long long monotonic_ns() {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<long long>(now.tv_sec) * 1000000000LL + now.tv_nsec;
}

lockable::Options options_for(const std::string& resources, const std::string& backend_spec) {
  lockable::Options options;
  options.resources = std::filesystem::path(resources);
  options.lock_backend = backend_spec;
  options.hostname = "test-host";
  options.default_timeout = lockable::Seconds(120);
  options.log = [](const std::string& line) { std::cerr << line << std::endl; };
  // As the CLI and the plugin read it; the aging has no variable of its own (a test hook).
  const auto env = lockable::environment_settings();
  if (env.priority) {
    options.priority = lockable::parse_priority(env.priority->value, env.priority->source);
  }
  if (const char* aging = std::getenv("LOCKABLE_TEST_PRIORITY_AGING_MS")) {
    options.priority_aging = lockable::Seconds(std::atof(aging) / 1000.0);
  }
  return options;
}

void append(const std::string& path, const std::string& line) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    std::perror(path.c_str());
    std::exit(2);
  }
  // One write() with O_APPEND: records of concurrent writers never interleave.
  if (::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) std::exit(2);
  ::close(fd);
}

int hold(int argc, char** argv) {
  lockable::Lockable lockable(options_for(argv[2], argv[3]));
  std::vector<lockable::Requirements> requirements;
  for (int i = 4; i < argc; ++i) requirements.push_back(lockable::Requirements::parse(argv[i]));
  auto allocations = lockable.lock_many(requirements);
  std::string line = "locked";
  for (const auto& allocation : allocations) line += " " + allocation.resource_id();
  std::cout << line << std::endl;
  std::string ignored;
  std::getline(std::cin, ignored);
  allocations.clear();
  std::cout << "released" << std::endl;
  return 0;
}

int many(int argc, char** argv) {
  lockable::Lockable lockable(options_for(argv[2], argv[3]));
  const int rounds = std::stoi(argv[4]);
  std::vector<lockable::Requirements> requirements;
  for (int i = 5; i < argc; ++i) requirements.push_back(lockable::Requirements::parse(argv[i]));
  for (int round = 0; round < rounds; ++round) {
    auto allocations = lockable.lock_many(requirements);
    for (std::size_t i = 0; i < allocations.size(); ++i) {
      if (!requirements[i].matches(allocations[i].resource())) {
        std::cerr << "allocation " << i << " does not match its requirement\n";
        return 1;
      }
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  std::cout << "done" << std::endl;
  return 0;
}

int stress(char** argv) {
  lockable::Lockable lockable(options_for(argv[2], argv[3]));
  const std::string ledger_dir = argv[4];
  const int rounds = std::stoi(argv[5]);
  std::mt19937 random(static_cast<unsigned>(std::stoul(argv[6])));
  std::uniform_int_distribution<int> hold_us(0, 1500);
  const std::string pid = std::to_string(::getpid());
  for (int round = 0; round < rounds; ++round) {
    auto allocation = lockable.lock("");
    const std::string ledger = ledger_dir + "/" + allocation.resource_id() + ".ledger";
    append(ledger, "enter " + pid + " " + std::to_string(monotonic_ns()) + "\n");
    std::this_thread::sleep_for(std::chrono::microseconds(hold_us(random)));
    append(ledger, "leave " + pid + " " + std::to_string(monotonic_ns()) + "\n");
    allocation.unlock();
  }
  std::cout << "done" << std::endl;
  return 0;
}

int ledger(int argc, char** argv) {
  lockable::Lockable lockable(options_for(argv[2], argv[3]));
  const std::string ledger_file = argv[4];
  const std::string name = argv[5];
  const int hold_ms = std::stoi(argv[6]);
  std::vector<lockable::Requirements> requirements;
  for (int i = 7; i < argc; ++i) requirements.push_back(lockable::Requirements::parse(argv[i]));
  auto allocations = lockable.lock_many(requirements);
  append(ledger_file, name + "\n");
  // Holding a while gives a waiter that wrongly claims the device time to show up in the ledger.
  std::this_thread::sleep_for(std::chrono::milliseconds(hold_ms));
  allocations.clear();
  std::cout << "done" << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 2 && std::string(argv[1]) == "exhaust-inotify") {
    int taken = 0;
    while (taken < 100000 && ::inotify_init1(IN_CLOEXEC) >= 0) ++taken;  // kept open until exit
    std::cerr << "test_helper: took " << taken << " inotify instances" << std::endl;
    --argc;
    ++argv;
  }
  const std::string mode = argc > 1 ? argv[1] : "";
  try {
    if (mode == "hold" && argc >= 5) return hold(argc, argv);
    if (mode == "many" && argc >= 6) return many(argc, argv);
    if (mode == "stress" && argc == 7) return stress(argv);
    if (mode == "ledger" && argc >= 8) return ledger(argc, argv);
  } catch (const std::exception& error) {
    std::cout << "error: " << error.what() << std::endl;
    return 1;
  }
  std::cerr << "usage: see the comment at the top of tests/integration/test_helper.cpp\n";
  return 2;
}
