#include "lockable/test/http_server.hpp"

#include <chrono>
#include <stdexcept>

namespace lockable::test {

HttpServer::HttpServer(Configure configure) : configure_(std::move(configure)) { start(0); }

HttpServer::~HttpServer() { stop(); }

std::string HttpServer::url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(port_) + path;
}

void HttpServer::start(int port) {
  server_ = std::make_unique<httplib::Server>();
  server_->set_logger([this](const httplib::Request& request, const httplib::Response&) {
    ++requests_;
    std::lock_guard<std::mutex> lock(mutex_);
    client_ports_.insert(request.remote_port);
  });
  // Headers and body go out in separate writes; without TCP_NODELAY, Nagle's algorithm and the
  // client's delayed ACK add about 40 ms to each answer.
  server_->set_tcp_nodelay(true);
  // Long enough that a client reusing its connection between calls finds it still open.
  server_->set_keep_alive_timeout(30);
  server_->set_keep_alive_max_count(100000);
  // Each kept-alive connection holds a worker; many clients at once (contention tests, a
  // keepalive thread per backend) must not queue behind the idle ones.
  server_->new_task_queue = [] { return new httplib::ThreadPool(64); };
  configure_(*server_);
  if (port == 0) {
    port_ = server_->bind_to_any_port("127.0.0.1");
  } else if (!server_->bind_to_port("127.0.0.1", port)) {
    throw std::runtime_error(
        "test HTTP server: cannot listen on 127.0.0.1:" + std::to_string(port) + " again");
  } else {
    port_ = port;
  }
  if (port_ <= 0) throw std::runtime_error("test HTTP server: cannot bind 127.0.0.1");
  thread_ = std::thread([server = server_.get()] { server->listen_after_bind(); });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!server_->is_running() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void HttpServer::stop() {
  if (!thread_.joinable()) return;
  server_->stop();
  thread_.join();
}

void HttpServer::restart() {
  stop();
  start(port_);
}

}  // namespace lockable::test
