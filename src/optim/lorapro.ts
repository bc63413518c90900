// LoRA-Pro (Wang et al., ICLR 2025; official DeepSpeed stage_1_and_2.py
// `lorapro_full_adjustment`, `solve_sylvester`): LoRA updates chosen so that
// s·(B·ΔA + ΔB·A) follows the step full fine-tuning's AdamW would take. Per
// adapted layer, with g_A = ∂L/∂A [r, n], g_B = ∂L/∂B [m, r], scale s and
// inverses pinv(M + 1e-8·I):
//   1. ĝ_A = (1/s²)(BᵀB)⁻¹g_A,  ĝ_B = (1/s²)(I − P_B)g_B(AAᵀ)⁻¹   (P_B = B(BᵀB)⁻¹Bᵀ);
//      at the optimizer's first step (B = 0): ĝ_A = g_A, ĝ_B = (1/s²)g_B(AAᵀ)⁻¹.
//   2. the equivalent full gradient g̃ = s·B·ĝ_A + s·ĝ_B·A [m, n];
//   3. AdamW moments of g̃ at full size: m ← β1m + (1−β1)g̃, v ← β2v + (1−β2)g̃²,
//      g = (m/(1−β1^t)) / (√v/√(1−β2^t) + 1e-8);
//   4. g_A' = s·Bᵀg, g_B' = s·g·Aᵀ;
//   5. X solves BᵀB·X + X·AAᵀ = −(1/s²)(BᵀB)⁻¹g_A'Aᵀ (by eigendecomposition), and
//      grad_A = (1/s²)(BᵀB)⁻¹g_A' + X·A,  grad_B = (1/s²)(I − P_B)g_B'(AAᵀ)⁻¹ − B·X;
//      at the first step grad_A = g_A', grad_B = (1/s²)g_B'(AAᵀ)⁻¹;
//   6. the outer step is SGD without weight decay: A −= lr·grad_A, B −= lr·grad_B.
// Clipping as the official DeepSpeed step has it: the global norm is taken on
// the raw gradients before the adjustment, the moments take the unclipped g̃,
// and the factor min(1, max_norm/(‖g‖ + 1e-6)) scales the grad_A, grad_B the
// adjustment returns (`unscale_and_clip_grads` runs after
// `lorapro_full_adjustment`), so it shrinks the step itself instead of being
// undone by Adam's normalization; the loop passes the unclipped gradients and
// the factor (`appliesClip`). Differences from the
// official code: s is each layer's own scale (it hard-codes 16/8), v is
// accumulated in float64 (it uses bf16 for that product). Other trainable
// tensors (a task head) step with the wrapped optimizer.

import { svdJacobi } from '../linalg/svd.ts';
import { checkStateKind, typedBytes, type Optimizer, type StepOptions } from './optimizer.ts';

/** One LoRA layer: its A [r, n] and B [m, r] tensors by name, and ΔW = s·B·A. */
export interface LoraPair {
  A: string;
  B: string;
  m: number;
  n: number;
  r: number;
  s: number;
}

export interface LoraProOptions {
  pairs: LoraPair[];
  betas?: readonly [number, number];
  eps?: number;
  /**
   * 'adam' (default, the official code): the full-size AdamW moments of step 3.
   * 'none': the paper's SGD form, g = g̃ (no moments): the update then follows
   * full fine-tuning's SGD step.
   */
  moments?: 'adam' | 'none';
  /**
   * The δ of the inverses pinv(M + δ·I): 1e-8 as the official code (default). It
   * biases the projection while BᵀB is not ≫ δ (B small: SGD at a small lr);
   * bench/lorapro_claim.ts --lorapro-shift measures that.
   */
  shift?: number;
}

interface Moments { t: number; m: Float32Array; v: Float32Array }

// ---- small dense float64 helpers (row-major) ----
const mm = (A: ArrayLike<number>, B: ArrayLike<number>, m: number, k: number, n: number) => {
  const C = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let t = 0; t < k; t++) {
    const a = A[i * k + t];
    if (a !== 0) for (let j = 0; j < n; j++) C[i * n + j] += a * B[t * n + j];
  }
  return C;
};
const tr = (A: ArrayLike<number>, m: number, n: number) => {
  const T = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) T[j * m + i] = A[i * n + j];
  return T;
};
const scaled = (A: Float64Array, f: number) => A.map((x) => x * f);

/** Eigendecomposition of a symmetric positive semi-definite M [k, k]: M = Q·diag(λ)·Qᵀ. */
export function eighPsd(M: Float64Array, k: number): { Q: Float64Array; lambda: Float64Array } {
  const s = svdJacobi(M, k, k);
  return { Q: s.U, lambda: s.S };
}

/** float32's machine epsilon: the official code runs on float32 master weights, so torch.linalg.pinv's default cut is k·ε32·max. */
const FLOAT32_EPS = 1.1920928955078125e-7;

/**
 * torch.linalg.pinv(M + 1e-8·I) for a symmetric PSD M [k, k] as the official code
 * computes it on float32 tensors: eigenvalues below k·ε32·λmax are dropped. The
 * cut matters when B is nearly rank-deficient right after the B = 0 step: with
 * float64's ε the inverse of BᵀB would grow without bound and the update with it.
 */
export function pinvRegularized(M: Float64Array, k: number, shift = 1e-8): Float64Array {
  const R = Float64Array.from(M);
  for (let i = 0; i < k; i++) R[i * k + i] += shift;
  const { Q, lambda } = eighPsd(R, k);
  const cut = k * FLOAT32_EPS * Math.max(...lambda);
  const inv = new Float64Array(k * k);
  for (let t = 0; t < k; t++) {
    if (!(lambda[t] > cut)) continue;
    for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) inv[i * k + j] += (Q[i * k + t] * Q[j * k + t]) / lambda[t];
  }
  return inv;
}

/** X [r, r] with S1·X + X·S2 = C for symmetric PSD S1, S2 (by their eigendecompositions). */
export function solveSylvester(S1: Float64Array, S2: Float64Array, C: Float64Array, r: number): Float64Array {
  const e1 = eighPsd(S1, r), e2 = eighPsd(S2, r);
  const Ct = mm(mm(tr(e1.Q, r, r), C, r, r, r), e2.Q, r, r, r); // Q1ᵀ·C·Q2
  for (let i = 0; i < r; i++) for (let j = 0; j < r; j++) Ct[i * r + j] /= e1.lambda[i] + e2.lambda[j];
  return mm(mm(e1.Q, Ct, r, r, r), tr(e2.Q, r, r), r, r, r);
}

/** The first-pass adjusted gradients and what they share (the inverses, P_B). */
function adjust(A: ArrayLike<number>, B: ArrayLike<number>, gA: ArrayLike<number>, gB: ArrayLike<number>, p: LoraPair, first: boolean, shift?: number) {
  const { m, n, r, s } = p;
  const AAt = mm(A, tr(A, r, n), r, n, r);
  const AAtInv = pinvRegularized(AAt, r, shift);
  const s2 = 1 / (s * s);
  if (first) return { gAh: Float64Array.from(gA), gBh: scaled(mm(gB, AAtInv, m, r, r), s2), AAt, AAtInv };
  const BtB = mm(tr(B, m, r), B, r, m, r);
  const BtBInv = pinvRegularized(BtB, r, shift);
  const PB = mm(mm(B, BtBInv, m, r, r), tr(B, m, r), m, r, m); // [m, m]
  const gAh = scaled(mm(BtBInv, gA, r, r, n), s2);
  const IminusPB = PB.map((x, i) => (Math.floor(i / m) === i % m ? 1 : 0) - x);
  const gBh = scaled(mm(mm(IminusPB, gB, m, m, r), AAtInv, m, r, r), s2);
  return { gAh, gBh, AAt, AAtInv, BtB, BtBInv, IminusPB };
}

/** Equivalent full gradient g̃ = s·B·ĝ_A + s·ĝ_B·A [m, n]. */
export function equivalentGradient(A: ArrayLike<number>, B: ArrayLike<number>, gAh: ArrayLike<number>, gBh: ArrayLike<number>, p: LoraPair): Float64Array {
  const { m, n, r, s } = p;
  const a = mm(B, gAh, m, r, n), b = mm(gBh, A, m, r, n);
  return a.map((x, i) => s * (x + b[i]));
}

/**
 * Steps 1–2 alone for one layer: the adjusted ĝ_A, ĝ_B and the equivalent full
 * gradient g̃ they make (= P_B·G + (I − P_B)·G·P_A when g_A, g_B came from G);
 * `first` takes the B = 0 branch. No state: what a step would form before its moments.
 */
export function loraproEquivalent(A: ArrayLike<number>, B: ArrayLike<number>, gA: ArrayLike<number>, gB: ArrayLike<number>, p: LoraPair, first: boolean, shift?: number): { gAh: Float64Array; gBh: Float64Array; equivalent: Float64Array } {
  const { gAh, gBh } = adjust(A, B, gA, gB, p, first, shift);
  return { gAh, gBh, equivalent: equivalentGradient(A, B, gAh, gBh, p) };
}

export class LoraPro implements Optimizer {
  private moments = new Map<string, Moments>();
  private steps = 0;
  private readonly paired = new Set<string>();

  constructor(readonly params: Map<string, Float32Array>, readonly rest: Optimizer, readonly o: LoraProOptions) {
    if (!o.pairs.length) throw new Error('LoRA-Pro: no LoRA layers to adjust (it needs --method lora)');
    for (const p of o.pairs) {
      for (const [k, len] of [[p.A, p.r * p.n], [p.B, p.m * p.r]] as const) {
        const t = params.get(k);
        if (!t) throw new Error(`LoRA-Pro: '${k}' is not a trainable parameter`);
        if (t.length !== len) throw new Error(`LoRA-Pro: '${k}' has ${t.length} values, expected ${len}`);
        this.paired.add(k);
      }
    }
  }

  /** The grad_A, grad_B this step applies for one layer (moments updated). Exposed for the reference test. */
  adjusted(p: LoraPair, gA: ArrayLike<number>, gB: ArrayLike<number>, first: boolean): { gradA: Float64Array; gradB: Float64Array; equivalent: Float64Array; adamDirection: Float64Array } {
    const [b1, b2] = this.o.betas ?? [0.9, 0.999];
    const eps = this.o.eps ?? 1e-8;
    const { m, n, r, s } = p;
    const A = this.params.get(p.A)!, B = this.params.get(p.B)!;
    const adj = adjust(A, B, gA, gB, p, first, this.o.shift);
    const eq = equivalentGradient(A, B, adj.gAh, adj.gBh, p);
    let g: Float64Array = eq;
    if ((this.o.moments ?? 'adam') === 'adam') {
      let st = this.moments.get(p.A);
      if (!st) this.moments.set(p.A, (st = { t: 0, m: new Float32Array(m * n), v: new Float32Array(m * n) }));
      st.t++;
      const bc1 = 1 - b1 ** st.t, bc2 = Math.sqrt(1 - b2 ** st.t);
      g = new Float64Array(m * n);
      for (let i = 0; i < g.length; i++) {
        const mi = b1 * st.m[i] + (1 - b1) * eq[i];
        const vi = b2 * st.v[i] + (1 - b2) * eq[i] * eq[i];
        st.m[i] = mi;
        st.v[i] = vi;
        g[i] = mi / bc1 / (Math.sqrt(vi) / bc2 + eps);
      }
    }
    const gA2 = scaled(mm(tr(B, m, r), g, r, m, n), s); // s·Bᵀg [r, n]
    const gB2 = scaled(mm(g, tr(A, r, n), m, n, r), s); // s·g·Aᵀ [m, r]
    const s2 = 1 / (s * s);
    if (first) return { gradA: gA2, gradB: scaled(mm(gB2, adj.AAtInv, m, r, r), s2), equivalent: eq, adamDirection: g };
    const C = scaled(mm(mm(adj.BtBInv!, gA2, r, r, n), tr(A, r, n), r, n, r), -s2);
    const X = solveSylvester(adj.BtB!, adj.AAt, C, r);
    const gradA = scaled(mm(adj.BtBInv!, gA2, r, r, n), s2);
    const XA = mm(X, A, r, r, n);
    for (let i = 0; i < gradA.length; i++) gradA[i] += XA[i];
    const gradB = scaled(mm(mm(adj.IminusPB!, gB2, m, m, r), adj.AAtInv, m, r, r), s2);
    const BX = mm(B, X, m, r, r);
    for (let i = 0; i < gradB.length; i++) gradB[i] -= BX[i];
    return { gradA, gradB, equivalent: eq, adamDirection: g };
  }

  readonly appliesClip = true;

  step(grads: Map<string, Float32Array>, lr: number, opts: StepOptions = {}): void | Promise<void> {
    const clip = opts.clipScale ?? 1;
    if (!(clip > 0 && clip <= 1)) throw new RangeError(`LoRA-Pro: the clipping factor must be in (0, 1], got ${clip}`);
    const first = this.steps === 0;
    const updates: [Float32Array, Float64Array][] = [];
    for (const p of this.o.pairs) {
      const gA = grads.get(p.A), gB = grads.get(p.B);
      if (!gA || !gB) continue;
      const { gradA, gradB } = this.adjusted(p, gA, gB, first);
      updates.push([this.params.get(p.A)!, gradA], [this.params.get(p.B)!, gradB]);
    }
    // Every layer's adjustment reads the pre-step A and B; then the outer SGD step on the clipped adjustment.
    const rate = lr * clip;
    for (const [t, g] of updates) for (let i = 0; i < t.length; i++) t[i] -= rate * g[i];
    this.steps++;
    // The other parameters (a task head) step with the wrapped rule on gradients clipped as usual.
    const others = new Map([...grads].filter(([k]) => !this.paired.has(k)).map(([k, g]) => [k, clip === 1 ? g : g.map((x) => x * clip)]));
    if (others.size) return this.rest.step(others, lr);
  }

  release(): Promise<void> {
    return this.rest.release?.() ?? Promise.resolve();
  }

  stateDict() {
    return { kind: 'lorapro', step: this.steps, moments: new Map([...this.moments].map(([k, s]) => [k, { t: s.t, m: s.m.slice(), v: s.v.slice() }])), rest: this.rest.stateDict() };
  }

  loadStateDict(sd: { kind: string; step: number; moments: Map<string, Moments>; rest: unknown }): void {
    checkStateKind('LoRA-Pro', sd, 'lorapro');
    for (const [k, s] of sd.moments) {
      const p = this.o.pairs.find((x) => x.A === k);
      if (!p || s.m.length !== p.m * p.n) throw new Error(`LoRA-Pro.loadStateDict: moments for '${k}' do not fit this run's LoRA layers`);
    }
    this.moments = new Map([...sd.moments].map(([k, s]) => [k, { t: s.t, m: s.m.slice(), v: s.v.slice() }]));
    this.steps = sd.step;
    this.rest.loadStateDict(sd.rest);
  }

  stateBytes(): number {
    return typedBytes([...this.moments.values()].map((s) => [s.m, s.v])) + this.rest.stateBytes();
  }
}
