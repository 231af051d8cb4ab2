// The seeded, randomized fault harness (issue 14): real worker processes lock devices through one
// backend while faults chosen by the seed hit them, every grant and release goes to a history
// file, and history_checker judges the history at the end.
//
//   fault_harness --backend lock_folder|service|etcd|python --seed N --ops M
//                 [--concurrency K] [--grace S] [--faults +rm_held,+late_requests] [--strict]
//                 [--keep] [--verbose]
//   fault_harness --backend B --check HISTORY [--strict]    judges a kept history again
//
// --faults +rm_held: also remove or replace lock files while they are held (an outside fault no
// flock survives: two holders follow until the holder notices). +late_requests: the lock
// service also handles requests late (a delayed release frees the next holder's lock: the
// Lockable.dev API releases by name, without an owner). --strict: a killed holder's command
// still alive at the next grant is a violation (see history_checker.hpp).
//
// Workers: the `lockable` CLI running fault_hold (which records the hold and probes the device),
// and with --backend python also Python-protocol lockers (python_worker.py) in the same lock
// folder. Each worker is its own process group, started with a clean environment, the clock
// shim preloaded (LD_PRELOAD=clock_jump_preload.so) and FAULT_RUN set, by which the end of the
// run finds any process a worker left behind.
//
// The seed fixes every decision (which worker, which fault, when in ticks of 10 ms, how long);
// the processes' own timing does not replay exactly, so a failing seed reproduces the same
// schedule of faults, which is what made it fail in practice. On failure the harness prints the
// seed and the command line that replays it, and keeps its folder (history, worker stderr).

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "history_checker.hpp"
#include "lockable/test/etcd_server.hpp"
#include "lockable/test/files.hpp"
#include "lockable/test/lock_service.hpp"

namespace {

namespace fs = std::filesystem;
using lockable::fault::Guarantees;
using lockable::fault::Verdict;
using nlohmann::json;

const char* const kToken = "fault-harness-token";
constexpr int kDevices = 3;
constexpr double kLease = 2.0;  // etcd TTL and the lock service's lease, seconds

double now() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

std::string env_or(const char* name, const char* fallback) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : fallback;
}

std::string fixed(double value, int digits = 6) {
  char text[48];
  std::snprintf(text, sizeof text, "%.*f", digits, value);
  return text;
}

struct Config {
  std::string backend;
  unsigned long long seed = 1;
  int ops = 40;
  int concurrency = 6;
  double grace = 10;
  bool rm_held = false;
  bool late_requests = false;
  bool strict = false;
  bool keep = false;
  bool verbose = false;
  std::string check;  // --check HISTORY: judge a kept history again, run nothing
  std::string cli = LOCKABLE_CLI_PATH;
  std::string hold = FAULT_HOLD_PATH;
  std::string preload = FAULT_PRELOAD_PATH;
  std::string python = FAULT_PYTHON;
  std::string python_worker = FAULT_PYTHON_WORKER;
};

struct Worker {
  int id = 0;
  pid_t pid = -1;
  bool python = false;
  double start = 0;
  double timeout = 0;
  double hold = 0;
  double stopped_total = 0;
  std::optional<double> stopped_since;
  pid_t stopped_pid = -1;
  pid_t stopped_also = -1;  // stop_holder_and_command: the command too
  bool granted = false;
  bool released = false;
  pid_t command = -1;
  bool exited = false;
  fs::path err;
};

// A worker group of fault kinds: which faults a backend takes.
std::vector<std::string> fault_kinds(const Config& config) {
  std::vector<std::string> kinds = {"kill_holder",       "kill_waiter", "stop_holder",
                                    "stop_waiter",       "term_holder", "resources_invalid",
                                    "resources_changed", "clock_jump"};
  if (config.backend != "python") {
    // python_worker runs no command of its own
    kinds.insert(kinds.end(), {"kill_command", "stop_command", "stop_holder_and_command"});
  }
  if (config.backend == "lock_folder" || config.backend == "python") {
    kinds.insert(kinds.end(), {"rm_queue", "replace_queue", "rm_free_pid", "replace_free_pid"});
    if (config.rm_held) kinds.push_back("rm_held_pid");
  } else if (config.backend == "service") {
    kinds.insert(kinds.end(), {"service_stall", "service_500", "service_drop"});
    if (config.late_requests) kinds.push_back("service_stall_late");
  } else if (config.backend == "etcd") {
    kinds.insert(kinds.end(), {"etcd_kill_member", "etcd_stop_member"});
  }
  return kinds;
}

class Harness {
 public:
  Harness(Config config, fs::path dir)
      : config_(std::move(config)), dir_(std::move(dir)), rng_(config_.seed) {
    run_id_ = std::to_string(::getpid()) + "-" + std::to_string(config_.seed);
    fs::create_directories(dir_ / "devices");
    fs::create_directories(dir_ / "workers");
    fs::create_directories(dir_ / "locks");
    history_path_ = dir_ / "history.jsonl";
    history_ = ::open(history_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    tail_ = ::open(history_path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (history_ < 0 || tail_ < 0)
      throw std::runtime_error("cannot open " + history_path_.string());
    offset_file_ = dir_ / "clock_offset";
    lockable::test::write_file(offset_file_, "0\n");
    write_resources(resources_text(0, -1), true);
    if (config_.backend == "service") {
      service_ = std::make_unique<lockable::test::LockService>(
          std::chrono::milliseconds(static_cast<int>(kLease * 1000)), kToken);
      const std::string base = service_->base_url();
      spec_ = base + "?prefix=fault-&lease=" + fixed(kLease, 1) + "&poll=0.1";
    } else if (config_.backend == "etcd") {
      cluster_ = std::make_unique<lockable::test::EtcdCluster>();
      std::string hosts;
      for (const auto& url : cluster_->endpoints()) {
        hosts += (hosts.empty() ? "" : ",") + url.substr(std::string("http://").size());
      }
      spec_ = "etcd://" + hosts + "/fault?ttl=" + fixed(kLease, 0);
    }
  }

  ~Harness() {
    join_background();
    for (auto& [id, worker] : workers_) {
      if (!worker.exited && worker.pid > 0) {
        ::kill(-worker.pid, SIGKILL);
        ::kill(worker.pid, SIGKILL);
        ::waitpid(worker.pid, nullptr, 0);
      }
    }
    ::close(history_);
    ::close(tail_);
  }

  // Runs the workers and the faults; returns the checker's verdict.
  Verdict run() {
    const auto kinds = fault_kinds(config_);
    int spawned = 0;
    while (spawned < config_.ops || running() > 0) {
      reap();
      tail_history();
      run_due_actions(false);
      // Fewer new workers while resources.json is broken: each would only fail at once (3);
      // the fault is meant for the callers already waiting.
      if (spawned < config_.ops && running() < config_.concurrency &&
          chance(resources_broken_ ? 0.03 : 0.3)) {
        spawn(++spawned);
      }
      if (spawned < config_.ops && chance(0.1)) {
        inject(kinds[pick(kinds.size())]);
      }
      enforce_deadlines();
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    run_due_actions(true);
    join_background();
    finish();
    std::ifstream in(history_path_);
    std::stringstream text;
    text << in.rdbuf();
    Guarantees guarantees;
    guarantees.fencing = config_.backend == "etcd";
    guarantees.grace = config_.grace;
    if (config_.strict) guarantees.kill_race_window = 0;
    return lockable::fault::check_history_text(text.str(), guarantees);
  }

  int orphans_seen() const { return orphans_seen_; }
  int leftover_tickets() const { return leftover_tickets_; }

 private:
  // ---- randomness: every decision comes from the seed ----
  bool chance(double p) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; }
  std::size_t pick(std::size_t n) {
    return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng_);
  }
  double between(double low, double high) {
    return std::uniform_real_distribution<double>(low, high)(rng_);
  }

  // ---- the history ----
  void record(json event) {
    event["t"] = std::stod(fixed(now()));
    const std::string line = event.dump() + "\n";
    if (::write(history_, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
      throw std::runtime_error("cannot write " + history_path_.string());
    }
    if (config_.verbose) std::cerr << line;
  }

  void tail_history() {
    char buffer[65536];
    for (ssize_t n; (n = ::read(tail_, buffer, sizeof buffer)) > 0;)
      pending_.append(buffer, static_cast<std::size_t>(n));
    for (std::size_t newline; (newline = pending_.find('\n')) != std::string::npos;) {
      const json event = json::parse(pending_.substr(0, newline), nullptr, false);
      pending_.erase(0, newline + 1);
      if (!event.is_object()) continue;
      const auto found = workers_.find(event.value("worker", -1));
      if (found == workers_.end()) continue;
      const std::string ev = event.value("ev", "");
      if (ev == "grant") {
        found->second.granted = true;
        found->second.command = static_cast<pid_t>(event.value("pid", -1L));
      } else if (ev == "release") {
        found->second.released = true;
      }
    }
  }

  // ---- resources.json ----
  std::string resources_text(int revision, int offline) const {
    json devices = json::array();
    for (int i = 0; i < kDevices; ++i) {
      devices.push_back({{"id", "d" + std::to_string(i)},
                         {"online", i != offline},
                         {"hostname", "localhost"},
                         {"type", "dut"},
                         {"revision", revision}});
    }
    return devices.dump(1) + "\n";
  }

  // Atomically (rename), or in place, where a reader can see half of it.
  void write_resources(const std::string& text, bool atomic) {
    const fs::path path = dir_ / "resources.json";
    if (atomic) {
      lockable::test::write_file(path, text);
      return;
    }
    std::ofstream out(path, std::ios::trunc);
    out << text.substr(0, text.size() / 2) << std::flush;
    out << text.substr(text.size() / 2);
  }

  // ---- workers ----
  int running() const {
    int count = 0;
    for (const auto& [id, worker] : workers_) count += worker.exited ? 0 : 1;
    return count;
  }

  void spawn(int id) {
    Worker worker;
    worker.id = id;
    worker.python = config_.backend == "python" && chance(0.4);
    worker.timeout = std::round(between(0.5, 4.0) * 10) / 10;
    worker.hold = std::round(between(0.02, 0.6) * 1000) / 1000;
    worker.err = dir_ / "workers" / (std::to_string(id) + ".err");
    const bool any = chance(0.5);
    const std::string device = "d" + std::to_string(pick(kDevices));
    const std::string hold_ms = std::to_string(static_cast<int>(worker.hold * 1000));
    std::vector<std::string> argv;
    if (worker.python) {
      // -B: no __pycache__ next to python_pid_lock.py in the source tree.
      argv = {config_.python,
              "-B",
              config_.python_worker,
              history_path_.string(),
              (dir_ / "devices").string(),
              (dir_ / "locks").string(),
              fixed(worker.timeout, 1),
              hold_ms};
      if (any) {
        for (int i = 0; i < kDevices; ++i) argv.push_back("d" + std::to_string(i));
      } else {
        argv.push_back(device);
      }
    } else {
      argv = {config_.cli,
              "--resources",
              (dir_ / "resources.json").string(),
              "--hostname",
              "localhost",
              "--requirements",
              any ? "type=dut" : "id=" + device,
              "--timeout",
              fixed(worker.timeout, 1)};
      if (spec_.empty()) {
        argv.insert(argv.end(), {"--lock-folder", (dir_ / "locks").string()});
      } else {
        argv.insert(argv.end(), {"--lock-backend", spec_});
      }
      argv.insert(argv.end(), {"--no-shell", config_.hold, history_path_.string(),
                               (dir_ / "devices").string(), hold_ms});
    }
    std::vector<std::string> env = {
        "PATH=/usr/local/bin:/usr/bin:/bin",
        "HOME=" + dir_.string(),
        "FAULT_WORKER=" + std::to_string(id),
        "FAULT_RUN=" + run_id_,
        "FAULT_CLOCK_OFFSET_FILE=" + offset_file_.string(),
        "LD_PRELOAD=" + config_.preload,
        "LOCKABLE_STOP_GRACE=1",
        "LOCKABLE_AUTH_TOKEN=" + std::string(kToken),
        // Under AddressSanitizer (CI's sanitizer stage) the preloaded shim comes before the
        // sanitizer's runtime, which it would otherwise refuse.
        "ASAN_OPTIONS=" + env_or("ASAN_OPTIONS", "") + ":verify_asan_link_order=0",
        "UBSAN_OPTIONS=" + env_or("UBSAN_OPTIONS", ""),
    };
    std::vector<char*> args;
    for (auto& word : argv) args.push_back(word.data());
    args.push_back(nullptr);
    std::vector<char*> envp;
    for (auto& entry : env) envp.push_back(entry.data());
    envp.push_back(nullptr);
    const int err = ::open(worker.err.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    const int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    const pid_t parent = ::getpid();
    record({{"ev", "start"},
            {"worker", id},
            {"timeout", worker.timeout},
            {"hold", worker.hold},
            {"python", worker.python},
            {"argv", argv}});
    worker.start = now();
    const pid_t pid = ::fork();
    if (pid == 0) {
      // Only async-signal-safe calls: the harness has threads (the lock service's).
      ::setpgid(0, 0);
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // a killed harness leaves no worker behind
      if (::getppid() != parent) ::_exit(127);
      ::dup2(null, 0);
      ::dup2(null, 1);
      ::dup2(err, 2);
      ::execve(args[0], args.data(), envp.data());
      ::_exit(127);
    }
    ::close(err);
    ::close(null);
    if (pid < 0) throw std::runtime_error("fork failed");
    worker.pid = pid;
    workers_[id] = worker;
  }

  static std::string last_line(const fs::path& path) {
    std::ifstream in(path);
    std::string line, last;
    while (std::getline(in, line)) {
      if (line.find_first_not_of(" \t\r") != std::string::npos) last = line;
    }
    return last;
  }

  void reap() {
    for (auto& [id, worker] : workers_) {
      if (worker.exited) continue;
      int status = 0;
      if (::waitpid(worker.pid, &status, WNOHANG) != worker.pid) continue;
      worker.exited = true;
      if (worker.stopped_since) cont(worker);
      tail_history();
      const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      record({{"ev", "exit"}, {"worker", id}, {"code", code}, {"reason", last_line(worker.err)}});
      ++finished_;
    }
  }

  // A worker that outlived every bound is killed, without a fault record: the checker then
  // reports it as hung.
  void enforce_deadlines() {
    const double t = now();
    for (auto& [id, worker] : workers_) {
      if (worker.exited) continue;
      const double stopped =
          worker.stopped_total + (worker.stopped_since ? t - *worker.stopped_since : 0);
      if (t > worker.start + worker.timeout + worker.hold + config_.grace + stopped + 5) {
        std::cerr << "fault_harness: worker " << id << " hung; killing it\n";
        ::kill(-worker.pid, SIGKILL);
        ::kill(worker.pid, SIGKILL);
      }
    }
  }

  // ---- timed actions (SIGCONT, repairs) ----
  void later(double delay, std::function<void()> action) {
    actions_.push_back({now() + delay, std::move(action)});
  }

  void run_due_actions(bool all) {
    const double t = now();
    for (std::size_t i = 0; i < actions_.size();) {
      if (all || actions_[i].first <= t) {
        auto action = std::move(actions_[i].second);
        actions_.erase(actions_.begin() + static_cast<long>(i));
        action();
      } else {
        ++i;
      }
    }
  }

  void cont(Worker& worker) {
    if (!worker.stopped_since) return;
    ::kill(worker.stopped_pid, SIGCONT);
    if (worker.stopped_also > 0) ::kill(worker.stopped_also, SIGCONT);
    worker.stopped_also = -1;
    worker.stopped_total += now() - *worker.stopped_since;
    worker.stopped_since.reset();
    record({{"ev", "cont"}, {"worker", worker.id}});
  }

  // ---- faults ----
  Worker* choose(const std::function<bool(const Worker&)>& want) {
    std::vector<Worker*> candidates;
    for (auto& [id, worker] : workers_) {
      if (!worker.exited && !worker.stopped_since && want(worker)) candidates.push_back(&worker);
    }
    if (candidates.empty()) return nullptr;
    return candidates[pick(candidates.size())];
  }

  bool holding(const Worker& worker) const { return worker.granted && !worker.released; }

  void fault(const std::string& kind, json details = json::object()) {
    details["ev"] = "fault";
    details["kind"] = kind;
    record(details);
  }

  void signal_fault(const std::string& kind, Worker* worker, pid_t target, int signal) {
    if (worker == nullptr || target <= 0) return;
    fault(kind, {{"worker", worker->id}, {"pid", target}});
    ::kill(target, signal);
  }

  void stop_fault(const std::string& kind, Worker* worker, pid_t target, double max_seconds,
                  pid_t also = -1) {
    if (worker == nullptr || target <= 0) return;
    const double duration = between(0.1, max_seconds);
    fault(kind, {{"worker", worker->id}, {"pid", target}, {"seconds", duration}});
    record({{"ev", "stop"}, {"worker", worker->id}});
    worker->stopped_since = now();
    worker->stopped_pid = target;
    ::kill(target, SIGSTOP);
    if (also > 0) {
      worker->stopped_also = also;
      ::kill(also, SIGSTOP);
    }
    const int id = worker->id;
    later(duration, [this, id] { cont(workers_.at(id)); });
  }

  // A free lock file (no flock on it) is removed or replaced, holding its flock meanwhile so
  // that nobody holds it while we do.
  void pid_file_fault(const std::string& kind, bool replace, bool even_if_held) {
    const std::string device = "d" + std::to_string(pick(kDevices));
    const fs::path path = dir_ / "locks" / (device + ".pid");
    const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return;
    if (!even_if_held && ::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      ::close(fd);
      return;
    }
    fault(kind, {{"device", device}});
    if (replace) {
      const fs::path temp = path.string() + ".harness-tmp";
      { std::ofstream out(temp); }
      ::chmod(temp.c_str(), 0666);
      ::rename(temp.c_str(), path.c_str());
    } else {
      ::unlink(path.c_str());
    }
    ::close(fd);
  }

  void inject(const std::string& kind) {
    const double stop_max = config_.backend == "service" ? kLease / 2 : 3.5;
    if (kind == "kill_holder") {
      Worker* w = choose([this](const Worker& x) { return holding(x); });
      signal_fault(kind, w, w ? w->pid : -1, SIGKILL);
    } else if (kind == "kill_waiter") {
      Worker* w = choose([](const Worker& x) { return !x.granted; });
      signal_fault(kind, w, w ? w->pid : -1, SIGKILL);
    } else if (kind == "kill_command") {
      Worker* w = choose([this](const Worker& x) { return holding(x) && !x.python; });
      signal_fault(kind, w, w ? w->command : -1, SIGKILL);
    } else if (kind == "term_holder") {
      Worker* w = choose([this](const Worker& x) { return holding(x); });
      signal_fault(kind, w, w ? w->pid : -1, SIGTERM);
    } else if (kind == "stop_holder") {
      Worker* w = choose([this](const Worker& x) { return holding(x); });
      stop_fault(kind, w, w ? w->pid : -1, stop_max);
    } else if (kind == "stop_holder_and_command") {
      // The whole holder frozen (a suspended VM): past a lease, its command still has the device
      // when the next holder starts, and only a larger fencing token tells them apart.
      Worker* w = choose([this](const Worker& x) { return holding(x) && !x.python; });
      stop_fault(kind, w, w ? w->pid : -1, stop_max, w ? w->command : -1);
    } else if (kind == "stop_waiter") {
      Worker* w = choose([](const Worker& x) { return !x.granted; });
      stop_fault(kind, w, w ? w->pid : -1, 6.0);
    } else if (kind == "stop_command") {
      Worker* w = choose([this](const Worker& x) { return holding(x) && !x.python; });
      stop_fault(kind, w, w ? w->command : -1, 2.0);
    } else if (kind == "resources_invalid") {
      if (resources_broken_) return;
      resources_broken_ = true;
      const double duration = between(0.1, 1.0);
      fault(kind, {{"seconds", duration}});
      write_resources(chance(0.5) ? "[{\"id\": \"d0\", \"online\": tru" : "{\"not\": \"a list\"}\n",
                      chance(0.5));
      later(duration, [this] {
        resources_broken_ = false;
        write_resources(resources_text(++revision_, -1), chance(0.5));
      });
    } else if (kind == "resources_changed") {
      if (resources_broken_) return;
      const int offline = chance(0.3) ? static_cast<int>(pick(kDevices)) : -1;
      fault(kind, {{"offline", offline}});
      write_resources(resources_text(++revision_, offline), chance(0.5));
      if (offline >= 0) {
        resources_broken_ = true;
        later(between(0.2, 1.5), [this] {
          resources_broken_ = false;
          write_resources(resources_text(++revision_, -1), true);
        });
      }
    } else if (kind == "clock_jump") {
      static const double kJumps[] = {3600, -3600, 86400 * 3, -86400, 30, -30, 1.5};
      const double offset = kJumps[pick(sizeof kJumps / sizeof kJumps[0])];
      fault(kind, {{"offset", offset}});
      lockable::test::write_file(offset_file_, fixed(offset, 3) + "\n");
      if (chance(0.7)) {
        later(between(0.2, 3), [this] { lockable::test::write_file(offset_file_, "0\n"); });
      }
    } else if (kind == "rm_queue" || kind == "replace_queue") {
      const fs::path queue = dir_ / "locks" / ".lockable-queue";
      if (!fs::exists(queue)) return;
      fault(kind);
      std::error_code ignored;
      if (kind == "rm_queue") {
        fs::remove_all(queue, ignored);
      } else {
        // Moved aside (its waiters keep their open tickets) and a fresh empty one made.
        fs::rename(queue, dir_ / ("old-queue-" + std::to_string(++replaced_)), ignored);
        fs::create_directory(queue, ignored);
        ::chmod(queue.c_str(), 01777);
      }
    } else if (kind == "rm_free_pid") {
      pid_file_fault(kind, false, false);
    } else if (kind == "replace_free_pid") {
      pid_file_fault(kind, true, false);
    } else if (kind == "rm_held_pid") {
      pid_file_fault(kind, chance(0.5), true);
    } else if (kind == "service_stall" || kind == "service_stall_late") {
      // service_stall: every answer comes late (handled on arrival); service_stall_late: every
      // request is handled late, as by a server that queued it (opt-in, see --faults).
      if (service_busy_) return;
      service_busy_ = true;
      const double delay = between(0.3, 3.5);
      const double duration = between(0.5, 4.0);
      fault(kind, {{"delay", delay}, {"seconds", duration}});
      const auto ms = std::chrono::milliseconds(static_cast<int>(delay * 1000));
      const bool late = kind == "service_stall_late";
      if (late) {
        service_->set_delay(ms);
      } else {
        service_->set_answer_delay(ms);
      }
      later(duration, [this, late] {
        if (late) {
          service_->set_delay(std::chrono::milliseconds(0));
        } else {
          service_->set_answer_delay(std::chrono::milliseconds(0));
        }
        service_busy_ = false;
      });
    } else if (kind == "service_500") {
      if (service_busy_) return;
      service_busy_ = true;
      const double duration = between(0.2, 3.0);
      fault(kind, {{"seconds", duration}});
      service_->set_error_status(500);
      later(duration, [this] {
        service_->set_error_status(0);
        service_busy_ = false;
      });
    } else if (kind == "service_drop") {
      if (service_busy_) return;
      service_busy_ = true;
      const double duration = between(0.1, 2.0);
      fault(kind, {{"seconds", duration}});
      // stop() may wait for kept-alive connections: never in the loop that reaps the workers.
      in_background([this, duration] {
        service_->server().stop();
        std::this_thread::sleep_for(std::chrono::duration<double>(duration));
        service_->server().restart();
        service_busy_ = false;
      });
    } else if (kind == "etcd_kill_member" || kind == "etcd_stop_member") {
      if (etcd_busy_) return;
      etcd_busy_ = true;
      const std::size_t member = pick(cluster_->size());
      const double duration = between(0.3, 3.0);
      fault(kind, {{"member", member}, {"seconds", duration}});
      if (kind == "etcd_kill_member") {
        // restart() waits for the member's health: never in the loop that reaps the workers.
        in_background([this, member, duration] {
          cluster_->member(member).kill();
          std::this_thread::sleep_for(std::chrono::duration<double>(duration));
          try {
            cluster_->member(member).restart();
          } catch (const std::exception& error) {
            std::cerr << "fault_harness: etcd member " << member
                      << " did not come back: " << error.what() << "\n";
          }
          etcd_busy_ = false;
        });
      } else {
        cluster_->member(member).pause();
        later(duration, [this, member] {
          cluster_->member(member).resume();
          etcd_busy_ = false;
        });
      }
    }
  }

  // One fault action at a time off the main loop (a server stopped and restarted).
  void in_background(std::function<void()> action) {
    join_background();
    background_ = std::thread(std::move(action));
  }
  void join_background() {
    if (background_.joinable()) background_.join();
  }

  // ---- the end: nothing held, no stray file or process ----
  std::vector<std::string> stray_processes() {
    std::vector<std::string> found;
    const std::string marker = "FAULT_RUN=" + run_id_;
    DIR* proc = ::opendir("/proc");
    if (proc == nullptr) return found;
    while (const dirent* entry = ::readdir(proc)) {
      const std::string name = entry->d_name;
      if (name.find_first_not_of("0123456789") != std::string::npos) continue;
      if (std::stol(name) == ::getpid()) continue;
      std::ifstream environ_file("/proc/" + name + "/environ", std::ios::binary);
      const std::string environ_text =
          std::string(1, '\0') + std::string(std::istreambuf_iterator<char>(environ_file), {}) +
          '\0';
      if (environ_text.find('\0' + marker + '\0') == std::string::npos) continue;
      std::ifstream stat_file("/proc/" + name + "/stat");
      std::string stat_text;
      std::getline(stat_file, stat_text);
      const auto close = stat_text.rfind(')');
      if (close == std::string::npos || stat_text.size() < close + 3 ||
          stat_text[close + 2] == 'Z') {
        continue;  // gone, or a zombie: nothing runs
      }
      found.push_back(name + " " + stat_text.substr(0, close + 1));
    }
    ::closedir(proc);
    return found;
  }

  void finish() {
    json held = json::array(), stray_files = json::array(), processes = json::array();
    // Processes first: orphaned commands are killed by their parent's death signal.
    std::vector<std::string> strays;
    for (int i = 0; i < 100; ++i) {
      strays = stray_processes();
      if (strays.empty()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    for (const auto& item : strays) {
      processes.push_back(item);
      ::kill(static_cast<pid_t>(std::stol(item)), SIGKILL);
    }
    if (spec_.empty()) {
      const fs::path locks = dir_ / "locks";
      for (const auto& entry : fs::recursive_directory_iterator(locks)) {
        if (!entry.is_regular_file()) continue;
        const fs::path path = entry.path();
        if (lockable::test::is_flocked(path)) {
          held.push_back(fs::relative(path, dir_).string());
          continue;
        }
        const std::string text = lockable::test::read_text(path);
        const long pid = std::atol(text.c_str());
        if (path.extension() == ".pid" && pid > 0 && ::kill(static_cast<pid_t>(pid), 0) == 0) {
          stray_files.push_back(fs::relative(path, dir_).string() + " names live pid " +
                                std::to_string(pid));
        } else if (path.extension() == ".ticket") {
          ++leftover_tickets_;  // a killed waiter's; the next waiter removes it
        }
      }
    } else if (service_) {
      const auto deadline = now() + kLease + 3;
      for (int i = 0; i < kDevices; ++i) {
        const std::string name = "fault-d" + std::to_string(i);
        while (service_->held(name) && now() < deadline) {
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        if (service_->held(name)) held.push_back(name);
      }
    } else if (cluster_) {
      const auto deadline = now() + kLease + 5;
      std::vector<std::string> keys;
      do {
        keys = etcd_keys();
        if (keys.empty()) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      } while (now() < deadline);
      for (const auto& key : keys) held.push_back(key);
    }
    record({{"ev", "end"},
            {"held", held},
            {"stray_files", stray_files},
            {"stray_processes", processes}});
  }

  std::vector<std::string> etcd_keys() {
    std::vector<std::string> keys;
    for (std::size_t i = 0; i < cluster_->size(); ++i) {
      if (!cluster_->member(i).running()) continue;
      // "/fault/" .. "/fault0", base64.
      const auto answer = lockable::test::http_call(
          cluster_->member(i).client_port(), "POST", "/v3/kv/range",
          R"({"key":"L2ZhdWx0Lw==","range_end":"L2ZhdWx0MA==","keys_only":true})");
      if (!answer || answer->status != 200) continue;
      const json body = json::parse(answer->body, nullptr, false);
      if (body.is_object() && body.contains("kvs")) {
        for (const auto& kv : body["kvs"])
          keys.push_back("etcd key (base64) " + kv.value("key", ""));
      }
      return keys;
    }
    keys.push_back("no etcd member answered a range read at the end");
    return keys;
  }

  Config config_;
  fs::path dir_;
  std::mt19937_64 rng_;
  std::string run_id_;
  fs::path history_path_, offset_file_;
  int history_ = -1, tail_ = -1;
  std::string pending_;
  std::string spec_;
  std::unique_ptr<lockable::test::LockService> service_;
  std::unique_ptr<lockable::test::EtcdCluster> cluster_;
  std::map<int, Worker> workers_;
  std::vector<std::pair<double, std::function<void()>>> actions_;
  int finished_ = 0, revision_ = 0, replaced_ = 0, orphans_seen_ = 0, leftover_tickets_ = 0;
  bool resources_broken_ = false;
  std::atomic<bool> service_busy_{false}, etcd_busy_{false};
  std::thread background_;
};

int usage(const std::string& problem) {
  std::cerr
      << "fault_harness: " << problem
      << "\nusage: fault_harness --backend lock_folder|service|etcd|python --seed N --ops M"
         " [--concurrency K] [--grace SECONDS] [--faults +rm_held,+late_requests] [--strict]"
         " [--keep] [--verbose]\n       fault_harness --backend B --check HISTORY [--strict]\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  Config config;
  bool seeded = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(arg + " needs a value");
      return argv[++i];
    };
    try {
      if (arg == "--backend") {
        config.backend = value();
      } else if (arg == "--seed") {
        config.seed = std::stoull(value());
        seeded = true;
      } else if (arg == "--ops") {
        config.ops = std::stoi(value());
      } else if (arg == "--concurrency") {
        config.concurrency = std::stoi(value());
      } else if (arg == "--grace") {
        config.grace = std::stod(value());
      } else if (arg == "--faults") {
        std::stringstream faults(value());
        for (std::string item; std::getline(faults, item, ',');) {
          if (item == "+rm_held") {
            config.rm_held = true;
          } else if (item == "+late_requests") {
            config.late_requests = true;
          } else {
            return usage("--faults takes +rm_held,+late_requests");
          }
        }
      } else if (arg == "--strict") {
        config.strict = true;
      } else if (arg == "--check") {
        config.check = value();
      } else if (arg == "--keep") {
        config.keep = true;
      } else if (arg == "--verbose") {
        config.verbose = true;
      } else {
        return usage("unknown argument " + arg);
      }
    } catch (const std::exception& error) {
      return usage(arg + ": " + error.what());
    }
  }
  const std::set<std::string> backends = {"lock_folder", "service", "etcd", "python"};
  if (backends.count(config.backend) == 0) return usage("--backend is required");
  if (config.ops <= 0 || config.concurrency <= 0)
    return usage("--ops and --concurrency must be positive");
  if (!seeded) config.seed = std::random_device{}();
  if (!config.check.empty()) {
    std::ifstream in(config.check);
    if (!in) return usage("cannot read " + config.check);
    std::stringstream text;
    text << in.rdbuf();
    Guarantees guarantees;
    guarantees.fencing = config.backend == "etcd";
    guarantees.grace = config.grace;
    if (config.strict) guarantees.kill_race_window = 0;
    const Verdict verdict = lockable::fault::check_history_text(text.str(), guarantees);
    for (const auto& line : verdict.parse_errors) std::cout << "  " << line << "\n";
    for (const auto& line : verdict.violations) std::cout << "  " << line << "\n";
    std::cout << "fault_harness: " << config.check << ": " << verdict.workers << " workers, "
              << verdict.grants << " grants, " << verdict.kill_races
              << " kill races: " << (verdict.ok() ? "passed" : "FAILED") << std::endl;
    return verdict.ok() ? 0 : 1;
  }
  std::string replay = "fault_harness --backend " + config.backend + " --seed " +
                       std::to_string(config.seed) + " --ops " + std::to_string(config.ops);
  if (config.concurrency != 6) replay += " --concurrency " + std::to_string(config.concurrency);
  if (config.rm_held || config.late_requests) {
    replay += std::string(" --faults ") + (config.rm_held ? "+rm_held" : "") +
              (config.rm_held && config.late_requests ? "," : "") +
              (config.late_requests ? "+late_requests" : "");
  }
  if (config.strict) replay += " --strict";
  std::cout << "fault_harness: " << replay << std::endl;
  if (config.backend == "etcd" && !lockable::test::etcd_program()) {
    std::cout << "fault_harness: no etcd on PATH (apt-get install etcd-server); skipped\n";
    return 77;
  }

  char pattern[] = "/tmp/lockable-fault-XXXXXX";
  if (::mkdtemp(pattern) == nullptr) {
    std::perror("fault_harness: mkdtemp");
    return 2;
  }
  const fs::path dir = pattern;
  Verdict verdict;
  int leftover_tickets = 0;
  try {
    Harness harness(config, dir);
    verdict = harness.run();
    leftover_tickets = harness.leftover_tickets();
  } catch (const std::exception& error) {
    std::cout << "fault_harness: FAILED seed " << config.seed << ": " << error.what()
              << "\n  replay: " << replay << "\n  files: " << dir.string() << std::endl;
    return 1;
  }
  json counts = {{"backend", config.backend},
                 {"seed", config.seed},
                 {"workers", verdict.workers},
                 {"grants", verdict.grants},
                 {"timeouts", verdict.timeouts},
                 {"failures", verdict.failures},
                 {"killed", verdict.killed},
                 {"lost", verdict.lost},
                 {"fenced_overlaps", verdict.accepted_fenced_overlaps},
                 {"kill_races", verdict.kill_races},
                 {"faults", verdict.faults},
                 {"leftover_tickets", leftover_tickets},
                 {"violations", verdict.violations.size() + verdict.parse_errors.size()}};
  std::cout << "fault_harness_counts " << counts.dump() << std::endl;
  if (!verdict.ok()) {
    for (const auto& line : verdict.parse_errors) std::cout << "  " << line << "\n";
    for (const auto& line : verdict.violations) std::cout << "  " << line << "\n";
    std::cout << "fault_harness: FAILED seed " << config.seed << "\n  replay: " << replay
              << "\n  history and worker stderr: " << dir.string() << std::endl;
    return 1;
  }
  std::cout << "fault_harness: passed" << std::endl;
  if (config.keep) {
    std::cout << "fault_harness: files kept in " << dir.string() << std::endl;
  } else {
    std::error_code ignored;
    fs::remove_all(dir, ignored);
  }
  return 0;
}
