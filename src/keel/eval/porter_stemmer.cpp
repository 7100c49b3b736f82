#include "keel/eval/porter_stemmer.h"

#include <array>

#include "keel/eval/text.h"

namespace keel::eval {
namespace {

// NLTK works on Python str, whose length and indexing count code points; a UTF-32
// string gives us the same indices.
using Word = std::u32string;
using Suffix = std::u32string_view;

bool is_vowel_letter(char32_t c) {
  return c == U'a' || c == U'e' || c == U'i' || c == U'o' || c == U'u';
}

// NLTK's _is_consonant: a letter other than a e i o u, and other than a y that
// follows a consonant. Written as a loop instead of NLTK's recursion; same answer.
bool is_consonant(const Word& w, size_t i) {
  if (is_vowel_letter(w[i])) return false;
  if (w[i] != U'y') return true;
  // A y is a consonant at the start of the word or after a vowel. Walk back to the
  // first y of this run of y's; along the run the answer alternates.
  size_t start = i;
  while (start > 0 && w[start - 1] == U'y') --start;
  bool consonant = start == 0 || !is_consonant(w, start - 1);  // w[start-1] is not a y
  for (size_t k = start + 1; k <= i; ++k) consonant = !consonant;
  return consonant;
}

// m in [C](VC){m}[V]: the number of vowel-to-consonant transitions.
int measure(const Word& w) {
  int m = 0;
  bool previous_vowel = false;
  bool previous_consonant_state = true;
  for (size_t i = 0; i < w.size(); ++i) {
    // Track consonant status left to right instead of calling is_consonant(i), which
    // would be quadratic on long runs of y.
    bool consonant;
    if (is_vowel_letter(w[i])) {
      consonant = false;
    } else if (w[i] == U'y') {
      consonant = (i == 0) ? true : !previous_consonant_state;
    } else {
      consonant = true;
    }
    if (consonant && previous_vowel) ++m;
    previous_vowel = !consonant;
    previous_consonant_state = consonant;
  }
  return m;
}

bool contains_vowel(const Word& w) {
  for (size_t i = 0; i < w.size(); ++i) {
    if (!is_consonant(w, i)) return true;
  }
  return false;
}

// *d: ends with a double consonant.
bool ends_double_consonant(const Word& w) {
  size_t n = w.size();
  return n >= 2 && w[n - 1] == w[n - 2] && is_consonant(w, n - 1);
}

// *o: ends consonant-vowel-consonant where the last is not w, x or y; NLTK also
// accepts a two-letter vowel-consonant word.
bool ends_cvc(const Word& w) {
  size_t n = w.size();
  if (n >= 3 && is_consonant(w, n - 3) && !is_consonant(w, n - 2) && is_consonant(w, n - 1) && w[n - 1] != U'w' &&
      w[n - 1] != U'x' && w[n - 1] != U'y') {
    return true;
  }
  return n == 2 && !is_consonant(w, 0) && is_consonant(w, 1);
}

bool ends_with(const Word& w, Suffix s) {
  return w.size() >= s.size() && Suffix(w).substr(w.size() - s.size()) == s;
}

Word without(const Word& w, Suffix s) {
  return w.substr(0, w.size() - s.size());
}

enum class Condition { kNone, kMeasureAbove0, kMeasureAbove1, kIon, kLogi };

struct Rule {
  Suffix suffix;
  Suffix replacement;
  Condition condition;
};

// NLTK's _apply_rule_list for plain suffix rules: the first rule whose suffix matches
// decides; if its condition fails the word is returned unchanged and no later rule is
// tried.
template <size_t N>
Word apply_rules(const Word& word, const std::array<Rule, N>& rules) {
  for (const Rule& rule : rules) {
    if (!ends_with(word, rule.suffix)) continue;
    Word stem = without(word, rule.suffix);
    bool ok = false;
    switch (rule.condition) {
      case Condition::kNone:
        ok = true;
        break;
      case Condition::kMeasureAbove0:
        ok = measure(stem) > 0;
        break;
      case Condition::kMeasureAbove1:
        ok = measure(stem) > 1;
        break;
      case Condition::kIon:
        ok = measure(stem) > 1 && (stem.back() == U's' || stem.back() == U't');
        break;
      // NLTK keeps the 'l' of "logi" with the stem when measuring ("geologi").
      case Condition::kLogi:
        ok = measure(word.substr(0, word.size() - 3)) > 0;
        break;
    }
    if (!ok) return word;
    return stem + Word(rule.replacement);
  }
  return word;
}

Word step1a(const Word& word) {
  // NLTK: "dies" -> "die" (but "flies" -> "fli").
  if (ends_with(word, U"ies") && word.size() == 4) return without(word, U"ies") + U"ie";
  static constexpr std::array<Rule, 4> kRules{{
      {U"sses", U"ss", Condition::kNone},
      {U"ies", U"i", Condition::kNone},
      {U"ss", U"ss", Condition::kNone},
      {U"s", U"", Condition::kNone},
  }};
  return apply_rules(word, kRules);
}

Word step1b(const Word& word) {
  // NLTK: "died" -> "die", "spied" -> "spi"; no further step-1b rules apply.
  if (ends_with(word, U"ied")) return without(word, U"ied") + (word.size() == 4 ? U"ie" : U"i");
  if (ends_with(word, U"eed")) {
    Word stem = without(word, U"eed");
    return measure(stem) > 0 ? stem + U"ee" : word;
  }
  Word stem;
  bool removed = false;
  for (Suffix suffix : {Suffix(U"ed"), Suffix(U"ing")}) {
    if (ends_with(word, suffix)) {
      Word candidate = without(word, suffix);
      if (contains_vowel(candidate)) {
        stem = std::move(candidate);
        removed = true;
        break;
      }
    }
  }
  if (!removed) return word;
  if (ends_with(stem, U"at")) return stem + U"e";
  if (ends_with(stem, U"bl")) return stem + U"e";
  if (ends_with(stem, U"iz")) return stem + U"e";
  if (ends_double_consonant(stem)) {
    char32_t last = stem.back();
    if (last == U'l' || last == U's' || last == U'z') return stem;
    return stem.substr(0, stem.size() - 1);
  }
  if (measure(stem) == 1 && ends_cvc(stem)) return stem + U"e";
  return stem;
}

Word step1c(const Word& word) {
  // NLTK: y -> i only after a consonant that is not the whole stem ("happy", "spy",
  // but not "enjoy" or "by").
  if (!ends_with(word, U"y")) return word;
  Word stem = without(word, U"y");
  if (stem.size() > 1 && is_consonant(stem, stem.size() - 1)) return stem + U"i";
  return word;
}

Word step2(const Word& word) {
  // NLTK applies "alli" -> "al" first and runs step 2 again on the result.
  if (ends_with(word, U"alli") && measure(without(word, U"alli")) > 0) return step2(without(word, U"alli") + U"al");
  static constexpr std::array<Rule, 22> kRules{{
      {U"ational", U"ate", Condition::kMeasureAbove0}, {U"tional", U"tion", Condition::kMeasureAbove0},
      {U"enci", U"ence", Condition::kMeasureAbove0},   {U"anci", U"ance", Condition::kMeasureAbove0},
      {U"izer", U"ize", Condition::kMeasureAbove0},    {U"bli", U"ble", Condition::kMeasureAbove0},
      {U"alli", U"al", Condition::kMeasureAbove0},     {U"entli", U"ent", Condition::kMeasureAbove0},
      {U"eli", U"e", Condition::kMeasureAbove0},       {U"ousli", U"ous", Condition::kMeasureAbove0},
      {U"ization", U"ize", Condition::kMeasureAbove0}, {U"ation", U"ate", Condition::kMeasureAbove0},
      {U"ator", U"ate", Condition::kMeasureAbove0},    {U"alism", U"al", Condition::kMeasureAbove0},
      {U"iveness", U"ive", Condition::kMeasureAbove0}, {U"fulness", U"ful", Condition::kMeasureAbove0},
      {U"ousness", U"ous", Condition::kMeasureAbove0}, {U"aliti", U"al", Condition::kMeasureAbove0},
      {U"iviti", U"ive", Condition::kMeasureAbove0},   {U"biliti", U"ble", Condition::kMeasureAbove0},
      {U"fulli", U"ful", Condition::kMeasureAbove0},   {U"logi", U"log", Condition::kLogi},
  }};
  return apply_rules(word, kRules);
}

Word step3(const Word& word) {
  static constexpr std::array<Rule, 7> kRules{{
      {U"icate", U"ic", Condition::kMeasureAbove0},
      {U"ative", U"", Condition::kMeasureAbove0},
      {U"alize", U"al", Condition::kMeasureAbove0},
      {U"iciti", U"ic", Condition::kMeasureAbove0},
      {U"ical", U"ic", Condition::kMeasureAbove0},
      {U"ful", U"", Condition::kMeasureAbove0},
      {U"ness", U"", Condition::kMeasureAbove0},
  }};
  return apply_rules(word, kRules);
}

Word step4(const Word& word) {
  static constexpr std::array<Rule, 19> kRules{{
      {U"al", U"", Condition::kMeasureAbove1},    {U"ance", U"", Condition::kMeasureAbove1},
      {U"ence", U"", Condition::kMeasureAbove1},  {U"er", U"", Condition::kMeasureAbove1},
      {U"ic", U"", Condition::kMeasureAbove1},    {U"able", U"", Condition::kMeasureAbove1},
      {U"ible", U"", Condition::kMeasureAbove1},  {U"ant", U"", Condition::kMeasureAbove1},
      {U"ement", U"", Condition::kMeasureAbove1}, {U"ment", U"", Condition::kMeasureAbove1},
      {U"ent", U"", Condition::kMeasureAbove1},   {U"ion", U"", Condition::kIon},
      {U"ou", U"", Condition::kMeasureAbove1},    {U"ism", U"", Condition::kMeasureAbove1},
      {U"ate", U"", Condition::kMeasureAbove1},   {U"iti", U"", Condition::kMeasureAbove1},
      {U"ous", U"", Condition::kMeasureAbove1},   {U"ive", U"", Condition::kMeasureAbove1},
      {U"ize", U"", Condition::kMeasureAbove1},
  }};
  return apply_rules(word, kRules);
}

Word step5a(const Word& word) {
  // Both e-rules are tried (unlike the first-match rule lists above).
  if (!ends_with(word, U"e")) return word;
  Word stem = without(word, U"e");
  int m = measure(stem);
  if (m > 1) return stem;
  if (m == 1 && !ends_cvc(stem)) return stem;
  return word;
}

Word step5b(const Word& word) {
  // NLTK measures the word minus one 'l', not minus the whole "ll".
  if (ends_with(word, U"ll") && measure(word.substr(0, word.size() - 1)) > 1) return word.substr(0, word.size() - 1);
  return word;
}

// NLTK's irregular forms (its `pool`): word -> stem, checked before any rule.
bool irregular_form(std::u32string_view word, Word* stem) {
  static constexpr std::array<std::pair<std::u32string_view, std::u32string_view>, 16> kForms{{
      {U"sky", U"sky"},
      {U"skies", U"sky"},
      {U"dying", U"die"},
      {U"lying", U"lie"},
      {U"tying", U"tie"},
      {U"news", U"news"},
      {U"innings", U"inning"},
      {U"inning", U"inning"},
      {U"outings", U"outing"},
      {U"outing", U"outing"},
      {U"cannings", U"canning"},
      {U"canning", U"canning"},
      {U"howe", U"howe"},
      {U"proceed", U"proceed"},
      {U"exceed", U"exceed"},
      {U"succeed", U"succeed"},
  }};
  for (const auto& [form, base] : kForms) {
    if (word == form) {
      *stem = Word(base);
      return true;
    }
  }
  return false;
}

}  // namespace

std::string porter_stem(std::string_view word) {
  std::u32string original = to_u32(word);
  // The table lookup and the length rule see the word as given; the rules see it
  // lowercased (PorterStemmer.stem with to_lowercase=True).
  Word stem;
  if (irregular_form(original, &stem)) return to_utf8(stem);
  stem = py_lower(std::u32string_view(original));
  if (original.size() <= 2) return to_utf8(stem);
  stem = step1a(stem);
  stem = step1b(stem);
  stem = step1c(stem);
  stem = step2(stem);
  stem = step3(stem);
  stem = step4(stem);
  stem = step5a(stem);
  stem = step5b(stem);
  return to_utf8(stem);
}

}  // namespace keel::eval
