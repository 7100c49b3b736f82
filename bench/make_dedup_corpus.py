#!/usr/bin/env python3
"""Writes a deterministic web-like JSONL corpus with planted duplicates, for the
dedup benchmark (bench/dedup_vs_datatrove) and the CLI test (tests/cli/data_cli_test.cpp).

Every record: {"id", "url", "text", "dup_of", "kind", "jaccard"}.
  kind "original":  a fresh document (dup_of = -1)
  kind "near":      an original with words replaced, inserted or deleted until its word
                    5-gram Jaccard similarity (on datatrove-style simplified text) to the
                    original reaches a target drawn from [--min-jaccard, --max-jaccard];
                    "jaccard" holds the similarity reached
  kind "exact":     an original with its case and whitespace changed (exact-dedup truth)
Some documents carry planted PII (emails, phones, card numbers) for the PII benchmark.
Standard library only; the same arguments always give the same bytes.
"""
import argparse
import json
import random
import re
import sys

SYLLABLES = ["ka", "lo", "ri", "men", "tas", "po", "vel", "dan", "sor", "ith", "an", "ber", "cu", "dre", "fi",
             "gol", "hu", "jen", "ko", "lum", "mar", "nes", "ol", "pre", "qua", "ros", "sil", "tor", "ul", "ven"]
FUNCTION_WORDS = ["the", "of", "and", "to", "in", "a", "is", "that", "for", "it", "as", "was", "with", "on", "by"]
BOILERPLATE = ["Home | About | Contact", "Share this article", "All rights reserved.", "Subscribe to our newsletter",
               "Read more", "Cookie policy"]


def make_vocabulary(rng, size):
    words = set()
    while len(words) < size:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 4))))
    words = sorted(words)
    rng.shuffle(words)
    return words


def simplified_words(text):
    text = text.lower()
    text = re.sub(r"[0-9]+", "0", text)
    text = re.sub(r"[!-/:-@\[-`{-~]", " ", text)
    return text.split()


def shingles(words, n=5):
    if len(words) < n:
        return {tuple(words)} if words else set()
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def jaccard(a, b):
    return len(a & b) / len(a | b) if (a or b) else 1.0


def sentence(rng, vocabulary, cum_weights):
    n = rng.randint(6, 18)
    content = rng.choices(vocabulary, cum_weights=cum_weights, k=n)
    words = [rng.choice(FUNCTION_WORDS) if rng.random() < 0.3 else w for w in content]
    s = " ".join(words)
    return s[0].upper() + s[1:] + rng.choice([".", ".", ".", "?", "!"])


def document(rng, vocabulary, cum_weights, min_words, max_words):
    target = rng.randint(min_words, max_words)
    paragraphs, count = [], 0
    while count < target:
        para = []
        for _ in range(rng.randint(2, 5)):
            s = sentence(rng, vocabulary, cum_weights)
            para.append(s)
            count += len(s.split())
        paragraphs.append(" ".join(para))
    if rng.random() < 0.3:
        paragraphs.insert(0, rng.choice(BOILERPLATE))
    return "\n\n".join(paragraphs)


def plant_pii(rng, text):
    kind = rng.randrange(3)
    if kind == 0:
        snippet = "Contact %s.%s@example.com for details." % (rng.choice(SYLLABLES), rng.choice(SYLLABLES))
    elif kind == 1:
        snippet = "Call +1 (555) %03d-%04d today." % (rng.randrange(200, 999), rng.randrange(10000))
    else:
        snippet = "Card 4111 1111 1111 1111 on file."
    return text + "\n\n" + snippet


def near_duplicate(rng, text, target, vocabulary):
    """Edits words of text until the word 5-gram Jaccard drops to target (or just below)."""
    words = text.split(" ")
    original = shingles(simplified_words(text))
    best = (text, 1.0)
    # One edit changes up to five 5-grams; edit in steps sized to the distance left.
    step = max(1, int(len(words) * (1 - target) / 10))
    for _ in range(200):
        for _ in range(step):
            op = rng.random()
            i = rng.randrange(len(words))
            if op < 0.6:
                words[i] = rng.choice(vocabulary)
            elif op < 0.8:
                words.insert(i, rng.choice(vocabulary))
            elif len(words) > 10:
                del words[i]
        step = 1
        candidate = " ".join(words)
        j = jaccard(original, shingles(simplified_words(candidate)))
        best = (candidate, j)
        if j <= target:
            break
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=200000, help="total records written")
    ap.add_argument("--near-fraction", type=float, default=0.10, help="share of near-duplicates")
    ap.add_argument("--exact-fraction", type=float, default=0.05, help="share of exact duplicates")
    ap.add_argument("--pii-fraction", type=float, default=0.05, help="share of documents with planted PII")
    ap.add_argument("--min-jaccard", type=float, default=0.80)
    ap.add_argument("--max-jaccard", type=float, default=0.95)
    ap.add_argument("--min-words", type=int, default=80)
    ap.add_argument("--max-words", type=int, default=400)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    rng = random.Random(args.seed)
    vocabulary = make_vocabulary(rng, 20000)
    cum_weights, total = [], 0.0
    for rank in range(len(vocabulary)):  # Zipf-like
        total += 1.0 / (rank + 10)
        cum_weights.append(total)
    originals = []  # indices of originals
    texts = []
    with open(args.out, "w", encoding="utf-8") as out:
        for i in range(args.docs):
            r = rng.random()
            record = {"id": "doc-%07d" % i, "url": "https://site%d.example/%d" % (rng.randrange(5000), i)}
            if originals and r < args.near_fraction:
                src = rng.choice(originals)
                target = rng.uniform(args.min_jaccard, args.max_jaccard)
                text, j = near_duplicate(rng, texts[src], target, vocabulary)
                record.update(text=text, dup_of=src, kind="near", jaccard=round(j, 4))
            elif originals and r < args.near_fraction + args.exact_fraction:
                src = rng.choice(originals)
                text = texts[src].upper() if rng.random() < 0.5 else texts[src].replace(" ", "  ")
                record.update(text=text, dup_of=src, kind="exact", jaccard=1.0)
            else:
                text = document(rng, vocabulary, cum_weights, args.min_words, args.max_words)
                if rng.random() < args.pii_fraction:
                    text = plant_pii(rng, text)
                originals.append(i)
                record.update(text=text, dup_of=-1, kind="original", jaccard=None)
            texts.append(text)
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    print("wrote %d records to %s" % (args.docs, args.out), file=sys.stderr)


if __name__ == "__main__":
    main()
