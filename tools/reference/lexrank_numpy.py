#!/usr/bin/env python3
"""LexRank in NumPy, the oracle for src/summarize/lexrank.ts. Writes test/fixtures/lexrank_numpy.json.

Transcribed from Erkan & Radev (JAIR 2004, "LexRank: Graph-based Lexical
Centrality as Salience in Text Summarization"), Algorithms 2-3 and eq. 5:
  - tokens: lowercase [a-z0-9]+;
  - idf-modified-cosine: cosine of tf*idf vectors, tf = raw count, idf = ln(N/df)
    over a given collection (default: the sentences themselves);
  - bag-of-words cosine: raw counts, stopwords removed;
  - dense cosine: of given vectors (as sentence embeddings), negatives clipped to 0
    in the continuous variant;
  - threshold LexRank: edge (weight 1) where similarity >= t, rows divided by the degree;
    continuous LexRank: edge weight = similarity, rows divided by their sum;
    an all-zero row becomes uniform (a dangling node);
  - p = d/N + (1-d) M^T p. The oracle does NOT iterate: it solves the linear system
    (I - (1-d) M^T) p = d/N 1 with numpy.linalg.solve, so it checks the iteration too.
Sentences: hand-written below and seeded random ones (numpy default_rng(20240607)).

Usage: /usr/bin/python3 tools/reference/lexrank_numpy.py
"""
import json
import math
import os
import re

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(os.path.dirname(os.path.dirname(HERE)), "test", "fixtures", "lexrank_numpy.json")

HAND = [
    "The central bank raised interest rates by half a point on Tuesday.",
    "Markets fell sharply after the central bank announced the rate increase.",
    "Analysts had expected a smaller increase in interest rates.",
    "The bank said inflation remained too high for comfort.",
    "Meanwhile, the city council approved a new park near the river.",
    "Higher rates make mortgages more expensive for families.",
    "Some economists warned that the rate increase could slow growth.",
    "The park will open next spring.",
    "!!!",
]
STOP = {"the", "a", "an", "of", "for", "to", "in", "on", "by", "that", "and", "said", "could", "will", "near", "after"}


def tokens(s):
    return re.findall(r"[a-z0-9]+", s.lower())


def counts(toks, stop=None):
    c = {}
    for t in toks:
        if stop and t in stop:
            continue
        c[t] = c.get(t, 0) + 1
    return c


def cosine_sparse(vecs):
    n = len(vecs)
    S = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            ni = math.sqrt(sum(x * x for x in vecs[i].values()))
            nj = math.sqrt(sum(x * x for x in vecs[j].values()))
            if ni == 0 or nj == 0:
                continue
            S[i, j] = sum(x * vecs[j].get(w, 0.0) for w, x in vecs[i].items()) / (ni * nj)
    return S


def tfidf_sim(sents, idf_docs=None):
    toks = [tokens(s) for s in sents]
    docs = idf_docs if idf_docs is not None else toks
    N = len(docs)
    df = {}
    for d in docs:
        for w in set(d):
            df[w] = df.get(w, 0) + 1
    idf = lambda w: math.log(N / df.get(w, 1))
    return cosine_sparse([{w: c * idf(w) for w, c in counts(t).items()} for t in toks])


def bow_sim(sents, stop):
    return cosine_sparse([{w: float(c) for w, c in counts(tokens(s), stop).items()} for s in sents])


def dense_sim(E):
    norms = np.linalg.norm(E, axis=1)
    S = (E @ E.T) / np.outer(norms, norms)
    return S


def lexrank(S, threshold, d):
    n = S.shape[0]
    W = np.maximum(S, 0.0) if threshold is None else (S >= threshold).astype(float)
    sums = W.sum(axis=1)
    M = np.where(sums[:, None] > 0, W / np.where(sums > 0, sums, 1)[:, None], 1.0 / n)
    return np.linalg.solve(np.eye(n) - (1 - d) * M.T, np.full(n, d / n))


def main():
    rng = np.random.default_rng(20240607)
    vocab = [f"w{i}" for i in range(40)]
    rand_sents = [" ".join(rng.choice(vocab, size=rng.integers(3, 12))) for _ in range(25)]
    cases = []
    for thr in (0.1, 0.3, None):
        for d in (0.15, 0.5):
            cases.append({"name": f"hand tfidf t={thr} d={d}", "sentences": HAND, "similarity": "tfidf", "threshold": thr, "damping": d,
                          "scores": lexrank(tfidf_sim(HAND), thr, d).tolist()})
    idf_docs = [tokens(" ".join(HAND[:4])), tokens(" ".join(HAND[4:])), tokens(" ".join(rand_sents))]
    cases.append({"name": "hand tfidf, idf over 3 documents", "sentences": HAND, "similarity": "tfidf", "idf_documents": idf_docs,
                  "threshold": 0.1, "damping": 0.15, "scores": lexrank(tfidf_sim(HAND, idf_docs), 0.1, 0.15).tolist()})
    for thr in (0.1, None):
        cases.append({"name": f"hand bow without stopwords t={thr}", "sentences": HAND, "similarity": "bow", "stopwords": sorted(STOP),
                      "threshold": thr, "damping": 0.15, "scores": lexrank(bow_sim(HAND, STOP), thr, 0.15).tolist()})
        cases.append({"name": f"random tfidf t={thr}", "sentences": rand_sents, "similarity": "tfidf", "threshold": thr, "damping": 0.15,
                      "scores": lexrank(tfidf_sim(rand_sents), thr, 0.15).tolist()})
    E = rng.standard_normal((12, 16))
    for thr in (0.2, None):
        cases.append({"name": f"dense t={thr}", "embeddings": E.tolist(), "similarity": "dense", "threshold": thr, "damping": 0.15,
                      "scores": lexrank(dense_sim(E), thr, 0.15).tolist()})
    with open(OUT, "w") as f:
        json.dump({"cases": cases}, f)
    print(f"{len(cases)} cases -> {OUT}")


if __name__ == "__main__":
    main()
