// Decoder-only language models (GPT-2, Llama, Qwen2, Mistral): the interface
// causal-LM training and generation build on, and the graph pieces the
// families share (runtime reshapes, causal + padding attention bias, grouped
// multi-head attention with an optional KV cache).
//
// Shapes: token ids [B,T] int64, attention mask [B,S] float32 (S = past + T,
// 1 = real token), positions [B,T] int64, per-layer key/value caches
// [B, numKvHeads, P, headDim]. Projections stay 2-D [B·T, ·] so every linear
// site is one Gemm an adapter can wrap.

import { Graph, Value } from '../graph/ir.ts';
import * as op from '../graph/ops.ts';
import type { LinearFn, LinearSite, WeightMap } from './types.ts';

export type { LinearFn, LinearSite, WeightMap };

export interface DecoderConfig {
  modelType: string;
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  maxPositions: number;
  bosTokenId?: number;
  /** Stop tokens from config.json's eos_token_id (a number or a list there). */
  eosTokenIds: number[];
  padTokenId?: number;
  /** KV heads of each layer where they differ between layers (a structurally pruned model); numKvHeads otherwise. */
  kvHeadsPerLayer?: number[];
}

export interface KeyValue {
  key: Value;
  value: Value;
}

export interface DecoderInputs {
  /** [B,T] int64. */
  inputIds: Value;
  /** [B,S] float32, S = past length + T (1 = attend, 0 = padding). */
  attentionMask: Value;
  /** [B,T] int64; default past length + 0..T-1. */
  positionIds?: Value;
  /** Per-layer cache from earlier tokens, each [B, numKvHeads, P, headDim]. */
  past?: KeyValue[];
}

export interface DecoderBuildOptions {
  /** 'last': logits of the final position only ([B,1,V]; generation). Default 'all'. */
  logits?: 'all' | 'last';
}

export interface DecoderOutputs {
  /** [B,T,V] (or [B,1,V] with logits: 'last'). */
  logits: Value;
  /** Per-layer keys/values including this call's tokens: [B, numKvHeads, P+T, headDim]. */
  present: KeyValue[];
}

export interface DecoderModel {
  name: string;
  config: DecoderConfig;
  weights: WeightMap;
  /** Adaptable sites in build order, under PEFT module paths (the token embedding first, kind 'embedding'). */
  sites: LinearSite[];
  /** Sites that 'all-linear' leaves out (the output head). */
  headNames: string[];
  build(g: Graph, inputs: DecoderInputs, linear: LinearFn, opts?: DecoderBuildOptions): DecoderOutputs;
  withWeights(weights: WeightMap): DecoderModel;
}

export { plainLinear } from './linear.ts';

/** A frozen weight from the map as a graph initializer (shared if asked twice), unless `linear.tensor` stands in for it. */
export function weightGetter(g: Graph, weights: WeightMap, modelName: string, linear?: LinearFn) {
  return (key: string): Value => {
    const hit = g.leaf(key) ?? linear?.tensor?.(g, key);
    if (hit) return hit;
    const w = weights.get(key);
    if (!w) throw new Error(`${modelName}: weight '${key}' is missing from the model's safetensors`);
    return g.weight(key, w.data, w.shape);
  };
}

function dimAt(x: Value, i: number): Value {
  return op.gather(op.shapeOf(x), x.graph.ints([i]), 0); // int64 [1]
}

/** Reshape with a target computed at run time (first dims copied from `lead`'s runtime shape). */
export function reshapeRuntime(x: Value, lead: Value, leadDims: number, tail: number[]): Value {
  const g = x.graph;
  const leadShape = op.slice(op.shapeOf(lead), [0], [leadDims], [0]);
  const shape = op.concat([leadShape, g.ints(tail)], 0);
  return op.reshapeTo(x, shape, [...lead.shape.slice(0, leadDims), ...tail]);
}

function range(start: Value, limit: Value, dim: string): Value {
  return op.range(start, limit, 1, dim);
}

/** Past length (int64 [1]) = S − T. */
export function pastLength(inputIds: Value, attentionMask: Value): Value {
  return op.sub(dimAt(attentionMask, 1), dimAt(inputIds, 1));
}

/** Default positions: past + 0..T-1, as [1,T]. */
export function defaultPositions(inputIds: Value, attentionMask: Value): Value {
  const g = inputIds.graph;
  return op.unsqueeze(range(pastLength(inputIds, attentionMask), dimAt(attentionMask, 1), inputIds.shape[1] as string), [0]);
}

const MASKED = -1e9;

/**
 * Additive attention bias [B,1,1,T,S] (0 = attend, −1e9 = masked) for the 5-D
 * grouped scores [B, kvHeads, groups, T, S]: query i (absolute position P+i)
 * sees key j when j ≤ P+i and key j is not padding, and with a sliding window
 * W (Mistral) also P+i − j < W.
 */
export function attentionBias(inputIds: Value, attentionMask: Value, slidingWindow?: number): Value {
  const g = inputIds.graph;
  const S = dimAt(attentionMask, 1);
  const past = pastLength(inputIds, attentionMask);
  const q = op.unsqueeze(range(past, S, String(inputIds.shape[1])), [1]); // [T,1]
  const k = op.unsqueeze(range(g.ints([0]), S, String(attentionMask.shape[1])), [0]); // [1,S]
  let causal = op.where(op.greater(k, q), MASKED, 0); // [T,S]
  if (slidingWindow !== undefined) causal = op.add(causal, op.where(op.less(k, op.sub(q, slidingWindow - 1)), MASKED, 0));
  const pad = op.unsqueeze(op.mul(op.sub(attentionMask, 1), -MASKED), [1, 2, 3]); // [B,1,1,1,S]
  return op.add(pad, causal);
}

export interface AttentionArgs {
  /** [B·T, numHeads·headDim], [B·T, numKv·headDim] each, rotary already applied where the family uses it. */
  q: Value;
  k: Value;
  v: Value;
  inputIds: Value;
  bias: Value;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  past?: KeyValue;
  /** Optional transform of q/k in head layout ([B, heads, T, hd]) before scores (RoPE). */
  rotate?: (x: Value) => Value;
}

/**
 * Scaled dot-product attention with grouped KV heads (GQA; MHA when
 * numKvHeads = numHeads): queries as [B, kv, groups, T, hd] against keys
 * [B, kv, 1, S, hd], so no repeat of K/V is materialized. Returns the context
 * [B·T, numHeads·headDim] and the present key/value [B, kv, S, hd].
 */
export function groupedAttention(a: AttentionArgs): { ctx: Value; present: KeyValue } {
  const { numHeads: nh, numKvHeads: nkv, headDim: hd, inputIds } = a;
  const grp = nh / nkv;
  if (!Number.isInteger(grp)) throw new Error(`attention: num_attention_heads ${nh} is not a multiple of num_key_value_heads ${nkv}`);
  const rot = a.rotate ?? ((x: Value) => x);
  // q: [B,T,kv,grp,hd] → [B,kv,grp,T,hd]; rotary acts per head on [.., T, hd].
  let qh = op.transpose(reshapeRuntime(a.q, inputIds, 2, [nkv, grp, hd]), [0, 2, 3, 1, 4]);
  qh = rot(qh);
  let kh = rot(op.transpose(reshapeRuntime(a.k, inputIds, 2, [nkv, hd]), [0, 2, 1, 3])); // [B,kv,T,hd]
  let vh = op.transpose(reshapeRuntime(a.v, inputIds, 2, [nkv, hd]), [0, 2, 1, 3]);
  if (a.past) {
    kh = op.concat([a.past.key, kh], 2);
    vh = op.concat([a.past.value, vh], 2);
  }
  const present = { key: kh, value: vh };
  const kT = op.unsqueeze(op.transpose(kh, [0, 1, 3, 2]), [2]); // [B,kv,1,hd,S]
  const scores = op.add(op.matmul(op.mul(qh, 1 / Math.sqrt(hd)), kT), a.bias); // [B,kv,grp,T,S]
  const probs = op.softmax(scores, -1);
  const ctx5 = op.matmul(probs, op.unsqueeze(vh, [2])); // [B,kv,grp,T,hd]
  const ctx = op.reshape(op.transpose(ctx5, [0, 3, 1, 2, 4]), [-1, nh * hd]);
  return { ctx, present };
}

/** Hidden [B·T, H] → logits via the head site; 'last' keeps only position T−1 of each row. */
export function lmHead(
  hidden2d: Value,
  inputIds: Value,
  H: number,
  V: number,
  which: 'all' | 'last',
  head: (x2d: Value) => Value,
): Value {
  let h = hidden2d;
  if (which === 'last') {
    const h3 = reshapeRuntime(hidden2d, inputIds, 2, [H]);
    h = op.reshape(op.slice(h3, [-1], [Number.MAX_SAFE_INTEGER], [1]), [-1, H]);
    return op.unsqueeze(head(h), [1]); // [B,1,V]
  }
  return reshapeRuntime(head(h), inputIds, 2, [V]);
}

/** eos_token_id as a list. */
export function eosList(x: unknown): number[] {
  if (typeof x === 'number') return [x];
  if (Array.isArray(x)) return x.filter((v): v is number => typeof v === 'number');
  return [];
}
