#include <lockable/error.hpp>
#include <lockable/provider.hpp>

#include "posix/unique_fd.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <utility>

namespace lockable {
namespace {

// What `changed()` compares: enough to notice an edit, a rewrite or a replacement by rename.
struct FileStamp {
  dev_t device = 0;
  ino_t inode = 0;
  off_t size = 0;
  long long mtime_ns = 0;
  bool operator==(const FileStamp& other) const {
    return device == other.device && inode == other.inode && size == other.size &&
           mtime_ns == other.mtime_ns;
  }
};

FileStamp stamp_of(const struct stat& info) {
  return FileStamp{
      info.st_dev, info.st_ino, info.st_size,
      static_cast<long long>(info.st_mtim.tv_sec) * 1000000000LL + info.st_mtim.tv_nsec};
}

class FileProvider : public ResourceProvider {
 public:
  explicit FileProvider(std::filesystem::path path)
      : path_(std::move(path)), source_(path_.string()) {}

  Resources load() override {
    loaded_.reset();
    // Non-blocking: opening a FIFO for reading would otherwise wait for a writer forever.
    const posix::UniqueFd file(::open(path_.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
    if (!file) fail_errno("cannot open the resources file");
    struct stat info {};
    // Stamp before reading: an edit racing with the read then shows up as a change later.
    if (::fstat(file.get(), &info) != 0) fail_errno("cannot stat the resources file");
    if (S_ISDIR(info.st_mode)) {
      fail("is a directory; point to a resources.json file inside it");
    }
    if (!S_ISREG(info.st_mode)) {
      // A FIFO, socket or device: reading it may never end, and it cannot be watched for changes.
      fail("is not a regular file; point to a resources.json file");
    }
    std::string text;
    char buffer[65536];
    while (true) {
      const auto count = ::read(file.get(), buffer, sizeof buffer);
      if (count < 0) {
        if (errno == EINTR) continue;
        fail_errno("cannot read the resources file");
      }
      if (count == 0) break;
      text.append(buffer, static_cast<std::size_t>(count));
    }
    auto resources = parse_resources_text(text, source_);
    loaded_ = stamp_of(info);
    return resources;
  }

  bool changed() override {
    if (!loaded_) return true;
    struct stat info {};
    if (::stat(path_.c_str(), &info) != 0) return true;
    return !(stamp_of(info) == *loaded_);
  }

  std::string describe() const override { return source_; }

 private:
  [[noreturn]] void fail(const std::string& message) const {
    throw ResourcesError(source_, {Problem{source_, message}});
  }

  [[noreturn]] void fail_errno(const std::string& what) const {
    const int error = errno;
    std::string hint;
    if (error == ENOENT) hint = "; check the path, or create the file";
    if (error == EACCES) hint = "; make the file readable by this user";
    fail(what + ": " + std::strerror(error) + hint);
  }

  std::filesystem::path path_;
  std::string source_;
  std::optional<FileStamp> loaded_;
};

class ListProvider : public ResourceProvider {
 public:
  ListProvider(const Json& list, std::string source)
      : source_(std::move(source)), resources_(parse_resources(list, source_)) {}

  Resources load() override { return resources_; }
  // The list is fixed at construction.
  bool changed() override { return false; }
  std::string describe() const override { return source_; }

 private:
  std::string source_;
  Resources resources_;
};

}  // namespace

std::unique_ptr<ResourceProvider> make_file_provider(std::filesystem::path path) {
  return std::make_unique<FileProvider>(std::move(path));
}

std::unique_ptr<ResourceProvider> make_list_provider(Json list, std::string source) {
  return std::make_unique<ListProvider>(list, std::move(source));
}

}  // namespace lockable
