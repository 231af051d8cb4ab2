// The history checker over hand-written histories: ones a correct lock produces must pass, and
// every kind of lie the harness exists to catch must be rejected, naming what happened.

#include "history_checker.hpp"

#include <gtest/gtest.h>

#include <string>

namespace {

using lockable::fault::check_history_text;
using lockable::fault::Guarantees;
using lockable::fault::Verdict;

const Guarantees kFolder{false, 10, 1.0};
const Guarantees kEtcd{true, 10, 1.0};

std::string start(double t, int worker, double timeout = 5, double hold = 0.1) {
  return R"({"t":)" + std::to_string(t) + R"(,"ev":"start","worker":)" + std::to_string(worker) +
         R"(,"timeout":)" + std::to_string(timeout) + R"(,"hold":)" + std::to_string(hold) + "}\n";
}
std::string grant(double t, int worker, const std::string& device, const std::string& extra = "") {
  return R"({"t":)" + std::to_string(t) + R"(,"ev":"grant","worker":)" + std::to_string(worker) +
         R"(,"pid":100,"device":")" + device + "\"" + extra + "}\n";
}
std::string release(double t, int worker, const std::string& device,
                    const std::string& why = "done") {
  return R"({"t":)" + std::to_string(t) + R"(,"ev":"release","worker":)" + std::to_string(worker) +
         R"(,"device":")" + device + R"(","why":")" + why + "\"}\n";
}
std::string exit_of(double t, int worker, int code, const std::string& reason = "") {
  return R"({"t":)" + std::to_string(t) + R"(,"ev":"exit","worker":)" + std::to_string(worker) +
         R"(,"code":)" + std::to_string(code) + R"(,"reason":")" + reason + "\"}\n";
}
std::string fault(double t, const std::string& kind, int worker = -1) {
  return R"({"t":)" + std::to_string(t) + R"(,"ev":"fault","kind":")" + kind + R"(","worker":)" +
         std::to_string(worker) + "}\n";
}
std::string clean_end(double t) {
  return R"({"t":)" + std::to_string(t) +
         R"(,"ev":"end","held":[],"stray_files":[],"stray_processes":[]})"
         "\n";
}

std::string all(const Verdict& verdict) {
  std::string text;
  for (const auto& line : verdict.parse_errors) text += line + "\n";
  for (const auto& line : verdict.violations) text += line + "\n";
  return text;
}

TEST(HistoryChecker, AcceptsHandoverTimeoutAndKilledWaiter) {
  const std::string history = start(0, 1) + start(0.01, 2) + start(0.02, 3, 1) + start(0.03, 4) +
                              grant(0.1, 1, "d1") + release(0.5, 1, "d1") + exit_of(0.51, 1, 0) +
                              grant(0.52, 2, "d1") + release(0.9, 2, "d1") + exit_of(0.91, 2, 0) +
                              exit_of(1.05, 3, 6, "lockable: no device became free within 1 s") +
                              fault(0.2, "kill_waiter", 4) + exit_of(0.21, 4, 137) + clean_end(2);
  const Verdict verdict = check_history_text(history, kFolder);
  EXPECT_TRUE(verdict.ok()) << all(verdict);
  EXPECT_EQ(verdict.workers, 4);
  EXPECT_EQ(verdict.grants, 2);
  EXPECT_EQ(verdict.timeouts, 1);
  EXPECT_EQ(verdict.killed, 1);
  EXPECT_EQ(verdict.faults.at("kill_waiter"), 1);
}

TEST(HistoryChecker, RejectsOverlappingHolds) {
  const std::string history = start(0, 1) + start(0, 2) + grant(0.1, 1, "d1") +
                              grant(0.3, 2, "d1") + release(0.5, 1, "d1") + release(0.6, 2, "d1") +
                              exit_of(0.7, 1, 0) + exit_of(0.7, 2, 0) + clean_end(1);
  const Verdict verdict = check_history_text(history, kFolder);
  ASSERT_EQ(verdict.violations.size(), 1u) << all(verdict);
  EXPECT_NE(verdict.violations[0].find("worker 2 was granted d1"), std::string::npos);
  EXPECT_NE(verdict.violations[0].find("while worker 1 held it"), std::string::npos);
}

TEST(HistoryChecker, RejectsAGrantWhileAKilledHolderStillUsedTheDevice) {
  // Worker 1's command was never seen to release (killed): only the device probe knows. Its
  // lockable lived on and must have reaped it before letting the device go.
  const std::string history = start(0, 1) + start(0, 2) + grant(0.1, 1, "d1") +
                              fault(0.2, "kill_command", 1) + exit_of(0.25, 1, 137) +
                              grant(0.3, 2, "d1", R"(,"busy":true,"prev_worker":1)") +
                              release(0.4, 2, "d1") + exit_of(0.5, 2, 0) + clean_end(1);
  const Verdict verdict = check_history_text(history, kFolder);
  ASSERT_EQ(verdict.violations.size(), 1u) << all(verdict);
  EXPECT_NE(verdict.violations[0].find("still used it"), std::string::npos);
}

TEST(HistoryChecker, AcceptsAKilledHolderCommandOnlyJustAfterTheKill) {
  // lockable SIGKILLed: its command dies by PR_SET_PDEATHSIG a moment after the lock is free.
  const auto history = [](double grant_at, const std::string& kill = "kill_holder") {
    return start(0, 1) + start(0, 2) + grant(0.1, 1, "d1") + fault(0.2, kill, 1) +
           exit_of(0.201, 1, 137) + grant(grant_at, 2, "d1", R"(,"busy":true,"prev_worker":1)") +
           release(grant_at + 0.1, 2, "d1") + exit_of(grant_at + 0.2, 2, 0) + clean_end(5);
  };
  const Verdict race = check_history_text(history(0.205), kFolder);
  EXPECT_TRUE(race.ok()) << all(race);
  EXPECT_EQ(race.kill_races, 1);
  // The harness may kill a "waiter" whose grant it had not seen yet.
  EXPECT_TRUE(check_history_text(history(0.205, "kill_waiter"), kFolder).ok());
  // A command killed before it said who it was, by a worker whose grant was never recorded.
  const std::string unnamed = start(0, 1) + start(0, 2) + fault(0.2, "kill_waiter", 1) +
                              exit_of(0.201, 1, 137) + grant(0.3, 2, "d1", R"(,"busy":true)") +
                              release(0.4, 2, "d1") + exit_of(0.5, 2, 0) + clean_end(5);
  EXPECT_TRUE(check_history_text(unnamed, kFolder).ok());
  EXPECT_FALSE(check_history_text(unnamed, Guarantees{false, 10, 0}).ok());
  // Its command killed directly, lockable reaps it before the device is free: no race.
  EXPECT_FALSE(check_history_text(history(0.205, "kill_command"), kFolder).ok());
  // Strict: the race is a violation.
  EXPECT_FALSE(check_history_text(history(0.205), Guarantees{false, 10, 0}).ok());
  // Long after the kill, the command should have been dead for long.
  EXPECT_FALSE(check_history_text(history(2.5), kFolder).ok());
}

TEST(HistoryChecker, AcceptsALockLostBeforeItsCommandRecordedTheGrant) {
  const std::string history =
      start(0, 1) + exit_of(8, 1, 9, "lockable: d0 was lost while the command ran") + clean_end(9);
  const Verdict verdict = check_history_text(history, kFolder);
  EXPECT_TRUE(verdict.ok()) << all(verdict);
  EXPECT_EQ(verdict.lost, 1);
}

TEST(HistoryChecker, AcceptsAnOverlapOnlyWhenTheLaterFencingTokenIsLarger) {
  // Worker 1 was frozen past its lease; worker 2 got the device with a larger token.
  const std::string fenced =
      start(0, 1) + start(0, 2) + grant(0.1, 1, "d1", R"(,"token":7)") +
      fault(0.2, "stop_holder", 1) +
      grant(3, 2, "d1", R"(,"token":9,"busy":true,"prev_worker":1,"prev_token":7)") +
      release(3.5, 1, "d1", "sigterm") + exit_of(3.6, 1, 9) + release(4, 2, "d1") +
      exit_of(4.1, 2, 0) + clean_end(5);
  const Verdict ok = check_history_text(fenced, kEtcd);
  EXPECT_TRUE(ok.ok()) << all(ok);
  EXPECT_EQ(ok.accepted_fenced_overlaps, 2);  // the interval and the device probe
  EXPECT_EQ(ok.lost, 1);

  // The same history on a backend without fencing is a double grant.
  EXPECT_FALSE(check_history_text(fenced, kFolder).ok());

  // A smaller (stale) token for the later holder is rejected twice over.
  const std::string stale = start(0, 1) + start(0, 2) + grant(0.1, 1, "d1", R"(,"token":9)") +
                            grant(3, 2, "d1", R"(,"token":7)") + release(3.5, 1, "d1", "sigterm") +
                            exit_of(3.6, 1, 9) + release(4, 2, "d1") + exit_of(4.1, 2, 0) +
                            clean_end(5);
  const Verdict verdict = check_history_text(stale, kEtcd);
  ASSERT_EQ(verdict.violations.size(), 2u) << all(verdict);
  EXPECT_NE(verdict.violations[0].find("not larger than the earlier grant's 9"), std::string::npos);
}

TEST(HistoryChecker, RejectsAGrantWithoutTokenOnAFencingBackend) {
  const std::string history =
      start(0, 1) + grant(0.1, 1, "d1") + release(0.2, 1, "d1") + exit_of(0.3, 1, 0) + clean_end(1);
  const Verdict verdict = check_history_text(history, kEtcd);
  ASSERT_EQ(verdict.violations.size(), 1u) << all(verdict);
  EXPECT_NE(verdict.violations[0].find("without a fencing token"), std::string::npos);
}

TEST(HistoryChecker, AcceptsALossReportedBeforeTheNextGrant) {
  // Lock service: worker 1's lease lapsed; its command was told (sigterm) before worker 2's
  // grant, and still had the device for a moment: accepted.
  const std::string history = start(0, 1) + start(0, 2) + grant(0.1, 1, "d1") +
                              release(2.0, 1, "d1", "sigterm") +
                              grant(2.001, 2, "d1", R"(,"busy":true,"prev_worker":1)") +
                              exit_of(2.1, 1, 9, "lockable: lost d1") + release(2.5, 2, "d1") +
                              exit_of(2.6, 2, 0) + clean_end(3);
  const Verdict verdict = check_history_text(history, kFolder);
  EXPECT_TRUE(verdict.ok()) << all(verdict);
}

TEST(HistoryChecker, RejectsAWaiterThatHungPastItsTimeout) {
  const std::string history = start(0, 1, 2) + exit_of(20, 1, 6, "timeout") + clean_end(21);
  const Verdict verdict = check_history_text(history, kFolder);
  ASSERT_EQ(verdict.violations.size(), 1u) << all(verdict);
  EXPECT_NE(verdict.violations[0].find("past its timeout"), std::string::npos);

  // Time it spent stopped by the harness is excused.
  const std::string stopped = start(0, 1, 2) +
                              R"({"t":1,"ev":"stop","worker":1})"
                              "\n" +
                              R"({"t":15,"ev":"cont","worker":1})"
                              "\n" +
                              exit_of(20, 1, 6, "timeout") + clean_end(21);
  EXPECT_TRUE(check_history_text(stopped, kFolder).ok());
}

TEST(HistoryChecker, RejectsAGrantPastTheTimeout) {
  const std::string history = start(0, 1, 1) + grant(30, 1, "d1") + release(30.1, 1, "d1") +
                              exit_of(30.2, 1, 0) + clean_end(31);
  const Verdict verdict = check_history_text(history, kFolder);
  ASSERT_FALSE(verdict.ok());
  EXPECT_NE(verdict.violations[0].find("granted after waiting"), std::string::npos) << all(verdict);
}

TEST(HistoryChecker, RejectsATimeoutBeforeTheTimeout) {
  // What a deadline on the wall clock does when the clock jumps forward.
  const std::string history = start(0, 1, 5) + exit_of(0.2, 1, 6, "timeout") + clean_end(1);
  const Verdict verdict = check_history_text(history, kFolder);
  ASSERT_EQ(verdict.violations.size(), 1u) << all(verdict);
  EXPECT_NE(verdict.violations[0].find("before its timeout"), std::string::npos);
}

TEST(HistoryChecker, RejectsAWaiterThatEndedWithoutAReason) {
  const Verdict silent = check_history_text(start(0, 1) + exit_of(1, 1, 6) + clean_end(2), kFolder);
  ASSERT_FALSE(silent.ok());
  EXPECT_NE(silent.violations[0].find("said nothing about why"), std::string::npos);

  const Verdict crashed =
      check_history_text(start(0, 1) + exit_of(1, 1, 8, "internal error") + clean_end(2), kFolder);
  ASSERT_FALSE(crashed.ok());
  EXPECT_NE(crashed.violations[0].find("without a grant or a known reason"), std::string::npos);

  // Killed without the harness having killed it: rejected too.
  EXPECT_FALSE(check_history_text(start(0, 1) + exit_of(1, 1, 137) + clean_end(2), kFolder).ok());
}

TEST(HistoryChecker, RejectsAWaiterThatNeverEnded) {
  const Verdict verdict = check_history_text(start(0, 1) + clean_end(2), kFolder);
  ASSERT_EQ(verdict.violations.size(), 1u) << all(verdict);
  EXPECT_NE(verdict.violations[0].find("never ended"), std::string::npos);
}

TEST(HistoryChecker, RejectsLeftoversAtTheEnd) {
  const std::string end =
      R"({"t":5,"ev":"end","held":["d1"],"stray_files":["locks/x.tmp"],"stray_processes":["4242 fault_hold"]})"
      "\n";
  const Verdict verdict = check_history_text(end, kFolder);
  ASSERT_EQ(verdict.violations.size(), 3u) << all(verdict);
  EXPECT_NE(verdict.violations[0].find("still held at the end: d1"), std::string::npos);
  EXPECT_NE(verdict.violations[2].find("stray process at the end: 4242"), std::string::npos);
  EXPECT_FALSE(check_history_text(start(0, 1) + exit_of(1, 1, 6, "t"), kFolder).ok())
      << "a history without an end event did not finish";
}

TEST(HistoryChecker, RejectsTornLinesAndInconsistentEvents) {
  const Verdict torn = check_history_text(start(0, 1) +
                                              R"({"t":0.1,"ev":"gra)"
                                              "\n" +
                                              exit_of(1, 1, 6, "t") + clean_end(2),
                                          kFolder);
  EXPECT_FALSE(torn.ok());
  ASSERT_EQ(torn.parse_errors.size(), 1u);
  EXPECT_NE(torn.parse_errors[0].find("line 2"), std::string::npos);

  EXPECT_FALSE(check_history_text(grant(0.1, 7, "d1") + clean_end(1), kFolder).ok());
  EXPECT_FALSE(check_history_text(
                   start(0, 1) + release(0.1, 1, "d1") + exit_of(0.2, 1, 0) + clean_end(1), kFolder)
                   .ok());
  EXPECT_FALSE(check_history_text(start(0, 1) + grant(0.1, 1, "d1") + grant(0.2, 1, "d2") +
                                      exit_of(0.3, 1, 0) + clean_end(1),
                                  kFolder)
                   .ok());
}

TEST(HistoryChecker, RejectsAHolderThatFailedAfterItsGrant) {
  const std::string history = start(0, 1) + grant(0.1, 1, "d1") + release(0.2, 1, "d1") +
                              exit_of(0.3, 1, 6, "timeout") + clean_end(1);
  EXPECT_FALSE(check_history_text(history, kFolder).ok());
}

}  // namespace
