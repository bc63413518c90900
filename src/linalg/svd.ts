// Singular value decomposition in float64, row-major, for adapter inits
// (LoRA-XS, LoRA-SB): one-sided Jacobi (Hestenes) for the full SVD of small
// matrices, and a truncated SVD for large ones (seeded randomized subspace
// iteration down to a small matrix, then the same Jacobi SVD).

export interface Svd {
  /** [m, k] left singular vectors (columns). */
  U: Float64Array;
  /** [k] singular values, descending. */
  S: Float64Array;
  /** [k, n] right singular vectors (rows). */
  Vt: Float64Array;
  k: number;
}

/** C = A [m,p] · B [p,n] */
export function matmulF64(a: Float64Array, b: Float64Array, m: number, p: number, n: number): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    const ci = i * n;
    for (let t = 0; t < p; t++) {
      const v = a[i * p + t];
      if (v === 0) continue;
      const bt = t * n;
      for (let j = 0; j < n; j++) c[ci + j] += v * b[bt + j];
    }
  }
  return c;
}

export function transposeF64(a: Float64Array | Float32Array, m: number, n: number): Float64Array {
  const t = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) t[j * m + i] = a[i * n + j];
  return t;
}

/**
 * Thin SVD of A [m, n] by one-sided Jacobi: k = min(m, n) triplets, singular
 * values descending, each singular vector pair signed (a deterministic
 * convention; torch's differs by signs) so that the largest-|.| entry of u is
 * positive when m ≥ n, and of v when m < n (computed as the SVD of Aᵀ). Saved
 * LoRA-XS adapters depend on it: it stays as it is.
 */
export function svdJacobi(A: Float64Array | Float32Array, m: number, n: number, opts: { tol?: number; maxSweeps?: number } = {}): Svd {
  if (m < n) {
    // SVD of Aᵀ, then swap: A = (U' S V'ᵀ)ᵀ = V' S U'ᵀ.
    const t = svdJacobi(transposeF64(A, m, n), n, m, opts);
    return { U: transposeF64(t.Vt, t.k, m), S: t.S, Vt: transposeF64(t.U, n, t.k), k: t.k };
  }
  const tol = opts.tol ?? 1e-15;
  const maxSweeps = opts.maxSweeps ?? 60;
  // Work on columns: G = A (m×n), V = I (n×n); rotate column pairs until orthogonal.
  const G = Float64Array.from(A);
  const V = new Float64Array(n * n);
  for (let i = 0; i < n; i++) V[i * n + i] = 1;
  for (let sweep = 0; sweep < maxSweeps; sweep++) {
    let rotated = false;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        let alpha = 0, beta = 0, gamma = 0;
        for (let i = 0; i < m; i++) {
          const gp = G[i * n + p], gq = G[i * n + q];
          alpha += gp * gp;
          beta += gq * gq;
          gamma += gp * gq;
        }
        if (gamma === 0 || Math.abs(gamma) <= tol * Math.sqrt(alpha * beta)) continue;
        rotated = true;
        const zeta = (beta - alpha) / (2 * gamma);
        const t = Math.sign(zeta || 1) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
        const c = 1 / Math.sqrt(1 + t * t), s = c * t;
        for (let i = 0; i < m; i++) {
          const gp = G[i * n + p], gq = G[i * n + q];
          G[i * n + p] = c * gp - s * gq;
          G[i * n + q] = s * gp + c * gq;
        }
        for (let i = 0; i < n; i++) {
          const vp = V[i * n + p], vq = V[i * n + q];
          V[i * n + p] = c * vp - s * vq;
          V[i * n + q] = s * vp + c * vq;
        }
      }
    }
    if (!rotated) break;
  }
  const norms = new Float64Array(n);
  for (let j = 0; j < n; j++) {
    let s = 0;
    for (let i = 0; i < m; i++) s += G[i * n + j] ** 2;
    norms[j] = Math.sqrt(s);
  }
  const order = [...Array(n).keys()].sort((a, b) => norms[b] - norms[a]);
  const k = n;
  const U = new Float64Array(m * k), S = new Float64Array(k), Vt = new Float64Array(k * n);
  order.forEach((src, dst) => {
    const sv = norms[src];
    S[dst] = sv;
    let big = 0, bigAbs = -1;
    for (let i = 0; i < m; i++) {
      const u = sv > 0 ? G[i * n + src] / sv : 0;
      U[i * k + dst] = u;
      if (Math.abs(u) > bigAbs + 1e-12) { bigAbs = Math.abs(u); big = u; }
    }
    const sign = big < 0 ? -1 : 1;
    if (sign < 0) for (let i = 0; i < m; i++) U[i * k + dst] = -U[i * k + dst];
    for (let j = 0; j < n; j++) Vt[dst * n + j] = sign * V[j * n + src];
  });
  return { U, S, Vt, k };
}

/** Orthonormalize the columns of Q [m, k] in place (modified Gram-Schmidt, twice for stability). */
function orthonormalize(Q: Float64Array, m: number, k: number): void {
  for (let pass = 0; pass < 2; pass++) {
    for (let j = 0; j < k; j++) {
      for (let i = 0; i < j; i++) {
        let d = 0;
        for (let t = 0; t < m; t++) d += Q[t * k + i] * Q[t * k + j];
        for (let t = 0; t < m; t++) Q[t * k + j] -= d * Q[t * k + i];
      }
      let nrm = 0;
      for (let t = 0; t < m; t++) nrm += Q[t * k + j] ** 2;
      nrm = Math.sqrt(nrm);
      const inv = nrm > 1e-300 ? 1 / nrm : 0;
      for (let t = 0; t < m; t++) Q[t * k + j] *= inv;
    }
  }
}

/**
 * Top-r SVD of A [m, n]. Small matrices (min(m,n) ≤ `exactBelow`) use the full
 * Jacobi SVD; larger ones a randomized range finder (r + oversample columns,
 * `powerIters` power iterations, `rand` in [0,1) seeds the start) followed by
 * the Jacobi SVD of the projected (r+p) × n matrix.
 */
export function svdTopR(
  A: Float64Array | Float32Array,
  m: number,
  n: number,
  r: number,
  opts: { rand?: () => number; oversample?: number; powerIters?: number; exactBelow?: number } = {},
): Svd {
  const minDim = Math.min(m, n);
  if (r > minDim) throw new Error(`svdTopR: rank ${r} exceeds min(${m}, ${n})`);
  const exactBelow = opts.exactBelow ?? 96;
  const cut = (s: Svd): Svd => {
    const U = new Float64Array(m * r), Vt = s.Vt.slice(0, r * n);
    for (let i = 0; i < m; i++) for (let j = 0; j < r; j++) U[i * r + j] = s.U[i * s.k + j];
    return { U, S: s.S.slice(0, r), Vt, k: r };
  };
  if (minDim <= exactBelow) return cut(svdJacobi(A, m, n));
  const A64 = A instanceof Float64Array ? A : Float64Array.from(A);
  const k = Math.min(minDim, r + (opts.oversample ?? 12));
  let state = 0x9e3779b9;
  const rand = opts.rand ?? (() => ((state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 4294967296));
  const At = transposeF64(A64, m, n);
  let Q: Float64Array = new Float64Array(n * k);
  for (let i = 0; i < Q.length; i++) Q[i] = rand() - 0.5;
  let Y: Float64Array = matmulF64(A64, Q, m, n, k); // [m,k]
  orthonormalize(Y, m, k);
  for (let it = 0; it < (opts.powerIters ?? 6); it++) {
    Q = matmulF64(At, Y, n, m, k); // [n,k]
    orthonormalize(Q, n, k);
    Y = matmulF64(A64, Q, m, n, k);
    orthonormalize(Y, m, k);
  }
  const Bsmall = matmulF64(transposeF64(Y, m, k), A64, k, m, n); // [k,n] = Yᵀ A
  const s = svdJacobi(Bsmall, k, n); // Bsmall = Us S Vt, Us [k,k]
  const U = matmulF64(Y, s.U, m, k, s.k); // [m,k]
  const res = { U, S: s.S, Vt: s.Vt, k: s.k };
  return cut(res);
}
