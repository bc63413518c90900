// SGD as torch.optim.SGD: weight decay added to the gradient (L2), optional
// momentum (buffer = g on its first step, then μ·buffer + (1 − dampening)·g;
// Nesterov: g + μ·buffer), p −= lr·update. Computed in float64, stored float32.

import type { AdamWGroup } from './adamw.ts';
import { checkStateKind, typedBytes, type Optimizer } from './optimizer.ts';

export interface SgdOptions {
  momentum?: number;
  dampening?: number;
  nesterov?: boolean;
  weightDecay?: number;
  /** Per-parameter learning-rate multipliers / weight decay (first match wins), as AdamW's. */
  groups?: readonly AdamWGroup[];
}

export class Sgd implements Optimizer {
  private buffers = new Map<string, Float32Array>();
  private steps = 0;

  constructor(readonly params: Map<string, Float32Array>, readonly o: SgdOptions = {}) {
    const mu = o.momentum ?? 0;
    if (!(mu >= 0)) throw new RangeError(`SGD: momentum must be >= 0, got ${mu}`);
    if (o.nesterov && !(mu > 0 && (o.dampening ?? 0) === 0)) throw new RangeError('SGD: Nesterov momentum needs momentum > 0 and dampening 0');
  }

  private hyper(name: string): { lrScale: number; weightDecay: number } {
    const g = this.o.groups?.find((gr) => (typeof gr.match === 'function' ? gr.match(name) : gr.match instanceof RegExp ? gr.match.test(name) : gr.match.includes(name)));
    return { lrScale: g?.lrScale ?? 1, weightDecay: g?.weightDecay ?? this.o.weightDecay ?? 0 };
  }

  step(grads: Map<string, Float32Array>, lr: number): void {
    const mu = this.o.momentum ?? 0, damp = this.o.dampening ?? 0;
    this.steps++;
    for (const [name, p] of this.params) {
      const g = grads.get(name);
      if (!g) continue;
      if (g.length !== p.length) throw new Error(`SGD.step: gradient "${name}" has ${g.length} elements, parameter has ${p.length}`);
      const h = this.hyper(name);
      let buf = this.buffers.get(name);
      const first = !buf;
      if (mu > 0 && !buf) this.buffers.set(name, (buf = new Float32Array(p.length)));
      for (let i = 0; i < p.length; i++) {
        let d = g[i] + h.weightDecay * p[i];
        if (mu > 0) {
          const b = first ? d : mu * buf![i] + (1 - damp) * d;
          buf![i] = b;
          d = this.o.nesterov ? d + mu * b : b;
        }
        p[i] -= lr * h.lrScale * d;
      }
    }
  }

  stateDict() {
    return { kind: 'sgd', step: this.steps, buffers: new Map([...this.buffers].map(([k, v]) => [k, v.slice()])) };
  }

  loadStateDict(s: { kind: string; step: number; buffers: Map<string, Float32Array> }): void {
    checkStateKind('SGD', s, 'sgd');
    for (const [k, v] of s.buffers) {
      const p = this.params.get(k);
      if (!p || !(v instanceof Float32Array) || v.length !== p.length) throw new Error(`SGD.loadStateDict: momentum buffer '${k}' does not fit this run's parameters`);
    }
    this.buffers = new Map([...s.buffers].map(([k, v]) => [k, v.slice()]));
    this.steps = s.step;
  }

  stateBytes(): number {
    return typedBytes(this.buffers);
  }
}
