// Fuzzes what the HTTP client and the lock service read from a server: the lock service's
// answer body, Retry-After values, header lookup, and the text forms that put a server's bytes
// into error messages (body_excerpt, describe_answer) and the URL helpers that keep credentials
// out of them. Resources-from-URL bodies go through parse_resources_text (fuzz_resources).
// Nothing may throw; an excerpt is one line of valid UTF-8.
#include "core/json_text.hpp"
#include "http/client.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace {

bool one_line(const std::string& text) {
  return text.find('\n') == std::string::npos && text.find('\r') == std::string::npos;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace lockable;
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  (void)http::parse_lock_service_answer(text);

  const auto now = std::chrono::system_clock::now();
  if (const auto delay = http::parse_retry_after(text, now)) {
    if (delay->count() < 0) __builtin_trap();
  }

  const std::string excerpt = http::body_excerpt(text);
  if (!one_line(excerpt) || lockable::detail::invalid_utf8_offset(excerpt)) __builtin_trap();

  // The input as a header block ("Name: value" lines) and as a body.
  http::Response response;
  response.status = 500;
  response.body = std::string(text);
  std::size_t start = 0;
  while (start < text.size()) {
    auto end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    const auto line = text.substr(start, end - start);
    if (const auto colon = line.find(':'); colon != std::string_view::npos) {
      std::string name(line.substr(0, colon));
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      response.headers.emplace_back(name, std::string(line.substr(colon + 1)));
    }
    start = end + 1;
  }
  if (const auto value = response.header("Retry-After")) (void)http::parse_retry_after(*value, now);
  (void)response.header("ETag");

  http::Request request;
  request.url = std::string(text);
  const std::string described = http::describe_answer(request, response);
  if (described.find(" answered 500") == std::string::npos) __builtin_trap();

  // A URL with credentials: what messages may show never carries the password. The marker
  // "REDACTED" is set aside first (as a byte the password must not hold), or a password that is
  // the marker, or spans it, would be "found" in text redact_url wrote itself.
  const auto parts = http::split_credentials(text);
  (void)http::redact_url(text);
  if (parts.password && parts.password->size() >= 8 &&
      parts.password->find('\x01') == std::string::npos &&
      parts.url.find(*parts.password) == std::string::npos) {
    std::string shown = http::redact_url(parts.url);
    for (auto at = shown.find("REDACTED"); at != std::string::npos; at = shown.find("REDACTED", at))
      shown.replace(at, 8, "\x01");
    if (shown.find(*parts.password) != std::string::npos) __builtin_trap();
  }
  (void)http::encode_path_segment(text);
  return 0;
}
