#pragma once

#include <lockable/allocation.hpp>
#include <lockable/backend.hpp>
#include <lockable/environment.hpp>
#include <lockable/error.hpp>
#include <lockable/provider.hpp>
#include <lockable/requirements.hpp>
#include <lockable/resource.hpp>
#include <lockable/settings.hpp>
#include <lockable/version.hpp>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <variant>
#include <vector>

namespace lockable {

/// Seconds with fractions, the unit of every timeout the user types.
using Seconds = std::chrono::duration<double>;

/// How a `Lockable` is built. Every field has a working default except the resources.
struct Options {
  /// This host's name for the implicit `hostname` filter; empty means `gethostname()`.
  std::string hostname;
  /// A resources.json path, or an in-memory JSON array of resource objects.
  std::variant<std::filesystem::path, Json> resources;
  /// Where `<id>.pid` lock files live; empty means the system temp dir (as the Python package).
  std::filesystem::path lock_folder;
  /// Used by `lock()` / `lock_many()` calls that pass no timeout.
  Seconds default_timeout{1000.0};
  /// Receives progress lines while waiting (what is wanted, holders, time left) and other
  /// notices. Called on the waiting thread. Empty means stderr.
  std::function<void(const std::string&)> log;
  /// How often a waiter reports progress.
  Seconds progress_interval{5.0};
};

/// One device's state for `lockable status`.
struct ResourceStatus {
  Resource resource;
  enum class State { kFree, kBusy, kOffline } state = State::kFree;
  /// Set when busy.
  std::optional<HolderInfo> holder;
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
  /// if nothing can ever match, TimeoutError when all matches stayed busy, RequirementsError,
  /// ResourcesError, BackendError.
  Allocation lock(const Requirements& requirements, std::optional<Seconds> timeout = {});
  Allocation lock(std::string_view requirements, std::optional<Seconds> timeout = {});

  /// All or nothing: one distinct device per requirement, `result[i]` satisfying
  /// `requirements[i]`. Never leaves a partial set locked; no deadlock between processes asking
  /// for overlapping sets.
  std::vector<Allocation> lock_many(const std::vector<Requirements>& requirements,
                                    std::optional<Seconds> timeout = {});

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

}  // namespace lockable
