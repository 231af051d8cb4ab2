#pragma once

// Private to the library: JSON text helpers shared by resources.json loading (resources.cpp),
// requirement parsing (requirements.cpp, query_compile.cpp) and the lock folder's JSON files.
// Dumps that never throw, UTF-8 checks, values quoted for messages, and a JSON parser with a
// nesting limit. Pure: no I/O.

#include <lockable/resource.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lockable::detail {

/// Compact JSON text that never throws (invalid UTF-8 is replaced by U+FFFD). Use it for every
/// dump of outside data: nlohmann's plain dump() throws type_error.316 on invalid UTF-8.
std::string dump(const Json& value);

/// The longest prefix of `text` of at most `max_bytes` bytes that does not end inside a UTF-8
/// character (a cut never leaves half a character in a message).
std::string utf8_prefix(std::string_view text, std::size_t max_bytes);
/// Offset of the first byte of `text` that is not part of well-formed UTF-8, if any.
/// Appends `code_point` (at most U+10FFFF) to `out` as UTF-8.
void append_utf8(std::string& out, std::uint32_t code_point);

std::optional<std::size_t> invalid_utf8_offset(std::string_view text);

/// The first string or object key inside `value` that is not valid UTF-8, described for a
/// message (`key "a\ufffd" under "board"` / `the value of "os"`) with the byte and its offset
/// in that string, or "" when every string is valid. `value` must be at most kMaxQueryDepth deep.
std::string invalid_utf8_in(const Json& value);

/// `text` as a JSON string literal (quotes and escapes), for messages: `"board.rev"`.
std::string in_quotes(std::string_view text);

/// Whether `key` is a query operator (`$gt`, `$or`, ...): operators do not name attributes, so
/// the paths messages show skip them.
bool is_operator(const std::string& key);

/// `" under \"label\""`, or "" for the top level (an empty label): where in a document a
/// message's key or value sits.
std::string under(const std::string& label);

/// `dump`, shortened to about `limit` bytes so that one huge value cannot flood a message.
std::string shown(const Json& value, std::size_t limit = 60);

/// "an object", "a string", ... for messages.
std::string type_phrase(const Json& value);

/// A JSON syntax error located in the text.
struct SyntaxError {
  std::size_t line = 0;
  std::size_t column = 0;
  std::string detail;
};

/// Parses JSON text, rejecting nesting deeper than `max_depth`. On failure returns nullopt and
/// fills `error` (line 0 means the depth limit was hit).
std::optional<Json> parse_json(std::string_view text, int max_depth, SyntaxError& error);

/// A strict reader of a top-level JSON array, element by element, for the common case: several
/// times faster than parse_json (no per-character bookkeeping for error positions), and it
/// builds exactly the values parse_json builds (non-negative integers unsigned, negative ones
/// signed, other numbers double through strtod as nlohmann does, a repeated key keeping its last
/// value). It never reports an error: every call returns false on a syntax error and on what it
/// leaves to parse_json (nesting deeper than `max_depth`, integers of more than 18 or 19 digits,
/// floats that overflow, escapes of lone surrogates, ...). The caller then runs parse_json over
/// the whole text, which gives the exact result or error: errors are the slow path. Text it reads
/// to the end is valid UTF-8: outside strings it takes ASCII only, inside it checks every byte.
class QuickJsonReader {
 public:
  QuickJsonReader(std::string_view text, int max_depth);

  /// Reads an optional UTF-8 byte order mark (nlohmann skips one too) and the `[` that opens the
  /// top-level array.
  bool open_array();
  /// Reads up to the next element: after open_array (`first`), `]` or nothing; after an element,
  /// `,` or `]`. `more` tells whether an element follows.
  bool next_element(bool first, bool& more);
  /// Reads one element of the top-level array into `out` (which it overwrites).
  bool read_element(Json& out);
  /// Whether only whitespace is left after the array.
  bool at_end();

 private:
  bool read_value(Json& out, int level);
  bool read_object(Json& out, int level);
  bool read_array(Json& out, int level);
  // After a member or an element: ',' goes on, `close` ends the container, anything else (or the
  // end of the text) is not for this reader.
  enum class AfterItem { kNext, kClosed, kGiveUp };
  AfterItem read_separator(char close);
  bool read_string(std::string& out);
  bool read_escape(std::string& out);
  bool read_hex4(unsigned& value);
  bool read_number(Json& out);
  bool read_literal(const char* word, std::size_t length);
  void skip_space();

  const char* at_;
  const char* end_;
  int max_depth_;
  char decimal_point_;
  // Per nesting level: the elements of the array being read there.
  std::vector<std::vector<Json>> scratch_;
};

}  // namespace lockable::detail
