// Text generation for decoder models: greedy and sampling (temperature, top-k,
// top-p, seeded), stop tokens, max new tokens. With the KV cache (default) a
// prefill graph runs the prompt once and returns every layer's keys/values; a
// one-token decode graph then takes them as `past.<i>.key/value` inputs and
// returns them grown by one position (Concat), so a token costs one position's
// work. Without the cache each token reruns the whole prefix.

import { Graph } from '../graph/ir.ts';
import type { AdapterSet } from '../adapters/inject.ts';
import { adapterFeeds } from '../adapters/feeds.ts';
import { tiedTargets } from '../peft/tied.ts';
import { CompiledGraph, HostTensor, SessionOptions } from '../runtime/session.ts';
import { Rng } from '../util/rng.ts';
import type { DecoderModel, KeyValue } from '../models/decoder.ts';
import { plainLinear } from '../models/linear.ts';
import { quantizedFormOf } from '../quant/quantized_weights.ts';
import type { LinearFn } from '../models/types.ts';

export interface SamplingOptions {
  /** false (default): greedy argmax. */
  doSample?: boolean;
  temperature?: number;
  /** Keep the k most likely tokens (0 = off). */
  topK?: number;
  /** Keep the smallest set of tokens whose probability reaches p (1 = off). */
  topP?: number;
}

export interface GenerateOptions extends SamplingOptions {
  maxNewTokens?: number;
  /** Default: config.json's eos_token_id. Pass [] to never stop early. */
  stopTokens?: number[];
  seed?: number;
  /** Default true. */
  useCache?: boolean;
}

export interface GenerateResult {
  /** New tokens (the stop token included when one ended generation). */
  tokens: number[];
  finish: 'stop' | 'length';
  /** Milliseconds of the first token (prefill) and of all later tokens. */
  prefillMs: number;
  decodeMs: number;
  /** Milliseconds of each token (index 0 = prefill). */
  stepMs: number[];
}

/** Indices of the k largest logits, largest first (a partial selection: no full sort of the vocabulary). */
function topIndices(logits: Float32Array, k: number): number[] {
  const V = logits.length;
  if (k >= V) return Array.from({ length: V }, (_, i) => i).sort((a, b) => logits[b] - logits[a] || a - b);
  const heap: number[] = []; // sorted descending, length ≤ k
  for (let i = 0; i < V; i++) {
    const x = logits[i];
    if (heap.length === k && x <= logits[heap[k - 1]]) continue;
    let lo = 0, hi = heap.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (logits[heap[mid]] >= x) lo = mid + 1;
      else hi = mid;
    }
    heap.splice(lo, 0, i);
    if (heap.length > k) heap.pop();
  }
  return heap;
}

/** Picks the next token from one row of logits (HF order: temperature → top-k → top-p). */
export function pickToken(logits: Float32Array, o: SamplingOptions, rng: Rng): number {
  const V = logits.length;
  if (!o.doSample) {
    let best = 0;
    for (let i = 1; i < V; i++) if (logits[i] > logits[best]) best = i;
    return best;
  }
  const temp = o.temperature ?? 1;
  if (!(temp > 0)) throw new Error(`temperature must be > 0 when sampling, got ${temp}`);
  const topP = o.topP ?? 1;
  const k = o.topK && o.topK > 0 ? Math.min(o.topK, V) : V;
  if (k === V && topP >= 1) {
    // Plain temperature sampling: softmax over the whole vocabulary, no sort.
    let max = -Infinity;
    for (let i = 0; i < V; i++) if (logits[i] > max) max = logits[i];
    const p = new Float64Array(V);
    let z = 0;
    for (let i = 0; i < V; i++) z += p[i] = Math.exp((logits[i] - max) / temp);
    let u = rng.uniform() * z;
    for (let i = 0; i < V; i++) {
      u -= p[i];
      if (u <= 0) return i;
    }
    return V - 1;
  }
  let idx: number[];
  let zAll = 0;
  if (k < V) idx = topIndices(logits, k);
  else {
    // top-p alone: the nucleus lies within the top kk tokens once their mass reaches topP; grow kk until it does.
    let mx = -Infinity;
    for (let i = 0; i < V; i++) if (logits[i] > mx) mx = logits[i];
    for (let i = 0; i < V; i++) zAll += Math.exp(logits[i] / temp - mx / temp);
    for (let kk = 64; ; kk *= 4) {
      if (kk * 8 >= V) {
        idx = topIndices(logits, V);
        break;
      }
      idx = topIndices(logits, kk);
      let mass = 0;
      for (const i of idx) mass += Math.exp(logits[i] / temp - mx / temp);
      if (mass / zAll >= topP) break;
    }
  }
  let keep = idx.length;
  const max = logits[idx[0]] / temp;
  const p = new Float64Array(keep);
  let z = 0;
  for (let i = 0; i < keep; i++) z += p[i] = Math.exp(logits[idx[i]] / temp - max);
  if (k === V) z = zAll; // probabilities of the whole vocabulary, not of the candidates
  if (topP < 1) {
    let cum = 0, n = 0;
    while (n < keep) {
      cum += p[n++] / z;
      if (cum >= topP) break;
    }
    keep = Math.max(1, n);
    z = 0;
    for (let i = 0; i < keep; i++) z += p[i];
  }
  let u = rng.uniform() * z;
  for (let i = 0; i < keep; i++) {
    u -= p[i];
    if (u <= 0) return idx[i];
  }
  return idx[keep - 1];
}

/** Compiled prefill / decode / full-prefix graphs of one model, built on first use. */
export class Generator {
  private prefill?: CompiledGraph;
  private decode?: CompiledGraph;
  private full?: CompiledGraph;
  readonly model: DecoderModel;

  /** Adapter parameters fed to every run when the adapter stays unmerged. */
  private adapterFeeds: Record<string, HostTensor> = {};
  private linear: LinearFn = plainLinear;

  /**
   * `adapters` are merged into the weights (LoRA and other methods with a dense
   * ΔW), except for methods without one and adapters on the output head (tied
   * to the input embedding in GPT-2 and tied Llama/Qwen2, where a merge would
   * change the embedding too) or on a tied embedding table (a merge would change
   * the head, which PEFT's unmerged adapter leaves alone), and adapters on a
   * quantized base: those run as their own sub-graphs.
   */
  constructor(model: DecoderModel, adapters: AdapterSet | null = null, readonly session: SessionOptions = {}, o: { merge?: boolean } = {}) {
    if (!adapters || !adapters.enabled) this.model = model;
    // merge: false keeps the adapter a sub-graph fed its live parameters: a trainer sampling between updates (GRPO) sees each update.
    else if (
      o.merge !== false && adapters.method.deltaWeight && !adapters.targets.some((t) => model.headNames.includes(t.name)) && tiedTargets(model, adapters).length === 0 &&
      // A quantized base (--base-dtype int8, nf4, int4) keeps its codes: W0 + ΔW would be a new float32 weight.
      !adapters.targets.some((t) => quantizedFormOf(model.weights.get(t.weightKey)?.data))
    ) {
      this.model = model.withWeights(adapters.mergeInto(model.weights));
    } else {
      this.model = model;
      this.linear = adapters.linear({ training: false });
      this.adapterFeeds = adapterFeeds(adapters, { training: false }); // live arrays: parameters and method state (SMoRA's β)
    }
  }

  private graph(kind: 'prefill' | 'decode' | 'full'): Graph {
    const c = this.model.config;
    const g = new Graph(`${this.model.name}-${kind}`);
    const inputIds = g.input('input_ids', 'int64', ['B', 'T']);
    const attentionMask = g.input('attention_mask', 'float32', ['B', kind === 'decode' ? 'S' : 'T']);
    const past: KeyValue[] | undefined = kind === 'decode'
      ? Array.from({ length: c.numLayers }, (_, i) => ({
          key: g.input(`past.${i}.key`, 'float32', ['B', c.kvHeadsPerLayer?.[i] ?? c.numKvHeads, 'P', c.headDim]),
          value: g.input(`past.${i}.value`, 'float32', ['B', c.kvHeadsPerLayer?.[i] ?? c.numKvHeads, 'P', c.headDim]),
        }))
      : undefined;
    const out = this.model.build(g, { inputIds, attentionMask, past }, this.linear, { logits: 'last' });
    g.output('logits', out.logits);
    if (kind !== 'full') {
      out.present.forEach((kv, i) => {
        g.output(`present.${i}.key`, kv.key);
        g.output(`present.${i}.value`, kv.value);
      });
    }
    return g;
  }

  private async compiled(kind: 'prefill' | 'decode' | 'full'): Promise<CompiledGraph> {
    const hit = this[kind];
    if (hit) return hit;
    const cg = await CompiledGraph.compile(this.graph(kind), this.session);
    this[kind] = cg;
    return cg;
  }

  /** Compiles the graphs `useCache` needs now (so a benchmark does not time compilation). */
  async warm(useCache = true): Promise<void> {
    if (useCache) {
      await this.compiled('prefill');
      await this.compiled('decode');
    } else await this.compiled('full');
  }

  async generate(promptIds: number[], o: GenerateOptions = {}): Promise<GenerateResult> {
    if (promptIds.length === 0) throw new Error('generate: the prompt is empty (add a BOS token)');
    const c = this.model.config;
    for (const t of promptIds) if (!(Number.isInteger(t) && t >= 0 && t < c.vocabSize)) throw new Error(`generate: token id ${t} is outside the vocabulary (0..${c.vocabSize - 1})`);
    const maxNew = o.maxNewTokens ?? 32;
    if (promptIds.length + maxNew > c.maxPositions) {
      throw new Error(`generate: prompt (${promptIds.length}) + maxNewTokens (${maxNew}) exceeds the model's ${c.maxPositions} positions`);
    }
    const stop = new Set(o.stopTokens ?? c.eosTokenIds);
    const rng = new Rng(o.seed ?? 0);
    const useCache = o.useCache ?? true;
    const tokens: number[] = [];
    const seq = promptIds.slice();
    let finish: GenerateResult['finish'] = 'length';
    let prefillMs = 0;
    const t0 = performance.now();
    const ones = (n: number) => ({ data: new Float32Array(n).fill(1), dims: [1, n] });
    const ids = (xs: number[]) => ({ data: BigInt64Array.from(xs, BigInt), dims: [1, xs.length] });
    let past: Record<string, HostTensor> | null = null;
    const stepMs: number[] = [];
    for (let step = 0; step < maxNew; step++) {
      const ts = performance.now();
      let logits: Float32Array;
      if (!useCache) {
        const full = await this.compiled('full');
        logits = (await full.run({ input_ids: ids(seq), attention_mask: ones(seq.length), ...this.adapterFeeds })).logits.data as Float32Array;
      } else {
        const g = await this.compiled(past ? 'decode' : 'prefill');
        const feeds: Record<string, HostTensor> = past
          ? { input_ids: ids([seq[seq.length - 1]]), attention_mask: ones(seq.length), ...past, ...this.adapterFeeds }
          : { input_ids: ids(seq), attention_mask: ones(seq.length), ...this.adapterFeeds };
        const out = await g.run(feeds);
        logits = out.logits.data as Float32Array;
        past = {};
        for (let i = 0; i < c.numLayers; i++) {
          past[`past.${i}.key`] = out[`present.${i}.key`];
          past[`past.${i}.value`] = out[`present.${i}.value`];
        }
      }
      const next = pickToken(logits, o, rng);
      if (step === 0) prefillMs = performance.now() - t0;
      stepMs.push(performance.now() - ts);
      tokens.push(next);
      seq.push(next);
      if (stop.has(next)) {
        finish = 'stop';
        break;
      }
    }
    return { tokens, finish, prefillMs, decodeMs: performance.now() - t0 - prefillMs, stepMs };
  }

  async release(): Promise<void> {
    for (const k of ['prefill', 'decode', 'full'] as const) {
      await this[k]?.release();
      this[k] = undefined;
    }
  }
}

const generators = new WeakMap<DecoderModel, Generator>();

/** Generates from `promptIds` (batch of one); compiled graphs are cached per model object. */
export async function generate(model: DecoderModel, promptIds: number[], opts: GenerateOptions = {}): Promise<GenerateResult> {
  let gen = generators.get(model);
  if (!gen) {
    gen = new Generator(model);
    generators.set(model, gen);
  }
  return gen.generate(promptIds, opts);
}
