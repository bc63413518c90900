// Thin QR of a column block (float64, row-major) by modified Gram-Schmidt, for OLoRA's init.

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
