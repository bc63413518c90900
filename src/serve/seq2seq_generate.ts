// Seq2seq (T5/BART) generation: greedy or seeded sampling through
// generate.ts's pickToken, or beam search (beam_search.ts); HF's logits
// processors (no-repeat n-grams, minimum length, forced BOS/EOS); stop tokens;
// with and without the decoder KV cache.

import { Graph } from '../graph/ir.ts';
import type { AdapterSet } from '../adapters/inject.ts';
import { adapterFeeds } from '../adapters/feeds.ts';
import { CompiledGraph, HostTensor, type SessionOptions } from '../runtime/session.ts';
import { Rng } from '../util/rng.ts';
import { plainLinear } from '../models/linear.ts';
import type { Seq2SeqModel } from '../models/seq2seq.ts';
import type { LinearFn } from '../models/types.ts';
import { pickToken, type SamplingOptions } from './generate.ts';
import { beamSearch, type BeamHypothesis, type BeamStep } from './beam_search.ts';
import { hasProcessors, processScores } from './logits_processors.ts';

export interface Seq2SeqGenerateOptions extends SamplingOptions {
  maxNewTokens: number;
  /** End tokens are held back until this many tokens are generated (HF min_new_tokens; min_length − 1). */
  minNewTokens?: number;
  /** > 1: beam search (HF semantics); 1 (default): greedy or sampling. */
  numBeams?: number;
  /** Beam search: hypothesis score = log-probability / length^lengthPenalty (default 1). */
  lengthPenalty?: number;
  /** Beam search: true, false (default, HF's heuristic) or 'never'. */
  earlyStopping?: boolean | 'never';
  /** Never repeat an n-gram of this size within the output (0 = off). */
  noRepeatNgramSize?: number;
  /** Beam search (`beamSearch` only): hypotheses returned per input. */
  numReturnSequences?: number;
  /** Force this token first (BART's forced_bos_token_id). */
  forcedBosTokenId?: number;
  /** Force this token at the last position maxNewTokens allows (BART's forced_eos_token_id). */
  forcedEosTokenId?: number;
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

  /**
   * A decoder stepper over the inputs, each repeated `repeat` times (beams):
   * encodes once (cross-attention keys/values computed for B rows and copied
   * per beam); every call feeds one new token per row and returns the last
   * logits [N, V]. `reorder[r]` = the row that row r continues (beam search),
   * applied to the decoded prefixes and the self-attention cache.
   */
  private async stepper(inputIds: number[][], repeat: number, useCache: boolean): Promise<BeamStep> {
    const gs = await (this.graphs ??= this.build());
    const c = this.model.config, B = inputIds.length, N = B * repeat;
    if (!B) throw new Error('generate: no inputs');
    for (const r of inputIds) {
      if (!r.length) throw new Error('generate: an input is empty (the encoder needs at least one token, e.g. the end token)');
      for (const t of r) if (!(Number.isInteger(t) && t >= 0 && t < c.vocabSize)) throw new Error(`generate: token id ${t} is outside the vocabulary (0..${c.vocabSize - 1})`);
    }
    const S = Math.max(...inputIds.map((r) => r.length));
    const ids = new BigInt64Array(N * S).fill(BigInt(c.padTokenId));
    const mask = new Float32Array(N * S);
    for (let n = 0; n < N; n++) inputIds[Math.floor(n / repeat)].forEach((t, s) => { ids[n * S + s] = BigInt(t); mask[n * S + s] = 1; });
    const encFeeds = { input_ids: { data: ids, dims: [N, S] }, attention_mask: { data: mask, dims: [N, S] } };
    let cross: Record<string, HostTensor> = {};
    if (useCache) {
      // Encode the B distinct rows once, then copy each row's keys/values to its beams.
      const rows = Array.from({ length: B }, (_, b) => b * repeat);
      const once = await gs.enc.run({ ...this.extraFeeds, input_ids: { data: gatherRows(ids, S, rows), dims: [B, S] }, attention_mask: { data: gatherRows(mask, S, rows), dims: [B, S] } });
      const spread = Int32Array.from({ length: N }, (_, n) => Math.floor(n / repeat));
      for (const [k, v] of Object.entries(once)) cross[k] = { data: gatherRows(v.data as Float32Array, v.data.length / B, spread), dims: [N, ...v.dims.slice(1)] };
    }
    let prefixes: number[][] = Array.from({ length: N }, () => []);
    let cache: Record<string, HostTensor> | null = null;
    return async (last, reorder) => {
      if (reorder) {
        prefixes = Array.from(reorder, (r) => prefixes[r].slice());
        if (cache) for (const [k, v] of Object.entries(cache)) cache[k] = { data: gatherRows(v.data as Float32Array, v.data.length / N, reorder), dims: v.dims };
      }
      last.forEach((t, r) => prefixes[r].push(t));
      if (!useCache) {
        const T = prefixes[0].length;
        const dec = BigInt64Array.from(prefixes.flat(), BigInt);
        return (await gs.full.run({ ...this.extraFeeds, ...encFeeds, decoder_input_ids: { data: dec, dims: [N, T] } }, ['logits'])).logits.data as Float32Array;
      }
      const dec = BigInt64Array.from(last, BigInt);
      const out = await (cache ? gs.step : gs.first).run({ ...this.extraFeeds, attention_mask: encFeeds.attention_mask, decoder_input_ids: { data: dec, dims: [N, 1] }, ...cross, ...(cache ?? {}) });
      cache = {};
      for (let i = 0; i < c.numDecoderLayers; i++) {
        cache[`past.${i}.key`] = out[`present.${i}.key`];
        cache[`past.${i}.value`] = out[`present.${i}.value`];
      }
      return out.logits.data as Float32Array;
    };
  }

  /** Beam search (HF semantics, src/serve/beam_search.ts): `numReturnSequences` hypotheses per input, best first, with scores. */
  async beamSearch(inputIds: number[][], opts: Seq2SeqGenerateOptions & { numBeams: number }): Promise<BeamHypothesis[][]> {
    const c = this.model.config;
    const step = await this.stepper(inputIds, opts.numBeams, opts.useCache !== false);
    return beamSearch(step, inputIds.length, c.vocabSize, {
      ...opts,
      maxLength: opts.maxNewTokens + 1,
      minLength: opts.minNewTokens !== undefined ? opts.minNewTokens + 1 : undefined,
      eosTokenIds: opts.stopTokens ?? c.eosTokenIds,
      padTokenId: c.padTokenId,
      decoderStartTokenId: c.decoderStartTokenId,
    });
  }

  async generate(inputIds: number[][], opts: Seq2SeqGenerateOptions): Promise<number[][]> {
    if ((opts.numBeams ?? 1) > 1) {
      if (opts.doSample) throw new Error('generate: beam sampling is not supported; use numBeams 1 with doSample, or beams without');
      return (await this.beamSearch(inputIds, { ...opts, numBeams: opts.numBeams!, numReturnSequences: 1 })).map((h) => h[0].tokens);
    }
    const c = this.model.config, V = c.vocabSize, B = inputIds.length;
    const step = await this.stepper(inputIds, 1, opts.useCache !== false);
    const seqs: number[][] = inputIds.map(() => [c.decoderStartTokenId]);
    const done = new Array(B).fill(false);
    const stop = new Set(opts.stopTokens ?? c.eosTokenIds);
    const stopEarly = opts.stopAtEos || opts.stopTokens !== undefined;
    const rng = new Rng(opts.seed ?? 0);
    const proc = { ...opts, maxLength: opts.maxNewTokens + 1, minLength: opts.minNewTokens !== undefined ? opts.minNewTokens + 1 : undefined, eosTokenIds: [...stop] };
    const processed = hasProcessors(proc);
    for (let n = 0; n < opts.maxNewTokens; n++) {
      const d = await step(seqs.map((s) => s[s.length - 1]), null);
      for (let b = 0; b < B; b++) {
        if (done[b]) {
          seqs[b].push(c.padTokenId);
          continue;
        }
        let row = d.subarray(b * V, (b + 1) * V);
        if (processed) {
          row = Float32Array.from(row);
          processScores(row, seqs[b], proc);
        }
        const t = pickToken(row, opts, rng);
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

/** Rows `rows` of a row-major [*, width] array, as a new array [rows.length, width]. */
function gatherRows<T extends Float32Array | BigInt64Array>(data: T, width: number, rows: ArrayLike<number>): T {
  const out = new (data.constructor as { new (n: number): T })(rows.length * width);
  for (let r = 0; r < rows.length; r++) out.set(data.subarray(rows[r] * width, (rows[r] + 1) * width) as never, r * width);
  return out;
}
