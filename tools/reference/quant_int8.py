#!/usr/bin/env python3
"""Reference for lorakit's int8 frozen base (src/quant/, src/graph/quantized.ts),
computed with torch from the official definitions, on inputs drawn here
(torch.manual_seed(0); float32):

* int8 = per-output-channel symmetric absmax: s_j = max_i |W[j,i]| / 127,
  Q = round_half_even(W / s) (torch.round), W = [out, in] as nn.Linear;
* forward of com.microsoft DynamicQuantizeMatMul (onnxruntime
  docs/ContribOperators.md: DynamicQuantizeLinear(A) then the integer product
  with B, times the scales): A quantized per tensor to uint8 as the ONNX
  DynamicQuantizeLinear spec says: scale = (max(0, max A) - min(0, min A)) / 255,
  zero point = round_half_even(clip(0 - min(0, min A) / scale, 0, 255)),
  q = clip(round_half_even(A / scale) + zero point, 0, 255); then
  y = ((q - zp) @ Q^T) * scale * s + bias (integer product exact, float64);
* input gradient of loss = sum(y * R): autograd through the dequantized
  weight W~ = diag(s) Q (the exact gradient dX = R @ W~), and lorakit's
  quantized form of it (its chosen equations, transcribed): G = R * s, each
  row divided by its absmax r_i, quantized per tensor as above, multiplied
  by Q in integers, times the scale, times r_i; plus the per-element error
  bound r_i * scale / 2 * sum_n |Q[n, k]| of that form.
R has rows of very different sizes (1e-4 .. 1), so per-tensor quantization
without the row normalization breaks that bound (asserted here).
Writes test/fixtures/quant_int8.json. Run: /usr/bin/python3 tools/reference/quant_int8.py
"""
import json
import os

import torch

torch.manual_seed(0)
M, K, N = 6, 16, 24  # rows, in_features, out_features


def lst(t):
    return [float(v) for v in t.reshape(-1).tolist()]


W = torch.randn(N, K) * 0.2
W[3] *= 10.0  # channels of different size: per-channel scales matter
W[5] = 0.0     # an all-zero channel: scale 0, codes 0
X = torch.randn(M, K) * 1.5 + 0.3
bias = torch.randn(N) * 0.1
R = torch.randn(M, N) * torch.tensor([1.0, 1e-2, 3e-1, 1e-4, 5e-2, 1.0]).unsqueeze(1)

s = W.abs().amax(dim=1) / 127.0
Q = torch.where(s.unsqueeze(1) > 0, torch.round(W / torch.where(s > 0, s, torch.ones_like(s)).unsqueeze(1)), torch.zeros_like(W)).clamp(-127, 127)
Wdq = (Q * s.unsqueeze(1)).double()


def quantize_per_tensor(a):
    """ONNX DynamicQuantizeLinear (uint8), float32 arithmetic."""
    lo = torch.clamp(a.min(), max=0.0)
    hi = torch.clamp(a.max(), min=0.0)
    scale = (hi - lo) / 255.0 if hi > lo else torch.tensor(1.0)
    zp = torch.round(torch.clamp(0.0 - lo / scale, 0, 255))
    q = torch.clamp(torch.round(a / scale) + zp, 0, 255)
    return q, scale, zp


qx, sx, zx = quantize_per_tensor(X)
Y = ((qx - zx).double() @ Q.double().t()) * sx.double() * s.double() + bias.double()

Xg = X.double().clone().requires_grad_()
(((Xg @ Wdq.t() + bias.double()) * R.double()).sum()).backward()
dX_exact = Xg.grad

G = R * s
r = torch.clamp(G.abs().amax(dim=1, keepdim=True), min=1e-30)
qg, sg, zg = quantize_per_tensor(G / r)
dX_quant = ((qg - zg).double() @ Q.double()) * sg.double() * r.double()
bound = r.double() * (sg.double() / 2) * Q.double().abs().sum(dim=0).unsqueeze(0)
assert ((dX_quant - dX_exact).abs() <= bound * (1 + 1e-6)).all()

# Without the row normalization the small rows break the bound: the check is discriminative.
qu, su, zu = quantize_per_tensor(G)
dX_plain = ((qu - zu).double() @ Q.double()) * su.double()
assert ((dX_plain - dX_exact).abs() > bound).any()

out = {
    "M": M, "K": K, "N": N,
    "W_out_in": lst(W), "X": lst(X), "bias": lst(bias), "R": lst(R),
    "codes_out_in": lst(Q), "scales": lst(s),
    "Y": lst(Y), "dX_exact": lst(dX_exact), "dX_quant": lst(dX_quant), "dX_bound": lst(bound),
}
path = os.path.join(os.path.dirname(__file__), "..", "..", "test", "fixtures", "quant_int8.json")
with open(path, "w") as f:
    json.dump(out, f)
print("wrote", os.path.normpath(path))
