#pragma once

#include <optional>
#include <string>
#include <vector>

namespace lockable::cli {

/// What the user asked for, as typed; values are validated later by the library (timeouts,
/// requirements) so that its messages stay the single source of truth.
struct CommandLine {
  bool validate_only = false;
  /// `lockable status` or `lockable --status`.
  bool status = false;
  /// Set by the `--status` flag rather than the `status` word (for the hint of a usage error).
  bool status_flag = false;
  /// Machine-readable status output.
  bool json = false;
  /// No "locked"/"released" lines and no progress lines.
  bool quiet = false;
  /// Run the command's words directly with exec, without a shell.
  bool no_shell = false;
  /// Each unset when its flag is absent: the `LOCKABLE_*` variable, then the default, apply.
  /// A flag given with an empty value is kept (and refused later, except --requirements).
  std::optional<std::string> lock_folder;
  std::optional<std::string> lock_backend;
  std::optional<std::string> resources;
  std::optional<std::string> timeout;
  std::optional<std::string> hostname;
  std::optional<std::string> requirements;
  std::optional<std::string> metrics_file;
  /// `--priority N`: the request's priority (LOCKABLE_PRIORITY otherwise).
  std::optional<std::string> priority;
  /// status `--watch [SECONDS]`: refresh every SECONDS (as typed; "2" when none was given).
  std::optional<std::string> watch;
  /// status `--count N`: with --watch, stop after N snapshots (as typed).
  std::optional<std::string> count;
  /// `--lock-name NAME`: hold this named lock on the lock service while COMMAND runs, instead
  /// of a device.
  std::optional<std::string> lock_name;
  /// The command and its arguments as typed; joined with spaces for the shell unless no_shell.
  std::vector<std::string> command;

  /// `lockable report FILES...`: figures from allocation logs and GoogleTest reports.
  bool report = false;
  std::vector<std::string> report_files;
  /// text, json, csv or openmetrics.
  std::string report_format = "text";
  /// --since / --until as typed (ISO 8601 times or dates, checked by the report).
  std::optional<std::string> since;
  std::optional<std::string> until;
  /// --html FILE: also write the HTML page there.
  std::optional<std::string> html;

  /// `lockable ctest-spec`: a CTest resource spec file from the resources (uses `resources`,
  /// `hostname`).
  bool ctest_spec = false;
  std::string ctest_by;
  std::string ctest_type = "devices";
  bool all_hosts = false;
  bool include_offline = false;
  /// -o FILE; unset: stdout.
  std::optional<std::string> output;

  /// An operator's action on one device: "reserve", "drain", "unreserve" or "release" (empty:
  /// none). Uses `lock_folder`, `lock_backend`, `resources`, `metrics_file`, and `until` (as
  /// typed: an ISO 8601 time or a duration from now, checked by the command).
  std::string admin;
  std::string admin_id;
  std::optional<std::string> reason;
  /// release: --force (required), --kill, --grace SECONDS as typed.
  bool force = false;
  bool kill = false;
  std::optional<std::string> grace;
};

/// Either a command line to act on, or an early exit (help, version, usage error) with the text
/// to print.
struct ParseResult {
  std::optional<CommandLine> line;
  int exit_code = 0;
  /// Goes to stdout (help, version).
  std::string out;
  /// Goes to stderr (usage errors, already prefixed `lockable: `).
  std::string err;
};

/// Parses `argv`. Options come first; the command starts at the first word that is neither an
/// option nor an option's value (or after `--`), and everything from there on belongs to the
/// command, options included (`lockable make -j4`). `status` as the first such word is the
/// subcommand; `lockable -- status` runs a command named status. An option that takes a value
/// followed by another option (`--resources --lock-folder L`) is a usage error, not a file
/// named `--lock-folder` (`--resources=--lock-folder` names one). Never throws.
ParseResult parse_command_line(int argc, const char* const* argv);

/// Parses `lockable ctest-spec [OPTIONS]` (argv[1] is "ctest-spec"). Never throws.
ParseResult parse_ctest_spec_command_line(int argc, const char* const* argv);

/// Parses `lockable reserve|drain|unreserve|release ID [OPTIONS]` (argv[1] is the word). Never
/// throws.
ParseResult parse_admin_command_line(int argc, const char* const* argv);

/// Parses `lockable report [OPTIONS] FILES...` (argv[1] is "report"). Never throws.
ParseResult parse_report_command_line(int argc, const char* const* argv);

}  // namespace lockable::cli
