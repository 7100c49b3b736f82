#!/usr/bin/env python3
"""Writes the fixture corpora that Keel's metric tests score (tests/fixtures/eval/corpora/).

Deterministic (seeded): running it again gives the same files. Each corpus NAME has
NAME.hyp and NAME.ref0 [NAME.ref1 NAME.ref2], one segment per line, UTF-8, lines
separated by "\\n" only. The reference scores are produced from these files by
make_metric_fixtures.py with sacrebleu and rouge-score.

Corpora: en (English), accented (Latin scripts with diacritics and case), cjk
(Chinese/Japanese mixed with Latin), punct (punctuation, numbers, symbols), empty
(empty and whitespace-only lines, Unicode spaces), multiref (three references).
"""
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "fixtures", "eval", "corpora")

EN = ("the a an of to in and is was for on with as by at from that this it be are were has have had "
      "model data training evaluation language large small fine tuned weights tokens prompt answer question "
      "cat dog house river mountain city people government economy market price report study research "
      "quickly slowly carefully never always often running jumped walked said told asked gave took made "
      "new old good bad first last long short high low early late young important different possible "
      "because although however therefore while when where which who whose whom what why how "
      "cannot don't it's they're we've I'm you'll won't isn't O'Neil e-mail state-of-the-art co-operate").split()
ACCENTED = ("café naïve résumé über straße Ærø smørrebrød façade déjà vu coöperate São Paulo Zürich "
            "Ελλάδα αλφάβητο Москва привет ÉCOLE élève ÎLE-DE-FRANCE İstanbul ıi ǅemal ﬁnance Å ångström "
            "mañana niño acción corazón pingüino Kraków Łódź Dvořák Ægir Þór ðe œuvre ŒUVRE ß SS ẞ").split()
CJK = list("我们的模型在数据上进行了训练评估语言大小东京日本語のテキストを処理するカタカナひらがな漢字한국어문장")
CJK_WORDS = ["机器学习", "自然语言处理", "東京都", "こんにちは", "ありがとう", "데이터", "모델", "GPT-4", "LLM", "BLEU"]
PUNCT = ["...", "!?", "—", "–", "-", "(", ")", "[", "]", "{", "}", "\"", "'", "«", "»", "“", "”", "‘", "’",
         ",", ".", ";", ":", "&amp;", "&lt;", "&gt;", "&quot;", "<br>", "@user", "#tag", "$5.00", "3.14159",
         "1,000,000", "12:30", "2024-01-01", "50%", "e.g.", "i.e.", "U.S.A.", "Mr.", "http://example.com/a?b=c",
         "a/b", "\\", "*", "~", "^", "|", "`", "°C", "€100", "£", "¥", "±", "×", "÷", "→", "…", "·"]
SPACES = [" ", "  ", "\t", "\u00a0", "\u2009", "\u3000", "\u200b", "\x1f", "\x85"]


def perturb(words, rng):
    out = list(words)
    for _ in range(rng.randint(0, 4)):
        if not out:
            break
        op = rng.random()
        i = rng.randrange(len(out))
        if op < 0.25:
            del out[i]
        elif op < 0.5:
            j = rng.randrange(len(out))
            out[i], out[j] = out[j], out[i]
        elif op < 0.7:
            out[i] = rng.choice(EN)
        elif op < 0.85:
            out.insert(i, out[i])
        else:
            out[i] = out[i].upper() if rng.random() < 0.5 else out[i].capitalize()
    return out


def sentence(vocab, rng, lo=3, hi=25):
    return [rng.choice(vocab) for _ in range(rng.randint(lo, hi))]


def write(name, hyps, refs_list):
    os.makedirs(OUT, exist_ok=True)
    for line in hyps + [r for refs in refs_list for r in refs]:
        assert "\n" not in line and "\r" not in line, repr(line)
    with open(os.path.join(OUT, name + ".hyp"), "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(hyps) + "\n")
    for k, refs in enumerate(refs_list):
        assert len(refs) == len(hyps)
        with open(os.path.join(OUT, f"{name}.ref{k}"), "w", encoding="utf-8", newline="\n") as f:
            f.write("\n".join(refs) + "\n")


def pairs(vocab, n, rng, joiner=" ", n_refs=1):
    hyps, refs = [], [[] for _ in range(n_refs)]
    for _ in range(n):
        base = sentence(vocab, rng)
        hyps.append(joiner.join(perturb(base, rng)))
        for k in range(n_refs):
            refs[k].append(joiner.join(perturb(base, rng) if k else base))
    return hyps, refs


def main():
    rng = random.Random(20261127)
    hyps, refs = pairs(EN, 1500, rng)
    # Sentence-final punctuation and capitals, as real text has.
    hyps = [h[:1].upper() + h[1:] + rng.choice([".", "!", "?", "", " ."]) for h in hyps]
    refs = [[r[:1].upper() + r[1:] + "." for r in refs[0]]]
    write("en", hyps, refs)

    write("accented", *pairs(ACCENTED + EN[:40], 500, rng))

    cjk_h, cjk_r = [], []
    for _ in range(500):
        base = [rng.choice(CJK + CJK_WORDS + EN[:20]) for _ in range(rng.randint(4, 30))]
        joiner = "" if rng.random() < 0.6 else " "
        cjk_h.append(joiner.join(perturb(base, rng)))
        cjk_r.append(joiner.join(base))
    write("cjk", cjk_h, [cjk_r])

    p_h, p_r = [], []
    for _ in range(500):
        base = []
        for _ in range(rng.randint(3, 20)):
            base.append(rng.choice(PUNCT) if rng.random() < 0.45 else rng.choice(EN))
        glue = lambda ws: "".join(w + ("" if rng.random() < 0.3 else " ") for w in ws).strip()
        p_h.append(glue(perturb(base, rng)))
        p_r.append(glue(base))
    write("punct", p_h, [p_r])

    e_h, e_r = [], []
    for _ in range(200):
        kind = rng.random()
        words = sentence(EN + ACCENTED[:10], rng, 1, 8)
        spaced = "".join(w + rng.choice(SPACES) for w in words)
        if kind < 0.15:
            e_h.append("")
            e_r.append(" ".join(words))
        elif kind < 0.3:
            e_h.append(" ".join(words))
            e_r.append("")
        elif kind < 0.4:
            e_h.append("")
            e_r.append("")
        elif kind < 0.5:
            e_h.append(rng.choice(SPACES) * 3)
            e_r.append(" ".join(words))
        else:
            e_h.append(rng.choice(SPACES) + spaced)
            e_r.append(" ".join(perturb(words, rng)))
    write("empty", e_h, [e_r])

    write("multiref", *pairs(EN + ACCENTED[:10], 500, rng, n_refs=3))


if __name__ == "__main__":
    main()
