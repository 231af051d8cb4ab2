#pragma once

#include <lockable/allocation.hpp>

#include <string>
#include <string_view>

namespace lockable::gtest {

/// A read-only view of a locked device, handed to tests: `device()["serial"]`. Cheap to copy; it
/// refers to an allocation owned by the plugin and is valid while the suite (or, for the global
/// device, the program) holds the device.
class Device {
 public:
  explicit Device(const Allocation& allocation) noexcept : allocation_(&allocation) {}

  /// The resource id, e.g. "pixel-7-01".
  const std::string& id() const noexcept { return allocation_->resource_id(); }
  /// Every attribute from resources.json, as a JSON object.
  const Json& attributes() const noexcept { return allocation_->attributes(); }
  /// The attribute `key`; a dotted key reaches into nested objects (`"usb.port"`). Throws
  /// lockable::Error naming the device and the key when the device has no such attribute.
  const Json& operator[](std::string_view key) const;
  /// True when the device has the attribute `key` (dotted keys allowed).
  bool has(std::string_view key) const noexcept;
  /// The attribute `key` as a string: strings as they are, other values as compact JSON. Throws
  /// like `operator[]`.
  std::string str(std::string_view key) const;
  /// The allocation behind the device: alloc id, queue time, start time.
  const Allocation& allocation() const noexcept { return *allocation_; }

 private:
  const Allocation* allocation_;
};

}  // namespace lockable::gtest
