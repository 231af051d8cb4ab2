#include <lockable/allocation.hpp>
#include <lockable/backend.hpp>
#include <lockable/error.hpp>

#include <climits>
#include <cstdio>
#include <ctime>
#include <stdexcept>
#include <string>

namespace lockable {
namespace {

// Reads `2026-11-22T10:00:00.123Z` (fraction optional); nullopt for anything else, so a
// hand-edited or foreign file never breaks `status`.
std::optional<std::chrono::system_clock::time_point> parse_iso8601(const std::string& text) {
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0, consumed = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &year, &month, &day, &hour, &minute,
                  &second, &consumed) != 6) {
    return std::nullopt;
  }
  // Out-of-range fields would not fit the clock's nanoseconds (year -999 overflowed, found by
  // fuzz_lock_files); any real holder wrote a time between 1970 and 2200.
  if (year < 1970 || year > 2200 || month < 1 || month > 12 || day < 1 || day > 31 || hour < 0 ||
      hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 60) {
    return std::nullopt;
  }
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  const std::time_t seconds = timegm(&tm);
  if (seconds == static_cast<std::time_t>(-1)) return std::nullopt;
  auto time = std::chrono::system_clock::from_time_t(seconds);
  std::size_t pos = static_cast<std::size_t>(consumed);
  if (pos < text.size() && text[pos] == '.') {
    long long nanos = 0;
    int digits = 0;
    for (++pos; pos < text.size() && text[pos] >= '0' && text[pos] <= '9'; ++pos) {
      if (digits < 9) {
        nanos = nanos * 10 + (text[pos] - '0');
        ++digits;
      }
    }
    for (; digits < 9; ++digits) nanos *= 10;
    time += std::chrono::duration_cast<std::chrono::system_clock::duration>(
        std::chrono::nanoseconds(nanos));
  }
  return time;
}

}  // namespace

Json HolderInfo::to_json() const {
  Json json{{"pid", pid},
            {"hostname", hostname},
            {"alloc_id", alloc_id},
            {"since", format_iso8601(since)},
            {"requirements", requirements},
            {"priority", priority}};
  if (fencing_token) json["fencing_token"] = *fencing_token;
  return json;
}

HolderInfo HolderInfo::from_json(const Json& json) {
  HolderInfo info;
  if (!json.is_object()) return info;
  if (const auto it = json.find("pid"); it != json.end() && it->is_number_integer()) {
    info.pid = it->get<long>();
  }
  if (const auto it = json.find("hostname"); it != json.end() && it->is_string()) {
    info.hostname = it->get<std::string>();
  }
  if (const auto it = json.find("alloc_id"); it != json.end() && it->is_string()) {
    info.alloc_id = it->get<std::string>();
  }
  if (const auto it = json.find("since"); it != json.end() && it->is_string()) {
    if (const auto since = parse_iso8601(it->get<std::string>())) info.since = *since;
  }
  if (const auto it = json.find("requirements"); it != json.end()) info.requirements = *it;
  // A priority outside an int (a foreign or hand-edited file) counts as the default.
  if (const auto it = json.find("priority"); it != json.end() && it->is_number_integer()) {
    const auto value = it->get<long long>();
    if (value >= INT_MIN && value <= INT_MAX) info.priority = static_cast<int>(value);
  }
  if (const auto it = json.find("fencing_token"); it != json.end() && it->is_number_unsigned()) {
    info.fencing_token = it->get<std::uint64_t>();
  }
  return info;
}

std::string HolderInfo::describe() const {
  std::string text = pid > 0 ? "pid " + std::to_string(pid) : std::string("unknown process");
  if (!hostname.empty()) text += " on " + hostname;
  if (!alloc_id.empty()) text += ", allocation " + alloc_id;
  if (since != std::chrono::system_clock::time_point{}) text += ", since " + format_iso8601(since);
  return text;
}

Json Reservation::to_json() const {
  Json json{
      {"reason", reason}, {"by", by}, {"since", format_iso8601(since)}, {"draining", draining}};
  json["until"] = until ? Json(format_iso8601(*until)) : Json(nullptr);
  return json;
}

Reservation Reservation::from_json(const Json& json) {
  if (!json.is_object()) throw std::invalid_argument("a reservation must be a JSON object");
  Reservation reservation;
  const auto text = [&](const char* key) -> std::string {
    const auto it = json.find(key);
    if (it == json.end() || !it->is_string()) {
      throw std::invalid_argument(std::string("\"") + key + "\" must be a string");
    }
    return it->get<std::string>();
  };
  reservation.reason = text("reason");
  if (reservation.reason.empty()) throw std::invalid_argument("\"reason\" is empty");
  reservation.by = text("by");
  const auto since = parse_iso8601(text("since"));
  if (!since) throw std::invalid_argument("\"since\" is not an ISO 8601 time");
  reservation.since = *since;
  if (const auto it = json.find("until"); it != json.end() && !it->is_null()) {
    const auto until = it->is_string() ? parse_iso8601(it->get<std::string>()) : std::nullopt;
    if (!until) throw std::invalid_argument("\"until\" is not an ISO 8601 time");
    reservation.until = *until;
  }
  if (const auto it = json.find("draining"); it != json.end() && it->is_boolean()) {
    reservation.draining = it->get<bool>();
  }
  return reservation;
}

std::string Reservation::describe() const {
  std::string text = Json(reason).dump(-1, ' ', false, Json::error_handler_t::replace);
  text += " (" + std::string(draining ? "draining" : "reserved") + " by " +
          (by.empty() ? std::string("unknown") : by);
  if (since != std::chrono::system_clock::time_point{}) text += " since " + format_iso8601(since);
  text += until ? ", until " + format_iso8601(*until) : std::string(", until unreserved");
  text += ")";
  if (!problem.empty()) text += "; " + problem;
  return text;
}

bool Reservation::expired(std::chrono::system_clock::time_point now) const {
  return until && *until <= now;
}

void LockBackend::reserve(const std::string& resource_id, const Reservation&) {
  throw BackendError("cannot reserve " + resource_id + ": " + describe() +
                     " does not support reservations; use a lock folder, etcd or lock service "
                     "backend");
}

void LockBackend::unreserve(const std::string& resource_id) {
  throw BackendError("cannot unreserve " + resource_id + ": " + describe() +
                     " does not support reservations");
}

std::optional<HolderInfo> LockBackend::force_release(const std::string& resource_id,
                                                     const std::string&) {
  throw BackendError("cannot force the release of " + resource_id + ": " + describe() +
                     " does not support it; stop the holding process instead");
}

}  // namespace lockable
