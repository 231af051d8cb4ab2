#pragma once
// The fault harness's judge: reads the history of one run (JSON lines, one event each, written
// with one O_APPEND write by the harness, by every command that held a device and by every
// Python-protocol locker) and says whether the lock ever lied. Pure: text in, verdict out, no I/O,
// so its unit tests feed it histories that must pass and histories that must be rejected.
//
// Times are seconds of CLOCK_MONOTONIC, which on Linux is one clock for every process of the
// machine, so events of different processes are ordered by it.
//
// Events (the field "ev"):
//   start    {worker, timeout, hold}       the harness starts a worker (a locker) that waits at
//                                          most `timeout` s and holds for `hold` s
//   grant    {worker, pid, device, token?, busy, prev_worker?, prev_token?}
//            written by the holder's command once it owns the device: the command takes an
//            exclusive flock on the device's stand-in file without waiting; `busy` says someone
//            (prev_worker, with prev_token) still had it: a process that still uses the device,
//            however its lock was lost. The kernel frees that flock at the user's death, so this
//            probe sees holds whose end no event records (a SIGKILLed command).
//   release  {worker, device, why}         the command is done with the device ("done"), or was
//                                          told to stop ("sigterm": its lock was lost, or lockable
//                                          was interrupted); written before it lets the device go
//   exit     {worker, code, reason}        the harness reaped the worker: its exit status (128+N
//                                          for signal N) and the last line it wrote on stderr
//   stop / cont {worker}                   the harness SIGSTOPped / SIGCONTed one of the worker's
//                                          processes (the waits it may excuse)
//   fault    {kind, worker?, ...}          a fault the harness injected (counted; kill faults
//                                          excuse a worker that ends without a grant)
//   end      {held, stray_files, stray_processes}  what the harness found after the last worker
//
// What each backend guarantees, and so what the checker accepts:
//   - lock folder (and the Python package's protocol on it): the kernel's flock is the truth and a
//     lock is never lost while its holder lives, so no two holds of a device may overlap, ever.
//     (A lock file removed under its holder is an outside fault that no flock can survive; the
//     harness injects it only when asked, --faults=+rm_held, and the checker then rejects it
//     unless the backend reported the loss before the next grant.)
//   - etcd: a lease lock. A holder frozen (SIGSTOP) or cut off past its TTL loses the device, and
//     its command may still run for a moment; what etcd guarantees is the fencing token (the lock
//     key's create revision), strictly increasing per device. An overlap is accepted only when
//     the later holder's token is larger than the earlier's (a fencing device refuses the stale
//     one); tokens must grow with every grant of a device.
//   - the lock service: leases without fencing tokens. An overlap is accepted only when the
//     earlier holder's command had already been told of the loss (its "release" with why
//     "sigterm" is recorded) before the later grant; nothing can fence a holder frozen past its
//     lease, so the harness freezes service holders for less than half a lease.
//   - every backend, when `lockable` itself is SIGKILLed while it holds: its command is killed
//     too (PR_SET_PDEATHSIG), but the kernel frees the dead holder's lock before it signals the
//     command, so for a moment (milliseconds) the next holder may start while the old command is
//     still being killed. The device probe sees it; the checker accepts it (and counts it as a
//     kill race) only when the harness killed that holder's `lockable` (kill_holder, or
//     kill_waiter when the grant came just before the kill) at most `kill_race_window` seconds
//     before the next grant. 0 makes it a violation (fault_harness --strict).
//   - a lock lost before its command could record its grant (a waiter stopped past the lease
//     after its request was granted) ends with exit status 9 and counts as lost.
//   - every backend: a waiter is granted, or ends with a reason (timeout 6, resources invalid 3,
//     store unusable 7) after waiting at least its timeout (every deadline on the monotonic clock:
//     a wall clock jump must neither shorten nor lengthen it) and at most timeout + grace (+ the
//     time it was stopped); or it was killed by the harness. At the end nothing is held and no
//     stray file or process is left.

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace lockable::fault {

/// One line of the history.
struct Event {
  double t = 0;  ///< seconds of CLOCK_MONOTONIC
  std::string ev;
  int worker = -1;
  long pid = 0;
  std::string device;
  std::optional<long long> token;
  bool busy = false;
  int prev_worker = -1;
  std::optional<long long> prev_token;
  std::string why;     ///< release: done | sigterm
  std::string kind;    ///< fault: its kind
  double timeout = 0;  ///< start
  double hold = 0;     ///< start
  int code = 0;        ///< exit
  std::string reason;  ///< exit: the worker's last stderr line
  std::vector<std::string> held, stray_files, stray_processes;  ///< end
  int line = 0;  ///< 1-based line in the history text
};

/// What the backend under test guarantees (see the file comment).
struct Guarantees {
  /// Grants carry fencing tokens, strictly increasing per device (etcd).
  bool fencing = false;
  /// Seconds a worker may take beyond its timeout (start-up, a loaded machine, a store down).
  double grace = 10;
  /// Seconds after the harness SIGKILLed a holder during which its command may still be alive
  /// on the device (see the file comment); 0: never.
  double kill_race_window = 1.0;
};

/// The verdict on one history.
struct Verdict {
  std::vector<std::string> violations;  ///< each names the line(s), worker(s) and device
  std::vector<std::string> parse_errors;
  int workers = 0, grants = 0, timeouts = 0, failures = 0, killed = 0, lost = 0;
  int accepted_fenced_overlaps = 0;  ///< overlaps a larger fencing token made safe
  int kill_races = 0;  ///< a killed holder's command still on the device at the next grant
  std::map<std::string, int> faults;  ///< fault kind -> count
  bool ok() const { return violations.empty() && parse_errors.empty(); }
};

/// Parses the history text (JSON lines; empty lines ignored). A line that is not a JSON object
/// with a numeric "t" and a string "ev" is a parse error naming the line: a history written with
/// single O_APPEND writes never has one, so the verdict is not ok.
std::vector<Event> parse_history(const std::string& text, std::vector<std::string>* errors);

/// Checks every rule of the file comment over `events` (any order; they are sorted by time).
Verdict check_history(std::vector<Event> events, const Guarantees& guarantees);

/// parse_history then check_history.
Verdict check_history_text(const std::string& text, const Guarantees& guarantees);

/// Exit statuses of the `lockable` CLI (and the Python-protocol worker) the checker knows.
inline constexpr int kExitResourcesInvalid = 3;
inline constexpr int kExitNoMatch = 5;
inline constexpr int kExitTimeout = 6;
inline constexpr int kExitBackendError = 7;
inline constexpr int kExitLockLost = 9;

}  // namespace lockable::fault
