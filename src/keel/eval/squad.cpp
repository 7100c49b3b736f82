#include "keel/eval/squad.h"

#include <algorithm>

#include "keel/eval/text.h"

namespace keel::eval {
namespace {

// string.punctuation.
bool is_ascii_punctuation(char32_t c) {
  return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) || (c >= 0x7B && c <= 0x7E);
}

// A word character for re's \b on str patterns: str.isalnum() or '_'. isalnum() is
// exactly "general category L* or N*" (checked over all code points in Python 3.11).
bool is_word_char(char32_t c) {
  if (c < 0x80) return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  char category = unicode_major_category(c);
  return category == 'L' || category == 'N';
}

bool is_article(std::u32string_view word) {
  return word == U"a" || word == U"an" || word == U"the";
}

std::string normalize(std::string_view text) {
  std::u32string lowered = py_lower(to_u32(text));
  std::u32string no_punctuation;
  no_punctuation.reserve(lowered.size());
  for (char32_t c : lowered) {
    if (!is_ascii_punctuation(c)) no_punctuation.push_back(c);
  }
  // re.sub(r'\b(a|an|the)\b', ' ', text): a match is a whole run of word characters
  // spelling an article (the alternatives are all word characters, so \b on both
  // sides pins them to a run's ends). The run becomes one space.
  std::u32string no_articles;
  no_articles.reserve(no_punctuation.size());
  size_t i = 0;
  while (i < no_punctuation.size()) {
    if (!is_word_char(no_punctuation[i])) {
      no_articles.push_back(no_punctuation[i++]);
      continue;
    }
    size_t end = i;
    while (end < no_punctuation.size() && is_word_char(no_punctuation[end])) ++end;
    std::u32string_view run(no_punctuation.data() + i, end - i);
    if (is_article(run)) {
      no_articles.push_back(U' ');
    } else {
      no_articles.append(run);
    }
    i = end;
  }
  std::string out;
  for (const std::string& word : py_split(to_utf8(no_articles))) {
    if (!out.empty()) out.push_back(' ');
    out += word;
  }
  return out;
}

// f1_score on already-normalised answers.
double token_f1(const std::string& prediction, const std::string& gold) {
  std::vector<std::string> p = py_split(prediction);
  std::vector<std::string> g = py_split(gold);
  std::sort(p.begin(), p.end());
  std::sort(g.begin(), g.end());
  // Counter(p) & Counter(g): sum of min counts, by merging the sorted lists.
  size_t same = 0;
  for (size_t i = 0, j = 0; i < p.size() && j < g.size();) {
    if (p[i] < g[j]) {
      ++i;
    } else if (g[j] < p[i]) {
      ++j;
    } else {
      ++same;
      ++i;
      ++j;
    }
  }
  if (same == 0) return 0;
  double precision = 1.0 * static_cast<double>(same) / static_cast<double>(p.size());
  double recall = 1.0 * static_cast<double>(same) / static_cast<double>(g.size());
  return (2 * precision * recall) / (precision + recall);
}

Result<SquadScore> score_question(std::string_view prediction, const std::vector<std::string>& gold_answers,
                                  const std::string& where) {
  if (gold_answers.empty()) return invalid_argument("squad: " + where + "has no gold answer");
  if (!is_valid_utf8(prediction)) return invalid_argument("squad: " + where + "prediction is not valid UTF-8");
  std::string normalized_prediction = normalize(prediction);
  SquadScore best;
  for (size_t k = 0; k < gold_answers.size(); ++k) {
    if (!is_valid_utf8(gold_answers[k])) {
      return invalid_argument("squad: " + where + "gold answer " + std::to_string(k) + " is not valid UTF-8");
    }
    std::string gold = normalize(gold_answers[k]);
    best.exact_match = std::max(best.exact_match, normalized_prediction == gold ? 1.0 : 0.0);
    best.f1 = std::max(best.f1, token_f1(normalized_prediction, gold));
  }
  return best;
}

}  // namespace

Result<std::string> squad_normalize_answer(std::string_view text) {
  if (!is_valid_utf8(text)) return invalid_argument("squad: answer is not valid UTF-8");
  return normalize(text);
}

Result<SquadScore> squad_score(std::string_view prediction, const std::vector<std::string>& gold_answers) {
  return score_question(prediction, gold_answers, "");
}

Result<SquadCorpusResult> squad_corpus(const std::vector<std::string>& predictions,
                                       const std::vector<std::vector<std::string>>& gold_answers) {
  if (gold_answers.size() != predictions.size()) {
    return invalid_argument("squad: " + std::to_string(predictions.size()) + " predictions but " +
                            std::to_string(gold_answers.size()) + " gold answer lists");
  }
  SquadCorpusResult result;
  result.questions.reserve(predictions.size());
  double em = 0, f1 = 0;
  for (size_t i = 0; i < predictions.size(); ++i) {
    KEEL_ASSIGN_OR_RETURN(SquadScore score,
                          score_question(predictions[i], gold_answers[i], "question " + std::to_string(i) + ": "));
    em += score.exact_match;
    f1 += score.f1;
    result.questions.push_back(score);
  }
  if (!predictions.empty()) {
    result.mean.exact_match = em / static_cast<double>(predictions.size());
    result.mean.f1 = f1 / static_cast<double>(predictions.size());
  }
  return result;
}

}  // namespace keel::eval
