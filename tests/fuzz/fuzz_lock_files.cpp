// Fuzzes the reader of the lock folder's holder details (`<id>.pid.json`, HolderInfo::from_json),
// which `status` and every waiter read from files any process may write: whatever the bytes,
// from_json gives a HolderInfo and describe()/to_json() hold up.
#include <lockable/backend.hpp>

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace lockable;
  const std::string text(reinterpret_cast<const char*>(data), size);
  const Json json = Json::parse(text, nullptr, false);
  const HolderInfo info = HolderInfo::from_json(json.is_discarded() ? Json(text) : json);
  if (info.describe().empty()) __builtin_trap();
  (void)info.to_json().dump(-1, ' ', false, Json::error_handler_t::replace);
  return 0;
}
