#pragma once

#include <lockable/allocation.hpp>
#include <lockable/backend.hpp>
#include <lockable/ctest.hpp>
#include <lockable/environment.hpp>
#include <lockable/error.hpp>
#include <lockable/etcd.hpp>
#include <lockable/events.hpp>
#include <lockable/factory.hpp>
#include <lockable/metrics.hpp>
#include <lockable/named_lock.hpp>
#include <lockable/provider.hpp>
#include <lockable/requirements.hpp>
#include <lockable/resource.hpp>
#include <lockable/settings.hpp>
#include <lockable/version.hpp>

#include <chrono>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace lockable {

/// Seconds with fractions, the unit of every timeout the user types.
using Seconds = std::chrono::duration<double>;

/// Where the resources come from: a path or spec (`"resources.json"`, `file://...`; see
/// make_resource_provider), or an in-memory JSON array of resource objects. Text always means a
/// path, so `options.resources = "lab.json";` reads that file.
class ResourcesSource : public std::variant<std::filesystem::path, Json> {
 public:
  using variant::variant;
  ResourcesSource() = default;
  ResourcesSource(const char* path) : variant(std::filesystem::path(path)) {}
  ResourcesSource(const std::string& path) : variant(std::filesystem::path(path)) {}
  ResourcesSource(std::string_view path) : variant(std::filesystem::path(path)) {}
};

/// The range of Options::priority.
constexpr int kMinPriority = -1000;
constexpr int kMaxPriority = 1000;

/// How a `Lockable` is built. Every field has a working default except the resources.
struct Options {
  /// This host's name for the implicit `hostname` filter; empty means `gethostname()`.
  std::string hostname;
  /// A resources.json path (or spec), or an in-memory JSON array of resource objects.
  ResourcesSource resources;
  /// Where `<id>.pid` lock files live; empty means the system temp dir (as the Python package).
  std::filesystem::path lock_folder;
  /// The lock store as a spec (see make_lock_backend: a folder path, `file://`, and the schemes
  /// of remote backends). Empty means `lock_folder`. Giving both, naming different stores, is a
  /// ConfigError.
  std::string lock_backend;
  /// Used by `lock()` / `lock_many()` calls that pass no timeout.
  Seconds default_timeout{1000.0};
  /// Receives progress lines while waiting (what is wanted, holders, time left) and other
  /// notices. Called on the waiting thread. Empty means stderr.
  std::function<void(const std::string&)> log;
  /// How often a waiter reports progress.
  Seconds progress_interval{5.0};
  /// Where to append one JSON line per finished allocation (see make_allocation_log); empty
  /// means no log. A file that cannot be written is a warning through `log`, never an error.
  std::filesystem::path metrics_file;
  /// Names this process's allocations in the metrics file (a command line, a program); empty
  /// means the program's name.
  std::string metrics_label;
  /// This object's requests' priority, kMinPriority..kMaxPriority: among waiters that a device
  /// can serve, a higher priority is served first, arrival order within one priority. Waiters
  /// that carry none (older versions, the Python package) count as 0.
  int priority = 0;
  /// Aging, so that no waiter starves: a waiter's effective priority rises by one per
  /// `priority_aging` of waiting, so a waiter of priority p is never overtaken by one of
  /// priority q > p arriving (q - p) * priority_aging or more after it. Use one value for the
  /// whole lab (each waiter orders the queue with its own). At least 0.001 s.
  Seconds priority_aging{60.0};
};

/// One device's state for `lockable status`.
struct ResourceStatus {
  Resource resource;
  /// kBusy: held (`lockable status` says "held").
  enum class State { kFree, kBusy, kOffline } state = State::kFree;
  /// Set when busy: who holds it, since when, for which requirement, its fencing token.
  std::optional<HolderInfo> holder;
  /// Non-empty when a holder that lost its lock on the device still runs (LockBackend::lost_hold):
  /// it may still use the device, whatever `state` says.
  std::string lost;
};

/// The library's front door: finds devices that match requirements and locks them, waiting in a
/// fair queue when all are busy. Thread-safe: many threads may lock through one object.
class Lockable {
 public:
  /// Uses the local lock folder backend and a file or list provider, as `options` says.
  /// Throws ConfigError / BackendError naming the bad option.
  explicit Lockable(Options options);
  /// Full control: any provider and backend (tests, HTTP, etcd).
  Lockable(Options options, std::unique_ptr<ResourceProvider> provider,
           std::unique_ptr<LockBackend> backend);
  ~Lockable();
  Lockable(const Lockable&) = delete;
  Lockable& operator=(const Lockable&) = delete;

  /// Locks one free device matching `requirements` (plus the implicit online/hostname filters),
  /// waiting up to `timeout` (default: `Options::default_timeout`). Throws NoMatchError at once
  /// if nothing can ever match (also when only devices this thread already holds match: it
  /// would wait for itself), TimeoutError when all matches stayed busy, CancelledError after
  /// `cancel()`, RequirementsError, ResourcesError, BackendError. A device held by another
  /// thread of this process is waited for like any other.
  Allocation lock(const Requirements& requirements, std::optional<Seconds> timeout = {});
  Allocation lock(std::string_view requirements, std::optional<Seconds> timeout = {});

  /// All or nothing: one distinct device per requirement, `result[i]` satisfying
  /// `requirements[i]`. Never leaves a partial set locked; no deadlock between processes asking
  /// for overlapping sets.
  std::vector<Allocation> lock_many(const std::vector<Requirements>& requirements,
                                    std::optional<Seconds> timeout = {});
  /// The same with requirement texts, each read by Requirements::parse:
  /// `lock_many({"os=Android", "type=power_switch"})`.
  std::vector<Allocation> lock_many(std::initializer_list<std::string_view> requirements,
                                    std::optional<Seconds> timeout = {});

  /// Ends every `lock()`/`lock_many()` wait in progress on this object with CancelledError, and
  /// refuses every later one the same way (like a stop token, so a request racing with the
  /// cancel cannot slip through): the waiter leaves the queue, holds nothing, and returns within
  /// a quarter of a second. Allocations already made stay held. Safe from any thread, but not
  /// from a signal handler: call it from a thread that received the signal, as the CLI does.
  void cancel() noexcept;

  /// Adds an observer told of every request and allocation of this object from now on (see
  /// AllocationEvent for the order and the thread it runs on). Thread-safe.
  void add_observer(AllocationObserver observer);

  /// Every resource with free/busy/offline and the holder of busy ones.
  std::vector<ResourceStatus> status();

  /// The resources as last loaded (loads them if needed).
  Resources resources();

  const std::string& hostname() const noexcept;
  const LockBackend& backend() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// `gethostname()`, or "localhost" if it fails.
std::string this_hostname();

/// Parses a timeout typed by a user: seconds, fractions allowed ("0.5", "30", "1e3"). Throws
/// ConfigError naming `name` (a flag or variable, e.g. "--timeout") for a negative, non-finite or
/// non-numeric value.
Seconds parse_timeout(std::string_view text, const std::string& name);

/// Parses a priority typed by a user: a whole number from kMinPriority to kMaxPriority ("10",
/// "-5"). Throws ConfigError naming `name` (a flag or variable, e.g. "--priority"), the value,
/// the range and an example.
int parse_priority(const std::string& text, const std::string& name);

}  // namespace lockable
