// Causal language modeling on a decoder (GPT-2, Llama, Qwen2, Mistral):
// next-token cross-entropy with Hugging Face's label convention (the prompt
// part of an example and the padding are −100: no loss), mean over the tokens
// that count. Validation: the same mean over every validation token
// ('loss', lower is better) and its perplexity.

import type { Graph } from '../../graph/ir.ts';
import type { DecoderModel } from '../../models/decoder.ts';
import type { LinearFn } from '../../models/types.ts';
import type { HostTensor } from '../../runtime/session.ts';
import type { Rng } from '../../util/rng.ts';
import { causalLmLoss, makeCausalLmBatch, shiftLabels, type CausalLmBatch, type CausalLmExample } from '../causal_lm.ts';
import type { TaskGraph, TrainTask, TrainTensor } from '../task.ts';
import { lengthGroupedBatches } from './lm_batches.ts';

export interface CausalLmTaskBatch extends CausalLmBatch {
  /** Tokens whose next token is predicted (the loss's denominator). */
  targets: number;
}

export class CausalLmTask implements TrainTask<CausalLmExample, CausalLmTaskBatch> {
  readonly kind = 'causal-lm';
  readonly peftTaskType = 'CAUSAL_LM';
  readonly metric = { name: 'loss', higherIsBetter: false };
  readonly params = new Map<string, TrainTensor>();
  readonly name: string;

  constructor(readonly model: DecoderModel, readonly o: { padId: number }) {
    this.name = `${model.name}-causal-lm`;
  }

  get weights() {
    return this.model.weights;
  }

  build(g: Graph, linear: LinearFn): TaskGraph {
    const inputIds = g.input('input_ids', 'int64', ['B', 'T']);
    const attentionMask = g.input('attention_mask', 'float32', ['B', 'T']);
    const targets = g.input('targets', 'int64', ['B', 'T']);
    const { logits } = this.model.build(g, { inputIds, attentionMask }, linear);
    return { loss: causalLmLoss(logits, targets) };
  }

  batches(data: readonly CausalLmExample[], batchSize: number, rng: Rng | null): CausalLmTaskBatch[] {
    return lengthGroupedBatches(data.map((e) => e.ids.length), batchSize, rng).map((index) => {
      const b = makeCausalLmBatch(index.map((i) => data[i]), this.o.padId);
      let targets = 0;
      for (let r = 0; r < b.B; r++) for (let t = 1; t < b.T; t++) if (b.labels[r * b.T + t] >= 0n) targets++;
      return { ...b, targets };
    });
  }

  feeds(b: CausalLmTaskBatch): Record<string, HostTensor> {
    return {
      input_ids: { data: b.ids, dims: [b.B, b.T] },
      attention_mask: { data: b.mask, dims: [b.B, b.T] },
      targets: { data: shiftLabels(b.labels, b.B, b.T), dims: [b.B, b.T] },
    };
  }

  tokens(b: CausalLmTaskBatch): number {
    return b.B * b.T;
  }

  evaluate(results: { batch: CausalLmTaskBatch; out: Record<string, HostTensor> }[]): Record<string, number> {
    let sum = 0, n = 0;
    for (const { batch, out } of results) {
      sum += Number(out.loss.data[0]) * batch.targets;
      n += batch.targets;
    }
    const loss = n ? sum / n : NaN;
    return { loss, perplexity: Math.exp(loss), tokens: n };
  }
}
