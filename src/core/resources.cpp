#include <lockable/error.hpp>
#include <lockable/resource.hpp>

#include "core/json_text.hpp"
#include "core/resource_index.hpp"
#include "core/resources_text.hpp"

#include <algorithm>
#include <cstdio>
#include <functional>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>
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

namespace {

// Frees `value`'s children from the last to the first, leaves first, for two reasons:
// - nlohmann's destructor, guarding against deep recursion, first moves the children of every
//   non-empty object or array onto a stack of its own on the heap: one more block to allocate and
//   free per container;
// - glibc keeps small freed blocks aside and merges them all on the next large allocation or
//   free (malloc_consolidate), walking them from the last freed. Freed in the reverse of the
//   order QuickJsonReader allocated them, that walk goes up through memory instead of jumping
//   about: a 100,000-device list loads and frees ~25% faster.
// A list allocated in another order (a deep copy: std::map clones a tree root first) frees ~40%
// slower this way than through nlohmann's destructor, so only the quick reader's lists take it.
// Below `levels` (a Resource built in memory may nest without limit) nlohmann does the rest.
void free_backwards(Json& value, int levels) {
  if (levels == 0) return;
  if (value.is_object()) {
    auto& members = value.get_ref<Json::object_t&>();
    while (!members.empty()) {
      const auto last = std::prev(members.end());
      free_backwards(last->second, levels - 1);
      members.erase(last);
    }
  } else if (value.is_array()) {
    auto& elements = value.get_ref<Json::array_t&>();
    while (!elements.empty()) {
      free_backwards(elements.back(), levels - 1);
      elements.pop_back();
    }
  }
}

}  // namespace

struct Resources::Shared {
  Shared(std::vector<Resource> resources, bool allocated_in_reading_order)
      : list(std::move(resources)), in_reading_order(allocated_in_reading_order) {}
  ~Shared() {
    if (!in_reading_order) return;
    while (!list.empty()) {
      free_backwards(list.back().attributes, kMaxResourceDepth);
      list.pop_back();
    }
  }
  Shared(const Shared&) = delete;
  Shared& operator=(const Shared&) = delete;
  // Not const only so that the destructor may free it backwards (see free_backwards).
  std::vector<Resource> list;
  const bool in_reading_order;
  std::once_flag index_built;
  std::unique_ptr<const detail::ResourceIndex> index;
};

Resources::Resources() : Resources(std::vector<Resource>{}) {}

Resources::Resources(std::vector<Resource> list)
    : shared_(std::make_shared<Shared>(std::move(list), false)) {}

Resources detail::resources_in_reading_order(std::vector<Resource> list) {
  return Resources(std::make_shared<Resources::Shared>(std::move(list), true));
}

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

// The entry that first used each id. Open addressing over one array of slots that hold the hash:
// a node-based map costs a heap block and a few cache misses per id, a fifth of a large load.
class IdTable {
 public:
  // Records `index` as the first user of `id` unless an earlier entry was; returns the first
  // user's index. `id` must stay where it is while the table lives.
  std::size_t insert(const std::string& id, std::size_t index) {
    if ((size_ + 1) * 2 > slots_.size()) grow();
    const auto hash = std::hash<std::string_view>{}(id);
    for (auto at = hash & mask_;; at = (at + 1) & mask_) {
      auto& slot = slots_[at];
      if (slot.id == nullptr) {
        slot = Slot{hash, &id, index};
        ++size_;
        return index;
      }
      if (slot.hash == hash && *slot.id == id) return slot.index;
    }
  }

 private:
  struct Slot {
    std::size_t hash = 0;
    const std::string* id = nullptr;
    std::size_t index = 0;
  };

  void grow() {
    std::vector<Slot> old(std::max<std::size_t>(slots_.size() * 2, 1024));
    old.swap(slots_);
    mask_ = slots_.size() - 1;
    for (const auto& slot : old) {
      if (slot.id == nullptr) continue;
      auto at = slot.hash & mask_;
      while (slots_[at].id != nullptr) at = (at + 1) & mask_;
      slots_[at] = slot;
    }
  }

  std::vector<Slot> slots_;
  std::size_t mask_ = 0;
  std::size_t size_ = 0;
};

// The checks of resources.json entries, one at a time and in order, shared by both ways of
// loading. Every problem is collected, worded as users see it.
class EntryChecker {
 public:
  // `check_utf8`: whether strings may hold invalid UTF-8 (a Json built in memory; parsed text
  // is checked as a whole), which would make every later dump() of the attributes throw.
  EntryChecker(const std::string& source, bool check_utf8)
      : source_(source), check_utf8_(check_utf8) {}

  // Checks entry `index`. Returns its id when it has no problem (then it may become a Resource),
  // else nullptr. The ids seen are kept as pointers to the entries' own "id" strings: the caller
  // keeps every entry checked alive (moved or not: nlohmann keeps a string on the heap) while
  // this checker lives.
  const std::string* check(std::size_t index, const Json& entry) {
    // Built only for a problem: most entries have none.
    const Json* string_id = nullptr;
    const auto report = [&](std::string message) {
      std::string where = source_ + ": entry " + std::to_string(index);
      if (string_id != nullptr) where += " (id " + shown(*string_id) + ")";
      problems.push_back(Problem{std::move(where), std::move(message)});
    };
    const auto problems_before = problems.size();
    if (check_utf8_) {
      const auto bad_text = detail::invalid_utf8_in(entry);
      if (!bad_text.empty()) {
        // Named without the id: the id itself may be what is invalid.
        problems.push_back(Problem{source_ + ": entry " + std::to_string(index),
                                   bad_text + "; store attributes as UTF-8 text"});
        return nullptr;
      }
    }
    if (!entry.is_object()) {
      report("must be a resource object like {\"id\": \"dut-1\", \"online\": true}, found " +
             detail::type_phrase(entry) + " " + shown(entry));
      return nullptr;
    }
    const std::string* id_text = nullptr;
    const auto id = entry.find("id");
    if (id == entry.end()) {
      report("missing \"id\"; give every resource a unique string \"id\"");
    } else if (!id->is_string()) {
      report("\"id\" must be a string, found " + shown(*id) +
             "; give every resource a unique string \"id\"");
    } else {
      string_id = &*id;
      id_text = &id->get_ref<const std::string&>();
      const auto reason = invalid_id_reason(*id_text);
      if (!reason.empty()) {
        report("\"id\" " + reason +
               "; the id becomes a lock file name, so use letters, digits, \"-\", \"_\" and \".\" "
               "(not first), at most 200 bytes");
      } else {
        const auto first = first_use_.insert(*id_text, index);
        if (first != index) {
          report("duplicate id, also used by entry " + std::to_string(first) +
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
    return problems.size() == problems_before ? id_text : nullptr;
  }

  std::vector<Problem> problems;

 private:
  const std::string& source_;
  bool check_utf8_;
  IdTable first_use_;
};

// Validates `document` and moves its entries into the result.
Resources take_resources(Json&& document, const std::string& source, bool check_utf8) {
  if (!document.is_array()) {
    fail(source, source,
         "must be a JSON array of resource objects, found " + detail::type_phrase(document) +
             "; wrap the objects in [ ]");
  }
  std::vector<Resource> resources;
  resources.reserve(document.size());
  EntryChecker checker(source, check_utf8);
  for (std::size_t index = 0; index < document.size(); ++index) {
    auto& entry = document[index];
    if (const auto* id = checker.check(index, entry)) {
      std::string id_text = *id;
      resources.push_back(Resource{std::move(id_text), std::move(entry)});
    }
  }
  if (!checker.problems.empty()) throw ResourcesError(source, std::move(checker.problems));
  return Resources(std::move(resources));
}

}  // namespace

Resources parse_resources(const Json& document, const std::string& source) {
  return take_resources(Json(document), source, true);
}

namespace {

// The bodies of detail::parse_resources_text_quick and _thorough, defined here rather than in
// namespace detail, so that their unqualified names (fail) cannot resolve to another file's
// helpers of the same name in a unity build.
std::optional<Resources> read_quickly(const std::string& text, const std::string& source) {
  detail::QuickJsonReader reader(text, kMaxResourceDepth);
  if (!reader.open_array()) return std::nullopt;
  std::vector<Resource> resources;
  // Entries with a problem, kept alive for the checker's pointers to their ids.
  std::vector<Json> rejected;
  EntryChecker checker(source, false);
  bool more = false;
  if (!reader.next_element(true, more)) return std::nullopt;
  for (std::size_t index = 0; more; ++index) {
    // Each entry is built in its Resource's place and checked while it is still in cache.
    auto& resource = resources.emplace_back();
    if (!reader.read_element(resource.attributes)) return std::nullopt;
    if (const auto* id = checker.check(index, resource.attributes)) {
      resource.id = *id;
    } else {
      rejected.push_back(std::move(resource.attributes));
      resources.pop_back();
    }
    if (!reader.next_element(false, more)) return std::nullopt;
  }
  if (!reader.at_end()) return std::nullopt;
  // The text is valid JSON and UTF-8 (the reader vouches for both), so these are the problems
  // the thorough path finds too.
  if (!checker.problems.empty()) throw ResourcesError(source, std::move(checker.problems));
  return detail::resources_in_reading_order(std::move(resources));
}

Resources read_thoroughly(const std::string& text, const std::string& source) {
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

}  // namespace

std::optional<Resources> detail::parse_resources_text_quick(const std::string& text,
                                                            const std::string& source) {
  return read_quickly(text, source);
}

Resources detail::parse_resources_text_thorough(const std::string& text,
                                                const std::string& source) {
  return read_thoroughly(text, source);
}

Resources parse_resources_text(const std::string& text, const std::string& source) {
  // Valid files, the common case, take the quick reader; anything it gives up on (a syntax
  // error above all) is read again by parse_json, whose errors carry the exact place.
  if (auto resources = read_quickly(text, source)) return std::move(*resources);
  return read_thoroughly(text, source);
}

}  // namespace lockable
