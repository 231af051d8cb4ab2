// Named locks (the Lockable.dev model of include/lockable/named_lock.hpp) stored in etcd: the
// name is the key `<prefix>/names/<name>`, created only if absent on a lease of its own; the
// heartbeat keeps that lease alive, the release deletes the key and revokes the lease. A lab that
// runs etcd hosts its own "Lockable.dev".

#include <lockable/error.hpp>
#include <lockable/etcd.hpp>

#include "etcd/etcd_client.hpp"
#include "etcd/etcd_logic.hpp"

#include <map>
#include <mutex>

namespace lockable {
namespace {

using etcd::Clock;

Json b64(const std::string& bytes) { return etcd::base64_encode(bytes); }

class EtcdNamedLockStore final : public NamedLockStore {
 public:
  explicit EtcdNamedLockStore(EtcdOptions options)
      : layout_(etcd::make_layout(options.prefix)), ttl_(options.ttl) {
    etcd::ClientConfig config;
    config.endpoints = options.endpoints;
    config.user = options.user;
    config.password = options.password;
    config.log = options.log;
    client_ = std::make_unique<etcd::Client>(std::move(config));
  }

  bool try_acquire(const std::string& name, Clock::time_point deadline,
                   const std::atomic<bool>* cancel) override {
    const std::string key = key_of(name);
    const Json granted =
        client_->call("/v3/lease/grant",
                      Json{{"TTL", std::chrono::duration_cast<std::chrono::seconds>(ttl_).count()}},
                      deadline, cancel);
    const auto lease = etcd::int64_field(granted, "ID").value_or(0);
    if (lease == 0) throw BackendError(describe() + " granted no lease: " + granted.dump());
    bool ours = false;
    try {
      const Json answer =
          client_->call("/v3/kv/txn",
                        Json{{"compare", Json::array({{{"key", b64(key)},
                                                       {"target", "CREATE"},
                                                       {"result", "EQUAL"},
                                                       {"create_revision", "0"}}})},
                             {"success", Json::array({{{"request_put",
                                                        {{"key", b64(key)},
                                                         {"value", b64(name)},
                                                         {"lease", std::to_string(lease)}}}}})}},
                        deadline, cancel);
      ours = succeeded(answer);
    } catch (...) {
      revoke(lease);
      throw;
    }
    if (!ours) {
      revoke(lease);
      return false;
    }
    std::lock_guard<std::mutex> guard(mutex_);
    leases_[name] = lease;
    return true;
  }

  bool try_heartbeat(const std::string& name, Clock::time_point deadline,
                     const std::atomic<bool>* cancel) override {
    const auto lease = lease_of(name);
    if (lease == 0) return false;
    const Json answer =
        client_->call("/v3/lease/keepalive", Json{{"ID", std::to_string(lease)}}, deadline, cancel);
    const Json& result = answer.contains("result") ? answer["result"] : answer;
    if (etcd::int64_field(result, "TTL").value_or(0) > 0) return true;
    forget(name, lease);
    return false;
  }

  bool try_release(const std::string& name, Clock::time_point deadline,
                   const std::atomic<bool>* cancel) override {
    const auto lease = lease_of(name);
    if (lease == 0) return false;
    // Only while the key is still on our lease: never frees a later holder's grant.
    const std::string key = key_of(name);
    const Json answer = client_->call(
        "/v3/kv/txn",
        Json{{"compare", Json::array({{{"key", b64(key)},
                                       {"target", "LEASE"},
                                       {"result", "EQUAL"},
                                       {"lease", std::to_string(lease)}}})},
             {"success", Json::array({{{"request_delete_range", {{"key", b64(key)}}}}})}},
        deadline, cancel);
    forget(name, lease);
    revoke(lease);
    return succeeded(answer);
  }

  std::chrono::milliseconds lease() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(ttl_);
  }
  void interrupt() noexcept override { client_->interrupt(); }
  std::string describe() const override {
    return client_->describe() + ", named locks under " + layout_.root() + "names/";
  }

 private:
  // A txn's "succeeded"; anything but a bool is an answer no etcd gives (not a JSON type error).
  bool succeeded(const Json& answer) const {
    const auto flag = etcd::bool_field(answer, "succeeded");
    if (!flag) {
      throw BackendError(client_->describe() + " answered a transaction with \"succeeded\": " +
                         http::body_excerpt(answer["succeeded"].dump()) +
                         ", which the etcd gateway never sends; check that the endpoint is an "
                         "etcd v3 server (3.4 or later)");
    }
    return *flag;
  }

  std::string key_of(const std::string& name) const {
    if (name.empty()) throw ConfigError("a named lock needs a name; give a non-empty name");
    return layout_.root() + "names/" + name;
  }
  std::int64_t lease_of(const std::string& name) {
    std::lock_guard<std::mutex> guard(mutex_);
    const auto it = leases_.find(name);
    return it == leases_.end() ? 0 : it->second;
  }
  void forget(const std::string& name, std::int64_t lease) {
    std::lock_guard<std::mutex> guard(mutex_);
    const auto it = leases_.find(name);
    if (it != leases_.end() && it->second == lease) leases_.erase(it);
  }
  void revoke(std::int64_t lease) noexcept {
    try {
      client_->call("/v3/lease/revoke", Json{{"ID", std::to_string(lease)}},
                    Clock::now() + std::chrono::seconds(1));
    } catch (const std::exception&) {
      // The lease lapses by itself.
    }
  }

  etcd::KeyLayout layout_;
  std::chrono::seconds ttl_;
  std::unique_ptr<etcd::Client> client_;
  std::mutex mutex_;
  std::map<std::string, std::int64_t> leases_;
};

}  // namespace

std::shared_ptr<NamedLockStore> make_etcd_named_lock_store(EtcdOptions options) {
  return std::make_shared<EtcdNamedLockStore>(std::move(options));
}

}  // namespace lockable
