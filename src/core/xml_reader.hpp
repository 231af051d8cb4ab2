#pragma once

// A small, strict XML reader for GoogleTest reports: elements and attributes with their line
// numbers, entities and character references decoded; text, comments, CDATA and processing
// instructions skipped. No DTD (a DOCTYPE is refused: no entity expansion, no external fetch).
// Pure: text in, callbacks out.

#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lockable::xml {

/// Not well-formed XML, at `line` (1-based).
class XmlError : public std::runtime_error {
 public:
  XmlError(std::size_t line, const std::string& message)
      : std::runtime_error(message), line_(line) {}
  std::size_t line() const noexcept { return line_; }

 private:
  std::size_t line_;
};

using Attributes = std::vector<std::pair<std::string, std::string>>;

/// Receives elements in document order; an empty element gives start then end.
class Handler {
 public:
  virtual ~Handler() = default;
  virtual void start_element(std::string_view name, const Attributes& attributes,
                             std::size_t line) = 0;
  virtual void end_element(std::string_view name) = 0;
};

/// Reads `text`, calling `handler` for each element. Throws XmlError at the first problem
/// (mismatched or unclosed tags, bad entity, bad attribute syntax, a DOCTYPE, no root element).
void parse(std::string_view text, Handler& handler);

}  // namespace lockable::xml
