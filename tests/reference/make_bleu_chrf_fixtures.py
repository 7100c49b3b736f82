#!/usr/bin/env python3
"""Writes tests/fixtures/eval/bleu_chrf.json: sacrebleu 2.6.0's BLEU and chrF numbers
on the corpora in tests/fixtures/eval/corpora/, which tests/eval/{bleu,chrf,tokenizers}_test.cpp
compare Keel against.

Run with the reference environment (scripts/reference-venv prints its python):
    "$(scripts/reference-venv)" tests/reference/make_bleu_chrf_fixtures.py

What it records (floats as repr, rounded nowhere; JSON floats round-trip exactly):
  bleu      corpus BLEU for every corpus x tokenizer (13a/none/intl/char) x lowercase x
            smoothing (exp/floor/add-k/none) x effective_order, plus floor and add-k with
            non-default values: score, precisions, counts, totals (as sacrebleu reports
            them: add-k's k included), bp, ratio, sys_len, ref_len, signature, str(score).
  chrf      corpus chrF for every corpus x word_order (0, 2) x lowercase x whitespace x
            eps_smoothing: score, signature, str(score).
  sentence  per corpus, every segment: sentence_bleu() and sentence-level chrF and chrF++
            with default settings (all references of the corpus).
  sentence_examples  the first segments of each corpus with every BLEU field.
  tokenizers  each tokenizer's output on hard strings, and the SHA-256 of its output
            on every corpus file (lines joined with "\\n").
  unicode   the regex module's \\p{P}, \\p{S} and \\p{N} as code point ranges (the intl
            tokenizer's classes).

Corpus files are read with "\\n" as the only line separator (they contain \\x85 and
\\x1f on purpose, which str.splitlines() would also split on).
"""
import hashlib
import json
import os
import sys

import regex
import sacrebleu
from sacrebleu.metrics import BLEU, CHRF

HERE = os.path.dirname(os.path.abspath(__file__))
CORPORA = os.path.join(HERE, "..", "fixtures", "eval", "corpora")
OUT = os.path.join(HERE, "..", "fixtures", "eval", "bleu_chrf.json")

TOKENIZERS = ["13a", "none", "intl", "char"]
SMOOTHING = ["exp", "floor", "add-k", "none"]
EXTRA_SMOOTHING = [("floor", 0.2), ("add-k", 0.5), ("add-k", 2)]
SENTENCE_EXAMPLES = 5

# Strings that exercise each tokenizer's corners: HTML entities (and their sequential
# replacement), <skipped>, "-\n", hyphens and dashes after digits, numbers with commas
# and periods, trailing periods, CJK, Unicode punctuation, symbols, combining marks,
# emoji, Python-only whitespace (\x1c-\x1f, \x85) and zero-width characters.
HARD_STRINGS = [
    "",
    " ",
    "Hello, world!",
    "AT&amp;T &lt;b&gt;bold&lt;/b&gt; &quot;quoted&quot; &amp;quot; &amp;amp; & &apos;",
    "a<skipped>b <skipped> c",
    "line-\nbreak and\nnewline",
    "-\n",
    "state-of-the-art co-operate e-mail - -- ---",
    "1990-2000 5-6 a-1 1- -1 x-",
    "1,000,000.50 3.14. 2024. 12:30 $5.00 50% ,5 .5 5, 5. a.b a,b 1.a a.1",
    "e.g. i.e. U.S.A. Mr. Dr.Smith ... !? ?! ;; ::",
    "Don't won't it's O'Neil 'quoted' \"double\"",
    "http://example.com/a?b=c&d=e#frag a/b c\\d",
    "(parens) [brackets] {braces} <angle> |pipe| ~tilde^ `tick` @user #tag *star* _under_",
    "我们的模型在数据上进行了训练。东京都、こんにちは！「引用」『二重』",
    "데이터 모델, 한국어 문장입니다.",
    "«Bonjour» „Guten Tag“ “quotes” ‘single’ — – … · • ‰ ′ ″",
    "€100 £5 ¥3 ±1 ×2 ÷3 → ← ∑ ∞ ° °C © ® ™ § ¶",
    "😀 emoji 👍🏽 family 👨‍👩‍👧 flags 🇫🇷",
    "e\u0301 cafe\u0301 n\u0303 combining\u0301.",
    "tab\there\x1fsep\x1eunit\x1dgroup\x1crecord\x85next\u00a0nbsp\u2009thin\u3000ideo",
    "zero\u200bwidth\u200cnon\u200djoiner\ufeffbom",
    "trailing spaces and tab \t ",
    "   leading spaces",
    "ΟΔΟΣ Ελλάδα. İstanbul, ÉCOLE; ß ẞ ﬁnance",
    "٣٫١٤ arabic-indic ٣-٤ ١٬٠٠٠",
    "x²+y³=z¹ ½ ¼ Ⅻ ⑤",
    "a.,b ,. ., .,. 1.,2 1,.2 a-.b",
    "...leading dots and trailing dots...",
    "\x00nul and \x7fdel",
    "new-assignment symbols \U0001FAE9 \U0001CC00 punct \u2E60 digit \U00010D40",
]


def read_lines(path):
    with open(path, encoding="utf-8", newline="") as f:
        lines = f.read().split("\n")
    assert lines[-1] == "", path
    return lines[:-1]


def corpora():
    names = sorted(f[:-4] for f in os.listdir(CORPORA) if f.endswith(".hyp"))
    out = {}
    for name in names:
        hyps = read_lines(os.path.join(CORPORA, name + ".hyp"))
        refs = []
        k = 0
        while os.path.exists(os.path.join(CORPORA, f"{name}.ref{k}")):
            refs.append(read_lines(os.path.join(CORPORA, f"{name}.ref{k}")))
            assert len(refs[-1]) == len(hyps)
            k += 1
        out[name] = (hyps, refs)
    return out


def bleu_record(score, signature):
    return {
        "score": score.score,
        "precisions": list(score.precisions),
        "counts": list(score.counts),
        "totals": list(score.totals),
        "bp": score.bp,
        "ratio": score.ratio,
        "sys_len": score.sys_len,
        "ref_len": score.ref_len,
        "signature": signature,
        "string": str(score),
    }


def code_point_ranges(pattern):
    rx = regex.compile(pattern)
    ranges = []
    for c in range(0x110000):
        if rx.match(chr(c)):
            if ranges and ranges[-1][1] == c - 1:
                ranges[-1][1] = c
            else:
                ranges.append([c, c])
    return ranges


def main():
    assert sacrebleu.__version__ == "2.6.0", sacrebleu.__version__
    data = corpora()
    fixture = {"sacrebleu_version": sacrebleu.__version__, "corpora": sorted(data),
               "bleu": [], "chrf": [], "sentence": {}, "sentence_examples": {}}

    for name, (hyps, refs) in sorted(data.items()):
        settings = [(tok, lc, sm, None, eff) for tok in TOKENIZERS for lc in (False, True)
                    for sm in SMOOTHING for eff in (False, True)]
        settings += [("13a", False, sm, value, False) for sm, value in EXTRA_SMOOTHING]
        for tok, lc, sm, value, eff in settings:
            metric = BLEU(tokenize=tok, lowercase=lc, smooth_method=sm, smooth_value=value,
                          effective_order=eff, force=True)
            score = metric.corpus_score(hyps, refs)
            rec = {"corpus": name, "tokenize": tok, "lowercase": lc, "smooth_method": sm,
                   "smooth_value": value, "effective_order": eff}
            rec.update(bleu_record(score, str(metric.get_signature())))
            fixture["bleu"].append(rec)

        for wo in (0, 2):
            for lc in (False, True):
                for ws in (False, True):
                    for eps in (False, True):
                        metric = CHRF(word_order=wo, lowercase=lc, whitespace=ws, eps_smoothing=eps)
                        score = metric.corpus_score(hyps, refs)
                        fixture["chrf"].append({
                            "corpus": name, "word_order": wo, "lowercase": lc, "whitespace": ws,
                            "eps_smoothing": eps, "score": score.score,
                            "signature": str(metric.get_signature()), "string": str(score)})

        sentence = {"bleu": [], "chrf": [], "chrf++": []}
        examples = []
        chrf, chrfpp = CHRF(), CHRF(word_order=2)
        for i, hyp in enumerate(hyps):
            seg_refs = [r[i] for r in refs]
            bleu = sacrebleu.sentence_bleu(hyp, seg_refs)
            sentence["bleu"].append(bleu.score)
            c = chrf.sentence_score(hyp, seg_refs)
            sentence["chrf"].append(c.score)
            sentence["chrf++"].append(chrfpp.sentence_score(hyp, seg_refs).score)
            if i < SENTENCE_EXAMPLES:
                metric = BLEU(effective_order=True)
                b = metric.sentence_score(hyp, seg_refs)
                assert b.score == bleu.score
                rec = {"segment": i}
                rec.update(bleu_record(b, str(metric.get_signature())))
                rec["chrf_string"] = str(c)
                rec["chrf_signature"] = str(chrf.get_signature())
                examples.append(rec)
        fixture["sentence"][name] = sentence
        fixture["sentence_examples"][name] = examples

    tokenizers = {tok: BLEU(tokenize=tok).tokenizer for tok in TOKENIZERS}
    fixture["tokenizers"] = {
        "strings": HARD_STRINGS,
        "outputs": {tok: [t(s) for s in HARD_STRINGS] for tok, t in tokenizers.items()},
        "corpus_sha256": {},
    }
    for name, (hyps, refs) in sorted(data.items()):
        files = {name + ".hyp": hyps}
        files.update({f"{name}.ref{k}": r for k, r in enumerate(refs)})
        for fname, lines in files.items():
            fixture["tokenizers"]["corpus_sha256"][fname] = {
                tok: hashlib.sha256("\n".join(t(line) for line in lines).encode("utf-8")).hexdigest()
                for tok, t in tokenizers.items() if tok != "none"}

    fixture["unicode"] = {"regex_version": regex.__version__,
                          "P": code_point_ranges(r"\p{P}"), "S": code_point_ranges(r"\p{S}"),
                          "N": code_point_ranges(r"\p{N}")}

    with open(OUT, "w", encoding="utf-8", newline="\n") as f:
        json.dump(fixture, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {OUT}: {os.path.getsize(OUT)} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
