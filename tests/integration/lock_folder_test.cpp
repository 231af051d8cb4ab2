// The lock folder backend against the real file system, other processes and the Python package's
// way of locking.

#include <lockable/error.hpp>
#include <lockable/lock_folder.hpp>

#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <thread>
#include <tuple>

#include "core/json_text.hpp"
#include "lock_folder/held_files.hpp"
#include "lock_folder/pid_file.hpp"
#include "lock_folder/ticket_queue.hpp"
#include "lockable/test/child.hpp"
#include "lockable/test/files.hpp"
#include "lockable/test/hold_ledger.hpp"
#include "posix/unique_fd.hpp"

namespace lockable {
namespace {

using namespace std::chrono_literals;
using test::Child;
using test::is_flocked;
using test::process_state;
using test::read_text;
using test::TempDir;

Resource resource(const std::string& id) { return Resource{id, Json{{"id", id}}}; }

HolderInfo me() {
  return HolderInfo{static_cast<long>(::getpid()), "test-host", "alloc-1",
                    std::chrono::system_clock::now(), Json{{"id", "dut"}}};
}

std::unique_ptr<Child> python_lock(const std::string& mode, const std::filesystem::path& path) {
  return std::make_unique<Child>(
      std::vector<std::string>{LOCKABLE_PYTHON, LOCKABLE_PYTHON_PID_LOCK, mode, path.string()});
}

class LockFolder : public ::testing::Test {
 protected:
  TempDir dir_;
  std::unique_ptr<LockBackend> backend_ = make_lock_folder_backend(dir_.path());
  std::filesystem::path pid_file(const std::string& id) const {
    return dir_.path() / (id + ".pid");
  }
};

TEST_F(LockFolder, HeldLockWritesPidAndDetailsAndReleaseEmptiesThePidFile) {
  auto lock = backend_->try_lock(resource("dut"), me());
  ASSERT_NE(lock, nullptr);
  EXPECT_EQ(read_text(pid_file("dut")), std::to_string(::getpid()) + "\n");
  const auto details = Json::parse(read_text(dir_.path() / "dut.pid.json"));
  EXPECT_EQ(details["alloc_id"], "alloc-1");
  EXPECT_EQ(details["hostname"], "test-host");
  EXPECT_TRUE(is_flocked(pid_file("dut")));
  lock->release();
  lock->release();  // harmless
  EXPECT_EQ(read_text(pid_file("dut")), "");
  EXPECT_FALSE(is_flocked(pid_file("dut")));
  EXPECT_FALSE(backend_->holder_of("dut").has_value());
}

TEST_F(LockFolder, DetailsRemovedOrReplacedBetweenLocksAreWrittenAfresh) {
  // The details descriptor is kept open across locks: a file removed (a temp cleaner) or renamed
  // over meanwhile must not swallow the next holder's details.
  const auto details = dir_.path() / "dut.pid.json";
  backend_->try_lock(resource("dut"), me())->release();
  std::filesystem::remove(details);
  auto lock = backend_->try_lock(resource("dut"), me());
  ASSERT_NE(lock, nullptr);
  EXPECT_EQ(Json::parse(read_text(details))["alloc_id"], "alloc-1");
  lock->release();
  test::write_file(dir_.path() / "replacement", "{}");
  std::filesystem::rename(dir_.path() / "replacement", details);
  lock = backend_->try_lock(resource("dut"), me());
  ASSERT_NE(lock, nullptr);
  EXPECT_EQ(Json::parse(read_text(details))["alloc_id"], "alloc-1");
  EXPECT_EQ(backend_->holder_of("dut")->alloc_id, "alloc-1");
}

// The backend keeps the released lock's descriptor to lock the next time, and an emptied file
// is locked without a stat of the path before the open for writing: a file removed or renamed
// over between two locks must still be the one the next lock writes and flocks, and a
// replacement someone holds must stay theirs.
TEST_F(LockFolder, LockFileRemovedOrReplacedBetweenLocksIsLockedAfresh) {
  backend_->try_lock(resource("dut"), me())->release();
  std::filesystem::remove(pid_file("dut"));
  auto lock = backend_->try_lock(resource("dut"), me());
  ASSERT_NE(lock, nullptr);
  EXPECT_TRUE(is_flocked(pid_file("dut")));
  EXPECT_EQ(read_text(pid_file("dut")), std::to_string(::getpid()) + "\n");
  EXPECT_FALSE(lock->lost());
  lock->release();

  test::write_file(pid_file("dut"), "");  // renamed over: an empty file, as a release leaves it
  lock = backend_->try_lock(resource("dut"), me());
  ASSERT_NE(lock, nullptr);
  EXPECT_TRUE(is_flocked(pid_file("dut")));
  EXPECT_EQ(read_text(pid_file("dut")), std::to_string(::getpid()) + "\n");
  EXPECT_FALSE(lock->lost());
  lock->release();

  test::write_file(pid_file("dut"), "");
  posix::UniqueFd other(::open(pid_file("dut").c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(other);
  ASSERT_EQ(::flock(other.get(), LOCK_EX | LOCK_NB), 0);  // another holder of the new file
  EXPECT_EQ(backend_->try_lock(resource("dut"), me()), nullptr);
  other.reset();
  EXPECT_NE(backend_->try_lock(resource("dut"), me()), nullptr);
}

// Each lock asks for the reservation with an lstat() first: one made (by another process) between
// two locks of one backend object, or anything else put at `<id>.reserved.json`, keeps it off.
TEST_F(LockFolder, ReservationMadeBetweenTwoLocksKeepsTheNextOneOff) {
  backend_->try_lock(resource("dut"), me())->release();
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    Reservation reservation;
    reservation.reason = "rework";
    reservation.by = "tester";
    make_lock_folder_backend(dir_.path())->reserve("dut", reservation);
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_EQ(backend_->try_lock(resource("dut"), me()), nullptr);
  backend_->unreserve("dut");
  backend_->try_lock(resource("dut"), me())->release();
  std::filesystem::create_directory(dir_.path() / "dut.reserved.json");  // unreadable: reserved
  EXPECT_EQ(backend_->try_lock(resource("dut"), me()), nullptr);
  std::filesystem::remove(dir_.path() / "dut.reserved.json");
  EXPECT_NE(backend_->try_lock(resource("dut"), me()), nullptr);
}

// A held lock keeps what it needs of its backend's per-id cache (names, the claim's key): it
// may outlive the backend, and its release still empties, unlocks and frees the id in-process.
TEST_F(LockFolder, LockOutlivesItsBackend) {
  auto backend = make_lock_folder_backend(dir_.path());
  backend->try_lock(resource("dut"), me())->release();  // the probe is cached, then reused
  auto lock = backend->try_lock(resource("dut"), me());
  ASSERT_NE(lock, nullptr);
  backend.reset();
  EXPECT_FALSE(lock->lost());
  EXPECT_EQ(backend_->try_lock(resource("dut"), me()), nullptr);
  lock->release();
  EXPECT_EQ(read_text(pid_file("dut")), "");
  EXPECT_FALSE(is_flocked(pid_file("dut")));
  EXPECT_NE(backend_->try_lock(resource("dut"), me()), nullptr);
}

// The pid is cached (glibc's getpid() is a system call): a child forked by a program that
// locked before must still write its own pid, or the parent's exit would free its device for
// the Python package and make a pid-reuse judgement about the wrong process.
TEST_F(LockFolder, ChildForkedAfterALockWritesItsOwnPid) {
  backend_->try_lock(resource("dut"), me())->release();
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto lock = make_lock_folder_backend(dir_.path())->try_lock(resource("dut"), me());
    const bool own = lock && read_text(pid_file("dut")) == std::to_string(::getpid()) + "\n";
    ::_exit(own ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the child wrote another pid";
}

// The details text is made by hand on the lock path (no JSON tree per lock): it must stay the
// very text the JSON library makes, for every reader of `<id>.pid.json` and the `.lost` note.
TEST(HolderDetailsText, IsTheDumpOfToJsonByteForByte) {
  std::vector<HolderInfo> holders(6);
  holders[1] = me();
  holders[2] = HolderInfo{2147483647,
                          "rig \"01\"\n\t\x01\xff",
                          "a\\b",
                          std::chrono::system_clock::now(),
                          Json{{"os", "Android"}, {"nested", {{"list", {1, 2.5, nullptr, true}}}}},
                          -7,
                          std::uint64_t{18446744073709551615u}};
  holders[3] = HolderInfo{42, "", "", {}, Json::array({"x"}), 100, 0};
  // Quoted without the serializer when plain printable ASCII: the edges of that range.
  holders[4] = HolderInfo{1, " ~/caf\xc3\xa9\x7f\x1f", "0123-abcd", {}, Json::array(), 0, 0};
  holders[5] = HolderInfo{1, "!#$%&'()*+,-./:;<=>?@[]^_`{|}~", " ", {}, Json::object(), 0, 0};
  for (const auto& holder : holders) {
    EXPECT_EQ(folder_backend::holder_details_text(holder), detail::dump(holder.to_json()));
  }
}

TEST_F(LockFolder, SecondTryLockInTheSameProcessFails) {
  auto other_backend = make_lock_folder_backend(dir_.path());
  auto first = backend_->try_lock(resource("dut"), me());
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(backend_->try_lock(resource("dut"), me()), nullptr);
  EXPECT_EQ(other_backend->try_lock(resource("dut"), me()), nullptr);
  first.reset();
  EXPECT_NE(other_backend->try_lock(resource("dut"), me()), nullptr);
}

TEST_F(LockFolder, HolderOfNamesUsAndForgetsUsAfterRelease) {
  EXPECT_FALSE(backend_->holder_of("dut").has_value());
  auto lock = backend_->try_lock(resource("dut"), me());
  const auto holder = backend_->holder_of("dut");
  ASSERT_TRUE(holder.has_value());
  EXPECT_EQ(holder->pid, ::getpid());
  EXPECT_EQ(holder->alloc_id, "alloc-1");
  lock.reset();
  EXPECT_FALSE(backend_->holder_of("dut").has_value());
}

TEST_F(LockFolder, CreatesAMissingFolder) {
  const auto nested = dir_.path() / "a" / "b";
  auto backend = make_lock_folder_backend(nested);
  EXPECT_NE(backend->try_lock(resource("dut"), me()), nullptr);
  EXPECT_TRUE(std::filesystem::exists(nested / "dut.pid"));
  EXPECT_EQ(backend->describe(), "lock folder " + nested.string());
}

TEST_F(LockFolder, FolderThatCannotBeCreatedNamesItAndTheFix) {
  test::write_file(dir_.path() / "file", "x");
  try {
    make_lock_folder_backend(dir_.path() / "file" / "locks");
    FAIL() << "expected BackendError";
  } catch (const BackendError& error) {
    EXPECT_NE(std::string(error.what()).find((dir_.path() / "file" / "locks").string()),
              std::string::npos)
        << error.what();
    EXPECT_NE(std::string(error.what()).find("--lock-folder"), std::string::npos) << error.what();
  }
}

TEST_F(LockFolder, ReadOnlyFolderNamesItAndTheFix) {
  if (::geteuid() == 0) GTEST_SKIP() << "root may write anywhere";
  const auto locked = dir_.path() / "ro";
  std::filesystem::create_directory(locked);
  ::chmod(locked.c_str(), 0555);
  try {
    make_lock_folder_backend(locked);
    FAIL() << "expected BackendError";
  } catch (const BackendError& error) {
    EXPECT_NE(std::string(error.what()).find("lock folder " + locked.string() + " is not writable"),
              std::string::npos)
        << error.what();
  }
  ::chmod(locked.c_str(), 0755);
}

TEST_F(LockFolder, SymlinkAtTheLockFileIsRefused) {
  test::write_file(dir_.path() / "target", "");
  std::filesystem::create_symlink(dir_.path() / "target", pid_file("dut"));
  try {
    backend_->try_lock(resource("dut"), me());
    FAIL() << "expected BackendError";
  } catch (const BackendError& error) {
    EXPECT_NE(std::string(error.what()).find(pid_file("dut").string() + " is a symbolic link"),
              std::string::npos)
        << error.what();
  }
  // The claim is dropped after the error: a fixed folder works again.
  std::filesystem::remove(pid_file("dut"));
  EXPECT_NE(backend_->try_lock(resource("dut"), me()), nullptr);
}

TEST_F(LockFolder, PythonHolderBlocksUsAndIsNamedByItsPid) {
  // Details left by our earlier holder must not be shown for the Python holder.
  backend_->try_lock(resource("dut"), me());
  auto python = python_lock("hold", pid_file("dut"));
  ASSERT_EQ(python->read_line(10s), "locked");
  EXPECT_EQ(backend_->try_lock(resource("dut"), me()), nullptr);
  const auto holder = backend_->holder_of("dut");
  ASSERT_TRUE(holder.has_value());
  EXPECT_EQ(holder->pid, python->pid());
  EXPECT_EQ(holder->hostname, "");
  python->write_line("");
  ASSERT_EQ(python->read_line(10s), "released");
  EXPECT_EQ(python->wait(), 0);
  // Python unlinked the file it locked; our cached descriptor must not lock the ghost.
  auto lock = backend_->try_lock(resource("dut"), me());
  ASSERT_NE(lock, nullptr);
  EXPECT_TRUE(is_flocked(pid_file("dut")));
}

TEST_F(LockFolder, WeBlockThePythonPackage) {
  auto lock = backend_->try_lock(resource("dut"), me());
  ASSERT_NE(lock, nullptr);
  auto python = python_lock("try", pid_file("dut"));
  EXPECT_EQ(python->read_line(10s), "busy");
  EXPECT_EQ(python->wait(), 3);
  lock->release();
  auto again = python_lock("try", pid_file("dut"));
  EXPECT_EQ(again->read_line(10s), "locked");
  EXPECT_EQ(again->wait(), 0);
}

TEST_F(LockFolder, WaitForChangeReturnsWhenAnotherProcessReleases) {
  auto python = python_lock("hold", pid_file("dut"));
  ASSERT_EQ(python->read_line(10s), "locked");
  ASSERT_EQ(backend_->try_lock(resource("dut"), me()), nullptr);
  std::unique_ptr<HeldLock> lock;
  std::thread releaser([&] { python->write_line(""); });
  // Join on every path out, so that a failing expectation below cannot end in std::terminate.
  const std::unique_ptr<std::thread, void (*)(std::thread*)> join(&releaser, [](std::thread* t) {
    if (t->joinable()) t->join();
  });
  const auto guard = std::chrono::steady_clock::now() + 30s;
  while (!lock && std::chrono::steady_clock::now() < guard) {
    backend_->wait_for_change(guard);
    lock = backend_->try_lock(resource("dut"), me());
  }
  releaser.join();
  EXPECT_NE(lock, nullptr);
}

// Inotify instances this process has open (closing one that watched something waits for a kernel
// grace period, 10-25 ms on the reference machine).
int open_inotify_instances() {
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    std::error_code error;
    const auto target = std::filesystem::read_symlink(entry.path(), error);
    if (!error && target.string() == "anon_inode:inotify") ++count;
  }
  return count;
}

TEST_F(LockFolder, UncontendedLockNeverMakesAWatcher) {
  const int before = open_inotify_instances();
  auto backend = make_lock_folder_backend(dir_.path());
  auto ticket = backend->enqueue({"dut"}, me());
  EXPECT_TRUE(ticket->wanted_by_earlier_waiters().empty());
  auto lock = backend->try_lock(resource("dut"), me());
  ASSERT_NE(lock, nullptr);
  lock->release();
  ticket.reset();
  EXPECT_EQ(open_inotify_instances(), before);
  // The first wait makes it, once per backend.
  backend->wait_for_change(std::chrono::steady_clock::now());
  backend->wait_for_change(std::chrono::steady_clock::now());
  EXPECT_EQ(open_inotify_instances(), before + 1);
  backend.reset();
  EXPECT_EQ(open_inotify_instances(), before);
}

// Two queues on one folder stand for two processes; each ticket remembers its last look.
TEST_F(LockFolder, ReleaseWakesOnlyTheHeadOfTheQueueForThatDevice) {
  using folder_backend::FolderChange;
  using folder_backend::TicketQueue;
  const auto queue_dir = dir_.path() / ".lockable-queue";
  TicketQueue head_process(queue_dir, nullptr);
  TicketQueue later_process(queue_dir, nullptr);
  auto head = head_process.enqueue({"a", "b"}, HolderInfo{});
  auto later = later_process.enqueue({"a", "c"}, HolderInfo{});
  head_process.publish_own_tickets();
  later_process.publish_own_tickets();
  EXPECT_TRUE(head->wanted_by_earlier_waiters().empty());
  EXPECT_EQ(later->wanted_by_earlier_waiters(),
            (std::vector<std::vector<std::string>>{{"a", "b"}}));
  const auto released = [](const std::string& id) {
    return FolderChange{false, false, id + ".pid"};
  };
  EXPECT_TRUE(head_process.may_wake(released("a")));
  EXPECT_FALSE(later_process.may_wake(released("a")));  // owed to the head: stays asleep
  EXPECT_FALSE(head_process.may_wake(released("c")));   // nobody there wants it
  EXPECT_TRUE(later_process.may_wake(released("c")));
  EXPECT_FALSE(later_process.may_wake(released("b")));
  // A newcomer holds nobody back: nobody wakes for its ticket.
  auto newcomer = head_process.enqueue({"a"}, HolderInfo{});
  std::string newcomer_name;
  head_process.publish_own_tickets();
  for (const auto& entry : std::filesystem::directory_iterator(queue_dir)) {
    newcomer_name = std::max(newcomer_name, entry.path().filename().string());
  }
  EXPECT_FALSE(later_process.may_wake(FolderChange{true, false, newcomer_name}));
  // The head leaves: the later waiter moves up for "a" and wakes.
  std::string head_name;
  for (const auto& entry : std::filesystem::directory_iterator(queue_dir)) {
    const auto name = entry.path().filename().string();
    if (head_name.empty() || name < head_name) head_name = name;
  }
  EXPECT_TRUE(later_process.may_wake(FolderChange{true, true, head_name}));
  head.reset();
  EXPECT_TRUE(later->wanted_by_earlier_waiters().empty());
  EXPECT_TRUE(later_process.may_wake(released("a")));
}

// True once a ticket of process `pid` is in the queue folder of `folder`.
bool queued_in(const std::filesystem::path& folder, pid_t pid) {
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(folder / ".lockable-queue", error)) {
    const auto name = entry.path().filename().string();
    if (name.find("-" + std::to_string(pid) + "-") != std::string::npos && name.size() > 7 &&
        name.compare(name.size() - 7, 7, ".ticket") == 0) {
      return true;
    }
  }
  return false;
}

TEST_F(LockFolder, MixedFolderWithWaitersOfAnOlderVersionStaysFifoAndLive) {
  // Waiters of this version sleep through changes that cannot serve them (targeted wake-ups);
  // waiters of an older version (old_protocol_waiter.py: the same tickets and pid files, waking
  // on every change) share the queue with them. Arrival order is made deterministic by starting
  // each waiter once the previous one is queued; the ledger is the grant order.
  const auto resources = dir_.path() / "resources.json";
  const auto ledger = dir_.path() / "ledger.txt";
  const auto folder = dir_.path() / "locks";
  test::write_file(resources, R"([{"id": "dut-1", "online": true, "hostname": "test-host"}])");
  const std::string old_waiter =
      (std::filesystem::path(LOCKABLE_PYTHON_PID_LOCK).parent_path() / "old_protocol_waiter.py")
          .string();
  auto holder = std::make_unique<Child>(std::vector<std::string>{
      LOCKABLE_TEST_HELPER, "hold", resources.string(), folder.string(), "id=dut-1"});
  ASSERT_EQ(holder->read_line(60s), "locked dut-1");
  const std::vector<std::string> names{"new-1", "old-2", "new-3", "old-4", "new-5"};
  std::vector<std::unique_ptr<Child>> waiters;
  for (const auto& name : names) {
    if (name.rfind("old", 0) == 0) {
      waiters.push_back(std::make_unique<Child>(std::vector<std::string>{
          LOCKABLE_PYTHON, old_waiter, folder.string(), ledger.string(), name, "20", "dut-1"}));
      ASSERT_EQ(waiters.back()->read_line(60s), "queued") << waiters.back()->output();
    } else {
      waiters.push_back(std::make_unique<Child>(
          std::vector<std::string>{LOCKABLE_TEST_HELPER, "ledger", resources.string(),
                                   folder.string(), ledger.string(), name, "20", "id=dut-1"}));
      const auto guard = std::chrono::steady_clock::now() + 60s;
      while (!queued_in(folder, waiters.back()->pid()) &&
             std::chrono::steady_clock::now() < guard) {
        std::this_thread::sleep_for(2ms);
      }
      ASSERT_TRUE(queued_in(folder, waiters.back()->pid())) << name << " never queued";
    }
  }
  holder->write_line("");
  EXPECT_EQ(holder->read_line(60s), "released");
  for (std::size_t i = 0; i < waiters.size(); ++i) {
    EXPECT_EQ(waiters[i]->read_line(60s), "done") << names[i] << ": " << waiters[i]->output();
    EXPECT_EQ(waiters[i]->wait(), 0) << names[i];
  }
  std::vector<std::string> order;
  std::ifstream in(ledger);
  for (std::string line; std::getline(in, line);) order.push_back(line);
  EXPECT_EQ(order, names);
}

// The voluntary context switches of every thread of process `pid`: how often it went to sleep,
// which for a waiting process is how often something woke it.
long voluntary_switches(pid_t pid) {
  long total = 0;
  std::error_code error;
  const auto tasks = std::filesystem::path("/proc") / std::to_string(pid) / "task";
  for (const auto& task : std::filesystem::directory_iterator(tasks, error)) {
    std::ifstream in(task.path() / "status");
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("voluntary_ctxt_switches:", 0) == 0) {
        total += std::stol(line.substr(line.find(':') + 1));
      }
    }
  }
  return total;
}

// Waits until process `pid` has a ticket in the queue of `folder`, and it sleeps.
void wait_until_queued(const std::filesystem::path& folder, const Child& child,
                       const std::string& name) {
  const auto guard = std::chrono::steady_clock::now() + 60s;
  while (!queued_in(folder, child.pid()) && std::chrono::steady_clock::now() < guard) {
    std::this_thread::sleep_for(2ms);
  }
  ASSERT_TRUE(queued_in(folder, child.pid())) << name << " never queued";
}

TEST_F(LockFolder, ReleasesWakeOnlyTheWaiterAtTheHeadNotTheOnesBehindIt) {
  // Six waiters queue for dut-1, which a helper holds; meanwhile another device of the folder is
  // locked and released 100 times. Only the head of the queue watches the pid files (it is the
  // one that could take a device that frees up); the five behind it each watch the ticket of the
  // waiter ahead, so the kernel does not wake them for any of those releases: they sleep but for
  // the safety tick (250 ms) and their ticket's refresh. Before, every waiter woke on every
  // release (and read the event, to find it was not for it).
  const auto resources = dir_.path() / "resources.json";
  const auto ledger = dir_.path() / "ledger.txt";
  const auto folder = dir_.path() / "locks";
  test::write_file(resources, R"([{"id": "dut-1", "online": true, "hostname": "test-host"},
                                  {"id": "dut-2", "online": true, "hostname": "test-host"}])");
  auto holder = std::make_unique<Child>(std::vector<std::string>{
      LOCKABLE_TEST_HELPER, "hold", resources.string(), folder.string(), "id=dut-1"});
  ASSERT_EQ(holder->read_line(60s), "locked dut-1");
  constexpr int kWaiters = 6;
  std::vector<std::unique_ptr<Child>> waiters;
  for (int i = 0; i < kWaiters; ++i) {
    const auto name = "waiter-" + std::to_string(i);
    waiters.push_back(std::make_unique<Child>(
        std::vector<std::string>{LOCKABLE_TEST_HELPER, "ledger", resources.string(),
                                 folder.string(), ledger.string(), name, "0", "id=dut-1"}));
    wait_until_queued(folder, *waiters.back(), name);
  }
  std::this_thread::sleep_for(100ms);  // each has looked at the queue and sleeps
  std::vector<long> before;
  for (const auto& waiter : waiters) before.push_back(voluntary_switches(waiter->pid()));
  auto other = make_lock_folder_backend(folder);
  constexpr int kReleases = 100;
  for (int i = 0; i < kReleases; ++i) {
    auto lock = other->try_lock(resource("dut-2"), me());
    ASSERT_NE(lock, nullptr);
    lock->release();
    std::this_thread::sleep_for(3ms);  // one release at a time: each would be a wake-up
  }
  std::vector<long> woken;
  for (std::size_t i = 0; i < waiters.size(); ++i) {
    woken.push_back(voluntary_switches(waiters[i]->pid()) - before[i]);
  }
  holder->write_line("");
  EXPECT_EQ(holder->read_line(60s), "released");
  for (std::size_t i = 0; i < waiters.size(); ++i) {
    EXPECT_EQ(waiters[i]->read_line(60s), "done") << i << ": " << waiters[i]->output();
    EXPECT_EQ(waiters[i]->wait(), 0) << i;
  }
  // Generous: the safety tick and the refresh wake each a few times during the releases.
  for (std::size_t i = 1; i < waiters.size(); ++i) {
    EXPECT_LT(woken[i], kReleases / 3) << "waiter " << i << " behind the head woke " << woken[i]
                                       << " times for " << kReleases << " releases";
  }
  std::cout << "wake-ups during " << kReleases << " releases, head first:";
  for (const auto count : woken) std::cout << " " << count;
  std::cout << "\n";
}

// Fails the test when two holds of one device overlap, or a hold never ended; returns the holds
// per pid.
std::map<std::string, int> check_ledgers(const std::filesystem::path& dir,
                                         const std::vector<std::string>& ids) {
  std::map<std::string, int> holds_of;
  for (const auto& id : ids) {
    auto ledger = test::read_hold_ledger(dir, id);
    EXPECT_TRUE(ledger.open.empty()) << id << ": a hold never ended";
    for (const auto& hold : ledger.holds) ++holds_of[hold.pid];
    test::expect_no_overlapping_holds(std::move(ledger.holds), id);
  }
  return holds_of;
}

TEST_F(LockFolder, MixedFolderOfNewOldAndPythonLockersIsSafeAndLive) {
  // Waiters of this version (targeted wake-ups: only the head watches the pid files, the others
  // a ticket each), waiters of an older version (old_protocol_waiter.py: the same tickets, waking
  // on any change) and lockers of the Python package's protocol (no ticket, polling) take and
  // release the same two devices many times. Neither an older waiter's release nor a Python
  // release signals anything but the pid file: the head must notice them all the same.
  const std::vector<std::string> ids{"dut-1", "dut-2"};
  const auto resources = dir_.path() / "resources.json";
  const auto ledgers = dir_.path() / "ledgers";
  const auto folder = dir_.path() / "locks";
  std::filesystem::create_directories(ledgers);
  std::filesystem::create_directories(folder);
  test::write_file(resources, R"([{"id": "dut-1", "online": true, "hostname": "test-host"},
                                  {"id": "dut-2", "online": true, "hostname": "test-host"}])");
  const std::string old_waiter =
      (std::filesystem::path(LOCKABLE_PYTHON_PID_LOCK).parent_path() / "old_protocol_waiter.py")
          .string();
  constexpr int kNew = 4;
  constexpr int kNewRounds = 40;
  constexpr int kOld = 2;
  constexpr int kOldRounds = 15;
  constexpr int kPythonRounds = 30;
  std::vector<std::unique_ptr<Child>> children;
  for (int i = 0; i < kNew; ++i) {
    children.push_back(std::make_unique<Child>(std::vector<std::string>{
        LOCKABLE_TEST_HELPER, "stress", resources.string(), folder.string(), ledgers.string(),
        std::to_string(kNewRounds), std::to_string(i + 1)}));
  }
  for (int i = 0; i < kOld; ++i) {
    children.push_back(std::make_unique<Child>(std::vector<std::string>{
        "/usr/bin/env", "OLD_WAITER_ROUNDS=" + std::to_string(kOldRounds),
        "OLD_WAITER_LEDGER_DIR=" + ledgers.string(), LOCKABLE_PYTHON, old_waiter, folder.string(),
        (dir_.path() / "old-ledger.txt").string(), "old-" + std::to_string(i), "1", "dut-1",
        "dut-2"}));
  }
  for (const auto& id : ids) {
    children.push_back(std::make_unique<Child>(std::vector<std::string>{
        LOCKABLE_PYTHON, LOCKABLE_PYTHON_PID_LOCK, "ledger", (folder / (id + ".pid")).string(),
        std::to_string(kPythonRounds), (ledgers / (id + ".ledger")).string()}));
  }
  for (std::size_t i = 0; i < children.size(); ++i) {
    std::optional<std::string> line;
    do {
      line = children[i]->read_line(120s);
    } while (line == "queued");
    EXPECT_EQ(line, "done") << "child " << i << ": " << children[i]->output();
    EXPECT_EQ(children[i]->wait(), 0) << "child " << i;
  }
  const auto holds_of = check_ledgers(ledgers, ids);
  for (std::size_t i = 0; i < children.size(); ++i) {
    const int expected = i < kNew ? kNewRounds : i < kNew + kOld ? kOldRounds : kPythonRounds;
    const auto it = holds_of.find(std::to_string(children[i]->pid()));
    EXPECT_EQ(it == holds_of.end() ? 0 : it->second, expected) << "child " << i;
  }
}

TEST_F(LockFolder, PythonReleasingByUnlinkNeverLetsBothIn) {
  // The Python package releases by close() then unlink(): every window between those two and our
  // flock / re-check / open must end in a clean retry, never in an error or a shared device.
  auto python = std::make_unique<Child>(std::vector<std::string>{
      LOCKABLE_PYTHON, LOCKABLE_PYTHON_PID_LOCK, "churn", pid_file("dut").string(), "400"});
  const auto mine = dir_.path() / "dut.pid.cpp-holds";
  const auto theirs = dir_.path() / "dut.pid.py-holds";
  int held = 0;
  int overlaps = 0;
  std::optional<std::string> last_line;
  const auto guard = std::chrono::steady_clock::now() + 60s;
  while (!last_line && std::chrono::steady_clock::now() < guard) {
    last_line = python->read_line(10ms);
    auto lock = backend_->try_lock(resource("dut"), me());
    if (!lock) continue;
    test::write_file(mine, "");
    if (std::filesystem::exists(theirs)) ++overlaps;
    std::filesystem::remove(mine);
    lock->release();
    ++held;
  }
  EXPECT_EQ(last_line, "done");
  EXPECT_EQ(python->wait(), 0) << python->output();
  EXPECT_EQ(overlaps, 0);
  EXPECT_GT(held, 0);
}

TEST_F(LockFolder, QueueListsEarlierLiveWaitersOnly) {
  auto first = backend_->enqueue({"a", "b"}, me());
  auto second = backend_->enqueue({"b"}, me());
  auto third = backend_->enqueue({"c"}, me());
  // Tickets become visible when their waiters first wait.
  backend_->wait_for_change(std::chrono::steady_clock::now());
  using Wanted = std::vector<std::vector<std::string>>;
  EXPECT_EQ(first->wanted_by_earlier_waiters(), Wanted{});
  EXPECT_EQ(third->wanted_by_earlier_waiters(), (Wanted{{"a", "b"}, {"b"}}));
  second->update_wanted({"x"});
  EXPECT_EQ(third->wanted_by_earlier_waiters(), (Wanted{{"a", "b"}, {"x"}}));
  first.reset();
  EXPECT_EQ(third->wanted_by_earlier_waiters(), (Wanted{{"x"}}));
}

TEST_F(LockFolder, TicketPublishedRightAfterAnEmptyReadIsSeen) {
  // A read of an empty queue folder is remembered by the folder's modification time, so that an
  // uncontended lock skips the read; a ticket published right after must still be seen.
  auto other = make_lock_folder_backend(dir_.path());
  auto earlier = other->enqueue({"a"}, me());   // not yet published
  auto later = backend_->enqueue({"b"}, me());  // arrives after `earlier`
  std::this_thread::sleep_for(100ms);           // let the folder age past the cache's quiet age
  EXPECT_TRUE(later->wanted_by_earlier_waiters().empty());
  EXPECT_TRUE(later->wanted_by_earlier_waiters().empty());   // answered from the cache
  other->wait_for_change(std::chrono::steady_clock::now());  // publishes `earlier`
  EXPECT_EQ(later->wanted_by_earlier_waiters(), (std::vector<std::vector<std::string>>{{"a"}}));
}

TEST_F(LockFolder, TicketIsWrittenOnlyOnceItsWaiterWaits) {
  const auto queue = dir_.path() / ".lockable-queue";
  auto ticket = backend_->enqueue({"a"}, me());
  EXPECT_TRUE(std::filesystem::is_empty(queue));
  backend_->wait_for_change(std::chrono::steady_clock::now());
  EXPECT_FALSE(std::filesystem::is_empty(queue));
  ticket.reset();
  EXPECT_TRUE(std::filesystem::is_empty(queue));
}

TEST_F(LockFolder, TicketOfADeadWaiterIsRemoved) {
  const auto queue = dir_.path() / ".lockable-queue";
  // A ticket nobody holds a lock on: its waiter died.
  test::write_file(queue / "00000000000000000001-1-0.ticket", R"(["a"])");
  auto mine = backend_->enqueue({"a"}, me());
  backend_->wait_for_change(std::chrono::steady_clock::now());
  using Wanted = std::vector<std::vector<std::string>>;
  EXPECT_EQ(mine->wanted_by_earlier_waiters(), Wanted{});
  EXPECT_FALSE(std::filesystem::exists(queue / "00000000000000000001-1-0.ticket"));
}

// ---- tickets with priorities, next to older versions' tickets (issue 17) ----------------------

// The ticket files in `queue`, oldest first.
std::vector<std::filesystem::path> tickets_in(const std::filesystem::path& queue) {
  std::vector<std::filesystem::path> tickets;
  for (const auto& entry : std::filesystem::directory_iterator(queue)) {
    if (entry.path().extension() == ".ticket") tickets.push_back(entry.path());
  }
  std::sort(tickets.begin(), tickets.end());
  return tickets;
}

// An older version's ticket: the ids alone, named `<arrival ns>-<pid>-0.ticket`, flock-ed by its
// (live) waiter: the returned descriptor, held open by the test.
int old_version_ticket(const std::filesystem::path& queue,
                       std::chrono::system_clock::time_point arrival, long pid,
                       const std::string& ids_json) {
  const auto nanos =
      std::chrono::duration_cast<std::chrono::nanoseconds>(arrival.time_since_epoch()).count();
  char name[64];
  std::snprintf(name, sizeof name, "%020lld-%ld-0.ticket", static_cast<long long>(nanos), pid);
  test::write_file(queue / name, ids_json);
  const int fd = ::open((queue / name).c_str(), O_RDONLY | O_CLOEXEC);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);
  return fd;
}

TEST_F(LockFolder, TicketCarriesItsWaiterAndOlderVersionsStillFindTheIds) {
  HolderInfo waiter = me();
  waiter.priority = 5;
  auto ticket = backend_->enqueue({"dut-1", "dut-2"}, waiter);
  backend_->wait_for_change(std::chrono::steady_clock::now());
  const auto files = tickets_in(dir_.path() / ".lockable-queue");
  ASSERT_EQ(files.size(), 1u);
  const Json json = Json::parse(read_text(files[0]));
  // How the previous version reads a ticket (ticket_queue.cpp before issue 17): an array, and
  // only its strings are ids.
  ASSERT_TRUE(json.is_array()) << json;
  std::vector<std::string> old_reading;
  for (const auto& element : json) {
    if (element.is_string()) old_reading.push_back(element.get<std::string>());
  }
  EXPECT_EQ(old_reading, (std::vector<std::string>{"dut-1", "dut-2"}));
  // The waiter's details follow the ids.
  ASSERT_TRUE(json.back().is_object()) << json;
  EXPECT_EQ(json.back().at("priority"), 5);
  EXPECT_EQ(json.back().at("pid"), static_cast<long>(::getpid()));
  EXPECT_EQ(json.back().at("hostname"), "test-host");
  EXPECT_EQ(json.back().at("requirements"), (Json{{"id", "dut"}}));
}

TEST_F(LockFolder, MixedFolderOlderVersionsTicketsCountAsPriorityZero) {
  const auto queue = dir_.path() / ".lockable-queue";
  const auto now = std::chrono::system_clock::now();
  // An older version's waiter (pid 4242 in its name) queued a second ago.
  const int old_fd = old_version_ticket(queue, now - 1s, 4242, R"(["old-dut"])");
  HolderInfo urgent_waiter = me();
  urgent_waiter.priority = 3;
  auto urgent = backend_->enqueue({"urgent-dut"}, urgent_waiter);
  auto plain = backend_->enqueue({"plain-dut"}, me());
  backend_->wait_for_change(std::chrono::steady_clock::now());
  using Wanted = std::vector<std::vector<std::string>>;
  EXPECT_EQ(urgent->wanted_by_earlier_waiters(), Wanted{}) << "priority 3 goes before 0";
  EXPECT_EQ(plain->wanted_by_earlier_waiters(), (Wanted{{"urgent-dut"}, {"old-dut"}}))
      << "the older version's waiter keeps its place among priority 0";

  const auto queued = make_lock_folder_observer(dir_.path())->queued();
  ASSERT_EQ(queued.size(), 3u);
  EXPECT_EQ(queued[0].waiter.pid, 4242);
  EXPECT_EQ(queued[0].waiter.priority, 0);
  EXPECT_EQ(queued[0].wanted, std::vector<std::string>{"old-dut"});
  EXPECT_LT(queued[0].waiter.since, now);
  EXPECT_EQ(queued[1].waiter.priority, 3);
  EXPECT_EQ(queued[1].wanted, std::vector<std::string>{"urgent-dut"});
  EXPECT_EQ(queued[2].waiter.priority, 0);
  EXPECT_EQ(queued[2].waiter.pid, static_cast<long>(::getpid()));
  ::close(old_fd);  // its waiter ends: the next reader sweeps the ticket
  EXPECT_EQ(plain->wanted_by_earlier_waiters(), (Wanted{{"urgent-dut"}}));
}

// ---- a Python holder in the middle of its release ----------------------------------------------

TEST_F(LockFolder, PythonHolderStoppedBetweenCloseAndUnlinkIsNeverJoined) {
  // The `pid` package releases by close() then unlink(). A holder descheduled between the two
  // leaves a free file naming its live pid: taking it would let that unlink remove our file while
  // the next locker creates a new one. However long the stop, we must not take it.
  auto python = python_lock("hold-stop", pid_file("dut"));
  ASSERT_EQ(python->read_line(10s), "locked");
  python->write_line("");
  ASSERT_EQ(python->read_line(10s), "closed");
  const auto stop_guard = std::chrono::steady_clock::now() + 10s;
  while (process_state(python->pid()) != 'T' && std::chrono::steady_clock::now() < stop_guard) {
    std::this_thread::sleep_for(1ms);
  }
  ASSERT_EQ(process_state(python->pid()), 'T');
  ASSERT_FALSE(is_flocked(pid_file("dut")));  // closed: only its pid still names it
  // Well past the 500 ms of patience the old code granted such a file.
  const auto until = std::chrono::steady_clock::now() + 1500ms;
  while (std::chrono::steady_clock::now() < until) {
    ASSERT_EQ(backend_->try_lock(resource("dut"), me()), nullptr);
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(backend_->holder_of("dut")->pid, python->pid());  // and status says who
  python->send_signal(SIGCONT);
  EXPECT_EQ(python->read_line(10s), "released");
  EXPECT_EQ(python->wait(), 0);
  // The unlink is done: we lock the file that replaces it, the one every other locker sees.
  auto lock = backend_->try_lock(resource("dut"), me());
  ASSERT_NE(lock, nullptr);
  EXPECT_TRUE(is_flocked(pid_file("dut")));
  EXPECT_FALSE(lock->lost());
}

// Sets the modification time of `path` to `seconds_ago` before now.
void age(const std::filesystem::path& path, int seconds_ago) {
  timespec times[2]{};
  ::clock_gettime(CLOCK_REALTIME, &times[0]);
  times[0].tv_sec -= seconds_ago;
  times[1] = times[0];
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
}

TEST_F(LockFolder, FileNamingAProcessStartedAfterItWasWrittenIsTaken) {
  // A stale file of a killed holder whose pid was reused by an unrelated, later process.
  test::write_file(pid_file("dut"), "");
  age(pid_file("dut"), 30);
  Child later({"/bin/sleep", "60"});
  test::write_file(pid_file("dut"), std::to_string(later.pid()) + "\n");
  age(pid_file("dut"), 30);
  auto lock = backend_->try_lock(resource("dut"), me());
  ASSERT_NE(lock, nullptr);
  EXPECT_EQ(read_text(pid_file("dut")), std::to_string(::getpid()) + "\n");
}

TEST_F(LockFolder, FileNamingALiveProcessThatStartedBeforeIsNeverTaken) {
  Child earlier({"/bin/sleep", "60"});
  std::this_thread::sleep_for(50ms);
  test::write_file(pid_file("dut"), std::to_string(earlier.pid()) + "\n");
  const auto until = std::chrono::steady_clock::now() + 1500ms;
  while (std::chrono::steady_clock::now() < until) {
    ASSERT_EQ(backend_->try_lock(resource("dut"), me()), nullptr);
    std::this_thread::sleep_for(50ms);
  }
  earlier.kill_now();  // now it names a dead process: free
  EXPECT_NE(backend_->try_lock(resource("dut"), me()), nullptr);
}

TEST_F(LockFolder, HolderNoticesItsFileWasRemovedAndWarnsOnRelease) {
  std::vector<std::string> warnings;
  auto backend = make_lock_folder_backend(
      dir_.path(), [&](const std::string& line) { warnings.push_back(line); });
  auto kept = backend->try_lock(resource("kept"), me());
  auto lock = backend->try_lock(resource("dut"), me());
  ASSERT_NE(lock, nullptr);
  EXPECT_FALSE(lock->lost());
  std::filesystem::remove(pid_file("dut"));
  EXPECT_TRUE(lock->lost());
  lock->release();
  kept->release();
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find(pid_file("dut").string() + " was removed or replaced"),
            std::string::npos)
      << warnings[0];
  // The next lock uses a new file at the path.
  auto again = backend->try_lock(resource("dut"), me());
  ASSERT_NE(again, nullptr);
  EXPECT_TRUE(is_flocked(pid_file("dut")));
}

TEST_F(LockFolder, HolderNoticesItsFileWasReplaced) {
  auto lock = backend_->try_lock(resource("dut"), me());
  ASSERT_NE(lock, nullptr);
  test::write_file(pid_file("dut"), "");  // rename() over it
  EXPECT_TRUE(lock->lost());
}

TEST_F(LockFolder, FolderWritableByEveryoneWithoutTheStickyBitIsWarnedAboutOnce) {
  const auto open = dir_.path() / "open";
  const auto sticky = dir_.path() / "sticky";
  std::filesystem::create_directory(open);
  std::filesystem::create_directory(sticky);
  ASSERT_EQ(::chmod(open.c_str(), 0777), 0);
  ASSERT_EQ(::chmod(sticky.c_str(), 01777), 0);
  std::vector<std::string> warnings;
  const auto log = [&](const std::string& line) { warnings.push_back(line); };
  make_lock_folder_backend(open, log);
  make_lock_folder_backend(open, log);
  make_lock_folder_backend(sticky, log);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("lock folder " + std::filesystem::canonical(open).string() +
                             " is writable by every account but not sticky"),
            std::string::npos)
      << warnings[0];
  EXPECT_NE(warnings[0].find("chmod +t " + std::filesystem::canonical(open).string()),
            std::string::npos)
      << warnings[0];
}

TEST_F(LockFolder, SymlinkedQueueFolderOrTicketIsNeverFollowed) {
  // Planted by another account: the queue folder pointing elsewhere, a ticket pointing at a
  // file of ours. Nothing outside the lock folder may be created, written or removed.
  const auto outside = dir_.path() / "outside";
  std::filesystem::create_directory(outside);
  test::write_file(outside / "precious", "keep me");
  // Named and left like a dead waiter's ticket: a sweep through the link would remove it.
  test::write_file(outside / "00000000000000000001-1-1.ticket", "[\"dut\"]");
  // And one like a live waiter's, flock-ed: read through the link, it would hold us back.
  const auto live_ticket = outside / "00000000000000000002-1-1.ticket";
  test::write_file(live_ticket, "[\"dut\"]");
  const posix::UniqueFd live(::open(live_ticket.c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_EQ(::flock(live.get(), LOCK_EX), 0);
  const std::vector<std::string> planted{"00000000000000000001-1-1.ticket",
                                         "00000000000000000002-1-1.ticket", "precious"};
  const auto outside_names = [&] {
    std::vector<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(outside)) {
      names.push_back(entry.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  };
  const auto folder = dir_.path() / "locks";
  std::filesystem::create_directory(folder);
  std::filesystem::create_directory_symlink(outside, folder / ".lockable-queue");
  std::vector<std::string> log;
  auto backend =
      make_lock_folder_backend(folder, [&](const std::string& line) { log.push_back(line); });
  auto held = backend->try_lock(resource("dut"), me());
  ASSERT_NE(held, nullptr);
  {
    auto ticket = backend->enqueue({"dut"}, me());
    backend->wait_for_change(std::chrono::steady_clock::now() + 10ms);  // publishes the ticket
    EXPECT_EQ(outside_names(), planted) << "a ticket was created through the link";
    // Reads the queue, and sweeps dead waiters' tickets.
    EXPECT_TRUE(ticket->wanted_by_earlier_waiters().empty())
        << "the queue was read through the link";
    EXPECT_TRUE(backend->queued().empty()) << "status read the queue through the link";
  }
  held->release();
  // Said once, naming the fix; the watcher, which cannot watch there, names the same fix.
  const auto queue_dir = (folder / ".lockable-queue").string();
  const auto said = std::count_if(log.begin(), log.end(), [&](const std::string& line) {
    return line.find("cannot queue in " + queue_dir + " (a symbolic link, not a folder)") !=
               std::string::npos &&
           line.find("remove " + queue_dir) != std::string::npos;
  });
  EXPECT_EQ(said, 1) << ::testing::PrintToString(log);
  for (const auto& line : log)
    EXPECT_NE(line.find("remove " + queue_dir), std::string::npos) << line;
  // A real queue folder with a ticket that is a symlink to our file.
  std::filesystem::remove(folder / ".lockable-queue");
  std::filesystem::create_directory(folder / ".lockable-queue");
  std::filesystem::create_symlink(outside / "precious", folder / ".lockable-queue" / "1.ticket");
  auto again = make_lock_folder_backend(folder, [](const std::string&) {});
  {
    auto ticket = again->enqueue({"dut"}, me());
    again->wait_for_change(std::chrono::steady_clock::now() + 10ms);
    EXPECT_TRUE(ticket->wanted_by_earlier_waiters().empty());
  }
  EXPECT_EQ(outside_names(), planted);
  EXPECT_EQ(read_text(outside / "precious"), "keep me");
}

// Resources checked by resources.json's loader never get here; a custom provider's might.
TEST_F(LockFolder, IdsThatWouldEscapeTheLockFolderAreRefusedNamingTheIdAndTheFix) {
  const auto folder = dir_.path() / "locks";
  auto backend = make_lock_folder_backend(folder);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"../escape", "contains \"/\""},
      {"..", "starts with \".\""},
      {"a/b", "contains \"/\""},
      {"a\\b", "contains \"\\\""},
      {std::string("nul\0byte", 8), "contains a NUL byte"},
      {".hidden", "starts with \".\""},
      {"", "is empty"},
      {std::string(201, 'x'), "is 201 bytes long, more than 200"},
  };
  for (const auto& [id, why] : cases) {
    try {
      backend->try_lock(resource(id), me());
      ADD_FAILURE() << "locked " << id;
    } catch (const BackendError& error) {
      const std::string message = error.what();
      EXPECT_NE(message.find(why), std::string::npos) << message;
      EXPECT_NE(message.find("fix the id in the resources"), std::string::npos) << message;
    }
  }
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir_.path())) {
    // The fixture's own backend queues in dir_.
    if (entry.path().filename() != ".lockable-queue") names.push_back(entry.path().filename());
  }
  EXPECT_EQ(names, std::vector<std::string>{"locks"}) << "nothing created outside the folder";
  for (const auto& entry : std::filesystem::directory_iterator(folder)) {
    EXPECT_EQ(entry.path().filename(), ".lockable-queue") << entry.path();
  }
}

// Receives a lock's loss; waits for it with a failure guard only.
class LossCatcher {
 public:
  LockLossHandler handler() {
    return [this](const std::string& reason) {
      std::lock_guard<std::mutex> guard(mutex_);
      reasons_.push_back(reason);
      changed_.notify_all();
    };
  }
  // The first reason, or "" when none came within the guard.
  std::string wait() {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait_for(lock, 60s, [this] { return !reasons_.empty(); });
    return reasons_.empty() ? "" : reasons_.front();
  }
  std::size_t count() {
    std::lock_guard<std::mutex> guard(mutex_);
    return reasons_.size();
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::string> reasons_;
};

TEST_F(LockFolder, HolderIsToldWhenItsFileIsRemovedAndStatusShowsItUntilRelease) {
  auto lock = backend_->try_lock(resource("dut"), me());
  ASSERT_NE(lock, nullptr);
  LossCatcher loss;
  lock->on_lock_loss(loss.handler());
  auto observer = make_lock_folder_observer(dir_.path());
  EXPECT_EQ(observer->lost_hold("dut"), std::nullopt);
  std::filesystem::remove(pid_file("dut"));
  const std::string reason = loss.wait();
  EXPECT_NE(
      reason.find("lock file " + pid_file("dut").string() + " of dut was removed or replaced"),
      std::string::npos)
      << reason;
  EXPECT_TRUE(lock->lost());
  // Written before the handler runs: another process's `lockable status` sees it.
  const auto note = observer->lost_hold("dut");
  ASSERT_TRUE(note.has_value());
  EXPECT_NE(note->find("pid " + std::to_string(::getpid())), std::string::npos) << *note;
  EXPECT_NE(note->find("removed or replaced"), std::string::npos) << *note;
  lock->release();
  EXPECT_EQ(observer->lost_hold("dut"), std::nullopt);
  EXPECT_FALSE(std::filesystem::exists(dir_.path() / "dut.pid.lost"));
  EXPECT_EQ(loss.count(), 1u);
}

// The voluntary context switches of this process's held-file checker thread, or -1 when there
// is none (found by name in /proc/self/task).
long checker_thread_switches() {
  std::error_code error;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task", error)) {
    if (read_text(task.path() / "comm") != std::string(folder_backend::kCheckerThreadName) + "\n") {
      continue;
    }
    std::ifstream status(task.path() / "status");
    std::string line;
    while (std::getline(status, line)) {
      if (line.rfind("voluntary_ctxt_switches:", 0) == 0) return std::stol(line.substr(24));
    }
  }
  return -1;
}

// A process between locks (a test program between suites, a benchmark loop) must not pay for
// the checker: its thread sleeps until the next lock instead of waking every interval.
TEST_F(LockFolder, HeldFileCheckerSleepsWhileNothingIsHeld) {
  auto lock = backend_->try_lock(resource("dut"), me());
  ASSERT_NE(lock, nullptr);
  std::this_thread::sleep_for(folder_backend::kHeldFileCheckInterval * 3);  // a check or two
  lock->release();
  std::this_thread::sleep_for(folder_backend::kHeldFileCheckInterval * 2);  // the last check ends
  const long before = checker_thread_switches();
  ASSERT_GE(before, 0) << "no thread named " << folder_backend::kCheckerThreadName;
  std::this_thread::sleep_for(folder_backend::kHeldFileCheckInterval * 10);
  // The old checker woke ten times here; one spurious wake-up of a condition variable is allowed.
  EXPECT_LE(checker_thread_switches() - before, 1);
  // And it still checks the next lock.
  auto next = backend_->try_lock(resource("dut"), me());
  ASSERT_NE(next, nullptr);
  LossCatcher loss;
  next->on_lock_loss(loss.handler());
  std::filesystem::remove(pid_file("dut"));
  EXPECT_NE(loss.wait().find("removed or replaced"), std::string::npos);
}

TEST_F(LockFolder, HolderIsToldWhenItsFileIsReplaced) {
  auto lock = backend_->try_lock(resource("dut"), me());
  ASSERT_NE(lock, nullptr);
  LossCatcher loss;
  lock->on_lock_loss(loss.handler());
  test::write_file(pid_file("dut"), "");  // rename() over it
  EXPECT_NE(loss.wait().find("removed or replaced"), std::string::npos);
  // Another process can lock the new file: exactly the double use the loss reports.
  EXPECT_FALSE(is_flocked(pid_file("dut")));
}

TEST_F(LockFolder, HolderIsToldWhenTheWholeLockFolderIsRemoved) {
  const auto folder = dir_.path() / "locks";
  auto lock = make_lock_folder_backend(folder)->try_lock(resource("dut"), me());
  ASSERT_NE(lock, nullptr);
  LossCatcher loss;
  lock->on_lock_loss(loss.handler());
  std::filesystem::remove_all(folder);  // rm -rf
  EXPECT_NE(loss.wait().find("removed or replaced"), std::string::npos);
  // The next locker makes the folder again; the note follows once it exists.
  auto next = make_lock_folder_backend(folder);
  auto observer = make_lock_folder_observer(folder);
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (!observer->lost_hold("dut") && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(observer->lost_hold("dut").has_value());
  lock->release();
  EXPECT_EQ(observer->lost_hold("dut"), std::nullopt);
}

TEST_F(LockFolder, NoteOfAHolderThatEndedIsIgnored) {
  test::write_file(dir_.path() / "dut.pid.lost",
                   R"({"pid": 2147483646, "hostname": "h", "alloc_id": "x", "reason": "gone"})");
  EXPECT_EQ(make_lock_folder_observer(dir_.path())->lost_hold("dut"), std::nullopt);
}

// ---- files that are not regular files -----------------------------------------------------------

TEST_F(LockFolder, DirectoryAtTheLockFileIsUnusableAndSaysRemoveIt) {
  std::filesystem::create_directory(pid_file("dut"));
  try {
    backend_->try_lock(resource("dut"), me());
    FAIL() << "expected ResourceUnusableError";
  } catch (const ResourceUnusableError& error) {
    EXPECT_EQ(error.resource_id(), "dut");
    const std::string what = error.what();
    EXPECT_NE(what.find(pid_file("dut").string() + " is a directory"), std::string::npos) << what;
    EXPECT_NE(what.find("remove it"), std::string::npos) << what;
    EXPECT_EQ(what.find("writable"), std::string::npos) << what;
  }
}

// ---- the queue folder ---------------------------------------------------------------------------

TEST_F(LockFolder, QueueFolderRemovedWhileStartingIsMadeAgain) {
  // A temp cleaner (here a tight rmdir loop) removing .lockable-queue between its mkdir and the
  // inotify watch.
  const auto queue = dir_.path() / ".lockable-queue";
  std::atomic<bool> stop{false};
  std::thread cleaner([&] {
    while (!stop) ::rmdir(queue.c_str());
  });
  int failures = 0;
  std::string last_error;
  for (int i = 0; i < 100; ++i) {
    try {
      auto backend = make_lock_folder_backend(dir_.path());
      auto lock = backend->try_lock(resource("dut"), me());
      if (!lock) ++failures;
    } catch (const std::exception& error) {
      ++failures;
      last_error = error.what();
    }
  }
  stop = true;
  cleaner.join();
  EXPECT_EQ(failures, 0) << last_error;
}

TEST_F(LockFolder, EachWaiterPublishesOnlyItsOwnTicket) {
  const auto queue = dir_.path() / ".lockable-queue";
  auto mine = backend_->enqueue({"a"}, me());  // this thread's, not yet waiting
  std::size_t seen_by_other = 0;
  std::thread other([&] {
    auto theirs = backend_->enqueue({"b"}, me());
    backend_->wait_for_change(std::chrono::steady_clock::now());
    seen_by_other = static_cast<std::size_t>(std::distance(
        std::filesystem::directory_iterator(queue), std::filesystem::directory_iterator()));
  });
  other.join();
  EXPECT_EQ(seen_by_other, 1u);  // only the other thread's ticket
  EXPECT_TRUE(std::filesystem::is_empty(queue));
  backend_->wait_for_change(std::chrono::steady_clock::now());
  EXPECT_FALSE(std::filesystem::is_empty(queue));
}

TEST_F(LockFolder, TicketErrorReachesTheThreadThatOwnsTheTicket) {
  const auto queue = dir_.path() / ".lockable-queue";
  auto mine = backend_->enqueue({"a"}, me());  // this thread's, not yet published
  std::filesystem::remove(queue);
  test::write_file(queue, "not a folder");  // no ticket can be written now
  std::string other_error;
  std::thread other([&] {
    try {
      backend_->wait_for_change(std::chrono::steady_clock::now());
    } catch (const std::exception& error) {
      other_error = error.what();
    }
  });
  other.join();
  EXPECT_EQ(other_error, "");
  EXPECT_THROW(backend_->wait_for_change(std::chrono::steady_clock::now()), BackendError);
}

TEST_F(LockFolder, StaleTicketOfAStoppedWaiterIsIgnoredUntilTouchedAgain) {
  const auto queue = dir_.path() / ".lockable-queue";
  auto earlier = backend_->enqueue({"a"}, me());
  auto later = backend_->enqueue({"b"}, me());
  backend_->wait_for_change(std::chrono::steady_clock::now());
  using Wanted = std::vector<std::vector<std::string>>;
  // As if `earlier`'s waiter had been stopped for a minute.
  std::filesystem::path earlier_file;
  for (const auto& entry : std::filesystem::directory_iterator(queue)) {
    if (earlier_file.empty() || entry.path() < earlier_file) earlier_file = entry.path();
  }
  age(earlier_file, 60);
  auto newcomer = backend_->enqueue({"a"}, me());
  EXPECT_EQ(newcomer->wanted_by_earlier_waiters(), (Wanted{{"b"}}));
  // Its waiter runs again: its next wait touches the ticket (at most once a second).
  std::this_thread::sleep_for(1100ms);
  backend_->wait_for_change(std::chrono::steady_clock::now());
  EXPECT_EQ(newcomer->wanted_by_earlier_waiters(), (Wanted{{"a"}, {"b"}}));
}

// ---- a read-only observer -----------------------------------------------------------------------

TEST_F(LockFolder, ObserverOfAMissingFolderCreatesNothing) {
  const auto missing = dir_.path() / "missing";
  auto observer = make_lock_folder_observer(missing);
  EXPECT_FALSE(observer->holder_of("dut").has_value());
  EXPECT_THROW(observer->try_lock(resource("dut"), me()), BackendError);
  EXPECT_FALSE(std::filesystem::exists(missing));
}

TEST_F(LockFolder, ObserverSeesHoldersAndWritesNothing) {
  auto lock = backend_->try_lock(resource("dut"), me());
  std::vector<std::string> before;
  for (const auto& entry : std::filesystem::directory_iterator(dir_.path())) {
    before.push_back(entry.path().filename().string());
  }
  auto observer = make_lock_folder_observer(dir_.path());
  const auto holder = observer->holder_of("dut");
  ASSERT_TRUE(holder.has_value());
  EXPECT_EQ(holder->alloc_id, "alloc-1");
  EXPECT_FALSE(observer->holder_of("other").has_value());
  std::vector<std::string> after;
  for (const auto& entry : std::filesystem::directory_iterator(dir_.path())) {
    after.push_back(entry.path().filename().string());
  }
  std::sort(before.begin(), before.end());
  std::sort(after.begin(), after.end());
  EXPECT_EQ(before, after);
}

}  // namespace
}  // namespace lockable
