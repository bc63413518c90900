#!/usr/bin/env python3
"""PyTorch transcription of PEFT's AdaLoRA (huggingface/peft @ 5d602fd,
src/peft/tuners/adalora/layer.py SVDLinear.forward and RankAllocator,
model.py AdaLoraModel.forward (orthogonality) and update_and_allocate).
The RankAllocator and update_and_allocate below are PEFT's code with the
model replaced by a dict of named parameters ("<module>.lora_A.default", ...).

Cases, float64, inputs rounded to float32 values (seed 0):
* budget_schedule(t) for every t of a run (T 60, tinit 5, tfinal 12, deltaT 4);
* forward of two SVDLinear modules, loss sum(y * R) + the orthogonality term,
  gradients of A, B, E;
* update_and_allocate over T = 12 steps (tinit 2, tfinal 4, deltaT 2): given
  parameters and gradients at every step, the EMAs, the masked E, rank_pattern
  (masking at t = 4 and 6, the forced final mask at t = 8, then the fixed pattern);
* mask_to_budget on given EMAs with tied triplet scores (kthvalue, <=).
Writes test/fixtures/adalora.json. Run: /usr/bin/python3 tools/reference/adalora.py
"""
import json
import os

import torch

torch.manual_seed(0)
torch.set_default_dtype(torch.float64)


def f32(t):
    return t.float().double()


def lst(t):
    return [float(v) for v in t.reshape(-1).tolist()]


class Config:
    def __init__(self, **kw):
        self.__dict__.update(kw)


class Model:
    """named_parameters() over a dict, in insertion order."""

    def __init__(self, params):
        self.params = params

    def named_parameters(self):
        return list(self.params.items())


class RankAllocator:  # PEFT's, unchanged but for the deepspeed branch
    def __init__(self, model, peft_config, adapter_name):
        self.peft_config = peft_config
        self.adapter_name = adapter_name
        self.beta1 = peft_config.beta1
        self.beta2 = peft_config.beta2
        self.reset_ipt()
        self._set_budget_scheduler(model)

    def reset_ipt(self):
        self.ipt = {}
        self.exp_avg_ipt = {}
        self.exp_avg_unc = {}

    def _set_budget_scheduler(self, model):
        self.init_bgt = 0
        self.name_set = set()
        for n, p in model.named_parameters():
            if f"lora_A.{self.adapter_name}" in n:
                self.init_bgt += p.size(0)
                self.name_set.add(n.replace("lora_A", "%s"))
        self.name_set = sorted(self.name_set)
        self.target_bgt = self.peft_config.target_r * len(self.name_set)

    def budget_schedule(self, step: int):
        tinit = self.peft_config.tinit
        tfinal = self.peft_config.tfinal
        total_step = self.peft_config.total_step
        if step <= tinit:
            budget = self.init_bgt
            mask_ind = False
        elif step > total_step - tfinal:
            budget = self.target_bgt
            mask_ind = True
        else:
            mul_coeff = 1 - (step - tinit) / (total_step - tfinal - tinit)
            budget = int((self.init_bgt - self.target_bgt) * (mul_coeff**3) + self.target_bgt)
            mask_ind = step % self.peft_config.deltaT == 0
        return budget, mask_ind

    def update_ipt(self, model):
        for n, p in model.named_parameters():
            if "lora_" in n and self.adapter_name in n:
                if n not in self.ipt:
                    self.ipt[n] = torch.zeros_like(p)
                    self.exp_avg_ipt[n] = torch.zeros_like(p)
                    self.exp_avg_unc[n] = torch.zeros_like(p)
                with torch.no_grad():
                    self.ipt[n] = (p * p.grad).abs().detach()
                    self.exp_avg_ipt[n] = self.beta1 * self.exp_avg_ipt[n] + (1 - self.beta1) * self.ipt[n]
                    self.exp_avg_unc[n] = (
                        self.beta2 * self.exp_avg_unc[n] + (1 - self.beta2) * (self.ipt[n] - self.exp_avg_ipt[n]).abs()
                    )

    def _element_score(self, n):
        return self.exp_avg_ipt[n] * self.exp_avg_unc[n]

    def _combine_ipt(self, ipt_E, ipt_AB):
        ipt_AB = ipt_AB.sum(dim=1, keepdim=False)
        sum_ipt = ipt_E.view(-1) + ipt_AB.view(-1)
        return sum_ipt

    def mask_to_budget(self, model, budget):
        value_ipt = {}
        vector_ipt = {}
        triplet_ipt = {}
        for n, p in model.named_parameters():
            if f"lora_A.{self.adapter_name}" in n:
                entry_ipt = self._element_score(n)
                comb_ipt = torch.mean(entry_ipt, dim=1, keepdim=True)
                name_m = n.replace("lora_A", "%s")
                vector_ipt.setdefault(name_m, []).append(comb_ipt)
            if f"lora_B.{self.adapter_name}" in n:
                entry_ipt = self._element_score(n)
                comb_ipt = torch.mean(entry_ipt, dim=0, keepdim=False).view(-1, 1)
                name_m = n.replace("lora_B", "%s")
                vector_ipt.setdefault(name_m, []).append(comb_ipt)
            if f"lora_E.{self.adapter_name}" in n:
                entry_ipt = self._element_score(n)
                name_m = n.replace("lora_E", "%s")
                value_ipt[name_m] = entry_ipt
        all_score = []
        for name_m in vector_ipt:
            ipt_E = value_ipt[name_m]
            ipt_AB = torch.cat(vector_ipt[name_m], dim=1)
            sum_ipt = self._combine_ipt(ipt_E, ipt_AB)
            name_E = name_m % "lora_E"
            triplet_ipt[name_E] = sum_ipt.view(-1, 1)
            all_score.append(sum_ipt.view(-1))
        mask_threshold = torch.kthvalue(torch.cat(all_score), k=self.init_bgt - budget)[0].item()
        rank_pattern = {}
        with torch.no_grad():
            for n, p in model.named_parameters():
                if f"lora_E.{self.adapter_name}" in n:
                    p.masked_fill_(triplet_ipt[n] <= mask_threshold, 0.0)
                    rank_pattern[n] = (~(triplet_ipt[n] <= mask_threshold)).view(-1).tolist()
        return rank_pattern

    def update_and_allocate(self, model, global_step, force_mask=False):
        if global_step < self.peft_config.total_step - self.peft_config.tfinal:
            self.update_ipt(model)
        budget, mask_ind = self.budget_schedule(global_step)
        if mask_ind or force_mask:
            rank_pattern = self.mask_to_budget(model, budget)
        else:
            rank_pattern = None
        return budget, rank_pattern

    def mask_using_rank_pattern(self, model, rank_pattern):
        with torch.no_grad():
            for n, p in model.named_parameters():
                if f"lora_E.{self.adapter_name}" in n:
                    mask = torch.Tensor(rank_pattern[n]).unsqueeze(-1).to(p.device)
                    p.masked_fill_(~mask.bool(), 0.0)


def update_and_allocate(allocator, model, lora_config, global_step):  # AdaLoraModel.update_and_allocate
    if global_step < lora_config.total_step - lora_config.tfinal:
        _, rank_pattern = allocator.update_and_allocate(model, global_step)
        if rank_pattern:
            lora_config.rank_pattern = rank_pattern
    elif global_step == lora_config.total_step - lora_config.tfinal:
        _, rank_pattern = allocator.update_and_allocate(model, global_step, force_mask=True)
        lora_config.rank_pattern = rank_pattern
        allocator.reset_ipt()
    elif global_step > lora_config.total_step - lora_config.tfinal:
        allocator.mask_using_rank_pattern(model, lora_config.rank_pattern)


MODS = [("m0", 5, 7), ("m1", 6, 4), ("m2", 3, 5)]  # name, out, in
INIT_R = 4


def make_params():
    ps = {}
    for name, m, n in MODS:
        ps[f"{name}.lora_A.default"] = f32(torch.randn(INIT_R, n) * 0.5).requires_grad_()
        ps[f"{name}.lora_B.default"] = f32(torch.randn(m, INIT_R) * 0.5).requires_grad_()
        ps[f"{name}.lora_E.default"] = f32(torch.randn(INIT_R, 1)).requires_grad_()
    return ps


# ---- budget schedule over a whole run ----
cfg_b = Config(tinit=5, tfinal=12, total_step=60, deltaT=4, target_r=2, beta1=0.85, beta2=0.85)
alloc_b = RankAllocator(Model(make_params()), cfg_b, "default")
budget = {"config": {"tinit": 5, "tfinal": 12, "total": 60, "deltaT": 4, "initBudget": alloc_b.init_bgt, "targetBudget": alloc_b.target_bgt},
          "schedule": [list(alloc_b.budget_schedule(t)) for t in range(0, 62)]}

# ---- forward, orthogonality, gradients (two modules) ----
alpha, orth_w, N = 16.0, 0.3, 4
fwd = {"N": N, "init_r": INIT_R, "lora_alpha": alpha, "orth_reg_weight": orth_w, "modules": []}
ps = make_params()
total = 0.0
saved = []
for name, m, n in MODS[:2]:
    W = f32(torch.randn(m, n))
    x = f32(torch.randn(N, n))
    R = f32(torch.randn(N, m))
    A, B, E = ps[f"{name}.lora_A.default"], ps[f"{name}.lora_B.default"], ps[f"{name}.lora_E.default"]
    ranknum = torch.tensor([float(INIT_R)])
    result = x @ W.T
    result = result + (x @ (A * E).T @ B.T) * alpha / (ranknum + 1e-5)
    total = total + (result * R).sum()
    saved.append((name, m, n, W, x, R, A, B, E, result))
regu_loss = 0
num_param = 0
for n_, p in ps.items():
    if not any(n_.startswith(s[0] + ".") for s in saved):
        continue
    if "lora_A" in n_ or "lora_B" in n_:
        para_cov = p @ p.T if "lora_A" in n_ else p.T @ p
        I = torch.eye(*para_cov.size(), out=torch.empty_like(para_cov))
        num_param += 1
        regu_loss += torch.norm(para_cov - I, p="fro")
regu_loss = regu_loss / num_param
loss = total + orth_w * regu_loss
loss.backward()
for (name, m, n, W, x, R, A, B, E, y) in saved:
    fwd["modules"].append({"name": name, "out": m, "in": n, "W": lst(W), "x": lst(x), "R": lst(R), "A": lst(A.detach()), "B": lst(B.detach()),
                           "E": lst(E.detach()), "y": lst(y.detach()),
                           "grads": {"lora_A": lst(A.grad), "lora_B": lst(B.grad), "lora_E": lst(E.grad)}})
fwd["orth"] = float(orth_w * regu_loss)
fwd["loss"] = float(loss)

# ---- update_and_allocate over a run ----
cfg = Config(tinit=2, tfinal=4, total_step=12, deltaT=2, target_r=2, beta1=0.85, beta2=0.85, rank_pattern=None)
params = make_params()
model = Model(params)
alloc = RankAllocator(model, cfg, "default")
steps = []
for t in range(cfg.total_step):
    given = {}
    for n_, p in params.items():
        with torch.no_grad():
            p.copy_(f32(torch.randn_like(p) * 0.5))
        p.grad = f32(torch.randn_like(p) * 0.1)
        given[n_] = {"p": lst(p.detach()), "g": lst(p.grad)}
    update_and_allocate(alloc, model, cfg, t)
    steps.append({
        "t": t, "given": given,
        "E": {n_: lst(p.detach()) for n_, p in params.items() if "lora_E" in n_},
        "ema": {n_: {"ipt": lst(alloc.exp_avg_ipt[n_]), "unc": lst(alloc.exp_avg_unc[n_])} for n_ in alloc.exp_avg_ipt},
        "rank_pattern": {k.replace(".default", ""): v for k, v in (cfg.rank_pattern or {}).items()},
        "budget": alloc.budget_schedule(t)[0],
    })
allocate = {"config": {"tinit": 2, "tfinal": 4, "total_step": 12, "deltaT": 2, "init_r": INIT_R, "target_r": 2},
            "modules": [{"name": n_, "out": m, "in": i} for n_, m, i in MODS], "steps": steps}

# ---- ties: given EMAs whose triplet scores tie at the threshold ----
tp = make_params()
tm = Model(tp)
ta = RankAllocator(tm, Config(tinit=0, tfinal=0, total_step=10, deltaT=1, target_r=2, beta1=0.85, beta2=0.85), "default")
ema = {}
for k, (n_, p) in enumerate(tp.items()):
    ipt = torch.zeros_like(p)
    if "lora_E" in n_:
        ipt = torch.tensor([[0.25], [0.5], [0.25], [1.0]]) * (1 + k % 2)
    ta.exp_avg_ipt[n_] = ipt
    ta.exp_avg_unc[n_] = torch.ones_like(p)
    ema[n_] = {"ipt": lst(ipt), "unc": lst(torch.ones_like(p))}
pattern = ta.mask_to_budget(tm, budget=9)
ties = {"ema": ema, "budget": 9, "init_budget": ta.init_bgt, "pattern": {k.replace(".default", ""): v for k, v in pattern.items()}}

out = {"budget": budget, "forward": fwd, "allocate": allocate, "ties": ties}
path = os.path.join(os.path.dirname(__file__), "..", "..", "test", "fixtures", "adalora.json")
with open(path, "w") as f:
    json.dump(out, f)
print("wrote", os.path.normpath(path), "tie pattern", ties["pattern"])
