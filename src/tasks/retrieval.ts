// Jobs behind `lorakit index`, `lorakit search` and `lorakit eval-ir`: build a
// BM25 or dense index of a BEIR corpus, search it with a query file into a
// TREC run, and score a run against qrels as trec_eval does.

import fs from 'node:fs';
import path from 'node:path';
import { loadModel, type TextTokenizer } from '../models/load.ts';
import type { BaseDtype } from '../quant/base_dtype.ts';
import type { EncoderModel } from '../models/types.ts';
import { PeftModel } from '../serve/peft_model.ts';
import { DEFAULT_ANALYZER, LUCENE_STOPWORDS, type AnalyzerConfig, type TokenPattern } from '../retrieval/analyzer.ts';
import { Bm25Index, LUCENE_BM25 } from '../retrieval/bm25.ts';
import { docText, readCorpus, readQueries, type DocField } from '../retrieval/corpus.ts';
import { DenseIndex, indexKind } from '../retrieval/dense.ts';
import { encodeTexts } from '../retrieval/encode.ts';
import { evaluateRun, type IrEvaluation } from '../retrieval/metrics.ts';
import { readQrels, readRun, writeRun, type Run } from '../retrieval/trec.ts';
import { silentUi, type JobUi } from './train.ts';

export interface EncoderWithAdapters {
  peft: PeftModel;
  tok: TextTokenizer;
  model: EncoderModel;
  name: string;
}

/**
 * An encoder ('use' or a BERT-family folder) with adapter folders loaded
 * (named by position: 'a0', 'a1', …) and all of them active, stacked in the
 * order given; its frozen linear weights in `baseDtype` (--base-dtype).
 */
export async function encoderWithAdapters(spec: string, adapters: readonly string[] = [], threads?: number, baseDtype?: BaseDtype): Promise<EncoderWithAdapters> {
  const loaded = await loadModel(spec, undefined, { baseDtype });
  if (loaded.kind !== 'encoder') throw new Error(`--model ${spec}: dense retrieval and scoring need an encoder (the bundled 'use' model or a BERT / RoBERTa / DistilBERT folder)`);
  if (!loaded.tokenizer) throw new Error(`${path.join(spec, 'tokenizer.json')}: not found; texts are encoded with the folder's own tokenizer`);
  const peft = new PeftModel(loaded.model, { threads });
  const names = adapters.map((dir, i) => {
    peft.loadAdapter(dir, `a${i}`, { warn: () => {} });
    return `a${i}`;
  });
  if (names.length) peft.setActiveAdapters(names);
  return { peft, tok: loaded.tokenizer, model: loaded.model, name: loaded.name };
}

export interface IndexJobOptions {
  corpus: string;
  out: string;
  kind: 'bm25' | 'dense';
  fields?: DocField[];
  /** BM25 */
  k1?: number;
  b?: number;
  tokens?: TokenPattern;
  /** 'lucene' (default), 'none', or a file with one stopword a line. */
  stopwords?: string;
  /** dense */
  model?: string;
  adapters?: string[];
  maxLen?: number;
  batchSize?: number;
  threads?: number;
  /** dense: form of the encoder's frozen linear weights (recorded in index.json: search encodes the queries the same way). */
  baseDtype?: BaseDtype;
}

function stopwordList(spec: string | undefined): string[] {
  if (spec === undefined || spec === 'lucene') return LUCENE_STOPWORDS;
  if (spec === 'none') return [];
  if (!fs.existsSync(spec)) throw new Error(`--stopwords ${spec}: not 'lucene', 'none' or a file with one word a line`);
  return fs.readFileSync(spec, 'utf8').split(/\r?\n/).map((w) => w.trim().toLowerCase()).filter(Boolean);
}

export async function runIndexJob(o: IndexJobOptions, ui: JobUi = silentUi): Promise<{ documents: number; seconds: number; terms?: number }> {
  const t0 = performance.now();
  const corpus = readCorpus(o.corpus);
  const fields = o.fields ?? ['title', 'text'];
  const texts = corpus.map((d) => docText(d, fields));
  if (o.kind === 'bm25') {
    const analyzer: AnalyzerConfig = { tokens: o.tokens ?? DEFAULT_ANALYZER.tokens, stopwords: stopwordList(o.stopwords) };
    const idx = Bm25Index.build(corpus.map((d, i) => ({ id: d.id, text: texts[i] })), { params: { k1: o.k1 ?? LUCENE_BM25.k1, b: o.b ?? LUCENE_BM25.b }, analyzer, fields });
    idx.save(o.out);
    return { documents: idx.size, terms: Object.keys(idx.meta.terms).length, seconds: (performance.now() - t0) / 1000 };
  }
  const model = o.model ?? 'use';
  const enc = await encoderWithAdapters(model, o.adapters, o.threads, o.baseDtype);
  try {
    ui.startPhase('embed documents', texts.length);
    const maxLen = o.maxLen ?? 128;
    const { vectors, dim } = await encodeTexts(enc.peft, enc.tok, texts, { maxLen, batchSize: o.batchSize, onProgress: (n) => ui.advance?.(n) });
    ui.endPhase();
    new DenseIndex({ format: 'lorakit-dense', version: 1, model, adapters: (o.adapters ?? []).map((a) => path.resolve(a)), fields, maxLen, dim, docIds: corpus.map((d) => d.id), ...(o.baseDtype && o.baseDtype !== 'fp32' && { baseDtype: o.baseDtype }) }, vectors).save(o.out);
    return { documents: corpus.length, seconds: (performance.now() - t0) / 1000 };
  } finally {
    await enc.peft.release();
  }
}

export interface SearchJobOptions {
  index: string;
  queries: string;
  top: number;
  out: string;
  tag?: string;
  /** Dense: adapters for the queries instead of the index's own (cross-lingual: the query language's adapter stacked with the task adapter). */
  queryAdapters?: string[];
  batchSize?: number;
  threads?: number;
  /** Dense: form of the query encoder's frozen linear weights; default the index's (index.json), else fp32. */
  baseDtype?: BaseDtype;
}

export async function runSearchJob(o: SearchJobOptions, ui: JobUi = silentUi): Promise<{ queries: number; seconds: number; searchSeconds: number }> {
  const t0 = performance.now();
  const queries = readQueries(o.queries);
  const run: Run = new Map();
  let searchSeconds = 0;
  if (indexKind(o.index) === 'bm25') {
    const idx = Bm25Index.load(o.index);
    const t1 = performance.now();
    for (const q of queries) run.set(q.id, idx.search(q.text, o.top));
    searchSeconds = (performance.now() - t1) / 1000;
  } else {
    const idx = DenseIndex.load(o.index);
    const enc = await encoderWithAdapters(idx.meta.model, o.queryAdapters ?? idx.meta.adapters, o.threads, o.baseDtype ?? idx.meta.baseDtype);
    try {
      ui.startPhase('embed queries', queries.length);
      const t1 = performance.now();
      const { vectors, dim } = await encodeTexts(enc.peft, enc.tok, queries.map((q) => q.text), { maxLen: idx.meta.maxLen, batchSize: o.batchSize, onProgress: (n) => ui.advance?.(n) });
      ui.endPhase();
      if (dim !== idx.meta.dim) throw new Error(`${o.index}: vectors are ${idx.meta.dim}-d but the query encoder gives ${dim}-d`);
      queries.forEach((q, i) => run.set(q.id, idx.search(vectors.subarray(i * dim, (i + 1) * dim), o.top)));
      searchSeconds = (performance.now() - t1) / 1000;
    } finally {
      await enc.peft.release();
    }
  }
  writeRun(o.out, run, o.tag ?? 'lorakit');
  return { queries: queries.length, seconds: (performance.now() - t0) / 1000, searchSeconds };
}

export function runEvalIrJob(o: { qrels: string; run: string; measures?: string[]; relevanceLevel?: number }): IrEvaluation {
  return evaluateRun(readQrels(o.qrels), readRun(o.run), o.measures, { relevanceLevel: o.relevanceLevel });
}
