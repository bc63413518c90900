// Cross-lingual alignment of a sentence encoder (multilingual knowledge
// distillation, Reimers & Gurevych 2020): the adapted model's embedding of a
// sentence in the target language is pulled onto the frozen base model's
// embedding of its English translation,
//
//   loss = mean_b ‖u(x_b) − t_b‖²,   u = the unit-length pooled embedding with the adapter,
//                                     t = the base model's unit-length embedding of the translation
//
// so that a language adapter trained this way maps German into the space the
// English task adapter was trained in (the bundled encoder has no masked-LM
// head to train a language adapter the usual way). Targets are computed once,
// before training, by the caller. Validation: bitext retrieval accuracy (each
// sentence's own translation is the nearest of the batch's targets), and the loss.

import * as op from '../../graph/ops.ts';
import type { Graph } from '../../graph/ir.ts';
import type { EncoderModel, LinearFn } from '../../models/types.ts';
import type { HostTensor } from '../../runtime/session.ts';
import type { Rng } from '../../util/rng.ts';
import { padBatch } from '../../data/batching.ts';
import type { TaskGraph, TrainTask, TrainTensor } from '../task.ts';
import { lengthGroupedBatches } from './lm.ts';

export interface AlignExample {
  ids: number[];
  /** The teacher's unit embedding of the translation. */
  target: Float32Array;
}

export interface AlignBatch {
  B: number;
  T: number;
  ids: BigInt64Array;
  mask: Float32Array;
  target: Float32Array;
}

export class AlignTask implements TrainTask<AlignExample, AlignBatch> {
  readonly kind = 'align';
  readonly peftTaskType = 'FEATURE_EXTRACTION';
  readonly metric = { name: 'accuracy', higherIsBetter: true };
  readonly params = new Map<string, TrainTensor>();
  readonly name: string;

  constructor(readonly model: EncoderModel) {
    this.name = `${model.name}-align`;
  }

  get weights() {
    return this.model.weights;
  }

  build(g: Graph, linear: LinearFn, mode: 'train' | 'eval'): TaskGraph {
    const H = this.model.hiddenSize;
    const inputIds = g.input('input_ids', 'int64', ['B', 'T']);
    const attentionMask = g.input('attention_mask', 'float32', ['B', 'T']);
    const target = g.input('target', 'float32', ['B', H]);
    const pooled = this.model.build(g, { inputIds, attentionMask }, linear);
    const unit = op.div(pooled, op.sqrt(op.max2(op.reduceSum(op.mul(pooled, pooled), [1], true), 1e-12)));
    const d = op.sub(unit, target);
    const loss = op.reduceMean(op.reduceSum(op.mul(d, d), [1], false), [0], false);
    return { loss, outputs: mode === 'eval' ? { scores: op.gemm(unit, target, { transB: true }) } : undefined };
  }

  batches(data: readonly AlignExample[], batchSize: number, rng: Rng | null): AlignBatch[] {
    const H = this.model.hiddenSize;
    return lengthGroupedBatches(data.map((e) => e.ids.length), batchSize, rng).map((index) => {
      const T = Math.max(1, ...index.map((i) => data[i].ids.length));
      const { ids, mask } = padBatch(index.map((i) => data[i].ids), T, 0);
      const target = new Float32Array(index.length * H);
      index.forEach((i, r) => {
        if (data[i].target.length !== H) throw new Error(`align example ${i}: target has ${data[i].target.length} numbers, the model's embedding ${H}`);
        target.set(data[i].target, r * H);
      });
      return { B: index.length, T, ids, mask, target };
    });
  }

  feeds(b: AlignBatch): Record<string, HostTensor> {
    return {
      input_ids: { data: b.ids, dims: [b.B, b.T] },
      attention_mask: { data: b.mask, dims: [b.B, b.T] },
      target: { data: b.target, dims: [b.B, this.model.hiddenSize] },
    };
  }

  tokens(b: AlignBatch): number {
    return b.B * b.T;
  }

  evaluate(results: { batch: AlignBatch; out: Record<string, HostTensor> }[]): Record<string, number> {
    let hits = 0, n = 0, lossSum = 0;
    for (const { batch: b, out } of results) {
      const s = out.scores.data as Float32Array;
      for (let i = 0; i < b.B; i++) {
        let best = 0;
        for (let j = 1; j < b.B; j++) if (s[i * b.B + j] > s[i * b.B + best]) best = j;
        if (best === i) hits++;
        n++;
      }
      lossSum += Number(out.loss.data[0]) * b.B;
    }
    return { accuracy: hits / Math.max(1, n), loss: lossSum / Math.max(1, n) };
  }
}
