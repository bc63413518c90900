#!/usr/bin/env python3
"""PyTorch transcription of lorakit's DiffoRA-style rules (no official code
exists: these are the equations lorakit chose, written in
src/adapters/diffora/config.ts), computed independently with torch:

* gated forward h = x @ W.T + sigmoid(a) * (x @ A.T @ B.T) * (alpha / r) for
  three modules, loss sum(h * R), gradients of A, B and a;
* one alternating pair on injected batches: batch 0 updates A and B with
  torch.optim.AdamW(lr 1e-2, weight_decay 0.01), batch 1 updates only the
  gates with torch.optim.Adam(lr 3e-3, betas (0.5, 0.999), weight_decay 1e-3);
  then the discretization with rho = 1/3: keep the largest sigmoid(a), fold it
  into B, zero the others' A and B;
* top-rho selection on fixed gate vectors, ties to the earlier module.
float64; inputs rounded to float32 values (seed 0).
Writes test/fixtures/diffora.json. Run: /usr/bin/python3 tools/reference/diffora.py
"""
import json
import os

import torch

torch.manual_seed(0)
torch.set_default_dtype(torch.float64)


def f32(t):
    return t.float().double()


def lst(t):
    return [float(v) for v in t.reshape(-1).tolist()]


r, alpha, N = 3, 6.0, 4
MODS = [("m0", 5, 4), ("m1", 3, 6), ("m2", 4, 4)]
mods = []
for name, m, n in MODS:
    mods.append({
        "name": name, "out": m, "in": n, "W": f32(torch.randn(m, n)),
        "A": f32(torch.randn(r, n) * 0.5).requires_grad_(), "B": f32(torch.randn(m, r) * 0.5).requires_grad_(),
        "a": f32(torch.randn(1) * 0.3).requires_grad_(),
    })
init = [{"name": d["name"], "out": d["out"], "in": d["in"], "W": lst(d["W"]), "A": lst(d["A"].detach()), "B": lst(d["B"].detach()), "a": lst(d["a"].detach())} for d in mods]
batches = [[{"x": f32(torch.randn(N, d["in"])), "R": f32(torch.randn(N, d["out"]))} for d in mods] for _ in range(2)]


def forward(batch):
    loss, ys = 0.0, []
    for d, b in zip(mods, batch):
        y = b["x"] @ d["W"].T + torch.sigmoid(d["a"]) * (b["x"] @ d["A"].T @ d["B"].T) * (alpha / r)
        ys.append(y)
        loss = loss + (y * b["R"]).sum()
    return loss, ys


weights_opt = torch.optim.AdamW([p for d in mods for p in (d["A"], d["B"])], lr=1e-2, weight_decay=0.01)
arch_opt = torch.optim.Adam([d["a"] for d in mods], lr=3e-3, betas=(0.5, 0.999), weight_decay=1e-3)
steps = []
for i, batch in enumerate(batches):
    loss, ys = forward(batch)
    weights_opt.zero_grad()
    arch_opt.zero_grad()
    loss.backward()
    rec = {"loss": float(loss), "y": [lst(y.detach()) for y in ys],
           "grads": [{"A": lst(d["A"].grad), "B": lst(d["B"].grad), "a": lst(d["a"].grad)} for d in mods]}
    (weights_opt if i == 0 else arch_opt).step()
    rec["after"] = [{"A": lst(d["A"].detach()), "B": lst(d["B"].detach()), "a": lst(d["a"].detach())} for d in mods]
    steps.append(rec)


def select(gammas, rho):
    k = max(1, round(rho * len(gammas)))
    order = sorted(range(len(gammas)), key=lambda i: (-gammas[i], i))
    keep = [False] * len(gammas)
    for i in order[:k]:
        keep[i] = True
    return keep


gammas = [float(torch.sigmoid(d["a"])) for d in mods]
keep = select(gammas, 1 / 3)
final = []
for d, kp, gm in zip(mods, keep, gammas):
    with torch.no_grad():
        A = d["A"].detach().clone() if kp else torch.zeros_like(d["A"])
        B = d["B"].detach().clone() * gm if kp else torch.zeros_like(d["B"])
    final.append({"keep": kp, "A": lst(A), "B": lst(B)})
ties = [{"gammas": g, "rho": rho, "keep": select(g, rho)} for g, rho in [([0.5, 0.7, 0.7, 0.2], 0.5), ([0.6, 0.6, 0.6], 1 / 3), ([0.1, 0.9, 0.4, 0.9, 0.4, 0.3], 0.5)]]
out = {"r": r, "lora_alpha": alpha, "N": N, "modules": init,
       "batches": [[{"x": lst(b["x"]), "R": lst(b["R"])} for b in batch] for batch in batches],
       "steps": steps, "gammas": gammas, "final": final, "ties": ties}
path = os.path.join(os.path.dirname(__file__), "..", "..", "test", "fixtures", "diffora.json")
with open(path, "w") as f:
    json.dump(out, f)
print("wrote", os.path.normpath(path), "keep", keep)
