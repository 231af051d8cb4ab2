#pragma once

// Private to the library: JSON text helpers shared by resources.json loading (resources.cpp),
// requirement parsing (requirements.cpp, query_compile.cpp) and the lock folder's JSON files.
// Dumps that never throw, UTF-8 checks, values quoted for messages, and a JSON parser with a
// nesting limit. Pure: no I/O.

#include <lockable/resource.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace lockable::detail {

/// Compact JSON text that never throws (invalid UTF-8 is replaced by U+FFFD). Use it for every
/// dump of outside data: nlohmann's plain dump() throws type_error.316 on invalid UTF-8.
std::string dump(const Json& value);

/// The longest prefix of `text` of at most `max_bytes` bytes that does not end inside a UTF-8
/// character (a cut never leaves half a character in a message).
std::string utf8_prefix(std::string_view text, std::size_t max_bytes);
/// Offset of the first byte of `text` that is not part of well-formed UTF-8, if any.
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

}  // namespace lockable::detail
