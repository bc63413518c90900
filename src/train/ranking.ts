// Ranking losses as graph builders over a [G, K] score matrix: G groups (queries),
// K candidates each. Relevance labels are a float [G, K] tensor (higher = more
// relevant); an optional bool/float `valid` [G, K] mask drops padded candidates.
//
//   pairwise:  every ordered pair (i, j) in a group with label_i > label_j
//              (both valid) contributes ℓ(s_i − s_j):
//                RankNet / logistic: ℓ(d) = log(1 + e^{−d})   (softplus(−d), stable)
//                margin hinge:       ℓ(d) = max(0, margin − d)
//              optionally weighted by |label_i − label_j| (`weightByGap`);
//              the loss is the (weighted) mean over the pairs of all groups.
//   listwise:  softmax cross-entropy over each group, −Σ_k p_k log softmax(s)_k,
//              averaged over the G groups, with target distribution p:
//                softmaxCE: p = labels / Σ labels (one-hot / multi-positive), or
//                           an int64 [G] index of the positive candidate
//                ListNet:   p = softmax(labels / temperature)  (top-one probability)
//
// All of these are differentiable in the scores (autodiff rules for Sub, Relu,
// Exp, Log, Abs, LogSoftmax, Where, Max…), so they slot into any graph that
// produces scores, e.g. a pooled encoder head reshaped to [G, K].

import { ShapeError, Value } from '../graph/ir.ts';
import * as op from '../graph/ops.ts';

export interface PairwiseOptions {
  /** 'logistic' (RankNet, default) or 'hinge'. */
  kind?: 'logistic' | 'hinge';
  /** Hinge margin (default 1). */
  margin?: number;
  /** RankNet σ: scores are scaled by it before the pairwise difference (default 1). */
  sigma?: number;
  /** Weight each pair by |label_i − label_j| (default false). */
  weightByGap?: boolean;
  /** [G, K] mask of real candidates (bool or float 0/1). */
  valid?: Value;
}

export interface ListwiseOptions {
  /** [G, K] mask of real candidates (bool or float 0/1). */
  valid?: Value;
}

function checkScores(name: string, scores: Value, labels?: Value) {
  if (scores.rank !== 2) throw new ShapeError(`${name}: scores must be [G, K], got ${scores.describe()}`);
  if (scores.dtype !== 'float32' && scores.dtype !== 'float64') throw new ShapeError(`${name}: scores must be float, got ${scores.describe()}`);
  if (labels && labels.rank !== 2) throw new ShapeError(`${name}: labels must be [G, K], got ${labels.describe()}`);
}

function maskFloat(valid: Value, dtype: Value['dtype']): Value {
  return valid.dtype === dtype ? valid : op.cast(valid.dtype === 'bool' ? valid : op.greater(valid, 0), dtype);
}

/** log(1 + e^x), computed as relu(x) + log(1 + e^{−|x|}). */
export function softplus(x: Value): Value {
  return op.add(op.relu(x), op.log(op.add(op.exp(op.neg(op.abs(x))), 1)));
}

/** Pairwise matrix of score differences: D[g, i, j] = s[g, i] − s[g, j]  ([G, K, K]). */
export function pairDiffs(x: Value): Value {
  return op.sub(op.unsqueeze(x, [2]), op.unsqueeze(x, [1]));
}

/**
 * Pairwise ranking loss (RankNet/logistic or margin hinge) of scores [G, K]
 * against float relevance labels [G, K]. Returns a scalar: the (weighted) mean
 * over the ordered pairs with label_i > label_j; 0 when there are none.
 */
export function pairwiseLoss(scores: Value, labels: Value, opts: PairwiseOptions = {}): Value {
  checkScores('pairwiseLoss', scores, labels);
  const dt = scores.dtype;
  const y = labels.dtype === dt ? labels : op.cast(labels, dt);
  const s = opts.sigma !== undefined && opts.sigma !== 1 ? op.mul(scores, opts.sigma) : scores;
  const d = pairDiffs(s); // [G,K,K]
  const yd = pairDiffs(y);
  let w = op.cast(op.greater(yd, 0), dt); // pair (i,j) counts when y_i > y_j
  if (opts.weightByGap) w = op.mul(w, yd);
  if (opts.valid) {
    const v = maskFloat(opts.valid, dt);
    w = op.mul(w, op.mul(op.unsqueeze(v, [2]), op.unsqueeze(v, [1])));
  }
  const kind = opts.kind ?? 'logistic';
  const per = kind === 'hinge' ? op.relu(op.sub(op.lift(d, opts.margin ?? 1), d)) : softplus(op.neg(d));
  const total = op.reduceSum(op.mul(per, w), [0, 1, 2], false);
  // With no pairs, total is 0 and the clamped count is tiny: the loss is 0.
  return op.div(total, op.max2(op.reduceSum(w, [0, 1, 2], false), 1e-12));
}

function maskedLogSoftmax(scores: Value, valid?: Value): Value {
  if (!valid) return op.logSoftmax(scores, -1);
  const cond = valid.dtype === 'bool' ? valid : op.greater(valid, 0);
  return op.logSoftmax(op.where(cond, scores, op.lift(scores, -1e9)), -1);
}

/** −mean_g Σ_k p[g,k] · log softmax(scores)[g,k] for a target distribution p [G, K]. */
export function listwiseCE(scores: Value, target: Value, opts: ListwiseOptions = {}): Value {
  checkScores('listwiseCE', scores, target);
  const lp = maskedLogSoftmax(scores, opts.valid);
  let p = target.dtype === scores.dtype ? target : op.cast(target, scores.dtype);
  if (opts.valid) p = op.mul(p, maskFloat(opts.valid, scores.dtype));
  return op.neg(op.reduceMean(op.reduceSum(op.mul(p, lp), [1], false), [0], false));
}

/**
 * Softmax cross-entropy over each group. `target` is either an int64 [G] index
 * of the positive candidate, or float relevance labels [G, K] (normalized to a
 * distribution per group: one-hot or multi-positive).
 */
export function softmaxCrossEntropy(scores: Value, target: Value, opts: ListwiseOptions = {}): Value {
  checkScores('softmaxCrossEntropy', scores);
  if (target.dtype === 'int64' || target.dtype === 'int32') {
    if (target.rank !== 1) throw new ShapeError(`softmaxCrossEntropy: index target must be [G], got ${target.describe()}`);
    const lp = maskedLogSoftmax(scores, opts.valid);
    const idx = target.dtype === 'int64' ? target : op.cast(target, 'int64');
    return op.neg(op.reduceMean(op.gatherElements(lp, op.unsqueeze(idx, [1]), 1), [0, 1], false));
  }
  let y = target.dtype === scores.dtype ? target : op.cast(target, scores.dtype);
  if (opts.valid) y = op.mul(y, maskFloat(opts.valid, scores.dtype));
  const p = op.div(y, op.max2(op.reduceSum(y, [1], true), 1e-12));
  return listwiseCE(scores, p, opts);
}

/**
 * Pointwise binary cross-entropy (one logit per candidate, target 1 when its
 * label > 0, else 0; the cross-lingual ranking adapters' loss): the mean of
 * softplus(s) − y·s over the valid candidates of all groups.
 */
export function pointwiseLoss(scores: Value, labels: Value, opts: ListwiseOptions = {}): Value {
  checkScores('pointwiseLoss', scores, labels);
  const dt = scores.dtype;
  const y = op.cast(op.greater(labels.dtype === dt ? labels : op.cast(labels, dt), 0), dt);
  const per = op.sub(softplus(scores), op.mul(y, scores));
  if (!opts.valid) return op.reduceMean(per, [0, 1], false);
  const v = maskFloat(opts.valid, dt);
  return op.div(op.reduceSum(op.mul(per, v), [0, 1], false), op.max2(op.reduceSum(v, [0, 1], false), 1e-12));
}

/** ListNet (top-one): cross-entropy against softmax(labels / temperature). */
export function listNetLoss(scores: Value, labels: Value, opts: ListwiseOptions & { temperature?: number } = {}): Value {
  checkScores('listNetLoss', scores, labels);
  let y = labels.dtype === scores.dtype ? labels : op.cast(labels, scores.dtype);
  if (opts.temperature !== undefined && opts.temperature !== 1) y = op.div(y, opts.temperature);
  const p = op.exp(maskedLogSoftmax(y, opts.valid));
  return listwiseCE(scores, opts.valid ? op.mul(p, maskFloat(opts.valid, scores.dtype)) : p, opts);
}
