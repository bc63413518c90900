// ALLoRA (Huang & Balestriero, arXiv 2410.09692): LoRA without dropout and
// without the α/r scale, whose gradients are scaled "inversely proportional to
// the parameters' ℓ2 norm" before the optimizer. No official code exists; the
// rule here is the unofficial implementations' (rank_optim_workflows.md):
// each row θ_i of a LoRA A or B gets g_i ← g_i / √(‖θ_i‖² + 1/η²), θ_i the
// value before the step (so at θ = 0 the factor is η). `granularity: 'tensor'`
// uses the whole tensor's norm instead (the paper's wording is ambiguous).
// Then the wrapped optimizer (AdamW) steps; other parameters pass unscaled.

import type { Optimizer } from './optimizer.ts';

export interface AlloraOptions {
  /** The factor at θ = 0 (unofficial default 2; the paper's value is unverified). */
  eta?: number;
  granularity?: 'row' | 'tensor';
  /** The LoRA tensors it scales, with their row length (in_features for A [r, in], r for B [out, r]). */
  rows: Map<string, number>;
}

/** The factor of each row (or the whole tensor) of θ: 1 / √(‖θ_i‖² + η⁻²). */
export function alloraFactors(theta: Float32Array, rowLength: number, eta: number, granularity: 'row' | 'tensor'): Float64Array {
  const len = granularity === 'tensor' ? theta.length : rowLength;
  const rows = theta.length / len;
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let j = 0; j < len; j++) ss += theta[r * len + j] * theta[r * len + j];
    out[r] = 1 / Math.sqrt(ss + 1 / (eta * eta));
  }
  return out;
}

export class Allora implements Optimizer {
  constructor(readonly params: Map<string, Float32Array>, readonly inner: Optimizer, readonly o: AlloraOptions) {
    if (!(o.eta === undefined || o.eta > 0)) throw new RangeError(`ALLoRA: eta must be > 0, got ${o.eta}`);
    for (const [k, len] of o.rows) {
      const p = params.get(k);
      if (!p) throw new Error(`ALLoRA: '${k}' is not a trainable parameter`);
      if (p.length % len !== 0) throw new Error(`ALLoRA: '${k}' has ${p.length} values, not a whole number of rows of ${len}`);
    }
  }

  step(grads: Map<string, Float32Array>, lr: number): void | Promise<void> {
    const eta = this.o.eta ?? 2, gran = this.o.granularity ?? 'row';
    const scaled = new Map(grads);
    for (const [k, len] of this.o.rows) {
      const g = grads.get(k);
      if (!g) continue;
      const f = alloraFactors(this.params.get(k)!, len, eta, gran);
      const rowLen = gran === 'tensor' ? g.length : len;
      const out = new Float32Array(g.length);
      for (let i = 0; i < g.length; i++) out[i] = g[i] * f[Math.floor(i / rowLen)];
      scaled.set(k, out);
    }
    return this.inner.step(scaled, lr);
  }

  release(): Promise<void> {
    return this.inner.release?.() ?? Promise.resolve();
  }

  stateDict() {
    return { kind: 'allora', inner: this.inner.stateDict() };
  }

  loadStateDict(s: { kind: string; inner: unknown }): void {
    if (s?.kind !== 'allora') throw new Error(`ALLoRA: the saved optimizer state is '${String(s?.kind)}', this run uses 'allora': resume with the optimizer the run started with (--optimizer)`);
    this.inner.loadStateDict(s.inner);
  }

  stateBytes(): number {
    return this.inner.stateBytes();
  }
}
