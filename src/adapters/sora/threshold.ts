// The gate threshold SoRA applies after each sparse AdamW step (official
// src/sparse_optimizer.py, SparseAdamW.step) and CoDyRA reuses after its
// AdamW step (Artificer-AI-Lab/CoDyRA models/codyra.py, train_model):
//   p[p > ξ] −= ξ;  p[p < −ξ] += ξ;  p[|p| < ξ] = 0      (three masked ops in this order)
// which is not a pure soft threshold: a gate in (ξ, 2ξ) is shrunk into (0, ξ)
// by the first op and then zeroed by the third, so
//   |p| < 2ξ (but ≠ ξ) → 0;   |p| ≥ 2ξ → sign(p)(|p| − ξ);   |p| = ξ → unchanged.
// 'soft' is the paper's proximal operator sign(p)·max(|p| − ξ, 0).

export type ThresholdKind = 'official' | 'soft';

/** Applies the threshold ξ to `p` in place (no-op for ξ ≤ 0, as the official `if self.sparse_lambda > 0`). */
export function thresholdGates(p: Float32Array | Float64Array, xi: number, kind: ThresholdKind = 'official'): void {
  if (!(xi > 0)) return;
  if (kind === 'soft') {
    for (let i = 0; i < p.length; i++) {
      p[i] = Math.sign(p[i]) * Math.max(Math.abs(p[i]) - xi, 0);
    }
    return;
  }
  // Element-wise the three masked ops commute across elements, so one pass per element in the same order.
  const T = p instanceof Float32Array ? Math.fround : (x: number) => x;
  for (let i = 0; i < p.length; i++) {
    let v = p[i];
    if (v > xi) v = T(v - xi);
    if (v < -xi) v = T(v + xi);
    if (Math.abs(v) < xi) v = 0;
    p[i] = v;
  }
}

/** Non-zero entries of a gate vector (the module's active rank). */
export function activeRank(g: ArrayLike<number>): number {
  let n = 0;
  for (let i = 0; i < g.length; i++) if (g[i] !== 0) n++;
  return n;
}
