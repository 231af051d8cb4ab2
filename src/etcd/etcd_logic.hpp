#pragma once
// The pure part of the etcd backend: key layout, base64, the JSON gateway's value conventions,
// queue order from create revisions, and when a lease is surely gone. No I/O; unit-tested in
// tests/unit/etcd_logic_test.cpp.

#include <lockable/backend.hpp>
#include <lockable/resource.hpp>

#include "core/queue_order.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lockable::etcd {

/// Standard base64 with padding, as the gateway wants every key, value and range_end.
std::string base64_encode(std::string_view bytes);
/// The inverse; nullopt for text that is not standard padded base64.
std::optional<std::string> base64_decode(std::string_view text);

/// The end of the range that holds every key starting with `prefix` (its last byte plus one,
/// dropping trailing 0xff bytes); "\0" for an empty prefix or all 0xff (every key).
std::string prefix_range_end(std::string_view prefix);

/// An int64 field as the gateway writes it: a JSON string of digits (or a number); a missing
/// field is 0 (proto3 leaves zero values out). nullopt for anything else.
std::optional<std::int64_t> int64_field(const Json& object, const char* name);

/// A bool field as the gateway writes it (`"succeeded": true`); a missing field is false (proto3
/// leaves false out). nullopt for a field of another type, which the gateway never sends.
std::optional<bool> bool_field(const Json& object, const char* name);

/// Where one lab's locks and queue live under a cluster-wide prefix (`/lab1`):
///   <prefix>/locks/<id>     one per held device, value HolderInfo JSON, on the holder's lease
///   <prefix>/queue/<name>   one per waiting request, value {"wanted": [...], holder fields}
///   <prefix>/revoked/<lease> why an operator took a holder's lease, {"id": ..., "reason": ...}
struct KeyLayout {
  /// Normalised: starts with '/', no trailing '/' (except the bare "/" → "").
  std::string prefix;

  std::string lock_key(const std::string& id) const { return prefix + "/locks/" + id; }
  std::string locks_dir() const { return prefix + "/locks/"; }
  std::string queue_dir() const { return prefix + "/queue/"; }
  /// A device's reservation (no lease unless it has an end: it outlives every process).
  std::string reserved_key(const std::string& id) const { return prefix + "/reserved/" + id; }
  std::string reserved_dir() const { return prefix + "/reserved/"; }
  /// Why an operator revoked `lease` (`lockable release --force`), for its holder's loss message;
  /// on a short lease of its own, so it goes away by itself.
  std::string revocation_key(std::int64_t lease) const;
  /// Everything the backend watches.
  std::string root() const { return prefix + "/"; }
  /// The id of a lock key, or nullopt when `key` is not one.
  std::optional<std::string> id_of_lock_key(std::string_view key) const;
};

/// "/lab1" from "lab1", "/lab1/", "//lab1"; "" means the default, "/lockable". Throws ConfigError
/// naming the spec for a prefix with characters that make keys ambiguous (empty segments, "..").
KeyLayout make_layout(const std::string& prefix);

/// What a spec or the environment configures.
struct SpecParts {
  /// "http://host:port" per endpoint, in failover order.
  std::vector<std::string> endpoints;
  std::string prefix;
  /// Lease time-to-live; nullopt: the default.
  std::optional<std::chrono::seconds> ttl;
};

/// Parses the part of an etcd spec after "etcd://": `HOST:PORT[,HOST:PORT...]/PREFIX[?ttl=N]`.
/// The host list may be empty (`etcd:///lab1`); then `endpoints_env` (LOCKABLE_ETCD_ENDPOINTS,
/// comma-separated http(s) URLs) gives them. Throws ConfigError naming the spec and the fix.
SpecParts parse_spec(const std::string& rest, const std::string& endpoints_env);

/// A waiting request as the queue holds it.
struct QueueEntry {
  std::string key;
  std::int64_t create_revision = 0;
  std::vector<std::string> wanted;
  Json holder = Json::object();
  /// Its "priority" and "since" (0 and the epoch when the value has none: an older version).
  QueuePlace place;
};

/// Reads the kvs of a range over the queue (in any order): entries whose value is not a queue
/// entry (foreign data) want nothing, so they can never stall the queue. Sorted by create
/// revision, oldest first.
std::vector<QueueEntry> parse_queue(const Json& kvs);

/// The wanted ids of the entries served before mine, in queue order (core queue_order at `now`
/// with `aging`): mine is placed by its create revision `mine` among the entries (0 = not queued
/// yet, so after every entry) with `place` (its priority and since); the entry `my_key` is left
/// out. With the defaults (priority 0, no aging) and entries without priorities, these are the
/// entries that queued before mine, oldest first.
std::vector<std::vector<std::string>> wanted_before(
    const std::vector<QueueEntry>& queue, std::int64_t mine, const std::string& my_key,
    const QueuePlace& place = {}, std::chrono::system_clock::time_point now = {},
    std::chrono::system_clock::duration aging = std::chrono::system_clock::duration::zero());

/// A lock key's value parsed as our HolderInfo JSON; nullopt when it is something else (another
/// program's key under our prefix).
std::optional<Json> parse_holder_value(const std::string& value);

/// The value of a revocation key (KeyLayout::revocation_key) for the device `id` taken with
/// `reason`, and back: the words a holder's loss message gives, "an operator took dut-1 (lockable
/// release --force): <reason>". nullopt for a value that is not ours. The reason is cut to 500
/// bytes (a UTF-8 character is never split) and kept to one line.
std::string revocation_value(const std::string& id, const std::string& reason);
std::optional<std::string> revocation_text(const std::string& value);

/// True when the lease may already have expired on the server, so its locks must count as lost:
/// the server expires a lease `ttl` after the last keepalive it received, which is no earlier
/// than when we sent the last keepalive that succeeded (`last_ok_sent`). `margin` reports the
/// loss before the server can act on it (clock rates, the expiry check, scheduling).
bool lease_maybe_lapsed(std::chrono::steady_clock::time_point last_ok_sent,
                        std::chrono::steady_clock::duration ttl,
                        std::chrono::steady_clock::duration margin,
                        std::chrono::steady_clock::time_point now);

/// The margin used with lease_maybe_lapsed: a quarter of the TTL, at most one second.
std::chrono::steady_clock::duration loss_margin(std::chrono::steady_clock::duration ttl);

/// How often the keepalive thread renews a lease of `ttl`: a third of it.
std::chrono::steady_clock::duration refresh_interval(std::chrono::steady_clock::duration ttl);

/// What a gateway error body says: {"error": ..., "message": ..., "code": N}. nullopt when the
/// body is not that shape (plain text from a proxy, HTML).
struct GatewayError {
  int code = 0;
  std::string message;
};
std::optional<GatewayError> parse_gateway_error(const std::string& body);

/// A lease id as lower-case hex, as etcd's own tools print it.
std::string lease_hex(std::int64_t id);

}  // namespace lockable::etcd
