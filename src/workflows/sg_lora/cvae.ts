// SG-LoRA's generator: a conditional VAE (Sohn et al. 2015) over expert LoRA
// parameters, conditioned on a task's description embedding. The paper
// (arXiv 2509.10535) describes "a CVAE that models the target task's LoRA
// parameter distribution", guided by the new task's proximity to the experts
// in the description embedding space; its architecture, losses, flattening
// and conditioning were not available to read (shared/docs/methods/
// rank_optim_workflows.md), so this file is lorakit's own concrete design:
//
//   θ (every expert tensor, flattened) → PCA over the library: x = Vᵀ(θ − θ̄)/σ,
//     k = rank of the centered samples (≤ N − 1), σⱼ the std of coordinate j
//   encoder  h = tanh(W₁[x; c] + b₁),  μ = W_μh + b_μ,  log σ² = W_νh + b_ν
//   z = μ + exp(½ log σ²)·ε,  ε ~ N(0, I) (seeded per batch)
//   decoder  x̂ = W₅ tanh(W₄[z; c] + b₄) + b₅
//   loss     mean over the batch of ‖x − x̂‖² + β·KL(N(μ, σ²) ‖ N(0, I))
//
// Training: the condition of expert i is its own description embedding eᵢ.
// Generation: the condition is the similarity-weighted sum Σ wᵢeᵢ of the
// experts' embeddings (w = softmax(cos(e, eᵢ)/τ), the "semantic prior" that
// keeps the decoder inside what it was trained on), z = 0 (the prior's mean)
// or the mean of `samples` draws, and θ = θ̄ + V(σ ⊙ x̂).
//
// The CVAE is a task of the one training loop (src/train/loop.ts): its
// weights are the task's own parameters, trained with AdamW.

import type { Graph, Value } from '../../graph/ir.ts';
import * as op from '../../graph/ops.ts';
import { svdJacobi } from '../../linalg/svd.ts';
import type { LinearFn } from '../../models/types.ts';
import type { HostTensor } from '../../runtime/session.ts';
import { fit } from '../../train/loop.ts';
import type { TaskGraph, TrainTask, TrainTensor } from '../../train/task.ts';
import { Rng } from '../../util/rng.ts';

export interface CvaeSpec {
  /** PCA coordinates. */
  inputDim: number;
  condDim: number;
  hidden: number;
  latent: number;
  beta: number;
}

export interface Pca {
  mean: Float64Array;
  /** [k, P] rows: the principal directions. */
  basis: Float64Array;
  /** [k] std of each coordinate over the samples. */
  sigma: Float64Array;
  k: number;
  P: number;
}

/** PCA of samples [N, P] (centered; directions with singular value > 1e-9·max kept, at most N − 1). */
export function pca(samples: Float64Array[], maxK = 64): Pca {
  const N = samples.length, P = samples[0].length;
  if (N < 2) throw new Error('SG-LoRA: the generator needs at least 2 expert adapters');
  const mean = new Float64Array(P);
  for (const s of samples) for (let j = 0; j < P; j++) mean[j] += s[j] / N;
  const X = new Float64Array(N * P);
  samples.forEach((s, i) => { for (let j = 0; j < P; j++) X[i * P + j] = s[j] - mean[j]; });
  const { S, Vt, k: full } = svdJacobi(X, N, P);
  let k = 0;
  while (k < Math.min(full, N - 1, maxK) && S[k] > 1e-9 * S[0]) k++;
  if (k === 0) throw new Error('SG-LoRA: the expert adapters are all equal: nothing for a generator to learn');
  const sigma = Float64Array.from({ length: k }, (_, j) => S[j] / Math.sqrt(N - 1));
  return { mean, basis: Vt.slice(0, k * P), sigma, k, P };
}

/** x = Vᵀ(θ − θ̄)/σ */
export function toCoords(p: Pca, theta: ArrayLike<number>): Float64Array {
  const x = new Float64Array(p.k);
  for (let j = 0; j < p.k; j++) {
    let t = 0;
    for (let i = 0; i < p.P; i++) t += p.basis[j * p.P + i] * (theta[i] - p.mean[i]);
    x[j] = t / p.sigma[j];
  }
  return x;
}

/** θ = θ̄ + V(σ ⊙ x) */
export function fromCoords(p: Pca, x: ArrayLike<number>): Float64Array {
  const theta = Float64Array.from(p.mean);
  for (let j = 0; j < p.k; j++) {
    const f = x[j] * p.sigma[j];
    for (let i = 0; i < p.P; i++) theta[i] += f * p.basis[j * p.P + i];
  }
  return theta;
}

export interface CvaeExample {
  x: Float64Array;
  c: Float32Array;
}

interface CvaeBatch {
  B: number;
  x: Float32Array;
  c: Float32Array;
  eps: Float32Array;
}

const PARAMS = (s: CvaeSpec): [string, number[]][] => [
  ['cvae.enc.W', [s.hidden, s.inputDim + s.condDim]], ['cvae.enc.b', [s.hidden]],
  ['cvae.mu.W', [s.latent, s.hidden]], ['cvae.mu.b', [s.latent]],
  ['cvae.logvar.W', [s.latent, s.hidden]], ['cvae.logvar.b', [s.latent]],
  ['cvae.dec.W', [s.hidden, s.latent + s.condDim]], ['cvae.dec.b', [s.hidden]],
  ['cvae.out.W', [s.inputDim, s.hidden]], ['cvae.out.b', [s.inputDim]],
];

export class CvaeTask implements TrainTask<CvaeExample, CvaeBatch> {
  readonly kind = 'embed';
  readonly name = 'sg-lora-cvae';
  readonly peftTaskType = 'FEATURE_EXTRACTION';
  readonly metric = { name: 'loss', higherIsBetter: false };
  readonly weights = new Map();
  readonly params = new Map<string, TrainTensor>();

  constructor(readonly spec: CvaeSpec, seed: number, init?: Map<string, Float32Array>) {
    const rng = new Rng(seed).fork('cvae-init');
    for (const [name, shape] of PARAMS(spec)) {
      const n = shape.reduce((a, b) => a * b, 1);
      const data = init?.get(name) ?? (shape.length === 2 ? rng.fork(name).fillNormal(new Float32Array(n), 0, 1 / Math.sqrt(shape[1])) : new Float32Array(n));
      if (data.length !== n) throw new Error(`SG-LoRA generator: '${name}' has ${data.length} values, the spec needs ${n}`);
      this.params.set(name, { shape, data });
    }
  }

  build(g: Graph, _linear: LinearFn): TaskGraph {
    const s = this.spec;
    const x = g.input('x', 'float32', ['B', s.inputDim]);
    const c = g.input('c', 'float32', ['B', s.condDim]);
    const eps = g.input('eps', 'float32', ['B', s.latent]);
    const p = (name: string) => g.param(name, this.params.get(name)!.shape, this.params.get(name)!.data);
    const h = op.tanh(op.linearT(op.concat([x, c], 1), p('cvae.enc.W'), p('cvae.enc.b')));
    const mu = op.linearT(h, p('cvae.mu.W'), p('cvae.mu.b'));
    const logvar = op.linearT(h, p('cvae.logvar.W'), p('cvae.logvar.b'));
    const z = op.add(mu, op.mul(op.exp(op.mul(logvar, 0.5)), eps));
    const xh = op.linearT(op.tanh(op.linearT(op.concat([z, c], 1), p('cvae.dec.W'), p('cvae.dec.b'))), p('cvae.out.W'), p('cvae.out.b'));
    const d = op.sub(x, xh);
    const recon = op.reduceMean(op.reduceSum(op.mul(d, d), [1], false), [0], false);
    const kl = op.reduceMean(op.mul(op.reduceSum(op.sub(op.sub(op.add(logvar, 1), op.mul(mu, mu)), op.exp(logvar)), [1], false), -0.5), [0], false);
    return { loss: op.add(recon, op.mul(kl, s.beta)), outputs: { recon, kl } };
  }

  batches(data: readonly CvaeExample[], batchSize: number, rng: Rng | null): CvaeBatch[] {
    const order = rng ? rng.fork('order').permutation(data.length) : data.map((_, i) => i);
    const noise = rng?.fork('eps');
    const out: CvaeBatch[] = [];
    for (let s0 = 0; s0 < order.length; s0 += batchSize) {
      const idx = order.slice(s0, s0 + batchSize), B = idx.length;
      const x = new Float32Array(B * this.spec.inputDim), c = new Float32Array(B * this.spec.condDim), eps = new Float32Array(B * this.spec.latent);
      idx.forEach((i, b) => {
        x.set(data[i].x, b * this.spec.inputDim);
        c.set(data[i].c, b * this.spec.condDim);
      });
      if (noise) noise.fillNormal(eps);
      out.push({ B, x, c, eps });
    }
    return out;
  }

  feeds(b: CvaeBatch): Record<string, HostTensor> {
    return { x: { data: b.x, dims: [b.B, this.spec.inputDim] }, c: { data: b.c, dims: [b.B, this.spec.condDim] }, eps: { data: b.eps, dims: [b.B, this.spec.latent] } };
  }

  tokens(b: CvaeBatch): number {
    return b.B;
  }

  evaluate(results: { batch: CvaeBatch; out: Record<string, HostTensor> }[]): Record<string, number> {
    let loss = 0, n = 0;
    for (const { batch, out } of results) {
      loss += Number(out.loss.data[0]) * batch.B;
      n += batch.B;
    }
    return { loss: loss / n };
  }

  /** The decoder on the host (float64): x̂ for latent z and condition c. */
  decode(z: ArrayLike<number>, c: ArrayLike<number>): Float64Array {
    const s = this.spec;
    const lin = (W: Float32Array, b: Float32Array, inp: ArrayLike<number>, rows: number, cols: number) => Float64Array.from({ length: rows }, (_, r) => {
      let t = b[r];
      for (let j = 0; j < cols; j++) t += W[r * cols + j] * inp[j];
      return t;
    });
    const zc = [...Array.from(z), ...Array.from(c)];
    const h = lin(this.params.get('cvae.dec.W')!.data, this.params.get('cvae.dec.b')!.data, zc, s.hidden, s.latent + s.condDim).map(Math.tanh);
    return lin(this.params.get('cvae.out.W')!.data, this.params.get('cvae.out.b')!.data, h, s.inputDim, s.hidden);
  }
}

/** Trains the CVAE on the examples with the one loop (AdamW, constant lr); returns the final epoch losses. */
export async function trainCvae(task: CvaeTask, examples: CvaeExample[], o: { epochs: number; lr: number; batchSize: number; seed: number; threads?: number }): Promise<number[]> {
  const r = await fit(task, null, { train: examples }, { epochs: o.epochs, lr: o.lr, batchSize: o.batchSize, seed: o.seed, weightDecay: 0, warmupRatio: 0, schedule: 'constant', threads: o.threads });
  return r.epochLosses;
}
