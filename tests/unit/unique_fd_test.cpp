// The one descriptor owner (src/posix/unique_fd.hpp) used by the lock folder and the resources
// file provider: it closes exactly what it owns, once.
#include "posix/unique_fd.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <utility>

namespace {

using lockable::posix::UniqueFd;

bool is_open(int fd) { return ::fcntl(fd, F_GETFD) != -1 || errno != EBADF; }

int open_null() { return ::open("/dev/null", O_RDONLY | O_CLOEXEC); }

TEST(UniqueFd, ClosesOnDestruction) {
  int raw = -1;
  {
    UniqueFd fd(open_null());
    raw = fd.get();
    ASSERT_TRUE(fd);
    ASSERT_TRUE(is_open(raw));
  }
  EXPECT_FALSE(is_open(raw));
}

TEST(UniqueFd, NegativeMeansNoneAndIsNeverClosed) {
  errno = 0;
  UniqueFd fd(::open("/nonexistent/lockable-unique-fd", O_RDONLY));
  EXPECT_EQ(errno, ENOENT);  // nothing between the open and the check touched errno
  EXPECT_FALSE(fd);
  EXPECT_EQ(fd.get(), -1);
  fd.reset();
  EXPECT_FALSE(UniqueFd());
}

TEST(UniqueFd, MoveHandsOverOwnershipAndMoveAssignmentClosesTheOldOne) {
  UniqueFd first(open_null());
  const int first_raw = first.get();
  UniqueFd second(std::move(first));
  EXPECT_FALSE(first);  // NOLINT(bugprone-use-after-move): the moved-from state is promised
  EXPECT_EQ(second.get(), first_raw);

  UniqueFd third(open_null());
  const int third_raw = third.get();
  third = std::move(second);
  EXPECT_FALSE(is_open(third_raw));
  EXPECT_EQ(third.get(), first_raw);
  EXPECT_TRUE(is_open(first_raw));
}

TEST(UniqueFd, ReleaseGivesUpOwnershipWithoutClosing) {
  int raw = -1;
  {
    UniqueFd fd(open_null());
    raw = fd.release();
    EXPECT_FALSE(fd);
  }
  EXPECT_TRUE(is_open(raw));
  ::close(raw);
}

TEST(UniqueFd, ResetClosesAtOnce) {
  UniqueFd fd(open_null());
  const int raw = fd.get();
  fd.reset();
  EXPECT_FALSE(fd);
  EXPECT_FALSE(is_open(raw));
}

}  // namespace
