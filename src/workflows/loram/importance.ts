// Group importances for LoRAM's structured pruning, as LLM-Pruner computes
// them (horseee/LLM-Pruner, LLMPruner/pruner/hf_llama_pruner.py; the pruner
// LoRAM's structured variant uses):
//
//   taylor     (TaylorImportance, taylor='param_first') salience = |W ⊙ ∂L/∂W|,
//              L the causal-LM loss of a calibration batch (LLM-Pruner: one
//              batch of 10 examples, labels = inputs);
//   magnitude  (MagnitudeImportance, p = 2) salience = W²;
//
// an output channel's importance is its row's salience sum, an input
// channel's its column's, and a group adds its members ('sum' reduction):
// FFN neuron j = gate row j + up row j + down column j; an attention group =
// one KV head h: the rows of k_proj and v_proj in head h, and the rows of
// q_proj and columns of o_proj of its num_heads/num_kv_heads query heads
// (LLM-Pruner prunes heads as consecutive groups of head_dim channels; for
// grouped-query attention lorakit groups a KV head with its query heads, as
// LoRAM's pruning removes them together). 'random' (LoRAM's randomly
// structured variant) draws the groups from the seed instead.

import type { LoramShape } from './plan.ts';

export const PROJECTIONS = ['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj', 'self_attn.o_proj', 'mlp.gate_proj', 'mlp.up_proj', 'mlp.down_proj'] as const;
export type Projection = (typeof PROJECTIONS)[number];

export interface LayerImportance {
  /** Per FFN neuron [intermediate]. */
  ffn: Float64Array;
  /** Per KV head (with its query heads) [num_kv_heads]. */
  heads: Float64Array;
}

/**
 * One layer's group importances from its weights ([out, in], row-major) and,
 * for 'taylor', the loss gradients of the same weights.
 */
export function layerImportance(
  s: LoramShape,
  kind: 'taylor' | 'magnitude',
  weight: (p: Projection) => ArrayLike<number>,
  grad?: (p: Projection) => ArrayLike<number>,
): LayerImportance {
  if (kind === 'taylor' && !grad) throw new Error('taylor importance needs the loss gradients of the weights');
  const { hiddenSize: H, intermediateSize: I, numHeads: nh, numKvHeads: nkv, headDim: hd } = s;
  const sal = (p: Projection): Float64Array => {
    const w = weight(p), g = kind === 'taylor' ? grad!(p) : undefined;
    const out = new Float64Array(w.length);
    for (let i = 0; i < w.length; i++) out[i] = g ? Math.abs(w[i] * g[i]) : w[i] * w[i];
    return out;
  };
  /** Σ over each row of [rows, cols] into `into` (at `off`). */
  const rowSums = (x: Float64Array, rows: number, cols: number, into: Float64Array) => {
    for (let r = 0; r < rows; r++) {
      let t = 0;
      for (let c = 0; c < cols; c++) t += x[r * cols + c];
      into[r] += t;
    }
  };
  const colSums = (x: Float64Array, rows: number, cols: number, into: Float64Array) => {
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) into[c] += x[r * cols + c];
  };
  const ffn = new Float64Array(I);
  rowSums(sal('mlp.gate_proj'), I, H, ffn);
  rowSums(sal('mlp.up_proj'), I, H, ffn);
  colSums(sal('mlp.down_proj'), H, I, ffn);
  const qCh = new Float64Array(nh * hd), kvCh = new Float64Array(nkv * hd);
  rowSums(sal('self_attn.q_proj'), nh * hd, H, qCh);
  colSums(sal('self_attn.o_proj'), H, nh * hd, qCh);
  rowSums(sal('self_attn.k_proj'), nkv * hd, H, kvCh);
  rowSums(sal('self_attn.v_proj'), nkv * hd, H, kvCh);
  const g = nh / nkv;
  const heads = new Float64Array(nkv);
  for (let h = 0; h < nkv; h++) {
    let t = 0;
    for (let c = h * g * hd; c < (h + 1) * g * hd; c++) t += qCh[c];
    for (let c = h * hd; c < (h + 1) * hd; c++) t += kvCh[c];
    heads[h] = t;
  }
  return { ffn, heads };
}
