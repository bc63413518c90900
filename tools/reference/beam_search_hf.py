#!/usr/bin/env python3
"""Hugging Face transformers' beam search, transcribed in plain PyTorch (transformers is
not installed here), run on the tiny T5 and BART fixtures: the oracle for lorakit's
beam search (src/serve/beam_search.ts). Writes test/fixtures/beam_search_hf.json.

Transcribed from transformers v4.30 (generation/utils.py `beam_search` and
`greedy_search`, generation/beam_search.py `BeamSearchScorer` / `BeamHypotheses`,
generation/logits_process.py `NoRepeatNGramLogitsProcessor`, `MinLengthLogitsProcessor`,
`ForcedBOSTokenLogitsProcessor`, `ForcedEOSTokenLogitsProcessor`):

  - decoder sequences start with decoder_start_token_id; cur_len counts it; max_length and
    min_length are HF's (whole decoder sequence, start token included);
  - every step: log_softmax of the last logits, then the processors (no-repeat n-gram over each
    hypothesis' tokens, start token included; eos banned while cur_len < min_length; forced BOS
    at cur_len == 1; forced EOS at cur_len == max_length - 1), plus the beam's running score;
    beams of a batch item start at 0, -1e9, -1e9, ... so the first step expands beam 0 only;
  - top 2*num_beams over num_beams*vocab (torch.topk, sorted); candidates in that order: an eos
    token ranked below num_beams is skipped, an eos ranked within becomes a finished
    hypothesis (its tokens WITHOUT the eos, score sum_logprobs / len(tokens)**length_penalty),
    any other token continues a beam until num_beams beams are filled;
  - BeamHypotheses keeps the num_beams best; is_done: early_stopping True -> as soon as
    num_beams are finished; False -> when the worst kept score >= best running
    sum_logprobs / cur_len**length_penalty; "never" -> the same with max_length instead of
    cur_len when length_penalty > 0;
  - finished batch items are padded (pad token, score 0); stop when all are done or cur_len
    reaches max_length; finalize adds every open beam of an unfinished item as a hypothesis,
    returns the num_return_sequences best, each followed by the first eos id when shorter
    than max_length.
  - num_beams == 1: greedy_search (argmax of the processed scores; a finished row is padded).

The models are the plain-PyTorch T5 / BART of hf_seq2seq.py on the fixture weights
(test/fixtures/hf/{t5-tiny,bart-tiny}); the LoRA case uses the LoRA of their golden.json.
Each case records the smallest gap between consecutive top-2k candidate scores it met, so a
near tie (which float differences between PyTorch and ONNX Runtime could flip) shows.

Usage: /usr/bin/python3 tools/reference/beam_search_hf.py
"""
import json
import os
import sys

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from hf_seq2seq import bart_forward, t5_forward  # noqa: E402
from safetensors_file import read_safetensors  # noqa: E402

torch.set_num_threads(1)
REPO = os.path.dirname(os.path.dirname(HERE))
FIX = os.path.join(REPO, "test", "fixtures")


class GoldenLora:
    def __init__(self, gold):
        lo = gold["lora"]
        self.s = lo["lora_alpha"] / lo["r"]
        self.p = {k: torch.tensor(v["data"]).reshape(v["shape"]) for k, v in lo["params"].items()}

    def apply(self, name, x, y):
        a = self.p.get(f"base_model.model.{name}.lora_A.weight")
        if a is None:
            return y
        b = self.p[f"base_model.model.{name}.lora_B.weight"]
        return y + self.s * (x @ a.t()) @ b.t()


# ---------------------------------------------------------------- processors ----

def no_repeat_ngram(input_ids, scores, n):
    cur_len = input_ids.shape[-1]
    if cur_len + 1 < n:
        return scores
    for i, hyp in enumerate(input_ids.tolist()):
        seen = {}
        for j in range(len(hyp) - n + 1):
            g = tuple(hyp[j:j + n])
            seen.setdefault(g[:-1], []).append(g[-1])
        prefix = tuple(hyp[cur_len + 1 - n:cur_len])
        for t in seen.get(prefix, []):
            scores[i, t] = -float("inf")
    return scores


def process(input_ids, scores, o, eos):
    cur_len = input_ids.shape[-1]
    if o.get("no_repeat_ngram_size", 0) > 0:
        scores = no_repeat_ngram(input_ids, scores, o["no_repeat_ngram_size"])
    if cur_len < o.get("min_length", 0):
        for e in eos:
            scores[:, e] = -float("inf")
    if o.get("forced_bos_token_id") is not None and cur_len == 1:
        scores[:, :] = -float("inf")
        scores[:, o["forced_bos_token_id"]] = 0
    if o.get("forced_eos_token_id") is not None and cur_len == o["max_length"] - 1:
        scores[:, :] = -float("inf")
        scores[:, o["forced_eos_token_id"]] = 0
    return scores


# ---------------------------------------------------------------- beam search ----

class Hyps:
    def __init__(self, num_beams, lp, early, max_length):
        self.num_beams, self.lp, self.early, self.max_length = num_beams, lp, early, max_length
        self.beams, self.worst = [], 1e9

    def add(self, hyp, sum_logprobs):
        score = sum_logprobs / (len(hyp) ** self.lp)
        if len(self.beams) < self.num_beams or score > self.worst:
            self.beams.append((score, hyp))
            if len(self.beams) > self.num_beams:
                srt = sorted([(s, i) for i, (s, _) in enumerate(self.beams)])
                del self.beams[srt[0][1]]
                self.worst = srt[1][0]
            else:
                self.worst = min(score, self.worst)

    def is_done(self, best_sum_logprobs, cur_len):
        if len(self.beams) < self.num_beams:
            return False
        if self.early is True:
            return True
        if self.early is False or self.lp <= 0:
            return self.worst >= best_sum_logprobs / cur_len ** self.lp
        return self.worst >= best_sum_logprobs / self.max_length ** self.lp


def run(fwd, W, cfg, ids, mask, o, lora=None):
    eos = o["eos_token_id"]
    pad, start, K, maxlen = cfg["pad_token_id"], cfg["decoder_start_token_id"], o["num_beams"], o["max_length"]
    B = ids.shape[0]
    gaps = []
    if K == 1:  # greedy_search
        seqs = torch.full((B, 1), start, dtype=torch.long)
        unfinished = torch.ones(B, dtype=torch.long)
        while True:
            with torch.no_grad():
                logits = fwd(W, cfg, ids, mask, seqs, lora)[:, -1, :]
            scores = process(seqs, logits.clone(), o, eos)
            top = torch.topk(scores, 2, dim=-1).values
            gaps += (top[:, 0] - top[:, 1]).tolist()
            nxt = scores.argmax(-1) * unfinished + pad * (1 - unfinished)
            seqs = torch.cat([seqs, nxt[:, None]], dim=-1)
            unfinished = unfinished * torch.tensor([int(t not in eos) for t in nxt.tolist()])
            if unfinished.max() == 0 or seqs.shape[-1] >= maxlen:
                break
        return [[{"tokens": s[1:], "score": None}] for s in seqs.tolist()], min(gaps)

    ids_x = ids.repeat_interleave(K, 0)
    mask_x = mask.repeat_interleave(K, 0)
    seqs = torch.full((B * K, 1), start, dtype=torch.long)
    beam_scores = torch.zeros(B, K)
    beam_scores[:, 1:] = -1e9
    beam_scores = beam_scores.view(-1)
    hyps = [Hyps(K, o.get("length_penalty", 1.0), o.get("early_stopping", False), maxlen) for _ in range(B)]
    done = [False] * B
    while True:
        cur_len = seqs.shape[-1]
        with torch.no_grad():
            logits = fwd(W, cfg, ids_x, mask_x, seqs, lora)[:, -1, :]
        scores = F.log_softmax(logits, dim=-1)
        scores = process(seqs, scores, o, eos)
        scores = scores + beam_scores[:, None]
        V = scores.shape[-1]
        scores = scores.view(B, K * V)
        top_scores, top = torch.topk(scores, 2 * K, dim=1, largest=True, sorted=True)
        for b in range(B):
            if not done[b]:
                finite = top_scores[b][torch.isfinite(top_scores[b])]
                gaps += (finite[:-1] - finite[1:]).tolist()
        idx, tok = top // V, top % V
        nb_scores, nb_tokens, nb_idx = torch.zeros(B, K), torch.zeros(B, K, dtype=torch.long), torch.zeros(B, K, dtype=torch.long)
        for b in range(B):
            if done[b]:
                nb_tokens[b, :] = pad
                continue
            filled = 0
            for rank in range(2 * K):
                t, s, i = tok[b, rank].item(), top_scores[b, rank].item(), idx[b, rank].item()
                src = b * K + i
                if t in eos:
                    if rank >= K:
                        continue
                    hyps[b].add(seqs[src].tolist(), s)
                else:
                    nb_scores[b, filled], nb_tokens[b, filled], nb_idx[b, filled] = s, t, src
                    filled += 1
                if filled == K:
                    break
            assert filled == K
            done[b] = done[b] or hyps[b].is_done(top_scores[b].max().item(), cur_len)
        beam_scores = nb_scores.view(-1)
        seqs = torch.cat([seqs[nb_idx.view(-1)], nb_tokens.view(-1, 1)], dim=-1)
        if all(done) or seqs.shape[-1] >= maxlen:
            break
    out = []
    for b in range(B):
        if not done[b]:
            for k in range(K):
                hyps[b].add(seqs[b * K + k].tolist(), beam_scores[b * K + k].item())
        best = sorted(hyps[b].beams, key=lambda x: x[0])
        row = []
        for _ in range(o.get("num_return_sequences", 1)):
            score, hyp = best.pop()
            toks = hyp[1:] + ([eos[0]] if len(hyp) < maxlen else [])
            row.append({"tokens": toks, "score": score})
        out.append(row)
    return out, min(gaps) if gaps else None


CASES = [
    {"name": "4 beams, HF defaults (length_penalty 1, early_stopping False)", "num_beams": 4, "max_length": 12},
    {"name": "3 beams, length_penalty 2, no_repeat_ngram_size 2, min_length 6, early_stopping, 2 returned", "num_beams": 3,
     "max_length": 14, "length_penalty": 2.0, "no_repeat_ngram_size": 2, "min_length": 6, "early_stopping": True, "num_return_sequences": 2},
    {"name": "2 beams, early_stopping never, length_penalty 0.5", "num_beams": 2, "max_length": 10, "length_penalty": 0.5, "early_stopping": "never"},
    {"name": "5 beams, length_penalty -1 (shorter)", "num_beams": 5, "max_length": 10, "length_penalty": -1.0},
    {"name": "4 beams, forced BOS and EOS", "num_beams": 4, "max_length": 9, "forced_bos_token_id": 5, "forced_eos_token_id": "eos"},
    {"name": "greedy (num_beams 1) with min_length 4 and no_repeat_ngram_size 1", "num_beams": 1, "max_length": 10, "min_length": 4, "no_repeat_ngram_size": 1},
    {"name": "4 beams with the golden LoRA", "num_beams": 4, "max_length": 11, "lora": True},
]


def main():
    out = {"transformers": "v4.30 semantics (generation/utils.py beam_search, greedy_search; beam_search.py)", "models": {}}
    for name, fwd in (("t5-tiny", t5_forward), ("bart-tiny", bart_forward)):
        d = os.path.join(FIX, "hf", name)
        cfg = json.load(open(os.path.join(d, "config.json")))
        W, _ = read_safetensors(os.path.join(d, "model.safetensors"))
        gold = json.load(open(os.path.join(d, "golden.json")))
        gen = torch.Generator().manual_seed(77 if name == "t5-tiny" else 78)
        V, pad = cfg["vocab_size"], cfg["pad_token_id"]
        ids = torch.randint(3, V, (3, 8), generator=gen)
        lengths = [8, 5, 3]
        mask = torch.zeros(3, 8)
        for b, n in enumerate(lengths):
            mask[b, :n] = 1
            ids[b, n:] = pad
        # A second eos id: the token the greedy continuation of row 0 emits most, so hypotheses do finish.
        with torch.no_grad():
            seq = torch.tensor([[cfg["decoder_start_token_id"]]])
            for _ in range(8):
                nxt = fwd(W, cfg, ids[:1], mask[:1], seq)[0, -1].argmax()
                seq = torch.cat([seq, nxt.view(1, 1)], dim=1)
        vals, counts = torch.unique(seq[0, 1:], return_counts=True)
        extra = int(vals[counts.argmax()])
        eos = [cfg["eos_token_id"], extra] if extra != cfg["eos_token_id"] else [cfg["eos_token_id"]]
        cases = []
        for c in CASES:
            o = dict(c)
            o["eos_token_id"] = eos
            if o.get("forced_eos_token_id") == "eos":
                o["forced_eos_token_id"] = eos[0]
            lora = GoldenLora(gold) if o.pop("lora", False) else None
            res, gap = run(fwd, W, cfg, ids, mask, o, lora)
            print(f"{name}: {c['name']}: min gap {gap:.2e}; {[[len(h['tokens']) for h in r] for r in res]}")
            cases.append({**o, "lora": lora is not None, "min_gap": gap, "output": res})
        out["models"][name] = {"input_ids": [r[:n] for r, n in zip(ids.tolist(), lengths)], "cases": cases}
    with open(os.path.join(FIX, "beam_search_hf.json"), "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()
