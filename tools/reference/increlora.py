#!/usr/bin/env python3
"""PyTorch transcription of IncreLoRA's training step (FeiyuZhang98/IncreLoRA
@ 51a2d73): loralib/loralib/increlora.py SVDLinear (ParameterLists, loraW,
backward hook score, add_reserve_param) and RankAllocator
(update_and_increase, update_ipt, increase_to_target_rank), the trainer's
compute_svd_orth_regu and step order (loss + reg_orth_coef·orth, backward,
update_and_increase, optimizer.step, scheduler.step), transformers' AdamW and
Multi_LambdaLR as in NLU/src/transformers/optimization.py.

Two modules, 10 steps (init_r 1, target total 4, add_r 1, top_h 1,
init_warmup = incre_interval = 2: increases at steps 4 and 6, the target then
reached and the reserves zeroed), linear warmup 3 of 10 steps, lr 1e-2,
weight decay 0.01, eps 1e-8, lora_alpha 32, reg_orth_coef 0.3, β 0.85/0.85.
Reserve values are drawn here and stored, so lorakit's test uses the same ones.
float64; inputs rounded to float32 values (seed 0).
Writes test/fixtures/increlora.json. Run: /usr/bin/python3 tools/reference/increlora.py
"""
import json
import math
import os

import torch
import torch.nn as nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

torch.manual_seed(0)
torch.set_default_dtype(torch.float64)


def f32(t):
    return t.float().double()


def lst(t):
    return [float(v) for v in t.reshape(-1).tolist()]


class AdamW(Optimizer):  # transformers' AdamW (optimization.py)
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.0, correct_bias=True):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, correct_bias=correct_bias)
        super().__init__(params, defaults)

    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad.data
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p.data)
                    state["exp_avg_sq"] = torch.zeros_like(p.data)
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                beta1, beta2 = group["betas"]
                state["step"] += 1
                exp_avg.mul_(beta1).add_(grad, alpha=1.0 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1.0 - beta2)
                denom = exp_avg_sq.sqrt().add_(group["eps"])
                step_size = group["lr"]
                if group["correct_bias"]:
                    bias_correction1 = 1.0 - beta1 ** state["step"]
                    bias_correction2 = 1.0 - beta2 ** state["step"]
                    step_size = step_size * math.sqrt(bias_correction2) / bias_correction1
                p.data.addcdiv_(exp_avg, denom, value=-step_size)
                if group["weight_decay"] > 0.0:
                    p.data.add_(p.data, alpha=-group["lr"] * group["weight_decay"])


def get_lr_lambda(num_warmup_steps, num_training_steps):
    def lr_lambda(current_step: int):
        if current_step < num_warmup_steps:
            return float(current_step) / float(max(1, num_warmup_steps))
        return max(0.0, float(num_training_steps - current_step) / float(max(1, num_training_steps - num_warmup_steps)))
    return lr_lambda


class Multi_LambdaLR(LambdaLR):  # optimization.py, without the debugger calls
    def __init__(self, optimizer, get_lr_lambda, num_warmup_steps, num_training_steps, last_epoch=-1, verbose=False):
        self.get_lr_lambda = get_lr_lambda
        self.num_warmup_steps = num_warmup_steps
        self.num_training_steps = num_training_steps
        lr_lambda = self.get_lr_lambda(num_warmup_steps, num_training_steps)
        self.group_steps = [-1] * len(optimizer.param_groups)
        super().__init__(optimizer, lr_lambda, last_epoch, verbose)

    def check_new_params(self):
        if len(self.optimizer.param_groups) == len(self.group_steps):
            return
        self.group_steps.append(-1)
        self.lr_lambdas.append(self.get_lr_lambda(self.num_warmup_steps, self.num_training_steps - self.last_epoch))
        group = self.optimizer.param_groups[-1]
        group.setdefault("initial_lr", group["lr"])
        self.base_lrs.append(group["initial_lr"])

    def get_lr(self):
        self.check_new_params()
        self.group_steps = [step + 1 for step in self.group_steps]
        return [base_lr * lmbda(step) for lmbda, base_lr, step in zip(self.lr_lambdas, self.base_lrs, self.group_steps)]


class loraW(nn.Module):
    def forward(self, A, E, B, scaling, ranknum):
        return torch.cat([b for b in B], 1) @ (torch.cat([a for a in A], 0) * torch.cat([e for e in E], 0)) * scaling / (ranknum + 1e-5)


RESERVES = {}  # (module, step, j) -> (a, b): drawn once, stored in the fixture


class SVDLinear(nn.Module):  # the adapter part of increlora.SVDLinear
    def __init__(self, name, W, A0, B0, E0, r, lora_alpha):
        super().__init__()
        self.name = name
        self.weight = W
        self.in_features, self.out_features = W.shape[1], W.shape[0]
        self.r = r
        self.lora_A = nn.ParameterList([nn.Parameter(A0.clone())])
        self.lora_E = nn.ParameterList([nn.Parameter(E0.clone())])
        self.lora_B = nn.ParameterList([nn.Parameter(B0.clone())])
        self.W = loraW()
        self.score = 0
        self.ranknum = nn.Parameter(torch.zeros(1), requires_grad=False)
        self.ranknum.data.fill_(float(r))
        self.scaling = lora_alpha if lora_alpha > 0 else float(r)
        self.step = 0
        self.hooked = True

    def add_reserve_param(self, add_r, advance_learn=True):
        for j in range(add_r):
            e = nn.Parameter(torch.zeros(1, 1), requires_grad=False)
            key = (self.name, self.step, j)
            if key not in RESERVES:
                RESERVES[key] = (f32(torch.randn(1, self.in_features) * 0.02), f32(torch.randn(self.out_features, 1) * 0.02))
            a0, b0 = RESERVES[key]
            a = nn.Parameter(a0.clone(), requires_grad=advance_learn)
            b = nn.Parameter(b0.clone(), requires_grad=advance_learn)
            e[0][0] = 1e-5 if advance_learn else 0.
            self.lora_E.append(e)
            self.lora_A.append(a)
            self.lora_B.append(b)

    def forward(self, x):
        dW = self.W(self.lora_A, self.lora_E, self.lora_B, self.scaling, self.ranknum)
        if self.hooked:
            def hook(grad_Matrix):
                W = self.W(self.lora_A, self.lora_E, self.lora_B, self.scaling, self.ranknum).abs()
                self.score = torch.sum((W * grad_Matrix).abs().detach()) / math.sqrt(W.numel())
            dW.register_hook(hook)
        return x @ self.weight.T + x @ dW.T


class RankAllocator:  # increlora.RankAllocator without the tensorboard writer
    def __init__(self, modules, lora_r, target_rank, init_warmup, incre_interval, top_h, advance_learn, beta1, beta2,
                 total_step=None, target_total_rank=None, weight_decay=None, incre_rank_num=None):
        self.ave_target_rank = target_rank
        self.target_rank = target_total_rank
        self.lora_init_rank = lora_r
        self.init_warmup = init_warmup
        self.incre_interval = incre_interval
        self.advance_learn = advance_learn
        self.top_h = top_h
        self.incre_rank_num = incre_rank_num if incre_rank_num else {2: 1, 4: 2, 6: 3, 8: 4}[self.ave_target_rank]
        self.beta1, self.beta2 = beta1, beta2
        self.modules = modules
        self.weight_decay = weight_decay
        self.ipt, self.exp_avg_ipt, self.exp_avg_unc = {}, {}, {}
        self.initial_total_rank = sum(m.lora_A[0].size(0) for m in modules)
        if self.target_rank is None:
            self.target_rank = self.ave_target_rank * len(modules)
        self.total_rank = self.initial_total_rank

    def update_ipt(self):
        for layer in self.modules:
            n = layer.name
            if n not in self.ipt:
                self.ipt[n] = 0
                self.exp_avg_ipt[n] = 0
                self.exp_avg_unc[n] = 0
            self.ipt[n] = layer.score
            self.exp_avg_ipt[n] = self.beta1 * self.exp_avg_ipt[n] + (1 - self.beta1) * self.ipt[n]
            self.exp_avg_unc[n] = self.beta2 * self.exp_avg_unc[n] + (1 - self.beta2) * (self.ipt[n] - self.exp_avg_ipt[n]).abs()

    def increase_to_target_rank(self, optimizer):
        is_dict, all_is = {}, []
        for layer in self.modules:
            ipt_score = self.exp_avg_ipt[layer.name] * self.exp_avg_unc[layer.name]
            is_dict[layer.name] = ipt_score
            all_is.append(ipt_score)
        k = min(self.top_h, self.target_rank - self.total_rank)
        increase_threshold = torch.topk(torch.tensor(all_is), k)[0][-1].item()
        with torch.no_grad():
            new_param_list = []
            add_r = self.incre_rank_num
            for layer in self.modules:
                if is_dict[layer.name] >= increase_threshold:
                    layer.ranknum += add_r
                    self.total_rank += add_r
                    for param in layer.lora_E[-add_r:]:
                        param.requires_grad = True
                        new_param_list.append(param)
                    if self.advance_learn:
                        layer.add_reserve_param(add_r, True)
                        new_param_list.extend(layer.lora_A[-add_r:])
                        new_param_list.extend(layer.lora_B[-add_r:])
                    else:
                        for param in list(layer.lora_A[-add_r:]) + list(layer.lora_B[-add_r:]):
                            param.requires_grad = True
                            new_param_list.append(param)
                        layer.add_reserve_param(add_r, False)
            optimizer.add_param_group({"params": new_param_list, "weight_decay": self.weight_decay})
            if self.total_rank == self.target_rank:
                for module in self.modules:
                    module.hooked = False
                    for param in module.lora_E[-add_r:]:
                        param.fill_(0.)
        return increase_threshold

    def update_and_increase(self, global_step, optimizer):
        add_r = self.incre_rank_num
        if global_step == 0:
            new_param_list = []
            for module in self.modules:
                module.add_reserve_param(add_r, self.advance_learn)
                new_param_list.extend(module.lora_A[-add_r:])
                new_param_list.extend(module.lora_B[-add_r:])
            if self.advance_learn:
                optimizer.add_param_group({"params": new_param_list, "weight_decay": self.weight_decay})
        if self.total_rank < self.target_rank:
            self.update_ipt()
            if global_step > self.init_warmup and global_step % self.incre_interval == 0:
                self.increase_to_target_rank(optimizer)


def orth_regu(modules):  # trainer.compute_svd_orth_regu; `+` for its in-place `+=` (the same value: the
    # in-place form trips this torch's autograd check on the norm's saved output)
    regu_loss, num_param = None, 0

    def compute_regu(para_cov):
        I = torch.eye(*para_cov.size(), out=torch.empty_like(para_cov))
        return torch.norm(para_cov - I, p="fro")
    for layer in modules:
        wA = torch.cat([a for a in layer.lora_A], 0)
        wB = torch.cat([b for b in layer.lora_B], 1)
        regu_loss = compute_regu(wA @ wA.T) if regu_loss is None else regu_loss + compute_regu(wA @ wA.T)
        regu_loss = regu_loss + compute_regu(wB.T @ wB)
        num_param += 2
    return regu_loss / num_param


CFG = dict(init_r=1, target_total=4, add_r=1, top_h=1, init_warmup=2, interval=2, steps=10, warmup=3, lr=1e-2, wd=0.01, eps=1e-8,
           lora_alpha=32.0, orth=0.3, beta1=0.85, beta2=0.85)
MODS = [("m0", 5, 6), ("m1", 4, 7)]
N = 3
modules, init = [], {}
for name, m, n in MODS:
    W = f32(torch.randn(m, n))
    A0, B0, E0 = f32(torch.randn(1, n) * 0.02), f32(torch.randn(m, 1) * 0.02), f32(torch.randn(1, 1) * 0.5)
    modules.append(SVDLinear(name, W, A0, B0, E0, CFG["init_r"], CFG["lora_alpha"]))
    init[name] = {"out": m, "in": n, "W": lst(W), "A": lst(A0), "B": lst(B0), "E": lst(E0)}
batches = [[(f32(torch.randn(N, n)), f32(torch.randn(N, m))) for name, m, n in MODS] for _ in range(CFG["steps"])]
params = [p for mod in modules for p in list(mod.lora_A) + list(mod.lora_E) + list(mod.lora_B)]
optimizer = AdamW([{"params": params, "weight_decay": CFG["wd"]}], lr=CFG["lr"], eps=CFG["eps"])
scheduler = Multi_LambdaLR(optimizer, get_lr_lambda, CFG["warmup"], CFG["steps"])
alloc = RankAllocator(modules, CFG["init_r"], 2, CFG["init_warmup"], CFG["interval"], CFG["top_h"], True, CFG["beta1"], CFG["beta2"],
                      target_total_rank=CFG["target_total"], weight_decay=CFG["wd"], incre_rank_num=CFG["add_r"])
trace = []
for step in range(CFG["steps"]):
    for mod in modules:
        mod.step = step
    loss = 0.0
    ys = []
    for mod, (x, R) in zip(modules, batches[step]):
        y = mod(x)
        ys.append(y)
        loss = loss + (y * R).sum()
    orth = orth_regu(modules)
    loss = loss + CFG["orth"] * orth
    optimizer.zero_grad()
    loss.backward()
    rec = {"loss": float(loss), "orth": float(CFG["orth"] * orth)}
    if step == 0:
        rec["y"] = [lst(y.detach()) for y in ys]
        rec["grads"] = [{"A": lst(mod.lora_A[0].grad), "B": lst(mod.lora_B[0].grad), "E": lst(mod.lora_E[0].grad)} for mod in modules]
    rec["score"] = [float(mod.score) if mod.hooked or step <= 6 else None for mod in modules]
    alloc.update_and_increase(step, optimizer)
    optimizer.step()
    scheduler.step()
    rec["after"] = [{"A": lst(torch.cat(list(mod.lora_A), 0).detach()), "B": lst(torch.cat(list(mod.lora_B), 1).detach()),
                     "E": lst(torch.cat(list(mod.lora_E), 0).detach()), "created": len(mod.lora_A), "ranknum": float(mod.ranknum)} for mod in modules]
    rec["total"] = alloc.total_rank
    rec["ema"] = [[float(alloc.exp_avg_ipt[m.name]), float(alloc.exp_avg_unc[m.name])] if m.name in alloc.exp_avg_ipt else None for m in modules]
    rec["lrs"] = [g["lr"] for g in optimizer.param_groups]
    trace.append(rec)

out = {"config": CFG, "modules": [dict(name=n, **init[n]) for n, _, _ in MODS],
       "batches": [[{"x": lst(x), "R": lst(R)} for x, R in b] for b in batches],
       "reserves": [{"module": k[0], "step": k[1], "j": k[2], "a": lst(v[0]), "b": lst(v[1])} for k, v in RESERVES.items()],
       "trace": trace}
path = os.path.join(os.path.dirname(__file__), "..", "..", "test", "fixtures", "increlora.json")
with open(path, "w") as f:
    json.dump(out, f)
print("wrote", os.path.normpath(path), [t["total"] for t in trace], [[a["ranknum"] for a in t["after"]] for t in trace])
