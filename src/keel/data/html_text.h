// HTML to plain text for the normalise step: tags removed, character references
// decoded, the contents of script, style, noscript, template and head-level elements
// (title excepted) and of comments dropped, and block-level elements (p, div, br, li,
// headings, table rows, ...) turned into line breaks so paragraphs stay apart. A
// forgiving scanner, not a validating parser: malformed markup never fails, a stray
// '<' that starts no tag stays as text.
#pragma once

#include <string>
#include <string_view>

namespace keel::data {

// Named references: HTML 4's full set of Latin-1, special and common symbol entities
// (&nbsp; &eacute; &mdash; &hellip; &euro; ...), plus &apos;. Numeric references
// (&#233; &#xE9;) decode any valid code point; invalid ones become U+FFFD. An unknown
// name is left as written.
std::string decode_html_entities(std::string_view text);

// True when text looks like markup worth stripping: it has a tag ("<p>", "</div>",
// "<br/>", "<!--") or a character reference.
bool looks_like_html(std::string_view text);

std::string html_to_text(std::string_view html);

}  // namespace keel::data
