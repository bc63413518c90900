// ΔW of a LoRA with one gate per rank (SoRA, CoDyRA): ΔW = s·B·diag(g)·A, and
// its low-rank factors with the closed gates removed — the plain LoRA of rank
// nnz(g) the adapter becomes (SoRA's inference form: B' = B[:, nz]·diag(g[nz]), A' = A[nz]).
import * as op from '../../graph/ops.ts';
import type { Value } from '../../graph/ir.ts';
import type { LinearSite } from '../../models/types.ts';
import type { AdapterContext, LowRankFactors, ParamSpec } from '../types.ts';
import { kaimingUniform } from '../lora/index.ts';

/** Tensor names of a gated LoRA (SoRA and CoDyRA alike). */
export const GATED_KEYS = { A: 'lora_A.weight', B: 'lora_B.weight', gate: 'lora_gate' } as const;

/** The official LowRankLinear init: A kaiming-uniform(a=√5), B = 0 (or kaiming when init_weights is false), g ~ N(0, 1). */
export function gatedInit({ site, config, rng }: AdapterContext<{ r: number; init_weights: boolean }>): ParamSpec[] {
  const n = site.inFeatures, m = site.outFeatures, r = config.r;
  const A = kaimingUniform(rng, r, n);
  const B = config.init_weights ? new Float32Array(m * r) : kaimingUniform(rng, m, r);
  const g = rng.fillNormal(new Float32Array(r), 0, 1);
  return [
    { key: GATED_KEYS.A, shape: [r, n], data: A },
    { key: GATED_KEYS.B, shape: [m, r], data: B },
    { key: GATED_KEYS.gate, shape: [1, r], data: g },
  ];
}

/** base + s·((x·Aᵀ) ⊙ g)·Bᵀ, as LowRankLinear.forward. */
export function gatedForward(p: Record<string, Value>, x: Value, base: Value, s: number): Value {
  const h = op.mul(op.gemm(x, p[GATED_KEYS.A], { transB: true }), p[GATED_KEYS.gate]);
  return op.gemm(h, p[GATED_KEYS.B], { transB: true, alpha: s }, base);
}

/** s·B·diag(g)·A [out, in]. */
export function gatedDelta(site: LinearSite, r: number, s: number, A: Float32Array, B: Float32Array, g: Float32Array): Float32Array {
  const m = site.outFeatures, n = site.inFeatures;
  const dW = new Float32Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let k = 0; k < r; k++) {
      const b = s * B[i * r + k] * g[k];
      if (b === 0) continue;
      for (let j = 0; j < n; j++) dW[i * n + j] += b * A[k * n + j];
    }
  }
  return dW;
}

/** The open ranks only: A' [nnz, in], B' = B[:, nz]·diag(g[nz]) [out, nnz], scale s. */
export function gatedFactors(site: LinearSite, r: number, s: number, A: Float32Array, B: Float32Array, g: Float32Array): LowRankFactors {
  const m = site.outFeatures, n = site.inFeatures;
  const nz: number[] = [];
  for (let k = 0; k < r; k++) if (g[k] !== 0) nz.push(k);
  const k2 = nz.length;
  const A2 = new Float32Array(k2 * n), B2 = new Float32Array(m * k2);
  nz.forEach((k, c) => {
    A2.set(A.subarray(k * n, (k + 1) * n), c * n);
    for (let i = 0; i < m; i++) B2[i * k2 + c] = B[i * r + k] * g[k];
  });
  return { A: A2, B: B2, r: k2, scale: s };
}
