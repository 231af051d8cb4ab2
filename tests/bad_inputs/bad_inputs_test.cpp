// Runs the bad-input corpus (cases/*.json, described in README.md): one test per case, each a
// real process (the `lockable` CLI or a GoogleTest program linked with the plugin) in a fresh
// temp root:
//   <root>/work      its working directory, holding the case's files
//   <root>/locks     the lock folder (also TMPDIR, so the default lock folder lands here)
//   <root>/home      HOME
//   <root>/sentinel  files nobody may touch
// and, when the case has "http" routes, a fake HTTP server on 127.0.0.1 answering them (the
// resources URL, the lock service, etcd's JSON gateway). Each test asserts the exit status, the
// error text, that no <id>.pid in the lock folder is still held, and that nothing outside the
// lock folder changed (every file's name, size, mode and mtime).
#include "lockable/test/child.hpp"
#include "lockable/test/files.hpp"
#include "lockable/test/http_server.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using lockable::test::TempDir;

struct Case {
  std::string name;  // the file's stem, made a valid test name
  fs::path file;
  Json spec;
};

std::vector<Case> load_cases() {
  std::vector<Case> cases;
  for (const auto& entry : fs::directory_iterator(BAD_INPUTS_DIR)) {
    if (entry.path().extension() != ".json") continue;
    Case c;
    c.file = entry.path();
    c.name = entry.path().stem().string();
    for (auto& ch : c.name) {
      if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
    }
    std::ifstream in(entry.path());
    std::stringstream text;
    text << in.rdbuf();
    // A malformed case file is a test failure of that case, not a crash of the listing.
    c.spec = Json::parse(text.str(), nullptr, false);
    cases.push_back(std::move(c));
  }
  std::sort(cases.begin(), cases.end(),
            [](const Case& a, const Case& b) { return a.name < b.name; });
  return cases;
}

// Everything a case may change shows up here: (size, mode, mtime) per path, directories too.
using Snapshot = std::map<std::string, std::tuple<std::uintmax_t, unsigned, long long>>;

Snapshot snapshot(const fs::path& root, const std::set<std::string>& skip) {
  Snapshot result;
  std::error_code error;
  for (fs::recursive_directory_iterator it(root, error), end; !error && it != end;
       it.increment(error)) {
    const std::string relative = fs::relative(it->path(), root).generic_string();
    if (skip.count(relative) != 0) {
      if (it->is_directory()) it.disable_recursion_pending();
      continue;
    }
    struct stat info {};
    if (::lstat(it->path().c_str(), &info) != 0) continue;
    const long long mtime =
        static_cast<long long>(info.st_mtim.tv_sec) * 1000000000LL + info.st_mtim.tv_nsec;
    result[relative] = {S_ISREG(info.st_mode) ? static_cast<std::uintmax_t>(info.st_size) : 0,
                        static_cast<unsigned>(info.st_mode), mtime};
  }
  return result;
}

std::string describe_changes(const Snapshot& before, const Snapshot& after) {
  std::string text;
  for (const auto& [path, state] : before) {
    const auto it = after.find(path);
    if (it == after.end()) {
      text += "  removed: " + path + "\n";
    } else if (it->second != state) {
      text += "  changed: " + path + "\n";
    }
  }
  for (const auto& [path, state] : after) {
    if (before.count(path) == 0) text += "  created: " + path + "\n";
  }
  return text;
}

// ${WORK}, ${LOCKS}, ${HOME}, ${HTTP} (http://127.0.0.1:PORT), ${HTTP_HOST} (127.0.0.1:PORT).
std::string expand(std::string text, const std::map<std::string, std::string>& values) {
  for (const auto& [name, value] : values) {
    const std::string key = "${" + name + "}";
    for (auto pos = text.find(key); pos != std::string::npos;
         pos = text.find(key, pos + value.size())) {
      text.replace(pos, key.size(), value);
    }
  }
  return text;
}

// One route of the fake server: "method" (GET, POST or *), "path" (a regex), "status", "body",
// "content_type", "headers" ({name: value}), "delay_ms".
void add_route(httplib::Server& server, const Json& route) {
  const std::string method = route.value("method", "*");
  const std::string path = route.at("path").get<std::string>();
  const int status = route.value("status", 200);
  const std::string body = route.value("body", "");
  const std::string content_type = route.value("content_type", "application/json");
  const Json headers = route.value("headers", Json::object());
  const int delay_ms = route.value("delay_ms", 0);
  const auto handler = [=](const httplib::Request&, httplib::Response& response) {
    if (delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    response.status = status;
    for (const auto& [name, value] : headers.items()) {
      response.set_header(name, value.get<std::string>());
    }
    response.set_content(body, content_type);
  };
  if (method == "GET" || method == "*") server.Get(path, handler);
  if (method == "POST" || method == "*") server.Post(path, handler);
}

// The case file, not the object's bytes, in GoogleTest's messages.
void PrintTo(const Case& c, std::ostream* os) { *os << c.file.filename().string(); }

class BadInputTest : public ::testing::TestWithParam<Case> {};

TEST_P(BadInputTest, FailsSafelyWithAClearMessage) {
  const Case& c = GetParam();
  const Json& spec = c.spec;
  ASSERT_FALSE(spec.is_discarded()) << c.file << ": not valid JSON";
  ASSERT_TRUE(spec.contains("exit") && spec.contains("output_contains"))
      << c.file << ": a case needs \"exit\" and \"output_contains\"";

  TempDir root("lockable-bad-input-");
  const fs::path work = root.path() / "work";
  const fs::path locks = root.path() / "locks";
  const fs::path home = root.path() / "home";
  const fs::path sentinel = root.path() / "sentinel";
  for (const auto& dir : {work, locks, home, sentinel}) fs::create_directories(dir);
  lockable::test::write_file(sentinel / "keep.txt", "nobody writes here\n");
  lockable::test::write_file(home / ".profile", "# untouched\n");

  std::unique_ptr<lockable::test::HttpServer> server;
  if (spec.contains("http")) {
    const Json routes = spec.at("http");
    server = std::make_unique<lockable::test::HttpServer>([routes](httplib::Server& s) {
      for (const auto& route : routes) add_route(s, route);
    });
  }
  std::map<std::string, std::string> values = {
      {"WORK", work.string()}, {"LOCKS", locks.string()}, {"HOME", home.string()}};
  if (server) {
    values["HTTP"] = server->url();
    values["HTTP_HOST"] = "127.0.0.1:" + std::to_string(server->port());
  }

  // Input files: a string (placeholders expanded), or {"bytes": [..]} for bytes JSON text cannot
  // carry (invalid UTF-8).
  const Json files = spec.value("files", Json::object());  // items() needs a named object
  for (const auto& [name, content] : files.items()) {
    std::string bytes;
    if (content.is_object() && content.contains("bytes")) {
      for (const auto& byte : content.at("bytes")) bytes += static_cast<char>(byte.get<int>());
    } else {
      bytes = expand(content.get<std::string>(), values);
    }
    const fs::path path = work / name;
    fs::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << bytes;
  }
  for (const auto& name : spec.value("fifos", Json::array())) {
    ASSERT_EQ(::mkfifo((work / name.get<std::string>()).c_str(), 0600), 0);
  }
  // What the case may create or change in its working directory (an output file it asks for).
  std::set<std::string> skip = {"locks"};
  for (const auto& name : spec.value("writes", Json::array())) {
    skip.insert("work/" + name.get<std::string>());
  }
  const Snapshot before = snapshot(root.path(), skip);

  const std::string kind = spec.value("kind", "cli");
  std::vector<std::string> argv = {kind == "plugin" ? PLUGIN_PROGRAM : LOCKABLE_CLI_PATH};
  for (const auto& arg : spec.value("args", Json::array())) {
    argv.push_back(expand(arg.get<std::string>(), values));
  }
  lockable::test::ChildOptions options;
  options.drop_env_prefixes = {"LOCKABLE_",   "GTEST_",   "http_proxy", "https_proxy", "HTTP_PROXY",
                               "HTTPS_PROXY", "no_proxy", "NO_PROXY",   "ETCD"};
  options.env = {{"HOME", home.string()}, {"TMPDIR", locks.string()}};
  const Json env = spec.value("env", Json::object());
  for (const auto& [name, value] : env.items()) {
    options.env[name] = expand(value.get<std::string>(), values);
  }
  options.cwd = work;
  options.in = lockable::test::Stream::null();
  options.out = lockable::test::Stream::pipe();
  options.err = lockable::test::Stream::pipe();
  const auto result = lockable::test::run(argv, options, std::chrono::seconds(60));

  const std::string output = result.output();
  // For writing a new case: BAD_INPUTS_SHOW=1 prints what the program did.
  if (std::getenv("BAD_INPUTS_SHOW") != nullptr)
    std::cout << "### " << c.name << "\n" << result << "\n";
  EXPECT_EQ(result.signal, 0) << "killed by a signal (a crash?)\n" << result;
  EXPECT_EQ(result.exit_code, spec.at("exit").get<int>()) << result;
  for (const auto& fragment : spec.at("output_contains")) {
    EXPECT_NE(output.find(expand(fragment.get<std::string>(), values)), std::string::npos)
        << "missing: " << fragment << "\n"
        << result;
  }
  for (const auto& fragment : spec.value("output_excludes", Json::array())) {
    EXPECT_EQ(output.find(expand(fragment.get<std::string>(), values)), std::string::npos)
        << "must not appear: " << fragment << "\n"
        << result;
  }
  // No lock left held: every lock file can be taken now that the process has ended.
  std::error_code error;
  for (fs::recursive_directory_iterator it(locks, error), end; !error && it != end;
       it.increment(error)) {
    if (it->path().extension() == ".pid") {
      EXPECT_FALSE(lockable::test::is_flocked(it->path())) << it->path() << " is still held";
    }
  }
  const Snapshot after = snapshot(root.path(), skip);
  EXPECT_EQ(describe_changes(before, after), "") << "changed outside the lock folder\n" << result;
}

std::string case_name(const ::testing::TestParamInfo<Case>& info) { return info.param.name; }

INSTANTIATE_TEST_SUITE_P(Corpus, BadInputTest, ::testing::ValuesIn(load_cases()), case_name);

// The issue asks for at least 80 cases; a lost directory must not pass as an empty corpus.
TEST(BadInputCorpus, HoldsAtLeastEightyCases) { EXPECT_GE(load_cases().size(), 80u); }

}  // namespace
