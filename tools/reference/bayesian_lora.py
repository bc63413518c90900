#!/usr/bin/env python3
"""PyTorch transcription of the Bayesian-LoRA-style equations lorakit chose
(paper-derived and unverified: no official code; the formulas are the ones
written in src/adapters/bayesian_lora/config.ts and in
shared/docs/methods/rank_optim_workflows.md), computed independently:

* the Bayesian-Bits quantizer for fixed gates [z4, z8, z16, z32] and the
  matrix's own range;
* hard-concrete samples for injected u, the deterministic gate, and
  P(z != 0) = sigmoid(log_alpha - beta*log(-gamma/zeta)) against the fraction of
  non-zero samples on a fine grid of u;
* the BOP-weighted penalty for given gate parameters and module sizes;
* forward and gradients of one module, h = x W^T + s * ((x A_q^T) * (lambda * z)) B_q^T
  with sampled gates (u given), straight-through rounding, loss sum(h * R).
float64; inputs rounded to float32 values (seed 0).
Writes test/fixtures/bayesian_lora.json. Run: /usr/bin/python3 tools/reference/bayesian_lora.py
"""
import json
import math
import os

import torch

torch.manual_seed(0)
torch.set_default_dtype(torch.float64)
BETA, GAMMA, ZETA = 2 / 3, -0.1, 1.1


def f32(t):
    return t.float().double()


def lst(t):
    return [float(v) for v in t.reshape(-1).tolist()]


def hard_concrete(log_alpha, u):
    s = torch.sigmoid((torch.log(u) - torch.log(1 - u) + log_alpha) / BETA)
    return torch.clamp(s * (ZETA - GAMMA) + GAMMA, 0, 1)


def ste_round(v):
    return v + (torch.round(v) - v).detach()


def quantize(x, z):
    lo, hi = x.min().detach(), x.max().detach()
    s = (hi - lo) / (2 ** 2 - 1)
    x2 = s * ste_round(x / s)
    xb, eps = x2, []
    for b in [2, 4, 8, 16]:
        s = s / (2 ** b + 1)
        e = s * ste_round((x - xb) / s)
        eps.append(e)
        xb = xb + e
    return x2 + z[0] * (eps[0] + z[1] * (eps[1] + z[2] * (eps[2] + z[3] * eps[3])))


# quantizer
qx = f32(torch.randn(5, 7) * 0.3)
quant = []
for z in [[0, 0, 0, 0], [1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1], [1, 0, 1, 1], [0.5, 1, 0.25, 1]]:
    quant.append({"gates": z, "xq": lst(quantize(qx, torch.tensor(z, dtype=torch.float64)))})

# hard concrete
la = torch.tensor([-4.0, -1.0, 0.0, 0.7, 3.0])
us = torch.tensor([0.01, 0.2, 0.5, 0.8, 0.999])
samples = [[float(hard_concrete(a, u)) for u in us] for a in la]
grid = (torch.arange(200000) + 0.5) / 200000
p_on = [float(torch.sigmoid(a - BETA * math.log(-GAMMA / ZETA))) for a in la]
frac = [float((hard_concrete(a, grid) > 0).double().mean()) for a in la]
means = [float(torch.clamp(torch.sigmoid(a) * (ZETA - GAMMA) + GAMMA, 0, 1)) for a in la]
hc = {"log_alpha": lst(la), "u": lst(us), "samples": samples, "p_on": p_on, "fraction_nonzero": frac, "mean": means}

# penalty
mods = [(6, 5, 3), (4, 9, 3)]  # out, in, r
lam = 0.05
pen_in = []
num, den = 0.0, 0.0
for m, n, r in mods:
    lr_ = f32(torch.randn(r) * 2)
    lb = f32(torch.randn(8) * 2)
    q = torch.sigmoid(lb - BETA * math.log(-GAMMA / ZETA))

    def ebits(qq):
        return 2 + 2 * qq[0] + 4 * qq[0] * qq[1] + 8 * qq[0] * qq[1] * qq[2] + 16 * qq[0] * qq[1] * qq[2] * qq[3]
    pr = torch.sigmoid(lr_ - BETA * math.log(-GAMMA / ZETA))
    num += float((pr * (n * ebits(q[:4]) + m * ebits(q[4:]))).sum())
    den += r * (n + m) * 32
    pen_in.append({"out": m, "in": n, "r": r, "rank_log_alpha": lst(lr_), "bits_log_alpha": lst(lb)})
penalty = {"bop_lambda": lam, "modules": pen_in, "value": lam * num / den}

# forward and gradients of one module with sampled gates
N, n, m, r, alpha = 4, 6, 5, 3, 16.0
W = f32(torch.randn(m, n))
x = f32(torch.randn(N, n))
R = f32(torch.randn(N, m))
A = f32(torch.randn(r, n) * 0.3).requires_grad_()
B = f32(torch.randn(m, r) * 0.3).requires_grad_()
E = f32(torch.randn(r)).requires_grad_()
rank_la = torch.tensor([2.0, -0.5, 0.3]).requires_grad_()
bits_la = torch.tensor([1.0, 0.5, -12.0, -12.0, 2.0, -0.2, -12.0, -12.0]).requires_grad_()
u = torch.tensor([0.3, 0.6, 0.45, 0.2, 0.7, 0.5, 0.5, 0.35, 0.55, 0.5, 0.5])
zR = hard_concrete(rank_la, u[:r])
zQ = hard_concrete(bits_la, u[r:])
Aq = quantize(A, zQ[:4])
Bq = quantize(B, zQ[4:])
y = x @ W.T + ((x @ Aq.T) * (E * zR)) @ Bq.T * (alpha / r)
(y * R).sum().backward()
fwd = {"N": N, "in": n, "out": m, "r": r, "lora_alpha": alpha, "W": lst(W), "x": lst(x), "R": lst(R), "A": lst(A.detach()), "B": lst(B.detach()),
       "E": lst(E.detach()), "rank_log_alpha": lst(rank_la.detach()), "bits_log_alpha": lst(bits_la.detach()), "u": lst(u), "y": lst(y.detach()),
       "zR": lst(zR.detach()), "zQ": lst(zQ.detach()),
       "grads": {"lora_A": lst(A.grad), "lora_B": lst(B.grad), "lora_E": lst(E.grad), "rank_log_alpha": lst(rank_la.grad), "bits_log_alpha": lst(bits_la.grad)}}

out = {"quant": {"x": lst(qx), "shape": [5, 7], "cases": quant}, "hard_concrete": hc, "penalty": penalty, "forward": fwd}
path = os.path.join(os.path.dirname(__file__), "..", "..", "test", "fixtures", "bayesian_lora.json")
with open(path, "w") as f:
    json.dump(out, f)
print("wrote", os.path.normpath(path), "zR", lst(zR.detach()), "zQ", lst(zQ.detach()))
