// JSON text helpers shared by resources.json loading and requirement parsing: dumps that never
// throw, UTF-8 checks, short quotes of values for messages, and the depth-limited JSON parser.
// No query or resource knowledge lives here beyond how messages name a path.

#include "core/json_text.hpp"

#include <algorithm>
#include <cstdio>
#include <utility>
#include <vector>

namespace lockable::detail {

std::string dump(const Json& value) {
  if (value.empty() && (value.is_object() || value.is_array())) {
    return value.is_object() ? "{}" : "[]";  // the requirement of most locks, without a serializer
  }
  return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string in_quotes(std::string_view text) {
  // Printable ASCII other than '"' and '\\' is its own JSON text (ids, uuids, times, host
  // names): every lock quotes a few, and the serializer costs more than the rest of the text.
  const bool plain = std::all_of(text.begin(), text.end(), [](char c) {
    return c >= 0x20 && c <= 0x7E && c != '"' && c != '\\';
  });
  if (!plain) return dump(Json(std::string(text)));
  std::string quoted;
  quoted.reserve(text.size() + 2);
  quoted += '"';
  quoted += text;
  quoted += '"';
  return quoted;
}

bool is_operator(const std::string& key) { return !key.empty() && key[0] == '$'; }

std::string under(const std::string& label) {
  return label.empty() ? std::string() : " under " + in_quotes(label);
}

std::string utf8_prefix(std::string_view text, std::size_t max_bytes) {
  if (text.size() <= max_bytes) return std::string(text);
  std::size_t cut = max_bytes;
  // Back off over continuation bytes (10xxxxxx) to the start of the cut character.
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return std::string(text.substr(0, cut));
}

std::optional<std::size_t> invalid_utf8_offset(std::string_view text) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t size = text.size();
  std::size_t i = 0;
  while (i < size) {
    const unsigned char lead = bytes[i];
    std::size_t length = 0;
    unsigned char low = 0x80;
    unsigned char high = 0xBF;
    if (lead < 0x80) {
      ++i;
      continue;
    } else if (lead >= 0xC2 && lead <= 0xDF) {
      length = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      length = 3;
      if (lead == 0xE0) low = 0xA0;   // overlong
      if (lead == 0xED) high = 0x9F;  // surrogates
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      length = 4;
      if (lead == 0xF0) low = 0x90;   // overlong
      if (lead == 0xF4) high = 0x8F;  // above U+10FFFF
    } else {
      return i;
    }
    if (i + length > size) return i;
    if (bytes[i + 1] < low || bytes[i + 1] > high) return i;
    for (std::size_t k = 2; k < length; ++k) {
      if (bytes[i + k] < 0x80 || bytes[i + k] > 0xBF) return i;
    }
    i += length;
  }
  return std::nullopt;
}

namespace {

// "is not valid UTF-8 (byte 0xFF at offset 3)", or "" when `text` is valid.
std::string utf8_problem(const std::string& text) {
  const auto offset = invalid_utf8_offset(text);
  if (!offset) return {};
  char byte[8];
  std::snprintf(byte, sizeof byte, "0x%02X", static_cast<unsigned char>(text[*offset]));
  return std::string("is not valid UTF-8 (byte ") + byte + " at offset " + std::to_string(*offset) +
         ")";
}

std::string invalid_utf8_below(const Json& value, const std::string& label) {
  if (value.is_string()) {
    const auto& text = value.get_ref<const std::string&>();
    const auto problem = utf8_problem(text);
    if (!problem.empty()) return "the value " + shown(value) + under(label) + " " + problem;
    return {};
  }
  if (value.is_array()) {
    for (const auto& element : value) {
      auto problem = invalid_utf8_below(element, label);
      if (!problem.empty()) return problem;
    }
  }
  if (value.is_object()) {
    for (const auto& [key, element] : value.items()) {
      const auto problem = utf8_problem(key);
      if (!problem.empty()) return "key " + in_quotes(key) + under(label) + " " + problem;
      const auto path = is_operator(key) ? label : label.empty() ? key : label + "." + key;
      auto below = invalid_utf8_below(element, path);
      if (!below.empty()) return below;
    }
  }
  return {};
}

}  // namespace

std::string invalid_utf8_in(const Json& value) { return invalid_utf8_below(value, ""); }

std::string shown(const Json& value, std::size_t limit) {
  auto text = dump(value);
  if (text.size() > limit) text = utf8_prefix(text, limit) + "...";
  return text;
}

std::string type_phrase(const Json& value) {
  switch (value.type()) {
    case Json::value_t::object:
      return "an object";
    case Json::value_t::array:
      return "an array";
    case Json::value_t::string:
      return "a string";
    case Json::value_t::boolean:
      return "a boolean";
    case Json::value_t::null:
      return "null";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
    case Json::value_t::number_float:
      return "a number";
    default:
      return "a binary value";
  }
}

namespace {

// 1-based line and column of byte `offset` of `text`.
void locate(std::string_view text, std::size_t offset, SyntaxError& error) {
  offset = std::min(offset, text.size());
  error.line = 1;
  std::size_t line_start = 0;
  for (std::size_t i = 0; i < offset; ++i) {
    if (text[i] == '\n') {
      ++error.line;
      line_start = i + 1;
    }
  }
  error.column = offset - line_start + 1;
}

struct TooDeep {};

// Builds the document in one SAX pass and stops at excessive nesting, so that no recursive JSON
// code (copy, compare, dump, destroy) can later run out of stack on hostile input. nlohmann's
// callback parser could check depth too, but it rescans the enclosing container after every
// nested value: quadratic on a resources.json of many entries.
class DepthLimitedBuilder : public nlohmann::json_sax<Json> {
 public:
  explicit DepthLimitedBuilder(std::size_t max_depth) : max_depth_(max_depth) {}

  Json take() { return std::move(root_); }

  bool null() override { return put(nullptr); }
  bool boolean(bool value) override { return put(value); }
  bool number_integer(number_integer_t value) override { return put(value); }
  bool number_unsigned(number_unsigned_t value) override { return put(value); }
  bool number_float(number_float_t value, const string_t&) override { return put(value); }
  bool string(string_t& value) override { return put(std::move(value)); }
  bool binary(binary_t& value) override { return put(Json::binary(std::move(value))); }
  bool key(string_t& name) override {
    // Like Json::parse, a repeated key keeps its last value.
    key_slot_ = &(*open_.back())[name];
    return true;
  }
  bool start_object(std::size_t) override { return open(Json::object()); }
  bool start_array(std::size_t) override { return open(Json::array()); }
  bool end_object() override { return close(); }
  bool end_array() override { return close(); }
  bool parse_error(std::size_t, const std::string&,
                   const nlohmann::detail::exception& error) override {
    // Rethrown as its own type, as Json::parse would throw it.
    if (const auto* parse = dynamic_cast<const Json::parse_error*>(&error)) throw *parse;
    if (const auto* range = dynamic_cast<const Json::out_of_range*>(&error)) throw *range;
    throw Json::other_error::create(500, error.what(), nullptr);
  }

 private:
  template <typename Value>
  Json* place(Value&& value) {
    if (open_.empty()) {
      root_ = Json(std::forward<Value>(value));
      return &root_;
    }
    Json& container = *open_.back();
    if (container.is_array()) {
      container.push_back(Json(std::forward<Value>(value)));
      return &container.back();
    }
    *key_slot_ = Json(std::forward<Value>(value));
    return key_slot_;
  }

  template <typename Value>
  bool put(Value&& value) {
    place(std::forward<Value>(value));
    return true;
  }

  bool open(Json empty) {
    if (open_.size() >= max_depth_) throw TooDeep{};
    open_.push_back(place(std::move(empty)));
    return true;
  }

  bool close() {
    open_.pop_back();
    return true;
  }

  std::size_t max_depth_;
  Json root_;
  std::vector<Json*> open_;
  Json* key_slot_ = nullptr;
};

}  // namespace

std::optional<Json> parse_json(std::string_view text, int max_depth, SyntaxError& error) {
  try {
    DepthLimitedBuilder builder(static_cast<std::size_t>(std::max(max_depth, 0)));
    Json::sax_parse(text.begin(), text.end(), &builder);
    return builder.take();
  } catch (const TooDeep&) {
    error = SyntaxError{0, 0, "nested deeper than " + std::to_string(max_depth) + " levels"};
  } catch (const Json::parse_error& e) {
    // nlohmann's message reads "... parse error at line L, column C: detail". The location is
    // computed here from the byte offset: nlohmann's own column is 0 when the offending token
    // ends a line.
    const std::string what = e.what();
    const auto at = what.find(" at line ");
    const auto colon = what.find(": ", at == std::string::npos ? 0 : at);
    error.detail = colon == std::string::npos ? what : what.substr(colon + 2);
    locate(text, e.byte == 0 ? 0 : e.byte - 1, error);
  } catch (const Json::out_of_range& e) {
    // A number too large for a double ("1e999"): no offset is given, but the token is quoted.
    const std::string what = e.what();
    const auto bracket = what.find("] ");
    error.detail = bracket == std::string::npos ? what : what.substr(bracket + 2);
    const auto open = what.find('\'');
    const auto close = what.rfind('\'');
    std::size_t offset = 0;
    if (open != std::string::npos && close > open) {
      offset = text.find(what.substr(open + 1, close - open - 1));
      if (offset == std::string_view::npos) offset = 0;
    }
    locate(text, offset, error);
  }
  return std::nullopt;
}

}  // namespace lockable::detail
