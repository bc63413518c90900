#!/usr/bin/env python3
"""PEFT's VeRA, RandLoRA and FourierFT in plain PyTorch (no `peft`): adapters
"saved by PEFT" (VeRA/RandLoRA with `save_projection=True`), for lorakit to
load, and their outputs.

Reproduces, independently of lorakit, peft (0.20.x) tuners/vera/{config,model,
layer}.py and tuners/randlora/{config,model,layer}.py on the tiny model of
peft_reference.py:
  VeRA: shared vera_A [r, max_in], vera_B [max_out, r] drawn once (kaiming-
        uniform with a torch.Generator seeded by projection_prng_key) for the
        largest adapted shape; each layer slices A[:, :in], B[:out, :];
        y = base(x) + lambda_b * ((lambda_d * (x @ A.T)) @ B.T);
        saved as base_model.vera_A / base_model.vera_B, per-layer
        <module>.vera_lambda_b [out], <module>.vera_lambda_d [r].
  RandLoRA: shared randlora_A [r, 1, min_L], randlora_B [max_L, N_L, r]
        (kaiming-uniform a=sqrt(5) in bfloat16, PEFT's dtype where accelerate
        reports bf16 (CPU included), each divided by its std) for the largest
        adapted shape; per layer N = ceil(min/r), A_ = A[:, :N, :min] (one
        row broadcast), B_ = B[:max, :N, :]; update_A = (lambda[:, :, None] *
        A_ * gamma[None]).flatten(end_dim=1) [r*N, min], update_B =
        B_.flatten(start_dim=1) [max, N*r]; when in is the smaller dimension
        y = base(x) + s * (x @ update_A.T) @ update_B.T, else
        y = base(x) + s * (x @ update_B) @ update_A; s = randlora_alpha / r.
        Keys base_model.randlora_A / _B, <module>.randlora_lambda [r, N],
        <module>.randlora_gamma [N, min], and (real PEFT 0.20's layout, seen in
        test/fixtures/peft_real/peft/randlora_llama: its layers hold the shared
        buffer dict) base_model.randlora_A / _B again as <module>.randlora_A / _B.
  FourierFT (tuners/fourierft): per layer n = n_frequency (or its
        n_frequency_pattern entry), locations f = torch.randperm(out*in,
        generator=Generator().manual_seed(random_loc_seed))[:n], (f // in,
        f % in); dense spectrum S with the coefficients there;
        delta_W = Re(ifft2(S)) * scaling; y = base(x) + x @ delta_W.T.
        Key <module>.fourierft_spectrum [n]; nothing else is stored.
Each folder: adapter_config.json (PEFT's fields), adapter_model.safetensors,
expected.json (unmerged and merged logits on peft_reference's inputs).

  --check DIR --out FILE: loads the adapter folder DIR (e.g. written by
         lorakit) the way PEFT would (peft_type picks the method; VeRA/RandLoRA
         use the stored base_model.* projections, save_projection=True) and
         writes the logits and the missing / unexpected keys.
  --regen (with --check): VeRA/RandLoRA projections are not read from the
         file but regenerated from adapter_config.json as PEFT does
         (projection_prng_key, largest targeted shape), as for a file saved
         with save_projection=False; also reports max |stored - regenerated|.

torch 2.x draws bfloat16 uniform_ differently from torch 1.x (24 random bits,
float bounds, a value rounding to `to` becomes `from`; pinned down against
torch 2.13 by torch_init.py). PEFT's RandLoRA needs torch 2 (kaiming_uniform_
with a generator); under torch 1.x this script draws the torch 2 way from
float32 uniform_ (same draws, fused x*(to-from)+from), then rounds.

Usage: /usr/bin/python3 tools/reference/peft_nonlora.py [--check DIR --out FILE [--regen]]
"""
import argparse
import json
import math
import os
import re

import torch

from peft_reference import PREFIX, REPO, dims, flat, inputs, is_target, linear_names, read_safetensors, H, LAYERS
from safetensors_file import write_safetensors

OUT = os.path.join(REPO, "test", "fixtures", "peft_nonlora")
BASE = os.path.join(REPO, "test", "fixtures", "peft_ref", "model.safetensors")

torch.set_default_dtype(torch.float64)

COMMON = {"auto_mapping": None, "base_model_name_or_path": "lorakit-tiny-reference", "bias": "none", "fan_in_fan_out": False,
          "inference_mode": True, "layers_pattern": None, "layers_to_transform": None, "modules_to_save": None,
          "revision": None, "task_type": None}

CASES = {
    "vera": dict(COMMON, peft_type="VERA", r=4, target_modules=["q_proj", "up_proj", "down_proj"], projection_prng_key=5,
                 save_projection=True, vera_dropout=0.0, d_initial=0.1, init_weights=True),
    "fourierft": dict(COMMON, peft_type="FOURIERFT", n_frequency=20, n_frequency_pattern={"down_proj": 30}, scaling=2.0,
                      random_loc_seed=777, target_modules=["q_proj", "up_proj", "down_proj"], exclude_modules=None,
                      init_weights=False, ifft2_norm="backward"),
    "randlora": dict(COMMON, peft_type="RANDLORA", r=3, randlora_alpha=6, target_modules=["q_proj", "v_proj", "up_proj", "down_proj"],
                     projection_prng_key=2, save_projection=True, randlora_dropout=0.0, sparse=False, very_sparse=False, init_weights=True),
}


SEEDS = {"vera": 300, "randlora": 301, "fourierft": 302}


def largest_shape(cfg):
    shapes = [dims(n)[::-1] for n in linear_names() if is_target(cfg, n)]  # (out, in)
    return tuple(max(s[i] for s in shapes) for i in range(2))


def vera_kaiming(shape, g):
    # peft/tuners/vera/model.py _kaiming_init: U(-b, b), b = sqrt(3) * sqrt(2) / sqrt(fan_in)
    b = math.sqrt(3.0) * math.sqrt(2.0) / math.sqrt(shape[1])
    return torch.empty(shape, dtype=torch.float32).uniform_(-b, b, generator=g)


def rand_kaiming(shape, g):
    # peft/tuners/randlora/model.py _kaiming_init: a bfloat16 tensor, kaiming_uniform_(a=sqrt(5), generator)
    t = torch.empty(shape, dtype=torch.bfloat16)
    if int(torch.__version__.split(".")[0]) >= 2:
        return torch.nn.init.kaiming_uniform_(t, a=math.sqrt(5), generator=g)
    # torch 1.x: torch 2's bfloat16 uniform_ from the same draws (see the module docstring)
    fan_in = shape[1] * math.prod(shape[2:])
    b = math.sqrt(3.0) * (math.sqrt(2.0 / (1 + math.sqrt(5) ** 2)) / math.sqrt(fan_in))
    v = torch.empty(shape, dtype=torch.float32).uniform_(-b, b, generator=g).to(torch.bfloat16)
    hi, lo = torch.tensor(b).to(torch.bfloat16), torch.tensor(-b).to(torch.bfloat16)
    return torch.where(v == hi, lo, v)


def vera_projections(cfg):
    out_l, in_l = largest_shape(cfg)
    g = torch.Generator().manual_seed(cfg["projection_prng_key"])
    return {"base_model.vera_A": vera_kaiming((cfg["r"], in_l), g), "base_model.vera_B": vera_kaiming((out_l, cfg["r"]), g)}


def make_vera(cfg, seed):
    t = vera_projections(cfg)
    g = torch.Generator().manual_seed(seed)
    for n in linear_names():
        if is_target(cfg, n):
            fi, fo = dims(n)
            t[f"{PREFIX}{n}.vera_lambda_b"] = torch.randn(fo, generator=g) * 0.5
            t[f"{PREFIX}{n}.vera_lambda_d"] = torch.randn(cfg["r"], generator=g)
    return {k: v.to(torch.float32).to(torch.float64) for k, v in t.items()}


def vera_delta(cfg, t, n):
    fi, fo = dims(n)
    A, B = t["base_model.vera_A"][:, :fi], t["base_model.vera_B"][:fo, :]
    lb, ld = t[f"{PREFIX}{n}.vera_lambda_b"], t[f"{PREFIX}{n}.vera_lambda_d"]
    return lb.view(-1, 1) * B @ (ld.view(-1, 1) * A)  # [out, in]


def vera_forward(cfg, t, n, x):
    fi, fo = dims(n)
    A, B = t["base_model.vera_A"][:, :fi], t["base_model.vera_B"][:fo, :]
    return t[f"{PREFIX}{n}.vera_lambda_b"] * ((t[f"{PREFIX}{n}.vera_lambda_d"] * (x @ A.T)) @ B.T)


def randlora_projections(cfg):
    out_l, in_l = largest_shape(cfg)
    mx, mn, r = max(out_l, in_l), min(out_l, in_l), cfg["r"]
    g = torch.Generator().manual_seed(cfg["projection_prng_key"])
    A = rand_kaiming((r, 1, mn), g)
    nb = math.ceil(mn / r)
    B = torch.cat([rand_kaiming((mx, 1, r), g) for _ in range(nb)], dim=1)
    return {"base_model.randlora_A": A / A.std(), "base_model.randlora_B": B / B.std()}


def make_randlora(cfg, seed):
    t, r = randlora_projections(cfg), cfg["r"]
    g = torch.Generator().manual_seed(seed)
    for n in linear_names():
        if is_target(cfg, n):
            fi, fo = dims(n)
            N = math.ceil(min(fi, fo) / r)
            t[f"{PREFIX}{n}.randlora_lambda"] = torch.randn(r, N, generator=g)
            t[f"{PREFIX}{n}.randlora_gamma"] = torch.randn(N, min(fi, fo), generator=g) * 0.1
    for n in linear_names():
        if is_target(cfg, n):
            t[f"{PREFIX}{n}.randlora_A"] = t["base_model.randlora_A"]
            t[f"{PREFIX}{n}.randlora_B"] = t["base_model.randlora_B"]
    return {k: v.to(torch.float32).to(torch.float64) for k, v in t.items()}


def randlora_factors(cfg, t, n):
    fi, fo = dims(n)
    r, mn, mx = cfg["r"], min(fi, fo), max(fi, fo)
    N = math.ceil(mn / r)
    A = t["base_model.randlora_A"][:, :N, :mn]
    B = t["base_model.randlora_B"][:mx, :N, :]
    lam, gam = t[f"{PREFIX}{n}.randlora_lambda"], t[f"{PREFIX}{n}.randlora_gamma"]
    uA = (lam[:, :, None] * A * gam[None]).flatten(end_dim=1)
    uB = B.flatten(start_dim=1)
    return (uA, uB) if mn == fi else (uB.T, uA.T)


def randlora_forward(cfg, t, n, x):
    first, second = randlora_factors(cfg, t, n)
    return cfg["randlora_alpha"] / cfg["r"] * ((x @ first.T) @ second.T)


def randlora_delta(cfg, t, n):
    first, second = randlora_factors(cfg, t, n)
    return cfg["randlora_alpha"] / cfg["r"] * (second @ first)


def fourierft_n(cfg, n):
    for k, v in (cfg.get("n_frequency_pattern") or {}).items():
        if re.match(rf"(.*\.)?({k})$", n):
            return v
    return cfg["n_frequency"]


def fourierft_indices(cfg, n):
    fi, fo = dims(n)
    f = torch.randperm(fo * fi, generator=torch.Generator().manual_seed(cfg["random_loc_seed"]))[: fourierft_n(cfg, n)]
    return f // fi, f % fi


def make_fourierft(cfg, seed):
    g = torch.Generator().manual_seed(seed)
    return {f"{PREFIX}{n}.fourierft_spectrum": torch.randn(fourierft_n(cfg, n), generator=g).to(torch.float32).to(torch.float64)
            for n in linear_names() if is_target(cfg, n)}


def fourierft_delta(cfg, t, n):
    fi, fo = dims(n)
    u, v = fourierft_indices(cfg, n)
    S = torch.zeros(fo, fi)
    S[u, v] = t[f"{PREFIX}{n}.fourierft_spectrum"]
    return torch.fft.ifft2(S).real * cfg["scaling"]


def fourierft_forward(cfg, t, n, x):
    return x @ fourierft_delta(cfg, t, n).T


METHODS = {"vera": (make_vera, vera_forward, vera_delta), "randlora": (make_randlora, randlora_forward, randlora_delta),
           "fourierft": (make_fourierft, fourierft_forward, fourierft_delta)}


def model_forward(base, cfg, extra, ids, mask):
    def lin(n, x):
        y = x @ base[f"{n}.weight"].T + base[f"{n}.bias"]
        return y + extra(n, x) if is_target(cfg, n) else y

    Bsz, T = ids.shape
    h = base["model.embed_tokens.weight"][ids].reshape(Bsz * T, H)
    for i in range(LAYERS):
        p = f"model.layers.{i}"
        h = h + lin(f"{p}.self_attn.v_proj", torch.tanh(lin(f"{p}.self_attn.q_proj", h)))
        h = h + lin(f"{p}.mlp.down_proj", torch.relu(lin(f"{p}.mlp.up_proj", h)))
    h = h.reshape(Bsz, T, H)
    pooled = (h * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True)
    return lin("classifier", pooled)


def main():
    base, _ = read_safetensors(BASE)
    ids, mask = inputs()
    for name, cfg in CASES.items():
        make, fwd, delta = METHODS[name]
        t = make(cfg, SEEDS[name])
        d = os.path.join(OUT, name)
        os.makedirs(d, exist_ok=True)
        write_safetensors(os.path.join(d, "adapter_model.safetensors"), t)
        with open(os.path.join(d, "adapter_config.json"), "w") as f:
            json.dump(cfg, f, indent=2, sort_keys=True)
            f.write("\n")
        unmerged = model_forward(base, cfg, lambda n, x: fwd(cfg, t, n, x), ids, mask)
        merged_w = dict(base)
        for n in linear_names():
            if is_target(cfg, n):
                merged_w[f"{n}.weight"] = base[f"{n}.weight"] + delta(cfg, t, n)
        merged = model_forward(merged_w, {"target_modules": []}, None, ids, mask)
        with open(os.path.join(d, "expected.json"), "w") as f:
            json.dump({"unmerged": flat(unmerged), "merged": flat(merged), "keys": {k: list(v.shape) for k, v in sorted(t.items())}}, f)
            f.write("\n")
        print(f"{name}: {len(t)} tensors, max |unmerged - merged| = {(unmerged - merged).abs().max():.2e}")


PROJECTIONS = {"vera": vera_projections, "randlora": randlora_projections}


def check(adapter_dir, out, regen=False):
    base, _ = read_safetensors(BASE)
    with open(os.path.join(adapter_dir, "adapter_config.json")) as f:
        cfg = json.load(f)
    t, meta = read_safetensors(os.path.join(adapter_dir, "adapter_model.safetensors"))
    name = cfg["peft_type"].lower()
    _, fwd, _ = METHODS[name]
    keys = {"vera": ["vera_lambda_b", "vera_lambda_d"], "randlora": ["randlora_lambda", "randlora_gamma"], "fourierft": ["fourierft_spectrum"]}[name]
    expected = {f"{PREFIX}{n}.{k}" for n in linear_names() if is_target(cfg, n) for k in keys}
    if cfg.get("save_projection"):
        expected |= {f"base_model.{name}_A", f"base_model.{name}_B"}
        if name == "randlora":
            expected |= {f"{PREFIX}{n}.randlora_{k}" for n in linear_names() if is_target(cfg, n) for k in "AB"}
    ids, mask = inputs()
    res = {"missing": sorted(expected - set(t)), "unexpected": sorted(set(t) - expected)}
    if regen and name in PROJECTIONS:
        # as PEFT with save_projection=False: the file's projections are ignored, PEFT draws its own
        own = {k: v.to(torch.float64) for k, v in PROJECTIONS[name](cfg).items()}
        res["stored_vs_regenerated"] = max(((t[k] - v).abs().max().item() for k, v in own.items() if k in t), default=None)
        t = {**{k: v for k, v in t.items() if not k.startswith("base_model.") or k.startswith(PREFIX)}, **own}
    res.update({"logits": flat(model_forward(base, cfg, lambda n, x: fwd(cfg, t, n, x), ids, mask)), "metadata": meta})
    with open(out, "w") as f:
        json.dump(res, f)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--check")
    ap.add_argument("--out")
    ap.add_argument("--regen", action="store_true")
    a = ap.parse_args()
    if a.check:
        check(a.check, a.out, a.regen)
    else:
        main()
