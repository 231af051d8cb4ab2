#include "etcd/etcd_logic.hpp"

#include "core/json_text.hpp"

#include <lockable/error.hpp>

#include <algorithm>
#include <cctype>
#include <cstdio>

namespace lockable::etcd {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int sextet(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  for (;;) {
    const auto end = text.find(separator, start);
    parts.push_back(text.substr(start, end == std::string::npos ? std::string::npos : end - start));
    if (end == std::string::npos) return parts;
    start = end + 1;
  }
}

std::string trim(const std::string& text) {
  std::size_t begin = 0;
  std::size_t end = text.size();
  while (begin < end && std::isspace(static_cast<unsigned char>(text[begin])) != 0) ++begin;
  while (end > begin && std::isspace(static_cast<unsigned char>(text[end - 1])) != 0) --end;
  return text.substr(begin, end - begin);
}

}  // namespace

std::string base64_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(bytes[i]) << 16) |
                       (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                       static_cast<unsigned char>(bytes[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i + 1 == bytes.size()) {
    const unsigned v = static_cast<unsigned char>(bytes[i]) << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == bytes.size()) {
    const unsigned v = (static_cast<unsigned char>(bytes[i]) << 16) |
                       (static_cast<unsigned char>(bytes[i + 1]) << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (std::size_t i = 0; i < text.size(); i += 4) {
    int values[4];
    int padding = 0;
    for (int j = 0; j < 4; ++j) {
      const char c = text[i + static_cast<std::size_t>(j)];
      if (c == '=' && i + 4 == text.size() && j >= 2) {
        values[j] = 0;
        ++padding;
      } else if (padding > 0 || (values[j] = sextet(c)) < 0) {
        return std::nullopt;
      }
    }
    const unsigned v = (static_cast<unsigned>(values[0]) << 18) |
                       (static_cast<unsigned>(values[1]) << 12) |
                       (static_cast<unsigned>(values[2]) << 6) | static_cast<unsigned>(values[3]);
    out += static_cast<char>((v >> 16) & 0xff);
    if (padding < 2) out += static_cast<char>((v >> 8) & 0xff);
    if (padding < 1) out += static_cast<char>(v & 0xff);
  }
  return out;
}

std::string prefix_range_end(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    auto& last = reinterpret_cast<unsigned char&>(end.back());
    if (last < 0xff) {
      ++last;
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');
}

std::optional<std::int64_t> int64_field(const Json& object, const char* name) {
  if (!object.is_object()) return std::nullopt;
  const auto it = object.find(name);
  if (it == object.end()) return 0;
  if (it->is_number_integer()) return it->get<std::int64_t>();
  if (!it->is_string()) return std::nullopt;
  const auto& text = it->get_ref<const std::string&>();
  if (text.empty() || text.size() > 20) return std::nullopt;
  std::size_t start = text[0] == '-' ? 1 : 0;
  if (start == text.size()) return std::nullopt;
  for (std::size_t i = start; i < text.size(); ++i) {
    if (text[i] < '0' || text[i] > '9') return std::nullopt;
  }
  try {
    return static_cast<std::int64_t>(std::stoll(text));
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::optional<bool> bool_field(const Json& object, const char* name) {
  if (!object.is_object()) return std::nullopt;
  const auto it = object.find(name);
  if (it == object.end()) return false;
  if (!it->is_boolean()) return std::nullopt;
  return it->get<bool>();
}

std::string KeyLayout::revocation_key(std::int64_t lease) const {
  return prefix + "/revoked/" + lease_hex(lease);
}

std::string revocation_value(const std::string& id, const std::string& reason) {
  return detail::dump(Json{{"id", id}, {"reason", reason}});
}

std::optional<std::string> revocation_text(const std::string& value) {
  const Json json = Json::parse(value, nullptr, false);  // rejects invalid UTF-8 too
  if (!json.is_object()) return std::nullopt;
  const auto id = json.find("id");
  const auto reason = json.find("reason");
  if (id == json.end() || !id->is_string() || reason == json.end() || !reason->is_string()) {
    return std::nullopt;
  }
  std::string why = detail::utf8_prefix(reason->get<std::string>(), 500);
  for (auto& c : why) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return "an operator took " + id->get<std::string>() + " (lockable release --force)" +
         (why.empty() ? std::string() : ": " + why);
}

std::optional<std::string> KeyLayout::id_of_lock_key(std::string_view key) const {
  const std::string dir = locks_dir();
  if (key.size() <= dir.size() || key.substr(0, dir.size()) != dir) return std::nullopt;
  return std::string(key.substr(dir.size()));
}

KeyLayout make_layout(const std::string& prefix) {
  std::string text = trim(prefix);
  if (text.empty()) text = "/lockable";
  std::string normalised;
  for (const auto& segment : split(text, '/')) {
    if (segment.empty()) continue;
    if (segment == "." || segment == "..") {
      throw ConfigError("etcd key prefix \"" + prefix +
                        "\" has a \".\" or \"..\" segment; give a plain path such as /lab1");
    }
    for (const char c : segment) {
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
        throw ConfigError("etcd key prefix \"" + prefix +
                          "\" has a control character; give a plain path such as /lab1");
      }
    }
    normalised += "/" + segment;
  }
  return KeyLayout{normalised};
}

SpecParts parse_spec(const std::string& rest, const std::string& endpoints_env) {
  const std::string spec = "etcd://" + rest;
  SpecParts parts;
  std::string body = rest;
  if (const auto query = body.find('?'); query != std::string::npos) {
    for (const auto& pair : split(body.substr(query + 1), '&')) {
      if (pair.empty()) continue;
      const auto eq = pair.find('=');
      const std::string name = pair.substr(0, eq);
      const std::string value = eq == std::string::npos ? "" : pair.substr(eq + 1);
      if (name != "ttl") {
        throw ConfigError("lock backend \"" + spec + "\": unknown option \"" + name +
                          "\"; the only option is ttl=SECONDS (the lease time-to-live)");
      }
      const bool digits = !value.empty() && value.size() <= 6 &&
                          std::all_of(value.begin(), value.end(), [](char c) {
                            return std::isdigit(static_cast<unsigned char>(c)) != 0;
                          });
      if (!digits || std::stol(value) < 1) {
        throw ConfigError("lock backend \"" + spec + "\": ttl=" + value +
                          " is not a whole number of seconds >= 1; give e.g. ttl=10");
      }
      parts.ttl = std::chrono::seconds(std::stol(value));
    }
    body = body.substr(0, query);
  }
  const auto slash = body.find('/');
  const std::string hosts = body.substr(0, slash);
  parts.prefix = slash == std::string::npos ? "" : body.substr(slash);
  if (!hosts.empty()) {
    for (const auto& raw : split(hosts, ',')) {
      const std::string host = trim(raw);
      const auto colon = host.rfind(':');
      const bool port_ok =
          colon != std::string::npos && colon + 1 < host.size() &&
          std::all_of(host.begin() + static_cast<long>(colon) + 1, host.end(),
                      [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; });
      if (host.empty() || !port_ok || colon == 0 || host.find('@') != std::string::npos) {
        throw ConfigError("lock backend \"" + spec + "\": \"" + host +
                          "\" is not HOST:PORT; write etcd://HOST:PORT[,HOST:PORT...]/PREFIX "
                          "(credentials go in LOCKABLE_ETCD_USER and LOCKABLE_ETCD_PASSWORD)");
      }
      parts.endpoints.push_back("http://" + host);
    }
  } else {
    for (const auto& raw : split(endpoints_env, ',')) {
      std::string url = trim(raw);
      if (url.empty()) continue;
      while (!url.empty() && url.back() == '/') url.pop_back();
      if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0) {
        throw ConfigError("LOCKABLE_ETCD_ENDPOINTS: \"" + url +
                          "\" is not an http:// or https:// URL; give e.g. "
                          "http://10.0.0.5:2379,http://10.0.0.6:2379");
      }
      if (url.find('@') != std::string::npos) {
        throw ConfigError(
            "LOCKABLE_ETCD_ENDPOINTS: an endpoint carries credentials; put them in "
            "LOCKABLE_ETCD_USER and LOCKABLE_ETCD_PASSWORD instead");
      }
      parts.endpoints.push_back(url);
    }
    if (parts.endpoints.empty()) {
      throw ConfigError("lock backend \"" + spec +
                        "\" names no etcd endpoint; write etcd://HOST:PORT/PREFIX or set "
                        "LOCKABLE_ETCD_ENDPOINTS=http://HOST:PORT[,...]");
    }
  }
  return parts;
}

std::vector<QueueEntry> parse_queue(const Json& kvs) {
  std::vector<QueueEntry> entries;
  if (!kvs.is_array()) return entries;
  for (const auto& kv : kvs) {
    QueueEntry entry;
    const auto key = kv.is_object() && kv.contains("key") && kv["key"].is_string()
                         ? base64_decode(kv["key"].get<std::string>())
                         : std::nullopt;
    const auto revision = int64_field(kv, "create_revision");
    if (!key || !revision) continue;
    entry.key = *key;
    entry.create_revision = *revision;
    const auto value = kv.contains("value") && kv["value"].is_string()
                           ? base64_decode(kv["value"].get<std::string>())
                           : std::optional<std::string>(std::string());
    const Json json = value ? Json::parse(*value, nullptr, false) : Json();
    if (json.is_object()) {
      if (const auto it = json.find("wanted"); it != json.end() && it->is_array()) {
        for (const auto& id : *it) {
          if (id.is_string()) entry.wanted.push_back(id.get<std::string>());
        }
      }
      entry.holder = json;
      entry.holder.erase("wanted");
      const auto waiter = HolderInfo::from_json(entry.holder);
      entry.place = QueuePlace{waiter.priority, waiter.since};
    }
    entries.push_back(std::move(entry));
  }
  std::sort(entries.begin(), entries.end(), [](const QueueEntry& a, const QueueEntry& b) {
    return a.create_revision < b.create_revision;
  });
  return entries;
}

std::vector<std::vector<std::string>> wanted_before(const std::vector<QueueEntry>& queue,
                                                    std::int64_t mine, const std::string& my_key,
                                                    const QueuePlace& place,
                                                    std::chrono::system_clock::time_point now,
                                                    std::chrono::system_clock::duration aging) {
  std::vector<QueuePlace> places;
  std::vector<const QueueEntry*> entries;
  std::size_t my_index = 0;
  bool placed = false;
  for (const auto& entry : queue) {
    if (entry.key == my_key) continue;
    if (!placed && mine != 0 && entry.create_revision >= mine) {
      my_index = places.size();
      places.push_back(place);
      entries.push_back(nullptr);
      placed = true;
    }
    places.push_back(entry.place);
    entries.push_back(&entry);
  }
  if (!placed) {
    my_index = places.size();
    places.push_back(place);
    entries.push_back(nullptr);
  }
  std::vector<std::vector<std::string>> wanted;
  for (const auto index : served_before(places, my_index, now, aging)) {
    wanted.push_back(entries[index]->wanted);
  }
  return wanted;
}

std::optional<Json> parse_holder_value(const std::string& value) {
  Json json = Json::parse(value, nullptr, false);
  if (!json.is_object() || !json.contains("alloc_id") || !json["alloc_id"].is_string() ||
      !json.contains("pid")) {
    return std::nullopt;
  }
  return json;
}

bool lease_maybe_lapsed(std::chrono::steady_clock::time_point last_ok_sent,
                        std::chrono::steady_clock::duration ttl,
                        std::chrono::steady_clock::duration margin,
                        std::chrono::steady_clock::time_point now) {
  return now >= last_ok_sent + ttl - margin;
}

std::chrono::steady_clock::duration loss_margin(std::chrono::steady_clock::duration ttl) {
  return std::min<std::chrono::steady_clock::duration>(ttl / 4, std::chrono::seconds(1));
}

std::chrono::steady_clock::duration refresh_interval(std::chrono::steady_clock::duration ttl) {
  return ttl / 3;
}

std::optional<GatewayError> parse_gateway_error(const std::string& body) {
  const Json json = Json::parse(body, nullptr, false);
  if (!json.is_object() || !json.contains("code") || !json["code"].is_number_integer()) {
    return std::nullopt;
  }
  GatewayError error;
  error.code = json["code"].get<int>();
  if (json.contains("message") && json["message"].is_string()) {
    error.message = json["message"].get<std::string>();
  } else if (json.contains("error") && json["error"].is_string()) {
    error.message = json["error"].get<std::string>();
  }
  return error;
}

std::string lease_hex(std::int64_t id) {
  char text[24];
  std::snprintf(text, sizeof text, "%llx",
                static_cast<unsigned long long>(static_cast<std::uint64_t>(id)));
  return text;
}

}  // namespace lockable::etcd
