#include "http/client.hpp"

#include "core/backoff.hpp"
#include "core/json_text.hpp"
#include "http/libcurl.hpp"

#include <lockable/error.hpp>
#include <lockable/version.hpp>

#include <unistd.h>
#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <random>
#include <set>
#include <thread>

namespace lockable::http {
namespace {

std::string lower(std::string text) {
  for (auto& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

std::string trim(std::string_view text) {
  std::size_t begin = 0;
  std::size_t end = text.size();
  while (begin < end && std::isspace(static_cast<unsigned char>(text[begin])) != 0) ++begin;
  while (end > begin && std::isspace(static_cast<unsigned char>(text[end - 1])) != 0) --end;
  return std::string(text.substr(begin, end - begin));
}

bool retried_status(long status) {
  return status == 429 || status == 500 || status == 502 || status == 503 || status == 504;
}

// What a retry may cure (the server restarts, a connection was dropped, an attempt timed out),
// as opposed to what it never will (a malformed URL, an untrusted certificate, a typo'd host).
bool retried_error(CURLcode code) {
  switch (code) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR:
      return true;
    default:
      return false;
  }
}

// Retry-After as seconds or an HTTP date; nullopt when absent or unreadable.
std::optional<Clock::duration> retry_after(const Response& response) {
  const auto value = response.header("retry-after");
  if (!value) return std::nullopt;
  return parse_retry_after(*value, std::chrono::system_clock::now());
}

std::string format_ms(Clock::duration duration) {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(duration).count()) +
         " ms";
}

// One libcurl easy handle in its own multi handle: the multi keeps the connection cache between
// calls, and its poll can be woken (curl_multi_wakeup) to check for cancellation at once.
struct Channel {
  const Libcurl& curl = libcurl();
  CURLM* multi = curl.multi_init();
  CURL* easy = curl.easy_init();
  Channel() {
    if (multi == nullptr || easy == nullptr) {
      if (easy != nullptr) curl.easy_cleanup(easy);
      if (multi != nullptr) curl.multi_cleanup(multi);
      throw BackendError("cannot start libcurl (out of memory)");
    }
  }
  ~Channel() {
    curl.easy_cleanup(easy);
    curl.multi_cleanup(multi);
  }
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;
};

// What one attempt collects through libcurl's callbacks.
struct Transfer {
  const Request* request = nullptr;
  Response response;
  bool stopped_by_consumer = false;
};

std::size_t on_body(char* data, std::size_t size, std::size_t count, void* user) {
  auto& transfer = *static_cast<Transfer*>(user);
  const std::size_t bytes = size * count;
  if (transfer.request->on_data) {
    if (!transfer.request->on_data(std::string_view(data, bytes))) {
      transfer.stopped_by_consumer = true;
      return 0;  // ends the transfer (CURLE_WRITE_ERROR, which we know we caused)
    }
  } else {
    transfer.response.body.append(data, bytes);
  }
  return bytes;
}

std::size_t on_header(char* data, std::size_t size, std::size_t count, void* user) {
  auto& transfer = *static_cast<Transfer*>(user);
  const std::size_t bytes = size * count;
  const std::string_view line(data, bytes);
  if (line.rfind("HTTP/", 0) == 0) {
    transfer.response.headers.clear();  // a new response (after a redirect or 100 Continue)
    return bytes;
  }
  const auto colon = line.find(':');
  if (colon != std::string_view::npos) {
    transfer.response.headers.emplace_back(lower(std::string(line.substr(0, colon))),
                                           trim(line.substr(colon + 1)));
  }
  return bytes;
}

}  // namespace

std::optional<Clock::duration> parse_retry_after(std::string_view value,
                                                 std::chrono::system_clock::time_point now) {
  const std::string text = trim(value);
  if (!text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
        return std::isdigit(static_cast<unsigned char>(c));
      })) {
    return std::chrono::seconds(std::stoll(text.substr(0, 9)));
  }
  // curl_getdate reads a C string: a NUL inside the value would cut it silently.
  if (text.find('\0') != std::string::npos) return std::nullopt;
  const time_t when = libcurl().getdate(text.c_str(), nullptr);
  if (when < 0) return std::nullopt;
  // In whole seconds: a date past 2262 (found by fuzz_http_answers) overflows nanoseconds.
  const time_t from = std::chrono::system_clock::to_time_t(now);
  if (when <= from) return Clock::duration{0};
  constexpr time_t kLongest = 365LL * 24 * 3600;  // the caller's deadline cuts it shorter anyway
  return std::chrono::seconds(std::min<time_t>(when - from, kLongest));
}

std::optional<std::string> Response::header(std::string_view name) const {
  const std::string wanted = lower(std::string(name));
  for (const auto& [key, value] : headers) {
    if (key == wanted) return value;
  }
  return std::nullopt;
}

struct Client::Impl {
  ClientOptions options;
  std::string user_agent = std::string("lockable-cpp/") + kVersion;
  std::mutex mutex;
  std::condition_variable woken;
  std::vector<std::unique_ptr<Channel>> idle;
  std::set<Channel*> busy;
  unsigned long long wakeups = 0;
  std::uint64_t seed = 0;

  std::unique_ptr<Channel> take() {
    std::lock_guard<std::mutex> lock(mutex);
    std::unique_ptr<Channel> channel;
    if (!idle.empty()) {
      channel = std::move(idle.back());
      idle.pop_back();
    } else {
      channel = std::make_unique<Channel>();
    }
    busy.insert(channel.get());
    return channel;
  }

  void give_back(std::unique_ptr<Channel> channel) {
    std::lock_guard<std::mutex> lock(mutex);
    busy.erase(channel.get());
    // A few idle connections are enough for the handful of threads a backend runs.
    if (idle.size() < 8) idle.push_back(std::move(channel));
  }

  // One attempt. Returns the libcurl result; fills `transfer`.
  CURLcode attempt(Channel& channel, Transfer& transfer, Clock::time_point deadline,
                   const std::atomic<bool>* cancel, std::string& error_text, bool& cancelled);

  // Sleeps until `until` or until interrupt() when `cancel` is set.
  void pause(Clock::time_point until, const std::atomic<bool>* cancel) {
    std::unique_lock<std::mutex> lock(mutex);
    woken.wait_until(lock, until, [&] { return cancel != nullptr && cancel->load(); });
  }
};

CURLcode Client::Impl::attempt(Channel& channel, Transfer& transfer, Clock::time_point deadline,
                               const std::atomic<bool>* cancel, std::string& error_text,
                               bool& cancelled) {
  const Request& request = *transfer.request;
  const Libcurl& curl = channel.curl;
  CURL* easy = channel.easy;
  curl.easy_reset(easy);
  char error_buffer[CURL_ERROR_SIZE] = {0};
  curl.easy_setopt(easy, CURLOPT_ERRORBUFFER, error_buffer);
  curl.easy_setopt(easy, CURLOPT_URL, request.url.c_str());
  curl.easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  curl.easy_setopt(easy, CURLOPT_USERAGENT, user_agent.c_str());
  curl.easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
  curl.easy_setopt(easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl.easy_setopt(easy, CURLOPT_FOLLOWLOCATION, options.max_redirects > 0 ? 1L : 0L);
  curl.easy_setopt(easy, CURLOPT_MAXREDIRS, options.max_redirects);
  curl.easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(std::max<long long>(1, options.connect_timeout.count())));
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  // A stream (a watch) lasts as long as its caller wants; only the deadline bounds it.
  const long long attempt_ms = std::max<long long>(
      1, request.on_data ? left : std::min<long long>(left, options.attempt_timeout.count()));
  curl.easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(attempt_ms));
  curl.easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, options.verify_tls ? 1L : 0L);
  curl.easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, options.verify_tls ? 2L : 0L);
  if (!options.ca_file.empty()) curl.easy_setopt(easy, CURLOPT_CAINFO, options.ca_file.c_str());
  curl.easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
  if (request.method == "GET") {
    curl.easy_setopt(easy, CURLOPT_HTTPGET, 1L);
  } else if (request.method == "HEAD") {
    curl.easy_setopt(easy, CURLOPT_NOBODY, 1L);
  } else {
    if (request.method != "POST")
      curl.easy_setopt(easy, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    curl.easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(request.body.size()));
    curl.easy_setopt(easy, CURLOPT_POSTFIELDS, request.body.data());
  }
  curl_slist* headers = nullptr;
  for (const auto& header : request.headers) headers = curl.slist_append(headers, header.c_str());
  // A POST body goes out at once, without waiting for a 100 Continue.
  headers = curl.slist_append(headers, "Expect:");
  curl.easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
  if (request.basic_auth) {
    curl.easy_setopt(easy, CURLOPT_HTTPAUTH, static_cast<long>(CURLAUTH_BASIC));
    curl.easy_setopt(easy, CURLOPT_USERNAME, request.basic_auth->first.c_str());
    curl.easy_setopt(easy, CURLOPT_PASSWORD, request.basic_auth->second.c_str());
  }
  curl.easy_setopt(easy, CURLOPT_WRITEFUNCTION, &on_body);
  curl.easy_setopt(easy, CURLOPT_WRITEDATA, &transfer);
  curl.easy_setopt(easy, CURLOPT_HEADERFUNCTION, &on_header);
  curl.easy_setopt(easy, CURLOPT_HEADERDATA, &transfer);

  CURLcode result = CURLE_OK;
  curl.multi_add_handle(channel.multi, easy);
  for (;;) {
    int running = 0;
    const CURLMcode multi_code = curl.multi_perform(channel.multi, &running);
    if (multi_code != CURLM_OK) {
      result = CURLE_FAILED_INIT;
      std::snprintf(error_buffer, sizeof error_buffer, "%s", curl.multi_strerror(multi_code));
      break;
    }
    if (running == 0) {
      int queued = 0;
      result = CURLE_OK;
      while (CURLMsg* message = curl.multi_info_read(channel.multi, &queued)) {
        if (message->msg == CURLMSG_DONE) result = message->data.result;
      }
      break;
    }
    if (cancel != nullptr && cancel->load()) {
      cancelled = true;
      break;
    }
    // Woken at once by interrupt(); the timeout only bounds how late a cancel flag set without
    // interrupt() is seen.
    curl.multi_poll(channel.multi, nullptr, 0, 100, nullptr);
  }
  curl.multi_remove_handle(channel.multi, easy);
  curl.slist_free_all(headers);
  long status = 0;
  curl.easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
  transfer.response.status = status;
  char* effective = nullptr;
  if (curl.easy_getinfo(easy, CURLINFO_EFFECTIVE_URL, &effective) == CURLE_OK && effective) {
    transfer.response.url = redact_url(effective);
  }
  error_text = error_buffer[0] != '\0' ? error_buffer : curl.easy_strerror(result);
  return result;
}

Client::Client(ClientOptions options) : impl_(std::make_unique<Impl>()) {
  libcurl();  // loads it now: a missing libcurl is reported when the backend is made
  impl_->options = std::move(options);
  std::random_device entropy;
  impl_->seed = (static_cast<std::uint64_t>(entropy()) << 32) ^ entropy() ^
                static_cast<std::uint64_t>(::getpid());
  if (!impl_->options.verify_tls) {
    const std::string warning =
        "lockable: warning: TLS certificate verification is off for HTTP requests; anyone on the "
        "path can pose as the server. Use a CA bundle (ca_file) instead where you can";
    if (impl_->options.log) {
      impl_->options.log(warning);
    } else {
      std::cerr << warning << std::endl;
    }
  }
}

Client::~Client() = default;

const ClientOptions& Client::options() const noexcept { return impl_->options; }

void Client::interrupt() noexcept {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  for (Channel* channel : impl_->busy) channel->curl.multi_wakeup(channel->multi);
  impl_->woken.notify_all();
}

Response Client::send(const Request& request, Clock::time_point deadline,
                      const std::atomic<bool>* cancel) {
  const auto started = Clock::now();
  detail::Backoff backoff(
      impl_->options.retry_initial, impl_->options.retry_cap,
      impl_->seed ^ static_cast<std::uint64_t>(started.time_since_epoch().count()));
  const std::string what = request.method + " " + redact_url(request.url);
  auto elapsed = [&] { return format_ms(Clock::now() - started); };
  // The last answer the server gave, kept when a later attempt fails without one (cut short by
  // the deadline): "answered 500: database is down" says more than "timed out".
  std::string last_answer;
  for (int attempts = 1;; ++attempts) {
    if (cancel != nullptr && cancel->load()) throw CancelledError(what + " was cancelled");
    Transfer transfer;
    transfer.request = &request;
    std::string error_text;
    bool cancelled = false;
    auto channel = impl_->take();
    const CURLcode code =
        impl_->attempt(*channel, transfer, deadline, cancel, error_text, cancelled);
    impl_->give_back(std::move(channel));
    if (cancelled) throw CancelledError(what + " was cancelled");

    std::string failure;  // why this attempt may be retried; empty: done
    std::optional<Clock::duration> server_delay;
    if (code == CURLE_OK || (code == CURLE_WRITE_ERROR && transfer.stopped_by_consumer)) {
      if (!request.retry || !retried_status(transfer.response.status))
        return std::move(transfer.response);
      failure = describe_answer(request, transfer.response);
      last_answer = failure;
      server_delay = retry_after(transfer.response);
    } else if (code == CURLE_TOO_MANY_REDIRECTS) {
      throw BackendError(what + ": more than " + std::to_string(impl_->options.max_redirects) +
                         " redirects; give the final URL");
    } else if (code == CURLE_COULDNT_RESOLVE_HOST || code == CURLE_COULDNT_RESOLVE_PROXY) {
      throw BackendError(what + ": " + error_text + "; check the host name in the URL");
    } else if (code == CURLE_PEER_FAILED_VERIFICATION) {
      throw BackendError(what + ": the server's TLS certificate is not trusted (" + error_text +
                         "); give the lab's CA bundle, or fix the server's certificate");
    } else if (!retried_error(code) || !request.retry) {
      if (retried_error(code)) throw TemporarilyUnavailableError(what + ": " + error_text);
      throw BackendError(what + ": " + error_text);
    } else {
      failure = last_answer.empty() ? what + ": " + error_text
                                    : last_answer + "; the last attempt: " + error_text;
    }
    const auto now = Clock::now();
    auto delay = backoff.next();
    if (server_delay) delay = std::max(delay, *server_delay);
    if (now + delay >= deadline) {
      throw TemporarilyUnavailableError(failure + " (" + std::to_string(attempts) +
                                        (attempts == 1 ? " attempt" : " attempts") + " in " +
                                        elapsed() + ")");
    }
    impl_->pause(now + delay, cancel);
  }
}

std::string redact_url(std::string_view url) {
  std::string text(url);
  const auto scheme_end = text.find("://");
  const std::size_t authority = scheme_end == std::string::npos ? 0 : scheme_end + 3;
  const auto path_start = text.find_first_of("/?#", authority);
  const auto at = text.rfind('@', path_start == std::string::npos ? text.size() : path_start);
  if (at != std::string::npos && at >= authority) text.erase(authority, at + 1 - authority);
  const auto query = text.find('?');
  if (query == std::string::npos) return text;
  static const char* const kSecretWords[] = {"token", "password",  "passwd", "secret",    "key",
                                             "auth",  "signature", "sig",    "credential"};
  std::string out = text.substr(0, query + 1);
  std::size_t position = query + 1;
  const auto fragment = text.find('#', position);
  const std::size_t end = fragment == std::string::npos ? text.size() : fragment;
  while (position <= end) {
    auto amp = text.find('&', position);
    if (amp == std::string::npos || amp > end) amp = end;
    const std::string pair = text.substr(position, amp - position);
    const auto eq = pair.find('=');
    const std::string name = lower(pair.substr(0, eq));
    bool secret = false;
    for (const char* word : kSecretWords) secret = secret || name.find(word) != std::string::npos;
    out += secret && eq != std::string::npos ? pair.substr(0, eq + 1) + "REDACTED" : pair;
    if (amp < end) out += '&';
    position = amp + 1;
  }
  if (fragment != std::string::npos) out += text.substr(fragment);
  return out;
}

namespace {
std::string percent_decode(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() &&
        std::isxdigit(static_cast<unsigned char>(text[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(text[i + 2]))) {
      out += static_cast<char>(std::stoi(std::string(text.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}
}  // namespace

UrlCredentials split_credentials(std::string_view url) {
  UrlCredentials out;
  out.url = std::string(url);
  const auto scheme_end = out.url.find("://");
  const std::size_t authority = scheme_end == std::string::npos ? 0 : scheme_end + 3;
  const auto path_start = out.url.find_first_of("/?#", authority);
  const auto at = out.url.rfind('@', path_start == std::string::npos ? out.url.size() : path_start);
  if (at == std::string::npos || at < authority) return out;
  const std::string userinfo = out.url.substr(authority, at - authority);
  out.url.erase(authority, at + 1 - authority);
  const auto colon = userinfo.find(':');
  out.user = percent_decode(userinfo.substr(0, colon));
  if (colon != std::string::npos) out.password = percent_decode(userinfo.substr(colon + 1));
  return out;
}

std::string encode_path_segment(std::string_view text) {
  static const char* const kHex = "0123456789ABCDEF";
  std::string out;
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (std::isalnum(byte) != 0 || c == '-' || c == '.' || c == '_' || c == '~') {
      out += c;
    } else {
      out += '%';
      out += kHex[byte >> 4];
      out += kHex[byte & 0xF];
    }
  }
  return out;
}

std::string body_excerpt(std::string_view body, std::size_t limit) {
  std::string text = detail::utf8_prefix(body, limit);
  const bool cut = text.size() < body.size();
  if (detail::invalid_utf8_offset(text)) {
    text = detail::dump(Json(std::string(text)));  // quoted, invalid bytes replaced
  }
  for (auto& c : text) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  return trim(text) + (cut ? "..." : "");
}

namespace {

std::string base64(std::string_view data) {
  static const char* const kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < data.size(); i += 3) {
    const unsigned n = (static_cast<unsigned char>(data[i]) << 16) |
                       (static_cast<unsigned char>(data[i + 1]) << 8) |
                       static_cast<unsigned char>(data[i + 2]);
    for (const int shift : {18, 12, 6, 0}) out += kAlphabet[(n >> shift) & 63];
  }
  if (i < data.size()) {
    unsigned n = static_cast<unsigned char>(data[i]) << 16;
    if (i + 1 < data.size()) n |= static_cast<unsigned char>(data[i + 1]) << 8;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += i + 1 < data.size() ? kAlphabet[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

// What `request` carries that must never be shown: a server may echo it in an error body
// ("invalid token abc..."), which lands in our messages.
std::vector<std::string> secrets_of(const Request& request) {
  std::vector<std::string> secrets;
  if (request.basic_auth) {
    secrets.push_back(request.basic_auth->second);
    secrets.push_back(base64(request.basic_auth->first + ":" + request.basic_auth->second));
  }
  const UrlCredentials in_url = split_credentials(request.url);
  if (in_url.password && !in_url.password->empty()) {
    secrets.push_back(*in_url.password);
    secrets.push_back(
        base64(in_url.user.value_or("") + ":" + *in_url.password));  // as curl sends them
  }
  for (const auto& header : request.headers) {
    const auto colon = header.find(':');
    if (colon == std::string::npos || lower(header.substr(0, colon)) != "authorization") continue;
    const std::string value = trim(header.substr(colon + 1));
    secrets.push_back(value);
    const auto blank = value.find(' ');
    if (blank != std::string::npos) secrets.push_back(trim(value.substr(blank + 1)));
  }
  secrets.insert(secrets.end(), request.secrets.begin(), request.secrets.end());
  // The values redact_url hides in the query.
  const std::string shown = redact_url(request.url);
  const auto query = request.url.find('?');
  if (query != std::string::npos) {
    std::size_t position = query + 1;
    while (position < request.url.size()) {
      auto amp = request.url.find_first_of("&#", position);
      if (amp == std::string::npos) amp = request.url.size();
      const std::string pair = request.url.substr(position, amp - position);
      const auto eq = pair.find('=');
      if (eq != std::string::npos &&
          shown.find(pair.substr(0, eq + 1) + "REDACTED") != std::string::npos) {
        secrets.push_back(pair.substr(eq + 1));
        secrets.push_back(percent_decode(pair.substr(eq + 1)));
      }
      if (amp < request.url.size() && request.url[amp] == '#') break;
      position = amp + 1;
    }
  }
  return secrets;
}

}  // namespace

std::string hide_secrets(std::string text, const Request& request) {
  for (const auto& secret : secrets_of(request)) {
    // Shorter "secrets" would blank out ordinary words; no real token is that short.
    if (secret.size() < 4) continue;
    for (auto at = text.find(secret); at != std::string::npos; at = text.find(secret, at)) {
      text.replace(at, secret.size(), "REDACTED");
      at += 8;
    }
  }
  return text;
}

std::string describe_answer(const Request& request, const Response& response) {
  std::string text = request.method + " " + redact_url(request.url) + " answered " +
                     std::to_string(response.status);
  const std::string excerpt = hide_secrets(body_excerpt(response.body), request);
  if (!excerpt.empty()) text += ": " + excerpt;
  return text;
}

}  // namespace lockable::http
