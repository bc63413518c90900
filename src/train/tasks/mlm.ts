// Masked-LM on a BERT-family folder with its MLM head (BertForMaskedLM): how
// the cross-lingual ranking adapters' language adapters are trained (masked-LM
// on the language's text, base frozen). Masking as Hugging Face's
// DataCollatorForLanguageModeling: each non-special token is chosen with
// probability 0.15; a chosen token becomes [MASK] (80%), a random token (10%)
// or stays (10%); the loss is the cross-entropy at the chosen positions only
// (labels −100 elsewhere), averaged over them. Training batches draw their
// masks from the epoch's seeded generator (a resumed run sees the same
// masks); validation uses one fixed mask per batch.

import type { Graph } from '../../graph/ir.ts';
import * as op from '../../graph/ops.ts';
import type { BertModel } from '../../models/bert.ts';
import { IGNORE_INDEX, type LinearFn } from '../../models/types.ts';
import type { HostTensor } from '../../runtime/session.ts';
import { Rng } from '../../util/rng.ts';
import { padBatch } from '../../data/batching.ts';
import type { TaskGraph, TrainTask, TrainTensor } from '../task.ts';
import { causalLmLoss } from './causal_lm.ts';
import { lengthGroupedBatches, tokenMeanLoss } from './lm.ts';

export interface MlmOptions {
  maskId: number;
  /** Token ids never masked ([CLS], [SEP], [PAD]...). */
  specialIds: number[];
  vocabSize: number;
  /** Chosen fraction (0.15). */
  probability?: number;
  /** Seed of the validation masks. */
  seed: number;
}

export interface MlmBatch {
  B: number;
  T: number;
  ids: BigInt64Array;
  mask: Float32Array;
  labels: BigInt64Array;
  /** Chosen positions (the loss's denominator). */
  targets: number;
}

/** DataCollatorForLanguageModeling's masking of one sequence: the input ids and the labels (−100 where not chosen). */
export function maskTokens(ids: readonly number[], o: Pick<MlmOptions, 'maskId' | 'specialIds' | 'vocabSize' | 'probability'>, rng: Rng): { input: number[]; labels: number[] } {
  const p = o.probability ?? 0.15;
  const special = new Set(o.specialIds);
  const input = [...ids], labels = ids.map(() => IGNORE_INDEX);
  ids.forEach((t, i) => {
    if (special.has(t) || !(rng.uniform() < p)) return;
    labels[i] = t;
    const r = rng.uniform();
    if (r < 0.8) input[i] = o.maskId;
    else if (r < 0.9) input[i] = Math.floor(rng.uniform() * o.vocabSize);
  });
  return { input, labels };
}

export class MaskedLmTask implements TrainTask<number[], MlmBatch> {
  readonly kind = 'mlm';
  readonly peftTaskType = 'FEATURE_EXTRACTION';
  readonly metric = { name: 'loss', higherIsBetter: false };
  readonly params = new Map<string, TrainTensor>();
  readonly name: string;

  constructor(readonly model: BertModel, readonly o: MlmOptions) {
    if (!model.hasMlmHead) {
      const why = model.config.family === 'bert' ? '' : ` (a ${model.config.family} folder: its masked-LM head is not supported yet)`;
      throw new Error(`${model.options.source ?? model.name}: no masked-LM head (BertForMaskedLM's cls.predictions.*)${why}: --task mlm needs a BERT folder saved with its MLM head`);
    }
    this.name = `${model.name}-mlm`;
  }

  get weights() {
    return this.model.weights;
  }

  build(g: Graph, linear: LinearFn, _mode: 'train' | 'eval'): TaskGraph {
    const inputIds = g.input('input_ids', 'int64', ['B', 'T']);
    const attentionMask = g.input('attention_mask', 'float32', ['B', 'T']);
    const labels = g.input('labels', 'int64', ['B', 'T']);
    const logits = this.model.buildMlmLogits(g, { inputIds, attentionMask }, linear); // [B·T, V]
    const V = this.o.vocabSize;
    return { loss: causalLmLoss(op.reshapeTo(logits, op.concat([op.shapeOf(inputIds), g.ints([V])], 0), ['B', 'T', V]), labels) };
  }

  batches(data: readonly number[][], batchSize: number, rng: Rng | null): MlmBatch[] {
    return lengthGroupedBatches(data.map((d) => d.length), batchSize, rng).map((index, bi) => {
      const r = rng ? rng.fork(`mask-${bi}`) : new Rng(this.o.seed).fork(`eval-mask-${index[0]}`);
      const masked = index.map((i) => maskTokens(data[i], this.o, r));
      const T = Math.max(1, ...index.map((i) => data[i].length));
      const { ids, mask } = padBatch(masked.map((m) => m.input), T, 0);
      const labels = new BigInt64Array(index.length * T).fill(BigInt(IGNORE_INDEX));
      let targets = 0;
      masked.forEach((m, b) => m.labels.forEach((l, t) => {
        labels[b * T + t] = BigInt(l);
        if (l !== IGNORE_INDEX) targets++;
      }));
      return { B: index.length, T, ids, mask, labels, targets };
    });
  }

  feeds(b: MlmBatch): Record<string, HostTensor> {
    return {
      input_ids: { data: b.ids, dims: [b.B, b.T] },
      attention_mask: { data: b.mask, dims: [b.B, b.T] },
      labels: { data: b.labels, dims: [b.B, b.T] },
    };
  }

  tokens(b: MlmBatch): number {
    return b.B * b.T;
  }

  evaluate(results: { batch: MlmBatch; out: Record<string, HostTensor> }[]): Record<string, number> {
    return tokenMeanLoss(results);
  }
}
