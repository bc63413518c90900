// transformers' AdamW (the optimizer of IncreLoRA's HF Trainer,
// NLU/src/transformers/optimization.py AdamW.step) on selected elements of a
// tensor, one parameter of the official ParameterLists at a time:
//   m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²;  denom = √v + eps
//   p ← p − lr·√(1−β2^t)/(1−β1^t) · m/denom;   then p ← p − lr·wd·p
// (bias correction folded into the step size; weight decay on the updated p).

export interface HfAdamWHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

type Arr = Float32Array | Float64Array;

/** One step on the elements `idx` of p (t: the parameter's step count after this step). */
export function hfAdamWStep(p: Arr, grad: ArrayLike<number>, m: Arr, v: Arr, idx: ArrayLike<number>, t: number, h: HfAdamWHyper): void {
  const stepSize = (h.lr * Math.sqrt(1 - h.beta2 ** t)) / (1 - h.beta1 ** t);
  for (let j = 0; j < idx.length; j++) {
    const i = idx[j];
    const g = grad[i];
    m[i] = h.beta1 * m[i] + (1 - h.beta1) * g;
    v[i] = h.beta2 * v[i] + (1 - h.beta2) * g * g;
    let x = p[i] - (stepSize * m[i]) / (Math.sqrt(v[i]) + h.eps);
    if (h.weightDecay > 0) x = x - h.lr * h.weightDecay * x;
    p[i] = x;
  }
}
