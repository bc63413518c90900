#!/usr/bin/env python3
"""Golden fixtures for lorakit's decoder language models (GPT-2, Llama, Qwen2).

`transformers` is not needed: GPT-2 and Llama are written here in plain PyTorch
with Hugging Face's exact weight names and layouts (GPT-2 `Conv1D` weights are
[in, out]; Llama/Qwen2 `nn.Linear` weights are [out, in]), following
transformers' modeling_gpt2.py / modeling_llama.py / modeling_qwen2.py:

  GPT-2   learned positions, pre-LN, gelu_new (tanh approximation), scaled
          dot-product attention, tied lm_head (= wte).
  Llama   RMSNorm, rotary embeddings (rope_theta, rotate_half convention),
          grouped-query attention (num_key_value_heads), SwiGLU MLP, untied
          lm_head.
  Qwen2   Llama with q/k/v biases and tied embeddings.
  Mistral Llama with a sliding attention window (3 here, so that the fixture's
          8-token inputs exercise it).

For each tiny random model (2 layers, hidden 32, 4 heads; Llama/Qwen2 with 2 KV
heads; vocab 128) it writes an HF folder test/fixtures/hf/<name>/ with
config.json (HF field names), model.safetensors (written by hand: the
safetensors package is not required), a small word-level tokenizer.json
(WordPiece schema of the `tokenizers` library; Llama's adds <s>) with
tokenizer_config.json, plus golden.json:

  input_ids / attention_mask   [2, 8], row 1 right-padded
  labels                       HF labels (-100 on prompt and padding tokens)
  logits                       base model logits [2, 8, V] (compare where mask=1)
  lora                         r=4, alpha=8 on c_attn (GPT-2) or q_proj,v_proj,
                               fixed non-zero A and B (PEFT keys and shapes)
  lora_loss, lora_grads        causal-LM loss (HF shift, mean over labels != -100)
                               with LoRA attached, and d loss / d A, B
  generate                     prompt and 8 greedy tokens (no stop token)

Usage: /usr/bin/python3 tools/reference/hf_decoders.py [out_dir]
"""
import json
import math
import os
import struct
import sys

import torch
import torch.nn.functional as F

from safetensors_file import write_safetensors

torch.set_num_threads(1)

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(REPO, "test", "fixtures", "hf")

R, ALPHA = 4, 8
SCALING = ALPHA / R



def write_hf_folder(d, cfg, W):
    """config.json, model.safetensors and the word-level tokenizer files of a tiny model, as Hugging Face lays them out."""
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    write_safetensors(os.path.join(d, "model.safetensors"), W)
    tok, tok_cfg = tokenizer_files(cfg["model_type"])
    with open(os.path.join(d, "tokenizer.json"), "w") as f:
        json.dump(tok, f, indent=1)
    with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
        json.dump(tok_cfg, f, indent=2)


def flat(t):
    return [round(float(x), 7) for x in t.detach().reshape(-1).tolist()]


class Lora:
    """PEFT LoRA on a module path: y = base(x) + s * (x A^T) B^T."""

    def __init__(self, targets, shapes, gen):
        self.p = {}
        for name in targets:
            fin, fout = shapes[name]
            A = (torch.rand(R, fin, generator=gen) * 2 - 1) / math.sqrt(fin)
            B = (torch.rand(fout, R, generator=gen) * 2 - 1) * 0.5
            self.p[f"base_model.model.{name}.lora_A.weight"] = A.requires_grad_(True)
            self.p[f"base_model.model.{name}.lora_B.weight"] = B.requires_grad_(True)

    def apply(self, name, x, y):
        a = self.p.get(f"base_model.model.{name}.lora_A.weight")
        if a is None:
            return y
        b = self.p[f"base_model.model.{name}.lora_B.weight"]
        return y + SCALING * (x @ a.t()) @ b.t()


def causal_bias(mask, T, dtype, window=None):
    # HF: min-float where a key is in the future, padded, or (Mistral) not among the last `window` positions.
    causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
    if window is not None:
        causal &= ~torch.tril(torch.ones(T, T, dtype=torch.bool), diagonal=-window)
    allowed = causal[None, None] & (mask[:, None, None, :] > 0)
    return torch.where(allowed, torch.zeros((), dtype=dtype), torch.tensor(torch.finfo(dtype).min, dtype=dtype))


# ---------------------------------------------------------------- GPT-2 ----

def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def gpt2_forward(W, cfg, ids, mask, lora=None):
    B, T = ids.shape
    H, nh = cfg["n_embd"], cfg["n_head"]
    hd = H // nh
    eps = cfg["layer_norm_epsilon"]
    pos = torch.arange(T)[None]
    x = W["transformer.wte.weight"][ids] + W["transformer.wpe.weight"][pos]
    bias = causal_bias(mask, T, x.dtype)

    def conv1d(name, x):
        y = x @ W[f"{name}.weight"] + W[f"{name}.bias"]  # Conv1D: weight [in, out]
        return lora.apply(name, x, y) if lora else y

    for i in range(cfg["n_layer"]):
        p = f"transformer.h.{i}"
        h = F.layer_norm(x, (H,), W[f"{p}.ln_1.weight"], W[f"{p}.ln_1.bias"], eps)
        q, k, v = conv1d(f"{p}.attn.c_attn", h).split(H, dim=2)
        q, k, v = (t.view(B, T, nh, hd).transpose(1, 2) for t in (q, k, v))
        s = q @ k.transpose(-1, -2) / math.sqrt(hd) + bias
        a = (torch.softmax(s, -1) @ v).transpose(1, 2).reshape(B, T, H)
        x = x + conv1d(f"{p}.attn.c_proj", a)
        h = F.layer_norm(x, (H,), W[f"{p}.ln_2.weight"], W[f"{p}.ln_2.bias"], eps)
        x = x + conv1d(f"{p}.mlp.c_proj", gelu_new(conv1d(f"{p}.mlp.c_fc", h)))
    x = F.layer_norm(x, (H,), W["transformer.ln_f.weight"], W["transformer.ln_f.bias"], eps)
    return x @ W["transformer.wte.weight"].t()  # tied lm_head


def gpt2_model(gen):
    cfg = {
        "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "vocab_size": 128, "n_positions": 64,
        "n_embd": 32, "n_layer": 2, "n_head": 4, "n_inner": None, "activation_function": "gelu_new",
        "layer_norm_epsilon": 1e-5, "bos_token_id": 0, "eos_token_id": 0, "tie_word_embeddings": True,
        "scale_attn_weights": True, "torch_dtype": "float32",
    }
    H, V = cfg["n_embd"], cfg["vocab_size"]
    W = {"transformer.wte.weight": torch.randn(V, H, generator=gen) * 0.5,
         "transformer.wpe.weight": torch.randn(cfg["n_positions"], H, generator=gen) * 0.1}
    shapes = {}
    for i in range(cfg["n_layer"]):
        p = f"transformer.h.{i}"
        for ln in ("ln_1", "ln_2"):
            W[f"{p}.{ln}.weight"] = 1 + 0.1 * torch.randn(H, generator=gen)
            W[f"{p}.{ln}.bias"] = 0.1 * torch.randn(H, generator=gen)
        for name, fin, fout in (("attn.c_attn", H, 3 * H), ("attn.c_proj", H, H), ("mlp.c_fc", H, 4 * H), ("mlp.c_proj", 4 * H, H)):
            W[f"{p}.{name}.weight"] = torch.randn(fin, fout, generator=gen) * (0.6 / math.sqrt(fin))
            W[f"{p}.{name}.bias"] = 0.05 * torch.randn(fout, generator=gen)
            shapes[f"{p}.{name}"] = (fin, fout)
    W["transformer.ln_f.weight"] = 1 + 0.1 * torch.randn(H, generator=gen)
    W["transformer.ln_f.bias"] = 0.1 * torch.randn(H, generator=gen)
    targets = [f"transformer.h.{i}.attn.c_attn" for i in range(cfg["n_layer"])]
    return cfg, W, shapes, targets, gpt2_forward


# ---------------------------------------------------------------- Llama ----

def rms_norm(x, w, eps):
    var = x.pow(2).mean(-1, keepdim=True)
    return w * (x * torch.rsqrt(var + eps))


def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def llama_forward(W, cfg, ids, mask, lora=None):
    B, T = ids.shape
    H, nh, nkv = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = H // nh
    eps = cfg["rms_norm_eps"]
    inv_freq = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.int64).float() / hd))
    pos = torch.arange(T).float()
    freqs = pos[:, None] * inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos()[None, None], emb.sin()[None, None]
    bias = causal_bias(mask, T, torch.float32, cfg.get("sliding_window") if cfg["model_type"] == "mistral" else None)
    x = W["model.embed_tokens.weight"][ids]

    def linear(name, x):
        y = x @ W[f"{name}.weight"].t()  # nn.Linear: weight [out, in]
        if f"{name}.bias" in W:
            y = y + W[f"{name}.bias"]
        return lora.apply(name, x, y) if lora else y

    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}"
        h = rms_norm(x, W[f"{p}.input_layernorm.weight"], eps)
        q = linear(f"{p}.self_attn.q_proj", h).view(B, T, nh, hd).transpose(1, 2)
        k = linear(f"{p}.self_attn.k_proj", h).view(B, T, nkv, hd).transpose(1, 2)
        v = linear(f"{p}.self_attn.v_proj", h).view(B, T, nkv, hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(nh // nkv, dim=1)  # repeat_kv
        v = v.repeat_interleave(nh // nkv, dim=1)
        s = q @ k.transpose(-1, -2) / math.sqrt(hd) + bias
        a = (torch.softmax(s, -1) @ v).transpose(1, 2).reshape(B, T, H)
        x = x + linear(f"{p}.self_attn.o_proj", a)
        h = rms_norm(x, W[f"{p}.post_attention_layernorm.weight"], eps)
        m = F.silu(linear(f"{p}.mlp.gate_proj", h)) * linear(f"{p}.mlp.up_proj", h)
        x = x + linear(f"{p}.mlp.down_proj", m)
    x = rms_norm(x, W["model.norm.weight"], eps)
    head = W["model.embed_tokens.weight"] if cfg.get("tie_word_embeddings") else W["lm_head.weight"]
    return x @ head.t()


def mistral_model(gen):
    cfg, W, shapes, targets, fwd = llama_model(gen)
    cfg.update({"architectures": ["MistralForCausalLM"], "model_type": "mistral", "sliding_window": 3})
    del cfg["attention_bias"]
    return cfg, W, shapes, targets, fwd


def llama_model(gen, qwen2=False):
    cfg = {
        "architectures": ["Qwen2ForCausalLM" if qwen2 else "LlamaForCausalLM"], "model_type": "qwen2" if qwen2 else "llama",
        "vocab_size": 128, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "hidden_act": "silu", "max_position_embeddings": 64,
        "rms_norm_eps": 1e-6, "rope_theta": 10000.0 if not qwen2 else 1000000.0, "tie_word_embeddings": qwen2,
        "attention_bias": False, "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "float32",
    }
    if qwen2:
        del cfg["attention_bias"]
    H, V, I = cfg["hidden_size"], cfg["vocab_size"], cfg["intermediate_size"]
    hd = H // cfg["num_attention_heads"]
    kv = cfg["num_key_value_heads"] * hd
    W = {"model.embed_tokens.weight": torch.randn(V, H, generator=gen) * 0.5}
    shapes = {}
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}"
        for ln in ("input_layernorm", "post_attention_layernorm"):
            W[f"{p}.{ln}.weight"] = 1 + 0.1 * torch.randn(H, generator=gen)
        for name, fin, fout in (("self_attn.q_proj", H, H), ("self_attn.k_proj", H, kv), ("self_attn.v_proj", H, kv), ("self_attn.o_proj", H, H),
                                ("mlp.gate_proj", H, I), ("mlp.up_proj", H, I), ("mlp.down_proj", I, H)):
            W[f"{p}.{name}.weight"] = torch.randn(fout, fin, generator=gen) * (0.6 / math.sqrt(fin))
            shapes[f"{p}.{name}"] = (fin, fout)
            if qwen2 and name in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"):
                W[f"{p}.{name}.bias"] = 0.1 * torch.randn(fout, generator=gen)
    W["model.norm.weight"] = 1 + 0.1 * torch.randn(H, generator=gen)
    if not qwen2:
        W["lm_head.weight"] = torch.randn(V, H, generator=gen) * (1.0 / math.sqrt(H))
    targets = [f"model.layers.{i}.self_attn.{m}" for i in range(cfg["num_hidden_layers"]) for m in ("q_proj", "v_proj")]
    return cfg, W, shapes, targets, llama_forward


# ------------------------------------------------------------ tokenizer ----

WORDS = ("the a an is was and or not very good bad movie film great story music hello world "
         "i you it this that love what how why who once upon time there lived king queen").split()
PUNCT = list(".,!?'-")
LETTERS = list("abcdefghijklmnopqrstuvwxyz")


def tokenizer_files(model_type):
    if model_type == "gpt2":
        specials, bos, eos, unk = ["<|endoftext|>", "<unk>"], "<|endoftext|>", "<|endoftext|>", "<unk>"
    else:
        specials, bos, eos, unk = ["<unk>", "<s>", "</s>"], "<s>", "</s>", "<unk>"
    toks = specials + PUNCT + LETTERS + ["##" + c for c in LETTERS] + WORDS
    assert len(toks) <= 128, len(toks)
    vocab = {t: i for i, t in enumerate(toks)}
    post = None
    if model_type in ("llama", "mistral"):  # LlamaTokenizer adds <s>
        st = lambda t: {"SpecialToken": {"id": t, "type_id": 0}}
        sq = lambda x: {"Sequence": {"id": x, "type_id": 0}}
        post = {"type": "TemplateProcessing", "single": [st(bos), sq("A")], "pair": [st(bos), sq("A"), st(bos), sq("B")],
                "special_tokens": {bos: {"id": bos, "ids": [vocab[bos]], "tokens": [bos]}}}
    added = [{"id": vocab[t], "content": t, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for t in specials]
    tok = {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "normalizer": {"type": "Lowercase"},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": post,
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
        "model": {"type": "WordPiece", "unk_token": unk, "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": 100, "vocab": vocab},
    }
    cfg = {"bos_token": bos, "eos_token": eos, "unk_token": unk, "model_max_length": 64,
           "tokenizer_class": "GPT2TokenizerFast" if model_type == "gpt2" else "PreTrainedTokenizerFast"}
    if model_type == "qwen2":  # a tiny chat template (role: content, turns separated by '.')
        cfg["chat_template"] = ("{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}{% if not loop.last %} . {% endif %}{% endfor %}"
                                "{% if add_generation_prompt %} . assistant:{% endif %}")
    return tok, cfg


# --------------------------------------------------------------- golden ----

def causal_lm_loss(logits, labels):
    V = logits.shape[-1]
    return F.cross_entropy(logits[:, :-1].reshape(-1, V), labels[:, 1:].reshape(-1), ignore_index=-100)


def make(name, builder, seed):
    gen = torch.Generator().manual_seed(seed)
    cfg, W, shapes, targets, fwd = builder(gen)
    V = cfg["vocab_size"]
    ids = torch.randint(3, V, (2, 8), generator=gen)
    mask = torch.ones(2, 8)
    mask[1, 5:] = 0
    ids[1, 5:] = 0
    labels = ids.clone()
    labels[:, :3] = -100  # prompt tokens
    labels[mask == 0] = -100
    with torch.no_grad():
        logits = fwd(W, cfg, ids, mask)
    lora = Lora(targets, shapes, gen)
    loss = causal_lm_loss(fwd(W, cfg, ids, mask, lora), labels)
    loss.backward()
    grads = {k: flat(p.grad) for k, p in lora.p.items()}

    prompt = torch.randint(3, V, (1, 5), generator=gen)
    seq = prompt.clone()
    margins = []
    with torch.no_grad():
        for _ in range(8):
            last = fwd(W, cfg, seq, torch.ones_like(seq, dtype=torch.float32))[0, -1]
            top = torch.topk(last, 2).values
            margins.append(float(top[0] - top[1]))
            seq = torch.cat([seq, last.argmax().view(1, 1)], dim=1)
    print(f"{name}: loss {loss.item():.5f}, min greedy margin {min(margins):.4f}")

    d = os.path.join(OUT, name)
    write_hf_folder(d, cfg, W)
    golden = {
        "input_ids": ids.tolist(),
        "attention_mask": mask.tolist(),
        "labels": labels.tolist(),
        "logits": flat(logits),
        "lora": {
            "r": R, "lora_alpha": ALPHA, "target_modules": sorted({t.split(".")[-1] for t in targets}),
            "params": {k: {"shape": list(p.shape), "data": flat(p)} for k, p in lora.p.items()},
        },
        "lora_loss": float(loss),
        "lora_grads": grads,
        "generate": {"prompt": prompt[0].tolist(), "greedy": seq[0, prompt.shape[1]:].tolist()},
    }
    with open(os.path.join(d, "golden.json"), "w") as f:
        json.dump(golden, f)


if __name__ == "__main__":
    make("gpt2-tiny", gpt2_model, 1)
    make("llama-tiny", llama_model, 2)
    make("qwen2-tiny", lambda g: llama_model(g, qwen2=True), 3)
    make("mistral-tiny", mistral_model, 4)
