// Dense retrieval: every document as a unit vector; a query's score for a
// document is their cosine (dot product), exhaustively (exact top-k).
//
// On disk (<dir>/): index.json (kind 'dense', the model and adapter that made
// the vectors, document ids) and vectors.bin (float32 little-endian [n, dim]).
// Queries must be encoded by the same model and adapter: `lorakit search`
// reads them from index.json.

import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../io/atomic.ts';
import type { BaseDtype } from '../quant/base_dtype.ts';
import { topK } from './bm25.ts';
import type { ScoredDoc } from './trec.ts';

export interface DenseMeta {
  format: 'lorakit-dense';
  version: 1;
  /** 'use' or the model folder. */
  model: string;
  /** Adapter folders active while encoding (empty: the base model). */
  adapters: string[];
  fields: string[];
  maxLen: number;
  dim: number;
  docIds: string[];
  /** Form of the encoder's frozen linear weights when not fp32 (lorakit index --base-dtype). */
  baseDtype?: BaseDtype;
}

export class DenseIndex {
  constructor(readonly meta: DenseMeta, readonly vectors: Float32Array) {
    if (vectors.length !== meta.docIds.length * meta.dim) throw new Error(`dense index: ${vectors.length} numbers for ${meta.docIds.length} documents × ${meta.dim}`);
  }

  get size(): number {
    return this.meta.docIds.length;
  }

  /** Cosine scores of a unit query vector against every document. */
  scores(q: Float32Array): Float32Array {
    const { dim } = this.meta, n = this.size, v = this.vectors;
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let j = 0; j < dim; j++) s += q[j] * v[i * dim + j];
      out[i] = s;
    }
    return out;
  }

  search(q: Float32Array, k = 1000): ScoredDoc[] {
    const s = this.scores(q);
    return topK(this.meta.docIds.map((docno, i) => ({ docno, score: s[i] })), k);
  }

  save(dir: string): void {
    fs.mkdirSync(dir, { recursive: true });
    writeFileAtomic(path.join(dir, 'vectors.bin'), new Uint8Array(this.vectors.buffer, this.vectors.byteOffset, this.vectors.byteLength));
    writeFileAtomic(path.join(dir, 'index.json'), JSON.stringify(this.meta) + '\n');
  }

  static load(dir: string): DenseIndex {
    const meta = JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8')) as DenseMeta;
    if (meta.format !== 'lorakit-dense') throw new Error(`${dir}/index.json: not a dense index (format '${meta.format}')`);
    const buf = fs.readFileSync(path.join(dir, 'vectors.bin'));
    if (buf.length !== meta.docIds.length * meta.dim * 4) throw new Error(`${dir}/vectors.bin: ${buf.length} bytes, expected ${meta.docIds.length * meta.dim * 4} (a partial write? rebuild the index)`);
    const v = new Float32Array(buf.length / 4);
    for (let i = 0; i < v.length; i++) v[i] = buf.readFloatLE(4 * i);
    return new DenseIndex(meta, v);
  }
}

/** Which kind of index a folder holds. */
export function indexKind(dir: string): 'bm25' | 'dense' {
  const f = path.join(dir, 'index.json');
  if (!fs.existsSync(f)) throw new Error(`${dir}: no index.json (build one with lorakit index --corpus corpus.jsonl --out ${dir})`);
  const format = JSON.parse(fs.readFileSync(f, 'utf8')).format;
  if (format === 'lorakit-bm25') return 'bm25';
  if (format === 'lorakit-dense') return 'dense';
  throw new Error(`${f}: unknown index format '${format}'`);
}
