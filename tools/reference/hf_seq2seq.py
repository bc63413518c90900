#!/usr/bin/env python3
"""Golden fixtures for lorakit's encoder-decoder (seq2seq) models: T5 and BART.

`transformers` is not needed: T5 is written here in plain PyTorch with Hugging
Face's exact weight names and layouts (nn.Linear [out, in], no biases),
following transformers' modeling_t5.py: T5LayerNorm (RMS, no mean, no bias),
relative position bias buckets in the first layer of each stack shared by all
its layers (bidirectional in the encoder, causal in the decoder), no scaling of
the attention logits, ReLU or gated-GELU (gelu_new) feed-forward
(`feed_forward_proj`), tied lm_head with d_model^-0.5 scaling of the decoder
output (or an untied lm_head). BART follows modeling_bart.py: learned
positions offset by 2, embeddings × √d_model when `scale_embedding`,
layernorm_embedding, post-LN layers, exact GELU, q scaled by head_dim^-0.5,
lm_head tied to model.shared plus the final_logits_bias buffer.

For each tiny random model it writes an HF folder test/fixtures/hf/<name>/
(config.json, model.safetensors written by hand, tokenizer.json) and golden.json:

  input_ids / attention_mask   encoder inputs [2, 7], row 1 right-padded
  labels                       [2, 5], row 1 padded with -100
  decoder_input_ids            labels shifted right with decoder_start_token_id (-100 -> pad)
  logits                       base model logits [2, 5, V]
  loss                         seq2seq loss of the base model (mean over labels != -100)
  lora, lora_loss, lora_grads  r=4, alpha=8 on q,v (self- and cross-attention), fixed
                               non-zero A and B; the loss with LoRA and d loss / d A, B
  generate                     encoder prompt and 6 greedy tokens (no stop token)

Usage: /usr/bin/python3 tools/reference/hf_seq2seq.py [out_dir]
"""
import json
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hf_decoders import Lora, R, ALPHA, flat, write_hf_folder  # noqa: E402

torch.set_num_threads(1)
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(REPO, "test", "fixtures", "hf")


# ------------------------------------------------------------------ T5 ----

def t5_bucket(rel, bidirectional, num_buckets, max_distance):
    buckets = torch.zeros_like(rel)
    if bidirectional:
        num_buckets //= 2
        buckets += (rel > 0).long() * num_buckets
        rel = rel.abs()
    else:
        rel = -torch.min(rel, torch.zeros_like(rel))
    max_exact = num_buckets // 2
    is_small = rel < max_exact
    large = max_exact + (torch.log(rel.float() / max_exact) / math.log(max_distance / max_exact) * (num_buckets - max_exact)).long()
    large = torch.min(large, torch.full_like(large, num_buckets - 1))
    return buckets + torch.where(is_small, rel, large)


def t5_rms(x, w, eps):
    var = x.pow(2).mean(-1, keepdim=True)
    return w * (x * torch.rsqrt(var + eps))


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def t5_forward(W, cfg, ids, mask, dec_ids, lora=None):
    B, S = ids.shape
    T = dec_ids.shape[1]
    H, nh, dk = cfg["d_model"], cfg["num_heads"], cfg["d_kv"]
    eps = cfg["layer_norm_epsilon"]
    nb, md = cfg["relative_attention_num_buckets"], cfg["relative_attention_max_distance"]
    neg = torch.finfo(torch.float32).min

    def lin(name, x):
        y = x @ W[f"{name}.weight"].t()
        return lora.apply(name, x, y) if lora else y

    def attn(p, x, kv, bias):
        q = lin(f"{p}.q", x).view(B, -1, nh, dk).transpose(1, 2)
        k = lin(f"{p}.k", kv).view(B, -1, nh, dk).transpose(1, 2)
        v = lin(f"{p}.v", kv).view(B, -1, nh, dk).transpose(1, 2)
        s = q @ k.transpose(-1, -2) + bias
        ctx = (F.softmax(s.float(), dim=-1) @ v).transpose(1, 2).reshape(B, -1, nh * dk)
        return lin(f"{p}.o", ctx)

    def ffn(p, x):
        if cfg["feed_forward_proj"].startswith("gated"):
            h = gelu_new(lin(f"{p}.wi_0", x)) * lin(f"{p}.wi_1", x)
        else:
            h = F.relu(lin(f"{p}.wi", x))
        return lin(f"{p}.wo", h)

    def pos_bias(stack, q_len, k_len, bidi):
        ctx = torch.arange(q_len)[:, None]
        mem = torch.arange(k_len)[None, :]
        b = t5_bucket(mem - ctx, bidi, nb, md)
        emb = W[f"{stack}.block.0.layer.0.SelfAttention.relative_attention_bias.weight"][b]  # [q,k,nh]
        return emb.permute(2, 0, 1)[None]

    enc_mask = (1.0 - mask[:, None, None, :]) * neg
    x = W["shared.weight"][ids]
    eb = pos_bias("encoder", S, S, True) + enc_mask
    for i in range(cfg["num_layers"]):
        p = f"encoder.block.{i}"
        h = t5_rms(x, W[f"{p}.layer.0.layer_norm.weight"], eps)
        x = x + attn(f"{p}.layer.0.SelfAttention", h, h, eb)
        x = x + ffn(f"{p}.layer.1.DenseReluDense", t5_rms(x, W[f"{p}.layer.1.layer_norm.weight"], eps))
    enc = t5_rms(x, W["encoder.final_layer_norm.weight"], eps)

    y = W["shared.weight"][dec_ids]
    causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
    db = pos_bias("decoder", T, T, False) + torch.where(causal, 0.0, neg)[None, None]
    for i in range(cfg["num_decoder_layers"]):
        p = f"decoder.block.{i}"
        h = t5_rms(y, W[f"{p}.layer.0.layer_norm.weight"], eps)
        y = y + attn(f"{p}.layer.0.SelfAttention", h, h, db)
        h = t5_rms(y, W[f"{p}.layer.1.layer_norm.weight"], eps)
        y = y + attn(f"{p}.layer.1.EncDecAttention", h, enc, enc_mask)
        y = y + ffn(f"{p}.layer.2.DenseReluDense", t5_rms(y, W[f"{p}.layer.2.layer_norm.weight"], eps))
    y = t5_rms(y, W["decoder.final_layer_norm.weight"], eps)
    if cfg["tie_word_embeddings"]:
        return (y * H ** -0.5) @ W["shared.weight"].t()
    return lin("lm_head", y)


def t5_model(gen, gated=False, tied=True):
    V, H, dk, nh, F_ = 128, 32, 8, 4, 48
    L = 2
    cfg = {
        "model_type": "t5", "architectures": ["T5ForConditionalGeneration"], "vocab_size": V, "d_model": H, "d_kv": dk,
        "d_ff": F_, "num_layers": L, "num_decoder_layers": L, "num_heads": nh, "relative_attention_num_buckets": 8,
        "relative_attention_max_distance": 20, "layer_norm_epsilon": 1e-6,
        "feed_forward_proj": "gated-gelu" if gated else "relu", "is_gated_act": gated, "dense_act_fn": "gelu_new" if gated else "relu",
        "tie_word_embeddings": tied, "is_encoder_decoder": True, "decoder_start_token_id": 0, "pad_token_id": 0,
        "eos_token_id": 1,
    }
    W, shapes = {}, {}

    def rnd(*s, scale=None):
        return torch.randn(*s, generator=gen) * (scale if scale is not None else 1.0 / math.sqrt(s[-1]))

    W["shared.weight"] = rnd(V, H, scale=1.0)
    for stack, n_sub in (("encoder", 2), ("decoder", 3)):
        W[f"{stack}.block.0.layer.0.SelfAttention.relative_attention_bias.weight"] = rnd(8, nh, scale=0.5)
        for i in range(L):
            p = f"{stack}.block.{i}"
            atts = [f"{p}.layer.0.SelfAttention"] + ([f"{p}.layer.1.EncDecAttention"] if stack == "decoder" else [])
            for a in atts:
                for m, fi, fo in (("q", H, nh * dk), ("k", H, nh * dk), ("v", H, nh * dk), ("o", nh * dk, H)):
                    W[f"{a}.{m}.weight"] = rnd(fo, fi)
                    shapes[f"{a}.{m}"] = (fi, fo)
            ff = f"{p}.layer.{n_sub - 1}.DenseReluDense"
            mods = (("wi_0", H, F_), ("wi_1", H, F_), ("wo", F_, H)) if gated else (("wi", H, F_), ("wo", F_, H))
            for m, fi, fo in mods:
                W[f"{ff}.{m}.weight"] = rnd(fo, fi)
                shapes[f"{ff}.{m}"] = (fi, fo)
            for j in range(n_sub):
                W[f"{p}.layer.{j}.layer_norm.weight"] = 1 + 0.1 * torch.randn(H, generator=gen)
        W[f"{stack}.final_layer_norm.weight"] = 1 + 0.1 * torch.randn(H, generator=gen)
    if not tied:
        W["lm_head.weight"] = rnd(V, H)
    targets = sorted(k for k in shapes if k.endswith(".q") or k.endswith(".v"))
    return cfg, W, shapes, targets, t5_forward


# ---------------------------------------------------------------- BART ----

def bart_forward(W, cfg, ids, mask, dec_ids, lora=None):
    B, S = ids.shape
    T = dec_ids.shape[1]
    H = cfg["d_model"]
    nh = cfg["encoder_attention_heads"]
    hd = H // nh
    neg = torch.finfo(torch.float32).min
    scale = math.sqrt(H) if cfg["scale_embedding"] else 1.0

    def lin(name, x):
        y = x @ W[f"{name}.weight"].t() + W[f"{name}.bias"]
        return lora.apply(name, x, y) if lora else y

    def ln(name, x):
        return F.layer_norm(x, (H,), W[f"{name}.weight"], W[f"{name}.bias"], 1e-5)

    def attn(p, x, kv, bias):
        q = (lin(f"{p}.q_proj", x) * hd ** -0.5).view(B, -1, nh, hd).transpose(1, 2)
        k = lin(f"{p}.k_proj", kv).view(B, -1, nh, hd).transpose(1, 2)
        v = lin(f"{p}.v_proj", kv).view(B, -1, nh, hd).transpose(1, 2)
        s = q @ k.transpose(-1, -2) + bias
        ctx = (F.softmax(s, dim=-1) @ v).transpose(1, 2).reshape(B, -1, H)
        return lin(f"{p}.out_proj", ctx)

    def ffn(p, x):
        return lin(f"{p}.fc2", F.gelu(lin(f"{p}.fc1", x)))

    enc_mask = (1.0 - mask[:, None, None, :]) * neg
    x = W["model.shared.weight"][ids] * scale + W["model.encoder.embed_positions.weight"][torch.arange(S) + 2][None]
    x = ln("model.encoder.layernorm_embedding", x)
    for i in range(cfg["encoder_layers"]):
        p = f"model.encoder.layers.{i}"
        x = ln(f"{p}.self_attn_layer_norm", x + attn(f"{p}.self_attn", x, x, enc_mask))
        x = ln(f"{p}.final_layer_norm", x + ffn(p, x))
    enc = x

    y = W["model.shared.weight"][dec_ids] * scale + W["model.decoder.embed_positions.weight"][torch.arange(T) + 2][None]
    y = ln("model.decoder.layernorm_embedding", y)
    causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
    db = torch.where(causal, 0.0, neg)[None, None]
    for i in range(cfg["decoder_layers"]):
        p = f"model.decoder.layers.{i}"
        y = ln(f"{p}.self_attn_layer_norm", y + attn(f"{p}.self_attn", y, y, db))
        y = ln(f"{p}.encoder_attn_layer_norm", y + attn(f"{p}.encoder_attn", y, enc, enc_mask))
        y = ln(f"{p}.final_layer_norm", y + ffn(p, y))
    return y @ W["model.shared.weight"].t() + W["final_logits_bias"]


def bart_model(gen, scale_embedding=True):
    V, H, nh, F_, L, P = 128, 32, 4, 48, 2, 32
    cfg = {
        "model_type": "bart", "architectures": ["BartForConditionalGeneration"], "vocab_size": V, "d_model": H,
        "encoder_layers": L, "decoder_layers": L, "encoder_attention_heads": nh, "decoder_attention_heads": nh,
        "encoder_ffn_dim": F_, "decoder_ffn_dim": F_, "activation_function": "gelu", "max_position_embeddings": P,
        "scale_embedding": scale_embedding, "tie_word_embeddings": True, "is_encoder_decoder": True,
        "bos_token_id": 0, "pad_token_id": 1, "eos_token_id": 2, "decoder_start_token_id": 2, "forced_eos_token_id": 2,
    }
    W, shapes = {}, {}

    def rnd(*s, scale=None):
        return torch.randn(*s, generator=gen) * (scale if scale is not None else 1.0 / math.sqrt(s[-1]))

    W["model.shared.weight"] = rnd(V, H, scale=0.3)
    W["final_logits_bias"] = rnd(1, V, scale=0.5)
    for stack in ("encoder", "decoder"):
        W[f"model.{stack}.embed_positions.weight"] = rnd(P + 2, H, scale=0.3)
        lns = [f"model.{stack}.layernorm_embedding"]
        for i in range(L):
            p = f"model.{stack}.layers.{i}"
            atts = ["self_attn"] + (["encoder_attn"] if stack == "decoder" else [])
            for a in atts:
                for m in ("q_proj", "k_proj", "v_proj", "out_proj"):
                    W[f"{p}.{a}.{m}.weight"] = rnd(H, H)
                    W[f"{p}.{a}.{m}.bias"] = rnd(H, scale=0.1)
                    shapes[f"{p}.{a}.{m}"] = (H, H)
                lns.append(f"{p}.{a}_layer_norm")
            for m, fi, fo in (("fc1", H, F_), ("fc2", F_, H)):
                W[f"{p}.{m}.weight"] = rnd(fo, fi)
                W[f"{p}.{m}.bias"] = rnd(fo, scale=0.1)
                shapes[f"{p}.{m}"] = (fi, fo)
            lns.append(f"{p}.final_layer_norm")
        for n in lns:
            W[f"{n}.weight"] = 1 + 0.1 * torch.randn(H, generator=gen)
            W[f"{n}.bias"] = 0.1 * torch.randn(H, generator=gen)
    targets = sorted(k for k in shapes if k.endswith(".q_proj") or k.endswith(".v_proj"))
    return cfg, W, shapes, targets, bart_forward


# --------------------------------------------------------------- golden ----

def shift_right(labels, start, pad):
    d = torch.full_like(labels, pad)
    d[:, 1:] = labels[:, :-1]
    d[:, 0] = start
    return torch.where(d == -100, torch.full_like(d, pad), d)


def make(name, builder, seed):
    gen = torch.Generator().manual_seed(seed)
    cfg, W, shapes, targets, fwd = builder(gen)
    V = cfg["vocab_size"]
    ids = torch.randint(3, V, (2, 7), generator=gen)
    mask = torch.ones(2, 7)
    mask[1, 4:] = 0
    ids[1, 4:] = cfg["pad_token_id"]
    labels = torch.randint(3, V, (2, 5), generator=gen)
    labels[1, 3:] = -100
    dec = shift_right(labels, cfg["decoder_start_token_id"], cfg["pad_token_id"])
    with torch.no_grad():
        logits = fwd(W, cfg, ids, mask, dec)
        loss0 = F.cross_entropy(logits.reshape(-1, V), labels.reshape(-1), ignore_index=-100)
    lora = Lora(targets, shapes, gen)
    loss = F.cross_entropy(fwd(W, cfg, ids, mask, dec, lora).reshape(-1, V), labels.reshape(-1), ignore_index=-100)
    loss.backward()
    grads = {k: flat(p.grad) for k, p in lora.p.items()}

    prompt = torch.randint(3, V, (1, 6), generator=gen)
    seq = torch.tensor([[cfg["decoder_start_token_id"]]])
    margins = []
    with torch.no_grad():
        for _ in range(6):
            last = fwd(W, cfg, prompt, torch.ones_like(prompt, dtype=torch.float32), seq)[0, -1]
            top = torch.topk(last, 2).values
            margins.append(float(top[0] - top[1]))
            seq = torch.cat([seq, last.argmax().view(1, 1)], dim=1)
    print(f"{name}: loss {loss.item():.5f}, min greedy margin {min(margins):.4f}")

    d = os.path.join(OUT, name)
    write_hf_folder(d, cfg, W)
    golden = {
        "input_ids": ids.tolist(), "attention_mask": mask.tolist(), "labels": labels.tolist(),
        "decoder_input_ids": dec.tolist(), "logits": flat(logits), "loss": float(loss0),
        "lora": {
            "r": R, "lora_alpha": ALPHA, "target_modules": sorted({t.split(".")[-1] for t in targets}),
            "params": {k: {"shape": list(p.shape), "data": flat(p)} for k, p in lora.p.items()},
        },
        "lora_loss": float(loss), "lora_grads": grads,
        "generate": {"prompt": prompt[0].tolist(), "greedy": seq[0, 1:].tolist()},
    }
    with open(os.path.join(d, "golden.json"), "w") as f:
        json.dump(golden, f)


if __name__ == "__main__":
    make("t5-tiny", t5_model, 11)
    make("t5-gated-tiny", lambda g: t5_model(g, gated=True, tied=False), 12)
    make("bart-tiny", bart_model, 13)
