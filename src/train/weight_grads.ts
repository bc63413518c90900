// Gradients of the classification loss with respect to *frozen* weights
// (LoRA-SB's gradient-based init; also what LoRA-Pro / FILA-style inits need):
// a separate graph in which the chosen sites' weights are parameters, the
// head is frozen, and the loss is the trainer's mean cross-entropy. Returns
// Σ over batches of ∂L/∂W in [out, in] layout (float64), per site name.

import { grad } from '../autodiff/grad.ts';
import { Graph } from '../graph/ir.ts';
import * as op from '../graph/ops.ts';
import type { EncoderModel, LinearFn, LinearSite } from '../models/types.ts';
import { CompiledGraph } from '../runtime/session.ts';
import { makeBatches } from '../data/batching.ts';
import { Rng } from '../util/rng.ts';
import { HEAD_B, HEAD_W } from './classifier.ts';
import { outIn64 } from '../adapters/bases.ts';

export interface WeightGradOptions {
  batches: number;
  batchSize: number;
  seed: number;
  buckets?: number[];
  threads?: number;
}

export async function frozenWeightGradients(
  model: EncoderModel,
  sites: LinearSite[],
  head: Map<string, Float32Array>,
  numLabels: number,
  data: { ids: number[]; label: number }[],
  o: WeightGradOptions,
): Promise<Map<string, Float64Array>> {
  const g = new Graph(`${model.name}-weight-grads`);
  const inputIds = g.input('input_ids', 'int64', ['B', 'T']);
  const attentionMask = g.input('attention_mask', 'float32', ['B', 'T']);
  const wanted = new Set(sites.map((s) => s.name));
  const wParams = new Map<string, ReturnType<Graph['param']>>();
  const linear: LinearFn = (site, x, W, b) => {
    if (wanted.has(site.name)) {
      const w = model.weights.get(site.weightKey)!;
      const p = wParams.get(site.name) ?? g.param(`W.${site.name}`, w.shape, w.data);
      wParams.set(site.name, p);
      W = p;
    }
    return site.layout === 'in_out' ? op.linear(x, W, b) : op.linearT(x, W, b);
  };
  const pooled = model.build(g, { inputIds, attentionMask }, linear);
  const hw = g.weight(HEAD_W, head.get(HEAD_W)!, [numLabels, model.hiddenSize]);
  const hb = g.weight(HEAD_B, head.get(HEAD_B)!, [numLabels]);
  const labels = g.input('labels', 'int64', ['B']);
  const loss = op.crossEntropy(op.gemm(pooled, hw, { transB: true }, hb), labels);
  const names = [...wParams.keys()];
  const gs = grad(loss, names.map((n) => wParams.get(n)!));
  names.forEach((n, i) => g.output(`grad.${n}`, gs[i]));
  const cg = await CompiledGraph.compile(g, { threads: o.threads });
  const sum = new Map<string, Float64Array>();
  try {
    const batches = makeBatches(data.map((d) => d.ids), data.map((d) => d.label), { batchSize: o.batchSize, buckets: o.buckets ?? [32, 64, 128], padId: 0, rng: new Rng(o.seed).fork('weight-grads') });
    for (const batch of batches.slice(0, o.batches)) {
      const feeds: Record<string, { data: any; dims: number[] }> = {
        input_ids: { data: batch.ids, dims: [batch.B, batch.T] },
        attention_mask: { data: batch.mask, dims: [batch.B, batch.T] },
        labels: { data: batch.labels, dims: [batch.B] },
      };
      for (const n of names) {
        const w = model.weights.get(sites.find((s) => s.name === n)!.weightKey)!;
        feeds[`W.${n}`] = { data: w.data, dims: w.shape };
      }
      const out = await cg.run(feeds);
      for (const n of names) {
        const site = sites.find((s) => s.name === n)!;
        const gr = outIn64(site, out[`grad.${n}`].data as Float32Array);
        const acc = sum.get(n);
        if (!acc) sum.set(n, gr);
        else for (let i = 0; i < acc.length; i++) acc[i] += gr[i];
      }
    }
  } finally {
    await cg.release();
  }
  return sum;
}
