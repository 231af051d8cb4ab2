// Resources from an http(s) URL, through the one HTTP client.

#include <lockable/error.hpp>
#include <lockable/provider.hpp>
#include <lockable/resource.hpp>

#include "http/client.hpp"

#include <cstdlib>
#include <mutex>
#include <optional>

namespace lockable {
namespace {

using Clock = std::chrono::steady_clock;

class UrlProvider final : public ResourceProvider {
 public:
  UrlProvider(std::string url, UrlProviderOptions options)
      : options_(std::move(options)), client_(client_options(options_)) {
    auto parts = http::split_credentials(url);
    url_ = parts.url;
    shown_ = http::redact_url(url_);
    if (parts.user) {
      basic_auth_ = std::make_pair(*parts.user, parts.password.value_or(""));
    } else if (const char* token = std::getenv("LOCKABLE_RESOURCES_TOKEN");
               token != nullptr && *token != '\0') {
      bearer_ = token;
    }
  }

  Resources load() override {
    std::lock_guard<std::mutex> lock(mutex_);
    if (pending_error_) {
      const auto error = pending_error_;
      pending_error_ = nullptr;
      std::rethrow_exception(error);
    }
    if (pending_body_) {
      std::string body = std::move(*pending_body_);
      pending_body_.reset();
      adopt(std::move(body));
    } else if (!resources_ || due()) {
      if (auto body = fetch()) adopt(std::move(*body));
    }
    return *resources_;
  }

  bool changed() override {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!resources_ || pending_body_ || pending_error_) return true;
    if (!due()) return false;
    try {
      pending_body_ = fetch();
      if (pending_body_ && *pending_body_ == body_) pending_body_.reset();
    } catch (...) {
      pending_error_ = std::current_exception();
    }
    return pending_body_.has_value() || pending_error_ != nullptr;
  }

  std::string describe() const override { return shown_; }

 private:
  static http::ClientOptions client_options(const UrlProviderOptions& options) {
    http::ClientOptions out;
    out.verify_tls = options.verify_tls;
    out.ca_file = options.ca_file;
    out.log = options.log;
    out.attempt_timeout = options.timeout;
    return out;
  }

  bool due() const { return Clock::now() - last_attempt_ >= options_.refetch_period; }

  [[noreturn]] void fail(const std::string& message) const {
    throw ResourcesError(shown_, {Problem{shown_, message}});
  }

  // Parses and keeps `body` (throws ResourcesError naming the URL, keeping the old list).
  void adopt(std::string body) {
    auto resources = parse_resources_text(body, shown_);
    resources_ = std::move(resources);
    body_ = std::move(body);
    etag_ = pending_etag_;
    last_modified_ = pending_last_modified_;
  }

  // The new body, or nullopt when the server says (304) the list is unchanged.
  std::optional<std::string> fetch() {
    last_attempt_ = Clock::now();
    http::Request request;
    request.url = url_;
    request.headers.push_back("Accept: application/json");
    if (bearer_) request.headers.push_back("Authorization: Bearer " + *bearer_);
    request.basic_auth = basic_auth_;
    // The first fetch retries inside the timeout; a refetch does not (the list in hand stays in
    // use, and the next period tries again), so a waiter is never stuck behind a sick server.
    request.retry = !resources_;
    if (resources_ && etag_) request.headers.push_back("If-None-Match: " + *etag_);
    if (resources_ && last_modified_) {
      request.headers.push_back("If-Modified-Since: " + *last_modified_);
    }
    http::Response response;
    try {
      response = client_.send(request, Clock::now() + options_.timeout);
    } catch (const Error& error) {
      fail(std::string("cannot fetch the resources: ") + error.what());
    }
    if (response.status == 304 && resources_) return std::nullopt;
    if (response.status == 401 || response.status == 403) {
      fail(http::describe_answer(request, response) +
           "; give credentials as user:password@ in the URL or LOCKABLE_RESOURCES_TOKEN");
    }
    if (response.status != 200) {
      fail(http::describe_answer(request, response) +
           "; the URL must answer 200 with a resources.json array");
    }
    pending_etag_ = response.header("etag");
    pending_last_modified_ = response.header("last-modified");
    return std::move(response.body);
  }

  UrlProviderOptions options_;
  http::Client client_;
  std::string url_;
  std::string shown_;
  std::optional<std::pair<std::string, std::string>> basic_auth_;
  std::optional<std::string> bearer_;

  std::mutex mutex_;
  std::optional<Resources> resources_;
  std::string body_;
  std::optional<std::string> etag_;
  std::optional<std::string> last_modified_;
  std::optional<std::string> pending_etag_;
  std::optional<std::string> pending_last_modified_;
  std::optional<std::string> pending_body_;
  std::exception_ptr pending_error_;
  Clock::time_point last_attempt_{};
};

}  // namespace

std::unique_ptr<ResourceProvider> make_url_provider(std::string url, UrlProviderOptions options) {
  return std::make_unique<UrlProvider>(std::move(url), std::move(options));
}

}  // namespace lockable
