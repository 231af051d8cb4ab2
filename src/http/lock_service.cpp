// The Lockable.dev named-lock client: a NamedLockStore over the one HTTP client, and NamedLock,
// which holds a name and keeps its lease alive from a heartbeat thread.

#include <lockable/error.hpp>
#include <lockable/named_lock.hpp>
#include <lockable/resource.hpp>

#include "core/lease.hpp"
#include "http/client.hpp"

#include <nlohmann/json.hpp>

#include <cctype>
#include <condition_variable>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <thread>

namespace lockable {
namespace http {

std::optional<bool> parse_lock_service_answer(std::string_view body) {
  const Json answer = Json::parse(body, nullptr, false);
  if (!answer.is_object()) return std::nullopt;
  const auto found = answer.find("response");
  if (found == answer.end() || !found->is_boolean()) return std::nullopt;
  return found->get<bool>();
}

}  // namespace http

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

class LockServiceStore final : public NamedLockStore {
 public:
  explicit LockServiceStore(LockServiceOptions options)
      : lease_(options.lease), client_(client_options(options)) {
    std::string url = options.base_url;
    source_ = "the lock backend spec";
    if (url.empty()) {
      const char* env = std::getenv("LOCKABLE_SERVICE_URL");
      url = env != nullptr && *env != '\0' ? env : kDefaultServiceUrl;
      source_ = "LOCKABLE_SERVICE_URL";
    }
    // Checked here, before a request: libcurl would only say the protocol is not supported.
    std::string scheme = url.substr(0, 8);
    for (auto& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (scheme.rfind("http://", 0) != 0 && scheme.rfind("https://", 0) != 0) {
      throw ConfigError(source_ + ": \"" + http::redact_url(url) +
                        "\" is not an http:// or https:// URL; give the lock service's base URL, "
                        "e.g. " +
                        std::string(kDefaultServiceUrl));
    }
    auto parts = http::split_credentials(url);
    base_ = parts.url;
    while (!base_.empty() && base_.back() == '/') base_.pop_back();
    shown_ = http::redact_url(base_);
    token_ = options.token;
    if (token_.empty()) {
      const char* env = std::getenv("LOCKABLE_AUTH_TOKEN");
      if (env != nullptr) token_ = env;
    }
    if (token_.empty() && parts.user) {
      token_ = *parts.user;
      password_ = parts.password.value_or("");
    }
    if (token_.empty()) {
      throw ConfigError("lock service " + shown_ +
                        ": no token; set LOCKABLE_AUTH_TOKEN to your Lockable.dev token (it is "
                        "sent as the HTTP basic user name)");
    }
    if (lease_.count() <= 0) {
      throw ConfigError("lock service " + shown_ + ": the lease must be positive");
    }
  }

  bool try_acquire(const std::string& name, Clock::time_point deadline,
                   const std::atomic<bool>* cancel) override {
    return call("acquire", name, deadline, cancel);
  }
  bool try_heartbeat(const std::string& name, Clock::time_point deadline,
                     const std::atomic<bool>* cancel) override {
    return call("heartbeat", name, deadline, cancel);
  }
  bool try_release(const std::string& name, Clock::time_point deadline,
                   const std::atomic<bool>* cancel) override {
    return call("release", name, deadline, cancel);
  }
  milliseconds lease() const override { return lease_; }
  void interrupt() noexcept override { client_.interrupt(); }
  std::string describe() const override { return "lock service " + shown_; }

 private:
  static http::ClientOptions client_options(const LockServiceOptions& options) {
    http::ClientOptions out;
    out.connect_timeout = options.connect_timeout;
    out.verify_tls = options.verify_tls;
    out.ca_file = options.ca_file;
    out.log = options.log;
    return out;
  }

  // One request, never retried here (see NamedLockStore): a repeated acquire after a lost answer
  // would read our own grant as "taken", a repeated release could free the next holder's lock.
  bool call(const std::string& verb, const std::string& name, Clock::time_point deadline,
            const std::atomic<bool>* cancel) {
    http::Request request;
    request.url = base_ + "/" + verb + "/" + http::encode_path_segment(name);
    request.basic_auth = std::make_pair(token_, password_);
    request.retry = false;
    request.headers.push_back("Accept: application/json");
    const http::Response response = client_.send(request, deadline, cancel);
    const std::string what = verb + " of \"" + name + "\" on " + describe();
    if (response.status == 401 || response.status == 403) {
      throw BackendError(what + " was refused (" + std::to_string(response.status) +
                         "): the token is not accepted; give a valid Lockable.dev token in "
                         "LOCKABLE_AUTH_TOKEN (or as the service URL's user name)");
    }
    if (response.status == 429 || response.status >= 500) {
      throw TemporarilyUnavailableError(http::describe_answer(request, response));
    }
    if (response.status < 200 || response.status >= 300) {
      throw BackendError(http::describe_answer(request, response) +
                         "; check the lock service URL (" + source_ + ")");
    }
    if (const auto granted = http::parse_lock_service_answer(response.body)) return *granted;
    throw BackendError(what + ": the answer is not {\"response\": true|false}: " +
                       http::hide_secrets(http::body_excerpt(response.body), request) +
                       "; check that the URL points to a Lockable.dev-style service");
  }

  milliseconds lease_;
  http::Client client_;
  std::string base_;
  std::string shown_;
  // Where the URL came from, for the fix in messages.
  std::string source_;
  std::string token_;
  std::string password_;
};

// A single acquire or release: long enough for a slow service and a lost SYN (retransmitted
// after 1 s), short enough that a stalled one does not hang a release for long. Not tied to the
// lease: the lease bounds heartbeats only.
constexpr milliseconds kRequestBound{10000};

}  // namespace

std::shared_ptr<NamedLockStore> make_lock_service_store(LockServiceOptions options) {
  return std::make_shared<LockServiceStore>(std::move(options));
}

struct NamedLock::State {
  std::shared_ptr<NamedLockStore> store;
  std::string name;
  NamedLockOptions options;
  milliseconds period{0};

  std::mutex mutex;
  std::condition_variable wake;
  std::atomic<bool> stopping{false};
  std::atomic<bool> lost{false};
  bool released = false;
  std::thread thread;

  void heartbeat_loop(Clock::time_point renewal_sent);
  void declare_lost(const std::string& reason);
};

void NamedLock::State::declare_lost(const std::string& reason) {
  lost = true;
  if (stopping) return;  // released meanwhile: the handler must not run after release()
  if (options.on_lock_loss) {
    try {
      options.on_lock_loss(reason);
    } catch (...) {
      // The heartbeat thread cannot act on it.
    }
  }
}

void NamedLock::State::heartbeat_loop(Clock::time_point renewal_sent) {
  const milliseconds lease = store->lease();
  int failures = 0;
  Clock::time_point last_attempt_end = renewal_sent;
  for (;;) {
    const auto next =
        detail::next_heartbeat(renewal_sent, last_attempt_end, failures, period, lease);
    {
      std::unique_lock<std::mutex> lock(mutex);
      wake.wait_until(lock, next, [&] { return stopping.load(); });
    }
    if (stopping) return;
    const auto now = Clock::now();
    if (detail::lease_lapsed(renewal_sent, lease, now)) {
      declare_lost("named lock \"" + name + "\" on " + store->describe() +
                   ": no heartbeat succeeded for a whole lease (" + std::to_string(lease.count()) +
                   " ms); the lease has lapsed");
      return;
    }
    bool renewed = false;
    try {
      renewed = store->try_heartbeat(
          name, detail::heartbeat_deadline(renewal_sent, now, period, lease), &stopping);
    } catch (const CancelledError&) {
      return;
    } catch (...) {
      ++failures;
      last_attempt_end = Clock::now();
      if (!stopping && options.on_heartbeat_exception) {
        try {
          options.on_heartbeat_exception(std::current_exception());
        } catch (...) {
        }
      }
      continue;
    }
    if (!renewed) {
      declare_lost("named lock \"" + name + "\" on " + store->describe() +
                   ": the service says it is no longer held by us");
      return;
    }
    renewal_sent = now;
    last_attempt_end = Clock::now();
    failures = 0;
  }
}

NamedLock::NamedLock(std::shared_ptr<NamedLockStore> store, std::string name,
                     NamedLockOptions options)
    : state_(std::make_shared<State>()) {
  if (!store) throw ConfigError("NamedLock: no store given");
  if (name.empty()) throw ConfigError("NamedLock: the lock name is empty; give a name");
  state_->store = std::move(store);
  state_->name = std::move(name);
  state_->options = std::move(options);
  const milliseconds lease = state_->store->lease();
  state_->period = detail::heartbeat_period(state_->options.heartbeat_period, lease);
  const milliseconds poll = std::max(milliseconds(1), state_->options.poll_period);
  const auto started = Clock::now();
  const auto give_up =
      state_->options.timeout ? started + *state_->options.timeout : Clock::time_point::max();
  const std::string what = "named lock \"" + state_->name + "\" on " + state_->store->describe();
  std::string last_problem;
  for (;;) {
    const auto sent = Clock::now();
    try {
      const auto deadline = std::min(give_up, sent + kRequestBound);
      if (state_->store->try_acquire(state_->name, std::max(deadline, sent + milliseconds(1)))) {
        state_->thread = std::thread([state = state_, sent] { state->heartbeat_loop(sent); });
        return;
      }
      if (!state_->options.blocking) {
        throw LockTakenError(what + " is held by someone else");
      }
      last_problem.clear();
    } catch (const TemporarilyUnavailableError& error) {
      if (!state_->options.blocking) throw;
      last_problem = error.what();
    }
    const auto now = Clock::now();
    if (now >= give_up) {
      throw TimeoutError(what + " stayed " +
                             (last_problem.empty() ? "held by someone else"
                                                   : "unreachable (" + last_problem + ")") +
                             " for " + std::to_string((now - started) / milliseconds(1)) +
                             " ms; give a longer timeout",
                         {});
    }
    std::this_thread::sleep_until(std::min(give_up, now + poll));
  }
}

NamedLock::~NamedLock() { release(); }

void NamedLock::release() noexcept {
  State& state = *state_;
  {
    std::lock_guard<std::mutex> lock(state.mutex);
    if (state.released) return;
    state.released = true;
    state.stopping = true;
  }
  state.wake.notify_all();
  state.store->interrupt();
  // Stop the heartbeat first: a beat racing with the release could otherwise renew the name
  // after the service freed it, or report a loss after release() returned.
  if (state.thread.joinable()) {
    if (state.thread.get_id() == std::this_thread::get_id()) {
      state.thread.detach();  // released from a handler: the loop ends when it returns
    } else {
      state.thread.join();
    }
  }
  // A lost lock may be someone else's by now: anyone may release any name on the service.
  if (state.lost) return;
  try {
    state.store->try_release(state.name, Clock::now() + kRequestBound);
  } catch (...) {
    // The lease lapses by itself; the heartbeat has stopped.
  }
}

bool NamedLock::lost() const noexcept { return state_->lost; }

const std::string& NamedLock::name() const noexcept { return state_->name; }

}  // namespace lockable
