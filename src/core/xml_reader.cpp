#include "core/xml_reader.hpp"

#include "core/json_text.hpp"

#include <cstdint>

namespace lockable::xml {
namespace {

bool name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || c == '.' || c == ':' || static_cast<unsigned char>(c) >= 0x80;
}

bool space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

class Reader {
 public:
  Reader(std::string_view text, Handler& handler) : text_(text), handler_(handler) {}

  void run() {
    bool seen_root = false;
    std::vector<std::string_view> open;
    while (pos_ < text_.size()) {
      if (text_[pos_] != '<') {
        const std::size_t next = text_.find('<', pos_);
        const std::size_t end = next == std::string_view::npos ? text_.size() : next;
        if (open.empty()) {
          for (std::size_t i = pos_; i < end; ++i) {
            if (!space(text_[i])) fail("text outside the root element");
          }
        }
        advance_to(end);
        continue;
      }
      if (starts("<?")) {
        skip_past("?>", "an unterminated processing instruction");
      } else if (starts("<!--")) {
        skip_past("-->", "an unterminated comment");
      } else if (starts("<![CDATA[")) {
        if (open.empty()) fail("CDATA outside the root element");
        skip_past("]]>", "an unterminated CDATA section");
      } else if (starts("<!")) {
        fail("a DOCTYPE or other declaration; GoogleTest reports have none");
      } else if (starts("</")) {
        advance_to(pos_ + 2);
        const std::string_view name = read_name();
        skip_space();
        expect('>');
        if (open.empty() || open.back() != name) {
          fail("closing tag </" + std::string(name) + "> does not match " +
               (open.empty() ? std::string("any open element")
                             : "<" + std::string(open.back()) + ">"));
        }
        open.pop_back();
        handler_.end_element(name);
      } else {
        if (open.empty() && seen_root) fail("a second root element");
        seen_root = true;
        const std::size_t line = line_;
        advance_to(pos_ + 1);
        const std::string_view name = read_name();
        attributes_.clear();
        for (;;) {
          const bool spaced = skip_space();
          if (pos_ >= text_.size()) fail("the file ends inside the tag <" + std::string(name));
          if (text_[pos_] == '>' || text_[pos_] == '/') break;
          if (!spaced) fail("attributes of <" + std::string(name) + "> need a space between");
          const std::string_view key = read_name();
          skip_space();
          expect('=');
          skip_space();
          attributes_.emplace_back(std::string(key), read_value());
        }
        handler_.start_element(name, attributes_, line);
        if (text_[pos_] == '/') {
          advance_to(pos_ + 1);
          expect('>');
          handler_.end_element(name);
        } else {
          advance_to(pos_ + 1);
          open.push_back(name);
        }
      }
    }
    if (!open.empty())
      fail("the file ends before </" + std::string(open.back()) + "> (truncated?)");
    if (!seen_root) fail("no XML element");
  }

 private:
  [[noreturn]] void fail(const std::string& message) { throw XmlError(line_, message); }

  bool starts(std::string_view prefix) const { return text_.substr(pos_, prefix.size()) == prefix; }

  void advance_to(std::size_t to) {
    for (std::size_t i = pos_; i < to && i < text_.size(); ++i) {
      if (text_[i] == '\n') ++line_;
    }
    pos_ = to;
  }

  void skip_past(std::string_view end, const char* what) {
    const std::size_t at = text_.find(end, pos_);
    if (at == std::string_view::npos) fail(std::string("the file ends in ") + what);
    advance_to(at + end.size());
  }

  bool skip_space() {
    const std::size_t from = pos_;
    while (pos_ < text_.size() && space(text_[pos_])) {
      if (text_[pos_] == '\n') ++line_;
      ++pos_;
    }
    return pos_ != from;
  }

  void expect(char c) {
    if (pos_ >= text_.size() || text_[pos_] != c) {
      fail(
          std::string("expected '") + c + "'" +
          (pos_ < text_.size() ? std::string(", found '") + text_[pos_] + "'" : ", found the end"));
    }
    ++pos_;
  }

  std::string_view read_name() {
    const std::size_t from = pos_;
    while (pos_ < text_.size() && name_char(text_[pos_])) ++pos_;
    if (pos_ == from) fail("expected a name");
    return text_.substr(from, pos_ - from);
  }

  std::string read_value() {
    if (pos_ >= text_.size() || (text_[pos_] != '"' && text_[pos_] != '\'')) {
      fail("an attribute value must be quoted");
    }
    const char quote = text_[pos_++];
    std::string value;
    for (;;) {
      if (pos_ >= text_.size()) fail("the file ends inside an attribute value");
      const char c = text_[pos_];
      if (c == quote) {
        ++pos_;
        return value;
      }
      if (c == '<') fail("'<' inside an attribute value");
      if (c == '&') {
        read_reference(value);
        continue;
      }
      if (c == '\n') ++line_;
      // XML normalises white space in attribute values to blanks; GoogleTest writes &#x0A;
      // for line breaks it means.
      value += (c == '\n' || c == '\t' || c == '\r') ? ' ' : c;
      ++pos_;
    }
  }

  void read_reference(std::string& out) {
    const std::size_t end = text_.find(';', pos_);
    if (end == std::string_view::npos || end - pos_ > 12) fail("a bad '&' reference");
    const std::string_view ref = text_.substr(pos_ + 1, end - pos_ - 1);
    if (ref == "quot") {
      out += '"';
    } else if (ref == "amp") {
      out += '&';
    } else if (ref == "lt") {
      out += '<';
    } else if (ref == "gt") {
      out += '>';
    } else if (ref == "apos") {
      out += '\'';
    } else if (ref.size() > 1 && ref[0] == '#') {
      const bool hex = ref[1] == 'x' || ref[1] == 'X';
      std::uint32_t code = 0;
      const std::string_view digits = ref.substr(hex ? 2 : 1);
      if (digits.empty()) fail("a bad character reference &" + std::string(ref) + ";");
      for (const char c : digits) {
        int v = -1;
        if (c >= '0' && c <= '9') v = c - '0';
        if (hex && c >= 'a' && c <= 'f') v = c - 'a' + 10;
        if (hex && c >= 'A' && c <= 'F') v = c - 'A' + 10;
        if (v < 0) fail("a bad character reference &" + std::string(ref) + ";");
        code = code * (hex ? 16 : 10) + static_cast<std::uint32_t>(v);
        if (code > 0x10FFFF) fail("a character reference beyond Unicode");
      }
      detail::append_utf8(out, code);
    } else {
      fail("an unknown entity &" + std::string(ref) + ";");
    }
    pos_ = end + 1;
  }

  std::string_view text_;
  Handler& handler_;
  std::size_t pos_ = 0;
  std::size_t line_ = 1;
  Attributes attributes_;
};

}  // namespace

void parse(std::string_view text, Handler& handler) { Reader(text, handler).run(); }

}  // namespace lockable::xml
