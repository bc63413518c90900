#!/usr/bin/env python3
"""PyTorch peer of bench/causal_lm_step.ts: one LoRA causal-LM training step
(forward, loss, backward to LoRA A/B only, AdamW) on a Llama-shaped model with
random frozen weights. The model is the plain-PyTorch Llama of
tools/reference/hf_decoders.py (the oracle of the decoder tests), imported, not
copied. Prints one JSON line: {"torch", "ms_per_step" (median), "steps_ms", ...}.

Usage: /usr/bin/python3 bench/peer_llama_torch.py --threads 2 --batch 4 --seq 128 --steps 5 --warmup 2
"""
import argparse
import json
import math
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools", "reference"))

import torch  # noqa: E402
from hf_decoders import causal_lm_loss, llama_forward  # noqa: E402
from peer_memory import peak_rss_bytes, saved_for_backward_bytes  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("--threads", type=int, default=2)
p.add_argument("--batch", type=int, default=4)
p.add_argument("--seq", type=int, default=128)
p.add_argument("--steps", type=int, default=5)
p.add_argument("--warmup", type=int, default=2)
p.add_argument("--layers", type=int, default=12)
p.add_argument("--rank", type=int, default=8)
p.add_argument("--hidden", type=int, default=768)
p.add_argument("--heads", type=int, default=12)
p.add_argument("--kv-heads", type=int, default=4)
p.add_argument("--ffn", type=int, default=2048)
p.add_argument("--vocab", type=int, default=32000)
p.add_argument("--alpha", type=float, default=16)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)

cfg = {"model_type": "llama", "vocab_size": a.vocab, "hidden_size": a.hidden, "intermediate_size": a.ffn, "num_hidden_layers": a.layers,
       "num_attention_heads": a.heads, "num_key_value_heads": a.kv_heads, "max_position_embeddings": 1024, "rms_norm_eps": 1e-6,
       "rope_theta": 10000.0, "tie_word_embeddings": True}
H, I, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
kv = cfg["num_key_value_heads"] * H // cfg["num_attention_heads"]
W = {"model.embed_tokens.weight": torch.randn(V, H) * 0.02, "model.norm.weight": torch.ones(H)}
for i in range(a.layers):
    pre = f"model.layers.{i}"
    W[f"{pre}.input_layernorm.weight"] = torch.ones(H)
    W[f"{pre}.post_attention_layernorm.weight"] = torch.ones(H)
    for name, fin, fout in (("self_attn.q_proj", H, H), ("self_attn.k_proj", H, kv), ("self_attn.v_proj", H, kv), ("self_attn.o_proj", H, H),
                            ("mlp.gate_proj", H, I), ("mlp.up_proj", H, I), ("mlp.down_proj", I, H)):
        W[f"{pre}.{name}.weight"] = (torch.rand(fout, fin) * 2 - 1) * math.sqrt(3 / fin)


class Lora:
    def __init__(self):
        self.p = {}
        for i in range(a.layers):
            for m, fout in (("q_proj", H), ("v_proj", kv)):
                name = f"model.layers.{i}.self_attn.{m}"
                self.p[name] = (torch.nn.Parameter((torch.rand(a.rank, H) * 2 - 1) / math.sqrt(H)), torch.nn.Parameter(torch.zeros(fout, a.rank)))

    def apply(self, name, x, y):
        ab = self.p.get(name)
        if ab is None:
            return y
        return y + (a.alpha / a.rank) * (x @ ab[0].t()) @ ab[1].t()


lora = Lora()
params = [t for ab in lora.p.values() for t in ab]
opt = torch.optim.AdamW(params, lr=1e-4)
ids = torch.randint(3, V, (a.batch, a.seq))
mask = torch.ones(a.batch, a.seq)
labels = ids.clone()
labels[:, : a.seq // 4] = -100
times = []
for step in range(a.warmup + a.steps):
    t0 = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    loss = causal_lm_loss(llama_forward(W, cfg, ids, mask, lora), labels)
    loss.backward()
    opt.step()
    if step >= a.warmup:
        times.append((time.perf_counter() - t0) * 1000)
rss = peak_rss_bytes()
saved, saved_tensors = saved_for_backward_bytes(lambda: causal_lm_loss(llama_forward(W, cfg, ids, mask, lora), labels), [*W.values(), *params, ids, mask, labels])
opt.zero_grad(set_to_none=True)
print(json.dumps({"peak_rss_bytes": rss, "saved_bytes": saved, "saved_tensors": saved_tensors, "torch": torch.__version__, "threads": a.threads, "ms_per_step": statistics.median(times), "steps_ms": times,
                  "loss": float(loss), "trainable_params": sum(t.numel() for t in params),
                  "frozen_params": sum(t.numel() for t in W.values())}))
