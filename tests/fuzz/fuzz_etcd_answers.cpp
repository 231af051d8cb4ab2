// Fuzzes the pure readers of etcd's JSON gateway answers (etcd_logic): int64 and bool fields,
// queue entries from a range's kvs, lock values (HolderInfo JSON), gateway error bodies, base64,
// and the lock backend spec and prefix. Nothing may escape but the ConfigError the spec and
// prefix parsers promise; base64 must round-trip.
#include "etcd/etcd_logic.hpp"

#include <lockable/error.hpp>

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace lockable;
  const std::string text(reinterpret_cast<const char*>(data), size);

  const Json answer = Json::parse(text, nullptr, false);
  if (!answer.is_discarded()) {
    for (const char* name : {"ID", "TTL", "revision", "create_revision", "count"}) {
      (void)etcd::int64_field(answer, name);
    }
    (void)etcd::bool_field(answer, "succeeded");
    const Json& kvs = answer.is_object() && answer.contains("kvs") ? answer["kvs"] : answer;
    const auto queue = etcd::parse_queue(kvs);
    for (std::size_t i = 1; i < queue.size(); ++i) {
      if (queue[i - 1].create_revision > queue[i].create_revision) __builtin_trap();
    }
    (void)etcd::wanted_before(queue, 5, "/lockable/queue/x");
  }
  (void)etcd::parse_holder_value(text);
  (void)etcd::parse_gateway_error(text);

  if (const auto decoded = etcd::base64_decode(text)) {
    if (etcd::base64_decode(etcd::base64_encode(*decoded)) != decoded) __builtin_trap();
  }
  if (etcd::base64_decode(etcd::base64_encode(text)) != text) __builtin_trap();
  (void)etcd::prefix_range_end(text);

  try {
    const auto layout = etcd::make_layout(text);
    const auto id = layout.id_of_lock_key(layout.lock_key("dev1"));
    if (!id || *id != "dev1") __builtin_trap();
    (void)layout.id_of_lock_key(text);
  } catch (const ConfigError&) {
  }
  try {
    (void)etcd::parse_spec(text, "");
  } catch (const ConfigError&) {
  }
  return 0;
}
