#!/usr/bin/env python3
"""Trains the LoRA (or DoRA) adapter `lorakit export-recipe` described, on N processes.

Written by lorakit (src/tasks/recipe/train.py); reads recipe.json beside it:
the step-0 adapter (adapter0/), the data as token ids with labels (lorakit's
tokenizer, chat template, EOS and prompt masking already applied), lorakit's
batch order, and every setting of the run (LoRA config, AdamW, schedule,
clipping, batch arithmetic). The result is a PEFT adapter folder
(<out>/adapter) that `lorakit generate|merge|eval|train --from-adapter` reads.

Backends:
  plain  torch only: the repo's reference decoders (hf_decoders.py: GPT-2,
         Llama, Qwen2, Mistral in plain torch with Hugging Face's weight names),
         the base model's safetensors read by hand, LoRA applied by name.
  peft   transformers + PEFT (when importable): AutoModelForCausalLM +
         PeftModel.from_pretrained(adapter0, is_trainable=True).

Distribution (torchrun sets WORLD_SIZE and RANK; with --engine accelerate,
accelerate's PartialState sets up the processes and the device): every
process reads the whole recipe; each global batch (lorakit's, in lorakit's
order) is split row by row across the ranks (row i goes to rank i % world),
each rank runs its rows in micro-batches of recipe["per_rank_batch"]
(gradient accumulation), the loss of a micro-batch is its summed token
cross-entropy divided by the global batch's token count, and the gradients
are summed over ranks (all_reduce, as DDP averages per-rank means): the
update is the one of the token mean over the global batch, whatever the
number of processes. Then torch's clip_grad_norm_, LambdaLR's multiplier and
torch.optim.AdamW, as lorakit steps.

DeepSpeed ZeRO (export-recipe --engine accelerate --deepspeed zero2|zero3): accelerate's
DeepSpeed plugin reads ds_config.json; see train_deepspeed.

Usage: python3 train.py [--out DIR] [--backend plain|peft] [--dtype float32|float64] [--probe]
"""
import argparse
import hashlib
import json
import math
import os
import shutil
import struct
import sys

import torch
import torch.distributed as dist
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

ST_DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64, "I64": torch.int64}


def read_safetensors(path):
    """name -> tensor, from the file format itself (u64 header size, JSON header, raw little-endian data)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, h in header.items():
        if name == "__metadata__":
            continue
        a, b = h["data_offsets"]
        raw = bytearray(data[a:b])
        dt = ST_DTYPES[h["dtype"]]
        if dt == torch.bfloat16:
            t = torch.frombuffer(raw, dtype=torch.int16).view(torch.bfloat16) if len(raw) else torch.zeros(0, dtype=dt)
        else:
            t = torch.frombuffer(raw, dtype=dt) if len(raw) else torch.zeros(0, dtype=dt)
        out[name] = t.reshape(h["shape"]).clone()
    return out


def write_safetensors(path, tensors):
    """float32 tensors, {"format": "pt"} metadata, sorted names, header padded to 8 bytes (what PEFT writes)."""
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        b = tensors[name].detach().to(torch.float32).contiguous().numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def base_weights(model_dir):
    single = os.path.join(model_dir, "model.safetensors")
    if os.path.exists(single):
        return read_safetensors(single)
    with open(os.path.join(model_dir, "model.safetensors.index.json")) as f:
        shards = sorted(set(json.load(f)["weight_map"].values()))
    W = {}
    for s in shards:
        W.update(read_safetensors(os.path.join(model_dir, s)))
    return W


def lr_multiplier(step, s):
    """transformers' get_{linear,cosine,constant}_schedule_with_warmup lambdas (LambdaLR: step k uses lambda(k))."""
    w, T = s["warmup_steps"], s["total_steps"]
    if step < w:
        return step / max(1, w)
    if s["kind"] == "constant":
        return 1.0
    if s["kind"] == "linear":
        return max(0.0, (T - step) / max(1, T - w))
    progress = (step - w) / max(1, T - w)
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * 0.5 * 2.0 * progress)))


class Lora:
    """PEFT's LoRA on a module path (hf_decoders' `lora.apply` interface): y = base(x) + s·dropout(x)·Aᵀ·Bᵀ.

    With a magnitude vector m (DoRA, Liu et al. 2024, use_dora in PEFT): the weight W + s·B·A is
    decomposed into its row norms and direction, y = base(x) + (m/n − 1)·x·Wᵀ + (m/n)·s·dropout(x)·Aᵀ·Bᵀ
    with n = ‖W + s·B·A‖ per output row of the [out, in] weight, treated as a constant in the
    gradient (the paper's §4.3; PEFT detaches it), x·Wᵀ on the dropped-out input when dropout is on.
    """

    def __init__(self, params, scales, dropout, weights=None, in_out=False):
        self.params, self.scales, self.dropout, self.training = params, scales, dropout, True
        self.weights, self.in_out = weights, in_out  # base weights by name; GPT-2's Conv1D keeps them [in, out]

    def apply(self, name, x, y):
        a = self.params.get(f"base_model.model.{name}.lora_A.weight")
        if a is None:
            return y
        b = self.params[f"base_model.model.{name}.lora_B.weight"]
        s = self.scales[name]
        if self.dropout and self.training:
            x = F.dropout(x, self.dropout)
        lora = s * (x @ a.t()) @ b.t()
        m = self.params.get(f"base_model.model.{name}.lora_magnitude_vector")
        if m is None:
            return y + lora
        w = self.weights[f"{name}.weight"]
        w_out_in = w.t() if self.in_out else w
        n = torch.linalg.vector_norm(w_out_in + s * (b @ a), dim=1).detach()
        base = x @ w if self.in_out else x @ w.t()  # base(x) without its bias
        return y + (m / n - 1) * base + (m / n) * lora


def pad(rows, examples, pad_id):
    """lorakit's causal-LM batch: right-padded ids, mask, HF labels (-100 on the prompt and padding)."""
    T = max(1, max(len(examples[i]["ids"]) for i in rows))
    ids = torch.full((len(rows), T), pad_id, dtype=torch.int64)
    mask = torch.zeros(len(rows), T)
    labels = torch.full((len(rows), T), -100, dtype=torch.int64)
    for r, i in enumerate(rows):
        e = examples[i]
        n = len(e["ids"])
        ids[r, :n] = torch.tensor(e["ids"])
        mask[r, :n] = 1
        labels[r, e["prompt_length"]:n] = torch.tensor(e["ids"][e["prompt_length"]:])
    return ids, mask, labels


def target_count(rows, examples):
    """Tokens whose next token is predicted: the global batch's loss denominator."""
    return sum(max(0, len(examples[i]["ids"]) - max(1, examples[i]["prompt_length"])) for i in rows)


def summed_ce(logits, labels):
    V = logits.shape[-1]
    return F.cross_entropy(logits[:, :-1].reshape(-1, V), labels[:, 1:].reshape(-1), ignore_index=-100, reduction="sum")


class PlainBackend:
    def __init__(self, recipe, dtype):
        import hf_decoders  # the repo's reference decoders (tools/reference/hf_decoders.py), copied beside this file
        torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1"))))
        with open(os.path.join(recipe["model_dir"], "config.json")) as f:
            self.cfg = json.load(f)
        mt = self.cfg["model_type"]
        if mt not in ("llama", "qwen2", "mistral", "gpt2"):
            raise SystemExit(f"train.py --backend plain: model_type {mt!r} is not one of the reference decoders (llama, qwen2, mistral, gpt2); use --backend peft")
        self.forward_fn = hf_decoders.gpt2_forward if mt == "gpt2" else hf_decoders.llama_forward
        self.W = {k: v.to(dtype) for k, v in base_weights(recipe["model_dir"]).items()}
        if mt == "gpt2":  # transformers' GPT-2 checkpoints may lack the "transformer." prefix
            self.W = {(k if k.startswith("transformer.") or k.startswith("lm_head") else "transformer." + k): v for k, v in self.W.items()}
        adapter = read_safetensors(os.path.join(HERE, "adapter0", "adapter_model.safetensors"))
        self.params = {k: v.to(dtype).requires_grad_(True) for k, v in sorted(adapter.items())}
        self.lora = Lora(self.params, recipe["lora"]["scales"], recipe["lora"]["lora_dropout"], self.W, in_out=mt == "gpt2")

    def trainable(self):
        return list(self.params.values())

    def logits(self, ids, mask, training=True):
        self.lora.training = training
        return self.forward_fn(self.W, self.cfg, ids, mask.to(next(iter(self.W.values())).dtype), self.lora)

    def save(self, out):
        write_safetensors(os.path.join(out, "adapter_model.safetensors"), self.params)


class PeftBackend:
    def __init__(self, recipe, dtype):
        from transformers import AutoModelForCausalLM
        from peft import PeftModel
        base = AutoModelForCausalLM.from_pretrained(recipe["model_dir"], torch_dtype=dtype)
        self.model = PeftModel.from_pretrained(base, os.path.join(HERE, "adapter0"), is_trainable=True)
        self.device = torch.device("cpu")

    def trainable(self):
        return [p for _, p in sorted(self.model.named_parameters()) if p.requires_grad]

    def logits(self, ids, mask, training=True):
        self.model.train(training)
        return self.model(input_ids=ids.to(self.device), attention_mask=mask.long().to(self.device)).logits

    def save(self, out, peft_model=None, state_dict=None):
        """peft_model / state_dict: the unwrapped PeftModel and the state gathered from DeepSpeed's partitions."""
        tmp = out + ".peft"
        (peft_model or self.model).save_pretrained(tmp, **({"state_dict": state_dict} if state_dict is not None else {}))
        shutil.copy(os.path.join(tmp, "adapter_model.safetensors"), os.path.join(out, "adapter_model.safetensors"))
        shutil.rmtree(tmp)


def optimizer_and_schedule(params, recipe):
    """A fresh torch AdamW with recipe.json's settings, and transformers' schedule as a LambdaLR."""
    o = recipe["optimizer"]
    opt = torch.optim.AdamW(params, lr=o["lr"], betas=tuple(o["betas"]), eps=o["eps"], weight_decay=o["weight_decay"])
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda k: lr_multiplier(k, recipe["schedule"]))


def adapter_folder(out, recipe, run):
    """<out>/adapter with adapter0's PEFT config and lorakit's block (lorakit_config.json: task, data, max length,
    base model folder; PEFT's own save_pretrained would drop it), the block saying which steps made the adapter
    (`run`: engine, backend, processes); the weights come next."""
    dest = os.path.join(out, "adapter")
    os.makedirs(dest, exist_ok=True)
    shutil.copy(os.path.join(HERE, "adapter0", "adapter_config.json"), os.path.join(dest, "adapter_config.json"))
    block_file = os.path.join(HERE, "adapter0", "lorakit_config.json")
    block = {}
    if os.path.exists(block_file):
        with open(block_file) as f:
            block = json.load(f)
    block.update({"recipe_step": recipe["total_steps"], "recipe_run": run})
    tmp = os.path.join(dest, "lorakit_config.json.tmp")
    with open(tmp, "w") as f:
        json.dump(dict(sorted(block.items())), f, indent=2)
        f.write("\n")
    os.replace(tmp, os.path.join(dest, "lorakit_config.json"))
    return dest


def train_deepspeed(recipe, examples, args):
    """accelerate + DeepSpeed ZeRO (accelerate_config.yaml, ds_config.json). DeepSpeed owns the update:
    accelerate.prepare hands it the script's AdamW and LambdaLR (ds_config.json defines neither), and at
    each accumulation boundary it clips (gradient_clipping), steps both and zeroes the gradients. Its
    engine divides each backward's loss by gradient_accumulation_steps and averages the gradients over
    the processes, so every micro-batch's loss (summed token cross-entropy / the global batch's token
    count, as in the DDP path) is multiplied by processes × accumulation steps first: the update is
    again the one of the token mean over the global batch. Every process runs exactly
    gradient_accumulation_steps micro-batches a step (DeepSpeed counts them to find the boundary): a
    process with fewer rows that step runs a row with weight 0."""
    from accelerate import Accelerator
    acc = Accelerator()  # the DeepSpeed plugin from the launcher's environment (ACCELERATE_USE_DEEPSPEED, ds_config.json)
    world, rank = acc.num_processes, acc.process_index
    ds = acc.state.deepspeed_plugin.deepspeed_config
    per_rank, pad_id = recipe["batch"]["per_rank_batch"], recipe["data"]["pad_id"]
    share = -(-min(recipe["batch"]["global_batch"], len(examples)) // world)
    gas = -(-share // per_rank)
    if ds.get("gradient_accumulation_steps") != gas or ds.get("train_micro_batch_size_per_gpu") != per_rank:
        raise SystemExit(f"train.py: {world} processes run the global batch of {recipe['batch']['global_batch']} as micro-batches of {per_rank} × {gas} accumulation steps, "
                         f"but the DeepSpeed config says {ds.get('train_micro_batch_size_per_gpu')} × {ds.get('gradient_accumulation_steps')}: "
                         f"export the recipe again with --nproc / --nnodes for {world} processes")
    backend = PeftBackend(recipe, torch.float32)
    opt, sched = optimizer_and_schedule(backend.trainable(), recipe)
    backend.model, opt, sched = acc.prepare(backend.model, opt, sched)
    backend.device = acc.device
    log = open(os.path.join(args.out, "metrics.jsonl"), "w") if acc.is_main_process else None
    step = 0
    for epoch, batches in enumerate(recipe["order"]):
        for rows in batches:
            count = target_count(rows, examples)
            mine = rows[rank::world]
            micro = [mine[i:i + per_rank] for i in range(0, len(mine), per_rank)]
            lr = sched.get_last_lr()[0]
            loss_sum = torch.zeros((), dtype=torch.float64)
            for j in range(gas):
                part_rows, weight = (micro[j], 1.0) if j < len(micro) else (rows[:1], 0.0)
                ids, mask, labels = pad(part_rows, examples, pad_id)
                part = summed_ce(backend.logits(ids, mask), labels.to(acc.device)) * (weight / max(1, count))
                acc.backward(part * (world * gas))  # DeepSpeed steps, clips and schedules at the boundary
                loss_sum += part.detach().to(torch.float64).cpu()
            loss = float(acc.reduce(loss_sum.to(acc.device), reduction="sum"))
            step += 1
            if log:
                norm = getattr(backend.model, "get_global_grad_norm", lambda: None)()
                log.write(json.dumps({"event": "step", "step": step, "epoch": epoch, "loss": loss, "lr": lr, "gradNorm": None if norm is None else float(norm)}) + "\n")
                log.flush()
    state = acc.get_state_dict(backend.model)  # gathers ZeRO-3's partitions (stage3_gather_16bit_weights_on_model_save)
    if acc.is_main_process:
        run = {"engine": "accelerate", "backend": "peft", "processes": world, "deepspeed_zero_stage": ds["zero_optimization"]["stage"]}
        backend.save(adapter_folder(args.out, recipe, run), peft_model=acc.unwrap_model(backend.model), state_dict=state)
        log.close()
    acc.wait_for_everyone()


def digest(params):
    h = hashlib.sha256()
    for p in params:
        h.update(p.detach().to(torch.float64).contiguous().numpy().tobytes())
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(HERE, "out"))
    ap.add_argument("--backend", choices=["plain", "peft"], default=None, help="default: recipe.json's")
    ap.add_argument("--engine", choices=["torchrun", "accelerate"], default=None, help="who set up the processes (default: recipe.json's)")
    ap.add_argument("--dtype", choices=["float32", "float64"], default="float32", help="float64 shows the recipe's arithmetic without float32 rounding")
    ap.add_argument("--probe", action="store_true", help="also write the final adapter's logits on the first example (probe_logits.json)")
    args = ap.parse_args()
    with open(os.path.join(HERE, "recipe.json")) as f:
        recipe = json.load(f)
    with open(os.path.join(HERE, recipe["data"]["file"])) as f:
        examples = json.load(f)["examples"]
    if not os.path.isabs(recipe["model_dir"]):
        recipe["model_dir"] = os.path.join(HERE, recipe["model_dir"])
    os.makedirs(args.out, exist_ok=True)
    if (args.engine or recipe["engine"]) == "accelerate" and os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true":
        return train_deepspeed(recipe, examples, args)
    if (args.engine or recipe["engine"]) == "accelerate":
        from accelerate import PartialState
        state = PartialState()  # accelerate sets up the processes and the device (ACCELERATE_TORCH_DEVICE=cpu: gloo)
        world, rank = state.num_processes, state.process_index
    else:
        world, rank = int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("gloo")
    torch.manual_seed(recipe["seed"] + rank)  # dropout masks (lorakit's own masks come from its own generator)
    dtype = getattr(torch, args.dtype)
    backend = (PeftBackend if (args.backend or recipe["backend"]) == "peft" else PlainBackend)(recipe, dtype)
    params = backend.trainable()
    opt, sched = optimizer_and_schedule(params, recipe)
    per_rank, pad_id, max_norm = recipe["batch"]["per_rank_batch"], recipe["data"]["pad_id"], recipe["clip"]["max_grad_norm"]
    log = open(os.path.join(args.out, "metrics.jsonl"), "w") if rank == 0 else None
    step = 0
    for epoch, batches in enumerate(recipe["order"]):
        for rows in batches:
            count = target_count(rows, examples)
            mine = rows[rank::world]
            loss_sum = torch.zeros((), dtype=torch.float64)
            opt.zero_grad(set_to_none=False)
            for i in range(0, len(mine), per_rank):
                ids, mask, labels = pad(mine[i:i + per_rank], examples, pad_id)
                part = summed_ce(backend.logits(ids, mask), labels) / max(1, count)
                part.backward()
                loss_sum += part.detach().to(torch.float64)
            for p in params:
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
            if world > 1:
                for p in params:
                    dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
                dist.all_reduce(loss_sum, op=dist.ReduceOp.SUM)
            norm = torch.nn.utils.clip_grad_norm_(params, max_norm) if max_norm else torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params]))
            lr = opt.param_groups[0]["lr"]
            opt.step()
            sched.step()
            step += 1
            if log:
                log.write(json.dumps({"event": "step", "step": step, "epoch": epoch, "loss": float(loss_sum), "lr": lr, "gradNorm": float(norm)}) + "\n")
                log.flush()
    with open(os.path.join(args.out, f"rank{rank}.sha256"), "w") as f:
        f.write(digest(params) + "\n")
    if rank == 0:
        run = {"engine": args.engine or recipe["engine"], "backend": args.backend or recipe["backend"], "processes": world, "dtype": args.dtype}
        backend.save(adapter_folder(args.out, recipe, run))
        if args.probe:
            with torch.no_grad():
                ids, mask, _ = pad([0], examples, pad_id)
                logits = backend.logits(ids, mask, training=False)
            with open(os.path.join(args.out, "probe_logits.json"), "w") as f:
                json.dump({"ids": examples[0]["ids"], "logits": [float(x) for x in logits.reshape(-1)]}, f)
        log.close()
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
