#include "command_line.hpp"

#include "exit_codes.hpp"

#include <lockable/lock_folder.hpp>
#include <lockable/lockable.hpp>
#include <lockable/settings.hpp>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <initializer_list>
#include <map>
#include <set>
#include <utility>

namespace lockable::cli {
namespace {

constexpr const char* kDescription =
    "Locks a device from the resources file that matches the requirements, runs COMMAND with the\n"
    "device's attributes in its environment, and unlocks the device when COMMAND ends.\n"
    "COMMAND's words are joined with spaces and run by /bin/sh -c, as the Python lockable CLI\n"
    "runs them, so  lockable --requirements '{\"online\":true}' echo using resource: '$ID'\n"
    "prints the device's id. With --no-shell they are executed directly, each word one argument.\n"
    "SIGINT, SIGTERM, SIGHUP and SIGQUIT sent to lockable reach COMMAND once; the device is\n"
    "released in every case.";

constexpr const char* kFooter =
    "Requirements: JSON ('{\"os\":\"Android\",\"board.rev\":{\"$gte\":2}}') or "
    "key=value&key=value\n"
    "('os=Android&version=14'); empty means any device. Only online devices of --hostname are\n"
    "considered unless the requirements name 'online' or 'hostname' (null lifts the filter).\n"
    "\n"
    "COMMAND's environment: lockable's own, plus one variable per top-level attribute of the\n"
    "device: the key upper-cased, every character outside A-Z 0-9 _ replaced by _ (id -> ID,\n"
    "usb-port -> USB_PORT, a non-ASCII letter -> one _ per byte); strings as they are, other\n"
    "values as JSON (ONLINE=true, USB={\"hub\":1}). Plus LOCKABLE_RESOURCE_ID, LOCKABLE_ALLOC_ID\n"
    "and LOCKABLE_RESOURCE (all attributes as JSON). An attribute never replaces a variable\n"
    "that decides what COMMAND runs or loads (PATH, HOME, SHELL, IFS, ENV, BASH_ENV, LD_*, ...):\n"
    "lockable says which ones it left out, and --validate-only warns about them.\n"
    "lockable never prints the environment it passes to COMMAND.\n"
    "\n"
    "Each option falls back to its LOCKABLE_* variable (the GoogleTest plugin reads the same\n"
    "ones), then to its default; an empty variable counts as unset, an empty option value is\n"
    "an error (except --requirements \"\": any device).\n"
    "\n"
    "lockable report FILES... prints allocation figures from allocation logs (--metrics-file)\n"
    "and GoogleTest reports; 'lockable report --help' tells more.\n"
    "\n"
    "Exit status:\n"
    "  COMMAND's status  COMMAND ran (killed by signal N: 128+N, as a shell reports it)\n"
    "  0    --validate-only: the resources file is valid; status: printed\n"
    "  1    --validate-only: the resources file is missing, unreadable or invalid (every\n"
    "       problem is listed); a COMMAND given with it is not run\n"
    "  2    usage error: unknown option, bad option value (e.g. --timeout -1), no command\n"
    "  3    resources file missing, unreadable or invalid (when running COMMAND or status)\n"
    "  4    requirements malformed\n"
    "  5    no resource can ever match the requirements (the reason for each is listed)\n"
    "  6    timeout: every matching resource stayed busy (the holders are listed)\n"
    "  7    lock store unusable (lock folder, lock service, etcd unreachable or refusing)\n"
    "  8    internal error (please report it)\n"
    "  9    the lock was lost while COMMAND ran (a lease expired, --lock-name revoked, a lock\n"
    "       file removed): COMMAND got SIGTERM, and after LOCKABLE_STOP_GRACE seconds (default\n"
    "       10) SIGKILL with everything it started\n"
    "  126  COMMAND found but cannot be executed, or its environment is too large for exec\n"
    "  127  COMMAND not found\n"
    "\n"
    "Defaults that differ from the Python lockable CLI on purpose: --timeout 1000 s (Python:\n"
    "1 s), --lock-folder the system temp dir (Python CLI: '.'; the Python library and pytest\n"
    "plugin: the temp dir, as here).";

std::string default_timeout_text();
std::string lock_backend_help();

// Our usage line: CLI11's default does not know about the trailing command.
class Formatter : public CLI::Formatter {
 public:
  std::string make_usage(const CLI::App* /*app*/, std::string /*name*/) const override {
    return "\nUsage: lockable [OPTIONS] [--] COMMAND [ARGS...]\n"
           "       lockable --lock-name NAME [--timeout S] [--] COMMAND [ARGS...]\n"
           "       lockable [OPTIONS] --validate-only\n"
           "       lockable [OPTIONS] status [--json] [--watch [SECONDS] [--count N]]\n"
           "       lockable report [--format text|json|csv|openmetrics] [--html OUT] FILES...\n"
           "       lockable ctest-spec [--resources FILE] [--by ATTRIBUTE] [-o FILE]\n";
  }
};

struct Parser {
  CLI::App app{kDescription, "lockable"};
  CLI::App* status_command = nullptr;
  // Options that consume the next word; needed to find where the command starts.
  std::set<std::string> valued;
  // Every long option, to refuse one taken as another option's value.
  std::set<std::string> known{"--help", "--version"};
  CommandLine line;
  std::map<std::string, std::string> values;
  bool watch_flag = false;

  Parser() {
    app.formatter(std::make_shared<Formatter>());
    app.footer(kFooter);
    app.set_version_flag("--version", std::string("lockable ") + kVersion,
                         "Print the version and exit");
    app.get_formatter()->column_width(30);
    add_flag("--validate-only", line.validate_only,
             "Only check the resources file: exit 0 when valid, 1 with every problem listed; a "
             "COMMAND after it is accepted (as the Python CLI wants one) and not run");
    add_valued("--lock-folder", "DIR", kLockFolderVariable,
               "Folder of the <id>.pid lock files (default: the system temp dir as Python's "
               "tempfile finds it, here " +
                   default_lock_folder().string() + "; the Python CLI's default is .)");
    add_valued("--lock-backend", "SPEC", kLockBackendVariable, lock_backend_help());
    add_valued("--resources", "FILE", kResourcesVariable,
               "The resources file, or an http(s):// URL answering one (default: resources.json in "
               "the current directory)");
    add_valued("--timeout", "SECONDS", kTimeoutVariable,
               "Seconds to wait for a busy device, fractions allowed (default: " +
                   default_timeout_text() + "; the Python CLI's default is 1)");
    add_valued("--hostname", "HOST", kHostnameVariable,
               "Only devices of this host (default: this host, " + this_hostname() + ")");
    add_valued("--requirements", "REQ", kRequirementsVariable,
               "What the device must satisfy (default: any device)");
    add_valued("--metrics-file", "FILE", kMetricsFileVariable,
               "Append one JSON line per finished allocation to FILE (see 'lockable report')");
    add_valued("--priority", "N", kPriorityVariable,
               "Priority of the request in the queue, a whole number from -1000 to 1000: among "
               "waiters a device can serve, higher goes first, arrival order within one; waiting "
               "raises it by one per minute, so none starves (default: 0)");
    add_valued("--lock-name", "NAME", nullptr,
               "Instead of a device, hold the named lock NAME on the Lockable.dev service while "
               "COMMAND runs (LOCKABLE_SERVICE_URL, default https://api.lockable.dev/v1; token "
               "in LOCKABLE_AUTH_TOKEN; LOCKABLE_SERVICE_LEASE if its lease is not 60 s)");
    add_flag("--no-shell", line.no_shell,
             "Execute COMMAND's words directly (PATH search, no shell, each word one argument)");
    add_flag("-q,--quiet", line.quiet, "Do not print the locked/released/progress lines");
    add_flag("--status", line.status_flag, "Same as the status subcommand");
    add_flag("--json", line.json, "status: print JSON instead of a table");
    // Its value is optional, so the loop in parse_command_line takes it (see there); CLI11 sees
    // a flag, for --help and for its place among the options.
    app.add_flag("--watch", watch_flag,
                 "status --watch [SECONDS]: print the status again every SECONDS (default 2), "
                 "in place on a terminal, else as snapshots separated by a blank line, until "
                 "Ctrl-C (exit 0)");
    known.insert("--watch");
    add_valued("--count", "N", nullptr, "status --watch: stop after N snapshots");
    status_command = app.add_subcommand(
        "status", "Print every resource as free, busy (with its holder) or offline");
    // Options after `status` belong to the main app (`lockable status --json`).
    status_command->fallthrough();
  }

  void add_flag(const std::string& names, bool& target, const std::string& help) {
    app.add_flag(names, target, help);
    known.insert(names.substr(names.find("--")));
  }

  void add_valued(const std::string& name, const std::string& value_name, const char* variable,
                  const std::string& help) {
    // The last occurrence wins, so a wrapper script's defaults can be overridden.
    // No variable for --lock-name: a name in the environment must not switch lockable from
    // locking a device to locking a name.
    app.add_option(name, values[name],
                   variable == nullptr ? help : help + " [env " + variable + "]")
        ->type_name(value_name)
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    valued.insert(name);
    known.insert(name);
  }

  bool takes_value(const std::string& word) const {
    return word.rfind("--", 0) == 0 && word.find('=') == std::string::npos &&
           valued.count(word) != 0;
  }

  // `--` or one of our long options, with or without `=value`.
  bool is_option(const std::string& word) const {
    return word == "--" ||
           (word.rfind("--", 0) == 0 && known.count(word.substr(0, word.find('='))) != 0);
  }

  std::optional<std::string> value_of(const std::string& name) {
    if (app.count(name) == 0) return std::nullopt;
    return values[name];
  }
};

std::string default_timeout_text() {
  char text[32];
  std::snprintf(text, sizeof text, "%g", Options{}.default_timeout.count());
  return text;
}

// Every scheme the factory knows, so that --help never lists one that is not registered.
std::string lock_backend_help() {
  std::string text = "Where locks live, as a spec (default: the lock folder above):";
  for (const auto& scheme : lock_backend_schemes()) {
    text += (scheme.scheme.empty() ? " " : "; ") + scheme.description;
  }
  return text + "; give it or --lock-folder, not both";
}

ParseResult usage_error(const std::string& message) {
  ParseResult result;
  result.exit_code = kUsage;
  result.err = "lockable: " + message + "\nRun 'lockable --help' for usage.\n";
  return result;
}

// Parses a subcommand's words (after `lockable <name>`). Returns the help text or the usage
// error as a finished ParseResult, or nullopt when the words parsed and the caller goes on.
std::optional<ParseResult> parse_subcommand(CLI::App& app, const std::string& name, int argc,
                                            const char* const* argv) {
  std::vector<std::string> words(argv + 2, argv + argc);
  std::reverse(words.begin(), words.end());
  try {
    app.parse(words);
  } catch (const CLI::CallForHelp&) {
    return ParseResult{std::nullopt, kOk, app.help(), ""};
  } catch (const CLI::ParseError& error) {
    ParseResult result;
    result.exit_code = kUsage;
    result.err = "lockable: " + name + ": " + error.what() + "\nRun 'lockable " + name +
                 " --help' for usage.\n";
    return result;
  }
  return std::nullopt;
}

}  // namespace

ParseResult parse_report_command_line(int argc, const char* const* argv) {
  CLI::App app{
      "Figures per device, per suite or command and per requirement from allocation logs\n"
      "(--metrics-file, LOCKABLE_METRICS_FILE) and GoogleTest XML/JSON reports of suites built\n"
      "with lockable::gtest: allocations, hold time, utilization over the covered window, queue\n"
      "time median/95th percentile/maximum, losses and timeouts. An allocation found in a log\n"
      "and in a report is counted once. Bad input (unreadable, foreign, a corrupt or incomplete\n"
      "line) is listed on stderr with file and line; the rest is counted.",
      "lockable report"};
  app.footer(
      "Exit status: 0 every input was read whole; 1 some input had problems (listed on stderr,\n"
      "the rest counted); 2 usage error.");
  app.get_formatter()->column_width(30);
  CommandLine line;
  line.report = true;
  app.add_option("FILES", line.report_files, "Allocation logs and GoogleTest XML/JSON reports")
      ->required();
  app.add_option("--format", line.report_format, "text (default), json, csv or openmetrics")
      ->check(CLI::IsMember({"text", "json", "csv", "openmetrics"}));
  std::string since, until, html;
  auto* since_option =
      app.add_option("--since", since,
                     "Only what happened from this time on (ISO 8601: 2026-12-01T08:00:00Z, "
                     "or a date, 2026-12-01, UTC)");
  auto* until_option =
      app.add_option("--until", until, "Only what happened up to this time (as --since)");
  auto* html_option = app.add_option(
      "--html", html,
      "Also write a self-contained HTML page (timeline per device, utilization, queue times)");
  if (auto done = parse_subcommand(app, "report", argc, argv)) return std::move(*done);
  if (since_option->count() != 0) line.since = since;
  if (until_option->count() != 0) line.until = until;
  if (html_option->count() != 0) line.html = html;
  return {std::move(line), kOk, "", ""};
}

ParseResult parse_ctest_spec_command_line(int argc, const char* const* argv) {
  CLI::App app{
      "Writes a CTest resource spec file (ctest --resource-spec-file) listing the devices of the\n"
      "resources file, one slot each, so that `ctest -j N` never starts more tests than there\n"
      "are devices. Tests registered with lockable_discover_tests(... RESOURCE_GROUPS\n"
      "\"devices:1\") then lock exactly the device CTest assigned them (still through the lock\n"
      "backend). CTest ids are the device ids in lower case with every character outside\n"
      "a-z 0-9 _ replaced by _.",
      "lockable ctest-spec"};
  app.get_formatter()->column_width(30);
  CommandLine line;
  line.ctest_spec = true;
  std::string resources, hostname, output;
  auto* resources_option = app.add_option(
      "--resources", resources,
      std::string("The resources file (default: resources.json) [env ") + kResourcesVariable + "]");
  auto* hostname_option =
      app.add_option("--hostname", hostname,
                     std::string("Only devices of this host (default: this host) [env ") +
                         kHostnameVariable + "]");
  app.add_flag("--all-hosts", line.all_hosts, "Devices of every host");
  app.add_flag("--include-offline", line.include_offline, "Offline devices too");
  app.add_option("--by", line.ctest_by,
                 "One CTest resource type per value of this attribute (e.g. type, os)");
  app.add_option("--type", line.ctest_type,
                 "The resource type of every device without --by (default: devices)");
  auto* output_option = app.add_option("-o,--output", output, "Write the spec here, not stdout");
  if (auto done = parse_subcommand(app, "ctest-spec", argc, argv)) return std::move(*done);
  if (resources_option->count() != 0) line.resources = resources;
  if (hostname_option->count() != 0) line.hostname = hostname;
  if (output_option->count() != 0) line.output = output;
  return {std::move(line), kOk, "", ""};
}

ParseResult parse_admin_command_line(int argc, const char* const* argv) {
  const std::string name = argv[1];
  const std::map<std::string, std::string> what{
      {"reserve",
       "Takes device ID out of service: nobody gets it until `lockable unreserve` (or --until);\n"
       "waiters that could use only it are told the reason. A present holder keeps it (see\n"
       "release --force). On a lock folder a detached holder process also keeps the Python\n"
       "package off; it survives the terminal and ends on unreserve or at --until."},
      {"drain",
       "Lets the present holder of device ID finish, gives it to nobody else, and then keeps it\n"
       "reserved as `lockable reserve` does."},
      {"unreserve", "Puts device ID back in service (nothing happens when it is not reserved)."},
      {"release",
       "Takes device ID from a stuck holder (--force is required). On etcd the holder's lease is\n"
       "revoked and on the lock service its lock released: the holder sees a loss, and the next\n"
       "holder gets a larger fencing token. On a lock folder the holding process is named; only\n"
       "with --kill it is sent SIGTERM, then SIGKILL after --grace seconds (a process of this\n"
       "host that this account may signal)."}};
  CLI::App app{what.at(name), "lockable " + name};
  app.get_formatter()->column_width(30);
  app.footer(
      "Every action is written to the allocation log (--metrics-file, LOCKABLE_METRICS_FILE)\n"
      "with who (user@host) and why.\nExit status: 0 done; 2 usage error or unknown device; 3 "
      "resources file invalid; 7 lock store unusable or the holder cannot be released.");
  CommandLine line;
  line.admin = name;
  app.add_option("ID", line.admin_id, "The device (an id of the resources file)")->required();
  std::string reason, until, grace, lock_folder, lock_backend, resources, metrics_file;
  CLI::Option* reason_option = nullptr;
  CLI::Option* until_option = nullptr;
  CLI::Option* grace_option = nullptr;
  if (name != "unreserve") {
    reason_option = app.add_option("--reason", reason,
                                   "Why (required): shown by status, to waiters and in the log");
  }
  if (name == "reserve") {
    until_option = app.add_option(
        "--until", until,
        "End the reservation on its own at this time (ISO 8601, 2026-12-02T08:00:00Z; no zone "
        "means UTC) or after this long (90s, 30m, 2h, 1d)");
  }
  if (name == "release") {
    app.add_flag("--force", line.force, "Required: take the device from its holder");
    app.add_flag("--kill", line.kill,
                 "Lock folder: send the holder SIGTERM, then SIGKILL after --grace");
    grace_option =
        app.add_option("--grace", grace, "Seconds between SIGTERM and SIGKILL (default 10)");
  }
  auto* folder_option = app.add_option(
      "--lock-folder", lock_folder,
      std::string("Folder of the <id>.pid lock files [env ") + kLockFolderVariable + "]");
  auto* backend_option =
      app.add_option("--lock-backend", lock_backend,
                     std::string("Where locks live, as a spec [env ") + kLockBackendVariable + "]");
  auto* resources_option = app.add_option(
      "--resources", resources,
      std::string("The resources file that knows ID (default: resources.json) [env ") +
          kResourcesVariable + "]");
  auto* metrics_option = app.add_option(
      "--metrics-file", metrics_file,
      std::string("The allocation log to record the action in [env ") + kMetricsFileVariable + "]");
  if (auto done = parse_subcommand(app, name, argc, argv)) return std::move(*done);
  if (reason_option != nullptr) {
    if (reason_option->count() == 0 || reason.find_first_not_of(" \t") == std::string::npos) {
      return usage_error(name + ": --reason TEXT is required: say why (it is shown to waiters " +
                         "and written to the log)");
    }
    line.reason = reason;
  }
  if (name == "release" && !line.force) {
    return usage_error(
        "release: --force is required: it takes the device from whoever holds it (a holder "
        "releases its own device by ending)");
  }
  if (until_option != nullptr && until_option->count() != 0) line.until = until;
  if (grace_option != nullptr && grace_option->count() != 0) line.grace = grace;
  if (folder_option->count() != 0) line.lock_folder = lock_folder;
  if (backend_option->count() != 0) line.lock_backend = lock_backend;
  if (resources_option->count() != 0) line.resources = resources;
  if (metrics_option->count() != 0) line.metrics_file = metrics_file;
  return {std::move(line), kOk, "", ""};
}

ParseResult parse_command_line(int argc, const char* const* argv) {
  if (argc > 1 && std::string(argv[1]) == "report") return parse_report_command_line(argc, argv);
  if (argc > 1 && (std::string(argv[1]) == "reserve" || std::string(argv[1]) == "drain" ||
                   std::string(argv[1]) == "unreserve" || std::string(argv[1]) == "release")) {
    return parse_admin_command_line(argc, argv);
  }
  if (argc > 1 && std::string(argv[1]) == "ctest-spec") {
    return parse_ctest_spec_command_line(argc, argv);
  }
  Parser parser;
  std::vector<std::string> options;
  std::vector<std::string> command;
  std::optional<std::string> watch;
  bool seen_status_word = false;
  for (int i = 1; i < argc; ++i) {
    const std::string word = argv[i];
    if (word == "--") {
      command.assign(argv + i + 1, argv + argc);
      break;
    }
    // --watch takes an optional value: the next word when it starts like a number.
    if (word == "--watch" || word.rfind("--watch=", 0) == 0) {
      if (word.size() > 8) {
        watch = word.substr(8);
      } else if (i + 1 < argc && argv[i + 1][0] != '\0' &&
                 std::string("0123456789.").find(argv[i + 1][0]) != std::string::npos) {
        watch = argv[++i];
      } else {
        watch = word.size() == 8 ? std::string() : std::string("2");
      }
      options.push_back("--watch");
      continue;
    }
    if (word.size() > 1 && word[0] == '-') {
      // Joined as --opt=value so that a value starting with '-' (--timeout -1) stays a value
      // and reaches the validation that explains it.
      if (parser.takes_value(word) && i + 1 < argc) {
        if (parser.is_option(argv[i + 1])) {
          return usage_error(word + " needs a value, found the option " + argv[i + 1] + "; write " +
                             word + " VALUE (" + word + "=" + argv[i + 1] +
                             " if the value really is that)");
        }
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
  line.status = line.status_flag || parser.status_command->parsed();
  line.lock_folder = parser.value_of("--lock-folder");
  line.lock_backend = parser.value_of("--lock-backend");
  line.resources = parser.value_of("--resources");
  line.timeout = parser.value_of("--timeout");
  line.hostname = parser.value_of("--hostname");
  line.requirements = parser.value_of("--requirements");
  line.metrics_file = parser.value_of("--metrics-file");
  line.lock_name = parser.value_of("--lock-name");
  line.priority = parser.value_of("--priority");
  line.count = parser.value_of("--count");
  line.watch = watch;
  line.command = std::move(command);

  for (const auto& [name, value] :
       std::initializer_list<std::pair<const char*, const std::optional<std::string>&>>{
           {"--lock-folder", line.lock_folder},
           {"--lock-backend", line.lock_backend},
           {"--resources", line.resources},
           {"--hostname", line.hostname},
           {"--metrics-file", line.metrics_file},
           {"--lock-name", line.lock_name},
           {"--priority", line.priority},
           {"--watch", line.watch},
           {"--count", line.count}}) {
    if (value && value->empty()) {
      return usage_error(std::string(name) + " must not be empty; give a value, or leave " + name +
                         " out for its default");
    }
  }
  if (line.status && line.validate_only) {
    return usage_error("status and --validate-only cannot be combined; use one of them");
  }
  if (line.json && !line.status) return usage_error("--json only applies to status");
  if (line.watch && !line.status) {
    return usage_error("--watch only applies to status: lockable status --watch [SECONDS]");
  }
  if (line.count && !line.watch) {
    return usage_error("--count only applies to status --watch: lockable status --watch --count " +
                       *line.count);
  }
  if (line.lock_name && (line.status || line.validate_only)) {
    return usage_error(
        "--lock-name runs a command under a named lock; it cannot be combined with status or "
        "--validate-only");
  }
  if (line.lock_name) {
    // Device options mean nothing for a named lock; the LOCKABLE_* variables a CI job exports
    // for its devices are ignored, but a flag typed here is a mistake worth saying.
    for (const auto& [name, value] :
         std::initializer_list<std::pair<const char*, const std::optional<std::string>&>>{
             {"--resources", line.resources},
             {"--requirements", line.requirements},
             {"--lock-folder", line.lock_folder},
             {"--lock-backend", line.lock_backend},
             {"--hostname", line.hostname}}) {
      if (value) {
        return usage_error(std::string(name) +
                           " does not apply to --lock-name, which locks a name, not a device; "
                           "leave out one of them");
      }
    }
  }
  if (line.status && !line.command.empty()) {
    if (line.status_flag) {
      return usage_error("--status takes no command, found \"" + line.command.front() +
                         "\"; leave out --status to run the command, or the command to print "
                         "the status");
    }
    return usage_error("status takes no command, found \"" + line.command.front() +
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
