#!/usr/bin/env python3
"""PEFT-semantics reference in plain PyTorch (no `peft`, no `transformers`).

Reproduces, independently of lorakit, what Hugging Face PEFT (0.20.x,
tuners/lora/{config,layer,dora}.py, utils/save_and_load.py, utils/other.py)
does with a LoRA adapter folder on a tiny model with Hugging Face-style module
names:

  model.embed_tokens                 Embedding(V, H)
  model.layers.{i}.self_attn.q_proj  Linear(H, H)
  model.layers.{i}.self_attn.v_proj  Linear(H, H)
  model.layers.{i}.mlp.up_proj       Linear(H, I)
  model.layers.{i}.mlp.down_proj     Linear(I, H)
  classifier                         Linear(H, C)

  h = E[ids];  per layer: h = h + v_proj(tanh(q_proj(h)));  h = h + down_proj(relu(up_proj(h)))
  logits = classifier(masked_mean(h))

Semantics reproduced: target_modules matching (regex fullmatch for a string,
exact-or-'.'-suffix for a list), rank_pattern / alpha_pattern keys matched with
(.*\\.)?(key)$, scaling alpha/r or alpha/sqrt(r) (use_rslora), y = base(x) +
s*B(A(x)), merge W += s*B@A, DoRA (magnitude = row norms of W + s*B@A in
[out, in]; y = base(x) + (m/||W+sBA|| - 1)*(x@W.T) + m/||W+sBA|| * s*B(A(x));
merge W = m/||W+sBA|| * (W + sBA)), bias="lora_only" (<module>.base_layer.bias),
modules_to_save (base_model.model.<module>.<param>), key names with the
adapter name removed, lora_magnitude_vector without '.weight'.

Modes:
  write  (default): writes test/fixtures/peft_ref/: model.safetensors (base),
         inputs.json, and one folder per case (adapter_config.json,
         adapter_model.safetensors, expected.json with unmerged and merged
         logits and the gradients of sum(logits * coef) w.r.t. each adapter
         tensor) -- adapters "written by PEFT" for lorakit to load.
  --check DIR --out FILE: loads the base model and the adapter folder DIR
         (e.g. written by lorakit) the way PEFT would, and writes the logits
         and the adapter's key -> shape map as JSON.

Usage: /usr/bin/python3 tools/reference/peft_reference.py [--check DIR --out FILE]
"""
import argparse
import json
import math
import os
import re
import struct

import torch

from safetensors_file import write_safetensors

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
FIXTURES = os.path.join(REPO, "test", "fixtures", "peft_ref")
PREFIX = "base_model.model."
V, H, I, C, LAYERS = 20, 8, 12, 3, 2

torch.set_default_dtype(torch.float64)


# ---- safetensors (format: u64 header length, JSON header, raw little-endian data) ----


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {})
    out = {}
    for k, v in header.items():
        assert v["dtype"] == "F32", f"{k}: dtype {v['dtype']}"
        a, b = v["data_offsets"]
        buf = bytearray(raw[8 + n + a:8 + n + b])
        out[k] = torch.frombuffer(buf, dtype=torch.float32).reshape(v["shape"]).to(torch.float64) if b > a else torch.zeros(v["shape"])
    return out, meta


# ---- the base model ----

def linear_names():
    names = []
    for i in range(LAYERS):
        p = f"model.layers.{i}"
        names += [f"{p}.self_attn.q_proj", f"{p}.self_attn.v_proj", f"{p}.mlp.up_proj", f"{p}.mlp.down_proj"]
    return names + ["classifier"]


def dims(name):
    if name == "classifier":
        return H, C
    if name.endswith("up_proj"):
        return H, I
    if name.endswith("down_proj"):
        return I, H
    return H, H


def make_base(seed=0):
    g = torch.Generator().manual_seed(seed)
    w = {"model.embed_tokens.weight": torch.randn(V, H, generator=g)}
    for n in linear_names():
        fi, fo = dims(n)
        w[f"{n}.weight"] = torch.randn(fo, fi, generator=g) / math.sqrt(fi)
        w[f"{n}.bias"] = torch.randn(fo, generator=g) * 0.1
    return w


# ---- PEFT's rules ----

def is_target(cfg, name):
    t = cfg["target_modules"]
    if isinstance(t, str):
        ok = re.fullmatch(t, name) is not None
    else:
        ok = name in t or any(name.endswith("." + k) for k in t)
    ex = cfg.get("exclude_modules")
    if ok and ex:
        if isinstance(ex, str):
            ok = re.fullmatch(ex, name) is None
        else:
            ok = not (name in ex or any(name.endswith("." + k) for k in ex))
    return ok and name not in (cfg.get("modules_to_save") or [])


def pattern_value(pattern, name, default):
    for k, v in (pattern or {}).items():
        if re.match(rf"(.*\.)?({k})$", name):
            return v
    return default


def site_cfg(cfg, name):
    r = pattern_value(cfg.get("rank_pattern"), name, cfg.get("r", 8))
    alpha = pattern_value(cfg.get("alpha_pattern"), name, cfg.get("lora_alpha", 8))
    s = alpha / math.sqrt(r) if cfg.get("use_rslora") else alpha / r
    return r, alpha, s


class Adapted:
    """The base model with one LoRA adapter attached (PEFT's forward)."""

    def __init__(self, base, cfg, tensors):
        self.w = dict(base)
        self.cfg = cfg
        self.t = tensors
        for m in cfg.get("modules_to_save") or []:
            for p in ("weight", "bias"):
                k = f"{PREFIX}{m}.{p}"
                if k in tensors:
                    self.w[f"{m}.{p}"] = tensors[k]
        self.targets = [n for n in linear_names() if is_target(cfg, n)]
        for n in self.targets:
            k = f"{PREFIX}{n}.base_layer.bias"
            if cfg.get("bias") == "lora_only" and k in tensors:
                self.w[f"{n}.bias"] = tensors[k]

    def lin(self, name, x, merged):
        W, b = self.w[f"{name}.weight"], self.w[f"{name}.bias"]
        if name not in self.targets:
            return x @ W.T + b
        r, alpha, s = site_cfg(self.cfg, name)
        A = self.t[f"{PREFIX}{name}.lora_A.weight"]
        B = self.t[f"{PREFIX}{name}.lora_B.weight"]
        assert A.shape == (r, W.shape[1]) and B.shape == (W.shape[0], r), name
        dora = self.cfg.get("use_dora", False)
        if merged:
            Wd = W + s * (B @ A)
            if dora:
                m = self.t[f"{PREFIX}{name}.lora_magnitude_vector"]
                Wd = (m / torch.linalg.norm(Wd, dim=1)).view(-1, 1) * Wd
            return x @ Wd.T + b
        result = x @ W.T + b
        lora = (x @ A.T) @ B.T
        if not dora:
            return result + s * lora
        m = self.t[f"{PREFIX}{name}.lora_magnitude_vector"]
        weight_norm = torch.linalg.norm(W + s * (B @ A), dim=1).detach()
        mag_norm_scale = (m / weight_norm).view(1, -1)
        base_result = result - b
        return result + (mag_norm_scale - 1) * base_result + mag_norm_scale * lora * s

    def forward(self, ids, mask, merged=False):
        Bsz, T = ids.shape
        h = self.w["model.embed_tokens.weight"][ids].reshape(Bsz * T, H)
        for i in range(LAYERS):
            p = f"model.layers.{i}"
            h = h + self.lin(f"{p}.self_attn.v_proj", torch.tanh(self.lin(f"{p}.self_attn.q_proj", h, merged)), merged)
            h = h + self.lin(f"{p}.mlp.down_proj", torch.relu(self.lin(f"{p}.mlp.up_proj", h, merged)), merged)
        h = h.reshape(Bsz, T, H)
        pooled = (h * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True)
        return self.lin("classifier", pooled, merged)


def inputs():
    ids = torch.tensor([[1, 5, 7, 2, 9], [3, 3, 11, 0, 0], [19, 4, 6, 8, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 1, 1, 1, 0]], dtype=torch.float64)
    return ids, mask


# ---- golden cases: adapters "trained in PEFT" (random, B != 0) ----

def full_config(**over):
    """adapter_config.json as PEFT 0.20 writes it (LoraConfig fields + PeftConfig fields)."""
    c = {
        "alpha_pattern": {}, "auto_mapping": None, "base_model_name_or_path": "lorakit-tiny-reference", "bias": "none",
        "corda_config": None, "eva_config": None, "exclude_modules": None, "fan_in_fan_out": False, "inference_mode": True,
        "init_lora_weights": True, "layer_replication": None, "layers_pattern": None, "layers_to_transform": None,
        "loftq_config": {}, "lora_alpha": 8, "lora_bias": False, "lora_dropout": 0.0, "megatron_config": None,
        "megatron_core": "megatron.core", "modules_to_save": None, "peft_type": "LORA", "qalora_group_size": 16, "r": 8,
        "rank_pattern": {}, "revision": None, "runtime_config": {"ephemeral_gpu_offload": False}, "target_modules": [],
        "target_parameters": None, "task_type": None, "trainable_token_indices": None, "use_dora": False, "use_qalora": False,
        "use_rslora": False,
    }
    c.update(over)
    return c


CASES = {
    "lora": full_config(r=4, lora_alpha=8, target_modules=["v_proj", "q_proj"]),
    "rslora": full_config(r=4, lora_alpha=6, use_rslora=True, target_modules=["q_proj", "v_proj", "up_proj", "down_proj"]),
    "dora": full_config(r=2, lora_alpha=4, use_dora=True, target_modules=["q_proj", "up_proj"]),
    "modules_to_save": full_config(r=2, lora_alpha=4, target_modules=["v_proj"], modules_to_save=["classifier"], task_type="SEQ_CLS"),
    "rank_pattern": full_config(r=2, lora_alpha=4, target_modules=r".*\.(q_proj|down_proj)",
                                rank_pattern={"model.layers.1.self_attn.q_proj": 3, "down_proj": 5},
                                alpha_pattern={"layers.0.self_attn.q_proj": 7}),
    "lora_only_bias": full_config(r=2, lora_alpha=2, target_modules=["up_proj"], bias="lora_only"),
}


def make_adapter(base, cfg, seed):
    g = torch.Generator().manual_seed(seed)
    t = {}
    for n in linear_names():
        if not is_target(cfg, n):
            continue
        fi, fo = dims(n)
        r, _, s = site_cfg(cfg, n)
        A = torch.randn(r, fi, generator=g) / math.sqrt(fi)
        B = torch.randn(fo, r, generator=g) * 0.3
        t[f"{PREFIX}{n}.lora_A.weight"] = A
        t[f"{PREFIX}{n}.lora_B.weight"] = B
        if cfg.get("use_dora"):
            W = base[f"{n}.weight"]
            norm = torch.linalg.norm(W + s * (B @ A), dim=1)
            t[f"{PREFIX}{n}.lora_magnitude_vector"] = norm * (1 + 0.2 * torch.randn(fo, generator=g))
        if cfg.get("bias") == "lora_only":
            t[f"{PREFIX}{n}.base_layer.bias"] = base[f"{n}.bias"] + 0.5 * torch.randn(fo, generator=g)
    for m in cfg.get("modules_to_save") or []:
        t[f"{PREFIX}{m}.weight"] = base[f"{m}.weight"] + 0.3 * torch.randn(*base[f"{m}.weight"].shape, generator=g)
        t[f"{PREFIX}{m}.bias"] = base[f"{m}.bias"] + 0.3 * torch.randn(*base[f"{m}.bias"].shape, generator=g)
    # float32 on disk: compute the expectations from the rounded values
    return {k: v.to(torch.float32).to(torch.float64) for k, v in t.items()}


def flat(t):
    return [float(f"{x:.9g}") for x in t.detach().reshape(-1).tolist()]


def write_fixtures():
    os.makedirs(FIXTURES, exist_ok=True)
    base = {k: v.to(torch.float32).to(torch.float64) for k, v in make_base().items()}
    write_safetensors(os.path.join(FIXTURES, "model.safetensors"), base)
    ids, mask = inputs()
    base_logits = Adapted(base, full_config(target_modules=["nothing"]), {}).forward(ids, mask)
    with open(os.path.join(FIXTURES, "inputs.json"), "w") as f:
        json.dump({"input_ids": ids.tolist(), "attention_mask": mask.tolist(), "base_logits": flat(base_logits),
                   "config": {"vocab": V, "hidden": H, "intermediate": I, "labels": C, "layers": LAYERS}}, f)
        f.write("\n")
    for i, (name, cfg) in enumerate(CASES.items()):
        d = os.path.join(FIXTURES, name)
        os.makedirs(d, exist_ok=True)
        t = make_adapter(base, cfg, 100 + i)
        write_safetensors(os.path.join(d, "adapter_model.safetensors"), t)
        with open(os.path.join(d, "adapter_config.json"), "w") as f:
            json.dump(cfg, f, indent=2, sort_keys=True)
            f.write("\n")
        m = Adapted(base, cfg, t)
        exp = {"unmerged": flat(m.forward(ids, mask)), "merged": flat(m.forward(ids, mask, merged=True)),
               "keys": {k: list(v.shape) for k, v in sorted(t.items())}}
        # Gradients of loss = sum(logits * coef) w.r.t. every adapter tensor (DoRA: norm detached, as PEFT).
        for v in t.values():
            v.requires_grad_(True)
        logits = Adapted(base, cfg, t).forward(ids, mask)
        coef = torch.arange(logits.numel(), dtype=torch.float64).reshape(logits.shape) / logits.numel() - 0.5
        (logits * coef).sum().backward()
        exp["grads"] = {k: flat(v.grad) for k, v in sorted(t.items())}
        for v in t.values():
            v.requires_grad_(False)
        with open(os.path.join(d, "expected.json"), "w") as f:
            json.dump(exp, f)
            f.write("\n")
        print(f"{name}: {len(t)} tensors, max |unmerged - merged| = {(m.forward(ids, mask) - m.forward(ids, mask, True)).abs().max():.2e}")


def check(adapter_dir, out):
    base, _ = read_safetensors(os.path.join(FIXTURES, "model.safetensors"))
    with open(os.path.join(adapter_dir, "adapter_config.json")) as f:
        cfg = json.load(f)
    t, meta = read_safetensors(os.path.join(adapter_dir, "adapter_model.safetensors"))
    ids, mask = inputs()
    m = Adapted(base, cfg, t)
    # PEFT's load: every adapter key must belong to an adapted module or modules_to_save (no unexpected keys),
    # and every adapted module must have its tensors (no missing keys).
    expected = set()
    for n in m.targets:
        expected |= {f"{PREFIX}{n}.lora_A.weight", f"{PREFIX}{n}.lora_B.weight"}
        if cfg.get("use_dora"):
            expected.add(f"{PREFIX}{n}.lora_magnitude_vector")
        if cfg.get("bias") == "lora_only":
            expected.add(f"{PREFIX}{n}.base_layer.bias")
    for mm in cfg.get("modules_to_save") or []:
        expected |= {f"{PREFIX}{mm}.weight", f"{PREFIX}{mm}.bias"}
    res = {"logits": flat(m.forward(ids, mask)), "merged": flat(m.forward(ids, mask, True)), "metadata": meta,
           "missing": sorted(expected - set(t)), "unexpected": sorted(set(t) - expected),
           "keys": {k: list(v.shape) for k, v in sorted(t.items())}}
    with open(out, "w") as f:
        json.dump(res, f)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--check")
    ap.add_argument("--out")
    a = ap.parse_args()
    if a.check:
        check(a.check, a.out)
    else:
        write_fixtures()
