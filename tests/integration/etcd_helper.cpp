// Child process for the etcd tests and benchmarks: locks devices in etcd through the library
// (Lockable with an etcd:// spec), posing as a host of its choice.
//
//   etcd_helper hold <spec> <hostname> <ids> [<timeout-s>]
//       Locks one of the comma-separated <ids>, prints "granted <id> <token>", and "lost <id>
//       <token>" when its loss handler runs; releases on a line on stdin (or EOF), prints
//       "released <id> <token>". A timeout prints "timeout" and exits 3.
//   etcd_helper stress <spec> <hostname> <ids> <ledger-file> <rounds> <seed>
//       Runs <rounds> allocations of any of <ids>, holding each 1-30 ms; appends one record per
//       grant, loss and release to <ledger-file>: "<event> <id> <token> <realtime-us> <pid>".
//       Prints "done".
// Everything the library says goes to stderr.
#include <lockable/lockable.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <ctime>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <thread>

namespace {

long long realtime_us() {
  timespec now{};
  ::clock_gettime(CLOCK_REALTIME, &now);
  return static_cast<long long>(now.tv_sec) * 1000000LL + now.tv_nsec / 1000;
}

void append(const std::string& path, const std::string& line) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) std::exit(2);
  // One write() with O_APPEND: records of concurrent writers never interleave.
  if (::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) std::exit(2);
  ::close(fd);
}

std::unique_ptr<lockable::Lockable> open(const std::string& spec, const std::string& hostname,
                                         const std::string& ids) {
  lockable::Json list = lockable::Json::array();
  std::stringstream stream(ids);
  std::string id;
  while (std::getline(stream, id, ',')) list.push_back({{"id", id}, {"online", true}});
  lockable::Options options;
  options.hostname = hostname;
  options.lock_backend = spec;
  options.log = [](const std::string& line) { std::cerr << line << std::endl; };
  return std::make_unique<lockable::Lockable>(options, lockable::make_list_provider(list),
                                              lockable::make_lock_backend(spec, options.log));
}

std::string token_text(const lockable::Allocation& allocation) {
  const auto token = allocation.fencing_token();
  return token ? std::to_string(*token) : "-";
}

int hold(int argc, char** argv) {
  if (argc < 5) return 64;
  auto lockable = open(argv[2], argv[3], argv[4]);
  const double timeout = argc > 5 ? std::stod(argv[5]) : 60.0;
  lockable::Allocation allocation;
  try {
    allocation = lockable->lock(R"({"hostname": null})", lockable::Seconds(timeout));
  } catch (const lockable::TimeoutError& error) {
    std::cerr << error.what() << std::endl;
    std::cout << "timeout" << std::endl;
    return 3;
  }
  const std::string id = allocation.resource_id();
  const std::string token = token_text(allocation);
  allocation.on_lock_loss([id, token](const std::string& reason) {
    std::cerr << reason << std::endl;
    std::cout << "lost " << id << " " << token << std::endl;
  });
  std::cout << "granted " << id << " " << token << std::endl;
  std::string line;
  std::getline(std::cin, line);
  allocation.unlock();
  std::cout << "released " << id << " " << token << std::endl;
  return 0;
}

int stress(int argc, char** argv) {
  if (argc < 8) return 64;
  auto lockable = open(argv[2], argv[3], argv[4]);
  const std::string ledger = argv[5];
  const int rounds = std::stoi(argv[6]);
  std::mt19937 random(static_cast<unsigned>(std::stoul(argv[7])));
  const std::string pid = std::to_string(::getpid());
  for (int round = 0; round < rounds; ++round) {
    auto allocation = lockable->lock(R"({"hostname": null})", lockable::Seconds(120));
    const std::string id = allocation.resource_id();
    const std::string token = token_text(allocation);
    append(ledger,
           "grant " + id + " " + token + " " + std::to_string(realtime_us()) + " " + pid + "\n");
    allocation.on_lock_loss([&ledger, id, token, pid](const std::string&) {
      append(ledger,
             "lost " + id + " " + token + " " + std::to_string(realtime_us()) + " " + pid + "\n");
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(1 + random() % 30));
    // A holder checks before it ends its work (as a fencing-aware rig helper would): a loss that
    // the keepalive thread has not reported yet (this process was stopped) shows here.
    if (allocation.lost()) {
      append(ledger,
             "lost " + id + " " + token + " " + std::to_string(realtime_us()) + " " + pid + "\n");
    }
    append(ledger,
           "release " + id + " " + token + " " + std::to_string(realtime_us()) + " " + pid + "\n");
    allocation.unlock();
  }
  std::cout << "done" << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  try {
    if (mode == "hold") return hold(argc, argv);
    if (mode == "stress") return stress(argc, argv);
  } catch (const std::exception& error) {
    std::cerr << "etcd_helper: " << error.what() << std::endl;
    std::cout << "error" << std::endl;
    return 1;
  }
  std::cerr << "usage: etcd_helper hold|stress ..." << std::endl;
  return 64;
}
