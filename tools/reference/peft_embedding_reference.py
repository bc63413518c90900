#!/usr/bin/env python3
"""PEFT's LoRA on embedding layers (peft/tuners/lora/layer.py, class Embedding)
in plain PyTorch, on the tiny Hugging Face fixture models of
tools/reference/hf_bert_family.py (BERT) and hf_decoders.py (GPT-2, Llama).

What PEFT does with an nn.Embedding target (reproduced here, independently of
lorakit):

  keys     base_model.model.<module>.lora_embedding_A  [r, num_embeddings]
           base_model.model.<module>.lora_embedding_B  [embedding_dim, r]
           (no '.weight' suffix, adapter name removed)
  forward  y = E[ids] + (F.embedding(ids, A^T, padding_idx) @ B^T) * s
           (no dropout; padding_idx of the base nn.Embedding: BERT's pad id,
           none for GPT-2's wte, Llama's pad_token_id when set)
  merge    E += s * (B @ A)^T
  scaling  lora_alpha / r, lora_alpha / sqrt(r) with use_rslora, rank_pattern /
           alpha_pattern per module as for linear layers

Tied heads (GPT-2's lm_head = wte; Llama only with tie_word_embeddings): PEFT
replaces the embedding module by a wrapper, and lm_head keeps reading the base
Parameter, so the unmerged adapter does not touch the head; merging writes into
that shared Parameter, so the merged head reads E + dE. Merged and unmerged
logits of a tied model therefore differ, by PEFT's own definition.

Modes:
  write (default): test/fixtures/peft_embedding/<case>/ with
         adapter_config.json, adapter_model.safetensors ("written by PEFT":
         random non-zero A and B on the embedding and on some linear modules)
         and expected.json: unmerged and merged outputs, the key -> shape map,
         the loss and d loss / d every adapter tensor.
  --check DIR --case NAME --out FILE: loads the adapter folder DIR (e.g.
         written by lorakit) onto the case's base model the way PEFT would and
         writes its unmerged/merged outputs, its key -> shape map and
         missing/unexpected keys as JSON.

Usage: /usr/bin/python3 tools/reference/peft_embedding_reference.py [--check DIR --case NAME --out FILE]
"""
import argparse
import json
import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

import hf_bert_family as hb
import hf_decoders as hd
from peft_reference import flat, full_config, is_target, read_safetensors, site_cfg
from safetensors_file import write_safetensors

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
HF = os.path.join(REPO, "test", "fixtures", "hf")
OUT = os.path.join(REPO, "test", "fixtures", "peft_embedding")
PREFIX = "base_model.model."

torch.set_default_dtype(torch.float64)

# model fixture, embedding module, its padding_idx, linear modules of the model (name -> (in, out))
CASES = {
    "bert": dict(model="bert", embedding="bert.embeddings.word_embeddings",
                 config=full_config(r=4, lora_alpha=8, target_modules=["word_embeddings", "query"], task_type="SEQ_CLS")),
    "gpt2": dict(model="gpt2-tiny", embedding="transformer.wte",
                 config=full_config(r=4, lora_alpha=6, use_rslora=True, target_modules=["wte", "c_attn"], task_type="CAUSAL_LM")),
    "llama": dict(model="llama-tiny", embedding="model.embed_tokens",
                  config=full_config(r=4, lora_alpha=8, target_modules=["embed_tokens", "q_proj", "v_proj"],
                                     rank_pattern={"embed_tokens": 6}, alpha_pattern={"embed_tokens": 3}, task_type="CAUSAL_LM")),
}


def scaling(cfg, name):
    """(r, s) of a module: PEFT's rank/alpha patterns and rsLoRA, as for linear layers."""
    r, _, s = site_cfg(cfg, name)
    return r, s


# ---- the base models (the committed HF fixture folders) ----

class Base:
    def __init__(self, case):
        spec = CASES[case]
        self.name = case
        self.dir = os.path.join(HF, spec["model"])
        with open(os.path.join(self.dir, "config.json")) as f:
            self.cfg = json.load(f)
        with open(os.path.join(self.dir, "golden.json")) as f:
            self.gold = json.load(f)
        self.W, _ = read_safetensors(os.path.join(self.dir, "model.safetensors"))
        self.embedding = spec["embedding"]
        E = self.W[f"{self.embedding}.weight"]
        self.vocab, self.dim = E.shape
        # nn.Embedding's padding_idx as transformers builds it: BERT/Llama pad_token_id, GPT-2 none.
        self.padding_idx = None if case == "gpt2" else self.cfg.get("pad_token_id")
        self.linears = self._linears()

    def _linears(self):
        out = {}
        for k, v in self.W.items():
            if not k.endswith(".weight") or v.dim() != 2 or k == f"{self.embedding}.weight":
                continue
            m = k[: -len(".weight")]
            if "embeddings" in m or m.endswith("wpe") or m == "lm_head":
                continue
            out[m] = (v.shape[0], v.shape[1]) if self.name == "gpt2" else (v.shape[1], v.shape[0])  # GPT-2 Conv1D: [in, out]
        return out

    def inputs(self):
        ids = torch.tensor(self.gold["input_ids"])
        mask = torch.tensor(self.gold["attention_mask"], dtype=torch.float64)
        if self.padding_idx is not None:
            ids[0, 3] = self.padding_idx  # an attended token at padding_idx: its A column gets no gradient in PEFT
        return ids, mask

    def expected_keys(self, cfg):
        keys = {}
        if is_target(cfg, self.embedding):
            r, _ = scaling(cfg, self.embedding)
            keys[f"{PREFIX}{self.embedding}.lora_embedding_A"] = [r, self.vocab]
            keys[f"{PREFIX}{self.embedding}.lora_embedding_B"] = [self.dim, r]
        for m, (fin, fout) in self.linears.items():
            if is_target(cfg, m):
                r, _ = scaling(cfg, m)
                keys[f"{PREFIX}{m}.lora_A.weight"] = [r, fin]
                keys[f"{PREFIX}{m}.lora_B.weight"] = [fout, r]
        return keys

    # -- outputs: BERT classification logits + CE loss; decoders LM logits + causal-LM loss
    def run(self, cfg, t, merged):
        ids, mask = self.inputs()
        if self.name == "bert":
            logits = self._bert(cfg, t, merged, ids, mask)
            return logits, F.cross_entropy(logits, torch.tensor(self.gold["labels"]))
        fwd = hd.gpt2_forward if self.name == "gpt2" else hd.llama_forward
        W = dict(self.W)
        lora = LinearLoras(cfg, t, {m for m in self.linears if is_target(cfg, m)})
        if merged:
            for k, v in merge(self, cfg, t).items():
                W[k] = v
            lora = None
        elif is_target(cfg, self.embedding):
            W[f"{self.embedding}.weight"] = PeftEmbeddingTable(self, cfg, t)
        logits = fwd(W, self.cfg, ids, mask.float(), lora)
        labels = torch.tensor(self.gold["labels"])
        return logits, hd.causal_lm_loss(logits, labels)

    def _bert(self, cfg, t, merged, ids, mask):
        model = hb.BertForSequenceClassification(self.cfg)
        W = dict(self.W)
        if merged:
            W.update(merge(self, cfg, t))
        model.load_state_dict(W, strict=True)
        model.eval()
        if not merged:
            for m in self.linears:
                if is_target(cfg, m):
                    mod = model.get_submodule(m)
                    mod.lora_A = t[f"{PREFIX}{m}.lora_A.weight"]
                    mod.lora_B = t[f"{PREFIX}{m}.lora_B.weight"]
                    mod.lora_scale = scaling(cfg, m)[1]
            if is_target(cfg, self.embedding):
                emb = model.bert.embeddings
                emb.word_embeddings = PeftEmbedding(emb.word_embeddings, self, cfg, t)
        tt = torch.tensor(self.gold["token_type_ids"])
        logits, _, _ = model(ids, mask, tt)
        return logits


def lora_delta_lookup(base, cfg, t, ids):
    """PEFT Embedding.forward's adapter term: F.embedding(ids, A^T, padding_idx) @ B^T * s."""
    A = t[f"{PREFIX}{base.embedding}.lora_embedding_A"]
    B = t[f"{PREFIX}{base.embedding}.lora_embedding_B"]
    _, s = scaling(cfg, base.embedding)
    return (F.embedding(ids, A.t(), padding_idx=base.padding_idx) @ B.t()) * s


class PeftEmbedding(nn.Module):
    """lora.Embedding around an nn.Embedding (unmerged)."""

    def __init__(self, emb, base, cfg, t):
        super().__init__()
        self.emb, self.base, self.cfg, self.t = emb, base, cfg, t

    def forward(self, ids):
        return self.emb(ids) + lora_delta_lookup(self.base, self.cfg, self.t, ids)


class PeftEmbeddingTable:
    """What hf_decoders' W['<embedding>.weight'] stands for once PEFT wraps the embedding module:
    indexing with ids is lora.Embedding's forward; the tied lm_head (`.t()`) reads the base Parameter."""

    def __init__(self, base, cfg, t):
        self.E = base.W[f"{base.embedding}.weight"]
        self.base, self.cfg, self.tensors = base, cfg, t

    def __getitem__(self, ids):
        return F.embedding(ids, self.E, padding_idx=self.base.padding_idx) + lora_delta_lookup(self.base, self.cfg, self.tensors, ids)

    def t(self):
        return self.E.t()


class LinearLoras:
    """hf_decoders' `lora.apply(name, x, y)` hook with per-module r / alpha: y + s * (x A^T) B^T."""

    def __init__(self, cfg, t, targets):
        self.cfg, self.t, self.targets = cfg, t, targets

    def apply(self, name, x, y):
        if name not in self.targets:
            return y
        A, B = self.t[f"{PREFIX}{name}.lora_A.weight"], self.t[f"{PREFIX}{name}.lora_B.weight"]
        return y + scaling(self.cfg, name)[1] * (x @ A.t()) @ B.t()


def merge(base, cfg, t):
    """PEFT merge: linear W += s*B@A (Conv1D: transposed); embedding E += s*(B@A)^T. Returns the changed tensors."""
    out = {}
    for m in base.linears:
        if is_target(cfg, m):
            d = scaling(cfg, m)[1] * (t[f"{PREFIX}{m}.lora_B.weight"] @ t[f"{PREFIX}{m}.lora_A.weight"])
            out[f"{m}.weight"] = base.W[f"{m}.weight"] + (d.t() if base.name == "gpt2" else d)
    e = base.embedding
    if is_target(cfg, e):
        d = scaling(cfg, e)[1] * (t[f"{PREFIX}{e}.lora_embedding_B"] @ t[f"{PREFIX}{e}.lora_embedding_A"])
        out[f"{e}.weight"] = base.W[f"{e}.weight"] + d.t()
    return out


def make_adapter(base, cfg, seed):
    g = torch.Generator().manual_seed(seed)
    t = {}
    for k, shape in base.expected_keys(cfg).items():
        fan = shape[1] if k.endswith("lora_A.weight") else 8
        t[k] = torch.randn(*shape, generator=g) * (1.0 / math.sqrt(fan))
    return {k: v.to(torch.float32).to(torch.float64) for k, v in t.items()}  # float32 on disk


def outputs(base, cfg, t, grads):
    res = {}
    for v in t.values():
        v.requires_grad_(grads)
    logits, loss = base.run(cfg, t, merged=False)
    if grads:
        loss.backward()
        res["grads"] = {k: flat(v.grad) for k, v in sorted(t.items())}
        for v in t.values():
            v.grad = None
            v.requires_grad_(False)
    with torch.no_grad():
        merged, merged_loss = base.run(cfg, t, merged=True)
    res.update(unmerged=flat(logits), merged=flat(merged), loss=float(loss), merged_loss=float(merged_loss))
    return res


def write_fixtures():
    for i, (case, spec) in enumerate(CASES.items()):
        base = Base(case)
        cfg = dict(spec["config"], base_model_name_or_path=f"test/fixtures/hf/{spec['model']}")
        d = os.path.join(OUT, case)
        os.makedirs(d, exist_ok=True)
        t = make_adapter(base, cfg, 200 + i)
        write_safetensors(os.path.join(d, "adapter_model.safetensors"), t)
        with open(os.path.join(d, "adapter_config.json"), "w") as f:
            json.dump(cfg, f, indent=2, sort_keys=True)
            f.write("\n")
        exp = outputs(base, cfg, t, grads=True)
        exp["keys"] = {k: list(v.shape) for k, v in sorted(t.items())}
        exp["input_ids"] = base.inputs()[0].tolist()
        exp["padding_idx"] = base.padding_idx
        with open(os.path.join(d, "expected.json"), "w") as f:
            json.dump(exp, f)
            f.write("\n")
        un, me = torch.tensor(exp["unmerged"]), torch.tensor(exp["merged"])
        print(f"{case}: {len(t)} tensors, loss {exp['loss']:.5f}, max |unmerged - merged| = {(un - me).abs().max():.2e}")


def check(adapter_dir, case, out):
    base = Base(case)
    with open(os.path.join(adapter_dir, "adapter_config.json")) as f:
        cfg = json.load(f)
    t, meta = read_safetensors(os.path.join(adapter_dir, "adapter_model.safetensors"))
    expected = base.expected_keys(cfg)
    res = outputs(base, cfg, {k: v for k, v in t.items() if k in expected}, grads=False)
    res.update(metadata=meta, missing=sorted(set(expected) - set(t)), unexpected=sorted(set(t) - set(expected)),
               keys={k: list(v.shape) for k, v in sorted(t.items())},
               wrong_shapes=sorted(k for k, v in t.items() if k in expected and list(v.shape) != expected[k]))
    with open(out, "w") as f:
        json.dump(res, f)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--check")
    ap.add_argument("--case")
    ap.add_argument("--out")
    a = ap.parse_args()
    if a.check:
        check(a.check, a.case, a.out)
    else:
        write_fixtures()
