#!/usr/bin/env python3
"""PyTorch peer for lorakit's training benchmarks.

A BERT-style post-LN encoder (random weights, frozen) with LoRA on the query
and value projections and a trainable classification head; one training step
= forward, cross-entropy loss, backward, AdamW update. Prints one JSON line:
{"peer":"torch", "ms_per_step": median, "tokens_per_s": ..., "peak_rss_bytes",
"saved_bytes" (autograd's saved tensors of one step), ...}.

A copy of ../shared/bench/peer_torch.py (the same model and step) that also
reports memory (bench/peer_memory.py); the benches run this one.

Same shapes and the same LoRA placement must be used on the lorakit side, and
both must run in one command so the ratio is fair on a noisy machine.

Setup (Debian): apt-get install -y python3-torch libopenblas0-pthread
(without OpenBLAS, Debian's torch uses the reference BLAS and is ~30x slower).
Run with /usr/bin/python3.

  /usr/bin/python3 peer_torch.py --layers 12 --hidden 768 --heads 12 --ffn 3072 \
      --seq 128 --batch 8 --rank 8 --steps 10 --threads 2
"""
import argparse, json, math, os, sys, time

# Debian's torch runs matmul on the system OpenBLAS, whose own thread pool ignores
# torch.set_num_threads: pin it before torch loads, or a "1 thread" run uses 2.
_t = next((sys.argv[i + 1] for i, a in enumerate(sys.argv[:-1]) if a == "--threads"), "2")
os.environ.setdefault("OPENBLAS_NUM_THREADS", _t)
import torch
import torch.nn as nn
from peer_memory import peak_rss_bytes, saved_for_backward_bytes
import torch.nn.functional as F


class LoraLinear(nn.Module):
    def __init__(self, base: nn.Linear, r: int, alpha: float):
        super().__init__()
        self.base = base
        self.A = nn.Parameter(torch.empty(r, base.in_features))
        self.B = nn.Parameter(torch.zeros(base.out_features, r))
        nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))
        self.s = alpha / r

    def forward(self, x):
        return self.base(x) + (x @ self.A.t() @ self.B.t()) * self.s


class Layer(nn.Module):
    def __init__(self, h, heads, ffn, r, alpha):
        super().__init__()
        self.heads = heads
        self.q = LoraLinear(nn.Linear(h, h), r, alpha)
        self.k = nn.Linear(h, h)
        self.v = LoraLinear(nn.Linear(h, h), r, alpha)
        self.o = nn.Linear(h, h)
        self.ln1 = nn.LayerNorm(h, eps=1e-12)
        self.f1 = nn.Linear(h, ffn)
        self.f2 = nn.Linear(ffn, h)
        self.ln2 = nn.LayerNorm(h, eps=1e-12)

    def forward(self, x, mask_bias):
        b, t, h = x.shape
        d = h // self.heads
        split = lambda y: y.view(b, t, self.heads, d).transpose(1, 2)
        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        att = (q @ k.transpose(-1, -2)) / math.sqrt(d) + mask_bias
        y = (att.softmax(-1) @ v).transpose(1, 2).reshape(b, t, h)
        x = self.ln1(x + self.o(y))
        return self.ln2(x + self.f2(F.gelu(self.f1(x))))


class Encoder(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.emb = nn.Embedding(a.vocab, a.hidden)
        self.pos = nn.Embedding(a.seq, a.hidden)
        self.ln = nn.LayerNorm(a.hidden, eps=1e-12)
        self.layers = nn.ModuleList(
            Layer(a.hidden, a.heads, a.ffn, a.rank, a.alpha) for _ in range(a.layers))
        self.head = nn.Linear(a.hidden, a.classes)

    def forward(self, ids, mask):
        x = self.ln(self.emb(ids) + self.pos.weight[: ids.shape[1]])
        mask_bias = (1.0 - mask[:, None, None, :].float()) * -1e4
        for layer in self.layers:
            x = layer(x, mask_bias)
        return self.head(x[:, 0])


def main():
    p = argparse.ArgumentParser()
    for name, val in dict(layers=12, hidden=768, heads=12, ffn=3072, seq=128, batch=8,
                          rank=8, vocab=30522, classes=2, steps=10, warmup=2, threads=2).items():
        p.add_argument("--" + name, type=int, default=val)
    p.add_argument("--alpha", type=float, default=16.0)
    a = p.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(a.threads)
    model = Encoder(a)
    trainable = []
    for n, prm in model.named_parameters():
        prm.requires_grad = (".A" in n or ".B" in n or n.startswith("head."))
        if prm.requires_grad:
            trainable.append(prm)
    opt = torch.optim.AdamW(trainable, lr=1e-4)
    ids = torch.randint(0, a.vocab, (a.batch, a.seq))
    mask = torch.ones(a.batch, a.seq, dtype=torch.long)
    labels = torch.randint(0, a.classes, (a.batch,))

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(ids, mask), labels)
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(a.warmup):
        step()
    times = []
    for _ in range(a.steps):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    rss = peak_rss_bytes()  # before the counting step below (it keeps nothing more alive)
    saved, saved_tensors = saved_for_backward_bytes(lambda: F.cross_entropy(model(ids, mask), labels),
                                                    [*model.parameters(), ids, mask, labels])
    opt.zero_grad(set_to_none=True)
    times.sort()
    med = times[len(times) // 2]
    print(json.dumps(dict(peer="torch", torch=torch.__version__, threads=a.threads,
                          layers=a.layers, hidden=a.hidden, seq=a.seq, batch=a.batch,
                          rank=a.rank, ms_per_step=round(med * 1e3, 2),
                          tokens_per_s=round(a.batch * a.seq / med, 1),
                          trainable_params=sum(x.numel() for x in trainable),
                          peak_rss_bytes=rss, saved_bytes=saved, saved_tensors=saved_tensors)))


if __name__ == "__main__":
    main()
