// BM25 first stage: an inverted index over analyzed documents and Lucene's
// BM25 (BM25Similarity since Lucene 8, Anserini's scorer):
//
//   score(q, d) = Σ_{t ∈ q} idf(t) · tf / (tf + k1·(1 − b + b·|d|/avgdl))
//   idf(t)      = ln(1 + (N − df + 0.5) / (df + 0.5))
//
// (Lucene 8 dropped the constant (k1 + 1) factor; rankings are the same.) A
// query term given twice counts twice (a Lucene BooleanQuery of term
// clauses); documents that match no query term are not returned. Document
// lengths are exact (Lucene stores a one-byte approximation). Defaults are
// Lucene's/Anserini's k1 0.9, b 0.4.
//
// No npm library fits: okapibm25 re-tokenizes every document on every query,
// matches terms as unescaped substrings/regexes and cannot set k1 or b to 0;
// minisearch and lunr score BM25 variants of their own (BM25+, boosts).
//
// On disk (<dir>/): index.json (parameters, analyzer, document ids and
// lengths, the vocabulary with each term's postings offset) and postings.bin
// (little-endian uint32 document indices, then the matching uint32 tfs).

import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../io/atomic.ts';
import { analyzer, DEFAULT_ANALYZER, type AnalyzerConfig } from './analyzer.ts';
import { strcmp, type ScoredDoc } from './trec.ts';

export interface Bm25Params {
  k1: number;
  b: number;
}

export const LUCENE_BM25: Bm25Params = { k1: 0.9, b: 0.4 };

export interface Bm25Meta {
  format: 'lorakit-bm25';
  version: 1;
  params: Bm25Params;
  analyzer: AnalyzerConfig;
  /** Fields indexed ('title', 'text'), for the record. */
  fields: string[];
  docIds: string[];
  docLengths: number[];
  /** term → [df, offset into the postings]. */
  terms: Record<string, [number, number]>;
  /** Postings entries in all (documents × distinct terms). */
  postings: number;
}

export class Bm25Index {
  private readonly analyze: (text: string) => string[];
  readonly avgdl: number;
  private readonly idByIndex: string[];

  private constructor(readonly meta: Bm25Meta, private readonly docs: Uint32Array, private readonly tfs: Uint32Array) {
    this.analyze = analyzer(meta.analyzer);
    const n = meta.docLengths.length;
    this.avgdl = n ? meta.docLengths.reduce((a, b) => a + b, 0) / n : 0;
    this.idByIndex = meta.docIds;
  }

  get size(): number {
    return this.meta.docIds.length;
  }

  /** Indexes `docs` ({id, text}); `fields` only labels what the text holds. */
  static build(docs: readonly { id: string; text: string }[], o: { params?: Partial<Bm25Params>; analyzer?: AnalyzerConfig; fields?: string[] } = {}): Bm25Index {
    const params = { ...LUCENE_BM25, ...o.params };
    for (const [k, v] of Object.entries(params)) if (!(Number.isFinite(v) && v >= 0)) throw new Error(`BM25 ${k} must be a number ≥ 0, got ${v}`);
    if (params.b > 1) throw new Error(`BM25 b must be in [0, 1], got ${params.b}`);
    const cfg = o.analyzer ?? DEFAULT_ANALYZER;
    const analyze = analyzer(cfg);
    const postings = new Map<string, { docs: number[]; tfs: number[] }>();
    const lengths: number[] = [];
    docs.forEach((d, i) => {
      const terms = analyze(d.text);
      lengths.push(terms.length);
      const tf = new Map<string, number>();
      for (const t of terms) tf.set(t, (tf.get(t) ?? 0) + 1);
      for (const [t, n] of tf) {
        let p = postings.get(t);
        if (!p) postings.set(t, (p = { docs: [], tfs: [] }));
        p.docs.push(i);
        p.tfs.push(n);
      }
    });
    const total = [...postings.values()].reduce((s, p) => s + p.docs.length, 0);
    const docArr = new Uint32Array(total), tfArr = new Uint32Array(total);
    const terms: Record<string, [number, number]> = Object.create(null);
    let off = 0;
    for (const t of [...postings.keys()].sort()) {
      const p = postings.get(t)!;
      terms[t] = [p.docs.length, off];
      docArr.set(p.docs, off);
      tfArr.set(p.tfs, off);
      off += p.docs.length;
    }
    const meta: Bm25Meta = { format: 'lorakit-bm25', version: 1, params, analyzer: cfg, fields: o.fields ?? ['text'], docIds: docs.map((d) => d.id), docLengths: lengths, terms, postings: total };
    return new Bm25Index(meta, docArr, tfArr);
  }

  /** The same index with other k1 / b (scoring only: the postings do not depend on them). */
  withParams(p: Partial<Bm25Params>): Bm25Index {
    return new Bm25Index({ ...this.meta, params: { ...this.meta.params, ...p } }, this.docs, this.tfs);
  }

  idf(term: string): number {
    const e = this.meta.terms[term];
    if (!e) return 0;
    const N = this.size, df = e[0];
    return Math.log(1 + (N - df + 0.5) / (df + 0.5));
  }

  /** The top `k` documents for `query` (score descending, ties by id descending as trec_eval orders them); unmatched documents are left out. */
  search(query: string, k = 1000): ScoredDoc[] {
    const { k1, b } = this.meta.params;
    const qtf = new Map<string, number>();
    for (const t of this.analyze(query)) qtf.set(t, (qtf.get(t) ?? 0) + 1);
    const scores = new Map<number, number>();
    const lengths = this.meta.docLengths, avgdl = this.avgdl || 1;
    for (const [t, times] of qtf) {
      const e = this.meta.terms[t];
      if (!e) continue;
      const w = times * this.idf(t);
      const [df, off] = e;
      for (let j = off; j < off + df; j++) {
        const d = this.docs[j], tf = this.tfs[j];
        const s = (w * tf) / (tf + k1 * (1 - b + (b * lengths[d]) / avgdl));
        scores.set(d, (scores.get(d) ?? 0) + s);
      }
    }
    const hits = [...scores].map(([d, score]) => ({ docno: this.idByIndex[d], score }));
    return topK(hits, k);
  }

  save(dir: string): void {
    fs.mkdirSync(dir, { recursive: true });
    const buf = Buffer.alloc(this.docs.length * 8);
    for (let i = 0; i < this.docs.length; i++) {
      buf.writeUInt32LE(this.docs[i], 4 * i);
      buf.writeUInt32LE(this.tfs[i], 4 * (this.docs.length + i));
    }
    writeFileAtomic(path.join(dir, 'postings.bin'), buf);
    writeFileAtomic(path.join(dir, 'index.json'), JSON.stringify(this.meta) + '\n'); // last: a folder with index.json is complete
  }

  static load(dir: string): Bm25Index {
    const metaFile = path.join(dir, 'index.json');
    if (!fs.existsSync(metaFile)) throw new Error(`${dir}: no index.json (build one with lorakit index --corpus corpus.jsonl --out ${dir})`);
    const meta = JSON.parse(fs.readFileSync(metaFile, 'utf8')) as Bm25Meta;
    if (meta.format !== 'lorakit-bm25') throw new Error(`${metaFile}: not a BM25 index (format '${meta.format}')`);
    const buf = fs.readFileSync(path.join(dir, 'postings.bin'));
    if (buf.length !== meta.postings * 8) throw new Error(`${dir}/postings.bin: ${buf.length} bytes, expected ${meta.postings * 8} (a partial write? rebuild the index)`);
    const docs = new Uint32Array(meta.postings), tfs = new Uint32Array(meta.postings);
    for (let i = 0; i < meta.postings; i++) {
      docs[i] = buf.readUInt32LE(4 * i);
      tfs[i] = buf.readUInt32LE(4 * (meta.postings + i));
    }
    return new Bm25Index(meta, docs, tfs);
  }
}

/** The k best by trec_eval's order (score descending, ties by docno descending). */
export function topK(hits: ScoredDoc[], k: number): ScoredDoc[] {
  hits.sort((p, q) => (p.score > q.score ? -1 : p.score < q.score ? 1 : strcmp(q.docno, p.docno)));
  return hits.length > k ? hits.slice(0, k) : hits;
}
