#pragma once
// A small client for etcd's v3 JSON gateway over the project's HTTP client: POST a JSON body,
// get the JSON answer, with failover across endpoints, a cached auth token, and every gateway
// error turned into a lockable error that names the endpoint and the fix.

#include "http/client.hpp"

#include <lockable/error.hpp>
#include <lockable/resource.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace lockable::etcd {

using Clock = std::chrono::steady_clock;

struct ClientConfig {
  /// "http://host:port" (or https), in failover order; at least one.
  std::vector<std::string> endpoints;
  /// etcd user; empty: no authentication. The password is never logged or put in a message.
  std::string user;
  std::string password;
  /// Bound on one attempt at one endpoint (a stopped server answers nothing).
  std::chrono::milliseconds attempt_timeout{2000};
  http::Log log;
};

/// The lease a request named no longer exists on the server (expired or revoked).
class LeaseNotFoundError : public BackendError {
 public:
  using BackendError::BackendError;
};

/// Thread-safe.
class Client {
 public:
  explicit Client(ClientConfig config);

  /// POSTs `body` to `path` (e.g. "/v3/kv/txn") and returns the answer of a 200. Tries the
  /// endpoint that answered last first, then the others; connection errors and 5xx go to the next
  /// endpoint, and rounds repeat with backoff until `deadline`. Throws:
  ///   - TemporarilyUnavailableError when no endpoint answered usefully before the deadline;
  ///   - LeaseNotFoundError for "requested lease not found";
  ///   - BackendError for what no retry cures (wrong credentials, permission denied, not an etcd
  ///     gateway, an answer the gateway never gives), naming the endpoint and the fix;
  ///   - CancelledError when `*cancel` became true.
  Json call(const std::string& path, const Json& body, Clock::time_point deadline,
            const std::atomic<bool>* cancel = nullptr);

  /// Opens a streaming call (a watch) at one endpoint and hands each `{"result": ...}` message
  /// to `on_result` until it returns false, the server ends the stream, `deadline` or `*cancel`.
  /// Moves on to the next endpoint after a failure. Throws like call() when it cannot start.
  void stream(const std::string& path, const Json& body, Clock::time_point deadline,
              const std::function<bool(const Json&)>& on_result, const std::atomic<bool>* cancel);

  /// Wakes calls in progress so that they check their cancel flags now.
  void interrupt() noexcept { http_.interrupt(); }

  /// "etcd at http://127.0.0.1:2379" (or "etcd at a, b, c").
  std::string describe() const;

  /// Drops the cached token, e.g. after a watch was refused with an expired one.
  void forget_token();

 private:
  std::optional<std::string> token(Clock::time_point deadline, const std::atomic<bool>* cancel);
  http::Request request(std::size_t endpoint, const std::string& path, const Json& body,
                        const std::optional<std::string>& token) const;
  // Throws the error a non-200 answer means; returns normally when a retry at another endpoint
  // (5xx) or after a new token (401) may cure it, with `retry_reason` set.
  void check_answer(const http::Request& request, const http::Response& response,
                    std::size_t endpoint, const std::string& path, std::string& retry_reason);

  ClientConfig config_;
  http::Client http_;
  std::atomic<std::size_t> current_{0};
  std::mutex token_mutex_;
  std::optional<std::string> token_;
  bool auth_disabled_ = false;
};

}  // namespace lockable::etcd
