// Causal language modeling on a decoder: next-token cross-entropy with HF's
// label convention (labels[b,t] is the token at t; the loss at position t
// predicts labels[b,t+1]; -100 = ignored, e.g. prompt and padding tokens),
// mean over the tokens that count. Builds the fused training step (loss + every
// LoRA gradient in one onnxruntime run) and a small AdamW training loop.

import { grad } from '../autodiff/grad.ts';
import { Graph, Value } from '../graph/ir.ts';
import * as op from '../graph/ops.ts';
import { AdapterSet } from '../adapters/inject.ts';
import type { DecoderModel } from '../models/decoder.ts';
import { plainLinear } from '../models/linear.ts';
import { IGNORE_INDEX } from '../models/types.ts';
import { AdamW } from '../optim/adamw.ts';
import { clipGradNorm } from '../optim/clip.ts';
import { CompiledGraph, HostTensor } from '../runtime/session.ts';
import { Rng } from '../util/rng.ts';

export { IGNORE_INDEX };

/**
 * Mean next-token cross-entropy of logits [B,T,V] against `targets` [B,T]
 * int64 already shifted (targets[b,t] = labels[b,t+1]); entries < 0 are ignored.
 */
export function causalLmLoss(logits: Value, targets: Value): Value {
  const V = logits.shape[2] as number;
  const lp = op.logSoftmax(op.reshape(logits, [-1, V]), -1); // [N,V]
  const t = op.reshape(targets, [-1, 1]); // [N,1]
  const keep = op.greater(t, -1);
  const picked = op.gatherElements(lp, op.where(keep, t, 0), 1); // [N,1]
  const w = op.cast(keep, 'float32');
  const total = op.reduceSum(op.mul(picked, w), [0, 1], false);
  const count = op.max2(op.reduceSum(w, [0, 1], false), 1);
  return op.neg(op.div(total, count));
}

/** HF labels [B,T] → targets [B,T] (shift left by one, −100 at the end). */
export function shiftLabels(labels: ArrayLike<number | bigint>, B: number, T: number): BigInt64Array {
  const out = new BigInt64Array(B * T).fill(BigInt(IGNORE_INDEX));
  for (let b = 0; b < B; b++) for (let t = 0; t + 1 < T; t++) out[b * T + t] = BigInt(labels[b * T + t + 1]);
  return out;
}

export interface CausalLmExample {
  /** Prompt + completion token ids. */
  ids: number[];
  /** Tokens of `ids` that are prompt (their labels are −100). Default 0. */
  promptLength?: number;
}

export interface CausalLmBatch {
  B: number;
  T: number;
  ids: BigInt64Array;
  mask: Float32Array;
  /** HF labels (−100 on prompt and padding). */
  labels: BigInt64Array;
}

/** Right-padded batch with prompt tokens and padding masked out of the labels. */
export function makeCausalLmBatch(examples: CausalLmExample[], padId = 0): CausalLmBatch {
  const B = examples.length, T = Math.max(1, ...examples.map((e) => e.ids.length));
  const ids = new BigInt64Array(B * T).fill(BigInt(padId));
  const mask = new Float32Array(B * T);
  const labels = new BigInt64Array(B * T).fill(BigInt(IGNORE_INDEX));
  examples.forEach((e, b) => {
    e.ids.forEach((id, t) => {
      ids[b * T + t] = BigInt(id);
      mask[b * T + t] = 1;
      if (t >= (e.promptLength ?? 0)) labels[b * T + t] = BigInt(id);
    });
  });
  return { B, T, ids, mask, labels };
}

export interface CausalLmGraph {
  graph: Graph;
  /** Trainable parameter names (`grad.<name>` outputs in train mode). */
  trainable: string[];
}

/** Inputs input_ids / attention_mask / targets [B,T]; outputs loss (and grad.<param> in train mode). */
export function buildCausalLmGraph(model: DecoderModel, adapters: AdapterSet | null, mode: 'train' | 'eval'): CausalLmGraph {
  const g = new Graph(`${model.name}-causal-lm-${mode}`);
  const inputIds = g.input('input_ids', 'int64', ['B', 'T']);
  const attentionMask = g.input('attention_mask', 'float32', ['B', 'T']);
  const targets = g.input('targets', 'int64', ['B', 'T']);
  const linear = adapters ? adapters.linear({ training: mode === 'train' }) : plainLinear;
  const { logits } = model.build(g, { inputIds, attentionMask }, linear);
  const loss = causalLmLoss(logits, targets);
  g.output('loss', loss);
  if (mode === 'eval') return { graph: g, trainable: [] };
  const params = g.params();
  if (params.length === 0) throw new Error('causal LM training: no trainable parameters (attach an adapter)');
  const grads = grad(loss, params);
  params.forEach((p, i) => g.output(`grad.${p.leaf!.name}`, grads[i]));
  return { graph: g, trainable: params.map((p) => p.leaf!.name) };
}

export interface CausalLmTrainOptions {
  lr: number;
  steps: number;
  seed?: number;
  weightDecay?: number;
  maxGradNorm?: number;
  threads?: number;
  onStep?: (info: { step: number; loss: number; ms: number }) => void;
}

/** Feeds of one batch for the train/eval graph (params and dropout masks included). */
export function causalLmFeeds(batch: CausalLmBatch, adapters: AdapterSet | null, dropoutSeed?: string): Record<string, HostTensor> {
  const f: Record<string, HostTensor> = {
    input_ids: { data: batch.ids, dims: [batch.B, batch.T] },
    attention_mask: { data: batch.mask, dims: [batch.B, batch.T] },
    targets: { data: shiftLabels(batch.labels, batch.B, batch.T), dims: [batch.B, batch.T] },
  };
  if (!adapters) return f;
  for (const [k, v] of adapters.params) f[k] = { data: v, dims: adapters.shapes.get(k)! };
  const p = adapters.dropout;
  if (dropoutSeed !== undefined && p > 0) {
    const rng = new Rng(dropoutSeed);
    for (const site of adapters.dropoutTargets) {
      const n = batch.B * batch.T * site.inFeatures;
      const m = new Float32Array(n);
      for (let i = 0; i < n; i++) m[i] = rng.uniform() < p ? 0 : 1 / (1 - p);
      f[AdapterSet.dropoutInput(site.name)] = { data: m, dims: [batch.B * batch.T, site.inFeatures] };
    }
  }
  return f;
}

/** A plain LoRA training loop over `batches` (cycled) with AdamW; returns the loss of every step. */
export async function trainCausalLm(model: DecoderModel, adapters: AdapterSet, batches: CausalLmBatch[], o: CausalLmTrainOptions): Promise<number[]> {
  const { graph } = buildCausalLmGraph(model, adapters, 'train');
  const cg = await CompiledGraph.compile(graph, { threads: o.threads });
  const opt = new AdamW(adapters.params, { lr: o.lr, weightDecay: o.weightDecay ?? 0 });
  const losses: number[] = [];
  try {
    for (let step = 0; step < o.steps; step++) {
      const t0 = performance.now();
      const out = await cg.run(causalLmFeeds(batches[step % batches.length], adapters, `${o.seed ?? 0}-dropout-${step}`));
      const loss = Number(out.loss.data[0]);
      if (!Number.isFinite(loss)) throw new Error(`causal LM training diverged: loss ${loss} at step ${step}; lower the learning rate`);
      const grads = new Map<string, Float32Array>();
      for (const k of adapters.params.keys()) grads.set(k, out[`grad.${k}`].data as Float32Array);
      if (o.maxGradNorm) clipGradNorm(grads, o.maxGradNorm);
      opt.step(grads, o.lr);
      losses.push(loss);
      o.onStep?.({ step, loss, ms: performance.now() - t0 });
    }
  } finally {
    await cg.release();
  }
  return losses;
}
