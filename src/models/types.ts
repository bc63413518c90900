// What a model builder exposes to adapters: every linear projection is a
// named "site" built through a callback, so an adapter can wrap it without the
// model knowing which method (if any) is attached.

import type { Graph, Value } from '../graph/ir.ts';

export interface LinearSite {
  /** Module path users target, e.g. 'encoder.layer.0.attention.qkv'. */
  name: string;
  inFeatures: number;
  outFeatures: number;
  /** Key of the frozen weight in the model's weight map. */
  weightKey: string;
  /** 'in_out': W is [in, out] (TF / GPT-2 Conv1D); 'out_in': [out, in] (torch nn.Linear). */
  layout: 'in_out' | 'out_in';
}

/** Applies a linear site to a 2-D activation [N, in] and returns [N, out]. */
export type LinearFn = (site: LinearSite, x2d: Value, W: Value, bias?: Value) => Value;

export type WeightMap = Map<string, { shape: number[]; data: Float32Array }>;

/** A model graph builder: given a graph and a linear callback, builds the forward pass. */
export interface EncoderModel {
  name: string;
  weights: WeightMap;
  /** All linear sites in build order (also what --target-modules may name). */
  sites: LinearSite[];
  /** Output width of `build`'s pooled embedding. */
  hiddenSize: number;
  /** Builds the forward pass; returns a pooled sentence representation [B, hiddenSize]. */
  build(g: Graph, inputs: { inputIds: Value; attentionMask: Value }, linear: LinearFn): Value;
  /** The same architecture over other weights (merged adapters, for example). */
  withWeights(weights: WeightMap): EncoderModel;
}
