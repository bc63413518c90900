#!/usr/bin/env python3
"""Plain-PyTorch reference for LaMDA++ (src/adapters/lamda/allocate.ts):
per-module ranks from the normalized singular-value energy of each pretrained
weight, and the forward/gradients of a LaMDA site at its allocated rank.

Six synthetic [out, in] weights W = U·diag(σ)·Vᵀ (random orthonormal U, V;
σ_i = exp(−d·i) with a different decay d per module, so their energies
differ), stored as float32. For each allocation case (base rank r, total_rank,
min_rank, max_rank):
    e_l = Σ_{i≤r} σ_i² / ‖W_l‖_F²        (torch.linalg.svdvals)
    x_l = T·e_l/Σe,  r_l = clamp(⌊x_l⌋, lo, hi_l), then ±1 by largest/smallest
    remainder x_l − r_l (ties: earlier module) until Σ r_l = T.
Then, for one module whose r_l ≠ r: y = x·Wᵀ + (α/r_l)·((x·A_lᵀ)·Sᵀ)·Bᵀ with
A_l = the top-r_l rows of Vᵀ (signs canonical: largest-|·| entry of each row
positive) and ∂(Σ y⊙R)/∂S, ∂/∂B.

Writes test/fixtures/lamda_pp.json. Run: /usr/bin/python3 tools/reference/lamda_pp.py
"""
import json
import math
import os

import torch

torch.manual_seed(0)
torch.set_default_dtype(torch.float64)

MODULES = [  # name, out, in, decay
    ("layers.0.attn.q", 24, 32, 0.9),
    ("layers.0.attn.v", 32, 32, 0.05),
    ("layers.0.mlp.up", 40, 20, 0.3),
    ("layers.1.attn.q", 16, 48, 0.6),
    ("layers.1.attn.v", 36, 28, 0.02),
    ("layers.1.mlp.up", 20, 40, 0.15),
]


def orthonormal(rows, cols):
    q, _ = torch.linalg.qr(torch.randn(rows, cols))
    return q


weights = {}
for name, m, n, d in MODULES:
    k = min(m, n)
    s = torch.tensor([math.exp(-d * i) for i in range(k)]) * 2.0
    W = orthonormal(m, k) @ torch.diag(s) @ orthonormal(n, k).T
    weights[name] = W.float().double()  # the values lorakit sees (float32)


def energy(W, r):
    sv = torch.linalg.svdvals(W)
    return float((sv[:r] ** 2).sum() / (W ** 2).sum())


def allocate(r, total, lo, max_rank):
    L = len(MODULES)
    T = total if total is not None else r * L
    his = [min(max_rank if max_rank is not None else 2 * r, m, n) for _, m, n, _ in MODULES]
    es = [energy(weights[name], r) for name, *_ in MODULES]
    sum_e = 0.0
    for e in es:
        sum_e += e
    xs = [T * e / sum_e for e in es]
    ranks = [min(hi, max(lo, math.floor(x))) for x, hi in zip(xs, his)]
    total_now = sum(ranks)
    while total_now != T:
        best = -1
        for i in range(L):
            if (ranks[i] >= his[i]) if total_now < T else (ranks[i] <= lo):
                continue
            d = xs[i] - ranks[i]
            if best < 0 or (d > xs[best] - ranks[best] if total_now < T else d < xs[best] - ranks[best]):
                best = i
        step = 1 if total_now < T else -1
        ranks[best] += step
        total_now += step
    return {"ranks": ranks, "energies": es, "targets": xs}


cases = []
for cfg in [
    {"r": 4, "total_rank": None, "min_rank": 1, "max_rank": None},
    {"r": 6, "total_rank": 30, "min_rank": 3, "max_rank": 7},
    {"r": 2, "total_rank": 20, "min_rank": 1, "max_rank": None},
]:
    res = allocate(cfg["r"], cfg["total_rank"], cfg["min_rank"], cfg["max_rank"])
    cases.append({"config": cfg, **res})

# Forward/gradients of the first module of case 0 whose rank differs from r.
base = cases[0]
li = next(i for i, rl in enumerate(base["ranks"]) if rl != base["config"]["r"])
name, m, n, _ = MODULES[li]
r_l, alpha, N = base["ranks"][li], 8.0, 5
W = weights[name]
_, _, Vh = torch.linalg.svd(W, full_matrices=False)
A = Vh[:r_l].clone()
for k in range(r_l):
    if A[k, A[k].abs().argmax()] < 0:
        A[k] = -A[k]
x = torch.randn(N, n)
R = torch.randn(N, m)
S = (torch.randn(r_l, r_l) * 0.3).requires_grad_(True)
B = (torch.randn(m, r_l) * 0.3).requires_grad_(True)
y = x @ W.T + (alpha / r_l) * ((x @ A.T) @ S.T) @ B.T
(y * R).sum().backward()


def t(v):
    return v.detach().reshape(-1).tolist()


out = {
    "modules": [{"name": nm, "out": m_, "in": n_, "W": t(weights[nm])} for nm, m_, n_, _ in MODULES],
    "cases": cases,
    "site": {
        "module": name, "r": r_l, "lora_alpha": alpha, "n": N,
        "x": t(x), "R": t(R), "S": t(S), "B": t(B), "A": t(A),
        "y": t(y), "grads": {"lamda_S.weight": t(S.grad), "lamda_B.weight": t(B.grad)},
    },
}
path = os.path.join(os.path.dirname(__file__), "..", "..", "test", "fixtures", "lamda_pp.json")
with open(path, "w") as f:
    json.dump(out, f)
print("wrote", os.path.normpath(path), [c["ranks"] for c in cases], "site", name, "r", r_l)
