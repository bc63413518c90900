// Causal language modeling on a decoder (GPT-2, Llama, Qwen2, Mistral):
// next-token cross-entropy with Hugging Face's label convention (the prompt
// part of an example and the padding are −100: no loss), mean over the tokens
// that count. Validation: the same mean over every validation token
// ('loss', lower is better) and its perplexity.

import type { Graph } from '../../graph/ir.ts';
import type { HfTokenizer } from '../../io/hf.ts';
import type { CausalLmRecord } from '../../data/records.ts';
import type { DecoderModel } from '../../models/decoder.ts';
import type { LinearFn } from '../../models/types.ts';
import type { HostTensor } from '../../runtime/session.ts';
import { adapterFeeds } from '../../adapters/feeds.ts';
import type { AdapterSet } from '../../adapters/inject.ts';
import * as op from '../../graph/ops.ts';
import type { Value } from '../../graph/ir.ts';
import { plainLinear } from '../../models/linear.ts';
import { IGNORE_INDEX } from '../../models/types.ts';
import { Rng } from '../../util/rng.ts';
import { buildTaskGraph } from '../loop.ts';
import type { TaskGraph, TrainTask, TrainTensor } from '../task.ts';
import { lengthGroupedBatches, tokenMeanLoss } from './lm.ts';

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
    return causalLmFeeds(b, null);
  }

  tokens(b: CausalLmTaskBatch): number {
    return b.B * b.T;
  }

  evaluate(results: { batch: CausalLmTaskBatch; out: Record<string, HostTensor> }[]): Record<string, number> {
    return tokenMeanLoss(results);
  }
}

/** Token ids with the prompt part marked (its labels become −100); truncated to maxLength. */
// Completions, texts and chat turns end with the tokenizer's EOS token (added
// unless the chat template already ends with it), so the model learns to stop.
export function encodeCausalLm(records: CausalLmRecord[], tok: HfTokenizer, maxLength: number): CausalLmExample[] {
  const eos = tok.eosTokenId !== undefined ? [tok.eosTokenId] : [];
  const out: CausalLmExample[] = [];
  for (const r of records) {
    let ids: number[], promptLength: number;
    if ('text' in r) {
      ids = [...tok.encode(r.text), ...eos];
      promptLength = 0;
    } else if ('prompt' in r) {
      const p = tok.encode(r.prompt);
      ids = [...p, ...tok.encode(r.completion, { addSpecialTokens: false }), ...eos];
      promptLength = p.length;
    } else {
      const p = tok.encode(tok.applyChatTemplate(r.messages.slice(0, -1), { addGenerationPrompt: true }), { addSpecialTokens: false });
      ids = tok.encode(tok.applyChatTemplate(r.messages), { addSpecialTokens: false });
      if (eos.length && ids[ids.length - 1] !== eos[0]) ids.push(eos[0]); // templates that do not close the turn with EOS
      promptLength = p.length;
      if (!p.every((t, i) => ids[i] === t)) promptLength = 0; // template renders the prompt differently in context: train on all
    }
    ids = ids.slice(0, maxLength);
    if (ids.length > promptLength && ids.length >= 2) out.push({ ids, promptLength: Math.min(promptLength, ids.length) });
  }
  return out;
}

/** The task's graph over a decoder with an adapter (or none): inputs input_ids / attention_mask / targets [B,T]; loss (+ grad.<param> in train mode). */
export function buildCausalLmGraph(model: DecoderModel, adapters: AdapterSet | null, mode: 'train' | 'eval', opts: { gradCheckpoint?: boolean } = {}) {
  return buildTaskGraph(new CausalLmTask(model, { padId: 0 }), adapters ? adapters.linear({ training: mode === 'train' }) : plainLinear, mode, opts);
}

/** Feeds of one batch for that graph: the batch, the adapter's inputs and (with a dropout seed) its masks. */
export function causalLmFeeds(batch: CausalLmBatch, adapters: AdapterSet | null, dropoutSeed?: string): Record<string, HostTensor> {
  const f: Record<string, HostTensor> = {
    input_ids: { data: batch.ids, dims: [batch.B, batch.T] },
    attention_mask: { data: batch.mask, dims: [batch.B, batch.T] },
    targets: { data: shiftLabels(batch.labels, batch.B, batch.T), dims: [batch.B, batch.T] },
  };
  const training = dropoutSeed !== undefined;
  return Object.assign(f, adapterFeeds(adapters, { training, dropout: training ? { batch: f, rng: new Rng(dropoutSeed) } : undefined }));
}
