#include "lockable/test/etcd_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace lockable::test {
namespace {

using Clock = std::chrono::steady_clock;

sockaddr_in loopback(int port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return address;
}

// The value of "name":"..." in a flat JSON text (member ids are strings of digits).
std::string json_string(const std::string& body, const std::string& name) {
  const std::string needle = "\"" + name + "\":\"";
  const auto at = body.find(needle);
  if (at == std::string::npos) return {};
  const auto start = at + needle.size();
  return body.substr(start, body.find('"', start) - start);
}

}  // namespace

std::optional<std::string> etcd_program() {
  if (const char* path = std::getenv("PATH")) {
    std::stringstream dirs(path);
    std::string dir;
    while (std::getline(dirs, dir, ':')) {
      if (dir.empty()) continue;
      const auto candidate = std::filesystem::path(dir) / "etcd";
      if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
    }
  }
  if (::access("/usr/bin/etcd", X_OK) == 0) return std::string("/usr/bin/etcd");
  return std::nullopt;
}

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("free_port: socket() failed");
  auto address = loopback(0);
  socklen_t size = sizeof address;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size) != 0) {
    ::close(fd);
    throw std::runtime_error("free_port: cannot bind 127.0.0.1:0");
  }
  ::close(fd);
  return ntohs(address.sin_port);
}

std::optional<HttpAnswer> http_call(int port, const std::string& method, const std::string& path,
                                    const std::string& body, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (fd < 0) return std::nullopt;
  auto address = loopback(port);
  auto wait_for = [&](short events) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd entry{fd, events, 0};
    return ::poll(&entry, 1, static_cast<int>(left)) == 1 && (entry.revents & events) != 0;
  };
  std::optional<HttpAnswer> answer;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 &&
      errno != EINPROGRESS) {
    ::close(fd);
    return answer;
  }
  if (!wait_for(POLLOUT)) {
    ::close(fd);
    return answer;
  }
  int error = 0;
  socklen_t size = sizeof error;
  ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size);
  if (error != 0) {
    ::close(fd);
    return answer;
  }
  const std::string request = method + " " + path +
                              " HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                              "Content-Length: " +
                              std::to_string(body.size()) + "\r\n\r\n" + body;
  std::size_t sent = 0;
  while (sent < request.size()) {
    if (!wait_for(POLLOUT)) {
      ::close(fd);
      return answer;
    }
    const auto n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) {
      ::close(fd);
      return answer;
    }
    sent += static_cast<std::size_t>(n);
  }
  std::string response;
  char buffer[4096];
  for (;;) {
    if (!wait_for(POLLIN)) {
      ::close(fd);
      return answer;
    }
    const auto n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n < 0) {
      ::close(fd);
      return answer;
    }
    if (n == 0) break;
    response.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fd);
  const auto space = response.find(' ');
  const auto header_end = response.find("\r\n\r\n");
  if (response.rfind("HTTP/", 0) != 0 || space == std::string::npos ||
      header_end == std::string::npos) {
    return answer;
  }
  answer = HttpAnswer{std::atoi(response.c_str() + space + 1), response.substr(header_end + 4)};
  return answer;
}

EtcdServer::EtcdServer()
    : own_dir_(std::make_unique<TempDir>("lockable-etcd-")), dir_(own_dir_->path()) {
  for (int attempt = 0;; ++attempt) {
    client_port_ = free_port();
    peer_port_ = free_port();
    initial_cluster_ = name_ + "=http://127.0.0.1:" + std::to_string(peer_port_);
    try {
      start();
      wait_healthy(std::chrono::seconds(30));
      return;
    } catch (const std::exception&) {
      // Another process took a port between free_port() and etcd's bind: try others.
      if (child_) child_->kill_now();
      child_.reset();
      if (attempt >= 2) throw;
      std::filesystem::remove_all(dir_ / "data");
    }
  }
}

EtcdServer::EtcdServer(MemberTag, std::string name, std::string initial_cluster, int client_port,
                       int peer_port, std::filesystem::path data_dir)
    : dir_(std::move(data_dir)),
      name_(std::move(name)),
      initial_cluster_(std::move(initial_cluster)),
      client_port_(client_port),
      peer_port_(peer_port) {
  std::filesystem::create_directories(dir_);
  start();
}

EtcdServer::~EtcdServer() {
  if (child_) {
    child_->send_signal(SIGCONT);  // a stopped process takes SIGKILL too, but be plain about it
    child_->kill_now();
  }
}

std::string EtcdServer::endpoint() const {
  return "http://127.0.0.1:" + std::to_string(client_port_);
}

void EtcdServer::start() {
  const auto program = etcd_program();
  if (!program) throw std::runtime_error("no etcd program on PATH (apt-get install etcd-server)");
  const std::string client_url = endpoint();
  const std::string peer_url = "http://127.0.0.1:" + std::to_string(peer_port_);
  ChildOptions options;
  options.in = Stream::null();
  options.out = Stream::file(dir_ / ("etcd-" + std::to_string(starts_++) + ".log"));
  options.err = Stream::same_as_stdout();
  options.drop_env_prefixes = {"ETCD"};
  child_ = std::make_unique<Child>(
      std::vector<std::string>{
          *program, "--name", name_, "--data-dir", (dir_ / "data").string(), "--listen-client-urls",
          client_url, "--advertise-client-urls", client_url, "--listen-peer-urls", peer_url,
          "--initial-advertise-peer-urls", peer_url, "--initial-cluster", initial_cluster_,
          "--initial-cluster-token", "lockable-test", "--log-level", "warn"},
      options);
}

void EtcdServer::wait_healthy(std::chrono::milliseconds guard) {
  const auto deadline = Clock::now() + guard;
  while (Clock::now() < deadline) {
    const auto answer =
        http_call(client_port_, "GET", "/health", "", std::chrono::milliseconds(500));
    if (answer && answer->status == 200 && answer->body.find("\"true\"") != std::string::npos) {
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  throw std::runtime_error("etcd on 127.0.0.1:" + std::to_string(client_port_) +
                           " did not become healthy; its log:\n" + log());
}

void EtcdServer::kill() {
  if (!child_) return;
  child_->send_signal(SIGCONT);
  child_->kill_now();
  child_.reset();
}

void EtcdServer::pause() {
  if (child_) child_->send_signal(SIGSTOP);
}

void EtcdServer::resume() {
  if (child_) child_->send_signal(SIGCONT);
}

void EtcdServer::restart() {
  kill();
  start();
  wait_healthy(std::chrono::seconds(30));
}

std::string EtcdServer::log() const {
  std::string text;
  for (int i = 0; i < starts_; ++i) {
    text += read_text(dir_ / ("etcd-" + std::to_string(i) + ".log"));
  }
  return text;
}

EtcdCluster::EtcdCluster() : dir_("lockable-etcd-cluster-") {
  std::vector<int> clients;
  std::vector<int> peers;
  std::string initial;
  for (int i = 0; i < 3; ++i) {
    clients.push_back(free_port());
    peers.push_back(free_port());
    initial += (i == 0 ? "" : ",") + std::string("m") + std::to_string(i) +
               "=http://127.0.0.1:" + std::to_string(peers.back());
  }
  for (std::size_t i = 0; i < 3; ++i) {
    members_.push_back(std::unique_ptr<EtcdServer>(
        new EtcdServer(EtcdServer::MemberTag{}, "m" + std::to_string(i), initial, clients[i],
                       peers[i], dir_.path() / ("m" + std::to_string(i)))));
  }
  for (auto& member : members_) member->wait_healthy(std::chrono::seconds(30));
}

EtcdCluster::~EtcdCluster() = default;

std::vector<std::string> EtcdCluster::endpoints() const {
  std::vector<std::string> urls;
  for (const auto& member : members_) urls.push_back(member->endpoint());
  return urls;
}

std::size_t EtcdCluster::leader(std::chrono::milliseconds guard) const {
  const auto deadline = Clock::now() + guard;
  while (Clock::now() < deadline) {
    for (std::size_t i = 0; i < members_.size(); ++i) {
      if (!members_[i]->running()) continue;
      const auto answer = http_call(members_[i]->client_port(), "POST", "/v3/maintenance/status",
                                    "{}", std::chrono::milliseconds(500));
      if (!answer || answer->status != 200) continue;
      const std::string leader = json_string(answer->body, "leader");
      if (!leader.empty() && leader == json_string(answer->body, "member_id")) return i;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  throw std::runtime_error("no etcd member says it leads");
}

}  // namespace lockable::test
