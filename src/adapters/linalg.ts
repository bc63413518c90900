// Small dense linear algebra for adapter inits (float64, row-major): thin QR by
// modified Gram-Schmidt and a truncated SVD by subspace iteration. Sizes are
// those of one projection (≤ a few thousand squared), ranks are small.

/** y = a [m,k] · b [k,n] */
export function matmul64(a: Float64Array, b: Float64Array, m: number, k: number, n: number): Float64Array {
  const y = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let p = 0; p < k; p++) {
    const v = a[i * k + p];
    if (v === 0) continue;
    for (let j = 0; j < n; j++) y[i * n + j] += v * b[p * n + j];
  }
  return y;
}

export function transpose64(a: Float64Array, m: number, n: number): Float64Array {
  const t = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) t[j * m + i] = a[i * n + j];
  return t;
}

/** Orthonormalize the k columns of a [m,k] in place (modified Gram-Schmidt); returns R [k,k]. */
export function qrColumns(a: Float64Array, m: number, k: number): Float64Array {
  const R = new Float64Array(k * k);
  for (let j = 0; j < k; j++) {
    for (let i = 0; i < j; i++) {
      let d = 0;
      for (let t = 0; t < m; t++) d += a[t * k + i] * a[t * k + j];
      R[i * k + j] = d;
      for (let t = 0; t < m; t++) a[t * k + j] -= d * a[t * k + i];
    }
    let nrm = 0;
    for (let t = 0; t < m; t++) nrm += a[t * k + j] ** 2;
    nrm = Math.sqrt(nrm);
    R[j * k + j] = nrm;
    const inv = nrm > 0 ? 1 / nrm : 0;
    for (let t = 0; t < m; t++) a[t * k + j] *= inv;
  }
  return R;
}

/** Eigen-decomposition of a symmetric k×k matrix by cyclic Jacobi: values descending, vectors as columns. */
export function symEig(s: Float64Array, k: number): { values: Float64Array; vectors: Float64Array } {
  const a = Float64Array.from(s);
  const v = new Float64Array(k * k);
  for (let i = 0; i < k; i++) v[i * k + i] = 1;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < k; p++) for (let q = p + 1; q < k; q++) off += a[p * k + q] ** 2;
    if (off < 1e-30) break;
    for (let p = 0; p < k; p++) for (let q = p + 1; q < k; q++) {
      const apq = a[p * k + q];
      if (Math.abs(apq) < 1e-300) continue;
      const theta = (a[q * k + q] - a[p * k + p]) / (2 * apq);
      const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
      const c = 1 / Math.sqrt(t * t + 1), sn = t * c;
      for (let r = 0; r < k; r++) {
        const arp = a[r * k + p], arq = a[r * k + q];
        a[r * k + p] = c * arp - sn * arq;
        a[r * k + q] = sn * arp + c * arq;
      }
      for (let r = 0; r < k; r++) {
        const apr = a[p * k + r], aqr = a[q * k + r];
        a[p * k + r] = c * apr - sn * aqr;
        a[q * k + r] = sn * apr + c * aqr;
      }
      for (let r = 0; r < k; r++) {
        const vrp = v[r * k + p], vrq = v[r * k + q];
        v[r * k + p] = c * vrp - sn * vrq;
        v[r * k + q] = sn * vrp + c * vrq;
      }
    }
  }
  const order = [...Array(k).keys()].sort((x, y) => a[y * k + y] - a[x * k + x]);
  const values = Float64Array.from(order, (i) => a[i * k + i]);
  const vectors = new Float64Array(k * k);
  order.forEach((src, dst) => { for (let r = 0; r < k; r++) vectors[r * k + dst] = v[r * k + src]; });
  return { values, vectors };
}

/**
 * Top-r singular triplets of W [m,n]: U [m,r], S [r], Vt [r,n]. Subspace
 * iteration with `niter` power steps and a few oversampled columns, then
 * Rayleigh-Ritz; deterministic given `rand`.
 */
export function truncatedSvd(W: Float64Array, m: number, n: number, r: number, niter: number, rand: () => number): { U: Float64Array; S: Float64Array; Vt: Float64Array } {
  const k = Math.min(r + 8, m, n);
  const Wt = transpose64(W, m, n);
  let Q: Float64Array = new Float64Array(n * k);
  for (let i = 0; i < Q.length; i++) Q[i] = rand() - 0.5;
  qrColumns(Q, n, k);
  for (let it = 0; it < niter; it++) {
    const Y = matmul64(W, Q, m, n, k); // [m,k]
    qrColumns(Y, m, k);
    Q = matmul64(Wt, Y, n, m, k); // [n,k]
    qrColumns(Q, n, k);
  }
  const Y = matmul64(W, Q, m, n, k);
  qrColumns(Y, m, k); // Y: orthonormal basis of the range
  const Bs = matmul64(transpose64(Y, m, k), W, k, m, n); // [k,n]
  const G = matmul64(Bs, transpose64(Bs, k, n), k, n, k); // [k,k]
  const { values, vectors } = symEig(G, k);
  const rr = Math.min(r, k);
  const S = new Float64Array(rr);
  const Uk = matmul64(Y, vectors, m, k, k); // [m,k]
  const U = new Float64Array(m * rr);
  const Vt = new Float64Array(rr * n);
  for (let j = 0; j < rr; j++) {
    S[j] = Math.sqrt(Math.max(values[j], 0));
    for (let i = 0; i < m; i++) U[i * rr + j] = Uk[i * k + j];
    // v_j = Bsᵀ u_small_j / s_j
    for (let c = 0; c < n; c++) {
      let d = 0;
      for (let t = 0; t < k; t++) d += Bs[t * n + c] * vectors[t * k + j];
      Vt[j * n + c] = S[j] > 0 ? d / S[j] : 0;
    }
  }
  return { U, S, Vt };
}
