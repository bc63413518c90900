#!/usr/bin/env python3
"""Golden fixture for lorakit's AdamW, clip and linear schedule.

Runs torch.optim.AdamW + torch.nn.utils.clip_grad_norm_ + LambdaLR with the
transformers linear-warmup-decay lambda on a few small float32 parameters with
fixed pseudo-random gradients, and writes test/fixtures/adamw_golden.json:
initial params, the grads of each step (before clipping), the lr used by each
step, the total norm clip_grad_norm_ returned, and the params after each step.

Scenarios:
  groups  - two param groups (weight decay 0.01 / no decay with lr x4, as
            LoRA+ does for B), max_norm 1.5 clipping (some steps clip, some
            don't), warmup 3 of 20 steps, one parameter with no grad on
            some steps (torch skips it and its step count does not advance).
  amsgrad - one group, amsgrad=True, non-default betas/eps/weight decay,
            no clipping, no schedule.

Usage: /usr/bin/python3 tools/reference/adamw_golden.py [out.json]
"""
import json
import os
import sys

import torch

torch.set_num_threads(1)
torch.manual_seed(0)

SHAPES = {"w": (4, 3), "b": (3,), "lora_A": (2, 5), "lora_B": (5, 2)}


def linear_lambda(warmup, total):
    # transformers.get_linear_schedule_with_warmup
    def f(step):
        if step < warmup:
            return float(step) / float(max(1, warmup))
        return max(0.0, float(total - step) / float(max(1, total - warmup)))

    return f


def tolist(t):
    return [float(x) for x in t.detach().reshape(-1).tolist()]


def run(name, *, steps, lr, betas, eps, groups, amsgrad, max_norm, warmup, skip, seed):
    gen = torch.Generator().manual_seed(seed)
    params = {k: torch.nn.Parameter(torch.randn(*s, generator=gen)) for k, s in SHAPES.items()}
    init = {k: tolist(p) for k, p in params.items()}
    pgroups = []
    for g in groups:
        pgroups.append(
            {"params": [params[n] for n in g["names"]], "lr": lr * g["lr_scale"], "weight_decay": g["weight_decay"]}
        )
    opt = torch.optim.AdamW(pgroups, lr=lr, betas=betas, eps=eps, amsgrad=amsgrad, foreach=False)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, linear_lambda(warmup, steps)) if warmup is not None else None
    record = []
    for step in range(steps):
        grads = {}
        for k, p in params.items():
            if (step, k) in skip:
                p.grad = None
                continue
            # scale varies per step so that clipping happens on some steps only
            scale = 0.2 + 0.5 * (step % 4)
            p.grad = torch.randn(*p.shape, generator=gen) * scale
            grads[k] = tolist(p.grad)
        total_norm = None
        if max_norm is not None:
            total_norm = float(torch.nn.utils.clip_grad_norm_(list(params.values()), max_norm))
        base_lr_used = opt.param_groups[0]["lr"] / groups[0]["lr_scale"]
        opt.step()
        if sched is not None:
            sched.step()
        record.append(
            {
                "grads": grads,
                "lr": base_lr_used,
                "totalNorm": total_norm,
                "params": {k: tolist(p) for k, p in params.items()},
            }
        )
    return {
        "name": name,
        "shapes": {k: list(s) for k, s in SHAPES.items()},
        "lr": lr,
        "betas": list(betas),
        "eps": eps,
        "amsgrad": amsgrad,
        "maxNorm": max_norm,
        "warmupSteps": warmup,
        "totalSteps": steps,
        "groups": [{"names": g["names"], "lrScale": g["lr_scale"], "weightDecay": g["weight_decay"]} for g in groups],
        "init": init,
        "steps": record,
    }


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(__file__), "..", "..", "test", "fixtures", "adamw_golden.json"
    )
    scenarios = [
        run(
            "groups",
            steps=20,
            lr=1e-2,
            betas=(0.9, 0.999),
            eps=1e-8,
            groups=[
                {"names": ["w", "lora_A"], "lr_scale": 1.0, "weight_decay": 0.01},
                {"names": ["b", "lora_B"], "lr_scale": 4.0, "weight_decay": 0.0},
            ],
            amsgrad=False,
            max_norm=1.5,
            warmup=3,
            skip={(5, "b"), (6, "b"), (11, "lora_A")},
            seed=1,
        ),
        run(
            "amsgrad",
            steps=20,
            lr=3e-2,
            betas=(0.8, 0.99),
            eps=1e-6,
            groups=[{"names": list(SHAPES), "lr_scale": 1.0, "weight_decay": 0.1}],
            amsgrad=True,
            max_norm=None,
            warmup=None,
            skip=set(),
            seed=2,
        ),
    ]
    doc = {
        "generator": "tools/reference/adamw_golden.py",
        "torch": torch.__version__,
        "note": "params are row-major float32 values; grads are before clipping; lr is the base lr of the step",
        "scenarios": scenarios,
    }
    with open(out, "w") as f:
        json.dump(doc, f)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
