// The GRPO objective (Shao et al. 2024, DeepSeekMath §4.1) on per-token
// log-probs, as TRL's GRPOTrainer computes it (loss_type "grpo"):
//   ratio_t = exp(logp_t − old_t)   (old: the policy that sampled; with one
//                                    optimizer step per sample batch it equals
//                                    logp detached, so ratio = 1, but the
//                                    clipping stays for μ > 1 iterations)
//   obj_t   = min(ratio_t·A, clip(ratio_t, 1−ε, 1+ε_high)·A)
//   kl_t    = exp(ref_t − logp_t) − (ref_t − logp_t) − 1   (k3 estimator, Schulman 2020)
//   loss    = mean over sequences of [ Σ_t mask·(−obj_t + β·kl_t) / Σ_t mask ]
// i.e. a per-sequence token mean, then the mean over the batch (every group
// has G sequences, so that is the mean of the group means).

import type { Value } from '../../graph/ir.ts';
import * as op from '../../graph/ops.ts';

export interface GrpoLossOptions {
  /** Lower clipping range ε (default 0.2, TRL's). */
  epsilon?: number;
  /** Upper clipping range (default = epsilon; DAPO's clip-higher sets it larger). */
  epsilonHigh?: number;
  /** KL coefficient β (0: no KL term, no reference log-probs needed). */
  beta?: number;
}

const min2 = (a: Value, b: Value | number) => op.neg(op.max2(op.neg(a), typeof b === 'number' ? -b : op.neg(b)));

/**
 * The scalar GRPO loss from per-token log-probs of the sampled tokens
 * `logp`, `oldLogp`, `refLogp` [B,T], a completion mask [B,T] (1 on the
 * completion tokens that count) and each sequence's advantage [B].
 * Also returns the masked mean k3 KL (a figure to log).
 */
export function grpoLoss(logp: Value, oldLogp: Value, refLogp: Value | null, mask: Value, advantages: Value, o: GrpoLossOptions = {}): { loss: Value; kl: Value | null } {
  const eps = o.epsilon ?? 0.2;
  const epsHigh = o.epsilonHigh ?? eps;
  const beta = o.beta ?? 0;
  if (!(eps >= 0 && epsHigh >= 0)) throw new Error(`GRPO: the clipping range must be ≥ 0, got ε=${eps}, ε_high=${epsHigh}`);
  if (!(beta >= 0)) throw new Error(`GRPO: β must be ≥ 0, got ${beta}`);
  if (beta > 0 && !refLogp) throw new Error('GRPO: β > 0 needs the reference log-probs');
  const A = op.unsqueeze(advantages, [1]); // [B,1]
  const ratio = op.exp(op.sub(logp, oldLogp));
  const clipped = op.max2(min2(ratio, 1 + epsHigh), 1 - eps);
  let perToken = op.neg(min2(op.mul(ratio, A), op.mul(clipped, A)));
  let kl: Value | null = null;
  if (refLogp) {
    const d = op.sub(refLogp, logp);
    kl = op.sub(op.sub(op.exp(d), d), 1);
    if (beta > 0) perToken = op.add(perToken, op.mul(kl, beta));
  }
  const count = op.max2(op.reduceSum(mask, [1], false), 1); // [B]
  const perSeq = op.div(op.reduceSum(op.mul(perToken, mask), [1], false), count);
  const loss = op.reduceMean(perSeq, [0], false);
  const klMean = kl ? op.div(op.reduceSum(op.mul(kl, mask), [0, 1], false), op.max2(op.reduceSum(mask, [0, 1], false), 1)) : null;
  return { loss, kl: klMean };
}
