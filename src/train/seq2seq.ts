// Seq2seq (T5/BART) training pieces: the loss (HF labels, −100 ignored,
// decoder inputs = labels shifted right behind decoder_start_token_id), the
// batch, and the fused step graph (loss + every trainable gradient in one run).

import { grad } from '../autodiff/grad.ts';
import { Graph, Value } from '../graph/ir.ts';
import { AdapterSet } from '../adapters/inject.ts';
import { AdamW } from '../optim/adamw.ts';
import { CompiledGraph, HostTensor } from '../runtime/session.ts';
import { plainLinear } from '../models/linear.ts';
import { shiftTokensRight, type Seq2SeqModel } from '../models/seq2seq.ts';
import { IGNORE_INDEX } from '../models/types.ts';
import { causalLmLoss } from './causal_lm.ts';

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

export interface Seq2SeqGraph {
  graph: Graph;
  trainable: string[];
}

/** Inputs input_ids / attention_mask [B,S], decoder_input_ids / labels [B,T]; outputs loss (and grad.<param> in train mode). */
export function buildSeq2SeqGraph(model: Seq2SeqModel, adapters: AdapterSet | null, mode: 'train' | 'eval'): Seq2SeqGraph {
  const g = new Graph(`${model.name}-seq2seq-${mode}`);
  const inputIds = g.input('input_ids', 'int64', ['B', 'S']);
  const attentionMask = g.input('attention_mask', 'float32', ['B', 'S']);
  const decoderInputIds = g.input('decoder_input_ids', 'int64', ['B', 'T']);
  const labels = g.input('labels', 'int64', ['B', 'T']);
  const linear = adapters ? adapters.linear({ training: mode === 'train' }) : plainLinear;
  const enc = model.encode(g, { inputIds, attentionMask }, linear);
  const cross = model.crossKv(g, enc, linear);
  const { logits } = model.decode(g, { decoderInputIds, encoderAttentionMask: attentionMask, cross }, linear);
  const loss = seq2seqLoss(logits, labels);
  g.output('loss', loss);
  if (mode === 'eval') return { graph: g, trainable: [] };
  const params = g.params();
  if (params.length === 0) throw new Error('seq2seq training: no trainable parameters (attach an adapter)');
  const grads = grad(loss, params);
  params.forEach((p, i) => g.output(`grad.${p.leaf!.name}`, grads[i]));
  return { graph: g, trainable: params.map((p) => p.leaf!.name) };
}

/** Feeds of one batch for the train/eval graph (adapter params included; no adapter dropout). */
export function seq2seqFeeds(model: Seq2SeqModel, batch: Seq2SeqBatch, adapters: AdapterSet | null): Record<string, HostTensor> {
  const c = model.config;
  const f: Record<string, HostTensor> = {
    input_ids: { data: batch.inputIds, dims: [batch.B, batch.S] },
    attention_mask: { data: batch.attentionMask, dims: [batch.B, batch.S] },
    decoder_input_ids: { data: shiftTokensRight(batch.labels, batch.B, batch.T, c.decoderStartTokenId, c.padTokenId), dims: [batch.B, batch.T] },
    labels: { data: batch.labels, dims: [batch.B, batch.T] },
  };
  if (adapters) for (const [k, v] of adapters.params) f[k] = { data: v, dims: adapters.shapes.get(k)! };
  return f;
}

/** A plain LoRA training loop (AdamW) over `batches` (cycled); returns every step's loss. */
export async function trainSeq2Seq(model: Seq2SeqModel, adapters: AdapterSet, batches: Seq2SeqBatch[], o: { lr: number; steps: number; weightDecay?: number; threads?: number }): Promise<number[]> {
  const { graph } = buildSeq2SeqGraph(model, adapters, 'train');
  const cg = await CompiledGraph.compile(graph, { threads: o.threads });
  const opt = new AdamW(adapters.params, { lr: o.lr, weightDecay: o.weightDecay ?? 0 });
  const losses: number[] = [];
  try {
    for (let step = 0; step < o.steps; step++) {
      const out = await cg.run(seq2seqFeeds(model, batches[step % batches.length], adapters));
      const loss = Number(out.loss.data[0]);
      if (!Number.isFinite(loss)) throw new Error(`seq2seq training diverged: loss ${loss} at step ${step}`);
      const grads = new Map<string, Float32Array>();
      for (const k of adapters.params.keys()) grads.set(k, out[`grad.${k}`].data as Float32Array);
      opt.step(grads, o.lr);
      losses.push(loss);
    }
  } finally {
    await cg.release();
  }
  return losses;
}
