// `lorakit duqgen`: DUQGen (Chandradevan et al., NAACL 2024) training data for
// a reranker on a corpus with no labels:
//
//  1. embed the corpus with the bundled sentence encoder; documents shorter
//     than --min-chars (300, the official filter) are not sampled;
//  2. k-means into K clusters (ml-kmeans, seeded);
//  3. allocate N samples over the clusters and draw them by softmax(cos/T) as
//     the official code does (src/duqgen/sampling.ts);
//  4. one synthetic query per sampled document (src/duqgen/generators.ts: a
//     Hugging Face decoder / seq2seq folder with the paper's prompt, or the
//     extractive generator when no model is given — stated in every output);
//  5. hard negatives: the first stage's top 100 for the synthetic query
//     (dense with the same encoder, as the official contriever run, or BM25),
//     its last 8 (ranks 93–100), the first 4 of them that are not the source
//     document;
//  6. <out>/pairs.jsonl ({"query", "positive", "negatives"}: lorakit train
//     --task rerank reads it), queries.jsonl, sampled.jsonl, info.json.
//
// Generated queries are appended to <out>/queries.partial.jsonl as they come:
// a run stopped midway continues where it was (same settings), nothing lost.

import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../io/atomic.ts';
import { loadModel } from '../models/load.ts';
import { modelBaseDtype, type BaseDtype } from '../quant/base_dtype.ts';
import { PeftModel } from '../serve/peft_model.ts';
import { Bm25Index } from '../retrieval/bm25.ts';
import { docText, readCorpus, type CorpusDoc } from '../retrieval/corpus.ts';
import { DenseIndex } from '../retrieval/dense.ts';
import { encodeTexts } from '../retrieval/encode.ts';
import { clusterEmbeddings } from '../duqgen/kmeans.ts';
import { ExtractiveGenerator, ModelGenerator, type FewShot, type QueryGenerator, type SyntheticQuery } from '../duqgen/generators.ts';
import { DUQGEN_SEEDS, sampleDocuments } from '../duqgen/sampling.ts';
import { readJsonLines } from '../data/records.ts';
import { silentUi, type JobUi } from './train.ts';

export interface DuqgenJobOptions {
  corpus: string;
  out: string;
  /** K (the official default 1000). */
  clusters: number;
  /** N documents sampled = synthetic queries asked for (official default 1000). */
  samples: number;
  /** k-means seed (the sampling's own seeds are the official SEED_LIST). */
  seed: number;
  minChars?: number;
  temperature?: number;
  lambda?: number;
  /** A decoder or seq2seq folder; absent: the extractive generator. */
  generatorModel?: string;
  /** JSONL {"document", "query"}: the prompt's examples (up to 3). */
  examples?: string;
  negativesFrom?: 'dense' | 'bm25';
  negatives?: number;
  /** Tokens a generated query may have (the paper: 64). */
  maxNewTokens?: number;
  threads?: number;
  /**
   * Form of the generator model's frozen linear weights (--base-dtype). The
   * bundled encoder that clusters the corpus stays fp32: its embeddings decide
   * which documents are sampled.
   */
  baseDtype?: BaseDtype;
}

export interface DuqgenJobResult {
  documents: number;
  eligible: number;
  sampled: number;
  queries: number;
  pairs: number;
  generator: string;
  capped: number[];
  seconds: number;
  /** The form the generator model's frozen linear weights computed in (absent without a model, or when every query came from a resumed file). */
  baseDtype?: BaseDtype;
}

interface GeneratedLine extends SyntheticQuery {
  docid: string;
}

export async function runDuqgenJob(o: DuqgenJobOptions, ui: JobUi = silentUi): Promise<DuqgenJobResult> {
  const t0 = performance.now();
  const corpus = readCorpus(o.corpus);
  const texts = corpus.map((d) => docText(d));
  const minChars = o.minChars ?? 300;
  const eligible = corpus.map((_, i) => i).filter((i) => texts[i].length >= minChars);
  if (eligible.length < o.samples) throw new Error(`${o.corpus}: ${eligible.length} of ${corpus.length} documents have ≥ ${minChars} characters, fewer than --samples ${o.samples} (lower --min-chars or --samples)`);
  if (!(o.clusters >= 1 && o.clusters <= o.samples)) throw new Error(`--clusters ${o.clusters}: give 1 ≤ K ≤ --samples (${o.samples}); every cluster gets at least one sample`);
  fs.mkdirSync(o.out, { recursive: true });
  const settings = { corpus: path.resolve(o.corpus), clusters: o.clusters, samples: o.samples, seed: o.seed, minChars, temperature: o.temperature ?? 1, lambda: o.lambda ?? 1, generator: o.generatorModel ? `model:${o.generatorModel}` : 'extractive', examples: o.examples ?? null, negativesFrom: o.negativesFrom ?? 'dense', negatives: o.negatives ?? 4, maxNewTokens: o.generatorModel ? (o.maxNewTokens ?? 64) : undefined, sampleSeeds: DUQGEN_SEEDS, ...(o.generatorModel && o.baseDtype && o.baseDtype !== 'fp32' && { baseDtype: o.baseDtype }) };

  // 1. embeddings of every document (the dense first stage needs them all)
  const { model, tokenizer } = await loadModel('use', 'encoder');
  const pm = new PeftModel(model, { threads: o.threads });
  ui.startPhase('embed corpus', corpus.length);
  const emb = await encodeTexts(pm, tokenizer!, texts, { onProgress: (n) => ui.advance?.(n) });
  ui.endPhase();
  // 2.–3. cluster the eligible documents and sample
  const dim = emb.dim;
  const sub = new Float32Array(eligible.length * dim);
  eligible.forEach((d, i) => sub.set(emb.vectors.subarray(d * dim, (d + 1) * dim), i * dim));
  ui.info(`k-means: ${eligible.length} documents (≥ ${minChars} characters) into ${o.clusters} clusters`);
  const km = clusterEmbeddings(sub, dim, o.clusters, { seed: o.seed });
  const s = sampleDocuments({ embeddings: sub, dim, centroids: km.centroids, assignment: km.assignment, nTrain: o.samples, nClusters: o.clusters, temperature: o.temperature, lambda: o.lambda });
  const sampled = s.sampled.map((i) => eligible[i]);
  writeFileAtomic(path.join(o.out, 'sampled.jsonl'), sampled.map((d, j) => JSON.stringify({ docid: corpus[d].id, cluster: km.assignment[s.sampled[j]] })).join('\n') + '\n');

  // 4. queries (resumable)
  const { lines: generated, baseDtype } = await generateQueries(o, settings, sampled.map((d) => corpus[d]), corpus, ui);

  // 5. hard negatives from the first stage's ranks 93–100
  const K = 100, want = o.negatives ?? 4;
  const ids = corpus.map((d) => d.id);
  const textById = new Map(corpus.map((d, i) => [d.id, texts[i]]));
  let rank: (qs: string[]) => Promise<string[][]>;
  if ((o.negativesFrom ?? 'dense') === 'bm25') {
    const idx = Bm25Index.build(corpus.map((d, i) => ({ id: d.id, text: texts[i] })));
    rank = async (qs) => qs.map((q) => idx.search(q, K).map((h) => h.docno));
  } else {
    const dense = new DenseIndex({ format: 'lorakit-dense', version: 1, model: 'use', adapters: [], fields: ['title', 'text'], maxLen: 128, dim, docIds: ids }, emb.vectors);
    rank = async (qs) => {
      const q = await encodeTexts(pm, tokenizer!, qs);
      return qs.map((_, i) => dense.search(q.vectors.subarray(i * dim, (i + 1) * dim), K).map((h) => h.docno));
    };
  }
  const ranked = await rank(generated.map((g) => g.query));
  await pm.release();
  const pairs: string[] = [];
  generated.forEach((g, i) => {
    const tail = ranked[i].slice(-2 * want).filter((d) => d !== g.docid).slice(0, want);
    if (!tail.length) return;
    pairs.push(JSON.stringify({ query: g.query, positive: g.positive, negatives: tail.map((d) => textById.get(d)!), docid: g.docid, negative_ids: tail, generator: settings.generator }));
  });
  writeFileAtomic(path.join(o.out, 'queries.jsonl'), generated.map((g) => JSON.stringify({ _id: `synth-${g.docid}`, text: g.query, docid: g.docid, generator: settings.generator })).join('\n') + '\n');
  writeFileAtomic(path.join(o.out, 'pairs.jsonl'), pairs.join('\n') + '\n');
  const result: DuqgenJobResult = { documents: corpus.length, eligible: eligible.length, sampled: sampled.length, queries: generated.length, pairs: pairs.length, generator: settings.generator, capped: s.capped, seconds: (performance.now() - t0) / 1000, ...(baseDtype && { baseDtype }) };
  writeFileAtomic(path.join(o.out, 'info.json'), JSON.stringify({ settings, kmeans: { iterations: km.iterations, converged: km.converged }, ...result, note: settings.generator === 'extractive' ? 'Queries are extractive (the title, or the most specific sentence, removed from the positive passage): no language model wrote them.' : undefined }, null, 2) + '\n');
  return result;
}

async function generateQueries(o: DuqgenJobOptions, settings: Record<string, unknown>, docs: CorpusDoc[], corpus: CorpusDoc[], ui: JobUi): Promise<{ lines: GeneratedLine[]; baseDtype?: BaseDtype }> {
  const partial = path.join(o.out, 'queries.partial.jsonl');
  const head = JSON.stringify({ settings });
  const done = new Map<string, GeneratedLine | null>();
  if (fs.existsSync(partial)) {
    const lines = fs.readFileSync(partial, 'utf8').split('\n').filter(Boolean);
    if (lines[0] === head) {
      for (const l of lines.slice(1)) {
        try {
          const r = JSON.parse(l);
          done.set(r.docid, r.query === null ? null : r);
        } catch {
          break; // a torn last line from a crash: regenerate from there
        }
      }
      ui.info(`resuming: ${done.size} queries already in ${partial}`);
    } else fs.rmSync(partial);
  }
  if (!fs.existsSync(partial) || !done.size) fs.writeFileSync(partial, head + '\n');
  let gen: QueryGenerator;
  let baseDtype: BaseDtype | undefined;
  if (o.generatorModel) {
    const m = await loadModel(o.generatorModel, undefined, { baseDtype: o.baseDtype });
    if (m.kind === 'encoder') throw new Error(`--generator-model ${o.generatorModel}: an encoder does not write text; give a decoder (GPT-2, Llama, Qwen2, Mistral) or T5 / BART folder`);
    const examples: FewShot[] = o.examples ? readJsonLines(o.examples, '{"document": "...", "query": "..."}', (x) => (typeof x?.document === 'string' && typeof x?.query === 'string' ? { document: x.document, query: x.query } : 'expected "document" and "query" strings')) : [];
    gen = await ModelGenerator.create(m, examples, { threads: o.threads, maxNewTokens: o.maxNewTokens });
    baseDtype = modelBaseDtype(m.model);
  } else {
    gen = new ExtractiveGenerator(corpus);
    ui.info('no --generator-model: extractive queries (title, or the most specific sentence), no language model');
  }
  const out: GeneratedLine[] = [];
  try {
    ui.startPhase(`queries (${gen.name})`, docs.length);
    for (const d of docs) {
      let r: GeneratedLine | null | undefined = done.has(d.id) ? done.get(d.id)! : undefined;
      if (r === undefined) {
        const q = await gen.generate(d);
        r = q ? { docid: d.id, ...q } : null;
        fs.appendFileSync(partial, JSON.stringify(r ?? { docid: d.id, query: null }) + '\n');
      }
      if (r) out.push(r);
      ui.advance?.(1);
    }
    ui.endPhase();
  } finally {
    await gen.release();
  }
  return { lines: out, baseDtype };
}
