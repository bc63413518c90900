// Sequence classification on top of an encoder: pooled representation →
// linear head → cross-entropy. Builds the fused training step (loss + every
// trainable gradient in one onnxruntime run) and the forward-only graph.

import { grad } from '../autodiff/grad.ts';
import { Graph, Value } from '../graph/ir.ts';
import * as op from '../graph/ops.ts';
import type { AdapterSet } from '../adapters/inject.ts';
import type { EncoderModel, LinearFn } from '../models/types.ts';
import { Rng } from '../util/rng.ts';

export const HEAD_W = 'classifier.weight';
export const HEAD_B = 'classifier.bias';

/** Head parameters in nn.Linear layout ([C, H] weight), PyTorch default init. */
export function initHead(hidden: number, numLabels: number, seed: number): Map<string, Float32Array> {
  const rng = new Rng(seed).fork('classifier');
  const bound = 1 / Math.sqrt(hidden);
  const w = new Float32Array(numLabels * hidden), b = new Float32Array(numLabels);
  for (let i = 0; i < w.length; i++) w[i] = rng.uniformRange(-bound, bound);
  for (let i = 0; i < b.length; i++) b[i] = rng.uniformRange(-bound, bound);
  return new Map([[HEAD_W, w], [HEAD_B, b]]);
}

export interface ClassifierGraphs {
  graph: Graph;
  /** Trainable parameter names in output order (`grad.<name>` outputs). */
  trainable: string[];
}

export function buildClassifierGraph(
  model: EncoderModel,
  adapters: AdapterSet | null,
  head: Map<string, Float32Array>,
  numLabels: number,
  mode: 'train' | 'eval',
): ClassifierGraphs {
  const g = new Graph(`${model.name}-${mode}`);
  const inputIds = g.input('input_ids', 'int64', ['B', 'T']);
  const attentionMask = g.input('attention_mask', 'float32', ['B', 'T']);
  const plain: LinearFn = (site, x, W, b) => (site.layout === 'in_out' ? op.linear(x, W, b) : op.linearT(x, W, b));
  const linear = adapters ? adapters.linear({ training: mode === 'train' }) : plain;
  const pooled = model.build(g, { inputIds, attentionMask }, linear);
  const hw = g.param(HEAD_W, [numLabels, model.hiddenSize], head.get(HEAD_W));
  const hb = g.param(HEAD_B, [numLabels], head.get(HEAD_B));
  const logits = op.gemm(pooled, hw, { transB: true }, hb);
  g.output('logits', logits);
  if (mode === 'eval') {
    g.output('pooled', pooled);
    return { graph: g, trainable: [] };
  }
  const labels = g.input('labels', 'int64', ['B']);
  const loss = op.crossEntropy(logits, labels);
  g.output('loss', loss);
  const params = g.params();
  const grads = grad(loss, params);
  params.forEach((p, i) => g.output(`grad.${p.leaf!.name}`, grads[i]));
  return { graph: g, trainable: params.map((p) => p.leaf!.name) };
}
