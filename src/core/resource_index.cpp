#include "core/resource_index.hpp"

#include <algorithm>
#include <functional>
#include <string>
#include <utility>

namespace lockable::detail {
namespace {

// Equality that also tells 2 from 2.0 and "2": values merged under one code must be
// indistinguishable to every operator, now and when new ones are added.
bool same_value(const Json& a, const Json& b) {
  if (a.type() != b.type()) return false;
  switch (a.type()) {
    case Json::value_t::array:
      if (a.size() != b.size()) return false;
      for (std::size_t i = 0; i < a.size(); ++i) {
        if (!same_value(a[i], b[i])) return false;
      }
      return true;
    case Json::value_t::object: {
      if (a.size() != b.size()) return false;
      auto left = a.begin();
      auto right = b.begin();
      for (; left != a.end(); ++left, ++right) {
        if (left.key() != right.key() || !same_value(left.value(), right.value())) return false;
      }
      return true;
    }
    default:
      return a == b;
  }
}

// Codes of the distinct values seen at one path: open addressing over a power-of-two table,
// as building the index spends most of its time here.
class Dictionary {
 public:
  /// The code of `value`, or `next` after remembering it under that code. `values` holds the
  /// values by code.
  std::uint32_t code_for(const Json& value, std::uint32_t next,
                         const std::vector<const Json*>& values) {
    if ((count_ + 1) * 2 > slots_.size()) grow();
    // nlohmann's hash mixes in the value's type, so it agrees with same_value.
    const std::size_t hash = std::hash<Json>{}(value);
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = hash & mask;; i = (i + 1) & mask) {
      Slot& slot = slots_[i];
      if (slot.code == kEmpty) {
        slot = Slot{hash, next};
        ++count_;
        return next;
      }
      if (slot.hash == hash && same_value(*values[slot.code], value)) return slot.code;
    }
  }

 private:
  static constexpr std::uint32_t kEmpty = ~std::uint32_t{0};
  struct Slot {
    std::size_t hash = 0;
    std::uint32_t code = kEmpty;
  };

  void grow() {
    std::vector<Slot> old(std::max<std::size_t>(16, slots_.size() * 2));
    old.swap(slots_);
    const std::size_t mask = slots_.size() - 1;
    for (const Slot& slot : old) {
      if (slot.code == kEmpty) continue;
      std::size_t i = slot.hash & mask;
      while (slots_[i].code != kEmpty) i = (i + 1) & mask;
      slots_[i] = slot;
    }
  }

  std::vector<Slot> slots_;
  std::size_t count_ = 0;
};

}  // namespace

struct ResourceIndex::PathNode {
  /// Sorted by key.
  std::vector<std::pair<std::string, std::unique_ptr<PathNode>>> children;
  /// Rows that have a value at this path, ascending, and that value's code.
  std::vector<std::uint32_t> rows;
  std::vector<std::uint32_t> codes;
  /// The distinct values, by code.
  std::vector<const Json*> values;
  /// Rows whose value here is an array: a longer path steps into it, which the index does not
  /// follow, so those rows are matched by the tree matcher.
  std::vector<std::uint32_t> array_rows;
  /// Only while building: the code of each value seen, until the path proves to hold mostly
  /// distinct values (ids, serial numbers); from then on each row gets a code of its own, as
  /// looking values up would cost more than evaluating them.
  Dictionary dictionary;
  bool distinct = false;
  /// Only while building: where the next key of an object is expected in `children`.
  std::size_t cursor = 0;

  const PathNode* child(const std::string& key) const {
    const auto it = std::lower_bound(children.begin(), children.end(), key, key_less);
    return it != children.end() && it->first == key ? it->second.get() : nullptr;
  }

  // Objects iterate in key order and rows mostly share their keys, so the next key is nearly
  // always the one at the cursor.
  PathNode& child_for_build(const std::string& key) {
    if (cursor < children.size() && children[cursor].first == key) {
      return *children[cursor++].second;
    }
    auto it = std::lower_bound(children.begin(), children.end(), key, key_less);
    if (it == children.end() || it->first != key) {
      it = children.emplace(it, key, std::make_unique<PathNode>());
    }
    cursor = static_cast<std::size_t>(it - children.begin()) + 1;
    return *it->second;
  }

  std::uint32_t code_for(const Json& value) {
    constexpr std::size_t kDistinctCheckFrom = 1024;
    const auto next = static_cast<std::uint32_t>(values.size());
    if (!distinct && rows.size() >= kDistinctCheckFrom && values.size() * 2 > rows.size()) {
      distinct = true;
      dictionary = Dictionary();
    }
    if (distinct) {
      values.push_back(&value);
      return next;
    }
    const auto code = dictionary.code_for(value, next, values);
    if (code == next) values.push_back(&value);
    return code;
  }

  static bool key_less(const std::pair<std::string, std::unique_ptr<PathNode>>& entry,
                       const std::string& key) {
    return entry.first < key;
  }
};

// A set of rows, one bit each; bits past `size` stay zero.
class ResourceIndex::Bitmap {
 public:
  Bitmap(std::size_t size, bool value)
      : words_((size + 63) / 64, value ? ~std::uint64_t{0} : 0), size_(size) {
    if (value) clear_tail();
  }

  void assign(std::size_t row, bool value) {
    const std::uint64_t mask = std::uint64_t{1} << (row % 64);
    auto& word = words_[row / 64];
    word = value ? (word | mask) : (word & ~mask);
  }

  Bitmap& operator&=(const Bitmap& other) {
    for (std::size_t i = 0; i < words_.size(); ++i) words_[i] &= other.words_[i];
    return *this;
  }

  Bitmap& operator|=(const Bitmap& other) {
    for (std::size_t i = 0; i < words_.size(); ++i) words_[i] |= other.words_[i];
    return *this;
  }

  void flip() {
    for (auto& word : words_) word = ~word;
    clear_tail();
  }

  bool none() const {
    return std::all_of(words_.begin(), words_.end(), [](std::uint64_t word) { return word == 0; });
  }

  std::vector<std::size_t> rows() const {
    std::vector<std::size_t> result;
    for (std::size_t i = 0; i < words_.size(); ++i) {
      for (std::uint64_t word = words_[i]; word != 0; word &= word - 1) {
        result.push_back(i * 64 + static_cast<std::size_t>(__builtin_ctzll(word)));
      }
    }
    return result;
  }

 private:
  void clear_tail() {
    if (size_ % 64 != 0) words_.back() &= (std::uint64_t{1} << (size_ % 64)) - 1;
  }

  std::vector<std::uint64_t> words_;
  std::size_t size_;
};

ResourceIndex::ResourceIndex(const std::vector<Resource>& resources)
    : resources_(resources), root_(std::make_unique<PathNode>()) {
  std::vector<std::pair<const Json*, PathNode*>> pending;
  for (std::size_t row = 0; row < resources.size(); ++row) {
    const auto row32 = static_cast<std::uint32_t>(row);
    const Json& attributes = resources[row].attributes;
    if (!attributes.is_object()) {
      unindexed_rows_.push_back(row32);
      continue;
    }
    pending.assign(1, {&attributes, root_.get()});
    while (!pending.empty()) {
      const auto [object, node] = pending.back();
      pending.pop_back();
      node->cursor = 0;
      for (auto it = object->begin(); it != object->end(); ++it) {
        PathNode& child = node->child_for_build(it.key());
        const Json& value = it.value();
        child.codes.push_back(child.code_for(value));
        child.rows.push_back(row32);
        if (value.is_object()) pending.emplace_back(&value, &child);
        if (value.is_array()) child.array_rows.push_back(row32);
      }
    }
  }
  // Free the build-only dictionaries.
  std::vector<PathNode*> nodes{root_.get()};
  while (!nodes.empty()) {
    PathNode* node = nodes.back();
    nodes.pop_back();
    node->dictionary = Dictionary();
    node->values.shrink_to_fit();
    for (auto& entry : node->children) nodes.push_back(entry.second.get());
  }
}

ResourceIndex::~ResourceIndex() = default;

std::vector<std::size_t> ResourceIndex::find_matches(const Query& query) const {
  Bitmap result(resources_.size(), true);
  for (const auto index : query.eval_order) {
    result &= evaluate_document(query.clauses[index].node);
    if (result.none()) break;
  }
  return result.rows();
}

ResourceIndex::Bitmap ResourceIndex::evaluate_document(const Node& node) const {
  using Kind = Node::Kind;
  const std::size_t size = resources_.size();
  switch (node.kind) {
    case Kind::kAnd: {
      Bitmap result(size, true);
      for (const auto& child : node.children) {
        result &= evaluate_document(child);
        if (result.none()) break;
      }
      return result;
    }
    case Kind::kOr:
    case Kind::kNor: {
      Bitmap result(size, false);
      for (const auto& child : node.children) result |= evaluate_document(child);
      if (node.kind == Kind::kNor) result.flip();
      return result;
    }
    case Kind::kField:
      return evaluate_field(node);
    case Kind::kTrue:
      return Bitmap(size, true);
    default:
      return Bitmap(size, false);
  }
}

ResourceIndex::Bitmap ResourceIndex::evaluate_field(const Node& node) const {
  const Node& condition = node.children.front();
  const auto by_tree = [&](Bitmap& bitmap, const std::vector<std::uint32_t>& rows) {
    for (const auto row : rows) {
      bitmap.assign(row, matches_document(node, resources_[row].attributes));
    }
  };

  Bitmap result(resources_.size(), matches_value(condition, nullptr));
  by_tree(result, unindexed_rows_);
  if (node.path.empty()) {
    // Not produced by the compiler; answered row by row rather than guessed.
    std::vector<std::uint32_t> all(resources_.size());
    for (std::size_t row = 0; row < all.size(); ++row) all[row] = static_cast<std::uint32_t>(row);
    by_tree(result, all);
    return result;
  }

  const PathNode* node_at = root_.get();
  for (std::size_t step = 0; step < node.path.size() && node_at != nullptr; ++step) {
    // A row with an array before the last step is looked into by the tree matcher.
    if (step > 0) by_tree(result, node_at->array_rows);
    node_at = node_at->child(node.path[step]);
  }
  if (node_at == nullptr) return result;

  std::vector<char> holds(node_at->values.size());
  for (std::size_t code = 0; code < holds.size(); ++code) {
    holds[code] = matches_value(condition, node_at->values[code]);
  }
  for (std::size_t i = 0; i < node_at->rows.size(); ++i) {
    result.assign(node_at->rows[i], holds[node_at->codes[i]] != 0);
  }
  return result;
}

}  // namespace lockable::detail
