#include "core/allocation_record.hpp"

#include <cmath>
#include <cstdio>
#include <ctime>
#include <stdexcept>

namespace lockable::metrics {
namespace {

constexpr const char* kOutcomes[] = {"released", "lost",      "timed_out",
                                     "no_match", "cancelled", "failed"};

// Microseconds: what the clocks give that is still worth reading.
double rounded(double seconds) { return std::round(seconds * 1e6) / 1e6; }

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil), so that
// parsing never depends on the process's time zone (timegm is not in POSIX).
long long days_from_civil(long long y, unsigned m, unsigned d) {
  y -= m <= 2;
  const long long era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<long long>(doe) - 719468;
}

bool digits(std::string_view text, std::size_t at, std::size_t count, int& value) {
  if (at + count > text.size()) return false;
  value = 0;
  for (std::size_t i = at; i < at + count; ++i) {
    if (text[i] < '0' || text[i] > '9') return false;
    value = value * 10 + (text[i] - '0');
  }
  return true;
}

const Json* field(const Json& line, const char* name) {
  const auto it = line.find(name);
  if (it == line.end() || it->is_null()) return nullptr;
  return &*it;
}

std::string string_field(const Json& line, const char* name, bool required) {
  const Json* value = field(line, name);
  if (value == nullptr) {
    if (required) throw std::invalid_argument(std::string("missing \"") + name + "\"");
    return {};
  }
  if (!value->is_string()) {
    throw std::invalid_argument(std::string("\"") + name + "\" must be a string");
  }
  return value->get<std::string>();
}

std::optional<double> number_field(const Json& line, const char* name) {
  const Json* value = field(line, name);
  if (value == nullptr) return std::nullopt;
  if (!value->is_number() || !std::isfinite(value->get<double>())) {
    throw std::invalid_argument(std::string("\"") + name + "\" must be a number of seconds");
  }
  return value->get<double>();
}

std::optional<double> time_field(const Json& line, const char* name) {
  const auto text = string_field(line, name, false);
  if (text.empty()) return std::nullopt;
  auto value = parse_timestamp(text);
  if (!value) {
    throw std::invalid_argument(std::string("\"") + name +
                                "\" must be an ISO 8601 time such as 2026-12-01T15:20:44.587Z");
  }
  return value;
}

}  // namespace

const char* to_string(Outcome outcome) noexcept { return kOutcomes[static_cast<int>(outcome)]; }

std::optional<Outcome> outcome_from_string(std::string_view text) noexcept {
  for (int i = 0; i < 6; ++i) {
    if (text == kOutcomes[i]) return static_cast<Outcome>(i);
  }
  return std::nullopt;
}

std::string format_timestamp(double unix_seconds) {
  auto micros = static_cast<long long>(std::llround(unix_seconds * 1e6));
  long long seconds = micros >= 0 ? micros / 1000000 : -((-micros + 999999) / 1000000);
  const long long fraction = micros - seconds * 1000000;
  const std::time_t t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char text[64];
  std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, fraction);
  return text;
}

std::optional<double> parse_timestamp(std::string_view text) noexcept {
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (!digits(text, 0, 4, year) || text.size() < 19 || text[4] != '-' ||
      !digits(text, 5, 2, month) || text[7] != '-' || !digits(text, 8, 2, day) ||
      (text[10] != 'T' && text[10] != ' ') || !digits(text, 11, 2, hour) || text[13] != ':' ||
      !digits(text, 14, 2, minute) || text[16] != ':' || !digits(text, 17, 2, second)) {
    return std::nullopt;
  }
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) {
    return std::nullopt;
  }
  std::size_t at = 19;
  double fraction = 0;
  if (at < text.size() && text[at] == '.') {
    double scale = 0.1;
    ++at;
    const std::size_t first = at;
    while (at < text.size() && text[at] >= '0' && text[at] <= '9') {
      fraction += (text[at] - '0') * scale;
      scale /= 10;
      ++at;
    }
    if (at == first) return std::nullopt;
  }
  long long offset = 0;
  if (at < text.size()) {
    if (text[at] == 'Z' && at + 1 == text.size()) {
      ++at;
    } else if ((text[at] == '+' || text[at] == '-') && at + 6 == text.size() &&
               text[at + 3] == ':') {
      int oh = 0, om = 0;
      if (!digits(text, at + 1, 2, oh) || !digits(text, at + 4, 2, om)) return std::nullopt;
      offset = (oh * 3600LL + om * 60LL) * (text[at] == '+' ? 1 : -1);
      at = text.size();
    } else {
      return std::nullopt;
    }
  }
  const long long days =
      days_from_civil(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
  const long long seconds = days * 86400 + hour * 3600LL + minute * 60LL + second - offset;
  // Whole microseconds, as written: keeps sums of parsed times exact enough to compare.
  return std::round((static_cast<double>(seconds) + fraction) * 1e6) / 1e6;
}

std::string to_log_line(const AllocationRecord& record) {
  // Keys in a fixed, readable order (outcome and device first) rather than sorted.
  nlohmann::ordered_json line = nlohmann::ordered_json::object();
  line["outcome"] = to_string(record.outcome);
  if (!record.resource_id.empty()) line["resource_id"] = record.resource_id;
  if (!record.candidates.empty()) line["candidates"] = record.candidates;
  if (!record.alloc_id.empty()) line["alloc_id"] = record.alloc_id;
  line["request_id"] = record.request_id;
  Json requirements = Json::parse(record.requirements, nullptr, false);
  if (requirements.is_discarded()) {
    line["requirements"] = record.requirements;
  } else {
    line["requirements"] = requirements;
  }
  line["host"] = record.host;
  line["pid"] = record.pid;
  line["backend"] = record.backend;
  line["label"] = record.label;
  line["queued"] = record.queued;
  line["queue_time"] = rounded(record.queue_time);
  if (record.requested) line["requested"] = format_timestamp(*record.requested);
  if (record.start) line["start"] = format_timestamp(*record.start);
  if (record.end) line[record.start ? "release" : "end"] = format_timestamp(*record.end);
  if (record.duration) line["duration"] = rounded(*record.duration);
  if (record.fencing_token) line["fencing_token"] = *record.fencing_token;
  if (!record.reason.empty()) line["reason"] = record.reason;
  // Invalid UTF-8 (a resource id from a file) must not lose the line.
  return line.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
}

std::string admin_log_line(const std::string& event, const std::string& resource_id,
                           const std::string& by, const std::string& reason,
                           const std::string& holder, const std::string& host, long pid,
                           const std::string& backend, double unix_seconds) {
  nlohmann::ordered_json line = nlohmann::ordered_json::object();
  line["event"] = event;
  line["resource_id"] = resource_id;
  line["by"] = by;
  line["reason"] = reason;
  if (!holder.empty()) line["holder"] = holder;
  line["host"] = host;
  line["pid"] = pid;
  line["backend"] = backend;
  line["time"] = format_timestamp(unix_seconds);
  return line.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
}

bool is_admin_line(const Json& line) {
  if (!line.is_object() || line.contains("outcome")) return false;
  const auto it = line.find("event");
  return it != line.end() && it->is_string() &&
         (*it == "forced" || *it == "reserved" || *it == "unreserved");
}

AllocationRecord record_from_json(const Json& line) {
  if (!line.is_object()) throw std::invalid_argument("a log line must be a JSON object");
  AllocationRecord record;
  const auto outcome_text = string_field(line, "outcome", true);
  const auto outcome = outcome_from_string(outcome_text);
  if (!outcome) {
    throw std::invalid_argument(
        "\"outcome\" must be released, lost, timed_out, no_match, "
        "cancelled or failed, found \"" +
        outcome_text + "\"");
  }
  record.outcome = *outcome;
  const bool granted = record.outcome == Outcome::kReleased || record.outcome == Outcome::kLost;
  record.resource_id = string_field(line, "resource_id", granted);
  if (granted && record.resource_id.empty()) {
    throw std::invalid_argument("\"resource_id\" is empty; a " + outcome_text +
                                " allocation names the device it held");
  }
  if (const Json* candidates = field(line, "candidates")) {
    if (!candidates->is_array()) throw std::invalid_argument("\"candidates\" must be an array");
    for (const auto& id : *candidates) {
      if (!id.is_string()) throw std::invalid_argument("\"candidates\" must hold strings");
      record.candidates.push_back(id.get<std::string>());
    }
  }
  record.alloc_id = string_field(line, "alloc_id", granted);
  record.request_id = string_field(line, "request_id", false);
  if (const Json* requirements = field(line, "requirements")) {
    record.requirements = requirements->is_string()
                              ? requirements->get<std::string>()
                              : requirements->dump(-1, ' ', false, Json::error_handler_t::replace);
  }
  record.host = string_field(line, "host", false);
  if (const Json* pid = field(line, "pid"); pid != nullptr && pid->is_number_integer()) {
    record.pid = pid->get<long>();
  }
  record.backend = string_field(line, "backend", false);
  record.label = string_field(line, "label", false);
  if (const Json* queued = field(line, "queued"); queued != nullptr && queued->is_boolean()) {
    record.queued = queued->get<bool>();
  }
  record.queue_time = number_field(line, "queue_time").value_or(0);
  record.requested = time_field(line, "requested");
  record.start = time_field(line, "start");
  record.end = time_field(line, granted ? "release" : "end");
  record.duration = number_field(line, "duration");
  if (granted && (!record.start || !record.end || !record.duration)) {
    throw std::invalid_argument(
        "a released or lost allocation needs \"start\", \"release\" and "
        "\"duration\"");
  }
  if (!granted && !record.end) throw std::invalid_argument("missing \"end\"");
  // A line from a clock that jumped, or edited by hand: counting it would give a negative hold
  // time and a window that ends before it starts.
  if (granted && (*record.end < *record.start || *record.duration < 0)) {
    throw std::invalid_argument("\"release\" is before \"start\" (or \"duration\" is negative)");
  }
  if (const Json* token = field(line, "fencing_token")) {
    if (!token->is_number_unsigned()) {
      throw std::invalid_argument("\"fencing_token\" must be a non-negative integer");
    }
    record.fencing_token = token->get<std::uint64_t>();
  }
  record.reason = string_field(line, "reason", false);
  return record;
}

}  // namespace lockable::metrics
