// SQuAD v1.1 exact match and token F1, as the official evaluate-v1.1.py computes them,
// for `keel eval` on extractive question answering. Answers are normalised by
// str.lower(), removing ASCII punctuation (string.punctuation), replacing the words
// a/an/the (re's Unicode \b boundaries) by a space, and joining str.split() with " ".
// Scores are fractions in [0, 1], not the script's percentages: multiply by 100 to
// compare with published SQuAD numbers. The best gold answer is taken separately for
// exact match and for F1, as the script does.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "keel/util/status.h"

namespace keel::eval {

struct SquadScore {
  double exact_match = 0;  // 0 or 1 per question; a fraction for a corpus
  double f1 = 0;
};

// normalize_answer(text). Error: text that is not UTF-8.
Result<std::string> squad_normalize_answer(std::string_view text);

// max over gold answers of exact_match_score and of f1_score. As in the script, an
// answer that normalises to nothing has F1 0 even against an empty gold answer (its
// exact match is then 1). Errors: no gold answer, text that is not UTF-8.
Result<SquadScore> squad_score(std::string_view prediction, const std::vector<std::string>& gold_answers);

struct SquadCorpusResult {
  std::vector<SquadScore> questions;  // one per prediction
  SquadScore mean;                    // plain means, in order; zeros for no questions
};

// gold_answers[i] holds every accepted answer to question i. Errors: as squad_score,
// and a gold list count that differs from the prediction count.
Result<SquadCorpusResult> squad_corpus(const std::vector<std::string>& predictions,
                                       const std::vector<std::vector<std::string>>& gold_answers);

}  // namespace keel::eval
