#!/usr/bin/env python3
"""Reference for lorakit's 4-bit frozen bases (src/quant/nf4.ts, int4.ts,
src/graph/quantized_4bit.ts), computed with torch from the published
definitions, on inputs drawn here (torch.manual_seed(0); float32):

nf4 (QLoRA paper, Dettmers et al. 2023, section 3 and appendix; bitsandbytes'
create_normal_map): the 16 levels are built here from the normal quantiles,
offset 0.9677083: 8 positive levels Phi^-1 of linspace(offset, 0.5, 9)[:-1],
7 negative ones -Phi^-1 of linspace(offset, 0.5, 8)[:-1], and 0; sorted and
divided by the largest. The weight W [out, in] is flattened and cut into
blocks of 64; each block is scaled by 1/absmax and each value gets the index of
the nearest level (a tie goes to the lower); two codes per byte, the even
index in the high nibble (bitsandbytes' packing, read by onnxruntime's
com.microsoft MatMulBnb4). MatMulBnb4 = x @ dequant(W)^T in float32.

int4 (onnxruntime docs/ContribOperators.md, com.microsoft MatMulNBits, bits 4):
B is [N, k_blocks, block/2] bytes, codes packed low nibble first along K,
dequantized as (code - zero_point) * scale per block, zero points packed two
per byte along each row's blocks. lorakit's choice (transcribed): block 32,
one scale and zero point per 32x32 tile of W [out, in]: lo = min(0, min),
hi = max(0, max), scale = (hi - lo)/15, zero = round(-lo/scale),
code = clip(round(w/scale) + zero, 0, 15). With accuracy_level 4 the CPU
kernel (MLAS CompInt8) quantizes each 32-long block of each activation row to
int8 (scale = absmax/127, round half to even) and multiplies in integers:
that product is transcribed here too, with its per-element error bound
sum over blocks of scale_a/2 * sum |W~| against the float product.

Gradient of loss = sum(y * R): autograd through the dequantized weight
(float64) for both; int4's own input gradient is the same level-4 product
with the transposed codes (the tiles are square, so they dequantize to W~^T).
R has rows of very different sizes (1e-4 .. 1).
Writes test/fixtures/quant_4bit.json. Run: /usr/bin/python3 tools/reference/quant_4bit.py
"""
import json
import os

import torch

torch.manual_seed(0)
M, K, N = 6, 40, 36  # K, N not multiples of the blocks: padding is exercised
NF4_BLOCK, TILE = 64, 32


def lst(t):
    return [float(v) for v in t.reshape(-1).tolist()]


W = torch.randn(N, K) * 0.2
W[3] *= 10.0
W[5] = 0.0
X = torch.randn(M, K) * 1.5 + 0.3
R = torch.randn(M, N) * torch.tensor([1.0, 1e-2, 3e-1, 1e-4, 5e-2, 1.0]).unsqueeze(1)

# ---- NF4 levels from the normal quantiles
offset = 0.9677083
pos = torch.special.ndtri(torch.linspace(offset, 0.5, 9, dtype=torch.float64)[:-1])
neg = -torch.special.ndtri(torch.linspace(offset, 0.5, 8, dtype=torch.float64)[:-1])
levels64 = torch.sort(torch.cat([pos, torch.zeros(1, dtype=torch.float64), neg])).values
levels = (levels64 / levels64.max()).float()
assert levels.numel() == 16

flat = W.reshape(-1)
numel = flat.numel()
nblocks = (numel + NF4_BLOCK - 1) // NF4_BLOCK
padded = torch.cat([flat, torch.zeros(nblocks * NF4_BLOCK - numel)]).reshape(nblocks, NF4_BLOCK)
absmax = padded.abs().amax(dim=1)
inv = torch.where(absmax > 0, 1.0 / torch.where(absmax > 0, absmax, torch.ones_like(absmax)), torch.zeros_like(absmax))
mids = (levels[:-1] + levels[1:]) / 2
nf4_codes = torch.bucketize(padded * inv.unsqueeze(1), mids, right=False).reshape(-1)[:numel]
nf4_deq = (levels[nf4_codes] * absmax.repeat_interleave(NF4_BLOCK)[:numel]).reshape(N, K)
codes_even = nf4_codes[0::2]
codes_odd = torch.cat([nf4_codes[1::2], torch.zeros(codes_even.numel() - nf4_codes[1::2].numel(), dtype=torch.long)])
nf4_packed = codes_even * 16 + codes_odd

# ---- int4, square tiles
def int4_tiles(w):
    """w [n, k] -> codes [n, k], scales [n, kb], zeros [n, kb] (one per TILE x TILE tile)."""
    n, k = w.shape
    kb = (k + TILE - 1) // TILE
    codes = torch.zeros(n, kb * TILE, dtype=torch.long)
    scales = torch.zeros(n, kb)
    zeros = torch.zeros(n, kb, dtype=torch.long)
    for r0 in range(0, n, TILE):
        for b in range(kb):
            t = w[r0:r0 + TILE, b * TILE:(b + 1) * TILE]
            lo = torch.clamp(t.min(), max=0.0)
            hi = torch.clamp(t.max(), min=0.0)
            s = (hi - lo) / 15.0
            z = torch.clamp(torch.round(-lo / s), 0, 15) if s > 0 else torch.tensor(8.0)
            q = torch.clamp(torch.round(t / s) + z, 0, 15) if s > 0 else torch.full_like(t, 8.0)
            rows = t.shape[0]
            codes[r0:r0 + rows, b * TILE:b * TILE + t.shape[1]] = q.long()
            codes[r0:r0 + rows, b * TILE + t.shape[1]:(b + 1) * TILE] = int(z)  # padding: the code of 0
            scales[r0:r0 + rows, b] = s
            zeros[r0:r0 + rows, b] = int(z)
    return codes, scales, zeros


def pack_low_first(codes):
    return codes[..., 0::2] + 16 * codes[..., 1::2]


def int4_deq(codes, scales, zeros, k):
    n = codes.shape[0]
    c = codes.reshape(n, -1, TILE).double()
    return ((c - zeros.unsqueeze(2).double()) * scales.unsqueeze(2).double()).reshape(n, -1)[:, :k]


ic, isc, iz = int4_tiles(W)
icT, iscT, izT = int4_tiles(W.t().contiguous())
int4_deq_W = int4_deq(ic, isc, iz, K)
assert torch.equal(int4_deq(icT, iscT, izT, N), int4_deq_W.t()), "square tiles: the transposed codes dequantize to W~^T"
kb, nb = isc.shape[1], iscT.shape[1]
zp_pad = torch.cat([iz, torch.zeros(N, (kb + 1) // 2 * 2 - kb, dtype=torch.long)], dim=1)


def level4_product(a, deq_codes_minus_zero, scales, k):
    """MLAS CompInt8: each TILE-long block of each row of a quantized to int8 (absmax/127, half to even), integer dot with (code - zero), times both scales."""
    m = a.shape[0]
    kbl = (k + TILE - 1) // TILE
    ap = torch.cat([a, torch.zeros(m, kbl * TILE - k)], dim=1).reshape(m, kbl, TILE)
    sa = ap.abs().amax(dim=2) / 127.0
    inv_a = torch.where(sa > 0, 1.0 / torch.where(sa > 0, sa, torch.ones_like(sa)), torch.zeros_like(sa))
    qa = torch.round(ap * inv_a.unsqueeze(2))
    out = torch.zeros(m, deq_codes_minus_zero.shape[0], dtype=torch.float64)
    bound = torch.zeros_like(out)
    for b in range(kbl):
        cz = deq_codes_minus_zero[:, b * TILE:(b + 1) * TILE].double()  # [n, TILE]
        dot = qa[:, b, :].double() @ cz.t()
        out += dot * sa[:, b:b + 1].double() * scales[:, b].double().unsqueeze(0)
        bound += (sa[:, b:b + 1].double() / 2) * (cz.abs() * scales[:, b].double().unsqueeze(1)).sum(dim=1).unsqueeze(0)
    return out, bound


Y_int4, Y_int4_bound = level4_product(X, ic - iz.repeat_interleave(TILE, dim=1), isc, K)
dX_int4, dX_int4_bound = level4_product(R, icT - izT.repeat_interleave(TILE, dim=1), iscT, N)

Xg = X.double().clone().requires_grad_()
((Xg @ int4_deq_W.t()) * R.double()).sum().backward()
dX_int4_exact = Xg.grad
assert ((dX_int4 - dX_int4_exact).abs() <= dX_int4_bound * (1 + 1e-9)).all()
Y_int4_exact = X.double() @ int4_deq_W.t()
assert ((Y_int4 - Y_int4_exact).abs() <= Y_int4_bound * (1 + 1e-9)).all()

Xn = X.double().clone().requires_grad_()
Y_nf4 = Xn @ nf4_deq.double().t()
(Y_nf4 * R.double()).sum().backward()

out = {
    "M": M, "K": K, "N": N, "nf4_block": NF4_BLOCK, "tile": TILE,
    "W_out_in": lst(W), "X": lst(X), "R": lst(R),
    "nf4_levels": lst(levels), "nf4_packed": lst(nf4_packed), "nf4_absmax": lst(absmax),
    "Y_nf4": lst(Y_nf4.detach()), "dX_nf4": lst(Xn.grad),
    "int4_packed": lst(pack_low_first(ic)), "int4_scales": lst(isc), "int4_zeros": lst(pack_low_first(zp_pad)),
    "int4T_packed": lst(pack_low_first(icT)),
    "Y_int4": lst(Y_int4), "Y_int4_exact": lst(Y_int4_exact), "Y_int4_bound": lst(Y_int4_bound),
    "dX_int4": lst(dX_int4), "dX_int4_exact": lst(dX_int4_exact), "dX_int4_bound": lst(dX_int4_bound),
}
path = os.path.join(os.path.dirname(__file__), "..", "..", "test", "fixtures", "quant_4bit.json")
with open(path, "w") as f:
    json.dump(out, f)
print("wrote", os.path.normpath(path), "nf4 levels", [round(v, 7) for v in levels.tolist()])
