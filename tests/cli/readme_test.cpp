// Runs the README's `lockable` examples exactly as written: every `$ ` line of a fenced block
// that calls lockable, from the repository root, with the built lockable first in PATH and an
// empty TMPDIR for the lock files. The lines shown under a command are its output: first all of
// its standard output, then (for an error) lines of its standard error in order; a `...` line
// (indented or not) stands for lines left out. An example that shows no error output must exit 0.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "lockable/test/child.hpp"
#include "lockable/test/files.hpp"

namespace {

namespace fs = std::filesystem;

struct Example {
  int line = 0;  // in README.md, for messages
  std::string command;
  std::vector<std::string> shown;
};

std::vector<Example> readme_examples() {
  std::ifstream readme(fs::path(LOCKABLE_SOURCE_DIR) / "README.md");
  std::vector<Example> examples;
  bool in_block = false;
  bool collecting = false;  // the lines below belong to the last example
  int number = 0;
  for (std::string line; std::getline(readme, line);) {
    ++number;
    if (line.rfind("```", 0) == 0) {
      in_block = !in_block;
      collecting = false;
      continue;
    }
    if (!in_block) continue;
    if (line.rfind("$ ", 0) == 0) {
      const std::string command = line.substr(2);
      collecting = command.find("lockable") != std::string::npos;
      if (collecting) examples.push_back({number, command, {}});
    } else if (collecting && examples.back().command.back() == '\\') {
      examples.back().command += "\n" + line;  // a continued command line
    } else if (collecting) {
      examples.back().shown.push_back(line);
    }
  }
  return examples;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream stream(text);
  for (std::string line; std::getline(stream, line);) lines.push_back(line);
  return lines;
}

TEST(ReadmeTest, CliExamplesRunAsWritten) {
  const auto examples = readme_examples();
  // The `lockable` section's six examples plus the resources section's validation example.
  ASSERT_GE(examples.size(), 6u);
  const std::string bin_dir = fs::path(LOCKABLE_CLI_PATH).parent_path().string();
  for (const auto& example : examples) {
    SCOPED_TRACE("README.md:" + std::to_string(example.line) + ": " + example.command);
    lockable::test::TempDir temp;
    lockable::test::ChildOptions options;
    options.cwd = LOCKABLE_SOURCE_DIR;
    options.env["PATH"] = bin_dir + ":" + std::getenv("PATH");
    options.env["TMPDIR"] = temp.path().string();
    options.drop_env_prefixes = {"LOCKABLE_"};
    options.in = lockable::test::Stream::null();
    options.out = lockable::test::Stream::pipe();
    options.err = lockable::test::Stream::pipe();
    const auto result =
        lockable::test::run({"/bin/sh", "-c", example.command}, options, std::chrono::seconds(60));
    const auto out = lines_of(result.out);
    const auto err = lines_of(result.err);
    std::size_t shown = 0;
    for (const auto& line : out) {
      ASSERT_LT(shown, example.shown.size()) << "not shown in the README: " << line << "\n"
                                             << result;
      EXPECT_EQ(line, example.shown[shown]) << result;
      ++shown;
    }
    const bool shows_errors = shown < example.shown.size();
    std::size_t next_err = 0;
    for (; shown < example.shown.size(); ++shown) {
      // An elision, indented or not.
      const std::string& expected = example.shown[shown];
      if (expected.find("...") != std::string::npos &&
          expected.find_first_not_of(". ") == std::string::npos) {
        continue;
      }
      while (next_err < err.size() && err[next_err] != expected) ++next_err;
      ASSERT_LT(next_err, err.size()) << "shown but not printed: " << expected << "\n" << result;
      ++next_err;
    }
    if (shows_errors) {
      EXPECT_NE(result.exit_code, 0) << result;
    } else {
      EXPECT_EQ(result.exit_code, 0) << result;
    }
  }
}

}  // namespace
