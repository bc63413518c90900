// Seq2seq (T5/BART) generation: greedy or seeded sampling through
// generate.ts's pickToken, stop tokens, with and without the decoder KV cache.

import { Graph } from '../graph/ir.ts';
import type { AdapterSet } from '../adapters/inject.ts';
import { adapterFeeds } from '../adapters/feeds.ts';
import { CompiledGraph, HostTensor, type SessionOptions } from '../runtime/session.ts';
import { Rng } from '../util/rng.ts';
import { plainLinear } from '../models/linear.ts';
import type { Seq2SeqModel } from '../models/seq2seq.ts';
import type { LinearFn } from '../models/types.ts';
import { pickToken, type SamplingOptions } from './generate.ts';

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
  private readonly linear: LinearFn = plainLinear;
  /** The adapter's inputs (parameters, method state) fed to every run. */
  private readonly extraFeeds: Record<string, HostTensor> = {};

  /** `adapters` run unmerged, as their own sub-graphs (every method, tied weights included). */
  constructor(readonly model: Seq2SeqModel, adapters: AdapterSet | null = null, readonly session: SessionOptions = this.session) {
    if (adapters?.enabled) {
      this.linear = adapters.linear({ training: false });
      this.extraFeeds = adapterFeeds(adapters, { training: false });
    }
  }

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
      enc: await CompiledGraph.compile(enc, this.session),
      first: await CompiledGraph.compile(dec('first', false), this.session),
      step: await CompiledGraph.compile(dec('step', true), this.session),
      full: await CompiledGraph.compile(full, this.session),
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
