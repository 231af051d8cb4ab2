#pragma once

#include <lockable/events.hpp>

#include <filesystem>
#include <functional>
#include <string>

namespace lockable {

/// An observer that appends one JSON line to `file` for every finished allocation (released or
/// lost), every request that ended without a device (timed out, no match, cancelled, failed)
/// and every operator's action (kForced, kReserved, kUnreserved: a line with "event", at once);
/// the format is README's "Metrics" section. `Lockable` adds one when `Options::metrics_file` is
/// set; add it yourself to a Lockable built otherwise.
///
/// Each line goes to the file in one write() on a descriptor opened with O_APPEND, so lines of
/// many processes appending to one local file never interleave or overwrite each other. A file
/// that cannot be opened or written costs that line only: `warn` (called on the thread of the
/// event) hears of it once per observer, and the allocation itself is never affected.
/// `backend` names the lock store (LockBackend::describe()); `label` names what this process
/// runs (a command line, a program; empty: the program's name).
AllocationObserver make_allocation_log(std::filesystem::path file, std::string backend,
                                       std::string label,
                                       std::function<void(const std::string&)> warn);

}  // namespace lockable
