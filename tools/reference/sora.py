#!/usr/bin/env python3
"""PyTorch transcription of SoRA's official step (TsinghuaC3I/SoRA @ c275ac2):

* forward of LowRankLinear (src/lora.py): ((x @ A.T) * gate) @ B.T * scaling,
  added to the frozen x @ W.T, for two modules;
* the loss term of SparseTrainerMixin.compute_loss (src/trainer.py):
  sparse_lambda * sum over all gates |g| / (number of gate entries of all modules);
* SparseAdamW.step (src/sparse_optimizer.py), transcribed below line by line,
  with the three masked threshold ops, and the paper's soft threshold for the
  'soft' option;
* the threshold alone on gates at ±0.5ξ, ±ξ, ±1.5ξ, ±2ξ, ±3ξ;
* _build_lambda_list's ξ sequences (numpy, as the official code).

Inputs are random (seed 0) and rounded to float32 values; the arithmetic is
float64. Writes test/fixtures/sora.json.
Run: /usr/bin/python3 tools/reference/sora.py
"""
import json
import math
import os

import numpy as np
import torch

torch.manual_seed(0)
torch.set_default_dtype(torch.float64)


def f32(t):
    return t.float().double()


def lst(t):
    return [float(v) for v in t.reshape(-1).tolist()]


# ---- forward, gradients and the L1 term over two modules ----
N, r, alpha, lam = 5, 4, 16.0, 10.0
mods = [("m0", 6, 7), ("m1", 9, 5)]  # name, out, in
fwd = {"N": N, "r": r, "lora_alpha": alpha, "sparse_lambda": lam, "modules": []}
params = []
total = 0.0
for name, m, n in mods:
    W = f32(torch.randn(m, n))
    x = f32(torch.randn(N, n))
    A = f32(torch.randn(r, n) * 0.3).requires_grad_()
    B = f32(torch.randn(m, r) * 0.3).requires_grad_()
    g = f32(torch.randn(1, r)).requires_grad_()
    R = f32(torch.randn(N, m))
    scaling = alpha / r
    y = x @ W.T + ((x @ A.T).mul(g) @ B.T) * scaling
    total = total + (y * R).sum()
    params.append((name, m, n, W, x, A, B, g, R, y))
sparse_loss = 0.0
p_total = 0
for (*_, A, B, g, R, y) in params:
    sparse_loss += torch.sum(torch.abs(g))
    p_total += torch.numel(g.data)
term = lam * sparse_loss / p_total
loss = total + term
loss.backward()
for (name, m, n, W, x, A, B, g, R, y) in params:
    fwd["modules"].append({
        "name": name, "out": m, "in": n, "W": lst(W), "x": lst(x), "A": lst(A.detach()), "B": lst(B.detach()),
        "gate": lst(g.detach()), "R": lst(R), "y": lst(y.detach()),
        "grads": {"lora_A.weight": lst(A.grad), "lora_B.weight": lst(B.grad), "lora_gate": lst(g.grad)},
    })
fwd["loss"] = float(loss)
fwd["term"] = float(term)


# ---- SparseAdamW.step, transcribed ----
class SparseAdamWRef:
    def __init__(self, params, lr, sparse_lambda, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.0, correct_bias=True, soft=False):
        self.params = params
        self.group = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, correct_bias=correct_bias)
        self.sparse_lambda = sparse_lambda
        self.state = {}
        self.soft = soft

    def step(self):
        group = self.group
        for p in self.params:
            grad = p.grad.data
            state = self.state.setdefault(id(p), {})
            if len(state) == 0:
                state["step"] = 0
                state["exp_avg"] = torch.zeros_like(p.data)
                state["exp_avg_sq"] = torch.zeros_like(p.data)
            exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
            beta1, beta2 = group["betas"]
            state["step"] += 1
            exp_avg.mul_(beta1).add_(grad, alpha=(1.0 - beta1))
            exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1.0 - beta2)
            denom = exp_avg_sq.sqrt().add_(group["eps"])
            step_size = group["lr"]
            if group["correct_bias"]:
                bias_correction1 = 1.0 - beta1 ** state["step"]
                bias_correction2 = 1.0 - beta2 ** state["step"]
                step_size = step_size * math.sqrt(bias_correction2) / bias_correction1
            to_add = torch.div(exp_avg, denom) * (-step_size)
            if group["weight_decay"] > 0.0:
                to_add = to_add + (-group["lr"] * group["weight_decay"]) * p.data
            p.data.add_(to_add)
            if self.sparse_lambda > 0:
                if self.soft:  # the paper's proximal operator
                    p.data = torch.sign(p.data) * torch.clamp(p.data.abs() - self.sparse_lambda, min=0)
                else:
                    p.data[p.data > self.sparse_lambda] -= self.sparse_lambda
                    p.data[p.data < -self.sparse_lambda] += self.sparse_lambda
                    p.data[abs(p.data) < self.sparse_lambda] = 0.0


xi = 3e-4
steps = []
for kind in ["official", "soft"]:
    p0 = f32(torch.cat([torch.randn(6) * 2e-3, torch.tensor([0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 3.5, -3.5]) * xi]))
    m0 = f32(torch.rand(p0.numel()) * 1e-4)
    v0 = f32(torch.rand(p0.numel()) * 1e-7)
    grads = [f32(torch.randn(p0.numel()) * 1e-3) for _ in range(3)]
    p = p0.clone().requires_grad_()
    opt = SparseAdamWRef([p], lr=8e-4, sparse_lambda=xi, soft=(kind == "soft"))
    opt.state[id(p)] = {"step": 4, "exp_avg": m0.clone(), "exp_avg_sq": v0.clone()}
    after = []
    for gr in grads:
        p.grad = gr.clone()
        opt.step()
        st = opt.state[id(p)]
        after.append({"p": lst(p.data), "m": lst(st["exp_avg"]), "v": lst(st["exp_avg_sq"]), "t": st["step"]})
    steps.append({"threshold": kind, "lr": 8e-4, "xi": xi, "t0": 4, "p0": lst(p0), "m0": lst(m0), "v0": lst(v0),
                  "grads": [lst(g) for g in grads], "after": after})

# ---- the threshold alone at the edge values ----
edges = []
for xi_e in [3e-4, 0.1]:
    v = torch.tensor([0.5, 1.0, 1.5, 2.0, 3.0]) * xi_e
    p = torch.cat([v, -v, torch.tensor([0.0])])
    off = p.clone()
    off[off > xi_e] -= xi_e
    off[off < -xi_e] += xi_e
    off[abs(off) < xi_e] = 0.0
    soft = torch.sign(p) * torch.clamp(p.abs() - xi_e, min=0)
    edges.append({"xi": xi_e, "p": lst(p), "official": lst(off), "soft": lst(soft)})

# ---- xi schedules (SparseAdamW._build_lambda_list) ----
def build(shape, sparse_lambda, max_lambda, lambda_num):
    if shape == "linear":
        return np.linspace(sparse_lambda, max_lambda, lambda_num)
    if shape == "log_linear":
        return np.log(np.linspace(np.exp(sparse_lambda), np.exp(max_lambda), lambda_num))
    if shape == "exp_linear":
        return np.exp(np.linspace(np.log(sparse_lambda), np.log(max_lambda), lambda_num))
    raise NotImplementedError


schedules = []
for shape, a, b, k in [("linear", 0.0, 7e-4, 7), ("log_linear", 0.0, 7e-4, 7), ("exp_linear", 1e-5, 7e-4, 7), ("linear", 1e-4, 3e-3, 10)]:
    schedules.append({"shape": shape, "xi0": a, "xi_max": b, "num": k, "values": [float(x) for x in build(shape, a, b, k)]})

out = {"forward": fwd, "sparse_adamw": steps, "threshold_edges": edges, "schedules": schedules}
path = os.path.join(os.path.dirname(__file__), "..", "..", "test", "fixtures", "sora.json")
with open(path, "w") as f:
    json.dump(out, f)
print("wrote", os.path.normpath(path))
