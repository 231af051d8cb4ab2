#pragma once

// Private to the library: the two ways parse_resources_text reads resources.json text, declared
// for tests that hold them to the same results.

#include <lockable/resource.hpp>

#include <optional>
#include <string>

namespace lockable::detail {

/// parse_resources_text through QuickJsonReader alone: nullopt wherever the reader gives up (a
/// syntax error, or a construct it leaves to parse_json); otherwise the resources, or
/// ResourcesError with the problems of the entries, exactly as parse_resources_text_thorough.
std::optional<Resources> parse_resources_text_quick(const std::string& text,
                                                    const std::string& source);

/// parse_resources_text through parse_json alone: the exact place and wording of every syntax,
/// UTF-8 and nesting error, then the problems of the entries.
Resources parse_resources_text_thorough(const std::string& text, const std::string& source);

}  // namespace lockable::detail
