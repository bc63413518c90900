#!/usr/bin/env python3
"""torch's seeded CPU initializers, the oracle for src/util/torch_init.ts (and
so for the frozen projections PEFT's VeRA and RandLoRA draw from
projection_prng_key). Writes test/fixtures/torch_init.json:

- "uniform": t.uniform_(lo, hi, generator=Generator().manual_seed(seed)) for
  float32 and bfloat16 tensors, drawn one after another from one generator
  (as PEFT draws A then B): every value of the small ones, every 97th of the
  large ones (and their float64 sum);
- "std_bf16": x.std() of bfloat16 tensors (the normalisation RandLoRA applies);
- "vera" / "randlora": PEFT's shared projections as peft/tuners/vera/model.py
  (_kaiming_init: float32, bound sqrt(3)*sqrt(2)/sqrt(fan_in)) and
  peft/tuners/randlora/model.py (_kaiming_init: bfloat16 on CPU, kaiming_uniform_
  with a=sqrt(5); B = cat of ceil(min/r) draws [max, 1, r]; each divided by its
  std) build them, for a few (r, largest out, largest in), sampled every 13th.

torch 2.x changed uniform_ (seen between 1.13 and 2.13): bfloat16 draws use 24
random bits (not 8) with float bounds, and a value that rounds to `to` becomes
`from`, for float32 too. Run once with each torch; each run writes its own
section ('legacy' for 1.x, 'current' for 2.x) and keeps the other:
    /usr/bin/python3 tools/reference/torch_init.py                # torch 1.13
    <python with torch 2.x> tools/reference/torch_init.py          # e.g. /tmp/torch2/bin/python
"""
import json
import math
import os

import torch

PATH = os.path.join(os.path.dirname(__file__), "..", "..", "test", "fixtures", "torch_init.json")
DT = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def gen(seed):
    return torch.Generator(device="cpu").manual_seed(seed)


def sample(t, stride=None):
    # every value of small tensors; else the first 16, every `stride`-th (about 48) and the float64 sum
    f = t.flatten().to(torch.float64)
    if f.numel() <= 64:
        return {"every": 1, "values": f.tolist(), "sum": f.sum().item(), "count": f.numel()}
    stride = stride or max(1, f.numel() // 48) | 1
    return {"head": f[:16].tolist(), "every": stride, "values": f[::stride].tolist(), "sum": f.sum().item(), "count": f.numel()}


def kaiming_a5(shape, g, dtype):
    # torch.nn.init.kaiming_uniform_(t, a=sqrt(5), generator=g); torch < 2.1 has no generator argument, same formula
    t = torch.empty(shape, dtype=dtype)
    fan_in = shape[1] * math.prod(shape[2:])
    gain = math.sqrt(2.0 / (1 + math.sqrt(5) ** 2))
    bound = math.sqrt(3.0) * (gain / math.sqrt(fan_in))
    return t.uniform_(-bound, bound, generator=g)


def vera(r, out_l, in_l, seed):
    g = gen(seed)
    def k(shape):
        b = math.sqrt(3.0) * (math.sqrt(2) / math.sqrt(shape[1]))
        return torch.empty(shape).uniform_(-b, b, generator=g)
    return k((r, in_l)), k((out_l, r))


def randlora(r, out_l, in_l, seed, dtype=torch.bfloat16):
    g = gen(seed)
    mx, mn = max(out_l, in_l), min(out_l, in_l)
    A = kaiming_a5((r, 1, mn), g, dtype)
    nb = math.ceil(mn / r)
    B = torch.cat([kaiming_a5((mx, 1, r), g, dtype) for _ in range(nb)], dim=1)
    return A / A.std(), B / B.std()


def build():
    uniform = []
    for seed, dtype, shapes, lo, hi in [
        (0, "float32", [(4, 16), (16, 4)], -0.6, 0.6),
        (5, "float32", [(3, 7), (5, 3)], -1.0, 1.0),
        (2**32 + 11, "float32", [(64, 1000)], -0.0765, 0.0765),
        (7, "bfloat16", [(3, 1, 16), (16, 1, 3), (16, 1, 3)], -0.25, 0.25),
        (42, "bfloat16", [(32, 1, 768)], -1 / math.sqrt(768), 1 / math.sqrt(768)),
        (1, "float32", [(2, 5)], 0.0, 1.0),
        (3, "float32", [(4096,)], 1.0, 1.0 + 2**-18),  # x*(to-from)+from rounds to `to` for ~1.5% of draws here
        (11, "bfloat16", [(2000,)], 0.013, 0.77),
    ]:
        g = gen(seed)
        tensors = [torch.empty(s, dtype=DT[dtype]).uniform_(lo, hi, generator=g) for s in shapes]
        uniform.append({"seed": seed, "dtype": dtype, "shapes": [list(s) for s in shapes], "lo": lo, "hi": hi,
                        "draws": [sample(t) for t in tensors]})
    std_bf16 = []
    for seed, n, lo, hi in [(3, 50, -1.0, 1.0), (4, 1000, -0.02, 0.02), (9, 7, 0.0, 5.0)]:
        x = torch.empty(n, dtype=torch.bfloat16).uniform_(lo, hi, generator=gen(seed))
        std_bf16.append({"x": x.to(torch.float64).tolist(), "std": x.std().to(torch.float64).item()})
    proj = {"vera": [], "randlora": []}
    for r, out_l, in_l, seed in [(4, 24, 16, 5), (16, 3072, 768, 0), (256, 768, 768, 0)]:
        A, B = vera(r, out_l, in_l, seed)
        proj["vera"].append({"r": r, "out": out_l, "in": in_l, "seed": seed, "A": sample(A), "B": sample(B)})
    for r, out_l, in_l, seed in [(3, 24, 16, 2), (32, 768, 3072, 0), (64, 96, 48, 1)]:
        A, B = randlora(r, out_l, in_l, seed)
        proj["randlora"].append({"r": r, "out": out_l, "in": in_l, "seed": seed, "A": sample(A), "B": sample(B)})
    return {"torch": torch.__version__, "uniform": uniform, "std_bf16": std_bf16, **proj}


def algorithm():
    # torch 1.13 (and, going by its code, 1.x) = 'legacy'; torch 2.13 = 'current' (versions between not checked)
    return "legacy" if int(torch.__version__.split(".")[0]) < 2 else "current"


if __name__ == "__main__":
    data = json.load(open(PATH)) if os.path.exists(PATH) else {}
    data[algorithm()] = build()
    with open(PATH, "w") as f:
        json.dump(data, f)
        f.write("\n")
    print(f"wrote {PATH}: '{algorithm()}' (torch {torch.__version__}); has {sorted(data)}")
