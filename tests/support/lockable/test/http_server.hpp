#pragma once
// A real HTTP server on 127.0.0.1 at a free port (cpp-httplib), for the tests of everything that
// talks HTTP. Started by the test, always stopped by the destructor, also on failure.

#include <httplib.h>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

namespace lockable::test {

class HttpServer {
 public:
  /// Routes are registered on the httplib::Server this gets, before it listens; `configure` runs
  /// again on restart(), so a restarted server answers the same way.
  using Configure = std::function<void(httplib::Server&)>;

  /// Binds 127.0.0.1 at a free port and serves in a thread of its own.
  explicit HttpServer(Configure configure);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const noexcept { return port_; }
  /// "http://127.0.0.1:<port><path>".
  std::string url(const std::string& path = "") const;

  /// Stops listening and closes every connection (clients see "connection refused").
  void stop();
  /// Listens again on the same port, with the same routes.
  void restart();
  bool running() const noexcept { return thread_.joinable(); }

  /// Requests answered so far (any route), and the TCP connections they came on (told apart by
  /// the client's port): a reused connection shows as many requests over one connection.
  int requests() const noexcept { return requests_.load(); }
  int connections() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return static_cast<int>(client_ports_.size());
  }

 private:
  void start(int port);

  Configure configure_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
  std::atomic<int> requests_{0};
  mutable std::mutex mutex_;
  std::set<int> client_ports_;
};

}  // namespace lockable::test
