// LU factorization with partial pivoting in float64 (LAPACK getrf semantics,
// what torch.linalg.lu returns): A [m, n] = P · L · U with P a permutation
// [m, m], L [m, k] unit lower-trapezoidal, U [k, n] upper-trapezoidal,
// k = min(m, n). Row swaps pick the largest |pivot| (first one on ties).

export interface Lu {
  /** perm[i] = the row of A that ends up in row i of L·U, i.e. (Pᵀ·A)[i] = A[perm[i]]. */
  perm: Int32Array;
  L: Float64Array;
  U: Float64Array;
  k: number;
}

export function luPartialPivot(A: Float64Array | Float32Array, m: number, n: number): Lu {
  const a = Float64Array.from(A);
  const k = Math.min(m, n);
  const perm = Int32Array.from({ length: m }, (_, i) => i);
  for (let j = 0; j < k; j++) {
    let p = j, best = Math.abs(a[j * n + j]);
    for (let i = j + 1; i < m; i++) {
      const v = Math.abs(a[i * n + j]);
      if (v > best) { best = v; p = i; }
    }
    if (p !== j) {
      for (let c = 0; c < n; c++) { const t = a[j * n + c]; a[j * n + c] = a[p * n + c]; a[p * n + c] = t; }
      const t = perm[j]; perm[j] = perm[p]; perm[p] = t;
    }
    const piv = a[j * n + j];
    if (piv === 0) continue; // singular column: L entries stay 0 below (as getrf)
    for (let i = j + 1; i < m; i++) {
      const f = (a[i * n + j] /= piv);
      if (f === 0) continue;
      for (let c = j + 1; c < n; c++) a[i * n + c] -= f * a[j * n + c];
    }
  }
  const L = new Float64Array(m * k), U = new Float64Array(k * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < k; j++) L[i * k + j] = i === j ? 1 : i > j ? a[i * n + j] : 0;
  for (let i = 0; i < k; i++) for (let j = i; j < n; j++) U[i * n + j] = a[i * n + j];
  return { perm, L, U, k };
}

/** The dense permutation matrix P [m, m] with A = P·L·U. */
export function permutationMatrix(perm: Int32Array): Float64Array {
  const m = perm.length;
  const P = new Float64Array(m * m);
  for (let i = 0; i < m; i++) P[perm[i] * m + i] = 1;
  return P;
}
