#include "history_checker.hpp"

#include <algorithm>
#include <cstdio>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

namespace lockable::fault {
namespace {

using nlohmann::json;

std::string seconds(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.3f s", value);
  return text;
}

std::string at(const Event& event) { return "line " + std::to_string(event.line); }

std::vector<std::string> strings_of(const json& object, const char* key) {
  std::vector<std::string> out;
  const auto found = object.find(key);
  if (found == object.end() || !found->is_array()) return out;
  for (const auto& item : *found)
    out.push_back(item.is_string() ? item.get<std::string>() : item.dump());
  return out;
}

std::optional<long long> optional_integer(const json& object, const char* key) {
  const auto found = object.find(key);
  if (found == object.end() || found->is_null()) return std::nullopt;
  if (found->is_number_integer()) return found->get<long long>();
  // LOCKABLE_FENCING_TOKEN comes from the environment as text.
  if (found->is_string() && !found->get<std::string>().empty()) {
    try {
      return std::stoll(found->get<std::string>());
    } catch (const std::exception&) {
      return std::nullopt;
    }
  }
  return std::nullopt;
}

bool killed_by_signal(int code) { return code > 128 && code < 128 + 65; }

struct Worker {
  const Event* start = nullptr;
  const Event* grant = nullptr;
  const Event* release = nullptr;
  const Event* exit = nullptr;
  bool fault_signalled = false;         // a kill_* or term_* fault targeted it
  std::optional<double> holder_killed;  // when a kill_holder or kill_waiter fault hit it
  double stopped = 0;                   // seconds its processes were stopped by the harness
  std::optional<double> stopped_since;
};

}  // namespace

std::vector<Event> parse_history(const std::string& text, std::vector<std::string>* errors) {
  std::vector<Event> events;
  std::istringstream lines(text);
  std::string line;
  int number = 0;
  while (std::getline(lines, line)) {
    ++number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const json object = json::parse(line, nullptr, false);
    if (!object.is_object() || !object.contains("t") || !object["t"].is_number() ||
        !object.contains("ev") || !object["ev"].is_string()) {
      if (errors != nullptr) {
        errors->push_back("line " + std::to_string(number) +
                          ": not an event (a JSON object with a number \"t\" and a string "
                          "\"ev\"): a torn or interleaved write");
      }
      continue;
    }
    Event event;
    event.line = number;
    event.t = object["t"].get<double>();
    event.ev = object["ev"].get<std::string>();
    event.worker = object.value("worker", -1);
    event.pid = object.value("pid", 0L);
    event.device = object.value("device", "");
    event.token = optional_integer(object, "token");
    event.busy = object.value("busy", false);
    event.prev_worker = object.value("prev_worker", -1);
    event.prev_token = optional_integer(object, "prev_token");
    event.why = object.value("why", "");
    event.kind = object.value("kind", "");
    event.timeout = object.value("timeout", 0.0);
    event.hold = object.value("hold", 0.0);
    event.code = object.value("code", 0);
    event.reason = object.value("reason", "");
    event.held = strings_of(object, "held");
    event.stray_files = strings_of(object, "stray_files");
    event.stray_processes = strings_of(object, "stray_processes");
    events.push_back(std::move(event));
  }
  return events;
}

Verdict check_history(std::vector<Event> events, const Guarantees& guarantees) {
  Verdict verdict;
  std::stable_sort(events.begin(), events.end(),
                   [](const Event& a, const Event& b) { return a.t < b.t; });
  auto violation = [&verdict](std::string text) { verdict.violations.push_back(std::move(text)); };

  std::map<int, Worker> workers;
  std::map<std::string, std::vector<int>> grants_by_device;  // in grant order
  const Event* end = nullptr;
  for (const Event& event : events) {
    Worker* worker = event.worker >= 0 ? &workers[event.worker] : nullptr;
    const std::string who = "worker " + std::to_string(event.worker);
    if (event.ev == "start") {
      if (worker->start != nullptr) violation(at(event) + ": " + who + " started twice");
      worker->start = &event;
    } else if (event.ev == "grant") {
      if (worker == nullptr || worker->start == nullptr) {
        violation(at(event) + ": a grant of " + event.device + " by " + who +
                  ", which the harness never started");
        continue;
      }
      if (worker->grant != nullptr) {
        violation(at(event) + ": " + who + " granted twice (" + worker->grant->device + ", then " +
                  event.device + ")");
        continue;
      }
      worker->grant = &event;
      grants_by_device[event.device].push_back(event.worker);
      ++verdict.grants;
    } else if (event.ev == "release") {
      if (worker == nullptr || worker->grant == nullptr || worker->grant->device != event.device) {
        violation(at(event) + ": " + who + " released " + event.device + " without holding it");
        continue;
      }
      if (worker->release == nullptr) worker->release = &event;
    } else if (event.ev == "exit") {
      if (worker == nullptr || worker->start == nullptr) {
        violation(at(event) + ": the exit of " + who + ", which the harness never started");
        continue;
      }
      worker->exit = &event;
    } else if (event.ev == "stop") {
      if (worker != nullptr && !worker->stopped_since) worker->stopped_since = event.t;
    } else if (event.ev == "cont") {
      if (worker != nullptr && worker->stopped_since) {
        worker->stopped += event.t - *worker->stopped_since;
        worker->stopped_since.reset();
      }
    } else if (event.ev == "fault") {
      ++verdict.faults[event.kind];
      if (worker != nullptr &&
          (event.kind.rfind("kill_", 0) == 0 || event.kind.rfind("term_", 0) == 0)) {
        worker->fault_signalled = true;
        // kill_waiter too: the harness may not have seen the grant of a waiter it killed.
        if (event.kind == "kill_holder" || event.kind == "kill_waiter") {
          worker->holder_killed = event.t;
        }
      }
    } else if (event.ev == "end") {
      end = &event;
    }
  }

  // Mutual exclusion, from recorded hold intervals and from the device probe.
  for (const auto& [device, holders] : grants_by_device) {
    for (std::size_t j = 0; j < holders.size(); ++j) {
      const Worker& later = workers[holders[j]];
      const Event& grant = *later.grant;
      if (guarantees.fencing) {
        if (!grant.token) {
          violation(at(grant) + ": worker " + std::to_string(grant.worker) + " was granted " +
                    device + " without a fencing token");
        } else if (j > 0) {
          const Event& before = *workers[holders[j - 1]].grant;
          if (before.token && *grant.token <= *before.token) {
            violation(at(grant) + ": fencing token " + std::to_string(*grant.token) + " of " +
                      device + " (worker " + std::to_string(grant.worker) +
                      ") is not larger than the earlier grant's " + std::to_string(*before.token) +
                      " (" + at(before) + ")");
          }
        }
      }
      const auto fenced = [&](std::optional<long long> older) {
        return guarantees.fencing && grant.token && older && *grant.token > *older;
      };
      for (std::size_t i = 0; i < j; ++i) {
        const Worker& earlier = workers[holders[i]];
        if (earlier.release == nullptr || grant.t >= earlier.release->t) continue;
        if (fenced(earlier.grant->token)) {
          ++verdict.accepted_fenced_overlaps;
          continue;
        }
        violation(at(grant) + ": worker " + std::to_string(grant.worker) + " was granted " +
                  device + " at " + seconds(grant.t) + " while worker " +
                  std::to_string(earlier.grant->worker) + " held it (granted " +
                  at(*earlier.grant) + ", released " + at(*earlier.release) + " at " +
                  seconds(earlier.release->t) + ")");
      }
      if (grant.busy) {
        const auto previous = workers.find(grant.prev_worker);
        const bool told_to_stop = previous != workers.end() &&
                                  previous->second.release != nullptr &&
                                  previous->second.release->t <= grant.t;
        const auto killed_just_before = [&](const Worker& other) {
          return other.holder_killed && grant.t >= *other.holder_killed &&
                 grant.t - *other.holder_killed <= guarantees.kill_race_window;
        };
        bool kill_race = previous != workers.end() && killed_just_before(previous->second);
        if (previous == workers.end()) {
          // The user never said who it was: a command killed with its lockable before it could
          // write, by a worker whose grant the history never saw.
          for (const auto& [other_id, other] : workers) {
            if (other.grant == nullptr && killed_just_before(other)) kill_race = true;
          }
        }
        if (fenced(grant.prev_token)) {
          ++verdict.accepted_fenced_overlaps;
        } else if (kill_race && !told_to_stop) {
          ++verdict.kill_races;
        } else if (!told_to_stop) {
          violation(at(grant) + ": worker " + std::to_string(grant.worker) + " was granted " +
                    device + " while worker " + std::to_string(grant.prev_worker) +
                    "'s command still used it (the device was busy)");
        }
      }
    }
  }

  // Every waiter granted, or ended with a reason, in time.
  for (const auto& [id, worker] : workers) {
    if (worker.start == nullptr) continue;  // reported above with its grant or exit
    ++verdict.workers;
    const std::string who = "worker " + std::to_string(id);
    if (worker.exit == nullptr) {
      violation(at(*worker.start) + ": " + who + " never ended");
      continue;
    }
    const Event& start = *worker.start;
    const Event& exit = *worker.exit;
    const double stopped =
        worker.stopped + (worker.stopped_since ? exit.t - *worker.stopped_since : 0);
    const double limit = start.timeout + guarantees.grace + stopped;
    const int code = exit.code;
    if (worker.grant != nullptr) {
      const double wait = worker.grant->t - start.t;
      if (wait > limit) {
        violation(at(*worker.grant) + ": " + who + " was granted after waiting " + seconds(wait) +
                  ", past its timeout " + seconds(start.timeout) + " + grace");
      }
      if (exit.t - start.t > limit + start.hold) {
        violation(at(exit) + ": " + who + " ended " + seconds(exit.t - start.t) +
                  " after it started, past its timeout + hold + grace");
      }
      if (code == kExitLockLost) {
        ++verdict.lost;
      } else if (killed_by_signal(code) && worker.fault_signalled) {
        ++verdict.killed;
      } else if (code != 0) {
        violation(at(exit) + ": " + who + " held " + worker.grant->device + " and ended with " +
                  std::to_string(code) + ": " + exit.reason);
      }
      continue;
    }
    if (killed_by_signal(code) && worker.fault_signalled) {
      ++verdict.killed;
      continue;
    }
    if (code == kExitLockLost && !exit.reason.empty()) {
      ++verdict.lost;  // lost before its command recorded the grant
      continue;
    }
    const double waited = exit.t - start.t;
    if (code == kExitTimeout || code == kExitResourcesInvalid || code == kExitBackendError ||
        code == kExitNoMatch) {
      if (exit.reason.empty()) {
        violation(at(exit) + ": " + who + " ended with " + std::to_string(code) +
                  " and said nothing about why");
      }
      if (waited > limit) {
        violation(at(exit) + ": " + who + " ended with " + std::to_string(code) + " after " +
                  seconds(waited) + ", past its timeout " + seconds(start.timeout) +
                  " + grace: " + exit.reason);
      }
      if (code == kExitTimeout) {
        ++verdict.timeouts;
        // Start is recorded before the fork and exit after the reap: a worker that timed out
        // sooner measured its deadline on a clock that jumped.
        if (waited < start.timeout - 0.01) {
          violation(at(exit) + ": " + who + " timed out after " + seconds(waited) +
                    ", before its timeout " + seconds(start.timeout) + ": " + exit.reason);
        }
      } else {
        ++verdict.failures;
      }
      continue;
    }
    violation(at(exit) + ": " + who + " ended with " + std::to_string(code) +
              " without a grant or a known reason: " + exit.reason);
  }

  if (end == nullptr) {
    violation("no end event: the run did not finish");
  } else {
    for (const auto& item : end->held) violation(at(*end) + ": still held at the end: " + item);
    for (const auto& item : end->stray_files)
      violation(at(*end) + ": stray file at the end: " + item);
    for (const auto& item : end->stray_processes) {
      violation(at(*end) + ": stray process at the end: " + item);
    }
  }
  return verdict;
}

Verdict check_history_text(const std::string& text, const Guarantees& guarantees) {
  std::vector<std::string> errors;
  auto events = parse_history(text, &errors);
  Verdict verdict = check_history(std::move(events), guarantees);
  verdict.parse_errors = std::move(errors);
  return verdict;
}

}  // namespace lockable::fault
