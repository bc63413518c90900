#!/usr/bin/env python3
"""Golden BertForMaskedLM folder (test/fixtures/hf/bert-mlm/) for the masked-LM
task (src/train/tasks/mlm.ts): language adapters trained with masked-LM, as the
cross-lingual ranking adapters are (Litschko et al. 2022, rlitschk/ModularCLIR).

Hugging Face's BertForMaskedLM written in plain PyTorch with HF's weight names
(the encoder modules come from hf_bert_family.py): bert.* without a pooler,
then cls.predictions.transform.{dense, LayerNorm} (dense → activation → LayerNorm),
and the decoder tied to bert.embeddings.word_embeddings.weight plus its own
bias cls.predictions.bias (save_pretrained stores the tied decoder weight once:
the file has no cls.predictions.decoder.weight). Loss: CrossEntropyLoss over the
positions whose label is not -100 (mean), as BertForMaskedLM computes it.

golden.json: input_ids (with [MASK]s in place), attention_mask, labels (-100
where not masked), logits [B, T, V], loss.

Usage: /usr/bin/python3 tools/reference/hf_bert_mlm.py
"""
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_bert_family as fam  # noqa: E402

torch.set_default_dtype(torch.float64)


class BertForMaskedLM(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.bert = fam.BertModel(c, pooler=False)
        h = c["hidden_size"]
        self.transform_dense = nn.Linear(h, h)
        self.transform_ln = nn.LayerNorm(h, eps=c["layer_norm_eps"])
        self.bias = nn.Parameter(torch.zeros(c["vocab_size"]))

    def forward(self, ids, mask, tt):
        h, _ = self.bert(ids, mask, tt)
        x = self.transform_ln(F.gelu(self.transform_dense(h)))
        return x @ self.bert.embeddings.word_embeddings.weight.T + self.bias

    def hf_state_dict(self):
        sd = {k: v for k, v in self.state_dict().items() if k.startswith("bert.")}
        sd["cls.predictions.transform.dense.weight"] = self.transform_dense.weight
        sd["cls.predictions.transform.dense.bias"] = self.transform_dense.bias
        sd["cls.predictions.transform.LayerNorm.weight"] = self.transform_ln.weight
        sd["cls.predictions.transform.LayerNorm.bias"] = self.transform_ln.bias
        sd["cls.predictions.bias"] = self.bias
        return {k: v.detach().clone() for k, v in sd.items()}


def main():
    cfg, _, _ = fam.configs()
    cfg = dict(cfg, architectures=["BertForMaskedLM"])
    for k in ("id2label", "label2id", "classifier_dropout"):
        cfg.pop(k, None)
    toks = fam.make_vocab(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    cfg["vocab_size"] = len(toks)
    tok, specials = fam.tokenizer_json(toks, "bert")
    tok_cfg = {"do_lower_case": True, "model_max_length": 128, "cls_token": "[CLS]", "sep_token": "[SEP]", "unk_token": "[UNK]",
               "pad_token": "[PAD]", "mask_token": "[MASK]", "tokenizer_class": "BertTokenizer"}
    gen = torch.Generator().manual_seed(11)
    model = BertForMaskedLM(cfg)
    fam.randomize(model, gen)
    with torch.no_grad():
        model.bias.copy_((0.1 * torch.randn(cfg["vocab_size"], generator=gen)).to(torch.float32).double())
    ids, mask, tt, _ = fam.batch("bert", cfg["vocab_size"])
    tt = torch.zeros_like(tt)
    labels = torch.full_like(ids, -100)
    masked = [(0, 2), (0, 4), (1, 1), (1, 3), (2, 1)]  # positions inside each row's text
    for b, t in masked:
        labels[b, t] = ids[b, t]
        ids[b, t] = 4  # [MASK]
    ids[0, 5] = 9  # a position "replaced by a random token" that is still a target
    labels[0, 5] = 7
    logits = model(ids, mask, tt)
    loss = F.cross_entropy(logits.reshape(-1, cfg["vocab_size"]), labels.reshape(-1), ignore_index=-100)
    gold = dict(input_ids=ids.tolist(), attention_mask=mask.tolist(), labels=labels.tolist(), logits=fam.flat(logits), loss=float(loss))
    fam.write_folder("bert-mlm", model.hf_state_dict(), cfg, tok, tok_cfg, gold)
    print("wrote", os.path.join(fam.OUT, "bert-mlm"), "loss", float(loss))


if __name__ == "__main__":
    main()
