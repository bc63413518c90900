#!/usr/bin/env python3
"""torch.randperm(n, generator=torch.Generator().manual_seed(seed)) on CPU, the
oracle for src/util/torch_rng.ts (and so for FourierFT's spectral locations,
which PEFT draws this way). Writes test/fixtures/torch_randperm.json:

- "small" cases (n below 2^32/20 = 214,748,364, where every torch version runs
  the same swap loop): the first `count` entries and every 997th entry of the
  whole permutation, for n up to 768*3072 (GPT-2/BERT-base layer sizes) and
  several seeds, including PEFT's default random_loc_seed 777;
- "large" cases at the switch (n = 214,748,364 and just below), where torch
  changed algorithm (PR #144735, Jan 2025: inside-out shuffle with random64()):
  the first 64 entries and the sum of the first 1000, recorded under the
  algorithm this torch runs ('legacy' before the change, 'current' after).

Run once with each torch to refresh both large-n algorithms; each run keeps the
other's large cases already in the file:
    /usr/bin/python3 tools/reference/torch_randperm.py          # torch 1.13: legacy
    <python with torch >= 2.7> tools/reference/torch_randperm.py  # current
The large cases take ~30 s and ~2 GB each.
"""
import json
import os

import torch

PATH = os.path.join(os.path.dirname(__file__), "..", "..", "test", "fixtures", "torch_randperm.json")
SWITCH = 0xFFFFFFFF // 20
STRIDE = 997


def perm(n, seed):
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))


def version_tuple(v):
    return tuple(int(p) for p in v.split("+")[0].split(".")[:2] if p.isdigit())


small = []
for n, seed, count in [
    (1, 0, 1), (2, 777, 2), (10, 777, 10), (100, 0, 100), (1000, 42, 1000),
    (12 * 10, 777, 20),  # the FourierFT layer of tools/reference/reparam_b.py
    (768 * 768, 777, 1000), (768 * 768, 0, 1000), (768 * 768, 2**32 + 5, 64),
    (768 * 3072, 777, 1000), (768 * 3072, 123456789, 256), (3072 * 768, 2**63 - 1, 64),
]:
    p = perm(n, seed)
    small.append({"n": n, "seed": str(seed), "count": count, "prefix": p[:count].tolist(),
                  "stride": STRIDE, "sample": p[::STRIDE].tolist()})

# torch >= 2.7 runs the inside-out shuffle from SWITCH on; earlier torch the swap loop.
algorithm = "current" if version_tuple(torch.__version__) >= (2, 7) else "legacy"
large = []
if os.path.exists(PATH):
    large = [c for c in json.load(open(PATH)).get("large", []) if c["algorithm"] != algorithm]
for n in [SWITCH - 1, SWITCH]:
    p = perm(n, 777)
    large.append({"n": n, "seed": "777", "algorithm": algorithm, "torch": torch.__version__,
                  "prefix": p[:64].tolist(), "sum1000": int(p[:1000].sum())})
    del p
large.sort(key=lambda c: (c["algorithm"], c["n"]))

with open(PATH, "w") as f:
    json.dump({"torch": torch.__version__, "switch": SWITCH, "small": small, "large": large}, f)
print("wrote", os.path.normpath(PATH), "small:", len(small), "large:", [(c["n"], c["algorithm"]) for c in large])
