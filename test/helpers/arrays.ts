// Shared numeric comparison for tests.
import assert from 'node:assert/strict';

/** max |a[i] − b[i]|; the arrays must have the same length (a shorter one would hide missing outputs). */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, `maxAbsDiff: lengths differ (${a.length} vs ${b.length})`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** max |got − want| / max |want| (same lengths); an all-zero reference fails, as it would prove nothing. */
export function maxRelErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  assert.equal(got.length, want.length, `maxRelErr: lengths differ (${got.length} vs ${want.length})`);
  let num = 0, den = 0;
  for (let i = 0; i < want.length; i++) {
    num = Math.max(num, Math.abs(got[i] - want[i]));
    den = Math.max(den, Math.abs(want[i]));
  }
  assert.ok(den > 0, 'an all-zero reference proves nothing');
  return num / den;
}

/**
 * Asserts max |got − ref| / max |ref| < tol over ref's entries: a gradient
 * compared at the scale of its largest entry. A zero reference fails, as it would prove nothing.
 */
export function assertGradClose(got: ArrayLike<number>, ref: ArrayLike<number>, tol: number, name: string): void {
  let num = 0, den = 0;
  for (let i = 0; i < ref.length; i++) {
    num = Math.max(num, Math.abs(got[i] - ref[i]));
    den = Math.max(den, Math.abs(ref[i]));
  }
  assert.ok(den > 0, `${name}: reference gradient is zero`);
  assert.ok(num / den < tol, `${name}: max |Δ| / max |ref| = ${num / den}`);
}

/**
 * maxAbsDiff over the rows whose `mask` entry is non-zero, the arrays read as
 * [mask.length, a.length / mask.length]: e.g. logits at the real tokens of a padded batch.
 */
export function maskedMaxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>, mask: ArrayLike<number>): number {
  assert.equal(a.length, b.length, `maskedMaxAbsDiff: lengths differ (${a.length} vs ${b.length})`);
  const per = a.length / mask.length;
  let m = 0;
  for (let i = 0; i < a.length; i++) if (mask[Math.floor(i / per)]) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/**
 * The chain rule through a LoRA y = W·x + s·B·A·x: at any B, ∂L/∂B = s·(∂L/∂W)·Aᵀ,
 * with G = ∂L/∂W [out, in] and A [r, in]. Checks a LoRA's B gradient `gB` [out, r]
 * against frozen-weight gradients G (1e-4 relative to the largest entry).
 */
export function assertLoraChainRule(G: ArrayLike<number>, A: ArrayLike<number>, gB: ArrayLike<number>, dims: { out: number; in: number; r: number; s: number }): void {
  const { out: m, in: n, r, s } = dims;
  const expect = new Float64Array(m * r);
  for (let i = 0; i < m; i++) for (let k = 0; k < r; k++) {
    let acc = 0;
    for (let j = 0; j < n; j++) acc += G[i * n + j] * A[k * n + j];
    expect[i * r + k] = s * acc;
  }
  assertGradClose(gB, expect, 1e-4, '∂L/∂B vs s·G·Aᵀ');
}

/** A row-major [rows, cols] matrix transposed to [cols, rows]. */
export function transpose2d(a: ArrayLike<number>, rows: number, cols: number): Float32Array {
  const t = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) t[j * rows + i] = a[i * cols + j];
  return t;
}
