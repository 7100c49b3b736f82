#!/usr/bin/env python3
"""Writes the reference numbers Keel's ROUGE, Porter-stemmer and SQuAD tests compare with.

Run with the reference venv (rouge-score 0.1.2, nltk 3.9.1, numpy; see requirements.txt):

    .cache/venv-reference/bin/python tests/reference/make_rouge_fixtures.py

Reads tests/fixtures/eval/corpora/ (made by make_eval_corpora.py) and writes:

  tests/fixtures/eval/rouge.json       rouge-score's RougeScorer on every corpus, with and
                                       without the stemmer: per-segment [P, R, F] for each
                                       type, against ref0 (score) and, for multiref, against
                                       all references (score_multi); multi-sentence texts
                                       (groups of 3 consecutive lines joined by "\\n") for
                                       rougeLsum; corpus means; one bootstrap interval from
                                       rouge-score's BootstrapAggregator (numpy's stream,
                                       which Keel does not reproduce: a loose check only).
  tests/fixtures/eval/squad.json       SQuAD v1.1 exact match and token F1 (the official
                                       evaluate-v1.1.py functions, reproduced below) on the
                                       corpora and on hand-written question-answer cases.
  tests/fixtures/eval/porter_stems.tsv word<TAB>stem from nltk's PorterStemmer() (the mode
                                       rouge-score constructs) over every distinct token of
                                       the corpora and a generated list of suffix-rich words.

Deterministic: running it again gives the same files.
"""
import collections
import json
import os
import re
import string

import numpy as np
from nltk.stem import porter
from rouge_score import rouge_scorer, scoring, tokenize

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "fixtures", "eval")
CORPORA = os.path.join(FIXTURES, "corpora")
CORPUS_NAMES = ["en", "accented", "cjk", "punct", "empty", "multiref"]
TYPES = ["rouge1", "rouge2", "rougeL", "rougeLsum"]
# The multi-sentence set also checks a longer n-gram order.
LSUM_TYPES = ["rouge1", "rouge2", "rouge3", "rougeL", "rougeLsum"]
LSUM_GROUP = 3


def read_lines(path):
    # Lines are separated by "\n" only: the corpora hold \x85 and \x1f on purpose, which
    # str.splitlines() would also split on.
    with open(path, encoding="utf-8", newline="") as f:
        lines = f.read().split("\n")
    assert lines[-1] == "", path
    return lines[:-1]


def corpus(name):
    hyp = read_lines(os.path.join(CORPORA, name + ".hyp"))
    refs = []
    k = 0
    while os.path.exists(os.path.join(CORPORA, f"{name}.ref{k}")):
        refs.append(read_lines(os.path.join(CORPORA, f"{name}.ref{k}")))
        assert len(refs[-1]) == len(hyp)
        k += 1
    return hyp, refs


def group_lines(lines, size):
    return ["\n".join(lines[i:i + size]) for i in range(0, len(lines), size)]


def triple(score):
    return [float(score.precision), float(score.recall), float(score.fmeasure)]


def mean_rows(rows, n_types):
    # Plain left-to-right sums, the order Keel's mean uses.
    out = []
    for t in range(n_types):
        col = []
        for m in range(3):
            total = 0.0
            for row in rows:
                total += row[t][m]
            col.append(total / len(rows) if rows else 0.0)
        out.append(col)
    return out


def rouge_case(name, stemmer, mode, types, hyps, targets_per_segment):
    scorer = rouge_scorer.RougeScorer(types, use_stemmer=stemmer)
    rows = []
    for hyp, targets in zip(hyps, targets_per_segment):
        if len(targets) == 1:
            scores = scorer.score(targets[0], hyp)
        else:
            scores = scorer.score_multi(targets, hyp)
        rows.append([triple(scores[t]) for t in types])
    return {"corpus": name, "stemmer": stemmer, "mode": mode, "types": types, "scores": rows,
            "mean": mean_rows(rows, len(types))}


def make_rouge():
    cases = []
    for name in CORPUS_NAMES:
        hyp, refs = corpus(name)
        for stemmer in (False, True):
            cases.append(rouge_case(name, stemmer, "single", TYPES, hyp, [[r] for r in refs[0]]))
            if len(refs) > 1:
                cases.append(rouge_case(name, stemmer, "multi", TYPES, hyp, [list(t) for t in zip(*refs)]))
            ghyp = group_lines(hyp, LSUM_GROUP)
            gref = group_lines(refs[0], LSUM_GROUP)
            cases.append(rouge_case(name, stemmer, "lines3", LSUM_TYPES, ghyp, [[r] for r in gref]))

    # rouge-score's own bootstrap, for a loose comparison only.
    hyp, refs = corpus("en")
    scorer = rouge_scorer.RougeScorer(TYPES)
    aggregator = scoring.BootstrapAggregator(confidence_interval=0.95, n_samples=1000)
    for h, r in zip(hyp, refs[0]):
        aggregator.add_scores(scorer.score(r, h))
    np.random.seed(20261127)
    agg = aggregator.aggregate()
    bootstrap = {"corpus": "en", "stemmer": False, "confidence": 0.95, "samples": 1000,
                 "intervals": {t: [triple(agg[t].low), triple(agg[t].mid), triple(agg[t].high)] for t in TYPES}}
    return {"tool": "rouge-score 0.1.2 (nltk 3.9.1 PorterStemmer)",
            "lsum_group": LSUM_GROUP,
            "cases": cases,
            "bootstrap": bootstrap}


# --- SQuAD v1.1: the official evaluate-v1.1.py functions -------------------------------

def normalize_answer(s):
    """Lower text and remove punctuation, articles and extra whitespace."""
    def remove_articles(text):
        return re.sub(r'\b(a|an|the)\b', ' ', text)

    def white_space_fix(text):
        return ' '.join(text.split())

    def remove_punc(text):
        exclude = set(string.punctuation)
        return ''.join(ch for ch in text if ch not in exclude)

    def lower(text):
        return text.lower()

    return white_space_fix(remove_articles(remove_punc(lower(s))))


def f1_score(prediction, ground_truth):
    prediction_tokens = normalize_answer(prediction).split()
    ground_truth_tokens = normalize_answer(ground_truth).split()
    common = collections.Counter(prediction_tokens) & collections.Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(ground_truth_tokens)
    f1 = (2 * precision * recall) / (precision + recall)
    return f1


def exact_match_score(prediction, ground_truth):
    return (normalize_answer(prediction) == normalize_answer(ground_truth))


def metric_max_over_ground_truths(metric_fn, prediction, ground_truths):
    scores_for_ground_truths = []
    for ground_truth in ground_truths:
        score = metric_fn(prediction, ground_truth)
        scores_for_ground_truths.append(score)
    return max(scores_for_ground_truths)


QA_CASES = [
    ("The Eiffel Tower", ["Eiffel Tower"]),
    ("eiffel tower.", ["The Eiffel Tower"]),
    ("an apple a day", ["apple day"]),
    ("A", ["the"]),
    ("theater", ["the ater"]),
    ("the-end", ["theend"]),
    ("the_end", ["end"]),
    ("the\u00a0cat", ["cat"]),
    ("Anne and the Anna", ["anne anna"]),
    ("An", ["a"]),
    ("a\u0301 cat", ["cat"]),          # a combining accent is not a word character to \b
    ("\u00e1 cat", ["cat"]),           # a precomposed letter is
    ("the café", ["café"]),
    ("ΤΗΕ Σ", ["τηε ς"]),
    ("İstanbul", ["i\u0307stanbul"]),
    ("1,000,000 dollars", ["1000000 dollars"]),
    ("$5.00", ["500"]),
    ("«quoted» text", ["«quoted» text"]),
    ("the the the", [""]),
    ("", [""]),
    ("", ["something"]),
    ("   ", ["\t"]),
    ("something", [""]),
    ("cat cat dog", ["cat dog dog"]),
    ("cat dog", ["dog cat"]),
    ("red blue green", ["blue", "red green", "yellow"]),
    ("Denver Broncos", ["Broncos", "Denver Broncos", "the Denver Broncos"]),
    ("Carolina Panthers", ["Denver Broncos", "Broncos"]),
    ("in 1990s", ["1990s", "the 1990s", "during the 1990s"]),
    ("Saint-Denis, France", ["Saint Denis France", "SaintDenis France"]),
    ("U.S.A.", ["USA", "the U.S."]),
    ("it's the end", ["its end", "it is the end"]),
    ("a\x1fb\x85c", ["a b c", "b c"]),
    ("模型 the 数据", ["模型数据", "模型 数据"]),
    ("THE END", ["the end", "The End."]),
    ("x", ["x", "x", "y"]),
]


def make_squad():
    corpora = []
    for name in CORPUS_NAMES:
        hyp, refs = corpus(name)
        for mode in (["single", "multi"] if len(refs) > 1 else ["single"]):
            rows = []
            for i, h in enumerate(hyp):
                golds = [r[i] for r in refs] if mode == "multi" else [refs[0][i]]
                em = metric_max_over_ground_truths(exact_match_score, h, golds)
                f1 = metric_max_over_ground_truths(f1_score, h, golds)
                rows.append([float(em), float(f1)])
            n = len(rows)
            corpora.append({"corpus": name, "mode": mode, "scores": rows,
                            "mean": [sum(r[0] for r in rows) / n, sum(r[1] for r in rows) / n]})
    cases = []
    for prediction, golds in QA_CASES:
        cases.append({"prediction": prediction, "golds": golds,
                      "normalized_prediction": normalize_answer(prediction),
                      "exact_match": float(metric_max_over_ground_truths(exact_match_score, prediction, golds)),
                      "f1": float(metric_max_over_ground_truths(f1_score, prediction, golds))})
    return {"tool": "SQuAD v1.1 evaluate-v1.1.py (normalize_answer, exact_match_score, f1_score); "
                    "scores as fractions 0-1",
            "corpora": corpora, "cases": cases}


# --- Porter stems ---------------------------------------------------------------------

ROOTS = ("relat condit ration valen hesit digit conform radic differ vil analog vietnam predic oper feud "
         "decis hope call formal sensit sensib tripl form electr good reviv allow infer airlin gyroscop adjust "
         "defens irrit replac depend adopt homolog commun activ angular effect bowdler prob rat ceas controll "
         "generaliz oscill nation organ realiz happ sky tr fl cr d l t sp agre pl plaster bl motor s conflat troubl "
         "siz hopp tann fall hiss fizz fail fil care pon ti cat fe b y ys yy toy syzyg enjoy geo theo archaeo philo "
         "biolog sens sensibl respons account avail capabl meaning use care pain power beaut duti plent merr "
         "argu abil technolog econom democr bureaucr catastroph myst polit crit").split()
SUFFIXES = ("ational tional enci ence anci ance izer ize bli ble abli able alli al entli ent eli e ousli ous "
            "ization ation ator alism iveness ive fulness ful ousness aliti iviti biliti fulli logi log icate ic "
            "ative alize iciti ical ness ement ment ion sion tion ou ism ate iti ly ies sses ss s eed ed ing ied y "
            "er ers ings edly ingly ations izations ful fully lessness ically ities ous ously ments ").split()
SPECIAL_WORDS = ("caresses ponies ties caress cats feed agreed plastered bled motoring sing conflated troubled "
                 "sized hopping tanned falling hissing fizzed failing filing happy sky skies dying lying tying "
                 "news innings inning outings outing cannings canning howe proceed exceed succeed dies died flies "
                 "spied spies tries cries relational conditional rational valenci hesitanci digitizer conformabli "
                 "radicalli differentli vileli analogousli vietnamization predication operator feudalism "
                 "decisiveness hopefulness callousness formaliti sensitiviti sensibiliti triplicate formative "
                 "formalize electriciti electrical hopeful goodness revival allowance inference airliner gyroscopic "
                 "adjustable defensible irritant replacement adjustment dependent adoption homologou communism "
                 "activate angulariti homologous effective bowdlerize probate rate cease controll roll "
                 "generalizations oscillators a i is as us ed ing ies eed sses ss s y yy yyy yyyy yay toy syzygy "
                 "by spy enjoy enjoyment geology theology archaeology philology 1990s 3rd 2nd 1st 100s 4ever "
                 "abc123 123abc x1y2 ion tion ation alli eli bli logi ll ell tell controlling fully really "
                 "daily dally sally bally e ee eee eed feed need speed freed seed treed bred hed "
                 "at ate bl ble iz ize hop hope hoping hopping fil file filing fail failing wax waxing fix fixing "
                 "show showing slowly quickly generously beautifully happily easily busily").split()
MIXED_CASE = ["SKY", "Sky", "DYING", "Dying", "RUNNING", "Generalizations", "İstanbul", "ÉCOLE", "ΟΔΟΣ", "KY",
              "Is", "NEWS", "Howe", "\u212Aelvin", "Straße"]


def make_stems():
    words = set(SPECIAL_WORDS) | set(MIXED_CASE)
    for root in ROOTS:
        for suffix in SUFFIXES:
            words.add(root + suffix)
        words.add(root)
    for name in CORPUS_NAMES:
        hyp, refs = corpus(name)
        for lines in [hyp] + refs:
            for line in lines:
                # rouge-score's tokens (already lowercased) and whitespace-split lowercased
                # words, which bring non-ASCII letters, digits and punctuation in.
                words.update(tokenize.tokenize(line, None))
                words.update(line.lower().split())
    stemmer = porter.PorterStemmer()  # what rouge_score.tokenizers.DefaultTokenizer builds
    assert stemmer.mode == porter.PorterStemmer.NLTK_EXTENSIONS
    rows = []
    for word in sorted(words):
        if not word or "\t" in word or "\n" in word:
            continue
        rows.append(f"{word}\t{stemmer.stem(word)}")
    return "\n".join(rows) + "\n"


def main():
    with open(os.path.join(FIXTURES, "rouge.json"), "w", encoding="utf-8", newline="\n") as f:
        json.dump(make_rouge(), f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    with open(os.path.join(FIXTURES, "squad.json"), "w", encoding="utf-8", newline="\n") as f:
        json.dump(make_squad(), f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    with open(os.path.join(FIXTURES, "porter_stems.tsv"), "w", encoding="utf-8", newline="\n") as f:
        f.write(make_stems())


if __name__ == "__main__":
    main()
