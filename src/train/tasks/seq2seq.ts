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
import { makeSeq2SeqBatch, seq2seqFeeds, seq2seqLoss, type Seq2SeqBatch } from '../seq2seq.ts';
import type { TaskGraph, TrainTask, TrainTensor } from '../task.ts';
import { lengthGroupedBatches } from './lm_batches.ts';

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
    let sum = 0, n = 0;
    for (const { batch, out } of results) {
      sum += Number(out.loss.data[0]) * batch.targets;
      n += batch.targets;
    }
    const loss = n ? sum / n : NaN;
    return { loss, perplexity: Math.exp(loss), tokens: n };
  }
}
