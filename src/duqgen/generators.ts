// Query generators for DUQGen: one synthetic query per sampled document.
//
//  - 'model': a Hugging Face decoder (GPT-2, Llama, Qwen2, Mistral) or
//    encoder-decoder (T5, BART) folder, prompted as the paper does: up to three
//    examples "Document: … / Relevant Query: …", then the document (cut to 512
//    words) and "Relevant Query:"; greedy decoding, at most 64 new tokens; the
//    answer is cleaned as the official train_data_generation.py does (first
//    line, text after "Example"/"Note:"-style leftovers dropped).
//  - 'extractive' (no model): the Inverse Cloze Task's pseudo-query — the
//    document's title where it has one, else its most specific sentence (the
//    highest mean idf) — and the span is removed from the positive passage, so
//    the pair is not a verbatim match. No language model is involved: every
//    output says so.

import type { DecoderModel } from '../models/decoder.ts';
import type { Seq2SeqModel } from '../models/seq2seq.ts';
import type { HfTokenizer } from '../io/hf.ts';
import { Generator } from '../serve/generate.ts';
import { Seq2SeqGenerator } from '../serve/seq2seq_generate.ts';
import { analyzer, DEFAULT_ANALYZER } from '../retrieval/analyzer.ts';
import type { CorpusDoc } from '../retrieval/corpus.ts';

export interface SyntheticQuery {
  query: string;
  /** The positive passage to train on (the document, or with the extracted span removed). */
  positive: string;
}

export interface QueryGenerator {
  /** 'extractive' or 'model:<folder>'. */
  readonly name: string;
  generate(doc: CorpusDoc): Promise<SyntheticQuery | null>;
  release(): Promise<void>;
}

/** The official filter's leftovers (train_data_generation.py filterout_items). */
const FILTER_OUT = ['In each of these examples', 'In each example,', 'Explanation:', 'Example 1:', 'Example 2:', 'In this example', 'Note:', 'In the above examples', 'Note that in each example', 'In the first three examples', 'In the first example', 'Answer:', 'By analyzing the provided documents', 'Note that the examples', 'In both examples', 'In each case', 'Note that the relevant queries', 'In each of the examples'];

/** The official post-processing of a generated query: newlines removed, the text before any known leftover, trimmed; null when empty. */
export function cleanGeneratedQuery(raw: string): string | null {
  let q = raw.replace(/\n/g, '').trimEnd();
  for (const item of FILTER_OUT) q = q.split(item)[0];
  q = q.trim();
  return q ? q : null;
}

export interface FewShot {
  document: string;
  query: string;
}

/** The paper's prompt: examples, then "Document: {doc}\nRelevant Query:". */
export function duqgenPrompt(doc: string, examples: readonly FewShot[]): string {
  const words = doc.split(/\s+/).filter(Boolean);
  const cut = words.slice(0, 512).join(' ');
  const parts = examples.slice(0, 3).map((e, i) => `Example ${i + 1}:\nDocument: ${e.document}\nRelevant Query: ${e.query}\n`);
  return `${parts.join('\n')}${parts.length ? `\nExample ${parts.length + 1}:\n` : ''}Document: ${cut}\nRelevant Query:`;
}

const SENTENCE = /[^.!?]+[.!?]*/g;

/** Inverse-Cloze extractive generator over a corpus (idf from the corpus itself). */
export class ExtractiveGenerator implements QueryGenerator {
  readonly name = 'extractive';
  private readonly analyze = analyzer(DEFAULT_ANALYZER);
  private readonly idf = new Map<string, number>();

  constructor(corpus: readonly CorpusDoc[]) {
    const df = new Map<string, number>();
    for (const d of corpus) for (const t of new Set(this.analyze(`${d.title} ${d.text}`))) df.set(t, (df.get(t) ?? 0) + 1);
    for (const [t, n] of df) this.idf.set(t, Math.log(1 + (corpus.length - n + 0.5) / (n + 0.5)));
  }

  async generate(doc: CorpusDoc): Promise<SyntheticQuery | null> {
    if (doc.title.trim() && doc.text.trim()) return { query: doc.title.trim(), positive: doc.text.trim() };
    const sentences = (doc.text.match(SENTENCE) ?? []).map((s) => s.trim()).filter(Boolean);
    if (sentences.length < 2) return null; // nothing would be left to match against
    let best = 0, bestScore = -1;
    sentences.forEach((s, i) => {
      const terms = this.analyze(s);
      if (terms.length < 3) return;
      const score = terms.reduce((a, t) => a + (this.idf.get(t) ?? 0), 0) / terms.length;
      if (score > bestScore) {
        bestScore = score;
        best = i;
      }
    });
    if (bestScore < 0) return null;
    const words = sentences[best].split(/\s+/);
    return { query: words.slice(0, 32).join(' '), positive: sentences.filter((_, i) => i !== best).join(' ') };
  }

  async release(): Promise<void> {}
}

/** A Hugging Face decoder or encoder-decoder writing one query per document (greedy, ≤ 64 tokens). */
export class ModelGenerator implements QueryGenerator {
  readonly name: string;
  private constructor(
    private readonly run: (prompt: string) => Promise<string>,
    private readonly close: () => Promise<void>,
    private readonly examples: readonly FewShot[],
    dir: string,
  ) {
    this.name = `model:${dir}`;
  }

  static async create(loaded: { kind: 'decoder'; model: DecoderModel; tokenizer?: HfTokenizer; dir: string } | { kind: 'seq2seq'; model: Seq2SeqModel; tokenizer?: HfTokenizer; dir: string }, examples: readonly FewShot[], o: { threads?: number; maxNewTokens?: number } = {}): Promise<ModelGenerator> {
    const tok = loaded.tokenizer;
    if (!tok) throw new Error(`${loaded.dir}/tokenizer.json: not found; the generator writes text with the folder's tokenizer`);
    const stop = new Set<number>(loaded.model.config.eosTokenIds ?? []);
    if (tok.eosTokenId !== undefined) stop.add(tok.eosTokenId);
    const opts = { maxNewTokens: o.maxNewTokens ?? 64, stopTokens: [...stop], doSample: false };
    if (loaded.kind === 'seq2seq') {
      const gen = new Seq2SeqGenerator(loaded.model, null, { threads: o.threads });
      return new ModelGenerator(async (p) => tok.decode((await gen.generate([tok.encode(p)], opts))[0], { skipSpecialTokens: true }), () => gen.release(), examples, loaded.dir);
    }
    const gen = new Generator(loaded.model, null, { threads: o.threads });
    await gen.warm(true);
    const room = loaded.model.config.maxPositions - opts.maxNewTokens;
    if (room < 16) throw new Error(`${loaded.dir}: ${loaded.model.config.maxPositions} positions leave no room for a prompt and ${opts.maxNewTokens} new tokens`);
    // A prompt longer than the model's positions keeps its head and its end ("…\nRelevant Query:"): the document's tail is cut.
    const fit = (ids: number[], tail: number[]) => (ids.length <= room ? ids : [...ids.slice(0, room - tail.length), ...tail]);
    const tail = tok.encode('\nRelevant Query:', { addSpecialTokens: false });
    return new ModelGenerator(async (p) => tok.decode((await gen.generate(fit(tok.encode(p), tail), opts)).tokens, { skipSpecialTokens: true }), () => gen.release(), examples, loaded.dir);
  }

  async generate(doc: CorpusDoc): Promise<SyntheticQuery | null> {
    const text = [doc.title, doc.text].filter((s) => s.trim()).join(' ');
    const q = cleanGeneratedQuery(await this.run(duqgenPrompt(text, this.examples)));
    return q ? { query: q, positive: text } : null;
  }

  release(): Promise<void> {
    return this.close();
  }
}
