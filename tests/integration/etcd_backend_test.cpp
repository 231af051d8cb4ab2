// The etcd backend against a real etcd (Debian's etcd-server) on 127.0.0.1: bad input and faults
// (unreachable, wrong credentials, foreign data, not a gateway), lock loss (a holder killed or
// stopped, a revoked lease, etcd killed and restarted), a three-member cluster losing its leader,
// and a history check over several processes posing as several hosts.

#include <lockable/lockable.hpp>

#include <gtest/gtest.h>
#include <unistd.h>
#include <csignal>

#include <atomic>
#include <condition_variable>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "etcd/etcd_logic.hpp"
#include "lockable/test/child.hpp"
#include "lockable/test/etcd_server.hpp"
#include "lockable/test/eventually.hpp"
#include "lockable/test/files.hpp"
#include "lockable/test/http_server.hpp"

namespace lockable {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

Resource resource(const std::string& id) {
  Resource r;
  r.id = id;
  r.attributes = Json{{"id", id}, {"online", true}};
  return r;
}

HolderInfo holder(const std::string& alloc_id, const std::string& host = "rig-a") {
  return HolderInfo{static_cast<long>(::getpid()), host, alloc_id, std::chrono::system_clock::now(),
                    Json{{"kind", "etcd-test"}}};
}

using test::eventually;

std::string b64(const std::string& text) { return etcd::base64_encode(text); }

class EtcdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!test::etcd_program()) GTEST_SKIP() << "no etcd on PATH (apt-get install etcd-server)";
    server_ = std::make_unique<test::EtcdServer>();
  }

  EtcdOptions options(std::chrono::seconds ttl = 2s) const {
    EtcdOptions options;
    options.endpoints = {server_->endpoint()};
    options.prefix = "/lab";
    options.ttl = ttl;
    options.log = [](const std::string&) {};
    return options;
  }

  std::string spec(int ttl = 2) const {
    return "etcd://127.0.0.1:" + std::to_string(server_->client_port()) +
           "/lab?ttl=" + std::to_string(ttl);
  }

  // Runs the helper holding one of `ids` as `host`.
  std::unique_ptr<test::Child> holder_process(const std::string& host, const std::string& ids,
                                              int ttl = 2, double timeout = 60) {
    test::ChildOptions child_options;
    child_options.drop_env_prefixes = {"LOCKABLE_"};
    return std::make_unique<test::Child>(
        std::vector<std::string>{LOCKABLE_ETCD_HELPER, "hold", spec(ttl), host, ids,
                                 std::to_string(timeout)},
        child_options);
  }

  std::optional<test::HttpAnswer> post(const std::string& path, const std::string& body) {
    return test::http_call(server_->client_port(), "POST", path, body);
  }

  std::unique_ptr<test::EtcdServer> server_;
};

// "granted dut-1 42" → {"dut-1", 42}.
std::pair<std::string, std::uint64_t> parse_grant(const std::optional<std::string>& line) {
  std::istringstream stream(line.value_or(""));
  std::string word, id;
  std::uint64_t token = 0;
  stream >> word >> id >> token;
  return {word == "granted" ? id : "", token};
}

TEST_F(EtcdTest, UnreachableAtStartNamesTheEndpointAndTheFix) {
  auto opts = options();
  const int port = test::free_port();
  opts.endpoints = {"http://127.0.0.1:" + std::to_string(port)};
  try {
    make_etcd_backend(opts);
    FAIL() << "no error";
  } catch (const BackendError& error) {
    const std::string text = error.what();
    EXPECT_NE(text.find("127.0.0.1:" + std::to_string(port)), std::string::npos) << text;
    EXPECT_NE(text.find("start etcd there"), std::string::npos) << text;
  }
}

TEST_F(EtcdTest, FailsOverToTheNextEndpoint) {
  auto opts = options();
  opts.endpoints = {"http://127.0.0.1:" + std::to_string(test::free_port()), server_->endpoint()};
  auto backend = make_etcd_backend(opts);
  auto lock = backend->try_lock(resource("dut-1"), holder("a"));
  ASSERT_NE(lock, nullptr);
  EXPECT_TRUE(backend->holder_of("dut-1").has_value());
}

// Found by the fault harness (etcd seed 1004): a member stalled past the TTL answered a lock
// transaction after the lease had lapsed, and the lock was handed out although another holder
// could have the device by then.
TEST_F(EtcdTest, ALockGrantedOnlyAfterItsLeaseLapsedIsNeverHandedOut) {
  std::atomic<int> stalled_lock_txns{1};
  std::atomic<bool> stalling{false};
  const int etcd_port = server_->client_port();
  test::HttpServer proxy([&](httplib::Server& server) {
    server.Post(".*", [&](const httplib::Request& request, httplib::Response& response) {
      const bool lock_txn =
          request.path == "/v3/kv/txn" && request.body.find("request_put") != std::string::npos;
      const bool stall = lock_txn && stalled_lock_txns.fetch_sub(1) > 0;
      if (stall) stalling = true;
      // No keepalive gets through while the answer is held back, as with a stalled member.
      while (!stall && stalling && request.path == "/v3/lease/keepalive") {
        std::this_thread::sleep_for(10ms);
      }
      const auto answer = test::http_call(etcd_port, "POST", request.path, request.body, 5s);
      if (stall) {
        // Done in time by etcd, answered after the lease may have lapsed (2 s TTL less the 0.5 s
        // margin) but before the client gives up on the attempt (2 s).
        std::this_thread::sleep_for(1800ms);
        stalling = false;
      }
      response.status = answer ? answer->status : 502;
      response.set_content(answer ? answer->body : std::string(), "application/json");
    });
  });
  auto opts = options();
  opts.endpoints = {proxy.url()};
  auto backend = make_etcd_backend(opts);
  std::unique_ptr<HeldLock> lock;
  try {
    lock = backend->try_lock(resource("dut-1"), holder("a"));
  } catch (const TemporarilyUnavailableError&) {
    // Allowed: the caller retries.
  }
  if (lock) {
    EXPECT_FALSE(lock->lost()) << "a lock whose lease may have lapsed was handed out";
    const auto holder_now = backend->holder_of("dut-1");
    ASSERT_TRUE(holder_now.has_value());
    EXPECT_EQ(holder_now->alloc_id, "a");
  }
}

TEST_F(EtcdTest, NotAnEtcdGatewayIsSaidSo) {
  test::HttpServer other([](httplib::Server& server) {
    server.Post(".*", [](const httplib::Request&, httplib::Response& response) {
      response.status = 404;
      response.set_content("404 page not found", "text/plain");
    });
  });
  auto opts = options();
  opts.endpoints = {other.url()};
  try {
    make_etcd_backend(opts);
    FAIL() << "no error";
  } catch (const BackendError& error) {
    EXPECT_NE(std::string(error.what()).find("not an etcd v3 JSON gateway"), std::string::npos)
        << error.what();
  }
}

TEST_F(EtcdTest, AnAnswerTheGatewayNeverGivesIsSaidSo) {
  test::HttpServer other([](httplib::Server& server) {
    server.Post(".*", [](const httplib::Request&, httplib::Response& response) {
      response.set_content("<html>proxy login</html>", "text/html");
    });
  });
  auto opts = options();
  opts.endpoints = {other.url()};
  try {
    make_etcd_backend(opts);
    FAIL() << "no error";
  } catch (const BackendError& error) {
    const std::string text = error.what();
    EXPECT_NE(text.find("never sends"), std::string::npos) << text;
    EXPECT_NE(text.find(other.url()), std::string::npos) << text;
  }
}

TEST_F(EtcdTest, ForeignDataUnderThePrefixNamesTheKey) {
  ASSERT_TRUE(post("/v3/kv/put", R"({"key":")" + b64("/lab/locks/dut-1") + R"(","value":")" +
                                     b64("owned by a shell script") + R"("})"));
  auto backend = make_etcd_backend(options());
  try {
    backend->try_lock(resource("dut-1"), holder("a"));
    FAIL() << "no error";
  } catch (const ResourceUnusableError& error) {
    const std::string text = error.what();
    EXPECT_NE(text.find("/lab/locks/dut-1"), std::string::npos) << text;
    EXPECT_NE(text.find("etcdctl del"), std::string::npos) << text;
  }
  EXPECT_NE(backend->try_lock(resource("dut-2"), holder("b")), nullptr) << "others still work";
}

TEST_F(EtcdTest, CredentialsAreCheckedAndThePasswordNeverShown) {
  // A root user and authentication on, as etcd's documentation does it.
  for (const auto& [path, body] : std::vector<std::pair<std::string, std::string>>{
           {"/v3/auth/user/add", R"({"name":"root","password":"s3cret-pw"})"},
           {"/v3/auth/role/add", R"({"name":"root"})"},
           {"/v3/auth/user/grant", R"({"user":"root","role":"root"})"},
           {"/v3/auth/enable", "{}"}}) {
    const auto answer = post(path, body);
    ASSERT_TRUE(answer && answer->status == 200) << path << ": " << (answer ? answer->body : "");
  }
  {
    try {
      make_etcd_backend(options());
      FAIL() << "no error without a user";
    } catch (const BackendError& error) {
      EXPECT_NE(std::string(error.what()).find("LOCKABLE_ETCD_USER"), std::string::npos)
          << error.what();
    }
  }
  {
    auto opts = options();
    opts.user = "root";
    opts.password = "wrong-pw";
    try {
      make_etcd_backend(opts);
      FAIL() << "no error with a wrong password";
    } catch (const BackendError& error) {
      const std::string text = error.what();
      EXPECT_NE(text.find("rejected the credentials of user \"root\""), std::string::npos) << text;
      EXPECT_EQ(text.find("wrong-pw"), std::string::npos) << "the password is shown: " << text;
    }
  }
  auto opts = options();
  opts.user = "root";
  opts.password = "s3cret-pw";
  auto backend = make_etcd_backend(opts);
  auto lock = backend->try_lock(resource("dut-1"), holder("a"));
  ASSERT_NE(lock, nullptr);
  EXPECT_EQ(backend->holder_of("dut-1").value().alloc_id, "a");
}

TEST_F(EtcdTest, FactorySpecAndObserver) {
  auto backend = make_lock_backend(spec());
  EXPECT_NE(backend->describe().find(server_->endpoint()), std::string::npos);
  auto lock = backend->try_lock(resource("dut-1"), holder("alloc-1", "rig-b"));
  ASSERT_NE(lock, nullptr);
  auto observer = make_lock_observer(spec());
  const auto seen = observer->holders_of({"dut-0", "dut-1"});
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_FALSE(seen[0].has_value());
  ASSERT_TRUE(seen[1].has_value());
  EXPECT_EQ(seen[1]->hostname, "rig-b");
  EXPECT_EQ(seen[1]->alloc_id, "alloc-1");
  EXPECT_THROW(observer->try_lock(resource("dut-2"), holder("x")), BackendError);
  EXPECT_THROW(make_lock_backend("etcd://127.0.0.1/lab"), ConfigError) << "no port";
  EXPECT_THROW(make_lock_backend("etcd://127.0.0.1:1/lab?tll=3"), ConfigError);
}

TEST_F(EtcdTest, FencingTokensIncreasePerDevice) {
  auto first = make_etcd_backend(options());
  auto second = make_etcd_backend(options());
  std::uint64_t last = 0;
  for (int i = 0; i < 5; ++i) {
    auto& backend = i % 2 == 0 ? *first : *second;
    auto lock = backend.try_lock(resource("dut-1"), holder("a"));
    ASSERT_NE(lock, nullptr);
    ASSERT_TRUE(lock->fencing_token().has_value());
    EXPECT_GT(*lock->fencing_token(), last);
    last = *lock->fencing_token();
  }
}

TEST_F(EtcdTest, ARevokedLeaseRunsTheLossHandlerOnTheKeepaliveThread) {
  auto backend = make_etcd_backend(options());
  auto lock = backend->try_lock(resource("dut-1"), holder("a"));
  ASSERT_NE(lock, nullptr);
  std::mutex mutex;
  std::condition_variable told;
  std::vector<std::string> reasons;
  std::thread::id handler_thread;
  lock->on_lock_loss([&](const std::string& reason) {
    std::lock_guard<std::mutex> guard(mutex);
    reasons.push_back(reason);
    handler_thread = std::this_thread::get_id();
    told.notify_all();
  });
  const auto leases = post("/v3/lease/leases", "{}");
  ASSERT_TRUE(leases && leases->status == 200);
  const Json listed = Json::parse(leases->body);
  ASSERT_TRUE(listed.contains("leases")) << leases->body;
  for (const auto& lease : listed["leases"]) {
    const auto revoked = post("/v3/lease/revoke", Json{{"ID", lease["ID"]}}.dump());
    ASSERT_TRUE(revoked && revoked->status == 200) << (revoked ? revoked->body : "no answer");
  }
  std::unique_lock<std::mutex> guard(mutex);
  ASSERT_TRUE(told.wait_for(guard, 20s, [&] { return !reasons.empty(); })) << "no loss reported";
  EXPECT_EQ(reasons.size(), 1u);
  EXPECT_NE(reasons[0].find("dut-1"), std::string::npos) << reasons[0];
  EXPECT_NE(handler_thread, std::this_thread::get_id());
  guard.unlock();
  EXPECT_TRUE(lock->lost());
  auto other = make_etcd_backend(options());
  auto next = other->try_lock(resource("dut-1"), holder("b"));
  ASSERT_NE(next, nullptr);
  EXPECT_GT(*next->fencing_token(), *lock->fencing_token());
  lock->release();
  EXPECT_EQ(other->holder_of("dut-1").value().alloc_id, "b") << "the old release freed it";
  // The backend goes on with a new lease.
  EXPECT_NE(backend->try_lock(resource("dut-2"), holder("c")), nullptr);
}

TEST_F(EtcdTest, AHolderKilledWithSigkillFreesItsDeviceAfterTheTtl) {
  auto killed = holder_process("rig-a", "dut-1");
  const auto first = parse_grant(killed->read_line(30s));
  ASSERT_EQ(first.first, "dut-1");
  auto backend = make_etcd_backend(options());
  EXPECT_EQ(backend->try_lock(resource("dut-1"), holder("b")), nullptr);
  EXPECT_EQ(backend->holder_of("dut-1").value().hostname, "rig-a");
  killed->kill_now();
  auto waiter = holder_process("rig-b", "dut-1");
  const auto second = parse_grant(waiter->read_line(30s));
  ASSERT_EQ(second.first, "dut-1") << waiter->output();
  EXPECT_GT(second.second, first.second);
  waiter->write_line("release");
  EXPECT_EQ(waiter->wait(), 0);
}

TEST_F(EtcdTest, AWaiterKilledWithSigkillLeavesTheQueueWhenItsLeaseLapses) {
  auto backend = make_etcd_backend(options());
  auto held = backend->try_lock(resource("dut-1"), holder("held"));
  ASSERT_NE(held, nullptr);
  auto waiter = holder_process("rig-dead", "dut-1");
  ASSERT_TRUE(eventually([&] { return backend->queued().size() == 1; })) << "never queued";
  EXPECT_EQ(backend->queued().front().waiter.hostname, "rig-dead");
  EXPECT_EQ(backend->queued().front().wanted, std::vector<std::string>{"dut-1"});
  waiter->kill_now();
  ASSERT_TRUE(eventually([&] { return backend->queued().empty(); })) << "the dead waiter stayed";
  // A later waiter is not held back by it: it is first in line.
  auto ticket = backend->enqueue({"dut-1"}, holder("next"));
  backend->wait_for_change(Clock::now());
  EXPECT_TRUE(ticket->wanted_by_earlier_waiters().empty());
}

TEST_F(EtcdTest, WaitersOnSeveralHostsAreServedInArrivalOrder) {
  auto backend = make_etcd_backend(options());
  auto held = backend->try_lock(resource("dut-1"), holder("held"));
  ASSERT_NE(held, nullptr);
  constexpr std::size_t kWaiters = 4;
  std::vector<std::unique_ptr<test::Child>> waiters;
  for (std::size_t i = 0; i < kWaiters; ++i) {
    waiters.push_back(holder_process("host-" + std::to_string(i), "dut-1"));
    ASSERT_TRUE(eventually([&] { return backend->queued().size() == i + 1; }))
        << "waiter " << i << " never queued";
  }
  const auto queue = backend->queued();
  for (std::size_t i = 0; i < kWaiters; ++i) {
    EXPECT_EQ(queue[i].waiter.hostname, "host-" + std::to_string(i)) << "queue order";
  }
  held->release();
  std::uint64_t last_token = *held->fencing_token();
  for (std::size_t i = 0; i < kWaiters; ++i) {
    const auto grant = parse_grant(waiters[i]->read_line(30s));
    ASSERT_EQ(grant.first, "dut-1") << "waiter " << i << " was not served next";
    EXPECT_GT(grant.second, last_token);
    last_token = grant.second;
    waiters[i]->write_line("release");
    EXPECT_EQ(waiters[i]->read_line(30s).value_or(""),
              "released dut-1 " + std::to_string(last_token));
    EXPECT_EQ(waiters[i]->wait(), 0);
  }
}

TEST_F(EtcdTest, AStoppedHolderLosesToAWaiterAndSeesItsLossWhenContinued) {
  auto stopped = holder_process("rig-a", "dut-1");
  const auto first = parse_grant(stopped->read_line(30s));
  ASSERT_EQ(first.first, "dut-1");
  auto waiter = holder_process("rig-b", "dut-1");
  std::this_thread::sleep_for(300ms);  // queued behind the holder
  stopped->send_signal(SIGSTOP);
  const auto second = parse_grant(waiter->read_line(30s));
  ASSERT_EQ(second.first, "dut-1") << waiter->output();
  stopped->send_signal(SIGCONT);
  const auto lost = stopped->read_line(30s);
  EXPECT_EQ(lost.value_or(""), "lost dut-1 " + std::to_string(first.second));
  EXPECT_LT(first.second, second.second) << "the stale holder's token is the smaller one";
  stopped->write_line("release");
  EXPECT_EQ(stopped->wait(), 0);
  auto backend = make_etcd_backend(options());
  EXPECT_EQ(backend->holder_of("dut-1").value().hostname, "rig-b")
      << "the stale holder's release freed the new holder's device";
  waiter->write_line("release");
  EXPECT_EQ(waiter->wait(), 0);
}

TEST_F(EtcdTest, EtcdKilledAndRestartedWithinTheTtlKeepsTheHold) {
  auto backend = make_etcd_backend(options(20s));
  std::atomic<int> keepalive_errors{0};
  backend->on_keepalive_error([&](std::exception_ptr) { ++keepalive_errors; });
  auto lock = backend->try_lock(resource("dut-1"), holder("a"));
  ASSERT_NE(lock, nullptr);
  bool lost = false;
  lock->on_lock_loss([&](const std::string&) { lost = true; });
  server_->kill();
  ASSERT_TRUE(eventually([&] { return keepalive_errors > 0; })) << "no keepalive error seen";
  server_->restart();
  auto other = make_etcd_backend(options());
  EXPECT_EQ(other->try_lock(resource("dut-1"), holder("b")), nullptr) << "the hold survived";
  EXPECT_FALSE(lock->lost());
  EXPECT_FALSE(lost);
  lock->release();
  EXPECT_NE(other->try_lock(resource("dut-1"), holder("c")), nullptr);
}

TEST_F(EtcdTest, EtcdDownLongerThanTheTtlCountsAsALoss) {
  auto backend = make_etcd_backend(options(2s));
  auto lock = backend->try_lock(resource("dut-1"), holder("a"));
  ASSERT_NE(lock, nullptr);
  std::atomic<bool> lost{false};
  lock->on_lock_loss([&](const std::string&) { lost = true; });
  server_->kill();
  ASSERT_TRUE(eventually([&] { return lost.load(); })) << "no loss reported";
  EXPECT_TRUE(lock->lost());
  server_->restart();
  // The device comes free (the lease lapses or is revoked), and a new holder gets a higher token.
  auto other = make_etcd_backend(options());
  std::unique_ptr<HeldLock> next;
  ASSERT_TRUE(eventually([&] {
    next = other->try_lock(resource("dut-1"), holder("b"));
    return next != nullptr;
  }));
  EXPECT_GT(*next->fencing_token(), *lock->fencing_token());
}

// The plugin's rule "no test runs after a loss" rests on this: when lost() says true, the
// handler has run. Two locks share the lease; the keepalive thread is kept busy in the first
// one's handler, so the second one's loss is noticed first by the test's own lost() call.
TEST_F(EtcdTest, LostSaysTrueOnlyAfterTheHandlerRan) {
  auto backend = make_etcd_backend(options());
  auto first = backend->try_lock(resource("dut-1"), holder("a"));
  auto second = backend->try_lock(resource("dut-2"), holder("b"));
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);
  std::promise<void> second_seen_lost;
  auto second_seen = second_seen_lost.get_future();
  first->on_lock_loss([&](const std::string&) { second_seen.wait_for(20s); });
  std::mutex mutex;
  std::vector<std::string> reasons;
  second->on_lock_loss([&](const std::string& reason) {
    std::lock_guard<std::mutex> guard(mutex);
    reasons.push_back(reason);
  });
  const auto leases = post("/v3/lease/leases", "{}");
  ASSERT_TRUE(leases && leases->status == 200);
  const Json listed = Json::parse(leases->body);
  for (const auto& lease : listed.at("leases")) {
    const auto revoked = post("/v3/lease/revoke", Json{{"ID", lease["ID"]}}.dump());
    ASSERT_TRUE(revoked && revoked->status == 200) << (revoked ? revoked->body : "no answer");
  }
  const bool lost = eventually([&] { return second->lost(); }, 30s, 1ms);
  second_seen_lost.set_value();
  ASSERT_TRUE(lost) << "no loss seen";
  {
    std::lock_guard<std::mutex> guard(mutex);
    ASSERT_EQ(reasons.size(), 1u) << "lost() said true before the loss handler ran";
    EXPECT_NE(reasons[0].find("dut-2"), std::string::npos) << reasons[0];
  }
  first->release();
  second->release();
  std::lock_guard<std::mutex> guard(mutex);
  EXPECT_EQ(reasons.size(), 1u) << "the handler ran twice";
}

TEST_F(EtcdTest, InterruptWaitsEndsAWaitAtOnce) {
  auto backend = make_etcd_backend(options());
  auto waiting = std::async(std::launch::async, [&] {
    const auto started = Clock::now();
    backend->wait_for_change(Clock::now() + 60s);
    return Clock::now() - started;
  });
  std::this_thread::sleep_for(200ms);
  backend->interrupt_waits();
  ASSERT_EQ(waiting.wait_for(10s), std::future_status::ready);
  EXPECT_LT(waiting.get(), 20s);
}

TEST_F(EtcdTest, StatusThroughLockableNamesHoldersOnOtherHosts) {
  auto remote = holder_process("rig-far", "dut-2");
  ASSERT_EQ(parse_grant(remote->read_line(30s)).first, "dut-2");
  Options opts;
  opts.hostname = "rig-near";
  opts.log = [](const std::string&) {};
  Lockable lockable(opts,
                    make_list_provider(Json::array({{{"id", "dut-1"}, {"online", true}},
                                                    {{"id", "dut-2"}, {"online", true}}})),
                    make_lock_observer(spec()));
  const auto status = lockable.status();
  ASSERT_EQ(status.size(), 2u);
  EXPECT_EQ(status[0].state, ResourceStatus::State::kFree);
  EXPECT_EQ(status[1].state, ResourceStatus::State::kBusy);
  ASSERT_TRUE(status[1].holder.has_value());
  EXPECT_EQ(status[1].holder->hostname, "rig-far");
  EXPECT_EQ(status[1].holder->pid, static_cast<long>(remote->pid()));
}

TEST_F(EtcdTest, NamedLocksLiveInEtcdWithTheirCallbacks) {
  auto store = make_etcd_named_lock_store(options(2s));
  auto other_store = make_etcd_named_lock_store(options(2s));
  EXPECT_EQ(store->lease(), std::chrono::milliseconds(2000));
  NamedLockOptions once;
  once.blocking = false;
  std::atomic<int> losses{0};
  NamedLockOptions watched = once;
  watched.on_lock_loss = [&](const std::string&) { ++losses; };
  auto held = std::make_unique<NamedLock>(store, "bench-psu", watched);
  EXPECT_THROW(NamedLock(other_store, "bench-psu", once), LockTakenError);
  { NamedLock independent(other_store, "bench-scope", once); }
  std::this_thread::sleep_for(2500ms);  // past one lease: the heartbeat keeps it
  EXPECT_FALSE(held->lost());
  EXPECT_THROW(NamedLock(other_store, "bench-psu", once), LockTakenError);
  // The lease revoked (as when etcd expires it): the heartbeat learns it and reports the loss.
  const auto leases = post("/v3/lease/leases", "{}");
  ASSERT_TRUE(leases && leases->status == 200);
  const Json listed = Json::parse(leases->body);
  for (const auto& lease : listed.value("leases", Json::array())) {
    post("/v3/lease/revoke", Json{{"ID", lease["ID"]}}.dump());
  }
  ASSERT_TRUE(eventually([&] { return losses.load() == 1; })) << "no loss reported";
  EXPECT_TRUE(held->lost());
  NamedLock next(other_store, "bench-psu", once);  // free again
  held.reset();  // a lost lock is not released: the next holder keeps it
  EXPECT_THROW(NamedLock(store, "bench-psu", once), LockTakenError);
}

// Three members on loopback; the leader dies while a device is held and another is waited for.
TEST(EtcdClusterTest, LeaderKilledWhileHeldAndWaitedFor) {
  if (!test::etcd_program()) GTEST_SKIP() << "no etcd on PATH (apt-get install etcd-server)";
  test::EtcdCluster cluster;
  EtcdOptions opts;
  opts.endpoints = cluster.endpoints();
  opts.prefix = "/lab";
  opts.ttl = 5s;
  opts.log = [](const std::string&) {};
  auto holder_backend = make_etcd_backend(opts);
  auto held = holder_backend->try_lock(resource("dut-1"), holder("held"));
  ASSERT_NE(held, nullptr);
  std::atomic<bool> lost{false};
  held->on_lock_loss([&](const std::string&) { lost = true; });

  Options lockable_options;
  lockable_options.hostname = "rig-b";
  lockable_options.log = [](const std::string&) {};
  Lockable waiter(lockable_options, make_list_provider(Json::array({resource("dut-1").attributes})),
                  make_etcd_backend(opts));
  auto waiting = std::async(std::launch::async,
                            [&] { return waiter.lock(R"({"hostname": null})", Seconds(60)); });
  std::this_thread::sleep_for(500ms);
  const auto leader = cluster.leader();
  cluster.member(leader).kill();
  const auto next_leader = cluster.leader();
  EXPECT_NE(next_leader, leader);
  // Nothing is handed out twice: the device is still held (or its loss was reported first).
  auto probe = make_etcd_backend(opts);
  auto stolen = probe->try_lock(resource("dut-1"), holder("probe"));
  EXPECT_TRUE(stolen == nullptr || lost.load()) << "granted twice without a loss";
  stolen.reset();
  EXPECT_NE(waiting.wait_for(0s), std::future_status::ready) << "served while held";
  const auto held_token = *held->fencing_token();
  held->release();
  ASSERT_EQ(waiting.wait_for(30s), std::future_status::ready) << "the waiter was not served";
  Allocation allocation;
  try {
    allocation = waiting.get();
  } catch (const std::exception& error) {
    FAIL() << "the waiter failed: " << error.what();
  }
  EXPECT_EQ(allocation.resource_id(), "dut-1");
  EXPECT_GT(allocation.fencing_token().value_or(0), held_token);
}

// The history check: processes posing as three hosts take three devices many times while one is
// stopped past the TTL and one is killed; every grant, loss and release is in one ledger.
TEST_F(EtcdTest, HistoryOfManyHostsNeverOverlapsUnlessSuperseded) {
  test::TempDir dir;
  const std::string ledger = (dir.path() / "ledger").string();
  const std::string ids = "dut-1,dut-2,dut-3";
  std::vector<std::unique_ptr<test::Child>> workers;
  test::ChildOptions child_options;
  child_options.drop_env_prefixes = {"LOCKABLE_"};
  child_options.in = test::Stream::null();
  constexpr int kWorkers = 6;
  constexpr int kRounds = 25;
  for (int i = 0; i < kWorkers; ++i) {
    workers.push_back(std::make_unique<test::Child>(
        std::vector<std::string>{LOCKABLE_ETCD_HELPER, "stress", spec(2),
                                 "host-" + std::to_string(i % 3), ids, ledger,
                                 std::to_string(kRounds), std::to_string(i + 1)},
        child_options));
  }
  std::this_thread::sleep_for(300ms);
  const pid_t stopped = workers[0]->pid();
  const pid_t killed = workers[1]->pid();
  workers[0]->send_signal(SIGSTOP);
  workers[1]->kill_now();
  const auto killed_at = std::chrono::system_clock::now();
  std::this_thread::sleep_for(3500ms);  // past the TTL: the stopped worker's devices move on
  workers[0]->send_signal(SIGCONT);
  for (int i = 0; i < kWorkers; ++i) {
    if (i == 1) continue;
    EXPECT_EQ(workers[static_cast<std::size_t>(i)]->wait(120s), 0)
        << "worker " << i << " was lost: " << workers[static_cast<std::size_t>(i)]->output();
  }

  struct Hold {
    std::string id;
    std::uint64_t token = 0;
    long long grant = 0;
    long long end = std::numeric_limits<long long>::max();
    bool lost = false;
    pid_t pid = 0;
  };
  std::map<std::pair<std::string, std::uint64_t>, Hold> holds;
  std::ifstream in(ledger);
  std::string event, id;
  std::uint64_t token = 0;
  long long time = 0;
  pid_t pid = 0;
  while (in >> event >> id >> token >> time >> pid) {
    auto& hold = holds[{id, token}];
    hold.id = id;
    hold.token = token;
    hold.pid = pid;
    if (event == "grant") hold.grant = time;
    if (event == "release") hold.end = time;
    if (event == "lost") hold.lost = true;
  }
  const long long killed_us =
      std::chrono::duration_cast<std::chrono::microseconds>(killed_at.time_since_epoch()).count();
  std::size_t released = 0;
  for (auto& [key, hold] : holds) {
    if (hold.pid == killed) hold.end = std::min(hold.end, killed_us);
    if (hold.end != std::numeric_limits<long long>::max()) ++released;
  }
  EXPECT_GE(released, static_cast<std::size_t>((kWorkers - 2) * kRounds));
  std::size_t superseded = 0;
  for (const auto& [key_a, a] : holds) {
    for (const auto& [key_b, b] : holds) {
      if (a.id != b.id || a.token >= b.token) continue;
      // a is the older holder: b may start before a ends only if a's token was superseded,
      // i.e. a's holder learned of its loss (or was killed).
      if (b.grant < a.end) {
        EXPECT_TRUE(a.lost || a.pid == killed)
            << a.id << ": token " << a.token << " (pid " << a.pid << ") still held when token "
            << b.token << " (pid " << b.pid << ") was granted";
        ++superseded;
      }
    }
  }
  (void)stopped;
  RecordProperty("superseded_overlaps", static_cast<int>(superseded));
}

}  // namespace
}  // namespace lockable
