#include "etcd/etcd_client.hpp"

#include "core/backoff.hpp"
#include "etcd/etcd_logic.hpp"

#include <unistd.h>
#include <algorithm>
#include <thread>

namespace lockable::etcd {
namespace {

http::ClientOptions http_options(const ClientConfig& config) {
  http::ClientOptions options;
  options.connect_timeout = std::min(config.attempt_timeout, std::chrono::milliseconds(2000));
  options.attempt_timeout = config.attempt_timeout;
  options.max_redirects = 0;
  options.log = config.log;
  return options;
}

std::string joined(const std::vector<std::string>& endpoints) {
  std::string text;
  for (const auto& endpoint : endpoints) text += (text.empty() ? "" : ", ") + endpoint;
  return text;
}

bool sleep_or_cancel(Clock::time_point until, const std::atomic<bool>* cancel) {
  while (Clock::now() < until) {
    if (cancel != nullptr && cancel->load()) return false;
    std::this_thread::sleep_for(
        std::min<Clock::duration>(until - Clock::now(), std::chrono::milliseconds(20)));
  }
  return true;
}

}  // namespace

Client::Client(ClientConfig config) : config_(std::move(config)), http_(http_options(config_)) {
  if (config_.endpoints.empty()) {
    throw ConfigError(
        "no etcd endpoint given; write etcd://HOST:PORT/PREFIX or set "
        "LOCKABLE_ETCD_ENDPOINTS");
  }
}

std::string Client::describe() const { return "etcd at " + joined(config_.endpoints); }

void Client::forget_token() {
  std::lock_guard<std::mutex> guard(token_mutex_);
  token_.reset();
}

http::Request Client::request(std::size_t endpoint, const std::string& path, const Json& body,
                              const std::optional<std::string>& token) const {
  http::Request request;
  request.method = "POST";
  request.url = config_.endpoints[endpoint] + path;
  request.headers.push_back("Content-Type: application/json");
  if (token) request.headers.push_back("Authorization: " + *token);
  request.body = body.dump();
  request.retry = false;  // failover and backoff happen here, across endpoints
  return request;
}

std::optional<std::string> Client::token(Clock::time_point deadline,
                                         const std::atomic<bool>* cancel) {
  if (config_.user.empty()) return std::nullopt;
  std::lock_guard<std::mutex> guard(token_mutex_);
  if (token_ || auth_disabled_) return token_;
  // Authentication costs a bcrypt round on the server (~60 ms): done once, then cached.
  const Json body{{"name", config_.user}, {"password", config_.password}};
  const std::size_t n = config_.endpoints.size();
  std::string last_failure;
  detail::Backoff backoff(std::chrono::milliseconds(50), std::chrono::seconds(1),
                          static_cast<std::uint64_t>(::getpid()));
  for (;;) {
    for (std::size_t k = 0; k < n; ++k) {
      const std::size_t index = (current_.load() + k) % n;
      auto req = request(index, "/v3/auth/authenticate", body, std::nullopt);
      req.secrets.push_back(config_.password);  // a server may echo it in an error body
      http::Response response;
      try {
        response =
            http_.send(req, std::min(deadline, Clock::now() + config_.attempt_timeout), cancel);
      } catch (const TemporarilyUnavailableError& error) {
        last_failure = error.what();
        continue;
      }
      if (response.status >= 500 || response.status == 429) {
        last_failure = http::describe_answer(req, response);
        continue;
      }
      const auto error = parse_gateway_error(response.body);
      if (response.status == 200) {
        const Json json = Json::parse(response.body, nullptr, false);
        if (json.is_object() && json.contains("token") && json["token"].is_string()) {
          token_ = json["token"].get<std::string>();
          return token_;
        }
        throw BackendError("etcd at " + config_.endpoints[index] +
                           " answered the authentication of user \"" + config_.user +
                           "\" without a token (" +
                           http::hide_secrets(http::body_excerpt(response.body), req) +
                           "); is this an etcd v3 server (3.4 or later)?");
      }
      if (error &&
          error.value().message.find("authentication is not enabled") != std::string::npos) {
        auth_disabled_ = true;  // the server takes requests without a token
        return std::nullopt;
      }
      if (error && error.value().message.find("authentication failed") != std::string::npos) {
        throw BackendError("etcd at " + config_.endpoints[index] +
                           " rejected the credentials of user \"" + config_.user +
                           "\" (authentication failed); check LOCKABLE_ETCD_USER and "
                           "LOCKABLE_ETCD_PASSWORD");
      }
      throw BackendError("etcd at " + config_.endpoints[index] +
                         " refused to authenticate user \"" + config_.user + "\": answered " +
                         std::to_string(response.status) + " " +
                         http::hide_secrets(http::body_excerpt(response.body), req) +
                         "; check LOCKABLE_ETCD_USER and LOCKABLE_ETCD_PASSWORD");
    }
    const auto delay = backoff.next();
    if (Clock::now() + delay >= deadline) {
      throw TemporarilyUnavailableError("cannot reach " + describe() + " to authenticate (" +
                                        last_failure + "); check that etcd runs there");
    }
    if (!sleep_or_cancel(Clock::now() + delay, cancel)) {
      throw CancelledError("authentication at " + describe() + " was cancelled");
    }
  }
}

void Client::check_answer(const http::Request& request, const http::Response& response,
                          std::size_t endpoint, const std::string& path,
                          std::string& retry_reason) {
  const std::string& where = config_.endpoints[endpoint];
  const auto error = parse_gateway_error(response.body);
  const std::string message = error ? error->message : std::string();
  if (response.status >= 500 || response.status == 429) {
    retry_reason = http::describe_answer(request, response);
    return;
  }
  if (response.status == 401) {
    forget_token();
    retry_reason = http::describe_answer(request, response);
    return;
  }
  if (error && error->code == 5 && message.find("lease not found") != std::string::npos) {
    throw LeaseNotFoundError("etcd at " + where + ": " + message);
  }
  if (message.find("user name is empty") != std::string::npos) {
    throw BackendError("etcd at " + where +
                       " has authentication on and wants a user; set LOCKABLE_ETCD_USER and "
                       "LOCKABLE_ETCD_PASSWORD");
  }
  if (response.status == 403 || (error && error->code == 7)) {
    throw BackendError("etcd at " + where + " denied user \"" + config_.user + "\" " + path + " (" +
                       message +
                       "); grant the user's role readwrite on the lock prefix (etcdctl role "
                       "grant-permission ROLE --prefix=true readwrite PREFIX/)");
  }
  if (response.status == 404 && !error) {
    throw BackendError("etcd at " + where + " answered 404 to POST " + path +
                       ": not an etcd v3 JSON gateway (etcd 3.4 or later); check the endpoint");
  }
  throw BackendError(http::describe_answer(request, response) +
                     "; the etcd gateway does not answer a request of lockable's so: check that " +
                     where + " is an etcd v3 server (3.4 or later)");
}

Json Client::call(const std::string& path, const Json& body, Clock::time_point deadline,
                  const std::atomic<bool>* cancel) {
  const std::size_t n = config_.endpoints.size();
  std::string last_failure;
  detail::Backoff backoff(std::chrono::milliseconds(50), std::chrono::seconds(1),
                          static_cast<std::uint64_t>(::getpid()) ^
                              static_cast<std::uint64_t>(Clock::now().time_since_epoch().count()));
  int unauthorized = 0;
  for (;;) {
    const std::size_t first = current_.load();
    for (std::size_t k = 0; k < n; ++k) {
      const std::size_t index = (first + k) % n;
      const auto tok = token(deadline, cancel);
      auto req = request(index, path, body, tok);
      http::Response response;
      try {
        response =
            http_.send(req, std::min(deadline, Clock::now() + config_.attempt_timeout), cancel);
      } catch (const TemporarilyUnavailableError& error) {
        last_failure = error.what();
        continue;
      }
      if (response.status == 200) {
        current_.store(index);
        Json json = Json::parse(response.body, nullptr, false);
        if (!json.is_object()) {
          throw BackendError("etcd at " + config_.endpoints[index] + " answered POST " + path +
                             " with something the etcd gateway never sends (" +
                             http::body_excerpt(response.body) +
                             "); check that the endpoint is an etcd v3 server");
        }
        return json;
      }
      std::string retry_reason;
      check_answer(req, response, index, path, retry_reason);
      last_failure = retry_reason;
      if (response.status == 401) {
        // An expired token: authenticate again, once or twice, then say so.
        if (++unauthorized > 2) {
          if (config_.user.empty()) {
            throw BackendError("etcd at " + config_.endpoints[index] + " answered 401 (" +
                               http::body_excerpt(response.body) +
                               ") to a request without credentials: authentication is on; set "
                               "LOCKABLE_ETCD_USER and LOCKABLE_ETCD_PASSWORD");
          }
          throw BackendError("etcd at " + config_.endpoints[index] +
                             " keeps refusing the token of user \"" + config_.user +
                             "\" (invalid auth token); check the server's --auth-token setting");
        }
        --k;  // same endpoint, new token
        continue;
      }
    }
    const auto delay = backoff.next();
    if (Clock::now() + delay >= deadline) {
      throw TemporarilyUnavailableError(describe() + " did not answer POST " + path + " (" +
                                        last_failure +
                                        "); check that etcd runs there and has a leader");
    }
    if (!sleep_or_cancel(Clock::now() + delay, cancel)) {
      throw CancelledError("POST " + path + " to " + describe() + " was cancelled");
    }
  }
}

void Client::stream(const std::string& path, const Json& body, Clock::time_point deadline,
                    const std::function<bool(const Json&)>& on_result,
                    const std::atomic<bool>* cancel) {
  const std::size_t n = config_.endpoints.size();
  const std::size_t index = current_.load() % n;
  const auto tok = token(std::min(deadline, Clock::now() + config_.attempt_timeout), cancel);
  auto req = request(index, path, body, tok);
  std::string pending;
  bool stopped = false;
  req.on_data = [&](std::string_view data) {
    pending.append(data.data(), data.size());
    std::size_t newline;
    while ((newline = pending.find('\n')) != std::string::npos) {
      const std::string line = pending.substr(0, newline);
      pending.erase(0, newline + 1);
      if (line.find_first_not_of(" \r\t") == std::string::npos) continue;
      const Json json = Json::parse(line, nullptr, false);
      if (!json.is_object()) continue;
      if (json.contains("result") && json["result"].is_object()) {
        if (!on_result(json["result"])) {
          stopped = true;
          return false;
        }
      } else if (json.contains("error")) {
        pending = line;  // an error object instead of a stream: reported below
        return false;
      }
    }
    return true;
  };
  http::Response response;
  try {
    response = http_.send(req, deadline, cancel);
  } catch (const TemporarilyUnavailableError&) {
    current_.store((index + 1) % n);  // the next call tries the next endpoint
    throw;
  }
  if (stopped) return;
  if (response.status != 200 || !pending.empty()) {
    http::Response shown = response;
    shown.body = pending;
    std::string retry_reason;
    if (response.status == 200) shown.status = 500;
    check_answer(req, shown, index, path, retry_reason);
    current_.store((index + 1) % n);
    throw TemporarilyUnavailableError(retry_reason);
  }
}

}  // namespace lockable::etcd
