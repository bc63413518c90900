/**
 * AdamW, matching `torch.optim.AdamW` (PyTorch 1.13, non-capturable path):
 *
 *   step += 1
 *   p   *= 1 - lr * wd                        (decoupled weight decay)
 *   m    = beta1 * m + (1 - beta1) * g
 *   v    = beta2 * v + (1 - beta2) * g * g
 *   vmax = max(vmax, v)                       (amsgrad only; then use vmax for v)
 *   denom = sqrt(v) / sqrt(1 - beta2^step) + eps
 *   p   -= lr / (1 - beta1^step) * m / denom
 *
 * `lr` above is the *effective* learning rate of the parameter: the step's
 * learning rate (base or from a schedule) times the parameter's group
 * `lrScale`. Weight decay uses the same effective lr, as torch does for a param
 * group with its own lr. Parameters are updated in place.
 *
 * As in torch, a parameter with no gradient in a step is skipped and its own
 * step count does not advance.
 *
 * Arithmetic: each element is computed with the same float32 roundings, in
 * the same order, as torch 1.13's CPU kernels (scalar path), so the committed
 * golden fixture (tools/reference/adamw_golden.py) is reproduced bit for bit.
 * torch itself is not bit-stable across builds and tensor sizes (its SIMD
 * path rounds addcmul differently from its scalar path), so callers should
 * expect agreement to ~1e-7 relative, not bit equality, in general.
 */

import type { Optimizer } from './optimizer.ts';

export interface AdamWGroup {
  /**
   * Which parameters this group covers: a predicate on the name, a RegExp
   * tested against the name, or an explicit list of names. The first group
   * that matches a parameter wins; unmatched parameters use the defaults.
   */
  match: ((name: string) => boolean) | RegExp | readonly string[];
  /** Weight decay for these parameters (default: the optimizer's). */
  weightDecay?: number;
  /** Multiplier on the learning rate for these parameters (default 1). LoRA+ sets it on B. */
  lrScale?: number;
}

export interface AdamWOptions {
  /** Base learning rate (default 1e-3, as torch). `step(grads, lr)` overrides it per step. */
  lr?: number;
  betas?: readonly [number, number];
  eps?: number;
  /** Decoupled weight decay (default 0.01, as torch). */
  weightDecay?: number;
  amsgrad?: boolean;
  /** Maximize the objective instead of minimizing it (torch's `maximize`). */
  maximize?: boolean;
  /** Per-parameter overrides; first match wins. */
  groups?: readonly AdamWGroup[];
}

export interface AdamWParamState {
  /** Number of updates this parameter has received. */
  step: number;
  expAvg: Float32Array;
  expAvgSq: Float32Array;
  /** Present only with amsgrad. */
  maxExpAvgSq?: Float32Array;
}

/** Plain data: Float32Arrays, numbers and strings only. */
export interface AdamWStateDict {
  kind: "adamw";
  /** Number of `step()` calls. */
  step: number;
  /** Per-parameter moments. Parameters that never had a gradient are absent. */
  state: Record<string, AdamWParamState>;
}

interface ResolvedHyper {
  weightDecay: number;
  lrScale: number;
}

function groupMatches(g: AdamWGroup, name: string): boolean {
  const m = g.match;
  if (typeof m === "function") return m(name);
  if (m instanceof RegExp) {
    m.lastIndex = 0;
    return m.test(name);
  }
  return m.includes(name);
}

export class AdamW implements Optimizer {
  readonly params: Map<string, Float32Array>;
  /** Base learning rate used when `step` is called without one. */
  lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  readonly amsgrad: boolean;
  readonly maximize: boolean;
  private readonly hyper = new Map<string, ResolvedHyper>();
  private readonly groups: readonly AdamWGroup[];
  private readonly st = new Map<string, AdamWParamState>();
  private stepCount = 0;

  constructor(params: Map<string, Float32Array>, opts: AdamWOptions = {}) {
    this.params = params;
    this.lr = opts.lr ?? 1e-3;
    [this.beta1, this.beta2] = opts.betas ?? [0.9, 0.999];
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0.01;
    this.amsgrad = opts.amsgrad ?? false;
    this.maximize = opts.maximize ?? false;
    checkHyper("lr", this.lr);
    checkHyper("eps", this.eps);
    checkHyper("weightDecay", this.weightDecay);
    if (!(this.beta1 >= 0 && this.beta1 < 1)) throw new RangeError(`AdamW: beta1 must be in [0, 1), got ${this.beta1}`);
    if (!(this.beta2 >= 0 && this.beta2 < 1)) throw new RangeError(`AdamW: beta2 must be in [0, 1), got ${this.beta2}`);
    this.groups = opts.groups ?? [];
    for (const name of params.keys()) this.resolve(name);
  }

  private resolve(name: string): ResolvedHyper {
    let h = this.hyper.get(name);
    if (!h) {
      const g = this.groups.find((gr) => groupMatches(gr, name));
      h = { weightDecay: g?.weightDecay ?? this.weightDecay, lrScale: g?.lrScale ?? 1 };
      checkHyper(`weightDecay of ${name}`, h.weightDecay);
      checkHyper(`lrScale of ${name}`, h.lrScale);
      this.hyper.set(name, h);
    }
    return h;
  }

  /** Number of completed `step()` calls. */
  get stepNumber(): number {
    return this.stepCount;
  }

  /** The weight decay and lr multiplier that apply to a parameter. */
  hyperFor(name: string): Readonly<ResolvedHyper> {
    if (!this.params.has(name)) throw new Error(`AdamW: unknown parameter "${name}"`);
    return this.resolve(name);
  }

  /**
   * One update. `grads` may omit parameters (they are skipped, as torch skips
   * params whose .grad is None); a gradient for an unknown name or of the
   * wrong length throws before anything is modified.
   */
  step(grads: Map<string, Float32Array>, lr: number = this.lr): void {
    checkHyper("lr", lr);
    for (const [name, g] of grads) {
      const p = this.params.get(name);
      if (!p) throw new Error(`AdamW.step: gradient for unknown parameter "${name}"`);
      if (g.length !== p.length) {
        throw new Error(`AdamW.step: gradient "${name}" has ${g.length} elements, parameter has ${p.length}`);
      }
    }
    this.stepCount++;
    const { beta1, beta2, eps } = this;
    for (const [name, p] of this.params) {
      const g = grads.get(name);
      if (!g) continue;
      const h = this.resolve(name);
      let s = this.st.get(name);
      if (!s) {
        s = {
          step: 0,
          expAvg: new Float32Array(p.length),
          expAvgSq: new Float32Array(p.length),
        };
        if (this.amsgrad) s.maxExpAvgSq = new Float32Array(p.length);
        this.st.set(name, s);
      }
      s.step++;
      const plr = lr * h.lrScale;
      // Python-float scalars become float32 when they meet a float32 tensor
      const decay = fround(1 - plr * h.weightDecay);
      const bc1 = 1 - beta1 ** s.step;
      const bc2Sqrt = fround(Math.sqrt(1 - beta2 ** s.step));
      const negStepSize = fround(-plr / bc1);
      const b1 = fround(beta1);
      const b2 = fround(beta2);
      const a1 = fround(1 - beta1);
      const a2 = fround(1 - beta2);
      const epsF = fround(eps);
      const m = s.expAvg;
      const v = s.expAvgSq;
      const vmax = s.maxExpAvgSq;
      const sign = this.maximize ? -1 : 1;
      for (let i = 0; i < p.length; i++) {
        const gi = sign * g[i]!;
        const pi = fround(p[i]! * decay);
        // torch's CPU kernels evaluate m*b1 + a1*g and v*b2 + (a2*g)*g with a
        // fused multiply-add; products of two float32 values are exact in
        // float64, so rounding the float64 sum approximates the FMA.
        const mi = fround(fround(m[i]! * b1) + a1 * gi);
        let vi = fround(fround(v[i]! * b2) + fround(a2 * gi) * gi);
        m[i] = mi;
        v[i] = vi;
        if (vmax) {
          if (vi > vmax[i]! || Number.isNaN(vi)) vmax[i] = vi;
          vi = vmax[i]!;
        }
        const denom = fround(fround(fround(Math.sqrt(vi)) / bc2Sqrt) + epsF);
        p[i] = pi + fround(fround(negStepSize * mi) / denom);
      }
    }
  }

  /** Bytes of the moments (and amsgrad's maxima). */
  stateBytes(): number {
    let n = 0;
    for (const s of this.st.values()) n += s.expAvg.byteLength + s.expAvgSq.byteLength + (s.maxExpAvgSq?.byteLength ?? 0);
    return n;
  }

  /** A deep copy of the optimizer state as plain data. */
  stateDict(): AdamWStateDict {
    const state: Record<string, AdamWParamState> = {};
    for (const [name, s] of this.st) {
      const e: AdamWParamState = {
        step: s.step,
        expAvg: s.expAvg.slice(),
        expAvgSq: s.expAvgSq.slice(),
      };
      if (s.maxExpAvgSq) e.maxExpAvgSq = s.maxExpAvgSq.slice();
      state[name] = e;
    }
    return { kind: "adamw", step: this.stepCount, state };
  }

  /** Restores a state from `stateDict()`; validates names, lengths and amsgrad buffers. */
  loadStateDict(sd: AdamWStateDict): void {
    if (sd.kind !== "adamw") throw new Error(`AdamW.loadStateDict: state kind is "${String(sd.kind)}", expected "adamw"`);
    if (!Number.isInteger(sd.step) || sd.step < 0) throw new Error(`AdamW.loadStateDict: bad step ${sd.step}`);
    const next = new Map<string, AdamWParamState>();
    for (const [name, s] of Object.entries(sd.state)) {
      const p = this.params.get(name);
      if (!p) throw new Error(`AdamW.loadStateDict: state for unknown parameter "${name}"`);
      const check = (what: string, a: Float32Array | undefined) => {
        if (!(a instanceof Float32Array) || a.length !== p.length) {
          throw new Error(
            `AdamW.loadStateDict: "${name}".${what} must be a Float32Array of ${p.length} elements`,
          );
        }
      };
      check("expAvg", s.expAvg);
      check("expAvgSq", s.expAvgSq);
      if (this.amsgrad) check("maxExpAvgSq", s.maxExpAvgSq);
      if (!Number.isInteger(s.step) || s.step < 0) throw new Error(`AdamW.loadStateDict: "${name}".step is ${s.step}`);
      const e: AdamWParamState = { step: s.step, expAvg: s.expAvg.slice(), expAvgSq: s.expAvgSq.slice() };
      if (this.amsgrad) e.maxExpAvgSq = s.maxExpAvgSq!.slice();
      next.set(name, e);
    }
    this.st.clear();
    for (const [k, v] of next) this.st.set(k, v);
    this.stepCount = sd.step;
  }
}

const fround = Math.fround;

function checkHyper(what: string, x: number): void {
  if (!Number.isFinite(x) || x < 0) throw new RangeError(`AdamW: ${what} must be a finite number >= 0, got ${x}`);
}
