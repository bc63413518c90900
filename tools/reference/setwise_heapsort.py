#!/usr/bin/env python3
"""Setwise heapsort as llm-rankers runs it (ielab/llm-rankers,
llmrankers/setwise.py: SetwiseLlmRanker.heapify / heapSort, then the array
reversed), transcribed here in plain Python with a scripted chooser: each
prompt's answer is the document with the highest hidden relevance (a fixed
total order), or, in the 'malformed' cases, no readable answer for every 5th
prompt (the parent keeps its place, as best_ind = 0 there).

Cases: n candidates (a seeded permutation of hidden scores, random.seed(18)),
num_child, k. Records the final order (as indices of the input), the number
of prompts, and the brute-force top k.

Writes test/fixtures/setwise_heapsort.json. Run: /usr/bin/python3 tools/reference/setwise_heapsort.py
"""
import json
import os
import random

random.seed(18)


def run(scores, num_child, k, malformed_every):
    arr = list(range(len(scores)))
    count = {"prompts": 0, "malformed": 0}

    def compare(docs):
        count["prompts"] += 1
        if malformed_every and count["prompts"] % malformed_every == 0:
            count["malformed"] += 1
            return None
        return max(range(len(docs)), key=lambda j: scores[docs[j]])

    def heapify(arr, n, i):
        if num_child * i + 1 < n:
            docs = [arr[i]] + arr[num_child * i + 1: min(num_child * (i + 1) + 1, n)]
            inds = [i] + list(range(num_child * i + 1, min(num_child * (i + 1) + 1, n)))
            best = compare(docs)
            best_ind = 0 if best is None else best
            largest = inds[best_ind]
            if largest != i:
                arr[i], arr[largest] = arr[largest], arr[i]
                heapify(arr, n, largest)

    n = len(arr)
    for i in range(n // num_child, -1, -1):
        heapify(arr, n, i)
    ranked = 0
    for i in range(n - 1, 0, -1):
        arr[i], arr[0] = arr[0], arr[i]
        ranked += 1
        if ranked == k:
            break
        heapify(arr, i, 0)
    return list(reversed(arr)), count


cases = []
for n, c, k, bad in [(100, 19, 10, 0), (100, 3, 10, 0), (37, 19, 10, 0), (20, 19, 10, 0), (100, 19, 100, 0), (100, 19, 10, 5)]:
    scores = list(range(n))
    random.shuffle(scores)
    order, count = run(scores, c, k, bad)
    top = sorted(range(n), key=lambda i: -scores[i])[:k]
    cases.append(dict(n=n, numChild=c, k=k, malformedEvery=bad, scores=scores, order=order,
                      prompts=count["prompts"], malformed=count["malformed"], bruteTop=top))
out = os.path.join(os.path.dirname(__file__), "../../test/fixtures/setwise_heapsort.json")
with open(out, "w") as f:
    json.dump({"source": "tools/reference/setwise_heapsort.py", "cases": cases}, f)
print("wrote", out, [(c["n"], c["numChild"], c["k"], c["prompts"]) for c in cases])
