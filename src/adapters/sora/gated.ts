// ΔW of a LoRA with one gate per rank (SoRA, CoDyRA): ΔW = s·B·diag(g)·A, and
// its low-rank factors with the closed gates removed — the plain LoRA of rank
// nnz(g) the adapter becomes (SoRA's inference form: B' = B[:, nz]·diag(g[nz]), A' = A[nz]).
import type { LinearSite } from '../../models/types.ts';
import type { LowRankFactors } from '../types.ts';

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
