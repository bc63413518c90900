// `lorakit summarize` and `lorakit eval-summ` as jobs over JSONL files.
//
// summarize: documents → summaries, one JSON line each ({"id", "summary",
// "sentences": [chosen unit indices]} for extractive runs; with a model,
// {"id", "summary", "input_tokens", "chunks"}). Extractive: LexRank (or lead)
// picks k units. Hybrid (--model): LexRank orders the units, the input is cut
// to the model's budget and the (adapted) BART/T5 writes the summary with
// beam search. Documents stream through one at a time, so memory follows the
// longest document, not the file; tf-idf reads the file twice (document
// frequencies first). The output is written to a temporary file and renamed
// when complete.
//
// eval-summ: references + predictions (matched by "id") → corpus ROUGE.

import fs from 'node:fs';
import path from 'node:path';
import { readSummDocuments, readSummaries, documentUnits, REFERENCE_LINE_FORMAT, SUMMARY_LINE_FORMAT, type UnitMode } from '../summarize/documents.ts';
import { IdfTable, lexTokens } from '../summarize/lexrank.ts';
import { extractSummary, rankUnits, type RankOptions, type SimilarityKind } from '../summarize/extract.ts';
import { SentenceEmbedder } from '../summarize/embed_similarity.ts';
import { Seq2SeqSummarizer, type SummaryGeneration } from '../summarize/hybrid.ts';
import { RougeAccumulator, type CorpusRouge } from '../summarize/evaluate.ts';
import { splitSentences } from '../summarize/sentences.ts';
import { fsyncDir } from '../io/atomic.ts';
import { modelBaseDtype, type BaseDtype } from '../quant/base_dtype.ts';

export interface SummarizeJobOptions extends SummaryGeneration {
  input: string;
  output: string;
  /** 'lexrank' (default) or 'lead'. */
  extractive?: 'lexrank' | 'lead';
  /** Units an extractive summary keeps (default 3). */
  sentences?: number;
  units?: UnitMode;
  similarity?: SimilarityKind;
  /** LexRank edge threshold; null = continuous. */
  threshold?: number | null;
  damping?: number;
  /** tf-idf document frequencies: over the input file's documents (default) or each document's own units. */
  idf?: 'file' | 'document';
  /** Words 'bow' similarity leaves out. */
  stopwords?: ReadonlySet<string>;
  /** Encoder for 'embedding' similarity: 'use' (default) or a folder. */
  encoder?: string;
  /** A T5/BART folder: the hybrid pipeline. */
  model?: string;
  adapter?: string;
  maxInputTokens?: number;
  long?: 'compress' | 'chunk';
  order?: 'salience' | 'document';
  threads?: number;
  /** Form of the frozen linear weights of the models the job loads (--model, and --encoder for embedding similarity). */
  baseDtype?: BaseDtype;
  /** Called after each document. */
  progress?: (done: number, total: number | undefined) => void;
}

export interface SummarizeJobResult {
  documents: number;
  output: string;
  seconds: number;
  /** The hybrid's encoder budget (tokens), when a model ran. */
  budget?: number;
  /** Peak resident memory of the process so far (bytes; getrusage's maxrss). */
  peakRss: number;
  /** The form the model's frozen linear weights computed in, when a model ran. */
  baseDtype?: BaseDtype;
}

/** Counts documents and, for file-level tf-idf, their document frequencies (first pass). */
async function scan(file: string, units: UnitMode, idf: boolean): Promise<{ count: number; idf?: IdfTable }> {
  const table = idf ? new IdfTable() : undefined;
  let count = 0;
  for await (const d of readSummDocuments(file)) {
    count++;
    table?.add(documentUnits(d, units).flatMap(lexTokens));
  }
  return { count, idf: table };
}

export async function runSummarizeJob(o: SummarizeJobOptions): Promise<SummarizeJobResult> {
  const t0 = performance.now();
  const method = o.extractive ?? 'lexrank', unitMode = o.units ?? 'sentences', similarity = o.similarity ?? 'tfidf';
  if (o.adapter && !o.model) throw new Error('--adapter needs --model <T5|BART folder> (the adapter belongs to a seq2seq model)');
  const fileIdf = method === 'lexrank' && similarity === 'tfidf' && (o.idf ?? 'file') === 'file';
  const { count, idf } = await scan(o.input, unitMode, fileIdf);
  const embedder = method === 'lexrank' && similarity === 'embedding' ? await SentenceEmbedder.load(o.encoder ?? 'use', { threads: o.threads, baseDtype: o.baseDtype }) : undefined;
  const summarizer = o.model ? await Seq2SeqSummarizer.load(o.model, { adapter: o.adapter, maxInputTokens: o.maxInputTokens, threads: o.threads, baseDtype: o.baseDtype }) : undefined;
  if (summarizer) summarizer.generateOptions(o); // settings errors before any work
  const rank: RankOptions = { similarity, idf, stopwords: o.stopwords, embedder, threshold: o.threshold, damping: o.damping };
  fs.mkdirSync(path.dirname(path.resolve(o.output)), { recursive: true });
  const tmp = `${o.output}.tmp-${process.pid}`;
  const out = fs.openSync(tmp, 'w');
  let done = 0;
  try {
    for await (const doc of readSummDocuments(o.input)) {
      const units = documentUnits(doc, unitMode);
      let line: Record<string, unknown>;
      if (summarizer) {
        const scores = method === 'lexrank' && o.long !== 'chunk' && units.length > 1 ? await rankUnits(units, rank) : undefined;
        const r = await summarizer.summarize(units, { ...o, scores });
        line = { id: doc.id, summary: r.summary, input_tokens: r.inputTokens, chunks: r.chunks };
      } else if (!units.length) line = { id: doc.id, summary: '', sentences: [] };
      else {
        const e = await extractSummary(units, o.sentences ?? 3, method, rank);
        line = { id: doc.id, summary: e.summary, sentences: e.indices };
      }
      fs.writeSync(out, JSON.stringify(line) + '\n');
      done++;
      o.progress?.(done, count);
    }
    fs.fsyncSync(out);
  } catch (e) {
    fs.closeSync(out);
    fs.rmSync(tmp, { force: true });
    throw e;
  } finally {
    await embedder?.release();
    await summarizer?.release();
  }
  fs.closeSync(out);
  fs.renameSync(tmp, o.output);
  fsyncDir(path.dirname(path.resolve(o.output)));
  return { documents: done, output: o.output, seconds: (performance.now() - t0) / 1000, budget: summarizer?.budget, peakRss: process.resourceUsage().maxRSS * 1024, ...(summarizer && { baseDtype: modelBaseDtype(summarizer.model) }) };
}

export interface EvalSummOptions {
  refs: string;
  pred: string;
  stem?: boolean;
  aggregate?: 'max' | 'mean';
  /** Split predictions and references into sentences (one a line) before ROUGE-Lsum (rouge-score's split_summaries). */
  splitSummaries?: boolean;
  bootstrap?: number;
  seed?: number;
}

export interface EvalSummResult extends CorpusRouge {
  aggregate: 'max' | 'mean';
  stem: boolean;
}

/** Predictions {"id", "summary"} against references {"id", "summaries" | "summary"} (every reference id needs a prediction). */
export async function runEvalSummJob(o: EvalSummOptions): Promise<EvalSummResult> {
  const preds = new Map<string, string>();
  for await (const d of readSummaries(o.pred, SUMMARY_LINE_FORMAT)) {
    if (preds.has(d.id)) throw new Error(`${o.pred}: id '${d.id}' appears twice`);
    preds.set(d.id, d.summaries[0]);
  }
  const aggregate = o.aggregate ?? 'max', stem = o.stem ?? true;
  const acc = new RougeAccumulator({ stem, aggregate, bootstrap: o.bootstrap, seed: o.seed });
  const lsum = (t: string) => (o.splitSummaries ? splitSentences(t).join('\n') : t);
  const seen = new Set<string>();
  for await (const d of readSummaries(o.refs, REFERENCE_LINE_FORMAT)) {
    const p = preds.get(d.id);
    if (p === undefined) throw new Error(`${o.pred}: no summary for id '${d.id}' of ${o.refs}`);
    seen.add(d.id);
    acc.add(d.summaries.map(lsum), lsum(p));
  }
  const extra = [...preds.keys()].filter((id) => !seen.has(id));
  if (extra.length) throw new Error(`${o.pred}: ${extra.length} id(s) not in ${o.refs} (first: '${extra[0]}')`);
  return { ...acc.result(), aggregate, stem };
}
