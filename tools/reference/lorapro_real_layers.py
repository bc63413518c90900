#!/usr/bin/env python3
"""LoRA-Pro on a real layer: checks lorakit's equivalent gradient and steps
against the paper's definitions, in float64, on tensors dumped from a training
run (`npx tsx bench/lorapro_claim.ts --measure per-step --dump FILE`).

The dump holds, for the first adapted module of the LoRA-Pro run and its first
steps: A [r, n], B [m, r], the full gradient g = dL/dW [m, n] (lorakit's
full-fine-tuning graph at W = W0 + s*B*A, same batch and head), lorakit's LoRA
gradients g_A, g_B (its LoRA graph), its adjusted gA^, gB^ and equivalent
gradient g~, and A, B after the step. Checked here, from the paper's equations
and the official code (mrflogs/LoRA-Pro, DeepSpeed stage_1_and_2.py
lorapro_full_adjustment), not from lorakit's source:

1. chain rule: g_A = s*B^T g, g_B = s*g*A^T (the two graphs agree);
2. the paper's g~ (its equations with exact inverses, on lorakit's g_A, g_B)
   is the orthogonal projection of g onto the tangent space {B X + Y A}
   (built here from orthonormal bases of col(B) and row(A), on the rank float32
   data supports), and its residual g~ - g is orthogonal to that space (B^T R = 0, R A^T = 0): the minimum of
   ||g~ - g||; random tangent moves never get closer. Reported: how far
   lorakit's g~ (the official pinv(M + 1e-8 I), float32's cut) is from it;
   checked to be it when the dump was made with the shift 0;
3. ||g~_pro - g|| <= ||g~_lora - g||, g~_lora = s(B g_A + g_B A) (plain LoRA's);
4. the step: the official update on the dumped A, B, g_A, g_B (moments
   accumulated from the dumped steps) equals lorakit's A, B after it. Also
   reported, not checked: the step as the official code actually runs it —
   its `global_step` is incremented before lorapro_full_adjustment, so the
   B = 0 branch is never taken and Adam's bias correction counts one step
   ahead (t + 1).

Usage: /usr/bin/python3 tools/reference/lorapro_real_layers.py DUMP.safetensors
Prints one line per step and check; exits 1 when a check fails.
"""
import math
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from optimizers import pinv_reg, solve_sylvester  # noqa: E402  (the float64 transcription of the official code)
from safetensors_file import read_safetensors  # noqa: E402

torch.set_num_threads(1)
D = torch.float64
B1, B2, EPS = 0.9, 0.999, 1e-8


def rel(a, b):
    return float((a - b).norm() / max(float(b.norm()), 1e-300))


def orth(M, tol):
    """Orthonormal basis of M's column space (float64 SVD, singular values above tol of the largest)."""
    if float(M.abs().max()) == 0.0:
        return M.new_zeros(M.shape[0], 0)
    U, S, _ = torch.linalg.svd(M, full_matrices=False)
    return U[:, S > tol * S[0]]


def tangent_projection(g, A, B, tol):
    """P_B g + (I - P_B) g P_A with orthogonal projectors (singular values above tol of the largest)."""
    QB, QA = orth(B, tol), orth(A.t(), tol)
    PBg = QB @ (QB.t() @ g)
    return PBg + (g - PBg) @ QA @ QA.t()


# The numerical rank float32 data supports: singular values above sqrt(r eps32) of the largest (eigenvalues of
# M^T M above r eps32, the cut of float32's pinv). A B of rank 2 stored in float32 has rounding-noise directions
# far below it; the exact projector and the exact inverses both leave them out.
CUT = lambda r: math.sqrt(r * torch.finfo(torch.float32).eps)  # noqa: E731


def exact_inverse(M):
    """The inverse on M's numerical rank, no shift."""
    return torch.linalg.pinv(M, rtol=CUT(M.shape[0]) ** 2, hermitian=True)


def official_equivalent(A, B, gA, gB, s, first, inverse):
    """Steps 1-2 of lorapro_full_adjustment with a given inverse: g~ = s B gA^ + s gB^ A."""
    I = torch.eye(B.shape[0], dtype=D)
    AAt_inv = inverse(A @ A.t())
    if first:
        gAh, gBh = gA, (1 / s ** 2) * gB @ AAt_inv
    else:
        BtB_inv = inverse(B.t() @ B)
        gAh = (1 / s ** 2) * BtB_inv @ gA
        gBh = (1 / s ** 2) * (I - B @ BtB_inv @ B.t()) @ gB @ AAt_inv
    return s * B @ gAh + s * gBh @ A


def official_step(A, B, gA, gB, s, lr, state, first, moments, t, shift):
    """lorapro_full_adjustment (inverses pinv(M + shift I), the official shift 1e-8) then the outer SGD step, float64; returns A', B' and g~."""
    m = B.shape[0]
    I = torch.eye(m, dtype=D)
    inv = lambda M: pinv_reg(M, shift)  # noqa: E731
    AAt_inv = inv(A @ A.t())
    BtB_inv = None if first else inv(B.t() @ B)
    eq = official_equivalent(A, B, gA, gB, s, first, inv)
    if moments:
        state["m"] = B1 * state.get("m", torch.zeros_like(eq)) + (1 - B1) * eq
        state["v"] = B2 * state.get("v", torch.zeros_like(eq)) + (1 - B2) * eq * eq
        g = (state["m"] / (1 - B1 ** t)) / (state["v"].sqrt() / math.sqrt(1 - B2 ** t) + EPS)
    else:
        g = eq
    gA2, gB2 = s * B.t() @ g, s * g @ A.t()
    if first:
        gradA, gradB = gA2, (1 / s ** 2) * gB2 @ AAt_inv
    else:
        X = solve_sylvester(B.t() @ B, A @ A.t(), -(1 / s ** 2) * BtB_inv @ gA2 @ A.t())
        gradA = (1 / s ** 2) * BtB_inv @ gA2 + X @ A
        gradB = (1 / s ** 2) * (I - B @ BtB_inv @ B.t()) @ gB2 @ AAt_inv - B @ X
    return A - lr * gradA, B - lr * gradB, eq


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__.split("Usage: ")[1].split("\n")[0])
    T, meta = read_safetensors(sys.argv[1])
    T = {k: v.to(D) for k, v in T.items()}
    s, steps, moments = float(meta["s"]), int(meta["steps"]), meta["regime"] == "adamw"
    shift = float(meta.get("shift", "1e-8"))
    print(f"{meta['site']} [{meta['m']}x{meta['n']}], r {meta['r']}, s {s}, {meta['regime']}, shift {shift:g}, {steps} steps")
    failures = []

    def check(ok, what):
        if not ok:
            failures.append(what)
        return "ok" if ok else "FAIL"

    ours, asrun = {}, {}
    for k in range(steps):
        x = {n: T[f"step{k}.{n}"] for n in ("A", "B", "g", "gA", "gB", "gAh", "gBh", "equivalent", "A_after", "B_after", "lr")}
        A, B, g, gA, gB, lr = x["A"], x["B"], x["g"], x["gA"], x["gB"], float(x["lr"][0])
        # 1. chain rule between lorakit's two graphs (float32 autodiff on both sides)
        cA = float((gA - s * B.t() @ g).norm() / max(float((s * B.t() @ g).norm()), float(gA.norm()), 1e-30)) if float(B.abs().max()) > 0 else float(gA.abs().max())
        cB = rel(gB, s * g @ A.t())
        print(f"step {k + 1}: chain rule g_A = s·Bᵀg {cA:.2e}, g_B = s·g·Aᵀ {cB:.2e}  {check(cA < 1e-3 and cB < 1e-3, f'step {k + 1} chain rule')}")
        # 2. orthogonal projection onto {B X + Y A}: first the paper's equations with exact inverses
        #    (no shift, on float32's numerical rank) on lorakit's g_A, g_B, then lorakit's g~, which
        #    follows the official code's pinv(M + 1e-8 I): the shift biases P_B while B^T B is not >> 1e-8.
        P = tangent_projection(g, A, B, CUT(A.shape[0]))
        exact = official_equivalent(A, B, gA, gB, s, k == 0, exact_inverse)
        R = exact - g
        perpB = float((B.t() @ R).norm() / max(float(torch.linalg.matrix_norm(B, 2)) * float(R.norm()), 1e-300)) if float(B.abs().max()) > 0 else 0.0
        perpA = float((R @ A.t()).norm() / (float(torch.linalg.matrix_norm(A, 2)) * float(R.norm())))
        gen = torch.Generator().manual_seed(k)
        closer = 0
        for _ in range(50):
            X = torch.randn(B.shape[1], A.shape[1], generator=gen, dtype=D)
            Y = torch.randn(B.shape[0], A.shape[0], generator=gen, dtype=D)
            move = s * (B @ X + Y @ A)
            move *= 1e-3 * float(R.norm()) / max(float(move.norm()), 1e-300)
            closer += float((exact + move - g).norm()) < float(R.norm()) * (1 - 1e-9)
        dP = rel(exact, P)
        print(f"        equations with exact inverses vs exact projection {dP:.2e}; residual ⊥ col(B) {perpB:.2e}, ⊥ row(A) {perpA:.2e}; random tangent moves closer: {closer}/50  "
              f"{check(dP < 1e-4 and perpB < 1e-4 and perpA < 1e-4 and closer == 0, f'step {k + 1} projection')}")
        eig = torch.linalg.eigvalsh(B.t() @ B)
        excess = rel(x["equivalent"], g) / rel(P, g) - 1
        dev = rel(x["equivalent"], P)
        # With the shift 0 (the paper's exact inverses) lorakit's g~ must be the projection itself.
        verdict = f"  {check(dev < 1e-4, f'step {k + 1} shift 0 but g~ is not the projection')}" if shift == 0 else ""
        print(f"        lorakit's g~ (pinv(M + {shift:g}·I)) vs exact projection {dev:.2e}, ‖g~−g‖ above the minimum by {excess:.2e} (relative); eigenvalues of BᵀB {float(eig[0]):.2e}..{float(eig[-1]):.2e}{verdict}")
        # 3. LoRA-Pro's equivalent gradient vs plain LoRA's
        lora = s * (B @ gA + gB @ A)
        dpro, dlora = rel(x["equivalent"], g), rel(lora, g)
        print(f"        ‖g~−g‖/‖g‖: LoRA-Pro {dpro:.6f}, LoRA {dlora:.6f}  {check(dpro <= dlora + 1e-9, f'step {k + 1} LoRA-Pro not closer')}")
        # 4. the step, by the official equations on the same tensors
        A1, B1_, eq = official_step(A, B, gA, gB, s, lr, ours, k == 0, moments, k + 1, shift)
        dA, dB = rel(x["A_after"], A1), rel(x["B_after"], B1_)
        uA, uB = rel(x["A_after"] - A, A1 - A), rel(x["B_after"] - B, B1_ - B)
        de = rel(x["equivalent"], eq)
        # A' and B' to float32's resolution (lorakit keeps them in float32); the updates alone are reported:
        # when ΔA is 1e-6 of A (SGD at a small lr), float32's rounding of A' is a visible part of it.
        print(f"        official step: g~ {de:.2e}; A' {dA:.2e}, B' {dB:.2e} (the updates alone: ΔA {uA:.2e}, ΔB {uB:.2e})  "
              f"{check(de < 1e-6 and dA < 1e-5 and dB < 1e-5, f'step {k + 1} official step')}")
        A2, B2_, _ = official_step(A, B, gA, gB, s, lr, asrun, False, moments, k + 2, shift)
        ful = lambda a, b: s * b @ a  # noqa: E731
        d_asrun = rel(ful(A2, B2_) - ful(A, B), ful(x["A_after"], x["B_after"]) - ful(A, B))
        print(f"        as the official code runs (no B = 0 branch, bias correction t + 1): its ΔW differs from lorakit's by {d_asrun:.2e} (relative)")
    if failures:
        print("FAILED: " + "; ".join(failures))
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    main()
