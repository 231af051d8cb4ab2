#pragma once

// A real etcd for tests: Debian's etcd-server started on 127.0.0.1 at free ports with a
// temporary data dir, ready once /health says so, and always stopped (the destructor kills it,
// also when a test fails). Faults on demand: SIGKILL, SIGSTOP/SIGCONT, a restart on the same
// ports and data. A three-member cluster on loopback, with leader lookup, for failover tests.
// Never any address but 127.0.0.1.

#include "lockable/test/child.hpp"
#include "lockable/test/files.hpp"

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace lockable::test {

/// The etcd program on PATH (or /usr/bin/etcd), nullopt when there is none: tests then skip,
/// saying so.
std::optional<std::string> etcd_program();

/// One free TCP port on 127.0.0.1 (bound once and closed: another process could take it before
/// etcd does, which start() notices and reports).
int free_port();

/// A minimal HTTP call to 127.0.0.1:`port` (no libcurl in the test support): the answer's
/// status and body, or nullopt when nothing answered within `timeout`.
struct HttpAnswer {
  int status = 0;
  std::string body;
};
std::optional<HttpAnswer> http_call(int port, const std::string& method, const std::string& path,
                                    const std::string& body,
                                    std::chrono::milliseconds timeout = std::chrono::seconds(2));

/// One etcd process (a single-node cluster, or a member of EtcdCluster).
class EtcdServer {
 public:
  /// Starts a single-node etcd and waits for /health (up to `ready_guard`). Throws
  /// std::runtime_error with etcd's log when it does not come up.
  EtcdServer();
  ~EtcdServer();
  EtcdServer(const EtcdServer&) = delete;
  EtcdServer& operator=(const EtcdServer&) = delete;

  /// "http://127.0.0.1:PORT".
  std::string endpoint() const;
  int client_port() const noexcept { return client_port_; }
  /// Kills it with SIGKILL and reaps it (nothing is flushed: a crash).
  void kill();
  /// SIGSTOP / SIGCONT: it keeps its sockets but answers nothing while stopped.
  void pause();
  void resume();
  /// Starts it again on the same ports and data dir (after kill()), waiting for /health.
  void restart();
  /// True while the process runs.
  bool running() const noexcept { return child_ != nullptr; }
  /// etcd's own output so far, for failure messages.
  std::string log() const;

 private:
  friend class EtcdCluster;
  struct MemberTag {};
  EtcdServer(MemberTag, std::string name, std::string initial_cluster, int client_port,
             int peer_port, std::filesystem::path data_dir);
  void start();
  void wait_healthy(std::chrono::milliseconds guard);

  std::unique_ptr<TempDir> own_dir_;
  std::filesystem::path dir_;
  std::string name_ = "default";
  std::string initial_cluster_;
  int client_port_ = 0;
  int peer_port_ = 0;
  int starts_ = 0;
  std::unique_ptr<Child> child_;
};

/// Three etcd members on loopback, each with its own data dir.
class EtcdCluster {
 public:
  /// Starts all three and waits until each answers /health (a leader is elected).
  EtcdCluster();
  ~EtcdCluster();

  /// Every member's client URL, in member order.
  std::vector<std::string> endpoints() const;
  EtcdServer& member(std::size_t index) { return *members_.at(index); }
  std::size_t size() const noexcept { return members_.size(); }
  /// The index of the current leader among the running members (asked through
  /// /v3/maintenance/status), waiting up to `guard` for one; throws std::runtime_error if none.
  std::size_t leader(std::chrono::milliseconds guard = std::chrono::seconds(20)) const;

 private:
  TempDir dir_;
  std::vector<std::unique_ptr<EtcdServer>> members_;
};

}  // namespace lockable::test
