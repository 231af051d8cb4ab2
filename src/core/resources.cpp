#include <lockable/error.hpp>
#include <lockable/resource.hpp>

#include "core/json_text.hpp"
#include "core/resource_index.hpp"

#include <cstdio>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <utility>

namespace lockable {
namespace {

constexpr std::size_t kMaxIdBytes = 200;
// Resources nest far less than this; the cap keeps recursive JSON code (copy, compare, dump)
// safe on hostile input.
constexpr int kMaxResourceDepth = 64;

using detail::shown;

std::string line_column(const std::string& text, std::size_t offset) {
  std::size_t line = 1;
  std::size_t column = 1;
  for (std::size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  return std::to_string(line) + ":" + std::to_string(column);
}

[[noreturn]] void fail(const std::string& source, std::string where, std::string message) {
  throw ResourcesError(source, {Problem{std::move(where), std::move(message)}});
}

}  // namespace

struct Resources::Shared {
  explicit Shared(std::vector<Resource> resources) : list(std::move(resources)) {}
  const std::vector<Resource> list;
  std::once_flag index_built;
  std::unique_ptr<const detail::ResourceIndex> index;
};

Resources::Resources() : Resources(std::vector<Resource>{}) {}

Resources::Resources(std::vector<Resource> list)
    : shared_(std::make_shared<Shared>(std::move(list))) {}

Resources::Resources(std::initializer_list<Resource> list)
    : Resources(std::vector<Resource>(list)) {}

const std::vector<Resource>& Resources::list() const noexcept { return shared_->list; }

const detail::ResourceIndex& detail::index_of(const Resources& resources) {
  auto& shared = *resources.shared_;
  std::call_once(shared.index_built,
                 [&shared] { shared.index = std::make_unique<const ResourceIndex>(shared.list); });
  return *shared.index;
}

bool Resource::online() const {
  const auto it = attributes.find("online");
  return it != attributes.end() && it->is_boolean() && it->get<bool>();
}

std::string Resource::hostname() const {
  const auto it = attributes.find("hostname");
  return it != attributes.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string invalid_id_reason(const std::string& id) {
  if (id.empty()) return "is empty";
  if (id.size() > kMaxIdBytes) {
    return "is " + std::to_string(id.size()) + " bytes long, more than " +
           std::to_string(kMaxIdBytes);
  }
  if (id.find('/') != std::string::npos) return "contains \"/\"";
  if (id.find('\\') != std::string::npos) return "contains \"\\\"";
  if (id.find('\0') != std::string::npos) return "contains a NUL byte";
  if (id.front() == '.') return "starts with \".\"";
  return {};
}

namespace {

// Validates `document` and moves its entries into the result. `check_utf8`: whether strings may
// hold invalid UTF-8 (a Json built in memory; parsed text was checked as a whole), which would
// make every later dump() of the attributes throw.
Resources take_resources(Json&& document, const std::string& source, bool check_utf8) {
  if (!document.is_array()) {
    fail(source, source,
         "must be a JSON array of resource objects, found " + detail::type_phrase(document) +
             "; wrap the objects in [ ]");
  }
  std::vector<Resource> resources;
  resources.reserve(document.size());
  std::vector<Problem> problems;
  std::unordered_map<std::string, std::size_t> first_use;
  for (std::size_t index = 0; index < document.size(); ++index) {
    auto& entry = document[index];
    // Built only for a problem: most entries have none.
    const Json* string_id = nullptr;
    const auto report = [&](std::string message) {
      std::string where = source + ": entry " + std::to_string(index);
      if (string_id != nullptr) where += " (id " + shown(*string_id) + ")";
      problems.push_back(Problem{std::move(where), std::move(message)});
    };
    const auto problems_before = problems.size();
    if (check_utf8) {
      const auto bad_text = detail::invalid_utf8_in(entry);
      if (!bad_text.empty()) {
        // Named without the id: the id itself may be what is invalid.
        problems.push_back(Problem{source + ": entry " + std::to_string(index),
                                   bad_text + "; store attributes as UTF-8 text"});
        continue;
      }
    }
    if (!entry.is_object()) {
      report("must be a resource object like {\"id\": \"dut-1\", \"online\": true}, found " +
             detail::type_phrase(entry) + " " + shown(entry));
      continue;
    }
    const auto id = entry.find("id");
    if (id == entry.end()) {
      report("missing \"id\"; give every resource a unique string \"id\"");
    } else if (!id->is_string()) {
      report("\"id\" must be a string, found " + shown(*id) +
             "; give every resource a unique string \"id\"");
    } else {
      string_id = &*id;
      const auto& text = id->get_ref<const std::string&>();
      const auto reason = invalid_id_reason(text);
      if (!reason.empty()) {
        report("\"id\" " + reason +
               "; the id becomes a lock file name, so use letters, digits, \"-\", \"_\" and \".\" "
               "(not first), at most 200 bytes");
      } else {
        const auto [first, inserted] = first_use.emplace(text, index);
        if (!inserted) {
          report("duplicate id, also used by entry " + std::to_string(first->second) +
                 "; give every resource a unique \"id\"");
        }
      }
    }
    const auto online = entry.find("online");
    if (online != entry.end() && !online->is_boolean()) {
      report("\"online\" must be true or false, found " + shown(*online));
    }
    const auto hostname = entry.find("hostname");
    if (hostname != entry.end() && !hostname->is_string()) {
      report("\"hostname\" must be a string (the host the device is attached to), found " +
             shown(*hostname));
    }
    if (problems.size() == problems_before) {
      std::string id_text = id->get<std::string>();
      resources.push_back(Resource{std::move(id_text), std::move(entry)});
    }
  }
  if (!problems.empty()) throw ResourcesError(source, std::move(problems));
  return Resources(std::move(resources));
}

}  // namespace

Resources parse_resources(const Json& document, const std::string& source) {
  return take_resources(Json(document), source, true);
}

Resources parse_resources_text(const std::string& text, const std::string& source) {
  if (text.find_first_not_of(" \t\r\n") == std::string::npos) {
    fail(source, source,
         "is empty; write a JSON array of resource objects, e.g. "
         "[{\"id\": \"dut-1\", \"online\": true, \"hostname\": \"rig-01\"}]");
  }
  if (const auto offset = detail::invalid_utf8_offset(text)) {
    char byte[8];
    std::snprintf(byte, sizeof byte, "0x%02X", static_cast<unsigned char>(text[*offset]));
    fail(source, source + ":" + line_column(text, *offset),
         std::string("invalid UTF-8 (byte ") + byte + "); save the file as UTF-8");
  }
  detail::SyntaxError error;
  auto document = detail::parse_json(text, kMaxResourceDepth, error);
  if (!document) {
    if (error.line == 0) {
      fail(source, source,
           error.detail + "; resources are a flat array of objects, keep attributes shallower");
    }
    fail(source, source + ":" + std::to_string(error.line) + ":" + std::to_string(error.column),
         "invalid JSON: " + error.detail);
  }
  return take_resources(std::move(*document), source, false);
}

}  // namespace lockable
