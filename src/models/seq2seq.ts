// Encoder-decoder (seq2seq) language models (T5, BART): the interface
// seq2seq training (src/train/seq2seq.ts) and generation
// (src/serve/seq2seq_generate.ts) build on. The encoder runs once; its output
// is projected to per-layer cross-attention keys/values once (`crossKv`), and
// the decoder runs over those with an optional self-attention KV cache.
// Also HF's decoder-input convention (labels shifted right behind
// decoder_start_token_id).
//
// Shapes: encoder ids / mask [B,S] (int64 / float32), decoder ids [B,T] int64,
// hidden [B,S,H], keys/values [B, heads, len, headDim].

import type { Graph, Value } from '../graph/ir.ts';
import type { KeyValue } from './decoder.ts';
import { IGNORE_INDEX, type LinearFn, type LinearSite, type WeightMap } from './types.ts';

export interface Seq2SeqConfig {
  modelType: string;
  vocabSize: number;
  hiddenSize: number;
  numHeads: number;
  headDim: number;
  numLayers: number;
  numDecoderLayers: number;
  decoderStartTokenId: number;
  padTokenId: number;
  eosTokenIds: number[];
}

export interface Seq2SeqDecodeInputs {
  /** [B,T] int64. */
  decoderInputIds: Value;
  /** Encoder attention mask [B,S] float32 (1 = real token). */
  encoderAttentionMask: Value;
  /** Per decoder layer cross-attention keys/values [B, heads, S, headDim] (from crossKv). */
  cross: KeyValue[];
  /** Per decoder layer self-attention cache [B, heads, P, headDim]. */
  past?: KeyValue[];
}

export interface Seq2SeqModel {
  name: string;
  config: Seq2SeqConfig;
  weights: WeightMap;
  /** Linear sites in build order, under PEFT module paths. */
  sites: LinearSite[];
  /** Sites that 'all-linear' leaves out (the output head). */
  headNames: string[];
  /** Encoder output [B,S,H]. */
  encode(g: Graph, inputs: { inputIds: Value; attentionMask: Value }, linear: LinearFn): Value;
  /** Cross-attention keys/values of every decoder layer, computed once from the encoder output. */
  crossKv(g: Graph, encoderHidden: Value, linear: LinearFn): KeyValue[];
  /** Decoder logits [B,T,V] (or [B,1,V] with logits 'last') and the present self-attention keys/values. */
  decode(g: Graph, inputs: Seq2SeqDecodeInputs, linear: LinearFn, opts?: { logits?: 'all' | 'last' }): { logits: Value; present: KeyValue[] };
  withWeights(weights: WeightMap): Seq2SeqModel;
}

/** HF's shift_tokens_right: decoder inputs = [start, labels[:-1]] with −100 → pad. */
export function shiftTokensRight(labels: ArrayLike<number | bigint>, B: number, T: number, startId: number, padId: number): BigInt64Array {
  const out = new BigInt64Array(B * T);
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++) {
      const v = t === 0 ? startId : Number(labels[b * T + t - 1]);
      out[b * T + t] = BigInt(v === IGNORE_INDEX ? padId : v);
    }
  return out;
}
