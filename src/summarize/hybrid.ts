// The hybrid summarizer of the LexRank + LoRA-BART patent work (arXiv
// 2503.10354): LexRank orders a document's sentences by salience, the input
// is cut to the seq2seq model's budget (its 1,024 positions for BART), and a
// (LoRA-)adapted BART/T5 writes the summary with beam search. Documents
// longer than the window are either compressed that way ('compress', the
// paper's) or cut into consecutive chunks that each fit, summarized one by
// one and joined ('chunk').

import { loadModel } from '../models/load.ts';
import type { BaseDtype } from '../quant/base_dtype.ts';
import type { Seq2SeqModel } from '../models/seq2seq.ts';
import type { HfTokenizer } from '../io/hf.ts';
import { loadPeftAdapter } from '../peft/adapter_files.ts';
import { Seq2SeqGenerator, type Seq2SeqGenerateOptions } from '../serve/seq2seq_generate.ts';
import { readGenerationDefaults, type GenerationDefaults } from '../serve/generation_config.ts';
import { salienceOrder } from './lexrank.ts';

/** Beam-search settings in Hugging Face's terms (lengths include the decoder start token). */
export type SummaryGeneration = Pick<GenerationDefaults, 'numBeams' | 'lengthPenalty' | 'earlyStopping' | 'noRepeatNgramSize' | 'minLength' | 'maxLength'>;

export interface SummarizerLoadOptions {
  /** Adapter folder of any method (e.g. <out>/adapter of `lorakit train --task seq2seq`). */
  adapter?: string;
  /** Encoder input budget in tokens (default: the tokenizer's model_max_length, capped by BART's positions). */
  maxInputTokens?: number;
  threads?: number;
  /** Form of the model's frozen linear weights (--base-dtype). */
  baseDtype?: BaseDtype;
}

/** The default summary length when neither the folder nor the user sets one. */
const DEFAULT_MAX_LENGTH = 64;

/** Chunks generated together under --long chunk. */
const CHUNK_BATCH = 8;

export class Seq2SeqSummarizer {
  private constructor(
    readonly model: Seq2SeqModel,
    readonly tokenizer: HfTokenizer,
    private readonly generator: Seq2SeqGenerator,
    /** Encoder tokens per input. */
    readonly budget: number,
    /** Decoder positions the model has (BART), or Infinity (T5's relative positions). */
    readonly maxDecoderLength: number,
    readonly defaults: GenerationDefaults,
  ) {}

  static async load(dir: string, o: SummarizerLoadOptions = {}): Promise<Seq2SeqSummarizer> {
    const loaded = await loadModel(dir, 'seq2seq', { baseDtype: o.baseDtype });
    if (!loaded.tokenizer) throw new Error(`${dir}/tokenizer.json: not found; the summarizer needs the model's tokenizer`);
    const adapters = o.adapter ? loadPeftAdapter(loaded.model, o.adapter, { headNames: loaded.model.headNames }).set : null;
    const maxPos: number = (loaded.model.config as { maxPositions?: number }).maxPositions ?? Infinity;
    const tokMax = Number(loaded.tokenizer.tokenizerConfig.model_max_length);
    const natural = Math.min(maxPos, Number.isFinite(tokMax) && tokMax > 0 && tokMax < 1e6 ? tokMax : 512);
    if (o.maxInputTokens !== undefined && !(Number.isInteger(o.maxInputTokens) && o.maxInputTokens >= 2)) throw new Error(`--max-input-tokens must be an integer ≥ 2, got ${o.maxInputTokens}`);
    if (o.maxInputTokens !== undefined && o.maxInputTokens > maxPos) throw new Error(`--max-input-tokens ${o.maxInputTokens}: ${dir} has ${maxPos} positions`);
    const budget = o.maxInputTokens ?? natural;
    return new Seq2SeqSummarizer(loaded.model, loaded.tokenizer, new Seq2SeqGenerator(loaded.model, adapters, { threads: o.threads }), budget, maxPos, readGenerationDefaults(dir, 'summarization'));
  }

  private get eos(): number[] {
    const ids = new Set(this.model.config.eosTokenIds);
    if (this.tokenizer.eosTokenId !== undefined) ids.add(this.tokenizer.eosTokenId);
    return [...ids];
  }

  /** Token ids of `units` joined by spaces (after the folder's prefix), cut to the budget; a final end token survives the cut. */
  encodeUnits(units: string[]): number[] {
    const ids = this.tokenizer.encode((this.defaults.prefix ?? '') + units.join(' '));
    if (ids.length <= this.budget) return ids.length ? ids : [this.eos[0]];
    const last = ids[ids.length - 1];
    return this.eos.includes(last) ? [...ids.slice(0, this.budget - 1), last] : ids.slice(0, this.budget);
  }

  /** Tokens a unit adds to an input (no special tokens). */
  unitTokens(unit: string): number {
    return this.tokenizer.encode(' ' + unit, { addSpecialTokens: false }).length;
  }

  /** Consecutive groups of units that each fit the budget (a unit longer than the budget is a group of its own, cut later). */
  chunks(units: string[]): string[][] {
    const overhead = this.tokenizer.encode(this.defaults.prefix ?? '').length;
    const out: string[][] = [];
    let cur: string[] = [], used = overhead;
    for (const u of units) {
      const n = this.unitTokens(u);
      if (cur.length && used + n > this.budget) {
        out.push(cur);
        cur = [];
        used = overhead;
      }
      cur.push(u);
      used += n;
    }
    if (cur.length) out.push(cur);
    return out;
  }

  /** HF-style settings (flags over the folder's defaults) as generator options. */
  generateOptions(g: SummaryGeneration = {}): Seq2SeqGenerateOptions {
    const d = this.defaults;
    const maxLength = g.maxLength ?? d.maxLength ?? DEFAULT_MAX_LENGTH;
    if (maxLength > this.maxDecoderLength) throw new Error(`max length ${maxLength} exceeds the model's ${this.maxDecoderLength} decoder positions`);
    const minLength = g.minLength ?? d.minLength;
    if (minLength !== undefined && minLength >= maxLength) throw new Error(`min length (${minLength}) must be below max length (${maxLength})`);
    return {
      maxNewTokens: maxLength - 1,
      minNewTokens: minLength !== undefined && minLength > 1 ? minLength - 1 : undefined,
      numBeams: g.numBeams ?? d.numBeams ?? 1,
      lengthPenalty: g.lengthPenalty ?? d.lengthPenalty,
      earlyStopping: g.earlyStopping ?? d.earlyStopping,
      noRepeatNgramSize: g.noRepeatNgramSize ?? d.noRepeatNgramSize,
      forcedBosTokenId: d.forcedBosTokenId,
      forcedEosTokenId: d.forcedEosTokenId,
      stopTokens: this.eos,
    };
  }

  /** Summaries of already-encoded inputs (one batch). */
  async generateFromIds(inputs: number[][], g: SummaryGeneration = {}): Promise<string[]> {
    const out = await this.generator.generate(inputs, this.generateOptions(g));
    return out.map((t) => this.tokenizer.decode(t, { skipSpecialTokens: true }).trim());
  }

  /**
   * One document's summary. `scores` (LexRank salience) orders the units for
   * 'compress'; without them the units keep document order. 'chunk' ignores
   * scores and joins the chunks' summaries with newlines.
   */
  async summarize(units: string[], o: { scores?: ArrayLike<number>; long?: 'compress' | 'chunk'; order?: 'salience' | 'document' } & SummaryGeneration = {}): Promise<{ summary: string; inputTokens: number; chunks: number }> {
    if (o.long === 'chunk') {
      const groups = this.chunks(units);
      const ids = groups.map((c) => this.encodeUnits(c));
      // A few chunks at a time: a long document's chunks never sit in one batch (memory stays bounded).
      const parts: string[] = [];
      for (let i = 0; i < ids.length; i += CHUNK_BATCH) parts.push(...(await this.generateFromIds(ids.slice(i, i + CHUNK_BATCH), o)));
      return { summary: parts.join('\n'), inputTokens: ids.reduce((a, x) => a + x.length, 0), chunks: groups.length };
    }
    let ordered = units;
    if (o.scores) {
      const order = salienceOrder(o.scores);
      if (o.order === 'document') {
        // The most salient units that fit, read in document order.
        const keep = new Set<number>();
        let used = this.tokenizer.encode(this.defaults.prefix ?? '').length;
        for (const i of order) {
          used += this.unitTokens(units[i]);
          keep.add(i);
          if (used >= this.budget) break;
        }
        ordered = units.filter((_, i) => keep.has(i));
      } else ordered = order.map((i) => units[i]);
    }
    const ids = this.encodeUnits(ordered);
    const [summary] = await this.generateFromIds([ids], o);
    return { summary, inputTokens: ids.length, chunks: 1 };
  }

  async release(): Promise<void> {
    await this.generator.release();
  }
}
