#include <lockable/lock_folder.hpp>
#include <lockable/lockable.hpp>

#include "core/assignment.hpp"
#include "core/queue_order.hpp"

#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <unordered_set>

namespace lockable {
namespace {

using Clock = std::chrono::steady_clock;

std::string format_seconds(double seconds) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f s", seconds);
  return text;
}

// Seconds as a steady-clock duration, saturated so that "wait forever" values cannot overflow.
Clock::duration to_duration(Seconds seconds) {
  const double capped = std::min(seconds.count(), 1e9);  // ~30 years
  return std::chrono::duration_cast<Clock::duration>(Seconds(std::max(capped, 0.0)));
}

std::string describe_requirements(const std::vector<Requirements>& requirements) {
  if (requirements.size() == 1) return requirements.front().to_string();
  std::string text = "[";
  for (std::size_t i = 0; i < requirements.size(); ++i) {
    if (i > 0) text += ", ";
    text += requirements[i].to_string();
  }
  return text + "]";
}

}  // namespace

struct Lockable::Impl {
  Options options;
  std::string hostname;
  std::unique_ptr<ResourceProvider> provider;
  std::unique_ptr<LockBackend> backend;

  std::mutex resources_mutex;
  // Shared, never mutated: a waiter re-reading it on every wake-up must not copy every resource.
  std::shared_ptr<const Resources> loaded;

  void log(const std::string& line) const {
    if (options.log) {
      options.log(line);
    } else {
      std::cerr << line << '\n';
    }
  }

  // Current resources: loaded once, reloaded when the provider says they may have changed. While
  // waiting (`tolerate_errors`), a list that turns invalid (an editor half-way through a save)
  // keeps the previous one instead of aborting the wait.
  std::shared_ptr<const Resources> current_resources(bool tolerate_errors) {
    std::lock_guard<std::mutex> guard(resources_mutex);
    if (!loaded || provider->changed()) {
      try {
        loaded = std::make_shared<const Resources>(provider->load());
      } catch (const Error& error) {
        if (!tolerate_errors || !loaded) throw;
        log(std::string("lockable: keeping the previous resources: ") + error.what());
      }
    }
    return loaded;
  }

  std::vector<Allocation> acquire(const std::vector<Requirements>& requirements,
                                  std::optional<Seconds> timeout);
};

std::vector<Allocation> Lockable::Impl::acquire(const std::vector<Requirements>& requirements,
                                                std::optional<Seconds> timeout) {
  const auto requested = Clock::now();
  const Seconds limit = timeout.value_or(options.default_timeout);
  if (!(limit.count() >= 0)) {
    throw ConfigError("timeout " + std::to_string(limit.count()) +
                      " s is negative; pass a timeout of 0 or more seconds");
  }
  const auto deadline = requested + to_duration(limit);
  const auto interval = to_duration(options.progress_interval);
  auto next_progress = requested + interval;
  const std::string wanted_text = describe_requirements(requirements);

  std::vector<Requirements> effective;
  effective.reserve(requirements.size());
  for (const auto& requirement : requirements) {
    effective.push_back(requirement.with_implicit_filters(hostname));
  }

  std::unique_ptr<QueueTicket> ticket;
  std::vector<std::string> ticket_ids;
  // Ids found busy at the last attempt. A set is tried busy-first: locking (then releasing) a free
  // part before failing on a busy one writes its lock file, and that write wakes this very waiter,
  // which would spin for as long as the busy part stays busy.
  std::set<std::string> found_busy;
  // Devices whose lock file is unusable (a symlink, a FIFO...): skipped for this request, with one
  // warning each.
  std::map<std::string, std::string> unusable;
  bool waiting = false;
  for (;;) {
    const auto shared_resources = current_resources(waiting);
    const Resources& resources = *shared_resources;
    std::vector<std::vector<std::size_t>> candidates;
    for (std::size_t i = 0; i < requirements.size(); ++i) {
      candidates.push_back(find_matches(resources, effective[i]));
      if (candidates.back().empty()) {
        throw NoMatchError(provider->describe() + ": no resource matches " +
                               requirements[i].to_string() +
                               " (with the implicit filters online=true and hostname=" + hostname +
                               "); fix the requirement or the resources, or set online/hostname "
                               "to null in the requirement to lift a filter",
                           explain_mismatches(resources, effective[i]));
      }
    }
    if (!assign_distinct(candidates)) {
      throw NoMatchError(provider->describe() + ": requirements " + wanted_text + " need " +
                             std::to_string(requirements.size()) +
                             " distinct devices, but the matching devices cannot be shared out "
                             "one per requirement; add devices or relax a requirement",
                         {});
    }

    // Every id any requirement may use, in resource order.
    std::vector<std::string> wanted;
    {
      std::set<std::size_t> indexes;
      for (const auto& list : candidates) indexes.insert(list.begin(), list.end());
      for (const auto index : indexes) wanted.push_back(resources[index].id);
    }
    if (!ticket) {
      ticket = backend->enqueue(wanted, HolderInfo{static_cast<long>(::getpid()),
                                                   hostname,
                                                   {},
                                                   std::chrono::system_clock::now(),
                                                   requirements.front().json()});
      ticket_ids = wanted;
    } else if (ticket_ids != wanted) {
      ticket->update_wanted(wanted);
      ticket_ids = wanted;
    }
    const auto claimable_list = claimable_ids(wanted, ticket->wanted_by_earlier_waiters());
    const std::unordered_set<std::string> claimable(claimable_list.begin(), claimable_list.end());

    // Never hold and wait: take a full set with non-blocking attempts, or nothing.
    std::set<std::size_t> busy;
    for (;;) {
      std::vector<std::vector<std::size_t>> usable(candidates.size());
      for (std::size_t i = 0; i < candidates.size(); ++i) {
        for (const auto index : candidates[i]) {
          if (claimable.count(resources[index].id) != 0 && busy.count(index) == 0 &&
              unusable.count(resources[index].id) == 0) {
            usable[i].push_back(index);
          }
        }
      }
      const auto assignment = assign_distinct(usable);
      if (!assignment) break;
      std::vector<std::size_t> order;
      for (std::size_t i = 0; i < assignment->size(); ++i) order.push_back(i);
      std::stable_partition(order.begin(), order.end(), [&](std::size_t i) {
        return found_busy.count(resources[(*assignment)[i]].id) != 0;
      });
      std::vector<std::unique_ptr<HeldLock>> locks(assignment->size());
      std::vector<HolderInfo> holders(assignment->size());
      bool complete = true;
      for (const auto i : order) {
        const Resource& resource = resources[(*assignment)[i]];
        HolderInfo holder{static_cast<long>(::getpid()), hostname, new_uuid(),
                          std::chrono::system_clock::now(), requirements[i].json()};
        try {
          locks[i] = backend->try_lock(resource, holder);
        } catch (const ResourceUnusableError& error) {
          if (unusable.emplace(resource.id, error.what()).second) {
            log("lockable: warning: skipping " + resource.id + ": " + error.what());
          }
          complete = false;
          break;
        }
        if (!locks[i]) {
          busy.insert((*assignment)[i]);
          found_busy.insert(resource.id);
          complete = false;
          break;
        }
        found_busy.erase(resource.id);
        holders[i] = std::move(holder);
      }
      if (!complete) {
        for (auto& lock : locks) {
          if (lock) lock->release();
        }
        continue;
      }
      ticket.reset();  // leave the queue at once: the next waiter may move up
      const auto queue_time = Clock::now() - requested;
      std::vector<Allocation> allocations;
      for (std::size_t i = 0; i < locks.size(); ++i) {
        allocations.emplace_back(requirements[i].json(), resources[(*assignment)[i]],
                                 holders[i].alloc_id, queue_time, std::move(locks[i]));
      }
      return allocations;
    }

    if (!unusable.empty()) {
      std::vector<std::vector<std::size_t>> usable(candidates.size());
      for (std::size_t i = 0; i < candidates.size(); ++i) {
        for (const auto index : candidates[i]) {
          if (unusable.count(resources[index].id) == 0) usable[i].push_back(index);
        }
      }
      if (!assign_distinct(usable)) {
        std::string text = "no usable device for " + wanted_text + " in " + backend->describe() +
                           ": the lock files of the matching devices cannot be used:";
        for (const auto& entry : unusable) text += "\n  " + entry.first + ": " + entry.second;
        throw BackendError(text);
      }
    }

    const auto now = Clock::now();
    if (now >= deadline || now >= next_progress) {
      std::vector<std::string> busy_lines;
      for (const auto& id : wanted) {
        if (const auto holder = backend->holder_of(id)) {
          busy_lines.push_back(id + ": held by " + holder->describe());
        } else if (claimable.count(id) == 0) {
          busy_lines.push_back(id + ": free, but an earlier waiter in the queue gets it first");
        } else {
          busy_lines.push_back(id + ": free now");
        }
      }
      const double waited = Seconds(now - requested).count();
      if (now >= deadline) {
        throw TimeoutError("no device for " + wanted_text + " became free within " +
                               format_seconds(limit.count()) + " (" +
                               std::to_string(wanted.size()) + " matching in " +
                               backend->describe() +
                               "); raise the timeout or free a device held by:",
                           busy_lines);
      }
      std::string line = "lockable: waiting for " + wanted_text + ": " +
                         std::to_string(wanted.size()) + " matching, all busy:";
      for (const auto& busy_line : busy_lines) line += " " + busy_line + ";";
      line += " waited " + format_seconds(waited) + ", " +
              format_seconds(std::max(0.0, Seconds(deadline - now).count())) + " left";
      log(line);
      while (next_progress <= now) next_progress += std::max(interval, Clock::duration(1));
    }
    waiting = true;
    backend->wait_for_change(std::min(deadline, next_progress));
  }
}

Lockable::Lockable(Options options) : impl_(std::make_unique<Impl>()) {
  std::unique_ptr<ResourceProvider> provider;
  if (const auto* path = std::get_if<std::filesystem::path>(&options.resources)) {
    if (path->empty()) {
      throw ConfigError("no resources given; pass a resources.json path (--resources) or a list");
    }
    provider = make_file_provider(*path);
  } else {
    provider = make_list_provider(std::get<Json>(options.resources));
  }
  auto backend = make_lock_folder_backend(options.lock_folder.empty() ? default_lock_folder()
                                                                      : options.lock_folder);
  Lockable tmp(std::move(options), std::move(provider), std::move(backend));
  impl_ = std::move(tmp.impl_);
}

Lockable::Lockable(Options options, std::unique_ptr<ResourceProvider> provider,
                   std::unique_ptr<LockBackend> backend)
    : impl_(std::make_unique<Impl>()) {
  if (!(options.default_timeout.count() >= 0) || !std::isfinite(options.default_timeout.count())) {
    throw ConfigError("Options::default_timeout must be a finite number of seconds >= 0, got " +
                      std::to_string(options.default_timeout.count()));
  }
  if (!(options.progress_interval.count() > 0)) {
    throw ConfigError("Options::progress_interval must be > 0 seconds, got " +
                      std::to_string(options.progress_interval.count()));
  }
  if (!provider || !backend) {
    throw ConfigError("Lockable needs a resource provider and a lock backend; pass both");
  }
  impl_->hostname = options.hostname.empty() ? this_hostname() : options.hostname;
  impl_->options = std::move(options);
  impl_->provider = std::move(provider);
  impl_->backend = std::move(backend);
}

Lockable::~Lockable() = default;

Allocation Lockable::lock(const Requirements& requirements, std::optional<Seconds> timeout) {
  auto allocations = impl_->acquire({requirements}, timeout);
  return std::move(allocations.front());
}

Allocation Lockable::lock(std::string_view requirements, std::optional<Seconds> timeout) {
  return lock(Requirements::parse(requirements), timeout);
}

std::vector<Allocation> Lockable::lock_many(const std::vector<Requirements>& requirements,
                                            std::optional<Seconds> timeout) {
  if (requirements.empty()) return {};
  return impl_->acquire(requirements, timeout);
}

std::vector<ResourceStatus> Lockable::status() {
  std::vector<ResourceStatus> result;
  const auto resources = impl_->current_resources(false);
  for (const auto& resource : *resources) {
    ResourceStatus status;
    if (!resource.online()) {
      status.state = ResourceStatus::State::kOffline;
    } else if (auto holder = impl_->backend->holder_of(resource.id)) {
      status.state = ResourceStatus::State::kBusy;
      status.holder = std::move(holder);
    }
    status.resource = resource;
    result.push_back(std::move(status));
  }
  return result;
}

Resources Lockable::resources() { return *impl_->current_resources(false); }

const std::string& Lockable::hostname() const noexcept { return impl_->hostname; }

const LockBackend& Lockable::backend() const noexcept { return *impl_->backend; }

std::string this_hostname() {
  char name[HOST_NAME_MAX + 1] = {};
  if (::gethostname(name, sizeof name - 1) != 0 || name[0] == '\0') return "localhost";
  return name;
}

}  // namespace lockable
