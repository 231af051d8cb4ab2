// The command a fault-harness worker runs while `lockable` holds a device for it: it stands for
// a flasher using the device. It takes an exclusive flock on the device's stand-in file
// (<devices>/<id>.inuse) without waiting, so the kernel tells whether another user is still alive
// on the device (freed exactly at that user's death, also by SIGKILL), records its grant and its
// release in the history (one O_APPEND write each, CLOCK_MONOTONIC time), and holds for HOLD_MS.
//
//   fault_hold HISTORY DEVICES_DIR HOLD_MS
// Reads FAULT_WORKER, LOCKABLE_RESOURCE_ID and LOCKABLE_FENCING_TOKEN (when the backend has one)
// from its environment. SIGTERM (its lock was lost, or lockable was interrupted) ends the hold at
// once with a release "sigterm" and exit status 143.

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

volatile std::sig_atomic_t g_terminated = 0;

void on_term(int) { g_terminated = 1; }

double monotonic_now() {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) / 1e9;
}

std::string env_or(const char* name, const char* fallback) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : fallback;
}

// A JSON string for the values we write: ids and tokens from resources.json and etcd (no quotes
// or control characters in them; anything else is replaced so that the line stays valid JSON).
std::string quoted(const std::string& text) {
  std::string out = "\"";
  for (const char c : text)
    out += (c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20) ? '?' : c;
  return out + "\"";
}

// One write() on an O_APPEND descriptor: lines of many processes never interleave.
void record(int history, const std::string& body) {
  char time_text[40];
  std::snprintf(time_text, sizeof time_text, "%.6f", monotonic_now());
  const std::string line = "{\"t\":" + std::string(time_text) + "," + body + "}\n";
  if (::write(history, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
    std::perror("fault_hold: write history");
    std::_Exit(70);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: fault_hold HISTORY DEVICES_DIR HOLD_MS\n");
    return 2;
  }
  struct sigaction action {};
  action.sa_handler = on_term;
  ::sigaction(SIGTERM, &action, nullptr);

  const std::string worker = env_or("FAULT_WORKER", "-1");
  const std::string device = env_or("LOCKABLE_RESOURCE_ID", "");
  const std::string token = env_or("LOCKABLE_FENCING_TOKEN", "");
  const long hold_ms = std::atol(argv[3]);
  const int history = ::open(argv[1], O_WRONLY | O_APPEND | O_CLOEXEC);
  if (history < 0 || device.empty()) {
    std::fprintf(stderr, "fault_hold: cannot open %s or no LOCKABLE_RESOURCE_ID\n", argv[1]);
    return 70;
  }
  const std::string in_use = std::string(argv[2]) + "/" + device + ".inuse";
  const int fd = ::open(in_use.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    std::fprintf(stderr, "fault_hold: cannot open %s: %s\n", in_use.c_str(), std::strerror(errno));
    return 70;
  }
  bool busy = false;
  std::string previous;
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    busy = true;
    // Its user writes who it is right after its flock: an empty file is one mid-write (on a
    // loaded machine, a user may wait long to be scheduled again).
    for (int attempt = 0; attempt < 1000 && previous.empty(); ++attempt) {
      char text[64] = {};
      const ssize_t n = ::pread(fd, text, sizeof text - 1, 0);
      if (n > 0) {
        previous.assign(text, static_cast<std::size_t>(n));
      } else if (::flock(fd, LOCK_EX | LOCK_NB) == 0) {
        ::flock(fd, LOCK_UN);  // it died before it said who it was
        break;
      } else {
        const timespec pause{0, 1000 * 1000};
        ::clock_nanosleep(CLOCK_MONOTONIC, 0, &pause, nullptr);
      }
    }
  } else {
    const std::string mine = worker + " " + (token.empty() ? "-" : token);
    if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, mine.data(), mine.size(), 0) < 0) {
      std::perror("fault_hold: write the device file");
    }
  }
  std::string body = "\"ev\":\"grant\",\"worker\":" + worker +
                     ",\"pid\":" + std::to_string(::getpid()) + ",\"device\":" + quoted(device) +
                     ",\"busy\":" + (busy ? "true" : "false");
  if (!token.empty()) body += ",\"token\":" + quoted(token);
  if (busy) {
    // "<worker> <token or ->", as the user that still holds the flock wrote it.
    int prev_worker = -1;
    char prev_token[32] = {};
    if (std::sscanf(previous.c_str(), "%d %31s", &prev_worker, prev_token) >= 1) {
      body += ",\"prev_worker\":" + std::to_string(prev_worker);
      if (prev_token[0] != '\0' && std::strcmp(prev_token, "-") != 0) {
        body += ",\"prev_token\":" + quoted(prev_token);
      }
    }
  }
  record(history, body);

  const double until = monotonic_now() + static_cast<double>(hold_ms) / 1000.0;
  while (!g_terminated && monotonic_now() < until) {
    const timespec step{0, 5 * 1000 * 1000};
    ::clock_nanosleep(CLOCK_MONOTONIC, 0, &step, nullptr);
  }
  record(history, "\"ev\":\"release\",\"worker\":" + worker + ",\"device\":" + quoted(device) +
                      ",\"why\":\"" + (g_terminated ? "sigterm" : "done") + "\"");
  // The device is free only now, after the release is on record.
  if (!busy) ::flock(fd, LOCK_UN);
  return g_terminated ? 143 : 0;
}
