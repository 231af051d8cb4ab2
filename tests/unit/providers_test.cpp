// File and list providers: errors naming the path, change detection by stat only.
#include <lockable/error.hpp>
#include <lockable/provider.hpp>

#include <gtest/gtest.h>

#include "lockable/test/files.hpp"

#include <sys/stat.h>
#include <sys/time.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

namespace lockable {
namespace {

namespace fs = std::filesystem;

class FileProviderTest : public ::testing::Test {
 protected:
  // Writes in place (same inode), unlike test::write_file: change detection must see a new
  // mtime or size alone.
  fs::path write(const std::string& name, const std::string& text) {
    const auto path = dir_ / name;
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    return path;
  }

  // Sets the mtime explicitly so tests never depend on the file system's clock resolution.
  static void set_mtime(const fs::path& path, long seconds) {
    const struct timeval times[2] = {{seconds, 0}, {seconds, 0}};
    ASSERT_EQ(::utimes(path.c_str(), times), 0) << std::strerror(errno);
  }

  static std::string load_error(ResourceProvider& provider) {
    try {
      provider.load();
    } catch (const ResourcesError& e) {
      return e.problems().empty() ? "(no problems)" : e.problems().front().to_string();
    }
    return "(no error)";
  }

  test::TempDir temp_{"lockable-providers-"};
  const fs::path dir_ = temp_.path();
};

const char* const kTwo = R"([{"id": "a", "online": true}, {"id": "b", "online": false}])";

TEST_F(FileProviderTest, LoadsAndValidatesTheFile) {
  const auto path = write("resources.json", kTwo);
  const auto provider = make_file_provider(path);
  EXPECT_EQ(provider->describe(), path.string());
  const auto resources = provider->load();
  ASSERT_EQ(resources.size(), 2u);
  EXPECT_EQ(resources[1].id, "b");
  EXPECT_FALSE(resources[1].online());
}

TEST_F(FileProviderTest, MissingFileNamesThePathAndErrno) {
  const auto path = dir_ / "nope.json";
  const auto provider = make_file_provider(path);
  EXPECT_EQ(load_error(*provider),
            path.string() + ": " +
                "cannot open the resources file: No such file or directory; check the path, or "
                "create the file");
}

TEST_F(FileProviderTest, DirectoryIsRejected) {
  const auto provider = make_file_provider(dir_);
  EXPECT_EQ(load_error(*provider),
            dir_.string() + ": is a directory; point to a resources.json file inside it");
}

TEST_F(FileProviderTest, FifoIsRejectedWithoutWaitingForAWriter) {
  // Before the fix, open() blocked here forever (no writer ever comes); ctest's timeout failed it.
  const auto path = dir_ / "resources.fifo";
  ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0) << std::strerror(errno);
  const auto provider = make_file_provider(path);
  EXPECT_EQ(load_error(*provider),
            path.string() + ": is not a regular file; point to a resources.json file");
  EXPECT_TRUE(provider->changed());
}

TEST_F(FileProviderTest, UnreadableFileNamesThePath) {
  if (::geteuid() == 0) GTEST_SKIP() << "root can read any file";
  const auto path = write("secret.json", kTwo);
  fs::permissions(path, fs::perms::none);
  const auto provider = make_file_provider(path);
  EXPECT_EQ(load_error(*provider),
            path.string() +
                ": cannot open the resources file: Permission denied; make the file "
                "readable by this user");
}

TEST_F(FileProviderTest, OpenErrorsCarryTheErrnoText) {
  // Works also as root, unlike a permission test.
  const auto path = write("plain.json", kTwo) / "resources.json";
  const auto provider = make_file_provider(path);
  EXPECT_EQ(load_error(*provider),
            path.string() + ": cannot open the resources file: Not a directory");
}

TEST_F(FileProviderTest, InvalidContentNamesThePath) {
  const auto path = write("bad.json", "[{\"id\": \"a\", \"online\": \"yes\"}]");
  const auto provider = make_file_provider(path);
  EXPECT_EQ(load_error(*provider), path.string() +
                                       ": entry 0 (id \"a\"): \"online\" must be true or false, "
                                       "found \"yes\"");
}

TEST_F(FileProviderTest, EmptyFileIsAClearError) {
  const auto path = write("empty.json", "");
  const auto provider = make_file_provider(path);
  EXPECT_EQ(load_error(*provider),
            path.string() +
                ": is empty; write a JSON array of resource objects, e.g. [{\"id\": \"dut-1\", "
                "\"online\": true, \"hostname\": \"rig-01\"}]");
}

TEST_F(FileProviderTest, ChangedBeforeTheFirstLoad) {
  const auto provider = make_file_provider(write("resources.json", kTwo));
  EXPECT_TRUE(provider->changed());
}

TEST_F(FileProviderTest, UnchangedAfterLoad) {
  const auto path = write("resources.json", kTwo);
  set_mtime(path, 1000000);
  const auto provider = make_file_provider(path);
  provider->load();
  EXPECT_FALSE(provider->changed());
  EXPECT_FALSE(provider->changed());
}

TEST_F(FileProviderTest, ChangedWhenMtimeChanges) {
  const auto path = write("resources.json", kTwo);
  set_mtime(path, 1000000);
  const auto provider = make_file_provider(path);
  provider->load();
  set_mtime(path, 1000001);
  EXPECT_TRUE(provider->changed());
  provider->load();
  EXPECT_FALSE(provider->changed());
}

TEST_F(FileProviderTest, ChangedWhenSizeChangesWithTheSameMtime) {
  const auto path = write("resources.json", kTwo);
  set_mtime(path, 1000000);
  const auto provider = make_file_provider(path);
  provider->load();
  write("resources.json", std::string(kTwo) + "\n");
  set_mtime(path, 1000000);
  EXPECT_TRUE(provider->changed());
}

TEST_F(FileProviderTest, ChangedWhenReplacedByRename) {
  const auto path = write("resources.json", kTwo);
  set_mtime(path, 1000000);
  const auto provider = make_file_provider(path);
  provider->load();
  // Same size and mtime, new inode: an editor's save-by-rename.
  const auto other = write("new.json", kTwo);
  set_mtime(other, 1000000);
  fs::rename(other, path);
  EXPECT_TRUE(provider->changed());
}

TEST_F(FileProviderTest, ChangedWhenDeleted) {
  const auto path = write("resources.json", kTwo);
  const auto provider = make_file_provider(path);
  provider->load();
  fs::remove(path);
  EXPECT_TRUE(provider->changed());
}

TEST_F(FileProviderTest, FailedLoadCountsAsChanged) {
  const auto path = write("resources.json", "[");
  const auto provider = make_file_provider(path);
  EXPECT_THROW(provider->load(), ResourcesError);
  EXPECT_TRUE(provider->changed());
}

TEST(ListProvider, ValidatesAtConstruction) {
  try {
    make_list_provider(Json::array({Json{{"id", "a/b"}}}), "options.resources");
    FAIL() << "no error";
  } catch (const ResourcesError& e) {
    ASSERT_EQ(e.problems().size(), 1u);
    EXPECT_EQ(e.problems()[0].where, "options.resources: entry 0 (id \"a/b\")");
  }
}

TEST(ListProvider, DefaultSourceIsList) {
  try {
    make_list_provider(Json::object());
    FAIL() << "no error";
  } catch (const ResourcesError& e) {
    EXPECT_EQ(e.problems().at(0).to_string(),
              "<list>: must be a JSON array of resource objects, found an object; wrap the "
              "objects in [ ]");
  }
}

TEST(ListProvider, LoadsTheListAndNeverChanges) {
  const auto provider = make_list_provider(Json::parse(kTwo));
  EXPECT_EQ(provider->describe(), "<list>");
  const auto resources = provider->load();
  ASSERT_EQ(resources.size(), 2u);
  EXPECT_EQ(resources[0].id, "a");
  EXPECT_FALSE(provider->changed());
  EXPECT_EQ(provider->load().size(), 2u);
}

}  // namespace
}  // namespace lockable
