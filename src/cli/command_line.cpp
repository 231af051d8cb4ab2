#include "command_line.hpp"

#include "exit_codes.hpp"

#include <lockable/lockable.hpp>

#include <CLI/CLI.hpp>

#include <cstdio>
#include <set>
#include <utility>

namespace lockable::cli {
namespace {

constexpr const char* kDescription =
    "Locks a device from resources.json that matches the requirements, runs COMMAND with the\n"
    "device's attributes in its environment (OS, SERIAL, ..., LOCKABLE_RESOURCE_ID,\n"
    "LOCKABLE_ALLOC_ID, LOCKABLE_RESOURCE as JSON), and unlocks the device when COMMAND ends.\n"
    "SIGINT, SIGTERM, SIGHUP and SIGQUIT sent to lockable are passed on to COMMAND; the device\n"
    "is released in every case. COMMAND is executed directly, without a shell; to use shell\n"
    "syntax ($SERIAL, pipes), pass it as one quoted word, e.g. lockable 'adb -s $SERIAL shell'\n"
    "(run with /bin/sh -c, as the Python lockable CLI did), or use sh -c.";

constexpr const char* kFooter =
    "Requirements: JSON ('{\"os\":\"Android\",\"board.rev\":{\"$gte\":2}}') or "
    "key=value&key=value\n"
    "('os=Android&version=14'); empty means any device. Only online devices of --hostname are\n"
    "considered unless the requirements name 'online' or 'hostname' (null lifts the filter).\n"
    "\n"
    "Exit status:\n"
    "  COMMAND's status  COMMAND ran (killed by signal N: 128+N, as a shell reports it)\n"
    "  0    --validate-only: the resources file is valid; status: printed\n"
    "  1    --validate-only: the resources file has problems (all are listed)\n"
    "  2    usage error: unknown option, bad option value (e.g. --timeout -1), no command\n"
    "  3    resources file invalid or unreadable\n"
    "  4    requirements malformed\n"
    "  5    no resource can ever match the requirements (the reason for each is listed)\n"
    "  6    timeout: every matching resource stayed busy (the holders are listed)\n"
    "  7    lock folder unusable\n"
    "  8    internal error (please report it)\n"
    "  126  COMMAND found but cannot be executed\n"
    "  127  COMMAND not found\n"
    "\n"
    "lockable never prints the environment it passes to COMMAND.";

std::string default_timeout_text();

// Our usage line: CLI11's default does not know about the trailing command.
class Formatter : public CLI::Formatter {
 public:
  std::string make_usage(const CLI::App* /*app*/, std::string /*name*/) const override {
    return "\nUsage: lockable [OPTIONS] [--] COMMAND [ARGS...]\n"
           "       lockable [OPTIONS] --validate-only\n"
           "       lockable [OPTIONS] status [--json]\n";
  }
};

struct Parser {
  CLI::App app{kDescription, "lockable"};
  CLI::App* status_command = nullptr;
  // Options that consume the next word; needed to find where the command starts.
  std::set<std::string> valued;
  CommandLine line;
  std::string timeout_text;

  Parser() {
    app.formatter(std::make_shared<Formatter>());
    app.footer(kFooter);
    app.set_version_flag("--version", std::string("lockable ") + kVersion,
                         "Print the version and exit");
    app.get_formatter()->column_width(30);
    app.add_flag("--validate-only", line.validate_only,
                 "Only check the resources file (needs no command): exit 0 when valid, 1 with "
                 "every problem listed");
    add_valued("--lock-folder", "DIR", line.lock_folder,
               "Folder of the <id>.pid lock files (default: the system temp dir, TMPDIR or /tmp)");
    add_valued("--resources", "FILE", line.resources,
               "The resources file (default: resources.json in the current directory)");
    add_valued("--timeout", "SECONDS", timeout_text,
               "Seconds to wait for a busy device, fractions allowed (default: " +
                   default_timeout_text() + ")");
    add_valued("--hostname", "HOST", line.hostname,
               "Only devices of this host (default: this host)");
    add_valued("--requirements", "REQ", line.requirements,
               "What the device must satisfy (default: any device)");
    app.add_flag("-q,--quiet", line.quiet, "Do not print the locked/released/progress lines");
    app.add_flag("--status", line.status, "Same as the status subcommand");
    app.add_flag("--json", line.json, "status: print JSON instead of a table");
    status_command = app.add_subcommand(
        "status", "Print every resource as free, busy (with its holder) or offline");
    // Options after `status` belong to the main app (`lockable status --json`).
    status_command->fallthrough();
  }

  void add_valued(const std::string& name, const std::string& value_name, std::string& target,
                  const std::string& help) {
    // The last occurrence wins, so a wrapper script's defaults can be overridden.
    app.add_option(name, target, help)
        ->type_name(value_name)
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    valued.insert(name);
  }

  bool takes_value(const std::string& word) const {
    return word.rfind("--", 0) == 0 && word.find('=') == std::string::npos &&
           valued.count(word) != 0;
  }
};

std::string default_timeout_text() {
  char text[32];
  std::snprintf(text, sizeof text, "%g", Options{}.default_timeout.count());
  return text;
}

ParseResult usage_error(const std::string& message) {
  ParseResult result;
  result.exit_code = kUsage;
  result.err = "lockable: " + message + "\nRun 'lockable --help' for usage.\n";
  return result;
}

}  // namespace

ParseResult parse_command_line(int argc, const char* const* argv) {
  Parser parser;
  std::vector<std::string> options;
  std::vector<std::string> command;
  bool seen_status_word = false;
  for (int i = 1; i < argc; ++i) {
    const std::string word = argv[i];
    if (word == "--") {
      command.assign(argv + i + 1, argv + argc);
      break;
    }
    if (word.size() > 1 && word[0] == '-') {
      // Joined as --opt=value so that a value starting with '-' (--timeout -1) stays a value
      // and reaches the validation that explains it.
      if (parser.takes_value(word) && i + 1 < argc) {
        const std::string value = argv[++i];
        // CLI11 reads an empty `--opt=` as "value follows", so an empty value stays apart.
        if (value.empty()) {
          options.push_back(word);
          options.push_back(value);
        } else {
          options.push_back(word + "=" + value);
        }
      } else if (word.back() == '=' && parser.takes_value(word.substr(0, word.size() - 1))) {
        options.push_back(word.substr(0, word.size() - 1));
        options.emplace_back();
      } else {
        options.push_back(word);
      }
      continue;
    }
    if (word == "status" && !seen_status_word && command.empty()) {
      seen_status_word = true;
      options.push_back(word);
      continue;
    }
    command.assign(argv + i, argv + argc);
    break;
  }

  // CLI11 consumes its argument vector from the back.
  std::vector<std::string> reversed(options.rbegin(), options.rend());
  try {
    parser.app.parse(reversed);
  } catch (const CLI::CallForHelp&) {
    return {std::nullopt, kOk, parser.app.help(), ""};
  } catch (const CLI::CallForVersion& version) {
    return {std::nullopt, kOk, std::string(version.what()) + "\n", ""};
  } catch (const CLI::ParseError& error) {
    return usage_error(error.what());
  }

  CommandLine line = std::move(parser.line);
  line.status = line.status || parser.status_command->parsed();
  if (parser.app.count("--timeout") != 0) line.timeout = parser.timeout_text;
  line.command = std::move(command);

  if (line.status && line.validate_only) {
    return usage_error("status and --validate-only cannot be combined; use one of them");
  }
  if (line.json && !line.status) return usage_error("--json only applies to status");
  if ((line.status || line.validate_only) && !line.command.empty()) {
    return usage_error(std::string(line.status ? "status" : "--validate-only") +
                       " takes no command, found \"" + line.command.front() +
                       "\"; to run a command named status, write: lockable [OPTIONS] -- status");
  }
  if (!line.status && !line.validate_only && line.command.empty()) {
    return usage_error(
        "no command given; write lockable [OPTIONS] [--] COMMAND [ARGS...], or use "
        "--validate-only or status");
  }
  return {std::move(line), kOk, "", ""};
}

}  // namespace lockable::cli
