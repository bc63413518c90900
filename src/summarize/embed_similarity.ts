// Sentence embeddings as LexRank's similarity: the cosine of a sentence
// encoder's vectors (the bundled Universal Sentence Encoder lite by default,
// or any encoder folder loadModel reads, optionally with an adapter trained
// by `lorakit train --task embed`).

import { loadModel } from '../models/load.ts';
import type { BaseDtype } from '../quant/base_dtype.ts';
import { padBatch, PeftModel } from '../serve/peft_model.ts';
import { loadPeftAdapter } from '../peft/adapter_files.ts';
import { denseCosine, type Similarity } from './lexrank.ts';

export class SentenceEmbedder {
  private constructor(private readonly peft: PeftModel, private readonly encode: (s: string) => number[], readonly dim: number, readonly maxTokens: number) {}

  /** 'use' (the bundled encoder) or an encoder folder; `adapter` = an adapter folder for it. */
  static async load(spec = 'use', opts: { adapter?: string; threads?: number; baseDtype?: BaseDtype } = {}): Promise<SentenceEmbedder> {
    const loaded = await loadModel(spec, 'encoder', { baseDtype: opts.baseDtype });
    if (!loaded.tokenizer) throw new Error(`${spec}: no tokenizer (tokenizer.json) to embed sentences with`);
    const peft = new PeftModel(loaded.model, { threads: opts.threads });
    if (opts.adapter) peft.addAdapter('default', loadPeftAdapter(loaded.model, opts.adapter).set);
    const tok = loaded.tokenizer;
    // USE reads at most 128 tokens; BERT-like folders 512.
    const maxTokens = spec === 'use' || spec === 'default' ? 128 : 512;
    return new SentenceEmbedder(peft, (s) => tok.encode(s), loaded.model.hiddenSize, maxTokens);
  }

  /** Embeddings [n, dim], row-major, in batches of `batchSize`. */
  async embed(sentences: string[], batchSize = 64): Promise<Float32Array> {
    const out = new Float32Array(sentences.length * this.dim);
    for (let i = 0; i < sentences.length; i += batchSize) {
      const ids = sentences.slice(i, i + batchSize).map((s) => {
        const t = this.encode(s).slice(0, this.maxTokens);
        return t.length ? t : this.encode('.');
      });
      const r = await this.peft.run(padBatch(ids));
      out.set(r.data as Float32Array, i * this.dim);
    }
    return out;
  }

  async similarity(sentences: string[]): Promise<Similarity> {
    return denseCosine(await this.embed(sentences), sentences.length, this.dim);
  }

  async release(): Promise<void> {
    await this.peft.release();
  }
}
