// PiSSA init (Meng et al. 2024; PEFT `pissa_init`): the principal r singular
// directions of W0 become the adapter, the rest stays frozen:
//   W0 = U S Vᵀ,  A = diag(√(S_r/s))·Vᵀ_r,  B = U_r·diag(√(S_r/s)),  W_res = W0 − s·B·A
// 'pissa' is exact SVD in PEFT; lorakit uses src/linalg's top-r SVD (exact
// Jacobi for small matrices, else a randomized range finder with 40 power
// steps; 'pissa_niter_<n>' sets n), which gives the same subspace to float
// precision for well-separated spectra. The model output is unchanged at init in
// every case, since W_res + s·B·A = W0.
import type { LoraInit } from '../types.ts';
import { svdTopR } from '../../linalg/svd.ts';

export const pissa: LoraInit = {
  matches: (v) => v === 'pissa' || /^pissa_niter_\d+$/.test(v),
  init({ value, r, scaling, W, out: m, in: n, rng }) {
    const niter = value === 'pissa' ? 40 : Number(value.slice('pissa_niter_'.length));
    const W64 = Float64Array.from(W);
    const { U, S, Vt } = svdTopR(W64, m, n, r, { powerIters: niter, rand: () => rng.uniform() });
    const A = new Float32Array(r * n), B = new Float32Array(m * r);
    for (let j = 0; j < r; j++) {
      const sq = Math.sqrt((S[j] ?? 0) / scaling);
      for (let c = 0; c < n; c++) A[j * n + c] = sq * (Vt[j * n + c] ?? 0);
      for (let i = 0; i < m; i++) B[i * r + j] = sq * (U[i * S.length + j] ?? 0);
    }
    return { A, B, residual: residualOf(W, A, B, scaling, m, n, r) };
  },
};

/** W − s·B·A in [out, in] (float64 accumulation). */
export function residualOf(W: Float32Array, A: Float32Array, B: Float32Array, s: number, m: number, n: number, r: number): Float32Array {
  const res = new Float32Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
    let d = 0;
    for (let k = 0; k < r; k++) d += B[i * r + k] * A[k * n + j];
    res[i * n + j] = W[i * n + j] - s * d;
  }
  return res;
}
