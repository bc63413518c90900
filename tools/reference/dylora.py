#!/usr/bin/env python3
"""PyTorch transcription of DyLoRA's official layer (huawei-noah/Efficient-NLP
@ bb44348, DyLoRA/loralib/DyLoRA.py `dynamic` and layers.py `Linear.forward`):
nd_lora_A / nd_lora_B truncate A.T and B to the current rank, detaching the
earlier components in frozen mode, each scaled by sqrt(r / (rank + 1)), and the
layer adds (dropout(x) @ A'.T @ B'.T) * lora_alpha / r.

Cases, float64, inputs rounded to float32 values (seed 0):
* training (frozen) forward and gradients of A and B for b = 1, 3 and r (= 5);
* evaluation forward at every b = 1..r;
* two torch.optim.AdamW steps (lr 1e-2, weight_decay 0.1) at b1 = 4 then b2 = 2.
Writes test/fixtures/dylora.json. Run: /usr/bin/python3 tools/reference/dylora.py
"""
import json
import math
import os

import torch
import torch.nn as nn

torch.manual_seed(0)
torch.set_default_dtype(torch.float64)


def f32(t):
    return t.float().double()


def lst(t):
    return [float(v) for v in t.reshape(-1).tolist()]


class dynamic(nn.Module):  # DyLoRA.py, unchanged
    def __init__(self, maximum_rank: int = 1):
        super(dynamic, self).__init__()
        self.maximum_rank = maximum_rank
        self.frozen = False
        self.current_rank = 0

    def get_dimension(self):
        return self.maximum_rank

    def get_rank(self):
        return self.current_rank

    def set_rank(self, rank, frozen=False):
        self.current_rank = max(0, min(rank, self.get_dimension()))
        self.frozen = frozen

    def forward(self, inputs, mode: bool = False):
        if self.training or mode:
            if self.frozen:
                pr = inputs[:, :self.get_rank()].detach()
                r = inputs[:, self.get_rank()]
                if len(r.shape) == 1:
                    r = r.unsqueeze(-1)
                result = torch.cat([pr, r], dim=-1)
                return result * math.sqrt(self.get_dimension() / (self.get_rank() + 1))
            else:
                return inputs[:, :self.get_rank() + 1] * math.sqrt(self.get_dimension() / (self.get_rank() + 1))
        else:
            return inputs[:, :self.get_rank() + 1] * math.sqrt(self.get_dimension() / (self.get_rank() + 1))


class Layer(nn.Module):  # the LoRA part of layers.Linear
    def __init__(self, W, A, B, r, alpha):
        super().__init__()
        self.W = W
        self.lora_A = nn.Parameter(A.clone())
        self.lora_B = nn.Parameter(B.clone())
        self.nd_lora_A = dynamic(maximum_rank=r)
        self.nd_lora_B = dynamic(maximum_rank=r)
        self.scaling = alpha / r

    def set_rank(self, rank, frozen=False):
        self.nd_lora_A.set_rank(rank, frozen=frozen)
        self.nd_lora_B.set_rank(rank, frozen=frozen)

    def forward(self, x):
        result = x @ self.W.T
        lora_A = self.nd_lora_A(self.lora_A.T).T
        lora_B = self.nd_lora_B(self.lora_B)
        return result + (x @ lora_A.T @ lora_B.T) * self.scaling


r, alpha, N, n, m = 5, 16.0, 4, 6, 7
W = f32(torch.randn(m, n))
A0 = f32(torch.randn(r, n) * 0.4)
B0 = f32(torch.randn(m, r) * 0.4)
x = f32(torch.randn(N, n))
R = f32(torch.randn(N, m))

train = []
for b in [1, 3, r]:
    layer = Layer(W, A0, B0, r, alpha)
    layer.train()
    layer.set_rank(b - 1, frozen=True)
    y = layer(x)
    (y * R).sum().backward()
    train.append({"b": b, "y": lst(y.detach()), "gA": lst(layer.lora_A.grad), "gB": lst(layer.lora_B.grad)})

evals = []
layer = Layer(W, A0, B0, r, alpha)
layer.eval()
for b in range(1, r + 1):
    layer.set_rank(b - 1)
    with torch.no_grad():
        evals.append({"b": b, "y": lst(layer(x))})

layer = Layer(W, A0, B0, r, alpha)
layer.train()
opt = torch.optim.AdamW([layer.lora_A, layer.lora_B], lr=1e-2, weight_decay=0.1)
adamw = []
for b in [4, 2]:
    layer.set_rank(b - 1, frozen=True)
    opt.zero_grad()
    (layer(x) * R).sum().backward()
    opt.step()
    adamw.append({"b": b, "A": lst(layer.lora_A.detach()), "B": lst(layer.lora_B.detach())})

out = {"r": r, "lora_alpha": alpha, "N": N, "in": n, "out": m, "W": lst(W), "A": lst(A0), "B": lst(B0), "x": lst(x), "R": lst(R),
       "train": train, "eval": evals, "adamw": {"lr": 1e-2, "weight_decay": 0.1, "steps": adamw}}
path = os.path.join(os.path.dirname(__file__), "..", "..", "test", "fixtures", "dylora.json")
with open(path, "w") as f:
    json.dump(out, f)
print("wrote", os.path.normpath(path))
