#include <lockable/error.hpp>
#include <lockable/gtest/flags.hpp>
#include <lockable/requirements.hpp>
#include <lockable/settings.hpp>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <string_view>
#include <vector>

namespace lockable::gtest {
namespace {

constexpr std::string_view kFlagPrefix = "--lockable_";
constexpr std::string_view kDashedPrefix = "--lockable-";

struct FlagSpec {
  const char* name;  // without the prefix
  const char* env;   // the library's name for the variable, shared with the CLI
  std::optional<Setting> EnvironmentSettings::*from_env;
  const char* help;
};

const FlagSpec kFlags[] = {
    {"resources", kResourcesVariable, &EnvironmentSettings::resources,
     "resources.json describing the devices, or an http(s):// URL answering one (default: "
     "resources.json in the working directory)"},
    {"requirements", kRequirementsVariable, &EnvironmentSettings::requirements,
     "lock one device matching this for the whole program, e.g. '{\"os\":\"Android\"}' or "
     "'os=Android' (default: none; suites deriving from LockableTest lock their own)"},
    {"timeout", kTimeoutVariable, &EnvironmentSettings::timeout,
     "seconds to wait for a busy device, fractions allowed (default: 1000)"},
    {"lock_folder", kLockFolderVariable, &EnvironmentSettings::lock_folder,
     "folder holding the <id>.pid lock files (default: the system temp dir, as Python lockable)"},
    {"lock_backend", kLockBackendVariable, &EnvironmentSettings::lock_backend,
     "where locks live, as a spec: a lock folder path or file://PATH (etcd:// and http(s):// "
     "are reserved for coming backends) (default: the lock folder)"},
    {"hostname", kHostnameVariable, &EnvironmentSettings::hostname,
     "this host's name for the implicit hostname filter (default: gethostname())"},
    {"on_unavailable", kOnUnavailableVariable, &EnvironmentSettings::on_unavailable,
     "fail|skip: what a suite does when no device matches or all stay busy (default: fail)"},
    {"metrics_file", kMetricsFileVariable, &EnvironmentSettings::metrics_file,
     "append one JSON line per finished allocation to this file, for 'lockable report' "
     "(default: none)"},
    {"priority", kPriorityVariable, &EnvironmentSettings::priority,
     "priority of this program's requests in the queue, a whole number from -1000 to 1000: "
     "among waiters a device can serve, higher goes first; waiting raises it by one per minute "
     "so none starves (default: 0)"},
};

std::string known_flags() {
  std::string text;
  for (const auto& flag : kFlags) {
    if (!text.empty()) text += ", ";
    text += std::string(kFlagPrefix) + flag.name;
  }
  return text;
}

const FlagSpec* find_flag(std::string_view name) {
  for (const auto& flag : kFlags) {
    if (name == flag.name) return &flag;
  }
  return nullptr;
}

// A flag wins over its variable; the variables are read by the library, as the CLI reads them.
Config build_config(const std::map<std::string, Setting>& flags, const EnvLookup& env) {
  const EnvironmentSettings from_env = environment_settings(env);
  const auto lookup = [&](const FlagSpec& spec) -> std::optional<Setting> {
    if (const auto it = flags.find(spec.name); it != flags.end()) return it->second;
    return from_env.*spec.from_env;
  };
  const auto spec = [](const char* name) -> const FlagSpec& { return *find_flag(name); };

  Config config;
  if (auto s = lookup(spec("resources"))) {
    if (s->value.empty()) {
      throw ConfigError(s->source + ": must name a resources file, e.g. " + s->source +
                        "=lab/resources.json");
    }
    config.resources = s->value;
  }
  if (auto s = lookup(spec("requirements"))) {
    try {
      (void)Requirements::parse(s->value);
    } catch (const Error& e) {
      throw ConfigError(s->source + ": invalid requirements: " + e.what());
    }
    config.requirements = s->value;
  }
  if (auto s = lookup(spec("timeout"))) config.timeout = parse_timeout(s->value, s->source);
  if (auto s = lookup(spec("lock_folder"))) config.lock_folder = s->value;
  if (auto s = lookup(spec("lock_backend"))) config.lock_backend = s->value;
  if (auto s = lookup(spec("hostname"))) config.hostname = s->value;
  if (auto s = lookup(spec("metrics_file"))) {
    if (s->value.empty()) {
      throw ConfigError(s->source + ": must name a file, e.g. " + s->source +
                        "=build/allocations.jsonl");
    }
    config.metrics_file = s->value;
  }
  if (auto s = lookup(spec("priority"))) config.priority = parse_priority(s->value, s->source);
  if (auto s = lookup(spec("on_unavailable"))) {
    if (s->value == "fail") {
      config.on_unavailable = OnUnavailable::kFail;
    } else if (s->value == "skip") {
      config.on_unavailable = OnUnavailable::kSkip;
    } else {
      throw ConfigError(s->source + ": must be \"fail\" or \"skip\", found \"" + s->value + "\"");
    }
  }
  return config;
}

}  // namespace

const char* to_string(OnUnavailable value) noexcept {
  return value == OnUnavailable::kSkip ? "skip" : "fail";
}

std::optional<std::string> process_environment(const std::string& name) {
  return getenv_lookup(name);
}

Config config_from_environment(const EnvLookup& env) { return build_config({}, env); }

Config parse_flags(int* argc, char** argv, const EnvLookup& env) {
  std::map<std::string, Setting> flags;
  std::vector<bool> consumed(static_cast<std::size_t>(*argc), false);
  for (int i = 1; i < *argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--") break;
    if (arg.substr(0, kDashedPrefix.size()) == kDashedPrefix) {
      std::string fixed(arg.substr(0, arg.find('=')));
      for (auto& c : fixed) c = c == '-' ? '_' : c;
      fixed.replace(0, 2, "--");
      throw ConfigError("unknown flag " + std::string(arg.substr(0, arg.find('='))) +
                        ": lockable flags use underscores, e.g. " + fixed);
    }
    if (arg.substr(0, kFlagPrefix.size()) != kFlagPrefix) continue;

    const auto equals = arg.find('=');
    const std::string flag(arg.substr(0, equals));
    const FlagSpec* spec = find_flag(std::string_view(flag).substr(kFlagPrefix.size()));
    if (spec == nullptr) {
      throw ConfigError("unknown flag " + flag + "; the lockable flags are " + known_flags() +
                        " (run with --help for details)");
    }
    consumed[static_cast<std::size_t>(i)] = true;
    std::string value;
    if (equals != std::string_view::npos) {
      value = std::string(arg.substr(equals + 1));
    } else {
      if (i + 1 >= *argc) {
        throw ConfigError(flag + " needs a value: " + flag + "=<value> or " + flag + " <value>");
      }
      ++i;
      value = argv[i];
      consumed[static_cast<std::size_t>(i)] = true;
    }
    flags[spec->name] = Setting{std::move(value), flag};
  }

  Config config = build_config(flags, env);

  // Remove the consumed arguments only once everything parsed, so argv is intact on error.
  int out = 1;
  for (int i = 1; i < *argc; ++i) {
    if (!consumed[static_cast<std::size_t>(i)]) argv[out++] = argv[i];
  }
  for (int i = out; i < *argc; ++i) argv[i] = nullptr;
  *argc = out;
  return config;
}

Options to_options(const Config& config) {
  Options options;
  options.hostname = config.hostname;
  options.resources = config.resources;
  options.lock_folder = config.lock_folder;
  options.lock_backend = config.lock_backend;
  if (config.timeout) options.default_timeout = *config.timeout;
  options.metrics_file = config.metrics_file;
  options.priority = config.priority;
  options.log = [](const std::string& line) {
    std::printf("[ LOCKABLE ] %s\n", line.c_str());
    std::fflush(stdout);
  };
  return options;
}

std::string flags_help() {
  std::string text =
      "\nlockable flags (each falls back to the environment variable shown, then to its "
      "default):\n";
  for (const auto& flag : kFlags) {
    text += "  " + std::string(kFlagPrefix) + flag.name + "=VALUE  [" + flag.env + "]\n      " +
            flag.help + "\n";
  }
  text +=
      "Both --lockable_x=VALUE and --lockable_x VALUE work. Suites deriving from "
      "lockable::gtest::LockableTest\nlock their own device; the report (--gtest_output=xml|json) "
      "gets lockable_* properties.\n";
  return text;
}

}  // namespace lockable::gtest
