#!/usr/bin/env python3
"""PyTorch transcription of the standard GRPO objective (DeepSeekMath §4.1 as
TRL's GRPOTrainer computes it, loss_type "grpo"), on given per-token log-probs:

    A_i      = (r_i − mean_group(r)) / (std_group(r) + 1e-4)   (torch .std(): unbiased)
    ratio    = exp(logp − old_logp)
    obj      = min(ratio·A, clamp(ratio, 1−ε, 1+ε_high)·A)
    kl       = exp(ref − logp) − (ref − logp) − 1             (k3)
    per_tok  = −obj + β·kl
    loss     = mean_i( Σ_t per_tok·mask / max(Σ_t mask, 1) )

and its gradient w.r.t. logp (autograd). Inputs are drawn here with
torch.manual_seed(18); every case is float64.

Writes test/fixtures/grpo_loss.json. Run: /usr/bin/python3 tools/reference/grpo_loss.py
"""
import json
import os

import torch

torch.manual_seed(18)
torch.set_default_dtype(torch.float64)


def grpo(logp, old, ref, mask, rewards, G, eps, eps_high, beta):
    r = rewards.view(-1, G)
    mean = r.mean(dim=1, keepdim=True)
    std = r.std(dim=1, keepdim=True)
    adv = ((r - mean) / (std + 1e-4)).view(-1)
    ratio = torch.exp(logp - old)
    l1 = ratio * adv.unsqueeze(1)
    l2 = torch.clamp(ratio, 1 - eps, 1 + eps_high) * adv.unsqueeze(1)
    per_tok = -torch.min(l1, l2)
    if beta != 0:
        d = ref - logp
        per_tok = per_tok + beta * (torch.exp(d) - d - 1)
    loss = ((per_tok * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)).mean()
    return loss, adv


def case(name, B_groups, G, T, eps, eps_high, beta, same_old):
    N = B_groups * G
    logp = -torch.rand(N, T) * 3.0
    old = logp.clone() if same_old else logp + 0.3 * torch.randn(N, T)
    ref = logp + 0.5 * torch.randn(N, T)
    lengths = torch.randint(1, T + 1, (N,))
    lengths[0] = 0  # an empty completion: no tokens count (the clamp keeps the mean finite)
    mask = (torch.arange(T).unsqueeze(0) < lengths.unsqueeze(1)).double()
    rewards = torch.randint(0, 2, (N,)).double()
    rewards[:G] = torch.tensor([1.0, 0.5, 0.0, 1.0] + [0.0] * (G - 4))[:G]
    rewards[G:2 * G] = 1.0  # a group with one value: advantages 0
    x = logp.clone().requires_grad_(True)
    loss, adv = grpo(x, old, ref, mask, rewards, G, eps, eps_high, beta)
    loss.backward()
    flat = lambda t: t.reshape(-1).tolist()
    return dict(name=name, groups=B_groups, G=G, T=T, epsilon=eps, epsilonHigh=eps_high, beta=beta,
                logp=flat(logp), old=flat(old), ref=flat(ref), mask=flat(mask), rewards=flat(rewards),
                advantages=flat(adv), loss=loss.item(), grad=flat(x.grad))


cases = [
    case("mu>1: old policy differs, KL beta=0.04", 3, 4, 7, 0.2, 0.2, 0.04, False),
    case("one step per batch: ratio 1, no KL", 2, 4, 5, 0.2, 0.2, 0.0, True),
    case("clip-higher 0.28, KL beta=0.1, G=6", 2, 6, 6, 0.2, 0.28, 0.1, False),
]
out = os.path.join(os.path.dirname(__file__), "../../test/fixtures/grpo_loss.json")
with open(out, "w") as f:
    json.dump({"source": "tools/reference/grpo_loss.py", "torch": torch.__version__, "cases": cases}, f)
print("wrote", out)
