#!/usr/bin/env python3
"""Golden Hugging Face folders for the BERT family (src/models/bert.ts, src/io/hf.ts).

`transformers` is not available here, so BERT, RoBERTa and DistilBERT (each
with its sequence-classification head) are written below in plain PyTorch,
module for module, so that `state_dict()` has Hugging Face's exact weight
names and [out, in] nn.Linear layout:

  BertForSequenceClassification        bert.embeddings.*, bert.encoder.layer.N.*,
                                       bert.pooler.dense, classifier
  RobertaForSequenceClassification     roberta.embeddings.*, roberta.encoder.layer.N.*,
                                       classifier.dense, classifier.out_proj
  DistilBertForSequenceClassification  distilbert.embeddings.*, distilbert.transformer.layer.N.*,
                                       pre_classifier, classifier

For each tiny random model it writes test/fixtures/hf/<name>/ with
config.json (HF field names), model.safetensors (written by hand: the
`safetensors` package is not installed), tokenizer.json (a WordPiece
tokenizer in the schema of the `tokenizers` library over the tiny vocab),
tokenizer_config.json, and golden.json:

  input_ids, attention_mask, token_type_ids, labels   a fixed padded batch
  logits, loss                                       the classification head (float64)
  last_hidden_state_cls, mean_pooled, pooler_output  pooled encoder outputs
  lora {r, alpha, targets, params}                   LoRA on query/value (A and B non-zero)
  lora_logits, lora_loss, grads                      with LoRA: loss gradients of every LoRA
                                                     tensor and of the head (PEFT names)
  tokenizer_cases                                    text -> ids (greedy WordPiece, written here)

Variants: bert-fp16 and bert-bf16 (same model stored in half precision; their
golden logits use the rounded weights) and bert-sharded (index.json + 2 shards
of the bert weights).

Usage: /usr/bin/python3 tools/reference/hf_bert_family.py [out_dir]
"""
import json
import math
import os
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

from safetensors_file import ST_DTYPE, write_safetensors

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(REPO, "test", "fixtures", "hf")
PEFT = "base_model.model."
torch.set_default_dtype(torch.float64)

# ---------------------------------------------------------------- vocab / tokenizer

WORDS = ("the a an is was and or not very good bad movie film great terrible plot acting "
         "i you it this that love hate what how why who query document answer hello world "
         "fun boring best worst story music").split()
PIECES = ["##s", "##ing", "##ed", "##ly", "##er", "##est", "##y"]
LETTERS = list("abcdefghijklmnopqrstuvwxyz")
PUNCT = list(".,!?'-")


def make_vocab(specials):
    toks = list(specials)
    for t in PUNCT + LETTERS + ["##" + c for c in LETTERS] + WORDS + PIECES:
        if t not in toks:
            toks.append(t)
    return toks


def basic_split(text):
    out, cur = [], ""
    for ch in text.lower():
        if ch.isspace():
            if cur:
                out.append(cur)
            cur = ""
        elif ch in PUNCT or (not ch.isalnum()):
            if cur:
                out.append(cur)
            out.append(ch)
            cur = ""
        else:
            cur += ch
    if cur:
        out.append(cur)
    return out


def wordpiece(word, vocab, unk):
    ids, start = [], 0
    while start < len(word):
        end, cur = len(word), None
        while start < end:
            sub = word[start:end]
            if start > 0:
                sub = "##" + sub
            if sub in vocab:
                cur = sub
                break
            end -= 1
        if cur is None:
            return [vocab[unk]]
        ids.append(vocab[cur])
        start = end
    return ids


def encode(text, vocab, cls, sep, unk):
    ids = [vocab[cls]]
    for w in basic_split(text):
        ids += wordpiece(w, vocab, unk)
    return ids + [vocab[sep]]


def tokenizer_json(toks, kind):
    vocab = {t: i for i, t in enumerate(toks)}
    if kind == "roberta":
        specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
        cls, sep, unk = "<s>", "</s>", "<unk>"
        post = {"type": "RobertaProcessing", "sep": [sep, vocab[sep]], "cls": [cls, vocab[cls]],
                "trim_offsets": True, "add_prefix_space": False}
    else:
        specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        cls, sep, unk = "[CLS]", "[SEP]", "[UNK]"
        st = lambda t, ty: {"SpecialToken": {"id": t, "type_id": ty}}
        sq = lambda s, ty: {"Sequence": {"id": s, "type_id": ty}}
        post = {"type": "TemplateProcessing",
                "single": [st(cls, 0), sq("A", 0), st(sep, 0)],
                "pair": [st(cls, 0), sq("A", 0), st(sep, 0), sq("B", 1), st(sep, 1)],
                "special_tokens": {t: {"id": t, "ids": [vocab[t]], "tokens": [t]} for t in (cls, sep)}}
    added = [{"id": vocab[t], "content": t, "single_word": False, "lstrip": t == "<mask>", "rstrip": False,
              "normalized": False, "special": True} for t in specials]
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "normalizer": {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True,
                       "strip_accents": None, "lowercase": True},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": post,
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
        "model": {"type": "WordPiece", "unk_token": unk, "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": 100, "vocab": vocab},
    }, (cls, sep, unk)


TEXTS = ["Hello world!", "This movie was very good.", "The worst plot, boring acting",
         "I love the music; great fun", "Querying documents: answers?"]

# ---------------------------------------------------------------- models


def gelu(x):
    return F.gelu(x)


class LoraLinear(nn.Linear):
    """nn.Linear whose forward adds s·B·A·x when lora_A/lora_B are attached (PEFT semantics)."""

    def forward(self, x):
        y = F.linear(x, self.weight, self.bias)
        if getattr(self, "lora_A", None) is not None:
            y = y + self.lora_scale * F.linear(F.linear(x, self.lora_A), self.lora_B)
        return y


def Linear(i, o):
    return LoraLinear(i, o)


class BertEmbeddings(nn.Module):
    def __init__(self, c, roberta=False):
        super().__init__()
        self.word_embeddings = nn.Embedding(c["vocab_size"], c["hidden_size"])
        self.position_embeddings = nn.Embedding(c["max_position_embeddings"], c["hidden_size"])
        self.token_type_embeddings = nn.Embedding(c["type_vocab_size"], c["hidden_size"])
        self.LayerNorm = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])
        self.roberta = roberta
        self.pad = c["pad_token_id"]

    def forward(self, ids, tt):
        if self.roberta:  # create_position_ids_from_input_ids
            m = ids.ne(self.pad).long()
            pos = torch.cumsum(m, dim=1) * m + self.pad
        else:
            pos = torch.arange(ids.shape[1]).unsqueeze(0)
        x = self.word_embeddings(ids) + self.token_type_embeddings(tt) + self.position_embeddings(pos)
        return self.LayerNorm(x)


class BertSelfAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        h = c["hidden_size"]
        self.nh = c["num_attention_heads"]
        self.query, self.key, self.value = Linear(h, h), Linear(h, h), Linear(h, h)

    def forward(self, x, bias):
        B, T, H = x.shape
        d = H // self.nh
        sh = lambda t: t.view(B, T, self.nh, d).transpose(1, 2)
        q, k, v = sh(self.query(x)), sh(self.key(x)), sh(self.value(x))
        s = q @ k.transpose(-1, -2) / math.sqrt(d) + bias
        return (s.softmax(-1) @ v).transpose(1, 2).reshape(B, T, H)


class BertSelfOutput(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = Linear(c["hidden_size"], c["hidden_size"])
        self.LayerNorm = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])

    def forward(self, h, x):
        return self.LayerNorm(self.dense(h) + x)


class BertAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.self = BertSelfAttention(c)
        self.output = BertSelfOutput(c)

    def forward(self, x, bias):
        return self.output(self.self(x, bias), x)


class BertIntermediate(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = Linear(c["hidden_size"], c["intermediate_size"])

    def forward(self, x):
        return gelu(self.dense(x))


class BertOutput(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = Linear(c["intermediate_size"], c["hidden_size"])
        self.LayerNorm = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])

    def forward(self, h, x):
        return self.LayerNorm(self.dense(h) + x)


class BertLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.attention = BertAttention(c)
        self.intermediate = BertIntermediate(c)
        self.output = BertOutput(c)

    def forward(self, x, bias):
        a = self.attention(x, bias)
        return self.output(self.intermediate(a), a)


class BertEncoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.layer = nn.ModuleList([BertLayer(c) for _ in range(c["num_hidden_layers"])])

    def forward(self, x, bias):
        for l in self.layer:
            x = l(x, bias)
        return x


class BertPooler(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = Linear(c["hidden_size"], c["hidden_size"])

    def forward(self, x):
        return torch.tanh(self.dense(x[:, 0]))


class BertModel(nn.Module):
    def __init__(self, c, roberta=False, pooler=True):
        super().__init__()
        self.embeddings = BertEmbeddings(c, roberta)
        self.encoder = BertEncoder(c)
        if pooler:
            self.pooler = BertPooler(c)

    def forward(self, ids, mask, tt):
        bias = ((1.0 - mask) * torch.finfo(mask.dtype).min)[:, None, None, :]
        h = self.encoder(self.embeddings(ids, tt), bias)
        return h, (self.pooler(h) if hasattr(self, "pooler") else None)


class BertForSequenceClassification(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.bert = BertModel(c)
        self.classifier = Linear(c["hidden_size"], len(c["id2label"]))

    def forward(self, ids, mask, tt):
        h, pooled = self.bert(ids, mask, tt)
        return self.classifier(pooled), h, pooled


class RobertaClassificationHead(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = Linear(c["hidden_size"], c["hidden_size"])
        self.out_proj = Linear(c["hidden_size"], len(c["id2label"]))

    def forward(self, h):
        return self.out_proj(torch.tanh(self.dense(h[:, 0])))


class RobertaForSequenceClassification(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.roberta = BertModel(c, roberta=True, pooler=False)
        self.classifier = RobertaClassificationHead(c)

    def forward(self, ids, mask, tt):
        h, _ = self.roberta(ids, mask, tt)
        return self.classifier(h), h, None


class DistilEmbeddings(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.word_embeddings = nn.Embedding(c["vocab_size"], c["dim"])
        self.position_embeddings = nn.Embedding(c["max_position_embeddings"], c["dim"])
        self.LayerNorm = nn.LayerNorm(c["dim"], eps=1e-12)

    def forward(self, ids):
        pos = torch.arange(ids.shape[1]).unsqueeze(0)
        return self.LayerNorm(self.word_embeddings(ids) + self.position_embeddings(pos))


class MultiHeadSelfAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        d = c["dim"]
        self.nh = c["n_heads"]
        self.q_lin, self.k_lin, self.v_lin, self.out_lin = Linear(d, d), Linear(d, d), Linear(d, d), Linear(d, d)

    def forward(self, x, mask):
        B, T, H = x.shape
        d = H // self.nh
        sh = lambda t: t.view(B, T, self.nh, d).transpose(1, 2)
        q = sh(self.q_lin(x)) / math.sqrt(d)
        k, v = sh(self.k_lin(x)), sh(self.v_lin(x))
        s = q @ k.transpose(-1, -2)
        s = s.masked_fill((mask == 0)[:, None, None, :], torch.finfo(s.dtype).min)
        return self.out_lin((s.softmax(-1) @ v).transpose(1, 2).reshape(B, T, H))


class FFN(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.lin1 = Linear(c["dim"], c["hidden_dim"])
        self.lin2 = Linear(c["hidden_dim"], c["dim"])

    def forward(self, x):
        return self.lin2(gelu(self.lin1(x)))


class TransformerBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.attention = MultiHeadSelfAttention(c)
        self.sa_layer_norm = nn.LayerNorm(c["dim"], eps=1e-12)
        self.ffn = FFN(c)
        self.output_layer_norm = nn.LayerNorm(c["dim"], eps=1e-12)

    def forward(self, x, mask):
        x = self.sa_layer_norm(self.attention(x, mask) + x)
        return self.output_layer_norm(self.ffn(x) + x)


class Transformer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.layer = nn.ModuleList([TransformerBlock(c) for _ in range(c["n_layers"])])

    def forward(self, x, mask):
        for l in self.layer:
            x = l(x, mask)
        return x


class DistilBertModel(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embeddings = DistilEmbeddings(c)
        self.transformer = Transformer(c)

    def forward(self, ids, mask):
        return self.transformer(self.embeddings(ids), mask)


class DistilBertForSequenceClassification(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.distilbert = DistilBertModel(c)
        self.pre_classifier = Linear(c["dim"], c["dim"])
        self.classifier = Linear(c["dim"], len(c["id2label"]))

    def forward(self, ids, mask, tt):
        h = self.distilbert(ids, mask)
        return self.classifier(F.relu(self.pre_classifier(h[:, 0]))), h, None


# ---------------------------------------------------------------- safetensors by hand





# ---------------------------------------------------------------- fixtures


def flat(t):
    return [float(f"{x:.9g}") for x in t.detach().reshape(-1).tolist()]


def randomize(model, gen):
    """Every tensor random (LayerNorm around 1), rounded to float32 so the stored file is exact."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm" in name or "layer_norm" in name:
                v = 1 + 0.1 * torch.randn(p.shape, generator=gen) if name.endswith("weight") else 0.1 * torch.randn(p.shape, generator=gen)
            elif "embeddings" in name:
                v = 0.5 * torch.randn(p.shape, generator=gen)
            else:
                v = (0.5 / math.sqrt(p.shape[-1])) * torch.randn(p.shape, generator=gen) * 2
            p.copy_(v.to(torch.float32).to(torch.float64))


def round_weights(model, dtype):
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.to(ST_DTYPE[dtype]).to(torch.float64))


def id2label(n):
    return {str(i): f"LABEL_{i}" for i in range(n)}


def configs():
    H, L, NH, FF, V = 32, 2, 4, 64, None
    base = dict(hidden_size=H, num_hidden_layers=L, num_attention_heads=NH, intermediate_size=FF,
                hidden_act="gelu", hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
                initializer_range=0.02, position_embedding_type="absolute", use_cache=True,
                classifier_dropout=None, torch_dtype="float32", transformers_version="4.40.0",
                id2label=id2label(3), label2id={f"LABEL_{i}": i for i in range(3)})
    bert = dict(architectures=["BertForSequenceClassification"], model_type="bert", **base,
                max_position_embeddings=128, type_vocab_size=2, layer_norm_eps=1e-12, pad_token_id=0)
    roberta = dict(architectures=["RobertaForSequenceClassification"], model_type="roberta", **base,
                   max_position_embeddings=130, type_vocab_size=1, layer_norm_eps=1e-5,
                   pad_token_id=1, bos_token_id=0, eos_token_id=2)
    distil = dict(architectures=["DistilBertForSequenceClassification"], model_type="distilbert",
                  dim=H, n_layers=L, n_heads=NH, hidden_dim=FF, activation="gelu", dropout=0.1,
                  attention_dropout=0.1, seq_classif_dropout=0.2, qa_dropout=0.1, max_position_embeddings=128,
                  sinusoidal_pos_embds=False, tie_weights_=True, initializer_range=0.02, pad_token_id=0,
                  torch_dtype="float32", transformers_version="4.40.0",
                  id2label=id2label(3), label2id={f"LABEL_{i}": i for i in range(3)})
    return bert, roberta, distil


SPEC = {
    "bert": (BertForSequenceClassification, "bert", ["query", "value"]),
    "roberta": (RobertaForSequenceClassification, "roberta", ["query", "value"]),
    "distilbert": (DistilBertForSequenceClassification, "bert", ["q_lin", "v_lin"]),
}
HEADS = {"bert": ["classifier"], "roberta": ["classifier.dense", "classifier.out_proj"],
         "distilbert": ["pre_classifier", "classifier"]}


def batch(kind, vocab_size):
    g = torch.Generator().manual_seed(7)
    B, T = 3, 7
    lens = [7, 5, 3]
    if kind == "roberta":
        bos, eos, pad = 0, 2, 1
    else:
        bos, eos, pad = 2, 3, 0
    ids = torch.full((B, T), pad, dtype=torch.long)
    tt = torch.zeros((B, T), dtype=torch.long)
    for b, n in enumerate(lens):
        body = torch.randint(5, vocab_size, (n - 2,), generator=g)
        ids[b, :n] = torch.cat([torch.tensor([bos]), body, torch.tensor([eos])])
        if kind == "bert" and n >= 5:  # a sentence pair: second segment type 1 (cross-encoder input)
            tt[b, n // 2:n] = 1
    mask = (torch.arange(T)[None, :] < torch.tensor(lens)[:, None]).double()
    labels = torch.tensor([2, 0, 1])
    return ids, mask, tt, labels


def attach_lora(model, targets, r, alpha, gen):
    params = {}
    for name, m in model.named_modules():
        if isinstance(m, LoraLinear) and name.split(".")[-1] in targets:
            m.lora_A = nn.Parameter((0.3 * torch.randn(r, m.in_features, generator=gen)).to(torch.float32).double())
            m.lora_B = nn.Parameter((0.3 * torch.randn(m.out_features, r, generator=gen)).to(torch.float32).double())
            m.lora_scale = alpha / r
            params[f"{PEFT}{name}.lora_A.weight"] = m.lora_A
            params[f"{PEFT}{name}.lora_B.weight"] = m.lora_B
    return params


def golden(model, kind, cfg, vocab, specials, with_lora=True):
    ids, mask, tt, labels = batch(kind if kind != "distilbert" else "bert", cfg["vocab_size"])
    if kind != "bert":
        tt = torch.zeros_like(ids)
    model.eval()
    with torch.no_grad():
        logits, h, pooled = model(ids, mask, tt)
        loss = F.cross_entropy(logits, labels)
    out = dict(input_ids=ids.tolist(), attention_mask=mask.tolist(), token_type_ids=tt.tolist(),
               labels=labels.tolist(), logits=flat(logits), loss=float(loss),
               last_hidden_state_cls=flat(h[:, 0]),
               mean_pooled=flat((h * mask[:, :, None]).sum(1) / mask.sum(1, keepdim=True)))
    if pooled is not None:
        out["pooler_output"] = flat(pooled)
    if with_lora:
        gen = torch.Generator().manual_seed(11)
        r, alpha = 4, 8.0
        targets = SPEC[kind][2]
        lp = attach_lora(model, targets, r, alpha, gen)
        heads = {}
        for hname in HEADS[kind]:
            m = model.get_submodule(hname)
            heads[f"{PEFT}{hname}.weight"] = m.weight
            heads[f"{PEFT}{hname}.bias"] = m.bias
        logits2, _, _ = model(ids, mask, tt)
        loss2 = F.cross_entropy(logits2, labels)
        names = list(lp) + list(heads)
        grads = torch.autograd.grad(loss2, [lp.get(n, heads.get(n)) for n in names])
        out["lora"] = dict(r=r, alpha=alpha, targets=targets,
                           params={k: dict(shape=list(v.shape), data=flat(v)) for k, v in lp.items()})
        out["lora_logits"] = flat(logits2)
        out["lora_loss"] = float(loss2)
        out["grads"] = {n: flat(g) for n, g in zip(names, grads)}
    cls, sep, unk = specials
    out["tokenizer_cases"] = [dict(text=t, ids=encode(t, vocab, cls, sep, unk)) for t in TEXTS]
    return out


def write_folder(name, sd, cfg, tok, tok_cfg, gold, dtype="F32", shards=None):
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        os.remove(os.path.join(d, f))
    cfg = dict(cfg)
    cfg["torch_dtype"] = {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}[dtype]
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    if shards:
        keys = sorted(sd)
        half = len(keys) // 2
        parts = [keys[:half], keys[half:]]
        wm, total = {}, 0
        for i, ks in enumerate(parts):
            fn = f"model-{i + 1:05d}-of-{len(parts):05d}.safetensors"
            total += write_safetensors(os.path.join(d, fn), {k: sd[k] for k in ks}, dtype)
            wm.update({k: fn for k in ks})
        with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": wm}, f, indent=2)
    else:
        write_safetensors(os.path.join(d, "model.safetensors"), sd, dtype)
    with open(os.path.join(d, "tokenizer.json"), "w") as f:
        json.dump(tok, f, ensure_ascii=False)
    with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
        json.dump(tok_cfg, f, indent=2)
    if gold is not None:
        with open(os.path.join(d, "golden.json"), "w") as f:
            json.dump(gold, f)


def main():
    os.makedirs(OUT, exist_ok=True)
    bert_c, roberta_c, distil_c = configs()
    for kind, cfg in (("bert", bert_c), ("roberta", roberta_c), ("distilbert", distil_c)):
        toks = make_vocab(["<s>", "<pad>", "</s>", "<unk>", "<mask>"] if kind == "roberta"
                          else ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
        cfg["vocab_size"] = len(toks)
        vocab = {t: i for i, t in enumerate(toks)}
        tok, specials = tokenizer_json(toks, kind)
        tok_cfg = {"do_lower_case": True, "model_max_length": 128, "cls_token": specials[0], "sep_token": specials[1],
                   "unk_token": specials[2], "pad_token": "<pad>" if kind == "roberta" else "[PAD]",
                   "tokenizer_class": {"bert": "BertTokenizer", "roberta": "RobertaTokenizer", "distilbert": "DistilBertTokenizer"}[kind]}
        if kind == "distilbert":  # exercises the chat-template path of the loader
            tok_cfg["chat_template"] = "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}"
        torch.manual_seed(0)
        gen = torch.Generator().manual_seed({"bert": 1, "roberta": 2, "distilbert": 3}[kind])
        model = SPEC[kind][0](cfg)
        randomize(model, gen)
        state = {k: v.clone() for k, v in model.state_dict().items()}
        write_folder(kind, state, cfg, tok, tok_cfg, golden(model, kind, cfg, vocab, specials))
        if kind == "bert":
            write_folder("bert-sharded", state, cfg, tok, tok_cfg, None, shards=2)
            for dt in ("F16", "BF16"):
                m3 = SPEC[kind][0](cfg)
                m3.load_state_dict(state)
                round_weights(m3, dt)
                g = golden(m3, kind, cfg, vocab, specials, with_lora=False)
                write_folder(f"bert-{dt.lower()}", {k: v.clone() for k, v in m3.state_dict().items()}, cfg, tok, tok_cfg, g, dtype=dt)
    print("wrote", OUT)


if __name__ == "__main__":
    main()
