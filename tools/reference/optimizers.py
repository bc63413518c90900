#!/usr/bin/env python3
"""Golden fixture for lorakit's GaLore, LoRA-Pro, ALLoRA and SGD steps.

Transcriptions in float64 PyTorch of the rules as the official code has them
(shared/docs/methods/rank_optim_workflows.md, [code] items):

- GaLore: galore_torch/adamw.py AdamW.step + galore_projector.py ('std'):
  projector refreshed from torch.linalg.svd at the parameter's steps 0, T, 2T;
  Adam on the projected gradient with eps 1e-6 and the bias correction folded
  into the step size; scale in project_back; weight decay after the update.
  The projectors used are written out, so the test injects the same ones
  (SVD signs differ between implementations).
- LoRA-Pro: DeepSpeed stage_1_and_2.py lorapro_full_adjustment /
  solve_sylvester, with SGD (wd 0) as the outer step; the first optimizer
  step takes the B = 0 branch. One case clips the gradients where the
  official ZeRO step does: norm before the adjustment, factor after it. Inverses are pinv(M + 1e-8 I). Also recorded:
  the equivalent gradient, and the full gradient G the LoRA gradients came
  from, so the test checks g~ = P_B G + (I - P_B) G P_A.
- ALLoRA (no official code; the unofficial rule): g_i / sqrt(|theta_i|^2 + 1/eta^2)
  per row of A and B, then torch.optim.AdamW.
- SGD: torch.optim.SGD with momentum, dampening and weight decay.

Inputs come from torch.Generator seeds written below. Usage:
  /usr/bin/python3 tools/reference/optimizers.py [out.json]
"""
import json
import math
import os
import sys

import torch

torch.set_num_threads(1)
D = torch.float64


def tl(t):
    return [float(x) for x in t.detach().reshape(-1).tolist()]


# ---------------------------------------------------------------- GaLore
def galore_case(gen):
    shapes = {"tall": (6, 4), "wide": (3, 5), "vec": (4,)}
    rank, gap, scale, lr, wd = 2, 2, 0.25, 0.01, 0.1
    b1, b2, eps = 0.9, 0.999, 1e-6
    params = {k: torch.randn(*s, generator=gen, dtype=D) for k, s in shapes.items()}
    init = {k: tl(v) for k, v in params.items()}
    state = {k: {"step": 0} for k in shapes}
    steps = []
    for step in range(5):
        grads = {k: torch.randn(*s, generator=gen, dtype=D) * (1 + step) for k, s in shapes.items()}
        projectors = {}
        for k, p in params.items():
            st, g = state[k], grads[k]
            if g.dim() == 2:
                m, n = g.shape
                side = "right" if m >= n else "left"
                if "ortho" not in st or st["step"] % gap == 0:
                    U, S, Vh = torch.linalg.svd(g, full_matrices=False)
                    st["ortho"] = Vh[:rank, :] if side == "right" else U[:, :rank]
                    projectors[k] = tl(st["ortho"])
                R = g @ st["ortho"].t() if side == "right" else st["ortho"].t() @ g
            else:
                R = g
            if "m" not in st:
                st["m"] = torch.zeros_like(R)
                st["v"] = torch.zeros_like(R)
            st["step"] += 1
            st["m"].mul_(b1).add_(R, alpha=1 - b1)
            st["v"].mul_(b2).addcmul_(R, R, value=1 - b2)
            denom = st["v"].sqrt().add_(eps)
            step_size = lr * math.sqrt(1 - b2 ** st["step"]) / (1 - b1 ** st["step"])
            N = st["m"] / denom
            if g.dim() == 2:
                N = (N @ st["ortho"] if side == "right" else st["ortho"] @ N) * scale
            p.add_(N, alpha=-step_size)
            p.add_(p, alpha=-lr * wd)
        steps.append({"grads": {k: tl(v) for k, v in grads.items()}, "projectors": projectors, "params": {k: tl(v) for k, v in params.items()}})
    # lorakit's own SVD projector must span the same subspace as torch's
    G = torch.randn(7, 5, generator=gen, dtype=D)
    U, S, Vh = torch.linalg.svd(G, full_matrices=False)
    return {
        "shapes": {k: list(s) for k, s in shapes.items()}, "rank": rank, "gap": gap, "scale": scale, "lr": lr, "weightDecay": wd,
        "init": init, "steps": steps,
        "subspace": {"G": tl(G), "m": 7, "n": 5, "rank": 3, "right": tl(Vh[:3, :]), "left": tl(U[:, :3])},
    }


# ---------------------------------------------------------------- LoRA-Pro
def pinv_reg(M, shift=1e-8):
    # The official code calls torch.linalg.pinv(M + 1e-8 I) on float32 tensors, whose
    # default cut is rtol = k·eps(float32); here in float64 with that cut pinned.
    k = M.shape[0]
    return torch.linalg.pinv(M + shift * torch.eye(k, dtype=M.dtype), rtol=k * torch.finfo(torch.float32).eps)


def solve_sylvester(A, B, C):
    # A X + X B = C for symmetric A, B (eigendecompositions), as the official solve_sylvester
    la, Qa = torch.linalg.eigh(A)
    lb, Qb = torch.linalg.eigh(B)
    Ct = Qa.t() @ C @ Qb
    X = Ct / (la.unsqueeze(1) + lb.unsqueeze(0))
    return Qa @ X @ Qb.t()


def lorapro_case(gen, m=5, n=4, r=2, s=2.0, lr=0.05, rank_one_first=False, projections=True, max_norm=None, g_scales=(1.0, 1.0, 1.0)):
    # rank_one_first: the first full gradient is u·vᵀ, so after the B = 0 step B has
    # rank 1 and BᵀB is singular up to the 1e-8 shift: the pinv cut decides the step.
    # max_norm: gradient clipping as the official DeepSpeed ZeRO step runs it around the
    # adjustment: the global norm of the raw LoRA gradients is taken first (Step 1 of
    # step(), scaled_global_norm), lorapro_full_adjustment runs on the raw gradients
    # (moments of the unclipped g~), then unscale_and_clip_grads divides what it returned
    # by clip = max(1, (norm + 1e-6) / max_norm) before the SGD step. g_scales scale each
    # step's G so that some steps clip and some do not.
    b1, b2, eps = 0.9, 0.999, 1e-8
    A = torch.randn(r, n, generator=gen, dtype=D) * 0.5
    B = torch.zeros(m, r, dtype=D)
    init = {"A": tl(A), "B": tl(B)}
    M = torch.zeros(m, n, dtype=D)
    V = torch.zeros(m, n, dtype=D)
    steps = []
    for step in range(3):
        if rank_one_first and step == 0:
            G = torch.randn(m, 1, generator=gen, dtype=D) @ torch.randn(1, n, generator=gen, dtype=D)
        else:
            G = torch.randn(m, n, generator=gen, dtype=D)  # dL/dW: the LoRA gradients follow from it
        G = G * g_scales[step]
        gA = s * B.t() @ G
        gB = s * G @ A.t()
        clip = 1.0
        if max_norm is not None:
            total = math.sqrt(float((gA * gA).sum()) + float((gB * gB).sum()))
            clip = max(1.0, (total + 1e-6) / max_norm)
        AAt_inv = pinv_reg(A @ A.t())
        if step == 0:
            gAh = gA
            gBh = (1 / s ** 2) * gB @ AAt_inv
        else:
            BtB_inv = pinv_reg(B.t() @ B)
            PB = B @ BtB_inv @ B.t()
            gAh = (1 / s ** 2) * BtB_inv @ gA
            gBh = (1 / s ** 2) * (torch.eye(m, dtype=D) - PB) @ gB @ AAt_inv
        eq = s * B @ gAh + s * gBh @ A
        t = step + 1
        M = b1 * M + (1 - b1) * eq
        V = b2 * V + (1 - b2) * eq * eq
        g = (M / (1 - b1 ** t)) / (V.sqrt() / math.sqrt(1 - b2 ** t) + eps)
        gA2 = s * B.t() @ g
        gB2 = s * g @ A.t()
        if step == 0:
            gradA = gA2
            gradB = (1 / s ** 2) * gB2 @ AAt_inv
            residual = 0.0
            projection = None
        else:
            BtB = B.t() @ B
            C = -(1 / s ** 2) * BtB_inv @ gA2 @ A.t()
            X = solve_sylvester(BtB, A @ A.t(), C)
            residual = float((BtB @ X + X @ (A @ A.t()) - C).abs().max())
            gradA = (1 / s ** 2) * BtB_inv @ gA2 + X @ A
            gradB = (1 / s ** 2) * (torch.eye(m, dtype=D) - PB) @ gB2 @ AAt_inv - B @ X
            # the tangent-space projection of g the update reproduces (paper's invariant)
            PA = A.t() @ pinv_reg(A @ A.t()) @ A
            projection = tl(PB @ g + (torch.eye(m, dtype=D) - PB) @ g @ PA)
            equivalent_of_G = tl(PB @ G + (torch.eye(m, dtype=D) - PB) @ G @ PA)
        rec = {"G": tl(G), "gA": tl(gA), "gB": tl(gB), "equivalent": tl(eq), "adam": tl(g), "gradA": tl(gradA), "gradB": tl(gradB), "sylvesterResidual": residual}
        if step > 0:
            rec["BtBEigenvalues"] = tl(torch.linalg.eigvalsh(B.t() @ B))
        if projection is not None and projections:
            rec["projection"] = projection
            rec["equivalentOfG"] = equivalent_of_G
        if max_norm is not None:
            rec["clipScale"] = 1.0 / clip
        A = A - lr * (gradA / clip)
        B = B - lr * (gradB / clip)
        rec["A"] = tl(A)
        rec["B"] = tl(B)
        steps.append(rec)
    out = {"m": m, "n": n, "r": r, "s": s, "lr": lr, "init": init, "steps": steps}
    if max_norm is not None:
        out["maxNorm"] = max_norm
    return out


# ---------------------------------------------------------------- ALLoRA
def allora_case(gen):
    eta, lr, wd = 2.0, 0.01, 0.01
    A = torch.randn(3, 5, generator=gen, dtype=D)
    B = torch.zeros(4, 3, dtype=D)  # theta = 0: the factor is eta
    gA = torch.randn(3, 5, generator=gen, dtype=D)
    gB = torch.randn(4, 3, generator=gen, dtype=D)
    fA = 1 / torch.sqrt((A * A).sum(1, keepdim=True) + 1 / eta ** 2)
    fB = 1 / torch.sqrt((B * B).sum(1, keepdim=True) + 1 / eta ** 2)
    pa, pb = torch.nn.Parameter(A.clone()), torch.nn.Parameter(B.clone())
    opt = torch.optim.AdamW([pa, pb], lr=lr, weight_decay=wd, foreach=False)
    pa.grad, pb.grad = gA * fA, gB * fB
    opt.step()
    return {"eta": eta, "lr": lr, "weightDecay": wd, "A": tl(A), "B": tl(B), "gA": tl(gA), "gB": tl(gB),
            "factorsA": tl(fA), "factorsB": tl(fB), "afterA": tl(pa), "afterB": tl(pb)}


# ---------------------------------------------------------------- SGD
def sgd_case(gen):
    p = torch.nn.Parameter(torch.randn(6, generator=gen, dtype=D))
    init = tl(p)
    opt = torch.optim.SGD([p], lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01, foreach=False)
    steps = []
    for _ in range(3):
        p.grad = torch.randn(6, generator=gen, dtype=D)
        g = tl(p.grad)
        opt.step()
        steps.append({"grad": g, "param": tl(p)})
    return {"init": init, "lr": 0.1, "momentum": 0.9, "dampening": 0.1, "weightDecay": 0.01, "steps": steps}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "../../test/fixtures/optimizers.json")
    doc = {
        "torch": torch.__version__,
        "galore": galore_case(torch.Generator().manual_seed(11)),
        "lorapro": lorapro_case(torch.Generator().manual_seed(12)),
        "loraproRankOne": lorapro_case(torch.Generator().manual_seed(15), m=6, n=5, r=2, s=2.0, lr=0.5, rank_one_first=True, projections=False),
        "loraproClipped": lorapro_case(torch.Generator().manual_seed(16), max_norm=1.0, g_scales=(1.0, 0.02, 3.0)),
        "allora": allora_case(torch.Generator().manual_seed(13)),
        "sgd": sgd_case(torch.Generator().manual_seed(14)),
    }
    with open(out, "w") as f:
        json.dump(doc, f)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
