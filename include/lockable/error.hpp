#pragma once

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace lockable {

/// Base of every exception the library throws. `what()` is a complete, human-readable message
/// that names the input at fault (file, field, resource or flag) and how to fix it.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// One problem found in a resources source. `where` is the source plus the location, e.g.
/// `lab.json:3:14` for a syntax error or `lab.json: entry 3 (id "dut-7")` for an entry.
struct Problem {
  std::string where;
  std::string message;
  /// `where: message`, the form printed to users.
  std::string to_string() const { return where + ": " + message; }
};

/// A resources source (file, list, URL) is invalid. Holds every problem found, not just the
/// first; `what()` lists them one per line.
class ResourcesError : public Error {
 public:
  ResourcesError(std::string source, std::vector<Problem> problems);
  const std::string& source() const noexcept { return source_; }
  const std::vector<Problem>& problems() const noexcept { return problems_; }

 private:
  std::string source_;
  std::vector<Problem> problems_;
};

/// A requirement text or JSON object is malformed: bad JSON, bad `key=value` pair, unknown
/// operator, invalid regex. Raised when the requirement is parsed, never while matching.
class RequirementsError : public Error {
 public:
  using Error::Error;
};

/// No resource can ever satisfy the requirements (as opposed to: all matching ones are busy).
/// `reasons()` holds one line per resource saying why it did not match; `what()` lists the first
/// 20 and sums up the rest by reason ("... and 9980 more: 9000 offline; ...").
class NoMatchError : public Error {
 public:
  NoMatchError(const std::string& message, std::vector<std::string> reasons);
  const std::vector<std::string>& reasons() const noexcept { return reasons_; }

 private:
  std::vector<std::string> reasons_;
};

/// Matching resources exist but all stayed busy until the timeout. `busy()` holds one line per
/// busy device naming its holder (pid, host, allocation id, since when) where known; `what()`
/// lists the first 20.
class TimeoutError : public Error {
 public:
  TimeoutError(const std::string& message, std::vector<std::string> busy);
  const std::vector<std::string>& busy() const noexcept { return busy_; }

 private:
  std::vector<std::string> busy_;
};

/// The lock store cannot be used: lock folder not writable, a symlink where a lock file should be,
/// a server that refuses us. The message names the folder/URL and the fix.
class BackendError : public Error {
 public:
  using Error::Error;
};

/// The lock store cannot answer for a moment (a remote store that timed out or answered 503, a
/// connection refused while it restarts). `Lockable` retries such calls with bounded exponential
/// backoff inside the caller's timeout and reports them in its progress lines; any other
/// BackendError ends the wait at once.
class TemporarilyUnavailableError : public BackendError {
 public:
  using BackendError::BackendError;
};

/// One device's lock cannot be used (a symbolic link, a directory or a FIFO where its lock file
/// should be, a file this user may not open), while the store itself works. `Lockable` skips such a
/// device with one warning and locks another match; it fails only when no match is usable.
class ResourceUnusableError : public BackendError {
 public:
  ResourceUnusableError(std::string resource_id, const std::string& message)
      : BackendError(message), resource_id_(std::move(resource_id)) {}
  const std::string& resource_id() const noexcept { return resource_id_; }

 private:
  std::string resource_id_;
};

/// A wait was cancelled by `Lockable::cancel()` (e.g. the CLI on SIGINT). Nothing is held and the
/// waiter has left the queue when this is thrown.
class CancelledError : public Error {
 public:
  using Error::Error;
};

/// Invalid configuration of a front end or of `Options` (bad flag value, negative timeout).
class ConfigError : public Error {
 public:
  using Error::Error;
};

}  // namespace lockable
