// The Llama-shaped ~100M-parameter decoder the benchmarks use, with seeded
// random frozen weights (bench/generate.ts, bench/causal_lm_step.ts; the
// PyTorch peer bench/peer_llama_torch.py builds the same shapes).

import { createLlama, llamaConfigFromHf, llamaSites } from '../src/models/llama.ts';
import type { DecoderModel } from '../src/models/decoder.ts';
import { IGNORE_INDEX, type WeightMap } from '../src/models/types.ts';
import type { CausalLmBatch } from '../src/train/tasks/causal_lm.ts';

/** Fast seeded fill (xorshift32, uniform in ±scale): 100M floats in about a second. */
export function randomFill(n: number, scale: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    out[i] = (s / 4294967296 * 2 - 1) * scale;
  }
  return out;
}

export interface LlamaLikeDims { layers: number; hidden: number; heads: number; kvHeads: number; ffn: number; vocab: number }

/** The ~100M shapes (hidden 768, 12 heads / 4 KV heads, SwiGLU 2048, vocab 32000) and a tiny one for smoke runs. */
export const LLAMA_100M: LlamaLikeDims = { layers: 12, hidden: 768, heads: 12, kvHeads: 4, ffn: 2048, vocab: 32000 };
export const LLAMA_SMOKE: LlamaLikeDims = { layers: 1, hidden: 64, heads: 4, kvHeads: 2, ffn: 128, vocab: 512 };

/** The Llama-shaped model of the benches (~100M by default; tied embeddings), random frozen weights. */
export function llama100m(opts: { layers?: number; embedScale?: number; dims?: LlamaLikeDims } = {}): DecoderModel {
  const d = opts.dims ?? LLAMA_100M;
  const hf = {
    model_type: 'llama', vocab_size: d.vocab, hidden_size: d.hidden, intermediate_size: d.ffn, num_hidden_layers: opts.layers ?? d.layers,
    num_attention_heads: d.heads, num_key_value_heads: d.kvHeads, max_position_embeddings: 1024, rms_norm_eps: 1e-6, rope_theta: 10000,
    tie_word_embeddings: true, eos_token_id: 2,
  };
  const c = llamaConfigFromHf(hf);
  const w: WeightMap = new Map();
  let seed = 1;
  w.set('model.embed_tokens.weight', { shape: [c.vocabSize, c.hiddenSize], data: randomFill(c.vocabSize * c.hiddenSize, opts.embedScale ?? 0.5, seed++) });
  for (const s of llamaSites(c)) {
    if (s.name === 'lm_head' || s.kind === 'embedding') continue; // the table is set above; lm_head is tied to it
    w.set(s.weightKey, { shape: [s.outFeatures, s.inFeatures], data: randomFill(s.outFeatures * s.inFeatures, Math.sqrt(3 / s.inFeatures), seed++) });
  }
  for (let i = 0; i < c.numLayers; i++) {
    for (const n of ['input_layernorm', 'post_attention_layernorm']) w.set(`model.layers.${i}.${n}.weight`, { shape: [c.hiddenSize], data: new Float32Array(c.hiddenSize).fill(1) });
  }
  w.set('model.norm.weight', { shape: [c.hiddenSize], data: new Float32Array(c.hiddenSize).fill(1) });
  return createLlama(c, w, opts.dims && opts.dims !== LLAMA_100M ? `llama-like-${d.hidden}x${hf.num_hidden_layers}-random` : 'llama-100m-random');
}

/** A fixed pseudo-random causal-LM batch (ids ≥ 3, the first quarter of each row's labels ignored as a prompt): the same for every bench run. */
export function syntheticLmBatch(vocabSize: number, B: number, T: number): CausalLmBatch {
  const ids = new BigInt64Array(B * T), labels = new BigInt64Array(B * T);
  let s = 12345;
  for (let i = 0; i < B * T; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    ids[i] = BigInt(3 + (s % (vocabSize - 3)));
    labels[i] = i % T < T / 4 ? BigInt(IGNORE_INDEX) : ids[i];
  }
  return { B, T, ids, mask: new Float32Array(B * T).fill(1), labels };
}
