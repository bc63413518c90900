#!/usr/bin/env python3
"""DUQGen's document allocation and sampling, transcribed from the official code,
for test/duqgen_sampling.test.ts.

Official: emory-irlab/DUQGen, data_preparation/target_representation/
sample_target_collection_documents.py, main_run steps 4-9 (read with the
search tool's fetch): cluster sizes sorted ascending; each cluster gets
1 + floor((n_train - n_clusters) * size / n_corpus); the n_remaining leftovers
go to the last entries of the ascending list (Python slice [-n_remaining::]);
per cluster, for each seed in SEED_LIST, np.random.seed(seed) and
np.random.choice(docids, p=softmax(cos(doc, centroid)/T), size, replace=False);
the pooled draws are ordered by MMR against the document nearest the centroid
(lambda 1.0 by default) and the top `size` are kept.

faiss is not installed here, so the clustering inputs (document embeddings,
centroids, each document's cluster) are made on this side with NumPy: seeded
Gaussian blobs, a few Lloyd iterations. Everything after that is the official
code's arithmetic (float64 embeddings instead of faiss's float32). The cases
have leftovers to hand out (n_remaining > 0): with none, the official slice
[-0::] gives every cluster one more, which lorakit does not copy (it draws
exactly n_train); main() checks that no case hits it.

Usage: /usr/bin/python3 tools/reference/duqgen_sampling.py
"""
import json, math, os
from collections import OrderedDict, defaultdict
import numpy as np
from numpy import dot
from numpy.linalg import norm

SEED_LIST = [35, 745, 10, 6534, 2]
T = 1.0
cosine_fn = lambda A, B: dot(A, B) / (norm(A) * norm(B))
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '../../test/fixtures/duqgen/sampling.json')


def argmax(keys, f):
    return max(keys, key=f)


def mmr_sorted(docs, lambda_, similarity1, similarity2):
    # Official mmr_sorted; `docs` is a list here (the official code passes a set,
    # whose iteration order only matters for exact ties).
    selected = OrderedDict()
    doc_score_dict = {}
    while set(selected) != set(docs):
        remaining = [d for d in docs if d not in selected]
        mmr_score = lambda x: lambda_ * similarity1[x] - (1 - lambda_) * max([similarity2[x][y] for y in set(selected) - {x}] or [0])
        next_selected = argmax(remaining, mmr_score)
        doc_score_dict[next_selected] = mmr_score(next_selected)
        selected[next_selected] = len(selected)
    return selected, doc_score_dict


def sample(emb, centroids, assign, n_clusters, n_train, lambda_val):
    docids = list(range(len(emb)))
    n_corpus = len(emb)
    # 4. the document nearest each centroid (faiss IndexFlatL2 search, k=1)
    nearest = [int(np.argmin(((emb - c) ** 2).sum(1))) for c in centroids]
    # 5. cluster sizes, in first-appearance order
    clusteridx_docids = defaultdict(list)
    size = defaultdict(int)
    for d, k in zip(docids, assign):
        clusteridx_docids[k].append(d)
        size[k] += 1
    sizes_sorted = sorted(size.items(), key=lambda x: x[1], reverse=False)
    # 6.-7. allocation
    alloc = defaultdict(int)
    cnt = 0
    for k, s in sizes_sorted:
        alloc[k] = 1 + int(math.floor((n_train - n_clusters) * (s / n_corpus)))
        cnt += alloc[k]
    n_remaining = n_train - cnt
    assert n_remaining > 0, 'a case without leftovers hits the official [-0::] slice'
    if n_train != n_clusters:
        for k, s in sizes_sorted[-n_remaining::]:
            alloc[k] += 1
            cnt += 1
    # 8.-9. softmax sampling with each seed, then MMR
    sampled = set()
    for k in alloc:
        cur = clusteridx_docids[k]
        dist = [float(cosine_fn(emb[d], centroids[k])) for d in cur]
        probs = np.exp([e / T for e in dist]) / np.sum(np.exp([e / T for e in dist]), axis=0)
        pool = []
        for seed in SEED_LIST:
            np.random.seed(seed)
            for d in np.random.choice(cur, p=probs, size=alloc[k], replace=False):
                if int(d) not in pool:
                    pool.append(int(d))
        seed_doc = nearest[k]
        sim1 = {d: float(cosine_fn(emb[d], emb[seed_doc])) for d in pool}
        sim2 = {i: {j: float(cosine_fn(emb[i], emb[j])) for j in pool} for i in pool}
        _, scores = mmr_sorted(pool, lambda_val, sim1, sim2)
        final = [d for d, _ in sorted(scores.items(), key=lambda x: x[1], reverse=True)[:alloc[k]]]
        sampled |= set(final)
    return [[int(k), v] for k, v in alloc.items()], sorted(sampled)


def make_case(rng, n, d, k, n_train, lambda_val):
    centers = rng.normal(size=(k + 2, d)) * 2
    emb = np.concatenate([centers[i % (k + 2)] + rng.normal(size=(1, d)) for i in range(n)])
    cent = emb[rng.choice(n, size=k, replace=False)].copy()
    for _ in range(5):
        assign = np.argmin(((emb[:, None, :] - cent[None]) ** 2).sum(-1), axis=1)
        for j in range(k):
            if (assign == j).any():
                cent[j] = emb[assign == j].mean(0)
    assign = np.argmin(((emb[:, None, :] - cent[None]) ** 2).sum(-1), axis=1)
    alloc, sampled = sample(emb, cent, [int(a) for a in assign], k, n_train, lambda_val)
    return {'n_train': n_train, 'n_clusters': k, 'lambda': lambda_val, 'embeddings': emb.tolist(), 'centroids': cent.tolist(),
            'assignment': [int(a) for a in assign], 'allocation': alloc, 'sampled': sampled}


def main():
    rng = np.random.default_rng(1234)
    cases = [make_case(rng, 120, 8, 10, 40, 1.0), make_case(rng, 200, 6, 25, 60, 1.0), make_case(rng, 90, 5, 12, 30, 0.5)]
    with open(OUT, 'w') as f:
        json.dump({'source': 'emory-irlab/DUQGen sample_target_collection_documents.py steps 4-9, transcribed', 'numpy': np.__version__, 'cases': cases}, f)
        f.write('\n')


if __name__ == '__main__':
    main()
