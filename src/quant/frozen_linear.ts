// The product of an activation with a frozen weight, in whatever form the
// weight was loaded (src/quant/quantized_weights.ts): onnxruntime's int8
// DynamicQuantizeMatMul for a weight quantized at load time, the float32
// Gemm/MatMul otherwise. Trainable weights (full fine-tuning, modules_to_save
// copies) are graph params, never quantized.

import type { Value } from '../graph/ir.ts';
import * as op from '../graph/ops.ts';
import { dequantize, dynamicQuantizeMatMul } from '../graph/quantized.ts';
import { float32Of, int8FormOf } from './quantized_weights.ts';

type Layout = 'in_out' | 'out_in';

/** The int8 codes [in, out] and scales [out] of W as graph weights, when W is a frozen weight loaded as int8. */
function int8Leaves(W: Value): { codes: Value; scales: Value } | undefined {
  const leaf = W.leaf;
  if (leaf?.kind !== 'weight') return undefined;
  const q = int8FormOf(leaf.data);
  if (!q) return undefined;
  const g = W.graph;
  const codesName = `${leaf.name}.int8`, scalesName = `${leaf.name}.int8_scale`;
  return {
    codes: g.leaf(codesName) ?? g.weight(codesName, q.codes, [q.inFeatures, q.outFeatures], 'int8'),
    scales: g.leaf(scalesName) ?? g.weight(scalesName, q.scales, [q.outFeatures]),
  };
}

/** x [N, in] times the frozen W (stored in `layout`) plus bias: [N, out]. */
export function frozenLinear(layout: Layout, x: Value, W: Value, bias?: Value): Value {
  const q = int8Leaves(W);
  if (q) return dynamicQuantizeMatMul(x, q.codes, q.scales, bias);
  return layout === 'in_out' ? op.linear(x, W, bias) : op.linearT(x, W, bias);
}

/**
 * W as the base computes with it, in its own layout: for an int8 weight the
 * dequantized diag(s)·Q (built at run time from the codes, so the float32
 * weight never enters the graph); W itself otherwise. For methods that read
 * the frozen weight (DoRA's norm, FourierFT's W + ΔW).
 */
export function frozenWeight(layout: Layout, W: Value): Value {
  const q = int8Leaves(W);
  if (!q) return W;
  const inOut = dequantize(q.codes, q.scales);
  const out = layout === 'in_out' ? inOut : op.transpose(inOut, [1, 0]);
  sourceOf.set(out, W.leaf!.data as Float32Array);
  return out;
}

/** The weight leaf's data behind each dequantized frozenWeight value. */
const sourceOf = new WeakMap<Value, Float32Array>();

/**
 * The float32 values of a frozen weight as the base computes with it, for
 * methods that derive frozen factors from W while the graph is built (LoRA-XS,
 * LoLDU, LaMDA): W's own data, or for a quantized weight (W or its
 * frozenWeight) the dequantized weight. Undefined when W is not a frozen weight.
 */
export function frozenWeightData(W: Value): Float32Array | undefined {
  const d = W.leaf ? W.leaf.data : sourceOf.get(W);
  return d instanceof Float32Array ? float32Of(d) : undefined;
}
