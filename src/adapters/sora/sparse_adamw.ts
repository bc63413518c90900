// SoRA's gate optimizer, SparseAdamW.step of the official src/sparse_optimizer.py
// (transformers' AdamW with the threshold after it), for one gate tensor:
//   t += 1;  m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²;  denom = √v + eps
//   step = lr·√(1−β2^t)/(1−β1^t)
//   p ← p − step·m/denom − lr·wd·p          (wd on the pre-update p; 0 for gates)
//   then the threshold ξ (./threshold.ts).
// Arithmetic in float64; the arrays may be float32 (training) or float64 (tests).
import { thresholdGates, type ThresholdKind } from './threshold.ts';

export interface SparseAdamWHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** ξ; 0 = no threshold. */
  xi: number;
  threshold: ThresholdKind;
}

type Arr = Float32Array | Float64Array;

/** One step of one tensor; `t` is its step count after this step (1 on the first). */
export function sparseAdamWStep(p: Arr, grad: ArrayLike<number>, m: Arr, v: Arr, t: number, h: SparseAdamWHyper): void {
  const { lr, beta1, beta2, eps, weightDecay } = h;
  const stepSize = (lr * Math.sqrt(1 - beta2 ** t)) / (1 - beta1 ** t);
  for (let i = 0; i < p.length; i++) {
    const g = grad[i];
    m[i] = beta1 * m[i] + (1 - beta1) * g;
    v[i] = beta2 * v[i] + (1 - beta2) * g * g;
    const denom = Math.sqrt(v[i]) + eps;
    let add = (m[i] / denom) * -stepSize;
    if (weightDecay > 0) add += -lr * weightDecay * p[i];
    p[i] = p[i] + add;
  }
  thresholdGates(p, h.xi, h.threshold);
}
