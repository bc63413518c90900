#!/usr/bin/env python3
"""Golden outputs and gradients for VeRA, NOLA, LoRA-XS, LoLDU, RandLoRA, LoRA-SB
(test/reparam_a.test.ts), in plain PyTorch from each method's equations.

Everything the test feeds lorakit comes from here, drawn with torch generators
of fixed seeds: each site's W0 [out, in], input x [T, in] and loss weights C
[T, out]; each method's parameters (its keys and shapes); and the frozen
tensors each method derives from its seed or from W0, made here from the
method's own definition, not read from lorakit:
  VeRA      PEFT tuners/vera/model.py _kaiming_init: A [r, in] then B [out, r],
            float32 uniform(±√2·√3/√fan_in) from Generator().manual_seed(projection_prng_key)
            (one site alone: its own shape is the largest)
  RandLoRA  PEFT tuners/randlora/model.py _init_randlora_A_randlora_B: A [r, 1, min] then
            ⌈min/r⌉ blocks [max, 1, r], bfloat16 kaiming_uniform_(a=√5), each divided by its
            std. torch 1.13 draws bfloat16 differently from torch 2 (whose draws lorakit
            regenerates; test/torch_init.test.ts checks those), so the test hands these to
            lorakit as stored projections, as a PEFT file with save_projection would.
  LoRA-XS   torch.linalg.svd of W0: U_r and Σ_r·V_rᵀ, each pair signed so the largest-|.|
            entry of u (out ≥ in) or of v (out < in) is positive (the SVD leaves signs free;
            ΔW = U·R·ΣVᵀ depends on them, so lorakit's convention, documented in
            src/linalg/svd.ts, is applied here)
  LoLDU     torch.linalg.lu of W0: P·L_r, U_r = U[:r]/d, d = diag(U)[:r] (SKDDJ/LoLDU)
  NOLA      its bases A0 [r, in] (±1/√in), A_i [r, in] and B_j [out, r] ~ U(−1, 1) are
            lorakit's own seeded stream (lorakit's choice of generator; the official code
            draws with torch's): they are the one input taken from lorakit
            (test/fixtures/reparam_a_inputs.json, written by tools/reference/reparam_a_inputs.ts)
            and checked here against NOLA's definition (ranges, moments, independence).
  LoRA-SB   A, B and R are all stored tensors (nothing derived).

Writes test/fixtures/reparam_a.json: inputs, configs, params, frozen tensors,
y = x·W0ᵀ + ΔW(x) and d(Σ y ⊙ C)/d(param) per method and site, and torch.linalg's
SVD values and LU factors of each W0.

Run: npx tsx tools/reference/reparam_a_inputs.ts (NOLA's bases), then
     /usr/bin/python3 tools/reference/reparam_a.py
"""
import json
import math
import os

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "..", "..", "test", "fixtures")
SITES = [{"name": "a", "in": 12, "out": 10}, {"name": "b", "in": 10, "out": 12}]
T = 5
CONFIGS = {
    "vera": {"r": 4, "projection_prng_key": 0, "d_initial": 0.1, "init_weights": False},
    "nola": {"r": 3, "lora_alpha": 6, "num_basis_A": 5, "num_basis_B": 6, "basis_seed": 0, "init_weights": False},
    "loraxs": {"r": 3, "lora_alpha": 6, "init_weights": False},
    "loldu": {"r": 4, "sigma": None, "init_weights": False},
    "randlora": {"r": 3, "randlora_alpha": 6, "projection_prng_key": 0, "init_weights": False},
    "lorasb": {"r": 3, "scaling": 1.5, "init_weights": False},
}


def gen(*key):
    """A torch generator per (what, site, method): independent, fixed streams (Python's hash() is salted per run)."""
    h = 0
    for ch in "|".join(map(str, key)):
        h = (h * 131 + ord(ch)) % 2147483647
    return torch.Generator().manual_seed(h)


def randn(shape, *key, std=1.0):
    return (torch.randn(shape, generator=gen(*key)) * std).to(torch.float32)


# ------------------------------------------------------------------ frozen tensors, by definition

def vera_projections(cfg, m, n):
    g = torch.Generator().manual_seed(cfg["projection_prng_key"])
    out = []
    for shape in ((cfg["r"], n), (m, cfg["r"])):
        bound = math.sqrt(3.0) * math.sqrt(2) / math.sqrt(shape[1])  # fan_in = size(1) of a 2-D tensor
        out.append(torch.empty(shape).uniform_(-bound, bound, generator=g))
    return {"A": out[0], "B": out[1]}


def randlora_projections(cfg, m, n):
    r = cfg["r"]
    mn, mx = min(m, n), max(m, n)
    g = torch.Generator().manual_seed(cfg["projection_prng_key"])

    def kaiming_bf16(shape):
        t = torch.empty(shape, dtype=torch.bfloat16)
        fan_in = shape[1] * math.prod(shape[2:])
        bound = math.sqrt(3.0) * math.sqrt(2.0 / (1 + 5)) / math.sqrt(fan_in)  # gain of leaky_relu with a=√5
        return t.uniform_(-bound, bound, generator=g)

    A = kaiming_bf16((r, 1, mn))
    B = torch.cat([kaiming_bf16((mx, 1, r)) for _ in range(math.ceil(mn / r))], dim=1)
    return {"A": (A / A.std()).float(), "B": (B / B.std()).float()}


def loraxs_factors(cfg, W):
    r = cfg["r"]
    U, S, Vh = torch.linalg.svd(W.double(), full_matrices=False)
    U, S, Vh = U[:, :r].clone(), S[:r], Vh[:r].clone()
    for k in range(r):
        lead = U[:, k] if W.shape[0] >= W.shape[1] else Vh[k]
        if lead[lead.abs().argmax()] < 0:
            U[:, k], Vh[k] = -U[:, k], -Vh[k]
    return {"U": U.float(), "SVt": (S[:, None] * Vh).float()}


def loldu_factors(cfg, W):
    r = cfg["r"]
    P, L, U = torch.linalg.lu(W.double())
    d = torch.diagonal(U)[:r]
    return {"PL": (P @ L[:, :r]).float(), "Ur": (U[:r] / d[:, None]).float(), "d": d.float()}


def nola_bases(cfg, site, given):
    m, n, r, k, l = site["out"], site["in"], cfg["r"], cfg["num_basis_A"], cfg["num_basis_B"]
    A0 = torch.tensor(given["A0"], dtype=torch.float32).reshape(r, n)
    Ab = torch.tensor(given["Abases"], dtype=torch.float32).reshape(k, r, n)
    Bb = torch.tensor(given["Bbases"], dtype=torch.float32).reshape(l, m, r)
    # NOLA's definition: A0 kaiming-uniform (±1/√in), bases U(−1, 1), every one its own draw.
    assert A0.abs().max() <= 1 / math.sqrt(n) and A0.abs().max() > 0.5 / math.sqrt(n), "A0 is not U(±1/√in)"
    for name, b in (("A", Ab), ("B", Bb)):
        assert b.abs().max() < 1 and b.abs().max() > 0.9, f"{name} bases are not U(−1, 1)"
        assert abs(b.mean().item()) < 0.15 and abs(b.var().item() - 1 / 3) < 0.1, f"{name} bases: mean {b.mean():.3f}, var {b.var():.3f} (U(−1, 1): 0, 1/3)"
        flat = b.reshape(b.shape[0], -1)
        assert all(not torch.equal(flat[i], flat[j]) for i in range(len(flat)) for j in range(i)), f"{name} bases repeat"
    return {"A0": A0, "Abases": Ab, "Bbases": Bb}


# ------------------------------------------------------------------ parameters and equations

def params_of(meth, cfg, site, W, frozen):
    m, n, r = site["out"], site["in"], cfg["r"]
    k = (meth, site["name"])
    if meth == "vera":
        return {"vera_lambda_b": randn((m,), "b", *k), "vera_lambda_d": randn((r,), "d", *k)}
    if meth == "nola":
        return {"nola_alpha": randn((cfg["num_basis_A"],), "alpha", *k), "nola_beta": randn((cfg["num_basis_B"],), "beta", *k)}
    if meth == "loraxs":
        return {"loraxs_R": randn((r, r), "R", *k, std=0.1)}
    if meth == "loldu":
        z = frozen["d"] * (1 + 0.5 * randn((r,), "z", *k))
        return {"loldu_z": z.float(), "loldu_sigma": torch.tensor([1 / r + 0.05], dtype=torch.float32)}
    if meth == "randlora":
        N = math.ceil(min(m, n) / r)
        return {"randlora_lambda": randn((r, N), "lambda", *k), "randlora_gamma": randn((N, min(m, n)), "gamma", *k, std=0.1)}
    if meth == "lorasb":
        return {"lorasb_A": randn((r, n), "A", *k, std=0.3), "lorasb_B": randn((m, r), "B", *k, std=0.3), "lorasb_R": randn((r, r), "R", *k, std=0.3)}
    raise ValueError(meth)


def delta(meth, cfg, site, P, F, x, W0):
    """ΔW(x) [T, out] of each method (METHODS.md; PEFT's code for VeRA and RandLoRA; the papers' code for the others)."""
    m, n, r = site["out"], site["in"], cfg["r"]
    if meth == "vera":  # PEFT vera/layer.py: lambda_b * B(lambda_d * A(x))
        return P["vera_lambda_b"] * ((P["vera_lambda_d"] * (x @ F["A"].T)) @ F["B"].T)
    if meth == "nola":  # A = A0 + Σ α_i A_i/√k, B = Σ β_j B_j/√l, s·B·A·x
        A = F["A0"] + torch.einsum("i,irn->rn", P["nola_alpha"], F["Abases"]) / math.sqrt(cfg["num_basis_A"])
        B = torch.einsum("j,jmr->mr", P["nola_beta"], F["Bbases"]) / math.sqrt(cfg["num_basis_B"])
        return (cfg["lora_alpha"] / r) * (x @ A.T @ B.T)
    if meth == "loraxs":  # s·U_r·R·(Σ_rV_rᵀ)
        return (cfg["lora_alpha"] / r) * (x @ (F["U"] @ P["loraxs_R"] @ F["SVt"]).T)
    if meth == "loldu":  # W = W0 − σ0·PL·diag(d)·Ur + σ·PL·diag(z)·Ur, σ0 = 1/r
        s0 = cfg["sigma"] if cfg["sigma"] is not None else 1.0 / r
        W = W0 - s0 * F["PL"] @ torch.diag(F["d"]) @ F["Ur"] + P["loldu_sigma"] * F["PL"] @ torch.diag(P["loldu_z"]) @ F["Ur"]
        return x @ (W - W0).T
    if meth == "randlora":  # PEFT randlora/layer.py get_scaled_bases and forward
        mn = min(m, n)
        N = math.ceil(mn / r)
        A = F["A"][:, :N, :mn]
        B = F["B"][:max(m, n), :N, :]
        upd_A = (P["randlora_lambda"][:, :, None] * A * P["randlora_gamma"][None]).flatten(end_dim=1)  # [r·N, min]
        upd_B = B.flatten(start_dim=1)  # [max, N·r]
        s = cfg["randlora_alpha"] / r
        if mn == n:
            return s * (x @ upd_A.T) @ upd_B.T
        return s * (x @ upd_B) @ upd_A
    if meth == "lorasb":  # s·B·R·A·x
        return cfg["scaling"] * (x @ P["lorasb_A"].T @ P["lorasb_R"].T @ P["lorasb_B"].T)
    raise ValueError(meth)


def flat(t):
    return t.detach().double().flatten().tolist()


def main():
    with open(os.path.join(FIX, "reparam_a_inputs.json")) as f:
        nola_given = json.load(f)
    out = {"tokens": T, "sites": SITES, "inputs": {}, "linalg": {}, "methods": {}}
    W0s = {}
    for site in SITES:
        name, m, n = site["name"], site["out"], site["in"]
        W = randn((m, n), "W", name, std=0.5)
        x, C = randn((T, n), "x", name), randn((T, m), "C", name)
        W0s[name] = (W, x, C)
        out["inputs"][name] = {"W": flat(W), "x": flat(x), "C": flat(C)}
        Wd = W.double()
        P, L, U = torch.linalg.lu(Wd)
        out["linalg"][name] = {"S": flat(torch.linalg.svdvals(Wd)), "P": flat(P), "L": flat(L), "U": flat(U)}
    for meth, cfg in CONFIGS.items():
        res = {"config": cfg, "sites": {}}
        for site in SITES:
            name, m, n = site["name"], site["out"], site["in"]
            W, x, C = W0s[name]
            F = {
                "vera": lambda: vera_projections(cfg, m, n),
                "nola": lambda: nola_bases(cfg, site, nola_given["sites"][name]),
                "loraxs": lambda: loraxs_factors(cfg, W),
                "loldu": lambda: loldu_factors(cfg, W),
                "randlora": lambda: randlora_projections(cfg, m, n),
                "lorasb": lambda: {},
            }[meth]()
            P = params_of(meth, cfg, site, W, F)
            Pg = {k: v.double().requires_grad_(True) for k, v in P.items()}
            Fd = {k: v.double() for k, v in F.items()}
            xd, Wd = x.double(), W.double()
            y = xd @ Wd.T + delta(meth, cfg, site, Pg, Fd, xd, Wd)
            grads = torch.autograd.grad((y * C.double()).sum(), list(Pg.values()))
            res["sites"][name] = {
                "params": {k: {"shape": list(v.shape), "data": flat(v)} for k, v in P.items()},
                "frozen": {k: {"shape": list(v.shape), "data": flat(v)} for k, v in F.items()},
                "y": flat(y),
                "grads": {k: flat(g) for k, g in zip(P, grads)},
            }
        out["methods"][meth] = res
    with open(os.path.join(FIX, "reparam_a.json"), "w") as f:
        json.dump(out, f)
        f.write("\n")
    print("wrote test/fixtures/reparam_a.json")


if __name__ == "__main__":
    main()
