// Sequence classification on an encoder (USE, BERT family): pooled
// representation → linear head → cross-entropy. The head is the task's own
// trainable tensor (nn.Linear layout [C, H], PyTorch's default init); batches
// are length-bucketed (src/data/batching.ts). Metrics: accuracy and the mean
// cross-entropy over examples.

import * as op from '../../graph/ops.ts';
import type { Graph } from '../../graph/ir.ts';
import type { EncoderModel, LinearFn } from '../../models/types.ts';
import type { HostTensor } from '../../runtime/session.ts';
import { Rng } from '../../util/rng.ts';
import { Batch, makeBatches } from '../../data/batching.ts';
import type { TaskGraph, TrainTask, TrainTensor } from '../task.ts';

export const HEAD_W = 'classifier.weight';
export const HEAD_B = 'classifier.bias';

export interface EncodedExample {
  ids: number[];
  label: number;
}

/** Head parameters in nn.Linear layout ([C, H] weight), PyTorch default init. */
export function initHead(hidden: number, numLabels: number, seed: number): Map<string, Float32Array> {
  const rng = new Rng(seed).fork('classifier');
  const bound = 1 / Math.sqrt(hidden);
  const w = new Float32Array(numLabels * hidden), b = new Float32Array(numLabels);
  for (let i = 0; i < w.length; i++) w[i] = rng.uniformRange(-bound, bound);
  for (let i = 0; i < b.length; i++) b[i] = rng.uniformRange(-bound, bound);
  return new Map([[HEAD_W, w], [HEAD_B, b]]);
}

export interface ClassificationTaskOptions {
  numLabels: number;
  /** Seed of the head's init. */
  seed: number;
  /** Padded lengths of the length buckets (default [32, 64, 128]). */
  buckets?: number[];
  /** Learning-rate multiplier of the head (it starts from scratch). Default 1. */
  headLrScale?: number;
}

export class ClassificationTask implements TrainTask<EncodedExample, Batch> {
  readonly kind = 'classification';
  readonly peftTaskType = 'SEQ_CLS';
  readonly metric = { name: 'accuracy', higherIsBetter: true };
  readonly params: Map<string, TrainTensor>;
  readonly numLabels: number;
  readonly name: string;

  constructor(readonly model: EncoderModel, readonly o: ClassificationTaskOptions) {
    if (!(Number.isInteger(o.numLabels) && o.numLabels >= 2)) throw new Error(`classification needs at least 2 labels, got ${o.numLabels}`);
    this.numLabels = o.numLabels;
    this.name = `${model.name}-classification`;
    const head = initHead(model.hiddenSize, o.numLabels, o.seed);
    this.params = new Map([
      [HEAD_W, { shape: [o.numLabels, model.hiddenSize], data: head.get(HEAD_W)! }],
      [HEAD_B, { shape: [o.numLabels], data: head.get(HEAD_B)! }],
    ]);
  }

  get weights() {
    return this.model.weights;
  }

  get optimizerGroups() {
    return [{ match: [HEAD_W, HEAD_B], lrScale: this.o.headLrScale ?? 1 }];
  }

  /** The head's live tensors (weight [C, H], bias [C]). */
  get head(): Map<string, Float32Array> {
    return new Map([...this.params].map(([k, t]) => [k, t.data]));
  }

  build(g: Graph, linear: LinearFn, mode: 'train' | 'eval'): TaskGraph {
    const inputIds = g.input('input_ids', 'int64', ['B', 'T']);
    const attentionMask = g.input('attention_mask', 'float32', ['B', 'T']);
    const pooled = this.model.build(g, { inputIds, attentionMask }, linear);
    const hw = g.param(HEAD_W, [this.numLabels, this.model.hiddenSize], this.params.get(HEAD_W)!.data);
    const hb = g.param(HEAD_B, [this.numLabels], this.params.get(HEAD_B)!.data);
    const logits = op.gemm(pooled, hw, { transB: true }, hb);
    // Evaluation reads the logits (accuracy and loss in float64 here), and works without labels (embedding).
    if (mode === 'eval') return { outputs: { logits, pooled } };
    return { loss: op.crossEntropy(logits, g.input('labels', 'int64', ['B'])), outputs: { logits } };
  }

  batches(data: readonly EncodedExample[], batchSize: number, rng: Rng | null): Batch[] {
    return makeBatches(data.map((d) => d.ids), data.map((d) => d.label), { batchSize, buckets: this.o.buckets ?? [32, 64, 128], padId: 0, rng: rng ?? undefined });
  }

  feeds(b: Batch): Record<string, HostTensor> {
    return {
      input_ids: { data: b.ids, dims: [b.B, b.T] },
      attention_mask: { data: b.mask, dims: [b.B, b.T] },
      labels: { data: b.labels, dims: [b.B] },
    };
  }

  tokens(b: Batch): number {
    return b.B * b.T;
  }

  /** Accuracy, mean cross-entropy (float64, per example) and the predicted class of every example. */
  scores(results: { batch: Batch; out: Record<string, HostTensor> }[]): { accuracy: number; loss: number; predictions: number[] } {
    const C = this.numLabels;
    let correct = 0, lossSum = 0, n = 0;
    const predictions: number[] = [];
    for (const { batch, out } of results) {
      const logits = out.logits.data as Float32Array;
      for (let i = 0; i < batch.B; i++) {
        const row = logits.subarray(i * C, (i + 1) * C);
        let best = 0, max = -Infinity;
        for (let c = 0; c < C; c++) if (row[c] > max) { max = row[c]; best = c; }
        let z = 0;
        for (let c = 0; c < C; c++) z += Math.exp(row[c] - max);
        const label = Number(batch.labels[i]);
        lossSum += -(row[label] - max - Math.log(z));
        if (best === label) correct++;
        predictions[batch.index[i]] = best;
        n++;
      }
    }
    return { accuracy: correct / Math.max(1, n), loss: lossSum / Math.max(1, n), predictions };
  }

  evaluate(results: { batch: Batch; out: Record<string, HostTensor> }[]): Record<string, number> {
    const { accuracy, loss } = this.scores(results);
    return { accuracy, loss };
  }
}
