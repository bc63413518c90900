"""Golden outputs and gradients for VeRA, NOLA, LoRA-XS, LoLDU, RandLoRA, LoRA-SB
(test/reparam_a.test.ts), in plain PyTorch from each method's equations.

Step 1 (lorakit's seeded inputs and regenerated frozen tensors):
    npx tsx tools/reference/reparam_a_inputs.ts
Step 2 (this script, torch 1.13):
    /usr/bin/python3 tools/reference/reparam_a.py
reads test/fixtures/reparam_a_inputs.json and writes test/fixtures/reparam_a.json:
for each method and site, y = adapted layer(x) and d(sum(y * C))/d(param).
LoLDU uses torch.linalg.lu of W0 (not lorakit's LU) and the paper's residual
form W_res + sigma*P*L_r*diag(z)*U_r; LoRA-XS's factors are lorakit's (the SVD
sign convention is free), checked separately against torch.linalg.svd.
"""
import json
import math
import torch

torch.set_default_dtype(torch.float64)
src = json.load(open("test/fixtures/reparam_a_inputs.json"))
T = src["tokens"]


def t(a, *shape):
    return torch.tensor(a, dtype=torch.float64).reshape(*shape)


def vera(cfg, site, P, F, x):
    m, n, r = site["out"], site["in"], cfg["r"]
    A, B = t(F["A"], r, n), t(F["B"], m, r)
    b, d = P["vera_lambda_b"], P["vera_lambda_d"]
    return b * ((d * (x @ A.T)) @ B.T)


def nola(cfg, site, P, F, x):
    m, n, r, k, l = site["out"], site["in"], cfg["r"], cfg["num_basis_A"], cfg["num_basis_B"]
    A0, Ab, Bb = t(F["A0"], r, n), t(F["Abases"], k, r, n), t(F["Bbases"], l, m, r)
    A = A0 + torch.einsum("i,irn->rn", P["nola_alpha"], Ab) / math.sqrt(k)
    B = torch.einsum("j,jmr->mr", P["nola_beta"], Bb) / math.sqrt(l)
    return (cfg["lora_alpha"] / r) * (x @ A.T @ B.T)


def loraxs(cfg, site, P, F, x):
    m, n, r = site["out"], site["in"], cfg["r"]
    U, SVt = t(F["U"], m, r), t(F["SVt"], r, n)
    return (cfg["lora_alpha"] / r) * (x @ (U @ P["loraxs_R"] @ SVt).T)


def loldu(cfg, site, P, F, x, W0):
    r = cfg["r"]
    Pm, L, U = torch.linalg.lu(W0)
    d = torch.diagonal(U)[:r]
    Ur = U[:r, :] / d[:, None]
    PL = Pm @ L[:, :r]
    s0 = cfg["sigma"] if cfg["sigma"] is not None else 1.0 / r
    W_res = W0 - s0 * PL @ torch.diag(d) @ Ur
    W = W_res + P["loldu_sigma"] * PL @ torch.diag(P["loldu_z"]) @ Ur
    return x @ W.T - x @ W0.T, {"P": Pm, "L": L, "U": U}


def randlora(cfg, site, P, F, x):
    m, n, r = site["out"], site["in"], cfg["r"]
    mn, mx = min(m, n), max(m, n)
    N = math.ceil(mn / r)
    A = t(F["A"], r, 1, mn)
    B = t(F["B"], mx, N, r)
    lam, gam = P["randlora_lambda"], P["randlora_gamma"]
    upd_A = (lam[:, :, None] * A * gam[None]).flatten(end_dim=1)  # [r*N, min] (PEFT UniqueBaseGrad)
    upd_B = B.flatten(start_dim=1)  # [max, N*r]
    s = cfg["randlora_alpha"] / r
    if mn == n:
        return s * torch.nn.functional.linear(torch.nn.functional.linear(x, upd_A), upd_B)
    return s * torch.nn.functional.linear(torch.nn.functional.linear(x, upd_B.T), upd_A.T)


def lorasb(cfg, site, P, F, x):
    return cfg["scaling"] * (x @ P["lorasb_A"].T @ P["lorasb_R"].T @ P["lorasb_B"].T)


FNS = {"lorasb": lorasb, "vera": vera, "nola": nola, "loraxs": loraxs, "loldu": loldu, "randlora": randlora}
out = {"methods": {}, "linalg": {}}
for site in src["sites"]:
    name, m, n = site["name"], site["out"], site["in"]
    W0 = t(src["inputs"][name]["W"], m, n)
    S = torch.linalg.svdvals(W0)
    Pm, L, U = torch.linalg.lu(W0)
    out["linalg"][name] = {"S": S.tolist(), "P": Pm.flatten().tolist(), "L": L.flatten().tolist(), "U": U.flatten().tolist()}

for meth, spec in src["methods"].items():
    cfg = spec["config"]
    res = {}
    for site in src["sites"]:
        name, m, n = site["name"], site["out"], site["in"]
        inp = src["inputs"][name]
        W0 = t(inp["W"], m, n)
        x, C = t(inp["x"], T, n), t(inp["C"], T, m)
        ps = spec["sites"][name]
        P = {k: t(v["data"], *v["shape"]).requires_grad_(True) for k, v in ps["params"].items()}
        F = ps["frozen"]
        delta = FNS[meth](cfg, site, P, F, x, W0) if meth == "loldu" else FNS[meth](cfg, site, P, F, x)
        if isinstance(delta, tuple):
            delta = delta[0]
        y = x @ W0.T + delta
        loss = (y * C).sum()
        grads = torch.autograd.grad(loss, list(P.values()))
        res[name] = {"y": y.detach().flatten().tolist(), "grads": {k: g.flatten().tolist() for k, g in zip(P.keys(), grads)}}
    out["methods"][meth] = res

json.dump(out, open("test/fixtures/reparam_a.json", "w"))
print("wrote test/fixtures/reparam_a.json")
