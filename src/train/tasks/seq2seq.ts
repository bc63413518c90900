// Sequence-to-sequence training on an encoder-decoder (T5, BART): the
// decoder reads the target shifted right behind decoder_start_token_id and
// predicts every target token (teacher forcing); cross-entropy over the target
// tokens. Validation: the mean over every validation target token ('loss',
// lower is better) and its perplexity.

import type { Graph } from '../../graph/ir.ts';
import { seq2seqLogits } from '../../models/forward.ts';
import type { Seq2SeqModel } from '../../models/seq2seq.ts';
import type { LinearFn } from '../../models/types.ts';
import type { HostTensor } from '../../runtime/session.ts';
import type { Rng } from '../../util/rng.ts';
import { adapterFeeds } from '../../adapters/feeds.ts';
import type { AdapterSet } from '../../adapters/inject.ts';
import type { Value } from '../../graph/ir.ts';
import { plainLinear } from '../../models/linear.ts';
import { shiftTokensRight } from '../../models/seq2seq.ts';
import { IGNORE_INDEX } from '../../models/types.ts';
import { buildTaskGraph } from '../loop.ts';
import { causalLmLoss } from './causal_lm.ts';
import type { TaskGraph, TrainTask, TrainTensor } from '../task.ts';
import { lengthGroupedBatches, tokenMeanLoss } from './lm.ts';

/** Mean cross-entropy of logits [B,T,V] against labels [B,T] (entries < 0 ignored). */
export function seq2seqLoss(logits: Value, labels: Value): Value {
  return causalLmLoss(logits, labels);
}

export interface Seq2SeqBatch {
  B: number;
  S: number;
  T: number;
  inputIds: BigInt64Array;
  attentionMask: Float32Array;
  /** HF labels [B,T] (−100 = ignored). */
  labels: BigInt64Array;
}

/** Right-padded batch from (source ids, target ids) pairs. */
export function makeSeq2SeqBatch(examples: { src: number[]; tgt: number[] }[], padId = 0): Seq2SeqBatch {
  const B = examples.length, S = Math.max(1, ...examples.map((e) => e.src.length)), T = Math.max(1, ...examples.map((e) => e.tgt.length));
  const inputIds = new BigInt64Array(B * S).fill(BigInt(padId));
  const attentionMask = new Float32Array(B * S);
  const labels = new BigInt64Array(B * T).fill(BigInt(IGNORE_INDEX));
  examples.forEach((e, b) => {
    e.src.forEach((id, s) => { inputIds[b * S + s] = BigInt(id); attentionMask[b * S + s] = 1; });
    e.tgt.forEach((id, t) => { labels[b * T + t] = BigInt(id); });
  });
  return { B, S, T, inputIds, attentionMask, labels };
}

/** Source and target token ids (the target ends with EOS). */
export interface Seq2SeqExample {
  src: number[];
  tgt: number[];
}

export interface Seq2SeqTaskBatch extends Seq2SeqBatch {
  targets: number;
}

export class Seq2SeqTask implements TrainTask<Seq2SeqExample, Seq2SeqTaskBatch> {
  readonly kind = 'seq2seq';
  readonly peftTaskType = 'SEQ_2_SEQ_LM';
  readonly metric = { name: 'loss', higherIsBetter: false };
  readonly params = new Map<string, TrainTensor>();
  readonly name: string;

  constructor(readonly model: Seq2SeqModel) {
    this.name = `${model.name}-seq2seq`;
  }

  get weights() {
    return this.model.weights;
  }

  build(g: Graph, linear: LinearFn): TaskGraph {
    const inputIds = g.input('input_ids', 'int64', ['B', 'S']);
    const attentionMask = g.input('attention_mask', 'float32', ['B', 'S']);
    const decoderInputIds = g.input('decoder_input_ids', 'int64', ['B', 'T']);
    const labels = g.input('labels', 'int64', ['B', 'T']);
    return { loss: seq2seqLoss(seq2seqLogits(this.model, g, inputIds, attentionMask, decoderInputIds, linear), labels) };
  }

  batches(data: readonly Seq2SeqExample[], batchSize: number, rng: Rng | null): Seq2SeqTaskBatch[] {
    return lengthGroupedBatches(data.map((e) => e.src.length + e.tgt.length), batchSize, rng).map((index) => {
      const ex = index.map((i) => data[i]);
      return { ...makeSeq2SeqBatch(ex, this.model.config.padTokenId), targets: ex.reduce((s, e) => s + e.tgt.length, 0) };
    });
  }

  feeds(b: Seq2SeqTaskBatch): Record<string, HostTensor> {
    return seq2seqFeeds(this.model, b, null);
  }

  tokens(b: Seq2SeqTaskBatch): number {
    return b.B * (b.S + b.T);
  }

  evaluate(results: { batch: Seq2SeqTaskBatch; out: Record<string, HostTensor> }[]): Record<string, number> {
    return tokenMeanLoss(results);
  }
}

/** The task's graph over an encoder-decoder with an adapter (or none): inputs input_ids / attention_mask [B,S], decoder_input_ids / labels [B,T]; loss (+ grad.<param> in train mode). */
export function buildSeq2SeqGraph(model: Seq2SeqModel, adapters: AdapterSet | null, mode: 'train' | 'eval') {
  return buildTaskGraph(new Seq2SeqTask(model), adapters ? adapters.linear({ training: mode === 'train' }) : plainLinear, mode);
}

/** Feeds of one batch for the train/eval graph (the adapter's inputs included; no dropout). */
export function seq2seqFeeds(model: Seq2SeqModel, batch: Seq2SeqBatch, adapters: AdapterSet | null): Record<string, HostTensor> {
  const c = model.config;
  const f: Record<string, HostTensor> = {
    input_ids: { data: batch.inputIds, dims: [batch.B, batch.S] },
    attention_mask: { data: batch.attentionMask, dims: [batch.B, batch.S] },
    decoder_input_ids: { data: shiftTokensRight(batch.labels, batch.B, batch.T, c.decoderStartTokenId, c.padTokenId), dims: [batch.B, batch.T] },
    labels: { data: batch.labels, dims: [batch.B, batch.T] },
  };
  return Object.assign(f, adapterFeeds(adapters, { training: false }));
}
