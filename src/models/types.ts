// What a model builder exposes to adapters: every linear projection is a
// named "site" built through a callback, so an adapter can wrap it without the
// model knowing which method (if any) is attached. Token-embedding tables are
// sites too (kind 'embedding', PEFT's lora.Embedding): builders look tokens up
// through `embedTokens` (src/models/embedding_site.ts), which calls the
// callback's `embed` hook when it has one.

import type { Graph, Value } from '../graph/ir.ts';

export interface LinearSite {
  /** Module path users target, e.g. 'encoder.layer.0.attention.qkv'. */
  name: string;
  /** For an embedding site: num_embeddings (the vocabulary), as PEFT's in_features. */
  inFeatures: number;
  /** For an embedding site: embedding_dim, as PEFT's out_features. */
  outFeatures: number;
  /** Key of the frozen weight in the model's weight map. */
  weightKey: string;
  /**
   * 'in_out': W is [in, out] (TF / GPT-2 Conv1D); 'out_in': [out, in] (torch nn.Linear).
   * An embedding table [vocab, dim] is 'in_out', so merge code adds ΔWᵀ = s·(B·A)ᵀ as PEFT does.
   */
  layout: 'in_out' | 'out_in';
  /** 'embedding': a token lookup table (x is int64 ids); absent or 'linear': a projection. */
  kind?: 'linear' | 'embedding';
  /** nn.Embedding's padding_idx: rows looked up at this id get no gradient (F.embedding). */
  paddingIdx?: number;
}

/** Looks `ids` (int64, any shape) up in an embedding site's table [vocab, dim]; returns [...ids.shape, dim]. */
export type EmbedFn = (site: LinearSite, ids: Value, table: Value) => Value;

/**
 * A trainable stand-in for a frozen model tensor read outside the linear sites
 * (PEFT's bias='all' trains LayerNorm biases too; modules_to_save may name a
 * task head that is no site): the graph value to use for weight `key`, or
 * undefined to keep the frozen one.
 */
export type TensorFn = (g: Graph, key: string) => Value | undefined;

/**
 * Applies a linear site to a 2-D activation [N, in] and returns [N, out].
 * `embed`, where present, is used for embedding sites (a plain gather otherwise);
 * `tensor`, where present, is asked first for every other weight the model reads.
 */
export type LinearFn = ((site: LinearSite, x2d: Value, W: Value, bias?: Value) => Value) & { embed?: EmbedFn; tensor?: TensorFn };

export type WeightMap = Map<string, { shape: number[]; data: Float32Array }>;

/** Hugging Face's label for "no loss here" (CrossEntropyLoss ignore_index): prompt and padding tokens. */
export const IGNORE_INDEX = -100;

/** A model graph builder: given a graph and a linear callback, builds the forward pass. */
export interface EncoderModel {
  name: string;
  weights: WeightMap;
  /** All adaptable sites in build order (also what --target-modules may name); embedding sites have kind 'embedding'. */
  sites: LinearSite[];
  /** Output width of `build`'s pooled embedding. */
  hiddenSize: number;
  /** True when `build` reads token_type_ids (BERT-family folders with a token-type table: sentence pairs as segments 0 and 1). */
  readonly usesTokenTypes?: boolean;
  /** Builds the forward pass; returns a pooled sentence representation [B, hiddenSize]. `tokenTypeIds` (int64 [B, T]) where usesTokenTypes. */
  build(g: Graph, inputs: { inputIds: Value; attentionMask: Value; tokenTypeIds?: Value }, linear: LinearFn): Value;
  /** The same architecture over other weights (merged adapters, for example). */
  withWeights(weights: WeightMap): EncoderModel;
}
