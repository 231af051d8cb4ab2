// Fuzzes the `lockable` command line: the input's NUL-separated words are argv[1..]. The
// parsers promise never to throw; a usage error comes back as exit status 2 with a message, and
// a command line to act on as status 0.
#include "cli/command_line.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace lockable::cli;
  std::vector<std::string> words = {"lockable"};
  std::string word;
  for (std::size_t i = 0; i < size && words.size() < 64; ++i) {
    if (data[i] == 0) {
      words.push_back(word);
      word.clear();
    } else {
      word += static_cast<char>(data[i]);
    }
  }
  if (!word.empty()) words.push_back(word);
  std::vector<const char*> argv;
  for (const auto& w : words) argv.push_back(w.c_str());
  argv.push_back(nullptr);
  const int argc = static_cast<int>(words.size());
  // As main() does: the subcommands (status, report, ctest-spec) are dispatched inside.
  const ParseResult result = parse_command_line(argc, argv.data());
  if (result.line && result.exit_code != 0) __builtin_trap();
  if (!result.line && result.exit_code != 0 && result.err.empty()) __builtin_trap();
  return 0;
}
