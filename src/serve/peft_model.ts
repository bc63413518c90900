// Several adapters on one frozen base (PEFT's PeftModel API): load, switch,
// disable, delete, combine; and a batch whose rows use different adapters as
// ONE graph (the S-LoRA / Punica idea, without merging):
//
//   for each site, the K adapters' low-rank factors of ΔW = s·B·A (each
//   method's `factors`: LoRA's own A and B; VeRA, NOLA, LoRA-XS... theirs)
//   are stacked, A (rows) and s·B (columns):
//     A_cat [R, in], B_cat [out, R], R = Σ r_k, block id of column j = k
//   h = x·A_catᵀ  [N, R];  keep only the row's own block:  h ⊙ (blockId == idx[row])
//   y = base(x) + h_masked·B_catᵀ
//
// Every row pays for all K adapters' skinny products (K·r columns), but the
// whole batch is one onnxruntime run with dense GEMMs; rows with index K (or
// -1 from the API: "no adapter") get exactly the base output.
//
// Encoders (USE, BERT family) give [B, width] per run; decoder LMs (GPT-2,
// Llama, Qwen2, Mistral) give logits [B, T, V] (every linear site of a decoder
// is a Gemm over [B·T, ·] rows, so the row → adapter mask is the same);
// encoder-decoders (T5, BART) take decoder_input_ids too and give logits
// [B, T, V] (their sites run over [B·S, ·] encoder or [B·T, ·] decoder rows:
// batch-major either way, so the same mask applies).

import { AdapterSet } from '../adapters/inject.ts';
import { adapterFeeds } from '../adapters/feeds.ts';
import { METHODS } from '../adapters/registry.ts';
import { weightData } from '../adapters/bases.ts';
import { quantizeLike } from '../quant/base_dtype.ts';
import { Graph, Value } from '../graph/ir.ts';
import * as op from '../graph/ops.ts';
import type { DecoderModel } from '../models/decoder.ts';
import { plainLinear } from '../models/linear.ts';
import type { Seq2SeqModel } from '../models/seq2seq.ts';
import type { EncoderModel, LinearFn, LinearSite, WeightMap } from '../models/types.ts';
import { buildForwardGraph, modelKind, seq2seqLogits, type ModelKind, type ServableModel } from '../models/forward.ts';
import { CompiledGraph, HostTensor, SessionOptions } from '../runtime/session.ts';
import { loadPeftAdapter, PeftAdapter, type AdapterFiles } from '../peft/adapter_files.ts';
import { combineAdapters, type Combination } from '../peft/combine.ts';
import { tiedMergeError, tiedTargets } from '../peft/tied.ts';

export { combineAdapters, tiedMergeError, tiedTargets, type Combination };
export { plainLinear, buildForwardGraph, modelKind, seq2seqLogits, type ModelKind, type ServableModel };

export interface TokenBatch {
  /** [B, T] token ids, row-major. */
  ids: BigInt64Array;
  /** [B, T] 1 = token, 0 = padding. */
  mask: Float32Array;
  B: number;
  T: number;
}

/** Pads id sequences into a TokenBatch (pad id 0). */
export function padBatch(seqs: number[][], padId = 0): TokenBatch {
  const B = seqs.length, T = Math.max(1, ...seqs.map((s) => s.length));
  const ids = new BigInt64Array(B * T).fill(BigInt(padId)), mask = new Float32Array(B * T);
  seqs.forEach((s, b) => s.forEach((t, i) => { ids[b * T + i] = BigInt(t); mask[b * T + i] = 1; }));
  return { ids, mask, B, T };
}


/** Decoder token ids [B, T] of an encoder-decoder run (right-padded; positions after a row's end do not change its earlier logits). */
export interface DecoderIds {
  ids: BigInt64Array;
  B: number;
  T: number;
}

/** Pads decoder id sequences into DecoderIds. */
export function padDecoderIds(seqs: number[][], padId = 0): DecoderIds {
  const { ids, B, T } = padBatch(seqs, padId);
  return { ids, B, T };
}


export class PeftModel {
  readonly adapters = new Map<string, AdapterSet>();
  /** Tensors of an adapter file that are not adapter sites (e.g. a task head), by adapter name. */
  readonly extras = new Map<string, PeftAdapter['extraTensors']>();
  private active: string | null = null;
  /** Several adapters active together (setActiveAdapters), in stacking order; null: just `active`. */
  private stack: string[] | null = null;
  private disabled = false;
  private cache = new Map<string, CompiledGraph>();
  private version = 0;

  constructor(readonly model: ServableModel, readonly session: SessionOptions = {}) {}

  get activeAdapter(): string | null {
    return this.disabled ? null : this.active;
  }

  private changed() {
    this.version++;
    for (const [k, c] of this.cache) if (k.startsWith('mixed|')) { void c.release(); this.cache.delete(k); }
  }

  addAdapter(name: string, set: AdapterSet): void {
    if (this.adapters.has(name)) throw new Error(`Adapter '${name}' already exists (loaded: ${[...this.adapters.keys()].join(', ')})`);
    if (set.baseOverrides.size && this.adapters.size) throw new Error(`Adapter '${name}' changes the base weights (PiSSA/OLoRA init): save it converted to LoRA to serve it beside others`);
    this.adapters.set(name, set);
    this.active ??= name;
    this.changed();
  }

  /** PEFT's load_adapter: a folder written by PEFT or lorakit (subfolder `name` if it exists), or its files as bytes (a browser). */
  loadAdapter(dir: string | AdapterFiles, name = 'default', opts: { warn?: (m: string) => void } = {}): PeftAdapter {
    const loaded = loadPeftAdapter(this.model, dir, { name, warn: opts.warn, headNames: 'headNames' in this.model ? this.model.headNames : undefined });
    this.addAdapter(name, loaded.set);
    this.extras.set(name, loaded.extraTensors);
    return loaded;
  }

  setAdapter(name: string): void {
    this.get(name);
    this.active = name;
    this.stack = null;
    this.disabled = false;
  }

  /**
   * Several adapters active at once (PEFT's set_adapter([...]); the
   * cross-lingual "Stack(language, task)"): `run` applies them in this order,
   * each on the weights the ones before it produced — the first ones merged
   * into a copy of the base weights, the last run as its own sub-graph. For
   * additive methods (LoRA and the others whose ΔW does not read W) that is
   * W0 + Σ ΔW_i, PEFT's sum over active LoRA adapters.
   */
  setActiveAdapters(names: string[]): void {
    if (!names.length) throw new Error('setActiveAdapters: give at least one adapter name');
    for (const n of names) this.get(n);
    if (new Set(names).size !== names.length) throw new Error(`setActiveAdapters: an adapter is named twice (${names.join(', ')})`);
    this.active = names[names.length - 1];
    this.stack = names.length > 1 ? [...names] : null;
    this.disabled = false;
  }

  /** The adapters `run` applies, in order (empty when disabled or none). */
  get activeAdapters(): string[] {
    if (this.disabled || !this.active) return [];
    return this.stack ?? [this.active];
  }

  /** Outputs equal the base model until enableAdapters / setAdapter. */
  disableAdapters(): void {
    this.disabled = true;
  }

  enableAdapters(): void {
    this.disabled = false;
  }

  deleteAdapter(name: string): void {
    this.get(name);
    this.adapters.delete(name);
    for (const [k, c] of this.cache) if (k === `one|${name}` || (k.startsWith('stack|') && k.split('|')[1].split(',').includes(name))) { void c.release(); this.cache.delete(k); }
    if (this.stack?.includes(name)) this.stack = null;
    if (this.active === name) this.active = this.adapters.keys().next().value ?? null;
    this.changed();
  }

  get(name: string): AdapterSet {
    const s = this.adapters.get(name);
    if (!s) throw new Error(`No adapter named '${name}' (loaded: ${[...this.adapters.keys()].join(', ') || 'none'})`);
    return s;
  }

  /**
   * PEFT's add_weighted_adapter (src/peft/combine.ts has the equations):
   * 'cat' (exact Σ wᵢ·ΔWᵢ; r = Σ rᵢ, lora_alpha = r) or 'linear' (equal ranks;
   * A = Σ sign(wᵢsᵢ)·√|wᵢsᵢ|·Aᵢ, B = Σ √|wᵢsᵢ|·Bᵢ, which is not Σ wᵢ·ΔWᵢ: PEFT's
   * own definition). Weights may be negative (they subtract). The result keeps
   * the first adapter's use_rslora, as PEFT does (its scaling is then √r:
   * `warn` says so).
   */
  addWeightedAdapter(names: string[], weights: number[], newName: string, combination: Combination = 'cat', opts: { warn?: (m: string) => void } = {}): AdapterSet {
    const sets = names.map((n) => this.get(n));
    const headNames = 'headNames' in this.model ? this.model.headNames : undefined;
    const set = combineAdapters(this.model, sets, weights, combination, { warn: opts.warn ?? ((m) => console.warn(m)), headNames });
    this.addAdapter(newName, set);
    return set;
  }

  /** The model's weights with the active adapter merged (PEFT merge_and_unload). */
  mergeAndUnload(): WeightMap {
    const name = this.activeAdapter;
    if (!name) return new Map(this.model.weights);
    const set = this.get(name);
    const tied = tiedTargets(this.model, set);
    if (tied.length) throw new Error(tiedMergeError(`mergeAndUnload: adapter '${name}'`, tied));
    return set.mergeInto(this.model.weights);
  }

  private async compiled(key: string, linear: () => LinearFn, model: () => ServableModel = () => this.model): Promise<CompiledGraph> {
    let c = this.cache.get(key);
    if (!c) {
      c = await CompiledGraph.compile(buildForwardGraph(model(), linear()).graph, this.session);
      this.cache.set(key, c);
    }
    return c;
  }

  /** input_ids / attention_mask (+ decoder_input_ids for an encoder-decoder, which needs them). */
  private feeds(batch: TokenBatch, decoder: DecoderIds | undefined, what: string): Record<string, HostTensor> {
    const feeds: Record<string, HostTensor> = { input_ids: { data: batch.ids, dims: [batch.B, batch.T] }, attention_mask: { data: batch.mask, dims: [batch.B, batch.T] } };
    const seq2seq = modelKind(this.model) === 'seq2seq';
    if (seq2seq && !decoder) throw new Error(`${what}: ${this.model.name} is an encoder-decoder (T5/BART) model: give decoder_input_ids (padDecoderIds([[decoder_start_token_id, ...], ...]))`);
    if (!seq2seq && decoder) throw new Error(`${what}: decoder_input_ids are for encoder-decoder models; ${this.model.name} is not one`);
    if (decoder) {
      if (decoder.B !== batch.B) throw new Error(`${what}: ${batch.B} encoder rows but ${decoder.B} decoder rows`);
      feeds.decoder_input_ids = { data: decoder.ids, dims: [decoder.B, decoder.T] };
    }
    return feeds;
  }

  /**
   * Runs the batch through the active adapter (or the base model when disabled / none).
   * Returns [B, width] (encoder) or logits [B, T, V] (decoder LM; encoder-decoder: T = decoder length, `decoder` required).
   */
  async run(batch: TokenBatch, decoder?: DecoderIds): Promise<HostTensor> {
    const name = this.activeAdapter;
    const feeds = this.feeds(batch, decoder, 'run');
    if (!name) return (await (await this.compiled('base', () => plainLinear)).run(feeds)).output;
    const set = this.get(name);
    const stack = this.activeAdapters;
    if (stack.length > 1) {
      const below = stack.slice(0, -1).map((n) => this.get(n));
      const merged = () => (this.model as { withWeights(w: WeightMap): ServableModel }).withWeights(quantizeLike(below.reduce((w, s) => s.mergeInto(w), this.model.weights as WeightMap), this.model.sites, this.model.weights));
      const c = await this.compiled(`stack|${stack.join(',')}`, () => set.linear({ training: false }), merged);
      Object.assign(feeds, adapterFeeds(set, { training: false }));
      return (await c.run(feeds)).output;
    }
    const c = await this.compiled(`one|${name}`, () => set.linear({ training: false }));
    Object.assign(feeds, adapterFeeds(set, { training: false })); // parameters and the method's state (SMoRA's β)
    return (await c.run(feeds)).output;
  }

  /**
   * One run for a batch whose row b uses adapter `rowAdapters[b]` (null = base).
   * Methods with low-rank factors of ΔW only (AdapterMethod.factors: LoRA, VeRA,
   * NOLA...; DoRA's row-norm scaling is per adapter and not stacked here).
   */
  async runMixed(batch: TokenBatch, rowAdapters: (string | null)[], decoder?: DecoderIds): Promise<HostTensor> {
    const feeds = this.feeds(batch, decoder, 'runMixed');
    if (rowAdapters.length !== batch.B) throw new Error(`runMixed: ${rowAdapters.length} adapter names for ${batch.B} rows`);
    const names = [...this.adapters.keys()];
    const idx = BigInt64Array.from(rowAdapters, (n) => {
      if (n === null) return BigInt(names.length);
      const i = names.indexOf(n);
      if (i < 0) throw new Error(`runMixed: no adapter named '${n}' (loaded: ${names.join(', ')})`);
      return BigInt(i);
    });
    const c = await this.compiled(`mixed|${this.version}`, () => mixedLinear(names.map((n) => this.get(n))));
    return (await c.run({ ...feeds, adapter_index: { data: idx, dims: [batch.B] } })).output;
  }

  async release(): Promise<void> {
    for (const c of this.cache.values()) await c.release();
    this.cache.clear();
  }
}

/** For each site: A_cat [R, in], s·B_cat [out, R] and the block (adapter) id of each of the R columns. */
function stackSite(site: LinearSite, sets: AdapterSet[], base: () => Float32Array) {
  const parts: { A: Float32Array; B: Float32Array; r: number; s: number; k: number }[] = [];
  sets.forEach((set, k) => {
    if (!set.isTarget(site.name)) return;
    const f = set.factorsFor(site, base);
    parts.push({ A: f.A, B: f.B, r: f.r, s: f.scale, k });
  });
  const R = parts.reduce((a, p) => a + p.r, 0), n = site.inFeatures, m = site.outFeatures;
  const A = new Float32Array(R * n), B = new Float32Array(m * R), block = new BigInt64Array(R);
  let off = 0;
  for (const p of parts) {
    A.set(p.A, off * n);
    for (let i = 0; i < m; i++) for (let j = 0; j < p.r; j++) B[i * R + off + j] = p.s * p.B[i * p.r + j];
    block.fill(BigInt(p.k), off, off + p.r);
    off += p.r;
  }
  return { A, B, block, R };
}

/** The LinearFn of a mixed batch: reads the graph input 'adapter_index' [B]. */
export function mixedLinear(sets: AdapterSet[]): LinearFn {
  for (const s of sets) {
    if (s.method.factors) continue;
    const can = Object.values(METHODS).filter((m) => m.factors).map((m) => m.name);
    throw new Error(`Mixed-adapter batches stack low-rank factors of each adapter's ΔW; method '${s.method.name}' has none (its ΔW is not B·A of small rank): serve it with setAdapter/run. Methods that mix: ${can.join(', ')}`);
  }
  for (const s of sets) if (s.baseOverrides.size || s.baseCopyKeys().length) throw new Error('Mixed-adapter batches need adapters that leave the base weights alone (no PiSSA residual, bias or modules_to_save)');
  for (const s of sets) {
    // Embedding sites are looked up through the LinearFn's `embed` hook, which this one does not stack.
    const emb = s.targets.find((t) => t.kind === 'embedding');
    if (emb) throw new Error(`Mixed-adapter batches stack LoRA on linear modules; an adapter targets the embedding '${emb.name}' (serve it with setAdapter/run)`);
  }
  return (site, x, W, bias) => {
    const g = x.graph;
    const base = plainLinear(site, x, W, bias);
    // The frozen weight in the site's layout, for methods that factor it (LoRA-XS, LoLDU, LaMDA, Hydra).
    const st = stackSite(site, sets, () => weightData('mixed-adapter batch', W));
    if (st.R === 0) return base;
    const idx = g.leaf('adapter_index') ?? g.input('adapter_index', 'int64', ['B']);
    // Row index of x: adapter_index repeated N/B times (N = B·T for token rows, B for pooled rows).
    const nRows = op.slice(op.shapeOf(x), [0], [1], [0]);
    const nBatch = op.slice(op.shapeOf(idx), [0], [1], [0]);
    const target = op.concat([nBatch, op.div(nRows, nBatch)], 0);
    const rep = op.expandTo(op.unsqueeze(idx, [1]), target, ['B', `rows_${site.name}`]);
    const rowIdx = op.reshape(rep, [-1, 1]);
    const mask = op.cast(op.equal(rowIdx, g.const(st.block, [1, st.R], 'int64')), 'float32'); // [N, R]
    const A = g.weight(`mixed.${site.name}.A`, st.A, [st.R, site.inFeatures]);
    const B = g.weight(`mixed.${site.name}.B`, st.B, [site.outFeatures, st.R]);
    const h = op.mul(op.gemm(x, A, { transB: true }), mask);
    return op.gemm(h, B, { transB: true }, base);
  };
}
