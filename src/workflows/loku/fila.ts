// FILA, LoKU's Fisher-weighted initialization of the LoRA (Cha et al., ICLR
// 2025), as the official code does it (csm9493/efficient-llm-unlearning):
//
// Importance (TOFU/measure_importance.py): one pass over (forget batch,
// retain batch) pairs; for every adapted weight, after the backward pass of a
// batch's NLL (Hugging Face's mean over its counted tokens),
//   F_f += grad² · cnt_f,   N_f += cnt_f      (cnt = Σ(labels ≠ −100), unshifted labels)
// and the same on the retain batch for F_r, N_r.
//
// Initialization (TOFU/forget.py, block "if cfg.importance_file"), per weight W [out, in]:
//   I = (F_f / N_f) ⊘ (1e-5 + F_r / N_r)           forget-vs-retain Fisher ratio
//   w = √(Σ_in I)                                    one weight per output row
//   U, S, V = top-r SVD of diag(w)·W;  S ← S / s     (the official code: torch.svd_lowrank, randomized;
//                                                     lorakit: the exact top-r SVD for min(out, in) ≤ 96,
//                                                     else a seeded randomized range finder)
//   A = (V·√S)ᵀ,  B = diag(1/(w + 1e-5))·U·√S,  W_base = W − s·B·A
// so s·B·A is the best rank-r approximation of W in the importance-weighted
// norm, moved out of the frozen weight into the adapter that unlearning trains.

import { svdTopR } from '../../linalg/svd.ts';
import type { LinearSite } from '../../models/types.ts';
import { Trainer } from '../../train/loop.ts';
import { CausalLmTask, type CausalLmExample } from '../../train/tasks/causal_lm.ts';
import type { DecoderModel } from '../../models/decoder.ts';
import { lmBatch } from './task.ts';

export interface FisherSums {
  /** Σ grad²·cnt per site (by name), [out, in]. */
  forget: Map<string, Float64Array>;
  retain: Map<string, Float64Array>;
  forgetCount: number;
  retainCount: number;
}

/** Labels that count (≠ −100) in an example: its tokens after the prompt. */
export function labelCount(e: CausalLmExample): number {
  return e.ids.length - (e.promptLength ?? 0);
}

/**
 * measure_importance.py over the given batch pairs (forget batch i with retain
 * batch i, each in the order given): Σ grad²·cnt of the sites' weights and Σ cnt.
 */
export async function measureImportance(
  model: DecoderModel,
  sites: LinearSite[],
  pairs: { forget: CausalLmExample[]; retain: CausalLmExample[] }[],
  o: { padId: number; threads?: number; onBatch?: () => void },
): Promise<FisherSums> {
  const task = new CausalLmTask(model, { padId: o.padId });
  const trainer = new Trainer(task, null, { epochs: 1, lr: 1, batchSize: 1, seed: 0, threads: o.threads });
  const sums: FisherSums = { forget: new Map(), retain: new Map(), forgetCount: 0, retainCount: 0 };
  const add = (into: Map<string, Float64Array>, grads: Map<string, Float64Array>, cnt: number) => {
    for (const [k, g] of grads) {
      let acc = into.get(k);
      if (!acc) into.set(k, (acc = new Float64Array(g.length)));
      for (let i = 0; i < g.length; i++) acc[i] += g[i] * g[i] * cnt;
    }
  };
  try {
    for (const side of ['forget', 'retain'] as const) {
      const batches = pairs.map((p) => ({ batch: lmBatch(p[side], o.padId), cnt: p[side].reduce((s, e) => s + labelCount(e), 0) }));
      const cnt = new Map(batches.map((b) => [b.batch, b.cnt]));
      await trainer.weightGradientsEach(batches.map((b) => b.batch), sites, (grads, batch) => {
        add(sums[side], grads, cnt.get(batch)!);
        if (side === 'forget') sums.forgetCount += cnt.get(batch)!;
        else sums.retainCount += cnt.get(batch)!;
        o.onBatch?.();
      });
    }
  } finally {
    await trainer.release();
  }
  return sums;
}

export interface FilaFactors {
  /** [r, in] */
  A: Float32Array;
  /** [out, r] */
  B: Float32Array;
  /** W − s·B·A [out, in] */
  residual: Float32Array;
  /** The row weights w [out]. */
  rowWeights: Float64Array;
}

/** forget.py's FILA for one weight W [out, in] (row-major) from its Fisher sums. */
export function filaInit(W: ArrayLike<number>, out: number, inn: number, Ff: ArrayLike<number>, Fr: ArrayLike<number>, forgetCount: number, retainCount: number, r: number, s: number): FilaFactors {
  if (!(forgetCount > 0 && retainCount > 0)) throw new Error(`FILA: the importance counts must be positive (forget ${forgetCount}, retain ${retainCount}): no token was measured`);
  if (r > Math.min(out, inn)) throw new Error(`FILA: rank ${r} exceeds min(${out}, ${inn}) of the weight`);
  const w = new Float64Array(out);
  for (let i = 0; i < out; i++) {
    let t = 0;
    for (let j = 0; j < inn; j++) t += Ff[i * inn + j] / forgetCount / (1e-5 + Fr[i * inn + j] / retainCount);
    w[i] = Math.sqrt(t);
  }
  const M = new Float64Array(out * inn);
  for (let i = 0; i < out; i++) for (let j = 0; j < inn; j++) M[i * inn + j] = w[i] * W[i * inn + j];
  const { U, S, Vt } = svdTopR(M, out, inn, r);
  const A = new Float32Array(r * inn), B = new Float32Array(out * r);
  for (let k = 0; k < r; k++) {
    const root = Math.sqrt(S[k] / s);
    for (let j = 0; j < inn; j++) A[k * inn + j] = Vt[k * inn + j] * root;
    for (let i = 0; i < out; i++) B[i * r + k] = (U[i * r + k] * root) / (w[i] + 1e-5);
  }
  const residual = new Float32Array(out * inn);
  for (let i = 0; i < out; i++) {
    for (let j = 0; j < inn; j++) {
      let d = 0;
      for (let k = 0; k < r; k++) d += B[i * r + k] * A[k * inn + j];
      residual[i * inn + j] = W[i * inn + j] - s * d;
    }
  }
  return { A, B, residual, rowWeights: w };
}
