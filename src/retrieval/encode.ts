// Texts → unit-length embeddings with an encoder (the bundled sentence
// encoder or a BERT-family folder), with or without an adapter (a PeftModel
// with zero, one or several adapters active). Batches group texts of similar
// length; progress is reported per batch.

import type { TextTokenizer } from '../models/load.ts';
import { padBatch, type PeftModel } from '../serve/peft_model.ts';

export interface EncodeOptions {
  batchSize?: number;
  /** Token budget per text (the bundled encoder reads at most 128). */
  maxLen?: number;
  onProgress?: (done: number) => void;
}

/** [n, dim] row-major, each row L2-normalized (cosine = dot product). */
export async function encodeTexts(model: PeftModel, tok: TextTokenizer, texts: readonly string[], o: EncodeOptions = {}): Promise<{ vectors: Float32Array; dim: number }> {
  const maxLen = o.maxLen ?? 128, bs = o.batchSize ?? 64;
  const ids = texts.map((t) => {
    const s = tok.encode(t).slice(0, maxLen);
    return s.length ? s : [0]; // an empty text still gets a row (pad id only)
  });
  const order = ids.map((_, i) => i).sort((a, b) => ids[a].length - ids[b].length);
  let vectors: Float32Array | null = null, dim = 0;
  for (let s = 0; s < order.length; s += bs) {
    const idx = order.slice(s, s + bs);
    const out = await model.run(padBatch(idx.map((i) => ids[i])));
    const data = out.data as Float32Array;
    dim = out.dims[1];
    vectors ??= new Float32Array(texts.length * dim);
    idx.forEach((i, r) => {
      let n = 0;
      for (let j = 0; j < dim; j++) n += data[r * dim + j] ** 2;
      const inv = 1 / Math.max(Math.sqrt(n), 1e-12);
      for (let j = 0; j < dim; j++) vectors![i * dim + j] = data[r * dim + j] * inv;
    });
    o.onProgress?.(idx.length);
  }
  return { vectors: vectors ?? new Float32Array(0), dim };
}
