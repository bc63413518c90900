// The inverted hinge loss of LoKU (Cha et al., "Towards Robust and Parameter-
// Efficient Knowledge Unlearning for LLMs", ICLR 2025), as the official code
// computes it (csm9493/efficient-llm-unlearning, TOFU/dataloader.py:
// CustomTrainerForgetting.compute_loss branch "IHL", multiclass_hinge_loss and
// _custom_multiclass_hinge_loss_update with torchmetrics' _hinge_loss_compute):
//
//   over the next-token positions whose label is not −100 (logits shifted
//   against labels, flattened over the batch):
//   p = softmax(logits)   (skipped when every logit of those rows already
//                          lies in [0, 1], the official check; it practically
//                          never holds for logits)
//   margin = p_y − max_{v≠y} p_v          (Crammer–Singer, alpha = 1)
//   IHL = mean over the tokens of clamp(1 + margin, 0)
//
// Minimizing it pushes the forget token's probability below the best other
// token's (an "inverted" hinge: the hinge loss of the true class, minimized
// instead of maximized), with bounded gradients unlike gradient ascent.

import type { Value } from '../../graph/ir.ts';
import * as op from '../../graph/ops.ts';

/**
 * IHL of logits [B,T,V] against next-token targets [B,T] int64 already shifted
 * (targets[b,t] = labels[b,t+1]; < 0 ignored), mean over the counted tokens.
 */
export function invertedHingeLoss(logits: Value, targets: Value): Value {
  const g = logits.graph;
  const V = logits.shape[logits.rank - 1] as number;
  const x = op.reshape(logits, [-1, V]); // [N,V]
  const t = op.reshape(targets, [-1, 1]); // [N,1]
  const keep = op.greater(t, -1); // [N,1]
  const tt = op.where(keep, t, 0);
  // The official softmax check, over the counted rows only: any entry below 0 or above 1 → softmax.
  const outside = op.add(op.relu(op.neg(x)), op.relu(op.sub(x, 1))); // > 0 where x ∉ [0, 1]
  const worst = op.reduceMax(op.where(keep, outside, 0), [0, 1], false); // scalar
  const skip = op.equal(worst, 0);
  const p = op.where(skip, x, op.softmax(x, -1));
  const py = op.gatherElements(p, tt, 1); // [N,1]
  const vocab = op.reshape(g.ints(Array.from({ length: V }, (_, i) => i)), [1, V]);
  const isTarget = op.equal(vocab, tt); // [N,V]
  // p ≥ 0 after softmax (and in [0, 1] when skipped), so −1 is never the max of the others.
  const others = op.reduceMax(op.where(isTarget, -1, p), [1], true); // [N,1]
  const measure = op.relu(op.add(op.sub(py, others), 1)); // clamp(1 + margin, 0)
  const w = op.cast(keep, x.dtype);
  const total = op.reduceSum(op.mul(measure, w), [0, 1], false);
  return op.div(total, op.max2(op.reduceSum(w, [0, 1], false), 1));
}
