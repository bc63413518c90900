#!/usr/bin/env python3
"""Golden fixture for bench/bert_like.ts (the model of the training benchmark).

Builds a tiny instance of the PyTorch peer's own model (Encoder, Layer and
LoraLinear from ../shared/bench/peer_torch.py, imported, not copied, so the
fixture checks lorakit against the exact module the benchmark compares with),
randomizes every tensor from a fixed seed (LayerNorm scales/biases and LoRA B
too, so that no gradient is trivially zero), runs it in float64 and writes
test/fixtures/bert_like_golden.json:

  config       tiny shapes (layers, hidden, heads, ffn, seq, vocab, rank, alpha, classes)
  weights      frozen tensors under Hugging Face BERT names ({shape, data})
  params       trainable tensors under PEFT names (lora_A/lora_B of query and
               value) and classifier.weight / classifier.bias
  cases        inputs (ids, float mask with padding, labels, T ≤ seq) and the
               expected logits, loss and gradient of every trainable tensor

Usage: /usr/bin/python3 tools/reference/bert_like_golden.py [out.json]
"""
import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "..", "shared", "bench"))
import peer_torch  # noqa: E402  (the benchmark's PyTorch model)
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

CFG = dict(layers=2, hidden=16, heads=2, ffn=32, seq=6, vocab=40, rank=4, alpha=8.0, classes=3)
PEFT = "base_model.model."


def flat(t):
    return [float(f"{x:.9g}") for x in t.detach().reshape(-1).tolist()]


def names(model):
    """peer module path -> (kind, lorakit name)."""
    out = {
        "emb.weight": ("w", "embeddings.word_embeddings.weight"),
        "pos.weight": ("w", "embeddings.position_embeddings.weight"),
        "ln.weight": ("w", "embeddings.LayerNorm.weight"),
        "ln.bias": ("w", "embeddings.LayerNorm.bias"),
        "head.weight": ("p", "classifier.weight"),
        "head.bias": ("p", "classifier.bias"),
    }
    sites = dict(q="attention.self.query", k="attention.self.key", v="attention.self.value",
                 o="attention.output.dense", f1="intermediate.dense", f2="output.dense",
                 ln1="attention.output.LayerNorm", ln2="output.LayerNorm")
    for i in range(len(model.layers)):
        for short, hf in sites.items():
            p = f"encoder.layer.{i}.{hf}"
            if short in ("q", "v"):
                out[f"layers.{i}.{short}.base.weight"] = ("w", f"{p}.weight")
                out[f"layers.{i}.{short}.base.bias"] = ("w", f"{p}.bias")
                out[f"layers.{i}.{short}.A"] = ("p", f"{PEFT}{p}.lora_A.weight")
                out[f"layers.{i}.{short}.B"] = ("p", f"{PEFT}{p}.lora_B.weight")
            else:
                out[f"layers.{i}.{short}.weight"] = ("w", f"{p}.weight")
                out[f"layers.{i}.{short}.bias"] = ("w", f"{p}.bias")
    return out


def main():
    out_path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(REPO, "test", "fixtures", "bert_like_golden.json")
    torch.manual_seed(1234)
    a = argparse.Namespace(**CFG)
    model = peer_torch.Encoder(a).double()
    gen = torch.Generator().manual_seed(99)
    with torch.no_grad():
        for n, prm in model.named_parameters():
            if n.endswith(".B") or ".ln" in n or n.startswith("ln."):
                # nonzero LoRA B (else every lora_A gradient is 0) and non-trivial LayerNorms
                base = 1.0 if n.endswith("weight") and "ln" in n else 0.0
                prm.copy_(base + 0.3 * torch.randn(prm.shape, generator=gen, dtype=torch.float64))
            # round every tensor to float32 so both sides start from identical values
            prm.copy_(prm.float().double())
    mapping = names(model)
    params = dict(model.named_parameters())
    assert set(params) == set(mapping), sorted(set(params) ^ set(mapping))

    cases = []
    for name, batch, T, pad in (("full", 3, CFG["seq"], [0, 2, 4]), ("short", 2, CFG["seq"] - 2, [1, 0])):
        ids = torch.randint(0, a.vocab, (batch, T), generator=gen)
        mask = torch.ones(batch, T, dtype=torch.float64)
        for b, n in enumerate(pad):
            if n:
                mask[b, T - n:] = 0
        labels = torch.randint(0, a.classes, (batch,), generator=gen)
        model.zero_grad(set_to_none=True)
        logits = model(ids, mask)
        loss = F.cross_entropy(logits, labels)
        loss.backward()
        grads = {}
        for n, prm in params.items():
            kind, key = mapping[n]
            if kind == "p":
                grads[key] = flat(prm.grad)
        cases.append(dict(name=name, batch=batch, T=T, input_ids=ids.reshape(-1).tolist(), attention_mask=flat(mask),
                          labels=labels.tolist(), logits=flat(logits), loss=float(loss), grads=grads))

    weights, trainable = {}, {}
    for n, prm in params.items():
        kind, key = mapping[n]
        (weights if kind == "w" else trainable)[key] = dict(shape=list(prm.shape), data=flat(prm))
    doc = dict(
        about="tools/reference/bert_like_golden.py: peer_torch.Encoder (float64) on a tiny config; "
              "LoRA on query/value, scaling alpha/rank; weights float32-representable",
        torch=torch.__version__, config=CFG, weights=weights, params=trainable, cases=cases)
    with open(out_path, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
    print(f"wrote {out_path} ({os.path.getsize(out_path)} bytes)")


if __name__ == "__main__":
    main()
