// Contrastive sentence embeddings with in-batch negatives (the multiple-
// negatives ranking loss of sentence-transformers, InfoNCE): a batch of B
// (anchor, positive) pairs is encoded as 2B sequences; with unit-length
// embeddings, scores = scale · cos(anchor_i, positive_j) [B, B], and the loss is
// the softmax cross-entropy of each anchor's row against its own positive
// (the other B − 1 positives are its negatives). `symmetric` also scores each
// positive against the anchors. Validation: top-1 accuracy of retrieving each
// anchor's positive among the batch's positives, MRR, and the loss.

import * as op from '../../graph/ops.ts';
import type { Graph, Value } from '../../graph/ir.ts';
import type { EncoderModel, LinearFn } from '../../models/types.ts';
import type { HostTensor } from '../../runtime/session.ts';
import type { Rng } from '../../util/rng.ts';
import { padBatch } from '../../data/batching.ts';
import { softmaxCrossEntropy } from '../ranking.ts';
import type { TaskGraph, TrainTask, TrainTensor } from '../task.ts';
import { lengthGroupedBatches } from './lm.ts';

export interface EmbedExample {
  anchor: number[];
  positive: number[];
}

export interface EmbedBatch {
  B: number;
  T: number;
  /** [2B, T]: the anchors, then their positives. */
  ids: BigInt64Array;
  mask: Float32Array;
}

export interface EmbedTaskOptions {
  /** Multiplier of the cosine similarities (1/temperature; sentence-transformers' default 20). */
  scale?: number;
  symmetric?: boolean;
}

export class EmbedTask implements TrainTask<EmbedExample, EmbedBatch> {
  readonly kind = 'embed';
  readonly peftTaskType = 'FEATURE_EXTRACTION';
  readonly metric = { name: 'accuracy', higherIsBetter: true };
  readonly params = new Map<string, TrainTensor>();
  readonly name: string;

  constructor(readonly model: EncoderModel, readonly o: EmbedTaskOptions = {}) {
    this.name = `${model.name}-embed`;
  }

  get weights() {
    return this.model.weights;
  }

  build(g: Graph, linear: LinearFn, mode: 'train' | 'eval'): TaskGraph {
    const inputIds = g.input('input_ids', 'int64', ['N', 'T']);
    const attentionMask = g.input('attention_mask', 'float32', ['N', 'T']);
    const target = g.input('target', 'int64', ['B']); // 0 … B−1: row i's positive is column i
    const pooled = this.model.build(g, { inputIds, attentionMask }, linear); // [2B, H]
    const unit = op.div(pooled, op.sqrt(op.max2(op.reduceSum(op.mul(pooled, pooled), [1], true), 1e-12)));
    const H = this.model.hiddenSize;
    const pairs = op.reshapeTo(unit, g.ints([2, -1, H]), [2, 'B', H]);
    const anchors = op.squeeze(op.slice(pairs, [0], [1], [0]), [0]);
    const positives = op.squeeze(op.slice(pairs, [1], [2], [0]), [0]);
    const scores: Value = op.gemm(anchors, positives, { transB: true, alpha: this.o.scale ?? 20 }); // [B, B]
    let loss = softmaxCrossEntropy(scores, target);
    if (this.o.symmetric) loss = op.mul(op.add(loss, softmaxCrossEntropy(op.transpose(scores), target)), 0.5);
    return { loss, outputs: mode === 'eval' ? { scores } : undefined };
  }

  batches(data: readonly EmbedExample[], batchSize: number, rng: Rng | null): EmbedBatch[] {
    if (batchSize < 2) throw new Error('embed: in-batch negatives need a batch size of at least 2');
    const lengths = data.map((e) => Math.max(e.anchor.length, e.positive.length));
    return lengthGroupedBatches(lengths, batchSize, rng).map((index) => {
      const T = Math.max(1, ...index.map((i) => lengths[i]));
      const seqs = [...index.map((i) => data[i].anchor), ...index.map((i) => data[i].positive)];
      const { ids, mask } = padBatch(seqs, T, 0);
      return { B: index.length, T, ids, mask };
    });
  }

  feeds(b: EmbedBatch): Record<string, HostTensor> {
    return {
      input_ids: { data: b.ids, dims: [2 * b.B, b.T] },
      attention_mask: { data: b.mask, dims: [2 * b.B, b.T] },
      target: { data: BigInt64Array.from({ length: b.B }, (_, i) => BigInt(i)), dims: [b.B] },
    };
  }

  tokens(b: EmbedBatch): number {
    return 2 * b.B * b.T;
  }

  evaluate(results: { batch: EmbedBatch; out: Record<string, HostTensor> }[]): Record<string, number> {
    let hits = 0, rr = 0, n = 0, lossSum = 0;
    for (const { batch: b, out } of results) {
      const s = out.scores.data as Float32Array;
      for (let i = 0; i < b.B; i++) {
        const own = s[i * b.B + i];
        let rank = 1;
        for (let j = 0; j < b.B; j++) if (j !== i && s[i * b.B + j] >= own) rank++;
        if (rank === 1) hits++;
        rr += 1 / rank;
        n++;
      }
      lossSum += Number(out.loss.data[0]) * b.B;
    }
    return { accuracy: hits / Math.max(1, n), mrr: rr / Math.max(1, n), loss: lossSum / Math.max(1, n) };
  }
}
