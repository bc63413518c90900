// Encoder-decoder (seq2seq) language models (T5; BART is not implemented yet):
// the interface seq2seq training and generation build on. The encoder runs
// once; its output is projected to per-layer cross-attention keys/values once
// (`crossKv`), and the decoder runs over those with an optional self-attention
// KV cache. Also: the seq2seq loss (HF labels, −100 ignored, decoder inputs =
// labels shifted right behind decoder_start_token_id), the fused LoRA training
// step (loss + every LoRA gradient in one run), and generation (greedy or seeded
// sampling through generate.ts's pickToken, stop tokens) with and
// without the decoder KV cache.
//
// Shapes: encoder ids / mask [B,S] (int64 / float32), decoder ids [B,T] int64,
// hidden [B,S,H], keys/values [B, heads, len, headDim].

import { grad } from '../autodiff/grad.ts';
import { Graph, Value } from '../graph/ir.ts';
import * as op from '../graph/ops.ts';
import { AdapterSet } from '../adapters/inject.ts';
import { AdamW } from '../optim/adamw.ts';
import { CompiledGraph, HostTensor } from '../runtime/session.ts';
import { causalLmLoss, IGNORE_INDEX } from '../train/causal_lm.ts';
import { Rng } from '../util/rng.ts';
import { KeyValue, plainLinear } from './decoder.ts';
import { pickToken, type SamplingOptions } from './generate.ts';
import type { LinearFn, LinearSite, WeightMap } from './types.ts';

export interface Seq2SeqConfig {
  modelType: string;
  vocabSize: number;
  hiddenSize: number;
  numHeads: number;
  headDim: number;
  numLayers: number;
  numDecoderLayers: number;
  decoderStartTokenId: number;
  padTokenId: number;
  eosTokenIds: number[];
}

export interface Seq2SeqDecodeInputs {
  /** [B,T] int64. */
  decoderInputIds: Value;
  /** Encoder attention mask [B,S] float32 (1 = real token). */
  encoderAttentionMask: Value;
  /** Per decoder layer cross-attention keys/values [B, heads, S, headDim] (from crossKv). */
  cross: KeyValue[];
  /** Per decoder layer self-attention cache [B, heads, P, headDim]. */
  past?: KeyValue[];
}

export interface Seq2SeqModel {
  name: string;
  config: Seq2SeqConfig;
  weights: WeightMap;
  /** Linear sites in build order, under PEFT module paths. */
  sites: LinearSite[];
  /** Sites that 'all-linear' leaves out (the output head). */
  headNames: string[];
  /** Encoder output [B,S,H]. */
  encode(g: Graph, inputs: { inputIds: Value; attentionMask: Value }, linear: LinearFn): Value;
  /** Cross-attention keys/values of every decoder layer, computed once from the encoder output. */
  crossKv(g: Graph, encoderHidden: Value, linear: LinearFn): KeyValue[];
  /** Decoder logits [B,T,V] (or [B,1,V] with logits 'last') and the present self-attention keys/values. */
  decode(g: Graph, inputs: Seq2SeqDecodeInputs, linear: LinearFn, opts?: { logits?: 'all' | 'last' }): { logits: Value; present: KeyValue[] };
  withWeights(weights: WeightMap): Seq2SeqModel;
}

/** HF's shift_tokens_right: decoder inputs = [start, labels[:-1]] with −100 → pad. */
export function shiftTokensRight(labels: ArrayLike<number | bigint>, B: number, T: number, startId: number, padId: number): BigInt64Array {
  const out = new BigInt64Array(B * T);
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++) {
      const v = t === 0 ? startId : Number(labels[b * T + t - 1]);
      out[b * T + t] = BigInt(v === IGNORE_INDEX ? padId : v);
    }
  return out;
}

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

export interface Seq2SeqGenerateOptions extends SamplingOptions {
  maxNewTokens: number;
  /** Default true. */
  useCache?: boolean;
  /** Stop once every row has produced a stop token (implied when `stopTokens` is given). */
  stopAtEos?: boolean;
  /** Tokens that end a row. Default: config eos_token_id. */
  stopTokens?: number[];
  /** Seed of the sampling Rng (default 0), as in the decoder generator. */
  seed?: number;
}

/**
 * Seq2seq generation for a batch of (right-padded) encoder inputs: greedy, or
 * sampling (temperature / top-k / top-p, seeded) through the decoder
 * generator's `pickToken`; one Rng draws for the unfinished rows in row order.
 * `useCache`: encode once, cross-attention keys/values once, then one-token
 * decoder steps with the self-attention KV cache; otherwise every step re-runs
 * the whole model over the decoded prefix. A row is finished once it produces a
 * stop token (later positions are padTokenId). Stops at maxNewTokens or, with
 * `stopAtEos` or explicit `stopTokens`, when every row has finished. Returns the
 * new tokens per row (stop token included).
 */
export class Seq2SeqGenerator {
  private graphs: Promise<{ enc: CompiledGraph; first: CompiledGraph; step: CompiledGraph; full: CompiledGraph }> | null = null;
  constructor(readonly model: Seq2SeqModel, readonly linear: LinearFn = plainLinear, readonly extraFeeds: Record<string, HostTensor> = {}) {}

  private build() {
    const m = this.model, c = m.config, L = c.numDecoderLayers;
    const enc = new Graph(`${m.name}-s2s-encode`);
    {
      const inputIds = enc.input('input_ids', 'int64', ['B', 'S']);
      const attentionMask = enc.input('attention_mask', 'float32', ['B', 'S']);
      const cross = m.crossKv(enc, m.encode(enc, { inputIds, attentionMask }, this.linear), this.linear);
      cross.forEach((kv, i) => { enc.output(`cross.${i}.key`, kv.key); enc.output(`cross.${i}.value`, kv.value); });
    }
    const dec = (name: string, withPast: boolean) => {
      const g = new Graph(`${m.name}-s2s-${name}`);
      const decoderInputIds = g.input('decoder_input_ids', 'int64', ['B', 'T']);
      const encoderAttentionMask = g.input('attention_mask', 'float32', ['B', 'S']);
      const kvIn = (p: string, len: string) => Array.from({ length: L }, (_, i) => ({
        key: g.input(`${p}.${i}.key`, 'float32', ['B', c.numHeads, len, c.headDim]),
        value: g.input(`${p}.${i}.value`, 'float32', ['B', c.numHeads, len, c.headDim]),
      }));
      const cross = kvIn('cross', 'S');
      const past = withPast ? kvIn('past', 'P') : undefined;
      const out = m.decode(g, { decoderInputIds, encoderAttentionMask, cross, past }, this.linear, { logits: 'last' });
      g.output('logits', out.logits);
      out.present.forEach((kv, i) => { g.output(`present.${i}.key`, kv.key); g.output(`present.${i}.value`, kv.value); });
      return g;
    };
    const full = new Graph(`${m.name}-s2s-full`);
    {
      const inputIds = full.input('input_ids', 'int64', ['B', 'S']);
      const attentionMask = full.input('attention_mask', 'float32', ['B', 'S']);
      const decoderInputIds = full.input('decoder_input_ids', 'int64', ['B', 'T']);
      const cross = m.crossKv(full, m.encode(full, { inputIds, attentionMask }, this.linear), this.linear);
      full.output('logits', m.decode(full, { decoderInputIds, encoderAttentionMask: attentionMask, cross }, this.linear, { logits: 'last' }).logits);
    }
    return (async () => ({
      enc: await CompiledGraph.compile(enc, { threads: 1 }),
      first: await CompiledGraph.compile(dec('first', false), { threads: 1 }),
      step: await CompiledGraph.compile(dec('step', true), { threads: 1 }),
      full: await CompiledGraph.compile(full, { threads: 1 }),
    }))();
  }

  async generate(inputIds: number[][], opts: Seq2SeqGenerateOptions): Promise<number[][]> {
    this.graphs ??= this.build();
    const gs = await this.graphs;
    const c = this.model.config, V = c.vocabSize, B = inputIds.length, S = Math.max(...inputIds.map((r) => r.length));
    const ids = new BigInt64Array(B * S).fill(BigInt(c.padTokenId));
    const mask = new Float32Array(B * S);
    inputIds.forEach((r, b) => r.forEach((t, s) => { ids[b * S + s] = BigInt(t); mask[b * S + s] = 1; }));
    const encFeeds = { input_ids: { data: ids, dims: [B, S] }, attention_mask: { data: mask, dims: [B, S] } };
    const seqs: number[][] = inputIds.map(() => [c.decoderStartTokenId]);
    const done = new Array(B).fill(false);
    const stop = new Set(opts.stopTokens ?? c.eosTokenIds);
    const stopEarly = opts.stopAtEos || opts.stopTokens !== undefined;
    const rng = new Rng(opts.seed ?? 0);
    let cache: Record<string, HostTensor> = {};
    let cross: Record<string, HostTensor> = {};
    if (opts.useCache !== false) cross = await gs.enc.run({ ...this.extraFeeds, ...encFeeds });
    for (let n = 0; n < opts.maxNewTokens; n++) {
      let logits: HostTensor;
      if (opts.useCache === false) {
        const T = seqs[0].length;
        const dec = BigInt64Array.from(seqs.flat(), BigInt);
        logits = (await gs.full.run({ ...this.extraFeeds, ...encFeeds, decoder_input_ids: { data: dec, dims: [B, T] } }, ['logits'])).logits;
      } else {
        const dec = BigInt64Array.from(seqs.map((s) => BigInt(s[s.length - 1])));
        const feeds = { ...this.extraFeeds, attention_mask: encFeeds.attention_mask, decoder_input_ids: { data: dec, dims: [B, 1] }, ...cross, ...cache };
        const out = await (n === 0 ? gs.first : gs.step).run(feeds);
        logits = out.logits;
        cache = {};
        for (let i = 0; i < c.numDecoderLayers; i++) {
          cache[`past.${i}.key`] = out[`present.${i}.key`];
          cache[`past.${i}.value`] = out[`present.${i}.value`];
        }
      }
      const d = logits.data as Float32Array;
      for (let b = 0; b < B; b++) {
        if (done[b]) {
          seqs[b].push(c.padTokenId);
          continue;
        }
        const t = pickToken(d.subarray(b * V, (b + 1) * V), opts, rng);
        seqs[b].push(t);
        if (stop.has(t)) done[b] = true;
      }
      if (stopEarly && done.every(Boolean)) break;
    }
    return seqs.map((s) => s.slice(1));
  }

  async release() {
    if (!this.graphs) return;
    const gs = await this.graphs;
    for (const cg of Object.values(gs)) await cg.release();
    this.graphs = null;
  }
}
