#pragma once
// The project's one HTTP client (libcurl): every backend and provider that talks HTTP (resources
// from a URL, the Lockable.dev lock service, etcd's JSON gateway) goes through it, so retries,
// timeouts, TLS, proxies, redaction and cancellation are decided once.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lockable::http {

using Clock = std::chrono::steady_clock;
using Log = std::function<void(const std::string&)>;

struct ClientOptions {
  /// Bound on establishing one connection (TCP + TLS).
  std::chrono::milliseconds connect_timeout{5000};
  /// Bound on one attempt; the caller's deadline bounds all attempts together.
  std::chrono::milliseconds attempt_timeout{30000};
  /// TLS peer and host verification. Turning it off is logged once, as a warning.
  bool verify_tls = true;
  /// CA bundle (PEM) instead of the system's, e.g. a lab's own CA.
  std::string ca_file;
  /// Redirects followed (same method for 307/308, GET for 301-303, as browsers do); 0: none.
  long max_redirects = 5;
  /// First and largest delay between retries (jittered, see detail::Backoff).
  std::chrono::milliseconds retry_initial{100};
  std::chrono::milliseconds retry_cap{5000};
  /// Warnings (TLS verification off). Empty: stderr.
  Log log;
};

struct Request {
  std::string method = "GET";
  std::string url;
  /// "Name: value" lines.
  std::vector<std::string> headers;
  std::string body;
  /// HTTP basic credentials; never logged, never in an error message.
  std::optional<std::pair<std::string, std::string>> basic_auth;
  /// Other values never shown in a message (a password sent in the body).
  std::vector<std::string> secrets;
  /// Retry 429 (honouring Retry-After), 500, 502, 503, 504 and connection errors inside the
  /// deadline. Off for calls that must not be repeated blindly.
  bool retry = true;
  /// Streaming: each piece of the body as it arrives (the body is then not collected). Return
  /// false to end the transfer early; send() then returns normally with what came so far.
  std::function<bool(std::string_view)> on_data;
};

struct Response {
  long status = 0;
  std::string body;
  /// Headers of the final response, names in lower case.
  std::vector<std::pair<std::string, std::string>> headers;
  /// Where the body came from after redirects (credentials removed).
  std::string url;

  /// The first header of that name (any case), if present.
  std::optional<std::string> header(std::string_view name) const;
};

/// Thread-safe. Keeps connections open between calls (a small pool of libcurl handles), so a
/// series of calls to one server reuses one connection. Proxies come from the environment
/// (http_proxy, https_proxy, no_proxy) as libcurl reads them.
class Client {
 public:
  explicit Client(ClientOptions options = {});
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  /// Sends `request` and returns the first answer that is not retried: 2xx, 3xx (redirects
  /// exhausted or off), 4xx other than 429, and any status when `request.retry` is off. Throws:
  ///   - TemporarilyUnavailableError: connection errors, timeouts and 429/5xx still failing when
  ///     the deadline leaves no time for another attempt (the message has the method, the URL
  ///     without credentials, the status and the first bytes of the body);
  ///   - BackendError: what no retry cures (an unknown host, an untrusted TLS certificate,
  ///     too many redirects, a malformed URL);
  ///   - CancelledError: `*cancel` became true (checked while waiting; interrupt() wakes it).
  Response send(const Request& request, Clock::time_point deadline,
                const std::atomic<bool>* cancel = nullptr);

  /// Wakes every call in progress so that it checks its cancel flag now, not at its next poll.
  void interrupt() noexcept;

  const ClientOptions& options() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// A Retry-After header's value (seconds, or an HTTP date relative to `now`) as a delay; a date
/// in the past is 0, nullopt for anything unreadable. Pure: the fuzz target calls it.
std::optional<Clock::duration> parse_retry_after(std::string_view value,
                                                 std::chrono::system_clock::time_point now);

/// The answer of a Lockable.dev-style lock service (`{"response": true|false}`); nullopt for any
/// other body. Defined with the lock service store (lock_service.cpp).
std::optional<bool> parse_lock_service_answer(std::string_view body);

/// `url` without user:password@ and without the query's values of names that look like secrets
/// (token, password, key, secret, auth, signature): what messages may show.
std::string redact_url(std::string_view url);

/// A URL split into the URL without `user:password@` and the (percent-decoded) user and password
/// it carried, for callers that send them as basic credentials instead.
struct UrlCredentials {
  std::string url;
  std::optional<std::string> user;
  std::optional<std::string> password;
};
UrlCredentials split_credentials(std::string_view url);

/// Percent-encodes everything outside RFC 3986's unreserved set: a safe path segment.
std::string encode_path_segment(std::string_view text);

/// The first `limit` bytes of a body, valid UTF-8 and one line, for an error message.
std::string body_excerpt(std::string_view body, std::size_t limit = 200);

/// "GET http://host/x answered 404 Not Found: <first bytes of the body>".
std::string describe_answer(const Request& request, const Response& response);

/// `text` with every secret `request` carries replaced by REDACTED: its basic credentials (and
/// their base64), a password in its URL, Authorization header values, the query values
/// redact_url hides, and `secrets`. For server answers, which may echo them.
std::string hide_secrets(std::string text, const Request& request);

}  // namespace lockable::http
