#!/usr/bin/env python3
"""Golden fixture for SG-LoRA's deterministic pieces in lorakit
(src/workflows/sg_lora/similarity.ts): the experts' weights for a new task,
w = softmax(cos(e, e_i) / tau), and the weighted merge of expert LoRAs,
delta_W = sum_i w_i * s_i * B_i @ A_i, with every other tensor (a task head)
sum_i w_i * t_i. The SG-LoRA paper's own code could not be read (the method
notes mark these as lorakit's definitions); the merge is the exact weighted
sum of the experts' delta_W, which PEFT's add_weighted_adapter 'cat' stores as
A = [w_i s_i A_i], B = [B_i] with scaling 1.

Inputs from this side (seeded torch.Generator, float64): 3 experts' description
embeddings and a query embedding (512-d), LoRA factors of two modules (r = 4,
alpha 8 and one expert with alpha 4, so the scalings differ) and a head.

Usage: /usr/bin/python3 tools/reference/sg_lora.py [out.json]
"""
import json
import os
import sys

import torch

torch.set_num_threads(1)
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(REPO, "test", "fixtures", "sg_lora.json")
D = torch.float64


def f32(t):
    return [float(str(x)) for x in t.detach().to(torch.float32).reshape(-1).numpy()]


def main():
    gen = torch.Generator().manual_seed(41)
    d, n, tau = 512, 3, 0.2
    E = torch.randn(n, d, generator=gen, dtype=D)
    q = E[1] * 0.5 + E[0] * 0.35 + torch.randn(d, generator=gen, dtype=D) * 0.8  # closest to expert 1, then 0
    # Embeddings go through float32 on lorakit's side: round here too.
    E, q = E.float().double(), q.float().double()
    cos = torch.nn.functional.cosine_similarity(q[None, :], E, dim=1)
    w = torch.softmax(cos / tau, dim=0)
    modules = {"m.q": (6, 5), "m.v": (7, 5)}
    r = 4
    alphas = [8.0, 8.0, 4.0]
    experts = []
    for i in range(n):
        t = {}
        for m, (out_f, in_f) in modules.items():
            t[f"base_model.model.{m}.lora_A.weight"] = (torch.randn(r, in_f, generator=gen, dtype=D) * 0.3).float()
            t[f"base_model.model.{m}.lora_B.weight"] = (torch.randn(out_f, r, generator=gen, dtype=D) * 0.3).float()
        t["base_model.model.classifier.weight"] = torch.randn(2, 5, generator=gen, dtype=D).float()
        experts.append(t)
    delta = {}
    for m in modules:
        delta[m] = sum(w[i] * (alphas[i] / r) * experts[i][f"base_model.model.{m}.lora_B.weight"].double() @ experts[i][f"base_model.model.{m}.lora_A.weight"].double() for i in range(n))
    head = sum(w[i] * experts[i]["base_model.model.classifier.weight"].double() for i in range(n))
    fixture = {
        "about": "tools/reference/sg_lora.py: softmax(cos/tau) expert weights and sum_i w_i s_i B_i A_i",
        "tau": tau, "r": r, "alphas": alphas, "modules": {m: list(s) for m, s in modules.items()},
        "embeddings": [f32(e) for e in E], "query": f32(q),
        "experts": [{k: {"shape": list(v.shape), "data": f32(v)} for k, v in t.items()} for t in experts],
        "cosines": [float(x) for x in cos], "weights": [float(x) for x in w],
        "delta": {m: [float(x) for x in v.reshape(-1)] for m, v in delta.items()},
        "head": [float(x) for x in head.reshape(-1)],
    }
    with open(OUT, "w") as f:
        json.dump(fixture, f)
    print(f"wrote {OUT}: weights {[round(float(x), 4) for x in w]}")


if __name__ == "__main__":
    main()
