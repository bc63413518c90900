#!/usr/bin/env python3
"""Plain-PyTorch reference for lorakit's reparameterization methods (batch B):
Hydra, SLTrain, FourierFT, SMoRA, LaMDA, LoCA. One linear layer (in=12, out=10, with bias), a fixed
input x [4, 12], a fixed readout R; for each method the forward output
y = W0·x + b + adapter(x) and the gradients of L = Σ y ⊙ R with respect to the
method's trainable parameters.

Writes test/fixtures/reparam_b.json. Run: /usr/bin/python3 tools/reference/reparam_b.py

Where each equation comes from (not from lorakit's source):
  Hydra     METHODS.md: h = W0x + B_p·A_p·x + B_s·A_s·(W0x)  (W0x without the bias)
  SLTrain   METHODS.md: W = s·B·A + S, S on a fixed random support of density δ, s = α/r
  FourierFT PEFT 0.20 tuners/fourierft/layer.py get_delta_weight and set_indices:
            ΔW = scaling·Re(ifft2(dense spectrum)), locations torch.randperm(out·in,
            generator=Generator().manual_seed(random_loc_seed))[:n], (f // in, f % in)
  SMoRA     METHODS.md: ΔWx = s·Σ_{i∈TopK} g_i(x)·b_i·a_iᵀx, a selection-only bias β
  LaMDA     METHODS.md: y = W0x + s·B·S·A·x, A = V_rᵀ of W0 (torch.linalg.svd here)
  LoCA      METHODS.md: ΔW = α·C_mᵀ·S·C_n (2-D inverse DCT; orthonormal DCT-II matrices
            built here), and the location step's table Ĝ = C_m·(∂L/∂ΔW)·C_nᵀ
What METHODS.md leaves open is lorakit's documented choice, named where used: SMoRA's gate
normalization (marked *unverified* there: g = k·softmax over the selected ranks, s = α/k),
LaMDA's singular-vector signs (the largest-|.| entry of each row of A positive), and
SLTrain's seeded support, which is lorakit's own stream (the official code draws the
pattern with torch's RNG): it is rebuilt below from that stream's specification, so the
test checks lorakit's support against a second implementation, not against an outside one.
"""
import json
import math
import os

import torch

torch.manual_seed(0)
torch.set_default_dtype(torch.float64)
IN, OUT, N = 12, 10, 4
M32 = 0xFFFFFFFF


# --- SLTrain's seeded support: lorakit's own stream (FNV-1a of "sltrain:<module>" mixed with the
# seed, mulberry32, a partial Fisher-Yates shuffle, sorted), a second implementation of its spec ---
def imul(a, b):
    return (a * b) & M32


def fnv1a(s):
    h = 0x811C9DC5
    for ch in s:
        h ^= ord(ch) & 0xFF
        h = imul(h, 0x01000193)
    return h


def mulberry32(seed):
    state = [seed & M32]

    def nxt():
        a = (state[0] + 0x6D2B79F5) & M32
        state[0] = a
        t = imul(a ^ (a >> 15), 1 | a)
        t = ((t + imul(t ^ (t >> 7), 61 | t)) & M32) ^ t
        return ((t ^ (t >> 14)) & M32) / 4294967296.0

    return nxt


def random_support(total, count, seed):
    nxt = mulberry32(seed)
    perm = list(range(total))
    for i in range(count):
        j = i + math.floor(nxt() * (total - i))
        perm[i], perm[j] = perm[j], perm[i]
    return sorted(perm[:count])


def mix_seed(seed, label):
    return (fnv1a(label) ^ imul(seed & M32, 0x9E3779B1)) & M32


# --- shared layer --------------------------------------------------------------
W = torch.randn(OUT, IN) * 0.3
b = torch.randn(OUT) * 0.1
x = torch.randn(N, IN)
R = torch.randn(N, OUT)
SITE = "layer"


def t(v):
    return v.detach().reshape(-1).tolist()


def run(name, config, params, fwd, extra=None):
    ps = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    y = x @ W.T + b + fwd(ps)
    loss = (y * R).sum()
    loss.backward()
    case = {
        "config": config,
        "params": {k: {"shape": list(v.shape), "data": t(v)} for k, v in params.items()},
        "y": t(y),
        "grads": {k: t(v.grad) for k, v in ps.items()},
    }
    if extra:
        case.update(extra)
    cases[name] = case


cases = {}

# Hydra: h = W0x + Bp·Ap·x + Bs·As·(W0x)   (W0x without the bias)
rp, rs = 3, 2
run(
    "hydra",
    {"r_par": rp, "r_seq": rs},
    {
        "hydra_A_par.weight": torch.randn(rp, IN) * 0.3,
        "hydra_B_par.weight": torch.randn(OUT, rp) * 0.3,
        "hydra_A_seq.weight": torch.randn(rs, OUT) * 0.3,
        "hydra_B_seq.weight": torch.randn(OUT, rs) * 0.3,
    },
    lambda p: (x @ p["hydra_A_par.weight"].T) @ p["hydra_B_par.weight"].T
    + ((x @ W.T) @ p["hydra_A_seq.weight"].T) @ p["hydra_B_seq.weight"].T,
)

# SLTrain: ΔW = s·B·A + S, S on a seeded random support (density δ)
r, alpha, density, sseed = 3, 6.0, 0.2, 42
nnz = max(1, round(density * OUT * IN))
support = random_support(OUT * IN, nnz, mix_seed(sseed, "sltrain:" + SITE))


def sl_fwd(p):
    S = torch.zeros(OUT * IN, dtype=p["sltrain_S.values"].dtype)
    S = S.index_put((torch.tensor(support),), p["sltrain_S.values"])
    dW = (alpha / r) * p["sltrain_B.weight"] @ p["sltrain_A.weight"] + S.reshape(OUT, IN)
    return x @ dW.T


run(
    "sltrain",
    {"r": r, "lora_alpha": alpha, "density": density, "support_seed": sseed},
    {
        "sltrain_A.weight": torch.randn(r, IN) * 0.3,
        "sltrain_B.weight": torch.randn(OUT, r) * 0.3,
        "sltrain_S.values": torch.randn(nnz) * 0.3,
    },
    sl_fwd,
    {"support": support},
)

# FourierFT (PEFT get_delta_weight): ΔW = scaling·Re(ifft2(dense spectrum)), norm 'backward';
# locations as PEFT's set_indices (torch.randperm with its own seeded generator, in that order)
K, scaling, lseed = 20, 150.0, 777
flat = torch.randperm(OUT * IN, generator=torch.Generator().manual_seed(lseed))[:K].tolist()
rows = torch.tensor([f // IN for f in flat])
cols = torch.tensor([f % IN for f in flat])


def ff_fwd(p):
    dense = torch.zeros(OUT, IN, dtype=p["fourierft_spectrum"].dtype)
    dense = dense.index_put((rows, cols), p["fourierft_spectrum"])
    dW = torch.fft.ifft2(dense, norm="backward").real * scaling
    return x @ dW.T


run(
    "fourierft",
    {"n_frequency": K, "scaling": scaling, "random_loc_seed": lseed},
    {"fourierft_spectrum": torch.randn(K)},
    ff_fwd,
    {"support": flat},
)

# SMoRA (METHODS.md): rank-wise top-k routing; selection on router logits + β (β only selects).
# lorakit's choice where METHODS.md is unverified: gates = k·softmax over the selected ranks, s = α/k.
R_, K_, alpha_s = 6, 2, 4.0
beta = torch.randn(R_) * 0.5


def smora_fwd(p):
    logits = x @ p["smora_router.weight"].T
    sel = logits.detach() + beta
    idx = sel.topk(K_, dim=-1).indices
    mask = torch.zeros_like(logits, dtype=torch.bool).scatter(1, idx, True)
    gates = torch.softmax(logits.masked_fill(~mask, -1e9), dim=-1) * K_
    h = (x @ p["smora_A.weight"].T) * gates
    return (alpha_s / K_) * h @ p["smora_B.weight"].T


run(
    "smora",
    {"num_ranks": R_, "top_k": K_, "lora_alpha": alpha_s},
    {
        "smora_A.weight": torch.randn(R_, IN) * 0.3,
        "smora_B.weight": torch.randn(OUT, R_) * 0.3,
        "smora_router.weight": torch.randn(R_, IN) * 0.5,
    },
    smora_fwd,
    {"feeds": {"smora_bias." + SITE: {"shape": [R_], "data": t(beta)}}},
)

# LaMDA (METHODS.md): y = W0x + s·B·S·A·x, A = V_rᵀ of W0; lorakit's sign choice: the largest-|.| entry of each row positive
r_l, alpha_l = 3, 6.0
_, _, Vh = torch.linalg.svd(W, full_matrices=False)
A_l = Vh[:r_l].clone()
for k in range(r_l):
    if A_l[k, A_l[k].abs().argmax()] < 0:
        A_l[k] = -A_l[k]
run(
    "lamda",
    {"r": r_l, "lora_alpha": alpha_l},
    {"lamda_S.weight": torch.randn(r_l, r_l) * 0.3, "lamda_B.weight": torch.randn(OUT, r_l) * 0.3},
    lambda p: (alpha_l / r_l) * ((x @ A_l.T) @ p["lamda_S.weight"].T) @ p["lamda_B.weight"].T,
    {"A": t(A_l)},
)

# LoCA: ΔW = α·Σ_k c_k·d_m(u_k)·d_n(v_k)ᵀ (orthonormal DCT-II bases); plus the
# finite-difference table Ĝ = C_m·(∂L/∂ΔW)·C_nᵀ at (u,v) and its 4 neighbours (clamped).
def dct_matrix(L):
    C = torch.zeros(L, L)
    for f in range(L):
        w = math.sqrt(1.0 / L) if f == 0 else math.sqrt(2.0 / L)
        for i in range(L):
            C[f, i] = w * math.cos(math.pi * (2 * i + 1) * f / (2 * L))
    return C


Cm, Cn = dct_matrix(OUT), dct_matrix(IN)
u_l = [0, 3, 9, 5, 2, 7]
v_l = [0, 11, 4, 6, 1, 8]
K_l, alpha_c = len(u_l), 2.0
c_l = torch.randn(K_l)
fd_store = {}


def loca_fwd(p):
    S = torch.zeros(OUT, IN, dtype=p["loca_spectrum"].dtype)
    S = S.index_put((torch.tensor(u_l), torch.tensor(v_l)), p["loca_spectrum"])
    dW = alpha_c * Cm.T @ S @ Cn
    dW.retain_grad()
    fd_store["dW"] = dW
    return x @ dW.T


run("loca", {"n_frequency": K_l, "scaling": alpha_c}, {"loca_spectrum": c_l}, loca_fwd)
G = fd_store["dW"].grad
Gh = Cm @ G @ Cn.T
fd = [[Gh[u, v].item() for u, v in zip(u_l, v_l)],
      [Gh[min(u + 1, OUT - 1), v].item() for u, v in zip(u_l, v_l)],
      [Gh[max(u - 1, 0), v].item() for u, v in zip(u_l, v_l)],
      [Gh[u, min(v + 1, IN - 1)].item() for u, v in zip(u_l, v_l)],
      [Gh[u, max(v - 1, 0)].item() for u, v in zip(u_l, v_l)]]
cases["loca"]["params"]["loca_locations"] = {"shape": [2, K_l], "data": [float(a) for a in u_l + v_l]}
cases["loca"]["fd"] = [a for row in fd for a in row]

out = {
    "in": IN, "out": OUT, "n": N, "site": SITE,
    "W": t(W), "b": t(b), "x": t(x), "R": t(R),
    "cases": cases,
}
path = os.path.join(os.path.dirname(__file__), "..", "..", "test", "fixtures", "reparam_b.json")
with open(path, "w") as f:
    json.dump(out, f)
print("wrote", os.path.normpath(path), "methods:", ", ".join(cases))
