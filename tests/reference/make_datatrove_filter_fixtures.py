#!/usr/bin/env python3
"""Runs datatrove's GopherQualityFilter, GopherRepetitionFilter and C4QualityFilter (default
thresholds, English) on a generated corpus and records what each decides per document, as
the fixture tests/fixtures/data/datatrove_filters.jsonl.gz that keel's C++ filters are checked
against (tests/data/datatrove_equivalence_test.cpp).

The corpus is made here, from a fixed seed: documents of made-up and common English words
with stop words, and perturbations aimed at every rule (short and long documents, long
words, '#' and ellipses, bullet and ellipsis lines, numbers, missing stop words, repeated
lines, paragraphs and n-grams, menu lines, javascript, cookie notices, lorem ipsum, braces,
citations, hyphens, contractions, quotes), mixed at random strengths so that many documents
land near a threshold.

Usage: python3 tests/reference/make_datatrove_filter_fixtures.py
It makes (once) a virtual environment in ~/.cache/keel/venv-datatrove with
requirements-datatrove.txt and runs itself there.
"""
import gzip
import io
import json
import os
import random
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
VENV = os.path.expanduser("~/.cache/keel/venv-datatrove")
OUT = os.path.join(ROOT, "tests", "fixtures", "data", "datatrove_filters.jsonl.gz")
SEED = 20261201
DOCS = 1000


def ensure_venv():
    python = os.path.join(VENV, "bin", "python")
    if os.path.realpath(sys.prefix) == os.path.realpath(VENV):
        return
    if not os.path.exists(python):
        subprocess.check_call([sys.executable, "-m", "venv", VENV])
    subprocess.check_call([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r",
                           os.path.join(HERE, "requirements-datatrove.txt")])
    os.execv(python, [python] + sys.argv)


COMMON = ("river valley mill farmer wheat bank water spring flood village home child summer visitor inn "
          "stone bridge baker bread honey cake apple morning evening market road hill forest lake boat net "
          "sun rain wind cloud garden flower tree bird song teacher school letter window kitchen doctor "
          "engine train station ticket city street museum painting library story history music dance").split()
STOP = ["the", "be", "to", "of", "and", "that", "have", "with"]
OTHER = ("a an in on at for from by is was are were it this they we you he she his her our their "
         "not but or so if when while after before because very quite also").split()
LONG = ["incomprehensibilities", "counterrevolutionaries", "internationalisation", "electroencephalograph"]
HYPHENATED = ["well-known", "long-term", "state-of-the-art", "twenty-one", "up-to-date", "re-entry"]
CONTRACTIONS = ["don't", "can't", "it's", "we're", "they'll", "I'm", "isn't", "you've", "she'd", "won't"]


def made_up_word(rng):
    return "".join(rng.choice("abcdefghijklmnoprstuvwy") for _ in range(rng.randint(3, 9)))


def word(rng, made_up):
    r = rng.random()
    if r < 0.25:
        return rng.choice(STOP)
    if r < 0.45:
        return rng.choice(OTHER)
    if r < 0.45 + made_up:
        return made_up_word(rng)
    return rng.choice(COMMON)


def sentence(rng, made_up, end="."):
    n = rng.randint(5, 16)
    words = [word(rng, made_up) for _ in range(n)]
    if rng.random() < 0.15:
        words.insert(rng.randrange(len(words)), rng.choice(HYPHENATED))
    if rng.random() < 0.15:
        words.insert(rng.randrange(len(words)), rng.choice(CONTRACTIONS))
    if rng.random() < 0.1:
        i = rng.randrange(len(words))
        words[i] = words[i] + ","
    if rng.random() < 0.05:
        words.insert(rng.randrange(len(words)), '"' + rng.choice(COMMON) + '"')
    text = " ".join(words)
    return text[0].upper() + text[1:] + end


def base_document(rng):
    made_up = rng.choice([0.0, 0.2, 0.5])
    lines = []
    for _ in range(rng.randint(1, 12)):
        lines.append(" ".join(sentence(rng, made_up, rng.choice([".", ".", ".", "!", "?"]))
                              for _ in range(rng.randint(1, 3))))
    return lines


def perturb(rng, lines):
    kind = rng.choice(["none", "short", "long_words", "hashes", "ellipsis", "bullets", "end_ellipsis", "numbers",
                       "no_stop", "dup_lines", "dup_paragraphs", "top_ngram", "dup_ngram", "menu", "javascript",
                       "policy", "lorem", "curly", "citations", "few_sentences", "tiny_words", "very_long_words",
                       "unicode", "web", "mixed"])
    strength = rng.random()
    if kind == "short":
        lines = lines[:1]
        words = lines[0].split()
        lines[0] = " ".join(words[:max(3, int(len(words) * strength))]) + "."
    elif kind == "long_words":
        for i in range(len(lines)):
            if rng.random() < strength:
                lines[i] += " " + " ".join(rng.choice(LONG) for _ in range(rng.randint(1, 6))) + "."
    elif kind == "hashes":
        lines.append(" ".join("#" + rng.choice(COMMON) for _ in range(int(strength * 20) + 1)))
    elif kind == "ellipsis":
        for i in range(len(lines)):
            if rng.random() < strength:
                lines[i] = lines[i].replace(" ", " ... ", 1 + int(strength * 3)).replace("... ...", "…")
    elif kind == "bullets":
        lines = [("• " if rng.random() < 0.5 else "- ") + l if rng.random() < strength + 0.3 else l for l in lines]
    elif kind == "end_ellipsis":
        lines = [l.rstrip(".!?") + rng.choice(["...", "…"]) if rng.random() < strength else l for l in lines]
    elif kind == "numbers":
        for i in range(len(lines)):
            lines[i] += " " + " ".join(str(rng.randint(1, 99999)) for _ in range(int(strength * 12)))
    elif kind == "no_stop":
        for s in STOP:
            lines = [(" " + l + " ").replace(" " + s + " ", " " + rng.choice(COMMON) + " ").strip() for l in lines]
        if rng.random() < strength:
            lines.append("And the end.")
    elif kind == "dup_lines":
        line = rng.choice(lines)
        lines += [line] * rng.randint(1, 6)
        rng.shuffle(lines)
    elif kind == "dup_paragraphs":
        paragraphs = ["\n".join(lines[i:i + 2]) for i in range(0, len(lines), 2)]
        paragraphs += [rng.choice(paragraphs)] * rng.randint(1, 4)
        return "\n\n".join(paragraphs)
    elif kind == "top_ngram":
        phrase = " ".join(rng.choice(COMMON) for _ in range(rng.randint(2, 4)))
        for i in range(len(lines)):
            if rng.random() < strength + 0.2:
                lines[i] = lines[i].rstrip(".!?") + " " + " ".join([phrase] * rng.randint(1, 3)) + "."
    elif kind == "dup_ngram":
        chunk = " ".join(word(rng, 0.3) for _ in range(rng.randint(5, 12)))
        for i in range(len(lines)):
            if rng.random() < strength:
                lines[i] = lines[i].rstrip(".!?") + " " + chunk + "."
    elif kind == "menu":
        for _ in range(int(strength * 8) + 1):
            lines.insert(rng.randrange(len(lines) + 1), " | ".join(rng.choice(COMMON).title() for _ in range(4)))
    elif kind == "javascript":
        lines.insert(rng.randrange(len(lines) + 1), "Please enable JavaScript in your browser to see this page.")
    elif kind == "policy":
        lines.insert(rng.randrange(len(lines) + 1),
                     rng.choice(["This site uses cookies to improve your visit.", "Read our privacy policy first.",
                                 "By using it you accept the terms of use."]))
    elif kind == "lorem":
        lines.insert(rng.randrange(len(lines) + 1), "Lorem ipsum dolor sit amet, consectetur adipiscing elit.")
    elif kind == "curly":
        lines.insert(rng.randrange(len(lines) + 1),
                     rng.choice(["The function returns {value} to the caller.", "if (x) { return y; }"]))
    elif kind == "citations":
        lines = [l[:-1] + "[" + str(rng.randint(1, 40)) + "]" + l[-1] if rng.random() < strength else l
                 for l in lines]
        lines.append("See also the history of the valley[edit] and the mill[citation needed].")
    elif kind == "few_sentences":
        lines = lines[:rng.randint(1, 4)]
    elif kind == "tiny_words":
        tiny = ["a", "I", "to", "of", "is", "it", "an", "be", "so", "up", "we", "go", "me", "the", "and"]
        lines = [" ".join(rng.choice(tiny) if rng.random() < strength + 0.3 else w for w in l.split()) + "."
                 for l in lines]
    elif kind == "very_long_words":
        lines = [" ".join(rng.choice(LONG) if rng.random() < strength else w for w in l.split()) for l in lines]
    elif kind == "unicode":
        extra = ["café", "naïve", "Zürich", "“quoted”", "— dash —", "£30", "€5", "°C.", "Ångström", "東京", "Москва",
                 "e.g.", "Mr.", "Dr.", "U.S.", "3.5kg", "50%", "10am", "can't", "y'all", "o'clock", "Bob's"]
        lines = [l.rstrip(".!?") + " " + " ".join(rng.choice(extra) for _ in range(rng.randint(1, 5))) + "."
                 for l in lines]
    elif kind == "web":
        extra = ["http://example.com/a-b", "www.site.org/page?x=1", "mail@example.org", "file.txt", "and/or",
                 ":)", "C++", "#tag", "@user", "a/b", "x:y", "(see below)", "[1]", "--", "...", "wait…"]
        lines = [l.rstrip(".!?") + " " + " ".join(rng.choice(extra) for _ in range(rng.randint(1, 6))) +
                 rng.choice([".", "", "!", "..."]) for l in lines]
    elif kind == "mixed":
        for _ in range(2):
            return perturb(rng, lines) if isinstance(lines, list) else lines
    return "\n".join(lines)


def make_corpus():
    rng = random.Random(SEED)
    docs = []
    for i in range(DOCS):
        text = perturb(rng, base_document(rng))
        if rng.random() < 0.05:
            text = "  " + text.replace("\n", "\n\n", 1) + "\n"
        docs.append({"id": f"doc{i:04d}", "text": text})
    return docs


def verdict(result):
    if result is True:
        return "keep"
    if isinstance(result, tuple):
        return result[1]
    return "drop"


def main():
    ensure_venv()
    import datatrove
    import spacy
    from datatrove.data import Document
    from datatrove.pipeline.filters import C4QualityFilter, GopherQualityFilter, GopherRepetitionFilter

    quality, repetition, c4 = GopherQualityFilter(), GopherRepetitionFilter(), C4QualityFilter()
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    # gzip without a timestamp, so the same corpus gives the same bytes.
    with gzip.GzipFile(OUT, "wb", mtime=0) as raw, io.TextIOWrapper(raw, encoding="utf-8") as out:
        for d in make_corpus():
            row = dict(d)
            row["gopher_quality"] = verdict(quality.filter(Document(text=d["text"], id=d["id"])))
            row["gopher_repetition"] = verdict(repetition.filter(Document(text=d["text"], id=d["id"])))
            doc = Document(text=d["text"], id=d["id"])
            row["c4"] = verdict(c4.filter(doc))
            row["c4_text"] = doc.text if row["c4"] == "keep" else None
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"wrote {OUT} ({DOCS} documents; datatrove {datatrove.__version__ if hasattr(datatrove, '__version__') else '0.10.1'}, "
          f"spaCy {spacy.__version__})")


if __name__ == "__main__":
    main()
