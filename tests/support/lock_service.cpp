#include "lockable/test/lock_service.hpp"

#include <thread>

namespace lockable::test {
namespace {

std::string base64(const std::string& text) {
  static const char* const kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < text.size(); i += 3) {
    const unsigned n = (static_cast<unsigned char>(text[i]) << 16) |
                       (static_cast<unsigned char>(text[i + 1]) << 8) |
                       static_cast<unsigned char>(text[i + 2]);
    for (int shift = 18; shift >= 0; shift -= 6) out += kAlphabet[(n >> shift) & 63];
  }
  const std::size_t rest = text.size() - i;
  if (rest > 0) {
    unsigned n = static_cast<unsigned char>(text[i]) << 16;
    if (rest == 2) n |= static_cast<unsigned char>(text[i + 1]) << 8;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += rest == 2 ? kAlphabet[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

}  // namespace

LockService::LockService(std::chrono::milliseconds lease, std::string token)
    : lease_(lease),
      expected_auth_(token.empty() ? "" : "Basic " + base64(token + ":")),
      server_([this](httplib::Server& server) { configure(server); }) {}

bool LockService::expired_locked(const std::string& name, Clock::time_point now) {
  const auto found = leases_.find(name);
  if (found == leases_.end()) return true;
  if (found->second <= now) {
    leases_.erase(found);
    return true;
  }
  return false;
}

void LockService::configure(httplib::Server& server) {
  const auto route = [this](const std::string& verb) {
    return [this, verb](const httplib::Request& request, httplib::Response& response) {
      std::chrono::milliseconds delay;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        delay = delay_;
      }
      if (delay.count() > 0) std::this_thread::sleep_for(delay);
      std::unique_lock<std::mutex> lock(mutex_);
      if (!expected_auth_.empty() && request.get_header_value("Authorization") != expected_auth_) {
        ++unauthorized_;
        response.status = 401;
        response.set_content("{\"detail\": \"Invalid token\"}", "application/json");
        return;
      }
      if (error_status_ != 0) {
        response.status = error_status_;
        response.set_content("{\"detail\": \"injected failure\"}", "application/json");
        return;
      }
      ++counts_[verb];
      const std::string name = request.matches[1];
      const auto now = Clock::now();
      bool answer = false;
      if (verb == "acquire") {
        answer = expired_locked(name, now);
        if (answer) leases_[name] = now + lease_;
      } else if (verb == "heartbeat") {
        answer = !expired_locked(name, now);
        if (answer) leases_[name] = now + lease_;
      } else {
        answer = leases_.erase(name) > 0;
      }
      response.set_content(answer ? "{\"response\": true}" : "{\"response\": false}",
                           "application/json");
      const auto answer_delay = answer_delay_;
      lock.unlock();
      if (answer_delay.count() > 0) std::this_thread::sleep_for(answer_delay);
    };
  };
  for (const char* verb : {"acquire", "heartbeat", "release"}) {
    server.Get("/v1/" + std::string(verb) + "/(.+)", route(verb));
  }
}

bool LockService::held(const std::string& name) {
  std::lock_guard<std::mutex> lock(mutex_);
  return !expired_locked(name, Clock::now());
}

bool LockService::revoke(const std::string& name) {
  std::lock_guard<std::mutex> lock(mutex_);
  const bool was_held = !expired_locked(name, Clock::now());
  leases_.erase(name);
  return was_held;
}

int LockService::count(const std::string& verb) const {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto found = counts_.find(verb);
  return found == counts_.end() ? 0 : found->second;
}

int LockService::unauthorized() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return unauthorized_;
}

void LockService::set_delay(std::chrono::milliseconds delay) {
  std::lock_guard<std::mutex> lock(mutex_);
  delay_ = delay;
}

void LockService::set_answer_delay(std::chrono::milliseconds delay) {
  std::lock_guard<std::mutex> lock(mutex_);
  answer_delay_ = delay;
}

void LockService::set_error_status(int status) {
  std::lock_guard<std::mutex> lock(mutex_);
  error_status_ = status;
}

}  // namespace lockable::test
