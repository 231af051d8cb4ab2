// JSON text helpers shared by resources.json loading and requirement parsing: dumps that never
// throw, UTF-8 checks, short quotes of values for messages, and the depth-limited JSON parser.
// No query or resource knowledge lives here beyond how messages name a path.

#include "core/json_text.hpp"

#include <algorithm>
#include <clocale>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <utility>
#include <vector>

namespace lockable::detail {

void append_utf8(std::string& out, std::uint32_t code_point) {
  if (code_point < 0x80) {
    out += static_cast<char>(code_point);
  } else if (code_point < 0x800) {
    out += static_cast<char>(0xC0 | (code_point >> 6));
    out += static_cast<char>(0x80 | (code_point & 0x3F));
  } else if (code_point < 0x10000) {
    out += static_cast<char>(0xE0 | (code_point >> 12));
    out += static_cast<char>(0x80 | ((code_point >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code_point & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (code_point >> 18));
    out += static_cast<char>(0x80 | ((code_point >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((code_point >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code_point & 0x3F));
  }
}

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

namespace {

// The length of the well-formed UTF-8 character at `bytes` (non-ASCII lead byte; `available`
// bytes readable), or 0 when it is ill-formed: overlong, a surrogate, above U+10FFFF or cut.
std::size_t utf8_length(const unsigned char* bytes, std::size_t available) {
  const unsigned char lead = bytes[0];
  std::size_t length = 0;
  unsigned char low = 0x80;
  unsigned char high = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
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
    return 0;
  }
  if (length > available) return 0;
  if (bytes[1] < low || bytes[1] > high) return 0;
  for (std::size_t k = 2; k < length; ++k) {
    if (bytes[k] < 0x80 || bytes[k] > 0xBF) return 0;
  }
  return length;
}

}  // namespace

std::optional<std::size_t> invalid_utf8_offset(std::string_view text) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t size = text.size();
  std::size_t i = 0;
  while (i < size) {
    if (bytes[i] < 0x80) {
      ++i;
      continue;
    }
    const auto length = utf8_length(bytes + i, size - i);
    if (length == 0) return i;
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

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Bytes a string copies as they are: printable ASCII but the quote and the backslash.
struct PlainBytes {
  bool plain[256] = {};
  constexpr PlainBytes() {
    for (int c = 0x20; c < 0x80; ++c) plain[c] = c != '"' && c != '\\';
  }
};
constexpr PlainBytes kPlain;

}  // namespace

QuickJsonReader::QuickJsonReader(std::string_view text, int max_depth)
    : at_(text.data()),
      end_(text.data() + text.size()),
      max_depth_(max_depth),
      scratch_(static_cast<std::size_t>(std::max(max_depth, 0)) + 1) {
  // nlohmann hands strtod the text of a float with the locale's decimal point in place of '.'.
  const auto* locale = std::localeconv();
  decimal_point_ =
      locale == nullptr || locale->decimal_point == nullptr ? '.' : *locale->decimal_point;
}

void QuickJsonReader::skip_space() {
  while (at_ != end_ && is_space(*at_)) ++at_;
}

bool QuickJsonReader::open_array() {
  if (end_ - at_ >= 3 && std::memcmp(at_, "\xEF\xBB\xBF", 3) == 0) at_ += 3;
  skip_space();
  if (at_ == end_ || *at_ != '[' || max_depth_ < 1) return false;
  ++at_;
  return true;
}

bool QuickJsonReader::next_element(bool first, bool& more) {
  skip_space();
  if (at_ == end_) return false;
  if (*at_ == ']') {
    ++at_;
    more = false;
    return true;
  }
  if (first) {
    more = true;
    return true;
  }
  if (*at_ != ',') return false;
  ++at_;
  more = true;
  return true;
}

bool QuickJsonReader::read_element(Json& out) { return read_value(out, 2); }

bool QuickJsonReader::at_end() {
  skip_space();
  return at_ == end_;
}

// `level`: the nesting level a container read here would have (the top-level array is 1).
bool QuickJsonReader::read_value(Json& out, int level) {
  skip_space();
  if (at_ == end_) return false;
  switch (*at_) {
    case '{':
      return read_object(out, level);
    case '[':
      return read_array(out, level);
    case '"':
      out = Json(Json::value_t::string);
      return read_string(out.get_ref<std::string&>());
    case 't':
      out = true;
      return read_literal("true", 4);
    case 'f':
      out = false;
      return read_literal("false", 5);
    case 'n':
      out = nullptr;
      return read_literal("null", 4);
    default:
      return read_number(out);
  }
}

bool QuickJsonReader::read_object(Json& out, int level) {
  if (level > max_depth_) return false;
  ++at_;
  out = Json(Json::value_t::object);
  auto& members = out.get_ref<Json::object_t&>();
  skip_space();
  if (at_ != end_ && *at_ == '}') {
    ++at_;
    return true;
  }
  std::string key;
  while (true) {
    skip_space();
    if (at_ == end_ || *at_ != '"') return false;
    key.clear();
    if (!read_string(key)) return false;
    skip_space();
    if (at_ == end_ || *at_ != ':') return false;
    ++at_;
    // Files written by a program list keys in order, so the end is the place to look first. A
    // repeated key finds its slot, whose value the new one replaces, as parse_json does.
    auto slot = members.emplace_hint(members.end(), key, nullptr);
    if (!read_value(slot->second, level + 1)) return false;
    const AfterItem after = read_separator('}');
    if (after != AfterItem::kNext) return after == AfterItem::kClosed;
  }
}

bool QuickJsonReader::read_array(Json& out, int level) {
  if (level > max_depth_) return false;
  ++at_;
  // Elements gather in this level's scratch list, so that the array gets one block of its final
  // size instead of growing (and freeing) its way there.
  auto& elements = scratch_[static_cast<std::size_t>(level)];
  elements.clear();
  skip_space();
  if (at_ != end_ && *at_ == ']') {
    ++at_;
    out = Json(Json::value_t::array);
    return true;
  }
  while (true) {
    elements.emplace_back();
    if (!read_value(elements.back(), level + 1)) return false;
    const AfterItem after = read_separator(']');
    if (after == AfterItem::kGiveUp) return false;
    if (after == AfterItem::kClosed) break;
  }
  out = Json(Json::value_t::array);
  out.get_ref<Json::array_t&>().assign(std::make_move_iterator(elements.begin()),
                                       std::make_move_iterator(elements.end()));
  elements.clear();
  return true;
}

QuickJsonReader::AfterItem QuickJsonReader::read_separator(char close) {
  skip_space();
  if (at_ == end_) return AfterItem::kGiveUp;
  if (*at_ == ',' || *at_ == close) return *at_++ == ',' ? AfterItem::kNext : AfterItem::kClosed;
  return AfterItem::kGiveUp;
}

bool QuickJsonReader::read_string(std::string& out) {
  ++at_;  // the opening quote
  while (true) {
    const char* run = at_;
    while (at_ != end_ && kPlain.plain[static_cast<unsigned char>(*at_)]) ++at_;
    out.append(run, static_cast<std::size_t>(at_ - run));
    if (at_ == end_) return false;
    const auto byte = static_cast<unsigned char>(*at_);
    if (byte == '"') {
      ++at_;
      return true;
    }
    if (byte == '\\') {
      if (!read_escape(out)) return false;
      continue;
    }
    if (byte < 0x20) return false;  // a control character must be escaped
    const auto length = utf8_length(reinterpret_cast<const unsigned char*>(at_),
                                    static_cast<std::size_t>(end_ - at_));
    if (length == 0) return false;
    out.append(at_, length);
    at_ += length;
  }
}

bool QuickJsonReader::read_hex4(unsigned& value) {
  if (end_ - at_ < 4) return false;
  value = 0;
  for (int i = 0; i < 4; ++i, ++at_) {
    const char c = *at_;
    unsigned digit = 0;
    if (c >= '0' && c <= '9') {
      digit = static_cast<unsigned>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      digit = static_cast<unsigned>(c - 'a' + 10);
    } else if (c >= 'A' && c <= 'F') {
      digit = static_cast<unsigned>(c - 'A' + 10);
    } else {
      return false;
    }
    value = value * 16 + digit;
  }
  return true;
}

bool QuickJsonReader::read_escape(std::string& out) {
  ++at_;  // the backslash
  if (at_ == end_) return false;
  const char kind = *at_++;
  switch (kind) {
    case '"':
      out += '"';
      return true;
    case '\\':
      out += '\\';
      return true;
    case '/':
      out += '/';
      return true;
    case 'b':
      out += '\b';
      return true;
    case 'f':
      out += '\f';
      return true;
    case 'n':
      out += '\n';
      return true;
    case 'r':
      out += '\r';
      return true;
    case 't':
      out += '\t';
      return true;
    case 'u':
      break;
    default:
      return false;
  }
  unsigned code_point = 0;
  if (!read_hex4(code_point)) return false;
  if (code_point >= 0xDC00 && code_point <= 0xDFFF) return false;  // a lone low surrogate
  if (code_point >= 0xD800 && code_point <= 0xDBFF) {
    // A high surrogate counts only with the low one right after it.
    unsigned low = 0;
    if (end_ - at_ < 2 || at_[0] != '\\' || at_[1] != 'u') return false;
    at_ += 2;
    if (!read_hex4(low) || low < 0xDC00 || low > 0xDFFF) return false;
    code_point = 0x10000 + ((code_point - 0xD800) << 10) + (low - 0xDC00);
  }
  append_utf8(out, code_point);
  return true;
}

bool QuickJsonReader::read_number(Json& out) {
  const char* start = at_;
  const bool negative = *at_ == '-';
  if (negative) ++at_;
  if (at_ == end_) return false;
  if (*at_ == '0') {
    ++at_;
  } else if (*at_ >= '1' && *at_ <= '9') {
    while (at_ != end_ && is_digit(*at_)) ++at_;
  } else {
    return false;
  }
  const char* integer_end = at_;
  bool is_float = false;
  if (at_ != end_ && *at_ == '.') {
    ++at_;
    if (at_ == end_ || !is_digit(*at_)) return false;
    while (at_ != end_ && is_digit(*at_)) ++at_;
    is_float = true;
  }
  if (at_ != end_ && (*at_ == 'e' || *at_ == 'E')) {
    ++at_;
    if (at_ != end_ && (*at_ == '+' || *at_ == '-')) ++at_;
    if (at_ == end_ || !is_digit(*at_)) return false;
    while (at_ != end_ && is_digit(*at_)) ++at_;
    is_float = true;
  }
  if (!is_float) {
    // Integers nlohmann may turn into doubles (beyond 64 bits) are left to it: up to 19 digits
    // always fit an unsigned 64-bit value, up to 18 a signed one.
    const char* digits = negative ? start + 1 : start;
    const auto count = integer_end - digits;
    if (count > (negative ? 18 : 19)) return false;
    std::uint64_t value = 0;
    for (const char* c = digits; c != integer_end; ++c) {
      value = value * 10 + static_cast<std::uint64_t>(*c - '0');
    }
    if (negative) {
      out = -static_cast<std::int64_t>(value);  // "-0" too is a signed 0 in nlohmann
    } else {
      out = value;
    }
    return true;
  }
  char token[64];
  const auto length = static_cast<std::size_t>(at_ - start);
  if (length >= sizeof token) return false;
  std::memcpy(token, start, length);
  token[length] = '\0';
  for (std::size_t i = 0; i < length; ++i) {
    if (token[i] == '.') token[i] = decimal_point_;
  }
  char* token_end = nullptr;
  const double value = std::strtod(token, &token_end);
  // nlohmann reports a float that overflows (1e999); whatever strtod would not take wholly
  // (an odd locale) is left to it as well.
  if (token_end != token + length || !std::isfinite(value)) return false;
  out = value;
  return true;
}

bool QuickJsonReader::read_literal(const char* word, std::size_t length) {
  if (static_cast<std::size_t>(end_ - at_) < length || std::memcmp(at_, word, length) != 0) {
    return false;
  }
  at_ += length;
  return true;
}

}  // namespace lockable::detail
