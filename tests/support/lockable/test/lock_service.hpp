#pragma once
// A fake Lockable.dev lock service with real leases, on a real HTTP server on 127.0.0.1
// (HttpServer): `GET /v1/acquire/<name>`, `/v1/heartbeat/<name>`, `/v1/release/<name>`, each
// answering {"response": true|false} as the public service does. A grant lasts `lease`; a
// heartbeat renews it; without one it lapses. With a token, every request must carry HTTP basic
// credentials "<token>:" or gets 401. The leases survive stop()/restart() of the server.

#include "lockable/test/http_server.hpp"

#include <chrono>
#include <map>
#include <mutex>
#include <string>

namespace lockable::test {

class LockService {
 public:
  using Clock = std::chrono::steady_clock;

  explicit LockService(std::chrono::milliseconds lease = std::chrono::seconds(2),
                       std::string token = "test-token");

  /// "http://127.0.0.1:<port>/v1", the base URL a client is given.
  std::string base_url() const { return server_.url("/v1"); }
  HttpServer& server() { return server_; }

  /// True while `name` is granted and its lease runs.
  bool held(const std::string& name);
  /// Takes `name` away as a lapsed lease would; false when it was not held.
  bool revoke(const std::string& name);
  /// Requests answered per verb ("acquire", "heartbeat", "release"), and with a bad token.
  int count(const std::string& verb) const;
  int unauthorized() const;
  /// Delays every answer by `delay` (a slow or stalled service): the request is handled only
  /// after the delay, as by a server that queued it.
  void set_delay(std::chrono::milliseconds delay);
  /// Handles every request at once but sends its answer only after `delay` (a slow way back).
  void set_answer_delay(std::chrono::milliseconds delay);
  /// Answers every request with HTTP `status` (e.g. 500) and an error body, changing nothing,
  /// until set back to 0 (a failing service; the fault harness switches it).
  void set_error_status(int status);

 private:
  void configure(httplib::Server& server);
  bool expired_locked(const std::string& name, Clock::time_point now);

  std::chrono::milliseconds lease_;
  std::string expected_auth_;
  mutable std::mutex mutex_;
  std::map<std::string, Clock::time_point> leases_;
  std::map<std::string, int> counts_;
  int unauthorized_ = 0;
  std::chrono::milliseconds delay_{0};
  std::chrono::milliseconds answer_delay_{0};
  int error_status_ = 0;
  HttpServer server_;
};

}  // namespace lockable::test
