// GaLore (Zhao et al., ICML 2024; official galore_torch/adamw.py and
// galore_projector.py): Adam on a low-rank projection of each target matrix's
// gradient. For a target p [m, n] with gradient G:
//   at the parameter's steps 0, T, 2T, … the projector is refreshed from the
//   thin SVD of G: 'std' keeps the right singular vectors P = Vh[:r] [r, n]
//   when m ≥ n (R = G·Pᵀ, [m, r]) and the left ones P = U[:, :r] [m, r]
//   otherwise (R = Pᵀ·G, [r, n]);
//   m ← β1·m + (1−β1)R; v ← β2·v + (1−β2)R²   (moments never reset at a refresh)
//   N = m / (√v + ε);  step = lr·√(1−β2^t)/(1−β1^t)   (bias correction folded in, ε before it)
//   p −= step · scale · back(N)   (back(N) = N·P, or P·N)
//   then p −= lr·wd·p.
// Other parameters take the same Adam step without the projection. Defaults
// as the official optimizer: β (0.9, 0.999), ε 1e-6, wd 0. Arithmetic in
// float64, parameters and moments stored in float32.

import { svdJacobi, svdTopR } from '../linalg/svd.ts';
import { MatMulKernel } from '../runtime/matmul.ts';
import { Rng } from '../util/rng.ts';
import type { AdamWGroup } from './adamw.ts';
import { checkStateKind, typedBytes, type Optimizer } from './optimizer.ts';

export type GaloreProjType = 'std' | 'reverse_std' | 'left' | 'right';

export interface GaloreOptions {
  betas?: readonly [number, number];
  eps?: number;
  weightDecay?: number;
  /** Rank of the projection. */
  rank: number;
  /** Steps between projector refreshes (T). */
  updateProjGap: number;
  /** The factor on the projected-back update. */
  scale: number;
  projType?: GaloreProjType;
  /** The parameters that are projected, with their matrix shape [rows, cols] as stored. */
  targets: Map<string, [number, number]>;
  /** Per-parameter learning-rate multipliers / weight decay (first match wins), as AdamW's. */
  groups?: readonly AdamWGroup[];
  /**
   * The projector of a refresh: the top-`rank` left (U [m, r]) or right (Vh [r, n])
   * singular vectors of G [m, n]. Default: an exact SVD for small matrices, a
   * randomized range finder with its products on ONNX Runtime for large ones; tests inject one.
   */
  projector?: (G: Float32Array, m: number, n: number, rank: number, side: 'left' | 'right') => Float64Array | Promise<Float64Array>;
  /** onnxruntime threads for the projections. */
  threads?: number;
}

interface ParamState {
  step: number;
  expAvg: Float32Array;
  expAvgSq: Float32Array;
  /** Projected parameters: the projector and which side it multiplies. */
  ortho?: Float32Array;
  side?: 'left' | 'right';
}

/** U[:, :r] (side 'left', [m, r]) or Vh[:r] (side 'right', [r, n]) of G's thin SVD (float64, in JavaScript). */
export function svdProjector(G: Float32Array, m: number, n: number, rank: number, side: 'left' | 'right'): Float64Array {
  const r = Math.min(rank, m, n);
  const { U, Vt } = svdTopR(G, m, n, r);
  return side === 'left' ? U : Vt;
}

/** Orthonormal columns of Y [rows, k] in place (modified Gram–Schmidt, float64), returned as float32. */
function orthonormalColumns(Y: Float32Array, rows: number, k: number): Float32Array {
  const Q = Float64Array.from(Y);
  for (let j = 0; j < k; j++) {
    for (let t = 0; t < j; t++) {
      let d = 0;
      for (let i = 0; i < rows; i++) d += Q[i * k + j] * Q[i * k + t];
      for (let i = 0; i < rows; i++) Q[i * k + j] -= d * Q[i * k + t];
    }
    let nrm = 0;
    for (let i = 0; i < rows; i++) nrm += Q[i * k + j] ** 2;
    nrm = Math.sqrt(nrm) || 1;
    for (let i = 0; i < rows; i++) Q[i * k + j] /= nrm;
  }
  return Float32Array.from(Q);
}

/**
 * The top-r left singular vectors U [m, r] of A [m, n] by a randomized range
 * finder (Halko et al.: r + 10 directions, two power iterations) whose large
 * products run on ONNX Runtime; the small [k, k] problem is solved exactly.
 */
export async function randomizedLeftVectors(kernel: MatMulKernel, A: Float32Array, m: number, n: number, r: number, rng: Rng): Promise<Float64Array> {
  const k = Math.min(m, n, r + 10);
  const omega = new Float32Array(n * k);
  for (let i = 0; i < omega.length; i++) omega[i] = rng.uniform() - 0.5;
  let Y = orthonormalColumns(await kernel.run(A, [m, n], omega, [n, k]), m, k);
  for (let q = 0; q < 2; q++) {
    const Z = orthonormalColumns(await kernel.run(A, [m, n], Y, [m, k], { transA: true }), n, k);
    Y = orthonormalColumns(await kernel.run(A, [m, n], Z, [n, k]), m, k);
  }
  const B = await kernel.run(Y, [m, k], A, [m, n], { transA: true }); // [k, n] = Yᵀ·A
  const M = new Float64Array(k * k); // B·Bᵀ = Us·diag(σ²)·Usᵀ
  for (let i = 0; i < k; i++) for (let j = i; j < k; j++) {
    let d = 0;
    for (let t = 0; t < n; t++) d += B[i * n + t] * B[j * n + t];
    M[i * k + j] = M[j * k + i] = d;
  }
  const Us = svdJacobi(M, k, k).U; // [k, k], eigenvalues descending
  const U = new Float64Array(m * r);
  for (let i = 0; i < m; i++) for (let c = 0; c < r; c++) {
    let d = 0;
    for (let t = 0; t < k; t++) d += Y[i * k + t] * Us[t * k + c];
    U[i * r + c] = d;
  }
  return U;
}

export class Galore implements Optimizer {
  private st = new Map<string, ParamState>();
  private steps = 0;
  private readonly kernel: MatMulKernel;

  constructor(readonly params: Map<string, Float32Array>, readonly o: GaloreOptions) {
    this.kernel = new MatMulKernel(o.threads);
    if (!(Number.isInteger(o.rank) && o.rank >= 1)) throw new RangeError(`GaLore: rank must be an integer >= 1, got ${o.rank}`);
    if (!(Number.isInteger(o.updateProjGap) && o.updateProjGap >= 1)) throw new RangeError(`GaLore: the projector update gap must be an integer >= 1, got ${o.updateProjGap}`);
    for (const [name, [m, n]] of o.targets) {
      const p = params.get(name);
      if (!p) throw new Error(`GaLore: target '${name}' is not a trainable parameter`);
      if (p.length !== m * n) throw new Error(`GaLore: target '${name}' has ${p.length} values, not ${m}×${n}`);
    }
  }

  private hyper(name: string): { lrScale: number; weightDecay: number } {
    const g = this.o.groups?.find((gr) => (typeof gr.match === 'function' ? gr.match(name) : gr.match instanceof RegExp ? gr.match.test(name) : gr.match.includes(name)));
    return { lrScale: g?.lrScale ?? 1, weightDecay: g?.weightDecay ?? this.o.weightDecay ?? 0 };
  }

  /** Which side a target's projector multiplies (galore_projector.py's proj_type rule). */
  private sideOf(m: number, n: number): 'left' | 'right' {
    const t = this.o.projType ?? 'std';
    if (t === 'left' || t === 'right') return t;
    const tall = m >= n;
    return (t === 'std') === tall ? 'right' : 'left';
  }

  /** The projector of a refresh (see GaloreOptions.projector); seeded by the parameter and step, so a resumed run draws the same. */
  private async project(name: string, G: Float32Array, m: number, n: number, r: number, side: 'left' | 'right', step: number): Promise<Float64Array> {
    if (this.o.projector) return this.o.projector(G, m, n, r, side);
    if (Math.min(m, n) <= 96) return svdProjector(G, m, n, r, side);
    const rng = new Rng(`galore|${name}|${step}`);
    if (side === 'left') return randomizedLeftVectors(this.kernel, G, m, n, r, rng);
    const Gt = new Float32Array(n * m);
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) Gt[j * m + i] = G[i * n + j];
    const V = await randomizedLeftVectors(this.kernel, Gt, n, m, r, rng); // [n, r]
    const Vt = new Float64Array(r * n);
    for (let j = 0; j < n; j++) for (let c = 0; c < r; c++) Vt[c * n + j] = V[j * r + c];
    return Vt;
  }

  async step(grads: Map<string, Float32Array>, lr: number): Promise<void> {
    const [b1, b2] = this.o.betas ?? [0.9, 0.999];
    const eps = this.o.eps ?? 1e-6;
    this.steps++;
    for (const [name, p] of this.params) {
      const G = grads.get(name);
      if (!G) continue;
      if (G.length !== p.length) throw new Error(`GaLore.step: gradient "${name}" has ${G.length} elements, parameter has ${p.length}`);
      const h = this.hyper(name);
      const shape = this.o.targets.get(name);
      let s = this.st.get(name);
      if (!shape) {
        // Not projected: the same Adam step, element by element (no float64 copies of large tensors such as embeddings).
        if (!s) this.st.set(name, (s = { step: 0, expAvg: new Float32Array(p.length), expAvgSq: new Float32Array(p.length) }));
        const t = ++s.step;
        const stepSize = lr * h.lrScale * Math.sqrt(1 - b2 ** t) / (1 - b1 ** t);
        const m1 = s.expAvg, v1 = s.expAvgSq, decay = lr * h.lrScale * h.weightDecay;
        for (let i = 0; i < p.length; i++) {
          const mi = b1 * m1[i] + (1 - b1) * G[i];
          const vi = b2 * v1[i] + (1 - b2) * G[i] * G[i];
          m1[i] = mi;
          v1[i] = vi;
          const pi = p[i] - stepSize * (mi / (Math.sqrt(vi) + eps));
          p[i] = pi - decay * pi;
        }
        continue;
      }
      let R: Float64Array;
      {
        const [m, n] = shape;
        const side = this.sideOf(m, n);
        const r = Math.min(this.o.rank, m, n);
        // The refresh happens before the step count advances: at the parameter's steps 0, T, 2T, …
        const stepBefore = s?.step ?? 0;
        if (!s?.ortho || stepBefore % this.o.updateProjGap === 0) {
          const P = await this.project(name, G, m, n, r, side, stepBefore);
          if (P.length !== (side === 'left' ? m * r : r * n)) throw new Error(`GaLore: projector of '${name}' has ${P.length} values, expected ${side === 'left' ? `${m}×${r}` : `${r}×${n}`}`);
          if (!s) this.st.set(name, (s = { step: 0, expAvg: new Float32Array(side === 'left' ? r * n : m * r), expAvgSq: new Float32Array(side === 'left' ? r * n : m * r) }));
          s.ortho = Float32Array.from(P);
          s.side = side;
        }
        // R = Pᵀ·G [r, n] or G·Pᵀ [m, r], on ONNX Runtime.
        R = Float64Array.from(side === 'left'
          ? await this.kernel.run(s.ortho!, [m, r], G, [m, n], { transA: true })
          : await this.kernel.run(G, [m, n], s.ortho!, [r, n], { transB: true }));
      }
      s!.step++;
      const t = s!.step;
      const m1 = s!.expAvg, v1 = s!.expAvgSq;
      const N = new Float64Array(R.length);
      for (let i = 0; i < R.length; i++) {
        const mi = b1 * m1[i] + (1 - b1) * R[i];
        const vi = b2 * v1[i] + (1 - b2) * R[i] * R[i];
        m1[i] = mi;
        v1[i] = vi;
        N[i] = mi / (Math.sqrt(vi) + eps);
      }
      const stepSize = lr * h.lrScale * Math.sqrt(1 - b2 ** t) / (1 - b1 ** t);
      const [m, n] = shape;
      const r = Math.min(this.o.rank, m, n);
      const N32 = Float32Array.from(N);
      const U = s!.side === 'left' ? await this.kernel.run(s!.ortho!, [m, r], N32, [r, n]) : await this.kernel.run(N32, [m, r], s!.ortho!, [r, n]);
      for (let i = 0; i < p.length; i++) p[i] -= stepSize * this.o.scale * U[i];
      if (h.weightDecay > 0) {
        const f = lr * h.lrScale * h.weightDecay;
        for (let i = 0; i < p.length; i++) p[i] -= f * p[i];
      }
    }
  }

  stateDict() {
    const state = new Map<string, Record<string, unknown>>();
    for (const [k, s] of this.st) {
      state.set(k, { step: s.step, expAvg: s.expAvg.slice(), expAvgSq: s.expAvgSq.slice(), ...(s.ortho ? { ortho: s.ortho.slice(), side: s.side } : {}) });
    }
    return { kind: 'galore', step: this.steps, state };
  }

  loadStateDict(sd: { kind: string; step: number; state: Map<string, ParamState> }): void {
    checkStateKind('GaLore', sd, 'galore');
    const next = new Map<string, ParamState>();
    for (const [k, s] of sd.state) {
      if (!this.params.has(k)) throw new Error(`GaLore.loadStateDict: state for unknown parameter '${k}'`);
      next.set(k, { step: s.step, expAvg: s.expAvg.slice(), expAvgSq: s.expAvgSq.slice(), ortho: s.ortho?.slice(), side: s.side });
    }
    this.st = next;
    this.steps = sd.step;
  }

  stateBytes(): number {
    return typedBytes([...this.st.values()].map((s) => [s.expAvg, s.expAvgSq, s.ortho]));
  }

  async release(): Promise<void> {
    await this.kernel.release();
  }
}
