#include "report.hpp"

#include <gtest/gtest.h>

#include <cstdio>

namespace lockable::gtest::detail {

std::string property_name(const char* base, std::size_t index, std::size_t count) {
  if (count <= 1) return base;
  return std::string(base) + "_" + std::to_string(index + 1);
}

void record_lock_properties(const std::vector<Allocation>& allocations, const std::string& prefix) {
  const auto count = allocations.size();
  for (std::size_t i = 0; i < count; ++i) {
    const auto& a = allocations[i];
    const auto name = [&](const char* base) {
      return property_name((prefix + base).c_str(), i, count);
    };
    ::testing::Test::RecordProperty(name("resource_id"), a.resource_id());
    ::testing::Test::RecordProperty(name("alloc_id"), a.alloc_id());
    ::testing::Test::RecordProperty(
        name("requirements"),
        a.requirements().dump(-1, ' ', false, Json::error_handler_t::replace));
    ::testing::Test::RecordProperty(name("allocation_queue_time"), format_seconds(a.queue_time()));
    ::testing::Test::RecordProperty(name("allocation_start_time"), format_iso8601(a.start_time()));
  }
}

void record_release_properties(const std::vector<Allocation>& allocations) {
  const auto count = allocations.size();
  for (std::size_t i = 0; i < count; ++i) {
    ::testing::Test::RecordProperty(property_name("lockable_allocation_duration", i, count),
                                    format_seconds(allocations[i].duration()));
  }
}

void console(const std::string& line) {
  std::printf("[ LOCKABLE ] %s\n", line.c_str());
  std::fflush(stdout);
}

std::string resource_ids(const std::vector<Allocation>& allocations) {
  std::string text;
  for (const auto& a : allocations) {
    if (!text.empty()) text += ", ";
    text += a.resource_id();
  }
  return text;
}

}  // namespace lockable::gtest::detail
