// The Porter stemmer exactly as NLTK 3.9.1's PorterStemmer() computes it in its
// default mode (NLTK_EXTENSIONS): the stemmer rouge-score's DefaultTokenizer uses.
// That mode is Porter's 1980 algorithm plus Martin Porter's later fixes and NLTK's
// own rules (irregular forms such as "dying" -> "die", "ies" on 4-letter words,
// "alli" and "logi" handling, the 2-letter *o condition). It is not Snowball.
// The one thing a caller must not get wrong: NLTK lowercases the word but checks its
// irregular-form table and its "2 letters or fewer are left alone" rule on the word
// as given, so porter_stem("SKY") is "ski" while porter_stem("sky") is "sky".
#pragma once

#include <string>
#include <string_view>

namespace keel::eval {

// PorterStemmer().stem(word) for a UTF-8 word (invalid bytes read as U+FFFD; check
// with is_valid_utf8() first where that matters). Any character other than a, e, i,
// o, u (and y after a vowel) counts as a consonant, as in NLTK, so digits and
// non-Latin letters pass through the rules as consonants.
std::string porter_stem(std::string_view word);

}  // namespace keel::eval
