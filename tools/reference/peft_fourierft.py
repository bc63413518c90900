#!/usr/bin/env python3
"""A FourierFT adapter "saved by PEFT" for lorakit to load: PEFT's semantics
(peft/tuners/fourierft/{config,model,layer}.py) in plain PyTorch on the tiny
model of peft_reference.py, independently of lorakit:
  locations  FourierFTLayer.set_indices: idx = torch.randperm(out*in,
             generator=torch.Generator().manual_seed(random_loc_seed))[:n_frequency],
             rows = idx // in, cols = idx % in (coefficient k at (rows[k], cols[k]));
  ΔW         get_delta_weight: dense[rows, cols] = spectrum;
             ΔW = Re(ifft2(dense, norm=ifft2_norm)) * scaling   ([out, in]);
  forward    base(x) + F.linear(x, ΔW);
  n per module  FourierFTModel._create_and_replace: the first key of
             n_frequency_pattern with re.match(rf".*\\.{key}$", name), else the
             module's own name, looked up in n_frequency_pattern, else n_frequency.
Writes test/fixtures/peft_fourierft/{adapter_config.json,
adapter_model.safetensors, expected.json (logits unmerged/merged, each
module's n and flat locations)}.

Usage: /usr/bin/python3 tools/reference/peft_fourierft.py
"""
import json
import os
import re

import torch

from peft_reference import FIXTURES, PREFIX, REPO, Adapted, dims, flat, inputs, is_target, linear_names, read_safetensors
from safetensors_file import write_safetensors

OUT = os.path.join(REPO, "test", "fixtures", "peft_fourierft")
torch.set_default_dtype(torch.float64)

CONFIG = {
    "auto_mapping": None, "base_model_name_or_path": "lorakit-tiny-reference", "bias": "none", "exclude_modules": None,
    "fan_in_fan_out": False, "inference_mode": True, "init_weights": False, "layers_pattern": None, "layers_to_transform": None,
    "modules_to_save": None, "n_frequency": 24, "n_frequency_pattern": {"up_proj": 40, "model.layers.1.mlp.down_proj": 10},
    "peft_type": "FOURIERFT", "random_loc_seed": 777, "revision": None, "scaling": 4.0, "ifft2_norm": "backward",
    "target_modules": ["q_proj", "v_proj", "up_proj", "down_proj"], "task_type": None,
}


def n_frequency(cfg, name):
    keys = list(cfg["n_frequency_pattern"])
    key = next(filter(lambda k: re.match(rf".*\.{k}$", name), keys), name)
    return cfg["n_frequency_pattern"].get(key, cfg["n_frequency"])


def locations(cfg, name):
    fi, fo = dims(name)
    idx = torch.randperm(fo * fi, generator=torch.Generator().manual_seed(cfg["random_loc_seed"]))[: n_frequency(cfg, name)]
    return idx // fi, idx % fi, idx


def delta(cfg, t, name):
    fi, fo = dims(name)
    rows, cols, _ = locations(cfg, name)
    dense = torch.zeros(fo, fi)
    dense[rows, cols] = t[f"{PREFIX}{name}.fourierft_spectrum"]
    return torch.fft.ifft2(dense, norm=cfg["ifft2_norm"]).real * cfg["scaling"]


class FourierFTAdapted(Adapted):
    def lin(self, name, x, merged):
        W, b = self.w[f"{name}.weight"], self.w[f"{name}.bias"]
        if name not in self.targets:
            return x @ W.T + b
        dW = delta(self.cfg, self.t, name)
        return x @ (W + dW).T + b if merged else x @ W.T + b + x @ dW.T


def main():
    base, _ = read_safetensors(os.path.join(FIXTURES, "model.safetensors"))
    ids, mask = inputs()
    g = torch.Generator().manual_seed(11)
    targets = [n for n in linear_names() if is_target(CONFIG, n)]
    t = {f"{PREFIX}{n}.fourierft_spectrum": torch.randn(n_frequency(CONFIG, n), generator=g).float().double() for n in targets}
    m = FourierFTAdapted(base, CONFIG, t)
    os.makedirs(OUT, exist_ok=True)
    write_safetensors(os.path.join(OUT, "adapter_model.safetensors"), t)
    with open(os.path.join(OUT, "adapter_config.json"), "w") as f:
        json.dump(CONFIG, f, indent=2, sort_keys=True)
        f.write("\n")
    unmerged, merged = m.forward(ids, mask), m.forward(ids, mask, True)
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump({"unmerged": flat(unmerged), "merged": flat(merged),
                   "modules": {n: {"n_frequency": n_frequency(CONFIG, n), "locations": locations(CONFIG, n)[2].tolist()} for n in targets}}, f)
        f.write("\n")
    print(f"{len(t)} modules, n = {[n_frequency(CONFIG, n) for n in targets]}, max |unmerged - merged| = {(unmerged - merged).abs().max():.2e}")


if __name__ == "__main__":
    main()
