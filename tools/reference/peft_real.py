#!/usr/bin/env python3
"""Fixtures made by real Hugging Face PEFT 0.20 (not a re-implementation).

Runs in the offline PEFT environment (../shared/tools/peft-env/, README there):

  ../shared/tools/peft-env/run.sh tools/reference/peft_real.py            # PEFT -> lorakit
  npx tsx tools/reference/lorakit_adapters.ts                             # lorakit's folders
  ../shared/tools/peft-env/run.sh tools/reference/peft_real.py --lorakit  # lorakit -> PEFT

Both modes rewrite every case of their folder and are deterministic (seeds,
PYTHONHASHSEED=0, one thread): a rerun on the same versions gives the same
bytes. Checked by test/peft_real.test.ts and test/peft_real_adalora.test.ts.

The base models are the tiny Hugging Face folders of test/fixtures/hf/ (loaded
by transformers' Auto* classes) and the inputs are their golden.json batches.

PEFT -> lorakit (default) writes test/fixtures/peft_real/peft/<case>/:
  adapter/                 what PEFT's save_pretrained wrote (README.md dropped)
  case.json                the model, what was done, PEFT's warnings, the config
  expected.safetensors     PEFT's outputs on the *reloaded* folder
                           (PeftModel.from_pretrained, as a user gets it):
                             logits, logits_merged (after merge_and_unload),
                             hidden/hidden_merged (BERT: last_hidden_state),
                             merged.<weight name> for every base weight that
                             merge_and_unload changed,
                             and, per case, init.<...> tensors (PiSSA/OLoRA:
                             PEFT's own A0, B0 and residual weight at init)
Each adapter is made by PEFT itself: get_peft_model on the base, then its
trainable tensors are moved by seeded noise (standing in for training) so the
file really changes outputs. AdaLoRA cases (adalora_*) are then trained a few
real steps on the golden batch (AdamW, PEFT's loss with its orthogonality term,
update_and_allocate after each step), so their masks and rank_pattern are
PEFT's own; save_pretrained drops the masked triplets and from_pretrained
resizes the modules by rank_pattern. Combination cases use PEFT's own
add_weighted_adapter on source adapters made the same way and save every
source and result folder with save_pretrained.

lorakit -> PEFT (--lorakit) reads test/fixtures/peft_real/lorakit/<case>/
(adapter folders lorakit writes deterministically:
tools/reference/lorakit_adapters.ts) and writes peft.safetensors (PEFT's
outputs with that folder, unmerged and merged, and its merged weights) and
peft.json (PEFT's warnings and the config PEFT parsed) next to each.
"""
import argparse
import contextlib
import copy
import json
import math
import os
import shutil
import sys
import tempfile
import warnings

import torch

import peft
import transformers
from peft import AdaLoraConfig, FourierFTConfig, LoraConfig, PeftModel, RandLoraConfig, VeraConfig, get_peft_model
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoModelForSequenceClassification

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
HF = os.path.join(REPO, "test", "fixtures", "hf")
OUT = os.path.join(REPO, "test", "fixtures", "peft_real")

torch.set_num_threads(1)
AUTO = {
    "bert": AutoModelForSequenceClassification,
    "llama-tiny": AutoModelForCausalLM,
    "gpt2-tiny": AutoModelForCausalLM,
    "t5-tiny": AutoModelForSeq2SeqLM,
    "bart-tiny": AutoModelForSeq2SeqLM,
}


# ------------------------------------------------------------------ torch 1.13

def torch2_kaiming_uniform():
    """torch >= 2's kaiming_uniform_(..., generator=...) on torch 1.13, which PEFT's RandLoRA calls: the same
    bound (gain·√(3/fan)) and tensor.uniform_(-bound, bound, generator=generator) (torch/nn/init.py in torch 2).
    torch 1.13 draws bfloat16 uniform_ values differently from torch 2, so the projections drawn here differ from
    torch 2's (and lorakit's); the fixtures store them (save_projection), so lorakit uses them as stored."""
    orig = torch.nn.init.kaiming_uniform_

    def kaiming_uniform_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
        if generator is None:
            return orig(tensor, a=a, mode=mode, nonlinearity=nonlinearity)
        fan = torch.nn.init._calculate_correct_fan(tensor, mode)
        bound = math.sqrt(3.0) * torch.nn.init.calculate_gain(nonlinearity, a) / math.sqrt(fan)
        with torch.no_grad():
            return tensor.uniform_(-bound, bound, generator=generator)

    torch.nn.init.kaiming_uniform_ = kaiming_uniform_
    # transformers' from_pretrained puts back the init functions it saw at import: give it this one.
    import transformers.modeling_utils as mu
    mu.TORCH_INIT_FUNCTIONS["kaiming_uniform_"] = kaiming_uniform_


# ------------------------------------------------------------------ models and runs

def base_model(name):
    """The fixture model as transformers loads it, float32, eval mode (dropout off)."""
    m = AUTO[name].from_pretrained(os.path.join(HF, name), torch_dtype=torch.float32).eval()
    # what PEFT writes as base_model_name_or_path: the folder, relative to the repository
    m.name_or_path = f"test/fixtures/hf/{name}"
    return m


def batch(name):
    with open(os.path.join(HF, name, "golden.json")) as f:
        g = json.load(f)
    b = {"input_ids": torch.tensor(g["input_ids"]), "attention_mask": torch.tensor(g["attention_mask"])}
    if "decoder_input_ids" in g:
        b["decoder_input_ids"] = torch.tensor(g["decoder_input_ids"])
    if name == "bert":
        b["token_type_ids"] = torch.tensor(g["token_type_ids"])
    return b


@torch.no_grad()
def outputs(model, name):
    out = model(**batch(name), output_hidden_states=(name == "bert"))
    r = {"logits": out.logits.detach().clone().float()}
    if name == "bert":
        r["hidden"] = out.hidden_states[-1].detach().clone().float()
    return r


def record_warnings():
    """Context manager collecting every warning PEFT/transformers emit (messages only)."""
    @contextlib.contextmanager
    def cm():
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            got = []
            yield got
            got.extend(str(x.message) for x in w)
    return cm()


def move_trainable(model, seed, std=0.05):
    """Seeded noise on every trainable tensor, in name order: stands in for training."""
    g = torch.Generator().manual_seed(seed)
    moved = []
    with torch.no_grad():
        for n, p in sorted(model.named_parameters(), key=lambda x: x[0]):
            if p.requires_grad:
                p.add_(torch.randn(p.shape, generator=g) * std)
                moved.append(n)
    return moved


def save_folder(model, dst, **kw):
    """PEFT's save_pretrained into dst (the adapter's own folder), README.md dropped (it holds PEFT's model card)."""
    tmp = tempfile.mkdtemp()
    with record_warnings() as w:
        model.save_pretrained(tmp, **kw)
    names = kw.get("selected_adapters") or ["default"]
    assert len(names) == 1
    src = tmp if names[0] == "default" else os.path.join(tmp, names[0])
    if os.path.exists(dst):
        shutil.rmtree(dst)
    os.makedirs(dst)
    for f in ("adapter_config.json", "adapter_model.safetensors"):
        shutil.copy(os.path.join(src, f), os.path.join(dst, f))
    shutil.rmtree(tmp)
    return w


def reload_and_run(name, folder):
    """What a user gets from the folder: PeftModel.from_pretrained on a fresh base; outputs, then merge_and_unload."""
    base_sd = {k: v.clone() for k, v in base_model(name).state_dict().items()}
    with record_warnings() as w:
        m = PeftModel.from_pretrained(base_model(name), folder).eval()
    out = outputs(m, name)
    with record_warnings() as w2:
        merged = m.merge_and_unload()
    mo = outputs(merged, name)
    for k, v in mo.items():
        out[f"{k}_merged"] = v
    for k, v in merged.state_dict().items():
        if k in base_sd and not torch.equal(base_sd[k], v):
            out[f"merged.{k}"] = v.detach().clone().float().contiguous()
    cfg = m.peft_config["default"] if "default" in m.peft_config else None
    return out, w + w2, cfg


def clean(msgs):
    """Warnings worth keeping: PEFT's own (not transformers' deprecation chatter)."""
    skip = ("past_key_values", "Could not find a config file", "Xformers", "TypedStorage")
    return sorted({m for m in msgs if not any(s in m for s in skip)})


def write_case(sub, name, folder_src_model, what, extra_tensors=None, extra_json=None, save_kw=None):
    """Save a PEFT model's adapter under peft_real/<sub>/adapter and PEFT's outputs on the reloaded folder."""
    d = os.path.join(OUT, sub)
    folder = os.path.join(d, "adapter")
    w_save = save_folder(folder_src_model, folder, **(save_kw or {}))
    out, w_load, cfg = reload_and_run(name, folder)
    for k, v in (extra_tensors or {}).items():
        out[k] = v.detach().clone().float().contiguous()
    save_file({k: v.contiguous() for k, v in out.items()}, os.path.join(d, "expected.safetensors"), metadata={"format": "pt"})
    info = {
        "model": name,
        "what": what,
        "peft_version": peft.__version__,
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "warnings_on_save": clean(w_save),
        "warnings_on_load": clean(w_load),
        **(extra_json or {}),
    }
    with open(os.path.join(d, "case.json"), "w") as f:
        json.dump(info, f, indent=2, sort_keys=True)
        f.write("\n")
    sizes = {k: list(v.shape) for k, v in out.items() if k.startswith("merged.")}
    print(f"  {sub}: {len(load_file(os.path.join(folder, 'adapter_model.safetensors')))} tensors, merged weights {len(sizes)}, "
          f"|logits| max {out['logits'].abs().max().item():.3g}, warnings {len(info['warnings_on_save']) + len(info['warnings_on_load'])}")
    return out


# ------------------------------------------------------------------ PEFT -> lorakit cases

def lora_case(sub, name, cfg, seed, what, std=0.05, before_move=None):
    torch.manual_seed(seed)
    m = get_peft_model(base_model(name), cfg)
    if before_move:
        before_move(m)
    moved = move_trainable(m, seed + 1000, std)
    write_case(sub, name, m, what, extra_json={"moved": moved})


def residual_init_case(sub, name, cfg, seed, what):
    """PiSSA / OLoRA: PEFT's init (A0, B0, residual W), 'training', then the save that converts to a plain LoRA."""
    torch.manual_seed(seed)
    base = base_model(name)
    init_value = cfg.init_lora_weights
    m = get_peft_model(base, cfg)
    init = {}
    for mod_name, mod in m.base_model.model.named_modules():
        if hasattr(mod, "lora_A") and "default" in getattr(mod, "lora_A", {}):
            init[f"init.{mod_name}.lora_A"] = mod.lora_A["default"].weight.detach().clone()
            init[f"init.{mod_name}.lora_B"] = mod.lora_B["default"].weight.detach().clone()
            init[f"init.{mod_name}.residual"] = mod.base_layer.weight.detach().clone()
    tmp = tempfile.mkdtemp()
    init_dir = os.path.join(tmp, "init")
    m.peft_config["default"].init_lora_weights = True
    m.save_pretrained(init_dir)
    m.peft_config["default"].init_lora_weights = init_value
    moved = move_trainable(m, seed + 1000)
    init_config = {k: v for k, v in cfg.to_dict().items() if k in ("r", "lora_alpha", "use_rslora", "target_modules")}
    init_config["init_lora_weights"] = init_value
    init_config["target_modules"] = sorted(init_config["target_modules"])
    write_case(sub, name, m, what, extra_tensors=init, extra_json={"moved": moved, "init_config": {"peft_type": "LORA", **init_config}},
               save_kw={"path_initial_model_for_weight_conversion": init_dir})
    shutil.rmtree(tmp)


def golden_labels(name):
    with open(os.path.join(HF, name, "golden.json")) as f:
        return torch.tensor(json.load(f)["labels"])


def adalora_case(sub, name, cfg, seed, what, steps, lr=1e-2, std=0.05, edit=None):
    """AdaLoRA as PEFT trains it: get_peft_model, seeded noise on every trainable tensor (lora_E starts at 0), then
    `steps` real steps on the golden batch (PEFT's loss with its orthogonality term, AdamW, and
    update_and_allocate(t) after each step, as PEFT's docs say), so the importance scores, the masked lora_E
    entries and config.rank_pattern are PEFT's own. `edit` then may set a rank_pattern directly. save_pretrained
    drops the masked triplets (resize_state_dict_by_rank_pattern); from_pretrained resizes the modules."""
    torch.manual_seed(seed)
    m = get_peft_model(base_model(name), cfg)
    moved = move_trainable(m, seed + 1000, std)
    b, labels = batch(name), golden_labels(name)
    opt = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=lr)
    ranks = []
    for t in range(steps):
        loss = m(**b, labels=labels).loss
        loss.backward()
        opt.step()
        m.base_model.update_and_allocate(t)
        opt.zero_grad()
        rp = m.peft_config["default"].rank_pattern
        ranks.append(None if rp is None else {k.replace(".default", ""): int(sum(v)) for k, v in sorted(rp.items())})
    if edit:
        edit(m)
    write_case(sub, name, m, what, extra_json={"moved": moved, "steps": steps, "ranks_after_step": ranks})


def set_rank_pattern(pattern):
    """A rank_pattern set directly (as update_and_allocate leaves it): PEFT's own masking with it, then the config."""
    def edit(m):
        m.base_model.rankallocator.mask_using_rank_pattern(m.base_model.model, pattern)
        m.peft_config["default"].rank_pattern = pattern
    return edit


def adalora_cases(P):
    L = "llama-tiny"
    adalora_case(P + "adalora_llama", L, AdaLoraConfig(
        init_r=6, target_r=3, lora_alpha=16, tinit=2, tfinal=3, deltaT=1, total_step=10, target_modules=["q_proj", "v_proj", "up_proj"]), 31,
        "AdaLoRA trained 10 steps by PEFT (update_and_allocate: warm-up, cubic budget, the final mask at total_step - tfinal, "
        "then the fixed pattern): saved with its rank_pattern, masked triplets dropped", steps=10)
    adalora_case(P + "adalora_llama_midway", L, AdaLoraConfig(
        init_r=4, target_r=2, lora_alpha=8, tinit=1, tfinal=4, deltaT=2, total_step=20, target_modules="all-linear"), 32,
        "AdaLoRA all-linear saved in the middle of the budget phase (deltaT 2, 8 of 20 steps): the last mask was at step 6, "
        "step 7 moved the masked lora_E entries again and the save drops them by rank_pattern", steps=8)
    keep = {
        "model.layers.0.self_attn.q_proj.lora_E": [True, False, True, True, False],
        "model.layers.0.self_attn.k_proj.lora_E": [False] * 5,
        "model.layers.0.mlp.gate_proj.lora_E": [True] * 5,
        "model.layers.1.self_attn.q_proj.lora_E": [False, False, False, True, False],
        "model.layers.1.self_attn.k_proj.lora_E": [True, True, False, False, True],
        "model.layers.1.mlp.gate_proj.lora_E": [False, True, False, True, False],
    }
    adalora_case(P + "adalora_llama_alpha0", L, AdaLoraConfig(
        init_r=5, target_r=2, lora_alpha=0, tinit=4, total_step=10, target_modules=["q_proj", "k_proj", "gate_proj"]), 33,
        "AdaLoRA with lora_alpha 0 (PEFT's scaling: float(r), which after the resize on load is each module's kept rank) "
        "and a rank_pattern set directly, one module at rank 0", steps=3, std=0.3, edit=set_rank_pattern(keep))
    adalora_case(P + "adalora_gpt2", "gpt2-tiny", AdaLoraConfig(
        init_r=4, target_r=2, lora_alpha=8, tinit=1, tfinal=2, total_step=8, target_modules=["c_attn", "attn.c_proj"], fan_in_fan_out=True,
        bias="all"), 34,
        "AdaLoRA on Conv1D (fan_in_fan_out) with bias='all', trained 8 steps by PEFT with update_and_allocate", steps=8)
    adalora_case(P + "adalora_bert_seq_cls", "bert", AdaLoraConfig(
        init_r=4, target_r=2, lora_alpha=32, tinit=1, tfinal=2, total_step=8, target_modules=["query", "value", "dense"], task_type="SEQ_CLS"), 35,
        "AdaLoRA on BERT query/value/dense, task_type SEQ_CLS (classifier in modules_to_save), trained 8 steps by PEFT", steps=8)


def combination_cases():
    """add_weighted_adapter on llama-tiny: sources of different scaling, rsLoRA, other ranks, negative weights."""
    name = "llama-tiny"
    qv = ["q_proj", "v_proj"]
    sources = {
        "a": LoraConfig(r=4, lora_alpha=8, target_modules=qv),
        "b": LoraConfig(r=4, lora_alpha=32, target_modules=qv + ["k_proj"]),
        "c": LoraConfig(r=4, lora_alpha=8, target_modules=qv, use_rslora=True),
        "d": LoraConfig(r=4, lora_alpha=16, target_modules=qv, use_rslora=True),
        "e": LoraConfig(r=2, lora_alpha=4, target_modules=qv, rank_pattern={"layers.1.self_attn.v_proj": 3}),
        "emb": LoraConfig(r=4, lora_alpha=8, target_modules=["embed_tokens", "q_proj"]),
        "emb2": LoraConfig(r=4, lora_alpha=2, target_modules=["embed_tokens", "q_proj"]),
    }
    combos = [
        # sub, sources, weights, combination_type
        ("linear_alpha", ["a", "b"], [0.7, 0.3], "linear"),
        ("linear_negative", ["a", "b"], [1.0, -0.5], "linear"),
        ("cat_alpha", ["a", "b"], [0.7, 0.3], "cat"),
        ("cat_negative_ranks", ["a", "e"], [1.0, -0.5], "cat"),
        ("linear_rslora", ["c", "d"], [0.6, 0.4], "linear"),
        ("cat_rslora", ["c", "d"], [0.6, 0.4], "cat"),
        ("linear_plain_then_rslora", ["a", "c"], [0.5, 0.5], "linear"),
        ("linear_single", ["b"], [2.0], "linear"),
        ("linear_embedding", ["emb", "emb2"], [0.7, -0.3], "linear"),
        ("cat_embedding", ["emb", "emb2"], [0.7, -0.3], "cat"),
    ]
    torch.manual_seed(11)
    m = None
    for i, (k, cfg) in enumerate(sources.items()):
        if m is None:
            m = get_peft_model(base_model(name), cfg, adapter_name=k)
        else:
            m.add_adapter(k, cfg)
    g = torch.Generator().manual_seed(12)
    with torch.no_grad():
        for n, p in sorted(m.named_parameters(), key=lambda x: x[0]):
            if "lora_" in n:
                p.add_(torch.randn(p.shape, generator=g) * 0.05)
    m.eval()
    for k in sources:
        m.set_adapter(k)
        write_case(f"combine/source_{k}", name, m, f"source adapter '{k}' for add_weighted_adapter", save_kw={"selected_adapters": [k]})
    for sub, srcs, w, ct in combos:
        with record_warnings() as ww:
            m.add_weighted_adapter(srcs, w, sub, combination_type=ct)
        m.set_adapter(sub)
        write_case(f"combine/{sub}", name, m, f"add_weighted_adapter({srcs}, {w}, combination_type='{ct}')",
                   extra_json={"sources": srcs, "weights": w, "combination_type": ct, "warnings_on_combine": clean(ww)},
                   save_kw={"selected_adapters": [sub]})


def peft_to_lorakit():
    print(f"PEFT {peft.__version__}, transformers {transformers.__version__}, torch {torch.__version__}")
    for sub in ("peft",):
        shutil.rmtree(os.path.join(OUT, sub), ignore_errors=True)
    P = "peft/"
    L = "llama-tiny"
    # LoRA on llama-tiny: the plain case, every targeting option, rsLoRA, DoRA, embeddings, modules_to_save.
    lora_case(P + "lora_llama", L, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]), 1,
              "LoRA r=4 alpha=8 on q_proj, v_proj")
    lora_case(P + "lora_llama_patterns", L, LoraConfig(
        r=4, lora_alpha=8, lora_dropout=0.1, target_modules="all-linear",
        rank_pattern={"q_proj": 2, "layers.1.mlp.down_proj": 6}, alpha_pattern={"v_proj": 16, "model.layers.0.mlp.up_proj": 3}), 2,
        "LoRA all-linear with rank_pattern / alpha_pattern (a short key and a full path each) and dropout")
    lora_case(P + "lora_llama_regex", L, LoraConfig(r=4, lora_alpha=16, target_modules=r".*\.layers\.0\.self_attn\.(q|k|o)_proj"), 3,
              "LoRA with a regex target_modules (full match)")
    lora_case(P + "lora_llama_exclude_layers", L, LoraConfig(
        r=3, lora_alpha=6, target_modules=["q_proj", "k_proj", "v_proj", "gate_proj"], exclude_modules=["k_proj"],
        layers_to_transform=[1], layers_pattern="layers"), 4,
        "LoRA with exclude_modules and layers_to_transform/layers_pattern")
    lora_case(P + "rslora_llama", L, LoraConfig(r=4, lora_alpha=8, use_rslora=True, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]), 5,
              "rsLoRA (scaling alpha/sqrt(r))")
    lora_case(P + "dora_llama", L, LoraConfig(r=4, lora_alpha=8, use_dora=True, target_modules=["q_proj", "v_proj", "up_proj"]), 6,
              "DoRA (use_dora) with the magnitude moved too")
    lora_case(P + "lora_llama_embedding", L, LoraConfig(r=4, lora_alpha=8, target_modules=["embed_tokens", "q_proj"]), 7,
              "LoRA on the (untied) embedding table and q_proj")
    lora_case(P + "lora_llama_modules_to_save", L, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj"], modules_to_save=["lm_head"]), 8,
              "LoRA + modules_to_save lm_head (a trained copy)")
    residual_init_case(P + "pissa_llama", L, LoraConfig(r=4, lora_alpha=8, init_lora_weights="pissa", target_modules=["q_proj", "v_proj"]), 9,
                       "PiSSA (exact SVD init), saved converted to LoRA (path_initial_model_for_weight_conversion)")
    residual_init_case(P + "olora_llama", L, LoraConfig(r=4, lora_alpha=8, init_lora_weights="olora", target_modules=["q_proj", "v_proj"]), 10,
                       "OLoRA (QR init), saved converted to LoRA")
    residual_init_case(P + "pissa_rslora_llama", L, LoraConfig(r=4, lora_alpha=8, use_rslora=True, init_lora_weights="pissa", target_modules=["q_proj"]), 19,
                       "PiSSA with rsLoRA, saved converted to LoRA (alpha scaled by sqrt 2)")
    # VeRA and FourierFT
    lora_case(P + "vera_llama", L, VeraConfig(r=8, target_modules=["q_proj", "v_proj", "up_proj"], save_projection=True, projection_prng_key=3), 11,
              "VeRA with save_projection (vera_A/vera_B in the file)")
    lora_case(P + "vera_llama_noproj", L, VeraConfig(r=8, target_modules=["q_proj", "v_proj"], save_projection=False, projection_prng_key=5), 12,
              "VeRA without stored projections (regenerated from projection_prng_key)")
    lora_case(P + "randlora_llama", L, RandLoraConfig(r=8, randlora_alpha=40, target_modules=["q_proj", "v_proj", "up_proj"], save_projection=True,
                                                      projection_prng_key=4), 23,
              "RandLoRA with save_projection (randlora_A/B in the file, as PEFT stores them: bfloat16)", std=0.5)
    lora_case(P + "fourierft_llama", L, FourierFTConfig(n_frequency=50, scaling=100.0, random_loc_seed=7, target_modules=["q_proj", "v_proj", "down_proj"],
                                                        n_frequency_pattern={"v_proj": 20}), 13,
              "FourierFT with n_frequency_pattern", std=0.5)
    # GPT-2: Conv1D (fan_in_fan_out) and the bias modes.
    G = "gpt2-tiny"
    lora_case(P + "lora_gpt2_lora_only", G, LoraConfig(r=4, lora_alpha=8, target_modules=["c_attn", "c_fc"], fan_in_fan_out=True, bias="lora_only"), 14,
              "LoRA on Conv1D (fan_in_fan_out) with bias='lora_only': PEFT 0.20 trains base_layer.bias but saves none")
    lora_case(P + "lora_gpt2_bias_all", G, LoraConfig(r=4, lora_alpha=8, target_modules=["c_attn"], fan_in_fan_out=True, bias="all"), 15,
              "LoRA with bias='all': PEFT trains and saves every bias of the model (LayerNorms too)")
    lora_case(P + "dora_gpt2", G, LoraConfig(r=4, lora_alpha=8, use_dora=True, target_modules=["c_attn", "c_proj"], fan_in_fan_out=True), 16,
              "DoRA on Conv1D")
    lora_case(P + "fourierft_gpt2", G, FourierFTConfig(n_frequency=40, scaling=50.0, target_modules=["c_attn"], fan_in_fan_out=True), 17,
              "FourierFT on Conv1D (fan_in_fan_out)", std=0.5)
    # BERT sequence classification: PEFT's SEQ_CLS task puts the classifier in modules_to_save.
    B = "bert"
    lora_case(P + "lora_bert_seq_cls", B, LoraConfig(r=4, lora_alpha=8, target_modules=["query", "value"], task_type="SEQ_CLS"), 18,
              "LoRA on query/value, task_type SEQ_CLS (classifier in modules_to_save)")
    lora_case(P + "lora_bert_embedding", B, LoraConfig(r=4, lora_alpha=4, target_modules=["word_embeddings", "query"]), 20,
              "LoRA on word_embeddings (padding_idx 0) and query")
    # encoder-decoders
    lora_case(P + "lora_t5", "t5-tiny", LoraConfig(r=4, lora_alpha=8, target_modules=["q", "v", "wi", "wo"], task_type="SEQ_2_SEQ_LM"), 21,
              "LoRA on T5 q, v, wi, wo (encoder and decoder)")
    lora_case(P + "lora_bart", "bart-tiny", LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "fc1"], rank_pattern={"fc1": 2},
                                                      task_type="SEQ_2_SEQ_LM"), 22,
              "LoRA on BART q_proj, v_proj, fc1 (rank_pattern) in encoder and decoder")
    adalora_cases(P)
    shutil.rmtree(os.path.join(OUT, "combine"), ignore_errors=True)
    combination_cases()


# ------------------------------------------------------------------ lorakit -> PEFT

def lorakit_to_peft():
    root = os.path.join(OUT, "lorakit")
    cases = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    print(f"PEFT {peft.__version__} on {len(cases)} lorakit-written adapters")
    for case in cases:
        d = os.path.join(root, case)
        with open(os.path.join(d, "case.json")) as f:
            meta = json.load(f)
        name = meta["model"]
        folder = os.path.join(d, "adapter")
        with record_warnings() as w:
            parsed = peft.PeftConfig.from_pretrained(folder)
        out, w_load, cfg = reload_and_run(name, folder)
        save_file({k: v.contiguous() for k, v in out.items()}, os.path.join(d, "peft.safetensors"), metadata={"format": "pt"})
        parsed_dict = {k: (sorted(v) if isinstance(v, set) else v) for k, v in parsed.to_dict().items()}
        info = {"warnings": clean(w + w_load), "peft_version": peft.__version__,
                "config_as_peft_reads_it": json.loads(json.dumps(parsed_dict, default=str))}
        with open(os.path.join(d, "peft.json"), "w") as f:
            json.dump(info, f, indent=2, sort_keys=True)
            f.write("\n")
        print(f"  {case}: warnings {info['warnings']}")


def main():
    # PEFT keeps target_modules as a set: a fixed string hash keeps the order it writes them in the same run to run.
    if os.environ.get("PYTHONHASHSEED") != "0":
        os.execve(sys.executable, [sys.executable] + sys.argv, {**os.environ, "PYTHONHASHSEED": "0"})
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lorakit", action="store_true", help="run PEFT on the lorakit-written adapters instead")
    a = ap.parse_args()
    if peft.__version__ != "0.20.0":
        sys.exit(f"this script pins PEFT 0.20.0; found {peft.__version__} (run it with ../shared/tools/peft-env/run.sh)")
    if torch.__version__.startswith("1."):
        torch2_kaiming_uniform()
    if a.lorakit:
        lorakit_to_peft()
    else:
        peft_to_lorakit()


if __name__ == "__main__":
    main()
