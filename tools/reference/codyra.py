#!/usr/bin/env python3
"""PyTorch transcription of CoDyRA's official training step
(Artificer-AI-Lab/CoDyRA @ c1691e4, models/codyra.py train_model and
loralib/codyra.py codyra_Linear):

* the κ schedule: the loop of train_model run for T iterations, recording the
  threshold in force after each optimizer step and whether it is applied
  (iteration > dense_iters), for T = 500 (the runner's iterations) and T = 37;
* two full iterations on one module: forward ((x @ A.T) * gate) @ B.T + x @ W.T
  (no scale), loss sum(y * R), torch.optim.AdamW(lr, weight_decay=0,
  betas=(0.9, 0.9999)) over A, B and gate, then the three masked threshold ops
  on the gate with the κ of that iteration;
* increment_task: keep |gate| > 0, W += (B * gate) @ A, re-initialized shapes.

float64 throughout; inputs rounded to float32 values (seed 0).
Writes test/fixtures/codyra.json. Run: /usr/bin/python3 tools/reference/codyra.py
"""
import json
import os

import numpy as np
import torch

torch.manual_seed(0)
torch.set_default_dtype(torch.float64)


def f32(t):
    return t.float().double()


def lst(t):
    return [float(v) for v in t.reshape(-1).tolist()]


def kappa_trace(total_iterations, max_kappa, lambda_num, dense_ratio):
    lambdas = np.linspace(0, max_kappa, lambda_num)
    threshold_id = 0
    threshold = lambdas[threshold_id]
    dense_iters = dense_ratio * total_iterations
    lambda_step_iters = int((total_iterations - dense_iters) // lambda_num)
    out = []
    for iteration in range(total_iterations):
        if lambda_step_iters > 0:
            if iteration >= dense_iters and iteration % lambda_step_iters == 0:
                threshold_id += 1
                threshold = lambdas[min(len(lambdas) - 1, threshold_id)]
        out.append({"kappa": float(threshold), "prune": bool(iteration > dense_iters)})
    return out


schedules = [
    {"T": 500, "kappa_max": 5e-3, "lambda_num": 50, "dense_ratio": 0.5, "trace": kappa_trace(500, 5e-3, 50, 0.5)},
    {"T": 37, "kappa_max": 7e-4, "lambda_num": 5, "dense_ratio": 0.3, "trace": kappa_trace(37, 7e-4, 5, 0.3)},
]

# ---- two iterations of one module ----
N, n, m, r = 6, 5, 4, 6
W = f32(torch.randn(m, n))
x = f32(torch.randn(N, n))
R = f32(torch.randn(N, m))
A = f32(torch.randn(r, n) * 0.4).requires_grad_()
B = f32(torch.randn(m, r) * 0.4).requires_grad_()
gate = f32(torch.tensor([[0.9, -0.02, 0.0031, -1.1, 0.4, 0.0105]])).requires_grad_()
init = {"A": lst(A.detach()), "B": lst(B.detach()), "gate": lst(gate.detach())}
lr = 5e-3
optimizer = torch.optim.AdamW([A, B, gate], lr=lr, weight_decay=0.0, betas=(0.9, 0.9999))
kappas = [0.0, 1e-2]  # the threshold in force at each of the two iterations
iters = []
for it, threshold in enumerate(kappas):
    y = x @ W.T + ((x @ A.T).mul(gate) @ B.T)
    loss = (y * R).sum()
    optimizer.zero_grad()
    loss.backward()
    grads = {"lora_A.weight": lst(A.grad), "lora_B.weight": lst(B.grad), "lora_gate": lst(gate.grad)}
    optimizer.step()
    prune = it > 0  # as if the second iteration were past the dense phase
    if prune:
        p = gate
        p.data[p.data > threshold] -= threshold
        p.data[p.data < -threshold] += threshold
        p.data[abs(p.data) < threshold] = 0.0
    iters.append({"y": lst(y.detach()), "loss": float(loss), "grads": grads, "kappa": threshold, "prune": prune,
                  "after": {"lora_A.weight": lst(A.detach()), "lora_B.weight": lst(B.detach()), "lora_gate": lst(gate.detach())}})

# ---- increment_task ----
g2 = gate.detach().clone()
g2[0, 1] = 0.0
active = (g2.abs() > 0).squeeze()
A_k, B_k, g_k = A.detach()[active, :], B.detach()[:, active], g2[:, active]
W_merged = W + (B_k * g_k) @ A_k
increment = {"gate": lst(g2), "W_merged": lst(W_merged), "kept_rank": int(active.sum()), "init_rank": r}

out = {"schedules": schedules, "step": {"N": N, "in": n, "out": m, "r": r, "lr": lr, "W": lst(W), "x": lst(x), "R": lst(R), "init": init, "iters": iters},
       "increment": increment}
path = os.path.join(os.path.dirname(__file__), "..", "..", "test", "fixtures", "codyra.json")
with open(path, "w") as f:
    json.dump(out, f)
print("wrote", os.path.normpath(path))
